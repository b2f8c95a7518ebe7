//! Compiles every `.proto` under `<workspace>/proto` with a vendored protoc, so
//! no build needs a system protoc. `$PROTOC` still wins when set.

use std::{env, error::Error, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing reads env concurrently.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    // Read at run time: a build script binary can be reused by a checkout in
    // another directory sharing the target dir, where a compile-time path lies.
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut protos = Vec::new();
    for dir in ["support/v1", "platform/accounts/v1", "platform/rides/v1"] {
        for entry in fs::read_dir(root.join(dir))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "proto") {
                protos.push(path);
            }
        }
    }
    protos.sort();
    let descriptors = PathBuf::from(env::var("OUT_DIR")?).join("helpdesk_descriptor.bin");
    // Type names give every message `prost::Name`, so an event's full name
    // (the AMQP `type` property) comes from the generated code, not a table.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptors)
        .compile_with_config(
            config,
            &protos,
            &[root.clone(), protoc_bin_vendored::include_path()?],
        )?;
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
