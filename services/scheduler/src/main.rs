//! `scheduler [serve|migrate]`: reads config and picks the branch; the
//! sequence of each lives in the kit (`service`) and in `startup`.

use helpdesk_kit::{
    config::database_url,
    db,
    service::{self, Command},
    shutdown, telemetry,
};
use scheduler_service::{
    MIGRATOR,
    config::{self, Config},
    startup,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry::init("scheduler", env!("CARGO_PKG_VERSION"))?;
    match service::command(&[])? {
        Command::Serve => {
            let config = Config::from_env()?;
            let work = startup::ticket_work(&config)?;
            let app = startup::Application::build(config, startup::system_clock(), work).await?;
            app.run(shutdown::signal()).await
        }
        // The database alone: the migrate Job needs no JWT keys, broker or SMTP.
        Command::Migrate => db::migrate_command(&database_url(config::DATABASE), &MIGRATOR).await,
        Command::Own(other) => anyhow::bail!("{other} is not a command of this service"),
    }
}
