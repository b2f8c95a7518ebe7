//! Clients of the services we call: the other teams' accounts and rides
//! services, which own the user and ride ids a ticket refers to. Kept apart
//! from `api/` (what we serve) so a handler reads as "parse, check with the
//! platform, write", and so a contract change of theirs touches one module.

use std::time::Duration;

use helpdesk_kit::{
    auth::AuthConfig,
    client::{ServiceToken, absent_on_not_found, channel},
    error::ApiResult,
};
use helpdesk_proto::platform::{
    accounts::v1::{GetUserRequest, User, accounts_service_client::AccountsServiceClient},
    rides::v1::{GetRideRequest, Ride as RideMessage, rides_service_client::RidesServiceClient},
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

use crate::domain::references::{Account, Ride};

/// The subject of the tokens we present to other services.
pub const SERVICE_SUBJECT: &str = "ticket-service";

#[derive(Clone)]
pub struct Platform {
    accounts: AccountsServiceClient<InterceptedService<Channel, ServiceToken>>,
    rides: RidesServiceClient<InterceptedService<Channel, ServiceToken>>,
}

impl Platform {
    pub fn new(
        accounts_addr: &str,
        rides_addr: &str,
        timeout: Duration,
        auth: &AuthConfig,
    ) -> anyhow::Result<Self> {
        let token = ServiceToken::new(auth, SERVICE_SUBJECT);
        Ok(Self {
            accounts: AccountsServiceClient::with_interceptor(
                channel(accounts_addr, timeout)?,
                token.clone(),
            ),
            rides: RidesServiceClient::with_interceptor(channel(rides_addr, timeout)?, token),
        })
    }

    /// The account `id`, or `None` when it does not exist.
    pub async fn account(&self, id: Uuid) -> ApiResult<Option<Account>> {
        let request = GetUserRequest { id: id.to_string() };
        let user = absent_on_not_found(self.accounts.clone().get_user(request).await, "accounts")?;
        Ok(user.map(|u: User| Account {
            active: u.active,
            is_staff: u.is_staff,
        }))
    }

    /// The ride `id`, or `None` when it does not exist.
    pub async fn ride(&self, id: Uuid) -> ApiResult<Option<Ride>> {
        let request = GetRideRequest { id: id.to_string() };
        let ride = absent_on_not_found(self.rides.clone().get_ride(request).await, "rides")?;
        // An id of theirs that is not a UUID names nobody of ours.
        Ok(ride.map(|r: RideMessage| Ride {
            rider_id: Uuid::parse_str(&r.rider_id).ok(),
            driver_id: Uuid::parse_str(&r.driver_id).ok(),
        }))
    }
}
