//! The stand-in as a process, for local runs: configuration from the
//! environment, then [`platform_standin::run`] and the push gateway
//! stand-in until SIGTERM/SIGINT.
//!
//! - `LISTEN_ADDR` (default `0.0.0.0:50060`)
//! - `STANDIN_DATA`: seed JSON file; the embedded `data/demo.json` when unset
//! - `STANDIN_DELAY_MS`: artificial per-call delay (default 0)
//! - `JWT_*`: token verification, as in every service
//! - `PUSH_LISTEN_ADDR`: the push gateway (default: `LISTEN_ADDR`'s host,
//!   port 50061; when that default port is taken, as when a test runs the
//!   stand-in beside the local stack, it runs without one and says so; a
//!   set address that cannot be bound stops it); `PUSH_GATEWAY_KEY`: the
//!   bearer key it requires (default none); `PUSH_LOG_FILE`: a JSON-lines
//!   file of accepted pushes (default none)

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use helpdesk_kit::{config, server, shutdown, telemetry};
use platform_standin::{DemoData, Options, PushGateway, PushOptions};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("platform-standin", env!("CARGO_PKG_VERSION"))?;

    let listen_addr = config::var_or("LISTEN_ADDR", SocketAddr::from(([0, 0, 0, 0], 50060)))
        .context("LISTEN_ADDR")?;
    let push_default = SocketAddr::new(listen_addr.ip(), 50061);
    let push_addr = config::var_or("PUSH_LISTEN_ADDR", push_default).context("PUSH_LISTEN_ADDR")?;
    let data = match std::env::var("STANDIN_DATA") {
        Ok(path) if !path.trim().is_empty() => DemoData::from_file(path.trim())?,
        _ => DemoData::demo(),
    };
    let options = Options::from_env()?;
    let push = PushGateway::new(PushOptions {
        key: Some(config::string_or("PUSH_GATEWAY_KEY", "")).filter(|k| !k.is_empty()),
        log_file: Some(config::string_or("PUSH_LOG_FILE", ""))
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
    });

    let listener = server::bind(listen_addr).await?;
    let push_listener = match tokio::net::TcpListener::bind(push_addr).await {
        Ok(listener) => Some(listener),
        Err(e) if push_addr == push_default => {
            tracing::warn!(addr = %push_addr, error = %e, "push gateway stand-in not started (set PUSH_LISTEN_ADDR)");
            None
        }
        Err(e) => return Err(e).context(format!("binding PUSH_LISTEN_ADDR {push_addr}")),
    };
    let stop = CancellationToken::new();
    let push = push_listener.map(|l| tokio::spawn(push.serve(l, stop.clone().cancelled_owned())));
    let served = platform_standin::run(listener, data, options, shutdown::signal()).await;
    stop.cancel();
    if let Some(push) = push {
        push.await??;
    }
    served
}
