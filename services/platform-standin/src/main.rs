//! The stand-in as a process, for local runs: configuration from the
//! environment, then [`platform_standin::run`] until SIGTERM/SIGINT.
//!
//! - `LISTEN_ADDR` (default `0.0.0.0:50060`)
//! - `STANDIN_DATA`: seed JSON file; the embedded `data/demo.json` when unset
//! - `STANDIN_DELAY_MS`: artificial per-call delay (default 0)
//! - `JWT_*`: token verification, as in every service

use std::net::SocketAddr;

use anyhow::Context;
use helpdesk_kit::{config, server, shutdown, telemetry};
use platform_standin::{DemoData, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("platform-standin", None)?;

    let listen_addr = config::var_or("LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 50060)))
        .context("LISTEN_ADDR")?;
    let data = match std::env::var("STANDIN_DATA") {
        Ok(path) if !path.trim().is_empty() => DemoData::from_file(path.trim())?,
        _ => DemoData::demo(),
    };
    let options = Options::from_env()?;

    let listener = server::bind(listen_addr).await?;
    platform_standin::run(listener, data, options, shutdown::signal()).await
}
