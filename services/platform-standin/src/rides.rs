//! `platform.rides.v1.RidesService`, answered from the seed data.
//!
//! GetRide only, with the same error rules as the real service (NOT_FOUND for
//! an unknown id, INVALID_ARGUMENT for a non-UUID one), so Helpdesk can check
//! a ticket's ride reference without the rides team's deployment.

use std::collections::HashMap;

use helpdesk_kit::{
    clock::to_timestamp,
    error::{ApiError, ApiResult},
};
use helpdesk_proto::platform::rides::v1::{
    GetRideRequest, Ride, rides_service_server::RidesService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{Pace, data::DemoData, parse_id};

/// The rides half of the stand-in.
#[derive(Debug)]
pub struct Rides {
    rides: HashMap<Uuid, Ride>,
    pace: Pace,
}

impl Rides {
    pub fn new(data: &DemoData, pace: Pace) -> Self {
        let rides = data
            .rides
            .iter()
            .map(|r| {
                let ride = Ride {
                    id: r.id.to_string(),
                    rider_id: r.rider_id.to_string(),
                    driver_id: r.driver_id.map(|d| d.to_string()).unwrap_or_default(),
                    status: r.status.into(),
                    requested_at: Some(to_timestamp(r.requested_at)),
                    started_at: r.started_at.map(to_timestamp),
                    completed_at: r.completed_at.map(to_timestamp),
                };
                (r.id, ride)
            })
            .collect();
        Self { rides, pace }
    }

    fn get_ride(&self, request: &GetRideRequest) -> ApiResult<Ride> {
        let id = parse_id("id", &request.id)?;
        self.rides
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("ride {id}")))
    }
}

#[tonic::async_trait]
impl RidesService for Rides {
    async fn get_ride(&self, request: Request<GetRideRequest>) -> Result<Response<Ride>, Status> {
        self.pace.arrive().await;
        Ok(Response::new(Rides::get_ride(self, request.get_ref())?))
    }
}
