//! The HTTP push gateway (stub: the sender's owner replaces it).

/// `PUSH_*` settings.
#[derive(Clone, Debug)]
pub struct PushConfig {}

impl PushConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {})
    }
}
