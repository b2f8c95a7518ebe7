//! Dev tool: prints a signed JWT for local calls.
//!
//! `mint-token <subject> [user|staff|admin|service] [ttl-hours]`
//! Uses `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE` like the services do.
//! With `JWT_PRIVATE_KEY_FILE` (a PEM private key of `JWT_ALGORITHM`, default
//! RS256) it signs with that key instead, naming `JWT_KID` in the header if
//! set: a token a service with `JWT_PUBLIC_KEY_FILE` verifies.

use helpdesk_kit::{
    auth::{AuthConfig, Minter, Role},
    config::var_or,
};
use jsonwebtoken::Algorithm;

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
    let config = AuthConfig::from_env_allowing_dev_secret()?;
    let minter = match std::env::var("JWT_PRIVATE_KEY_FILE") {
        Ok(path) if !path.is_empty() => {
            let pem = std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
            let algorithm: Algorithm = var_or("JWT_ALGORITHM", Algorithm::RS256)?;
            let kid = std::env::var("JWT_KID").ok().filter(|k| !k.is_empty());
            Minter::with_private_key(&config, algorithm, &pem, kid)?
        }
        _ => Minter::new(&config),
    };
    println!(
        "{}",
        minter.mint(&subject, role, chrono::Duration::hours(hours))
    );
    Ok(())
}
