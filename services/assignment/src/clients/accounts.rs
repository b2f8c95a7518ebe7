//! The accounts service's staff directory (ListStaff), the roster's source.

use std::time::Duration;

use helpdesk_kit::{
    auth::AuthConfig,
    client::{ServiceToken, channel, unavailable},
    error::ApiResult,
};
use helpdesk_proto::platform::accounts::v1::{
    ListStaffRequest, accounts_service_client::AccountsServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

/// The largest page the accounts service serves.
const PAGE_SIZE: i32 = 500;

/// One staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: Uuid,
    pub display_name: String,
    pub active: bool,
}

#[derive(Clone)]
pub struct AccountsClient {
    inner: AccountsServiceClient<InterceptedService<Channel, ServiceToken>>,
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
            inner: AccountsServiceClient::with_interceptor(
                channel(addr, timeout)?,
                ServiceToken::new(auth, identity),
            ),
        })
    }

    /// Every staff account, active or not, all pages.
    pub async fn staff(&self) -> ApiResult<Vec<StaffMember>> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .inner
                .clone()
                .list_staff(ListStaffRequest {
                    page_size: PAGE_SIZE,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|s| unavailable("accounts", &s))?
                .into_inner();
            for user in page.staff.into_iter().filter(|u| u.is_staff) {
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
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }
}
