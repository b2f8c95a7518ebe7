//! Contact details from the accounts service (email, locale, push tokens,
//! display name), cached briefly so intake and sending do not call it per
//! notification: a user's contact for `CONTACT_TTL_SECS`, the staff list
//! for the same time (one ListStaff walk, shared by every fan-out).
//!
//! A failed lookup is UNAVAILABLE: the consumer retries the event, the
//! sender retries the delivery. Nothing is cached from a failure.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use helpdesk_kit::{
    auth::AuthConfig,
    client::{Accounts, absent_on_not_found, accounts, all_staff},
    error::ApiResult,
};
use helpdesk_proto::platform::accounts::v1::{GetUserRequest, User};
use uuid::Uuid;

/// How to reach a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: Uuid,
    pub display_name: String,
    /// Empty when the account has none.
    pub email: String,
    /// BCP 47 (`pt-BR`); empty means the fallback locale.
    pub locale: String,
    pub push_tokens: Vec<String>,
    pub active: bool,
    pub is_staff: bool,
}

impl Contact {
    fn from_pb(user: User) -> Option<Self> {
        Some(Self {
            id: Uuid::parse_str(&user.id).ok()?,
            display_name: user.display_name,
            email: user.email,
            locale: user.locale,
            push_tokens: user.push_tokens,
            active: user.active,
            is_staff: user.is_staff,
        })
    }
}

type Cached<T> = Mutex<Option<(Instant, T)>>;
/// Contacts by account id, `None` for an account that does not exist.
type Contacts = Mutex<HashMap<Uuid, (Instant, Option<Contact>)>>;

/// The cached directory; clones share the cache.
#[derive(Clone)]
pub struct Directory {
    inner: Accounts,
    ttl: Duration,
    users: Arc<Contacts>,
    staff: Arc<Cached<Arc<Vec<Contact>>>>,
}

impl Directory {
    pub fn new(
        addr: &str,
        timeout: Duration,
        ttl: Duration,
        auth: &AuthConfig,
        identity: &'static str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: accounts(addr, timeout, auth, identity)?,
            ttl,
            users: Arc::default(),
            staff: Arc::default(),
        })
    }

    /// One person's contact; `None` when the account does not exist.
    pub async fn contact(&self, id: Uuid) -> ApiResult<Option<Contact>> {
        if let Some((at, contact)) = self.users.lock().expect("cache lock").get(&id)
            && at.elapsed() < self.ttl
        {
            return Ok(contact.clone());
        }
        let found = absent_on_not_found(
            self.inner
                .clone()
                .get_user(GetUserRequest { id: id.to_string() })
                .await,
            "accounts",
        )?
        .and_then(Contact::from_pb);
        let mut users = self.users.lock().expect("cache lock");
        // Bounded: a full cache starts over rather than growing forever.
        if users.len() >= 10_000 {
            users.clear();
        }
        users.insert(id, (Instant::now(), found.clone()));
        Ok(found)
    }

    /// Active staff members (agents and admins).
    pub async fn active_staff(&self) -> ApiResult<Arc<Vec<Contact>>> {
        if let Some((at, staff)) = &*self.staff.lock().expect("cache lock")
            && at.elapsed() < self.ttl
        {
            return Ok(staff.clone());
        }
        let staff: Vec<Contact> = all_staff(&self.inner)
            .await?
            .into_iter()
            .filter(|u| u.active)
            .filter_map(Contact::from_pb)
            .collect();
        let staff = Arc::new(staff);
        *self.staff.lock().expect("cache lock") = Some((Instant::now(), staff.clone()));
        Ok(staff)
    }
}
