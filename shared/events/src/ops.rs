//! `support.v1.OperationsService`: the outbox backlog for operators and
//! alerts (admins and services only), served by every producing service.

use helpdesk_proto::support::v1::{
    GetOutboxStatusRequest, OutboxStatus, operations_service_server::OperationsService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::outbox;
use helpdesk_kit::{auth::Caller, clock::to_timestamp, error::ApiError};

/// `support.v1.OperationsService`: the outbox backlog, for operators.
pub struct Operations {
    pool: PgPool,
}

impl Operations {
    /// Serves the backlog of the outbox in `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[tonic::async_trait]
impl OperationsService for Operations {
    async fn get_outbox_status(
        &self,
        request: Request<GetOutboxStatusRequest>,
    ) -> Result<Response<OutboxStatus>, Status> {
        let caller = Caller::from_request(&request)?;
        if !(caller.is_admin() || caller.is_service()) {
            return Err(
                ApiError::denied("only admins and services may read operations data").into(),
            );
        }
        let backlog = outbox::backlog(&self.pool).await.map_err(ApiError::from)?;
        Ok(Response::new(OutboxStatus {
            unsent: backlog.unsent,
            oldest_unsent_time: backlog.oldest.map(to_timestamp),
            oldest_unsent_age_ms: backlog.oldest_age_ms(),
        }))
    }
}
