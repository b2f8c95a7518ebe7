//! Settings from environment variables, each with a documented default, so a
//! service runs locally with no configuration at all and in Kubernetes with a
//! ConfigMap. Parsing fails loudly at start, never later.

use std::{env, fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

use anyhow::{Context, anyhow};

/// Reads `name`, or returns `default` when unset or empty.
pub fn var_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    match env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|e| anyhow!("environment variable {name}={raw:?} is invalid: {e}")),
        _ => Ok(default),
    }
}

/// Reads `name` as a string, or `default`.
pub fn string_or(name: &str, default: &str) -> String {
    env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Reads `name` as whole milliseconds.
pub fn millis_or(name: &str, default: Duration) -> anyhow::Result<Duration> {
    let ms: u64 = var_or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
    Ok(Duration::from_millis(ms))
}

/// `DATABASE_URL`, or the local database `default_db`: all that a service's
/// `migrate` subcommand reads, so the migrate Job needs no other setting
/// (no JWT keys, broker or SMTP).
pub fn database_url(default_db: &str) -> String {
    string_or(
        "DATABASE_URL",
        &format!("postgres://postgres@127.0.0.1:5432/{default_db}"),
    )
}

/// What every gRPC service reads the same way.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    /// `LISTEN_ADDR`: where the gRPC server binds.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`: the service's own database.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS`: pool size; a few per core is plenty.
    pub database_max_connections: u32,
    /// JWT verification settings (`JWT_*`).
    pub auth: crate::auth::AuthConfig,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: traces are exported only when set
    /// (informational: [`crate::telemetry`] reads every `OTEL_*` itself).
    pub otlp_endpoint: Option<String>,
    /// `METRICS_ADDR`: the Prometheus endpoint; default the gRPC port + 1000
    /// on all interfaces, `off` for none ([`crate::metrics`]).
    pub metrics_addr: Option<SocketAddr>,
}

impl CommonConfig {
    /// Reads the common settings; `default_port` and `default_db` differ per service.
    pub fn from_env(default_port: u16, default_db: &str) -> anyhow::Result<Self> {
        let listen_addr = var_or(
            "LISTEN_ADDR",
            SocketAddr::from(([0, 0, 0, 0], default_port)),
        )
        .context("LISTEN_ADDR")?;
        Ok(Self {
            listen_addr,
            database_url: database_url(default_db),
            database_max_connections: var_or("DATABASE_MAX_CONNECTIONS", 10)?,
            auth: crate::auth::AuthConfig::from_env()?,
            otlp_endpoint: env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|v| !v.is_empty()),
            metrics_addr: crate::metrics::addr_from_env(listen_addr).context("METRICS_ADDR")?,
        })
    }
}
