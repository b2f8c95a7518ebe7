//! The test helper servers written in Python (`tests/support/*.py`: the SMTP
//! sink, the S3 server): which python runs them, and starting one as a
//! subprocess that prints `LISTENING <port>` as its first line.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The python that runs them: `HELPDESK_PYTHON`, else the tools venv's
/// (scripts/lib/deps.sh installs their packages there), else `python3`.
pub fn python() -> String {
    if let Ok(python) = std::env::var("HELPDESK_PYTHON") {
        return python;
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|_| PathBuf::from("/tmp"));
    let tools = std::env::var("HELPDESK_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| cache.join("helpdesk-tools"));
    let venv = tools.join("venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}

/// A helper server to start: `tests/support/<script>` with `args`, needing
/// `imports` (a Python import statement's names) installed by `ensure`
/// (a function of scripts/lib/deps.sh).
pub(crate) struct Spec<'a> {
    pub(crate) name: &'a str,
    pub(crate) script: &'a str,
    pub(crate) imports: &'a str,
    pub(crate) ensure: &'a str,
    pub(crate) startup: Duration,
}

/// Starts it and waits for its `LISTENING <port>` line; later lines are
/// drained so the pipe never fills (printed with `TEST_LOG`). Panics with
/// what to do when python or a package is missing.
pub(crate) fn start<S: AsRef<OsStr>>(spec: &Spec<'_>, args: &[S]) -> (Child, u16) {
    let python = python();
    match Command::new(&python)
        .args(["-c", &format!("import {}", spec.imports)])
        .output()
    {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "these tests need python with {} ({python}: {other:?}); \
             run `bash -c 'source scripts/lib/deps.sh && {}'` \
             or set HELPDESK_PYTHON to a python that has it",
            spec.imports, spec.ensure
        ),
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/support")
        .join(spec.script);
    let mut command = Command::new(&python);
    command.arg(&script).args(args);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let name = spec.name.to_owned();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = first_tx.send(lines.next());
        for line in lines.map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[{name}] {line}");
            }
        }
    });
    let first = match first_rx.recv_timeout(spec.startup) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            panic!("the {} did not start: {other:?}", spec.name)
        }
    };
    let port = first
        .strip_prefix("LISTENING ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the {}: {first:?}", spec.name));
    (child, port)
}
