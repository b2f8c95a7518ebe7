//! The accounts service's staff directory (ListStaff), the roster's source.

use std::time::Duration;

use helpdesk_kit::{
    auth::AuthConfig,
    client::{Accounts, accounts, all_staff},
    error::ApiResult,
};
use uuid::Uuid;

/// One staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: Uuid,
    pub display_name: String,
    pub active: bool,
}

#[derive(Clone)]
pub struct AccountsClient {
    inner: Accounts,
}

impl AccountsClient {
    /// `identity`: as for [`super::tickets::TicketClient::new`].
    pub fn new(
        addr: &str,
        timeout: Duration,
        auth: &AuthConfig,
        identity: &'static str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: accounts(addr, timeout, auth, identity)?,
        })
    }

    /// Every staff account, active or not, all pages.
    pub async fn staff(&self) -> ApiResult<Vec<StaffMember>> {
        let mut out = Vec::new();
        for user in all_staff(&self.inner).await? {
            match Uuid::parse_str(&user.id) {
                Ok(id) => out.push(StaffMember {
                    id,
                    display_name: user.display_name,
                    active: user.active,
                }),
                Err(_) => {
                    tracing::warn!(id = %user.id, "skipping staff account with a non-UUID id")
                }
            }
        }
        Ok(out)
    }
}
