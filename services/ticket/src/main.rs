//! `ticket [serve|migrate|seed-demo]`: reads config and calls the kit.

use helpdesk_kit::{db, shutdown, telemetry};
use ticket_service::{MIGRATOR, config::Config, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("ticket", config.common.otlp_endpoint.as_deref())?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = startup::Application::build(config, startup::system_clock()).await?;
            app.run(shutdown::signal()).await
        }
        Some("migrate") => db::migrate_command(&config.common.database_url, &MIGRATOR).await,
        Some("seed-demo") => ticket_service::seed::demo(&config).await,
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve, migrate or seed-demo"),
    }
}
