//! `support.v1.AssignmentService`: protobuf in, use cases (`app`) and
//! storage reads, protobuf out. Each handler checks the caller's role and
//! validates the whole request (all field violations at once) before
//! anything is written. Nothing long runs here: a manual assignment is one
//! decision (the ticket service is told by the mover, which this handler
//! waits for within its deadline), and redistribution and rebalancing are
//! recorded as operations the caller polls.
//!
//! Who may do what: users nothing (PERMISSION_DENIED everywhere); staff,
//! admins and services read the roster, the queue and operations; staff and
//! admins assign by hand; admins update any agent and rebalance; a staff
//! member may update only their own availability.

pub mod convert;

use std::collections::HashMap;

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult, Violations},
    idempotency::parse_request_id,
    page_token::PageSize,
};
use helpdesk_proto::support::v1::{self as pb, assignment_service_server::AssignmentService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    app::{
        engine::{Engine, Target},
        mover::{self, Moved},
        operations as ops,
    },
    domain::{OperationKind, TicketRef, agent},
    storage::{agents, assignments, operations},
};

/// ListUnassignedTickets page size (AIP-158: above the maximum is coerced).
const UNASSIGNED_PAGE: PageSize = PageSize {
    default: 100,
    max: 500,
};

pub struct AssignmentApi {
    engine: Engine,
}

impl AssignmentApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn readers(caller: &Caller) -> ApiResult<()> {
    if caller.is_staff() || caller.is_service() {
        Ok(())
    } else {
        Err(ApiError::denied(
            "only staff and services may read assignments",
        ))
    }
}

fn uuid(raw: &str) -> Result<Uuid, String> {
    if raw.is_empty() {
        return Err("is required".into());
    }
    Uuid::parse_str(raw).map_err(|_| "must be a UUID".into())
}

/// What UpdateAgent asks for, validated.
#[derive(Default)]
struct AgentChange {
    available: Option<bool>,
    capacity: Option<i32>,
    skills: Option<Vec<String>>,
    tier: Option<crate::domain::Tier>,
}

impl AssignmentApi {
    async fn list_agents(&self, req: pb::ListAgentsRequest) -> ApiResult<pb::ListAgentsResponse> {
        let rows = agents::list(self.engine.pool(), req.show_inactive).await?;
        let redistributing: HashMap<Uuid, Uuid> = operations::redistributing(self.engine.pool())
            .await?
            .into_iter()
            .collect();
        Ok(pb::ListAgentsResponse {
            agents: rows
                .iter()
                .map(|a| convert::agent(a, redistributing.get(&a.account_id).copied()))
                .collect(),
        })
    }

