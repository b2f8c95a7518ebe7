//! SMTP email (stub: the sender's owner replaces it).

/// `SMTP_*` settings.
#[derive(Clone, Debug)]
pub struct SmtpConfig {}

impl SmtpConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {})
    }
}
