//! `ticket [serve|migrate|seed-demo]`: reads config and picks the branch; the
//! sequence of each lives in the kit (`service`) and in `startup`.

use helpdesk_kit::{
    config::database_url,
    db,
    service::{self, Command},
    shutdown, telemetry,
};
use ticket_service::{
    MIGRATOR,
    config::{self, Config},
    seed, startup,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("ticket", env!("CARGO_PKG_VERSION"))?;
    match service::command(&["seed-demo"])? {
        Command::Serve => {
            let config = Config::from_env()?;
            let app = startup::Application::build(config, startup::system_clock()).await?;
            app.run(shutdown::signal()).await
        }
        // The database alone: the migrate Job needs no JWT keys, broker or SMTP.
        Command::Migrate => db::migrate_command(&database_url(config::DATABASE), &MIGRATOR).await,
        Command::Own(_) => seed::demo(&Config::from_env()?).await,
    }
}
