//! Clients for the other teams' services we validate foreign ids against
//! (accounts, rides). One lazily connected HTTP/2 channel per dependency,
//! a deadline on every call, and a service token on every request.
//!
//! NOT_FOUND from them means "no such id" (`Ok(None)`); anything else that
//! fails (down, slow, refusing us) is UNAVAILABLE to our caller, who may
//! retry, because nothing was written.

use std::time::Duration;

use helpdesk_kit::{
    auth::{Minter, Role},
    error::{ApiError, ApiResult},
};
use helpdesk_proto::platform::{
    accounts::v1::{GetUserRequest, User, accounts_service_client::AccountsServiceClient},
    rides::v1::{GetRideRequest, Ride, rides_service_client::RidesServiceClient},
};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

/// The subject of the tokens we present to other services.
pub const SERVICE_SUBJECT: &str = "ticket-service";

#[derive(Clone)]
pub struct Platform {
    accounts: AccountsServiceClient<Channel>,
    rides: RidesServiceClient<Channel>,
    minter: Minter,
}

fn channel(addr: &str, timeout: Duration) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(addr.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Platform {
    pub fn new(
        accounts_addr: &str,
        rides_addr: &str,
        timeout: Duration,
        minter: Minter,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            accounts: AccountsServiceClient::new(channel(accounts_addr, timeout)?),
            rides: RidesServiceClient::new(channel(rides_addr, timeout)?),
            minter,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            self.minter.bearer(SERVICE_SUBJECT, Role::Service),
        );
        request
    }

    /// The account `id`, or `None` when it does not exist.
    pub async fn user(&self, id: Uuid) -> ApiResult<Option<User>> {
        let request = self.request(GetUserRequest { id: id.to_string() });
        absent_on_not_found(self.accounts.clone().get_user(request).await, "accounts")
    }

    /// The ride `id`, or `None` when it does not exist.
    pub async fn ride(&self, id: Uuid) -> ApiResult<Option<Ride>> {
        let request = self.request(GetRideRequest { id: id.to_string() });
        absent_on_not_found(self.rides.clone().get_ride(request).await, "rides")
    }
}

fn absent_on_not_found<T>(
    result: Result<tonic::Response<T>, tonic::Status>,
    service: &str,
) -> ApiResult<Option<T>> {
    match result {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => Ok(None),
        Err(status) => {
            tracing::warn!(service, code = ?status.code(), message = status.message(), "dependency call failed");
            Err(ApiError::Unavailable(format!(
                "{service} service unavailable ({:?}), retry later",
                status.code()
            )))
        }
    }
}
