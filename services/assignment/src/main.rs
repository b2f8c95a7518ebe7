//! `assignment [serve|migrate]`: reads config and calls the kit.

use assignment_service::{MIGRATOR, config::Config, startup};
use helpdesk_kit::{db, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init("assignment", config.common.otlp_endpoint.as_deref())?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = startup::Application::build(config, startup::system_clock()).await?;
            app.run(shutdown::signal()).await
        }
        Some("migrate") => db::migrate_command(&config.common.database_url, &MIGRATOR).await,
        Some(other) => anyhow::bail!("unknown command {other:?}; use serve or migrate"),
    }
}
