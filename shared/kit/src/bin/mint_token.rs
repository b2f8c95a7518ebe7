//! Dev tool: prints a signed JWT for local calls.
//!
//! `mint-token <subject> [user|staff|admin|service] [ttl-hours]`
//! Uses `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE` like the services do.

use helpdesk_kit::auth::{AuthConfig, Minter, Role};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: mint-token <subject> [user|staff|admin|service] [ttl-hours]";
    let subject = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let role: Role = args
        .next()
        .as_deref()
        .unwrap_or("user")
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}; {usage}"))?;
    let hours: i64 = args.next().as_deref().unwrap_or("24").parse()?;
    let minter = Minter::new(&AuthConfig::from_env_allowing_dev_secret()?);
    println!(
        "{}",
        minter.mint(&subject, role, chrono::Duration::hours(hours))
    );
    Ok(())
}