    /// One agent as the API shows them.
    async fn shown(&self, id: Uuid) -> ApiResult<pb::Agent> {
        let agent = agents::get(self.engine.pool(), id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("agent {id}")))?;
        let redistribution = operations::redistributing(self.engine.pool())
            .await?
            .into_iter()
            .find_map(|(a, op)| (a == id).then_some(op));
        Ok(convert::agent(&agent, redistribution))
    }

    async fn get_agent(&self, req: pb::GetAgentRequest) -> ApiResult<pb::Agent> {
        let id = uuid(&req.id).map_err(|why| ApiError::invalid("id", why))?;
        self.shown(id).await
    }

    fn parse_update(req: &pb::UpdateAgentRequest) -> ApiResult<(Uuid, AgentChange)> {
        let Some(a) = req.agent.as_ref() else {
            return Err(ApiError::invalid("agent", "is required"));
        };
        let mut v = Violations::default();
        let id = v.take("agent.id", uuid(&a.id));
        let mut change = AgentChange::default();
        match req.update_mask.as_ref().map(|m| m.paths.as_slice()) {
            None | Some([]) => v.add("update_mask", "must name at least one field"),
            Some(paths) => {
                for path in paths {
                    match path.as_str() {
                        "available" => change.available = Some(a.available),
                        "capacity" => {
                            change.capacity = v.take("agent.capacity", agent::capacity(a.capacity))
                        }
                        "skills" => {
                            change.skills = v.take("agent.skills", agent::skills(&a.skills))
                        }
                        "tier" => change.tier = v.take("agent.tier", convert::tier_from_pb(a.tier)),
                        other => v.add(
                            "update_mask",
                            format!(
                                "{other:?} cannot be updated (available, capacity, skills, tier)"
                            ),
                        ),
                    }
                }
            }
        }
        Ok((v.into_value(id)?, change))
    }

    async fn update_agent(
        &self,
        caller: &Caller,
        req: pb::UpdateAgentRequest,
    ) -> ApiResult<pb::Agent> {
        if !caller.is_staff() {
            return Err(ApiError::denied("only staff may update agents"));
        }
        let (id, change) = Self::parse_update(&req)?;
        if !caller.is_admin() {
            let own = caller.account_id() == Some(id);
            let only_availability =
                change.capacity.is_none() && change.skills.is_none() && change.tier.is_none();
            if !(own && only_availability) {
                return Err(ApiError::denied(
                    "staff may change only their own availability",
                ));
            }
        }

        let mut tx = self.engine.begin().await?;
        let mut agent = agents::get(&mut *tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("agent {id}")))?;
        // Asked off shift (again): a repeated request finishes a
        // redistribution an outage interrupted.
        let off_shift = change.available == Some(false);
        if let Some(available) = change.available {
            if available && !agent.active {
                return Err(ApiError::precondition(format!(
                    "agent {id} is not active staff and cannot go on shift"
                )));
            }
            agent.available = available;
        }
        if let Some(capacity) = change.capacity {
            agent.capacity = capacity;
        }
        if let Some(skills) = change.skills {
            agent.skills = skills;
        }
        if let Some(tier) = change.tier {
            agent.tier = tier;
        }
        agent.updated_at = self.engine.clock().now();
        agents::save_settings(&mut tx, &agent).await?;
        // Off shift (again: a repeated request joins or restarts the
        // hand-over): their open tickets go to others, as an operation.
        let handing_on = off_shift && self.engine.policy().redistribute_on_unavailable;
        if handing_on {
            ops::start(&self.engine, &mut tx, OperationKind::Redistribute(id)).await?;
        }
        tx.commit().await?;
        tracing::info!(agent = %id, by = %caller.subject(), "agent updated");
        if handing_on {
            self.engine.wake_operations();
        }
        // On shift again, more room, new skills: the queue may move.
        self.engine.wake_drainer();
        self.shown(id).await
    }

    async fn list_unassigned(
        &self,
        req: pb::ListUnassignedTicketsRequest,
    ) -> ApiResult<pb::ListUnassignedTicketsResponse> {
        let limit = UNASSIGNED_PAGE
            .resolve(req.page_size)
            .map_err(|why| ApiError::invalid("page_size", why))?;
        let rows = assignments::waiting(self.engine.pool(), limit).await?;
        Ok(pb::ListUnassignedTicketsResponse {
            assignments: rows.iter().map(convert::assignment).collect(),
        })
    }

    async fn assign(
        &self,
        req: pb::AssignmentServiceAssignTicketRequest,
    ) -> ApiResult<pb::Assignment> {
        let mut v = Violations::default();
        let ticket = v.take("ticket_id", TicketRef::parse(&req.ticket_id));
        let target = match (req.assignee_id.is_empty(), req.auto) {
            (true, true) => Some(Target::Auto),
            (false, false) => v
                .take("assignee_id", uuid(&req.assignee_id))
                .map(Target::Agent),
            (true, false) => {
                v.add("assignee_id", "name an agent, or set auto");
                None
            }
            (false, true) => {
                v.add("assignee_id", "must be empty when auto is set");
                None
            }
        };
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        let (ticket, target) = v.into_value(ticket.zip(target))?;

        let (before, move_id) = self.engine.assign(&ticket, target, request_id).await?;
        // The decision is committed; tell the ticket service now, within
        // this call's deadline. Were the call dropped here, the mover would
        // finish the move all the same.
        let outcome = match move_id {
            Some(id) => match mover::perform(&self.engine, Some(id)).await {
                Ok(done) => done.into_iter().next().map(|(_, moved)| moved),
                Err(error) => {
                    tracing::warn!(%error, "move decided but not sent yet; the mover will");
                    None
                }
            },
            None => None,
        };
        match outcome {
            Some(Moved::TicketGone) => return Err(ApiError::precondition("ticket is closed")),
            Some(Moved::AgentRejected) => {
                return Err(ApiError::precondition(
                    "the ticket service refused this agent (not active staff)",
                ));
            }
            // Done; or not confirmed yet (the ticket service is away, or
            // another replica's mover has it): the decision stands and the
            // mover completes it.
            Some(Moved::Done | Moved::Pending) | None => {}
        }
        // The previous holder has room again.
        self.engine.wake_drainer();
        let saved = assignments::get(self.engine.pool(), before.ticket_id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        Ok(convert::assignment(&saved))
    }

    async fn rebalance(&self) -> ApiResult<pb::AssignmentOperation> {
        let mut tx = self.engine.begin().await?;
        let id = ops::start(&self.engine, &mut tx, OperationKind::Rebalance).await?;
        tx.commit().await?;
        self.engine.wake_operations();
        self.operation(id).await
    }

    async fn operation(&self, id: Uuid) -> ApiResult<pb::AssignmentOperation> {
        operations::get(self.engine.pool(), id)
            .await?
            .map(|o| convert::operation(&o))
            .ok_or_else(|| ApiError::not_found(format!("operation {id}")))
    }
}

#[tonic::async_trait]
impl AssignmentService for AssignmentApi {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        readers(&Caller::from_request(&request)?)?;
        Ok(Response::new(
            AssignmentApi::list_agents(self, request.into_inner()).await?,
        ))
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        readers(&Caller::from_request(&request)?)?;
        Ok(Response::new(
            AssignmentApi::get_agent(self, request.into_inner()).await?,
        ))
    }

    async fn update_agent(
        &self,
        request: Request<pb::UpdateAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            AssignmentApi::update_agent(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn list_unassigned_tickets(
        &self,
        request: Request<pb::ListUnassignedTicketsRequest>,
    ) -> Result<Response<pb::ListUnassignedTicketsResponse>, Status> {
        readers(&Caller::from_request(&request)?)?;
        Ok(Response::new(
            self.list_unassigned(request.into_inner()).await?,
        ))
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignmentServiceAssignTicketRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        if !Caller::from_request(&request)?.is_staff() {
            return Err(ApiError::denied("only staff may assign tickets").into());
        }
        Ok(Response::new(self.assign(request.into_inner()).await?))
    }

    async fn rebalance(
        &self,
        request: Request<pb::RebalanceRequest>,
    ) -> Result<Response<pb::AssignmentOperation>, Status> {
        if !Caller::from_request(&request)?.is_admin() {
            return Err(ApiError::denied("only admins may rebalance").into());
        }
        Ok(Response::new(AssignmentApi::rebalance(self).await?))
    }

    async fn get_assignment_operation(
        &self,
        request: Request<pb::GetAssignmentOperationRequest>,
    ) -> Result<Response<pb::AssignmentOperation>, Status> {
        readers(&Caller::from_request(&request)?)?;
        let id = uuid(&request.get_ref().id).map_err(|why| ApiError::invalid("id", why))?;
        Ok(Response::new(self.operation(id).await?))
    }
}
