//! `platform.accounts.v1.AccountsService`, answered from the seed data.
//!
//! It mirrors the contract Helpdesk relies on, no more: GetUser (NOT_FOUND for
//! an unknown id, INVALID_ARGUMENT for a non-UUID one) and ListStaff (every
//! staff account, active or not, ordered by id, keyset-paginated with an
//! opaque token) so callers' error handling and paging are exercised for real.

use std::{collections::BTreeMap, ops::Bound};

use chrono::DateTime;
use helpdesk_kit::{
    clock::to_timestamp,
    error::{ApiError, ApiResult},
    page_token::{self, Cursor},
};
use helpdesk_proto::platform::accounts::v1::{
    GetUserRequest, ListStaffRequest, ListStaffResponse, User,
    accounts_service_server::AccountsService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{Pace, data::DemoData, parse_id};

/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Larger requests are clamped to this (AIP-158).
pub const MAX_PAGE_SIZE: usize = 500;

/// The accounts half of the stand-in.
#[derive(Debug)]
pub struct Accounts {
    /// Keyed by id, so iteration is already ListStaff's order.
    users: BTreeMap<Uuid, User>,
    pace: Pace,
}

impl Accounts {
    pub fn new(data: &DemoData, pace: Pace) -> Self {
        let users = data
            .users
            .iter()
            .map(|u| {
                let user = User {
                    id: u.id.to_string(),
                    display_name: u.display_name.clone(),
                    email: u.email.clone(),
                    locale: u.locale.clone(),
                    push_tokens: u.push_tokens.clone(),
                    active: u.active,
                    is_staff: u.is_staff,
                    create_time: Some(to_timestamp(u.create_time)),
                };
                (u.id, user)
            })
            .collect();
        Self { users, pace }
    }

    fn get_user(&self, request: &GetUserRequest) -> ApiResult<User> {
        let id = parse_id("id", &request.id)?;
        self.users
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("user {id}")))
    }

    fn list_staff(&self, request: &ListStaffRequest) -> ApiResult<ListStaffResponse> {
        let page_size = match usize::try_from(request.page_size) {
            Err(_) => return Err(ApiError::invalid("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
        };
        let after = page_token::decode(&request.page_token, token_fingerprint())
            .map_err(|why| ApiError::invalid("page_token", why))?
            .map(|cursor| cursor.id);
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);

        // One extra tells us whether another page follows.
        let mut staff: Vec<User> = self
            .users
            .range((start, Bound::Unbounded))
            .map(|(_, user)| user)
            .filter(|user| user.is_staff)
            .take(page_size + 1)
            .cloned()
            .collect();
        let next_page_token = if staff.len() > page_size {
            staff.truncate(page_size);
            let last = staff.last().expect("page_size >= 1");
            let id = Uuid::parse_str(&last.id).expect("ids are validated UUIDs");
            page_token::encode(
                // The list is ordered by id alone; the time half of the cursor is unused.
                Cursor {
                    at: DateTime::UNIX_EPOCH,
                    id,
                },
                token_fingerprint(),
            )
        } else {
            String::new()
        };
        Ok(ListStaffResponse {
            staff,
            next_page_token,
        })
    }
}

/// Binds tokens to this list, so another list's token is rejected.
fn token_fingerprint() -> u64 {
    page_token::fingerprint(&[b"platform.accounts.v1.AccountsService/ListStaff"])
}

#[tonic::async_trait]
impl AccountsService for Accounts {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        self.pace.arrive().await;
        Ok(Response::new(Accounts::get_user(self, request.get_ref())?))
    }

    async fn list_staff(
        &self,
        request: Request<ListStaffRequest>,
    ) -> Result<Response<ListStaffResponse>, Status> {
        self.pace.arrive().await;
        Ok(Response::new(Accounts::list_staff(
            self,
            request.get_ref(),
        )?))
    }
}
