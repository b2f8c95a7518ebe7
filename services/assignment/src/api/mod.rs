//! `support.v1.AssignmentService`: protobuf in, engine and storage calls,
//! protobuf out. Each handler checks the caller's role, validates the whole
//! request (all field violations at once), then makes its decision in one
//! transaction under the decision lock (`engine`): at most one ticket
//! service call per transaction. What a change makes possible (serving the
//! queue, redistributing) follows in transactions of its own.
//!
//! Who may do what: users nothing (PERMISSION_DENIED everywhere); staff,
//! admins and services read the roster and the queue; staff and admins
//! assign by hand; admins update any agent and rebalance; a staff member
//! may update only their own availability.

mod convert;

use helpdesk_kit::{
    auth::Caller,
    error::{ApiError, ApiResult, Violations},
};
use helpdesk_proto::support::v1::{self as pb, assignment_service_server::AssignmentService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::agent,
    engine::{Engine, Given},
    storage::{agents, assignments},
};

/// ListUnassignedTickets page size: default and maximum.
const UNASSIGNED_PAGE: (i64, i64) = (100, 500);

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

/// Whom a manual assignment goes to.
enum Target {
    Agent(Uuid),
    Auto,
}

impl AssignmentApi {
    async fn list_agents(&self, req: pb::ListAgentsRequest) -> ApiResult<pb::ListAgentsResponse> {
        let rows = agents::list(self.engine.pool(), req.show_inactive).await?;
        Ok(pb::ListAgentsResponse {
            agents: rows.iter().map(convert::agent).collect(),
        })
    }

    async fn get_agent(&self, req: pb::GetAgentRequest) -> ApiResult<pb::Agent> {
        let id = uuid(&req.id).map_err(|why| ApiError::invalid("id", why))?;
        agents::get(self.engine.pool(), id)
            .await?
            .map(|a| convert::agent(&a))
            .ok_or_else(|| ApiError::not_found(format!("agent {id}")))
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
        v.into_result()?;
        Ok((id.expect("validated"), change))
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
        tx.commit().await?;
        tracing::info!(agent = %id, by = %caller.subject(), "agent updated");
        if off_shift && self.engine.policy().redistribute_on_unavailable {
            self.engine.redistribute(&[id]).await?;
        }
        // On shift again, more room, new skills: the queue may move.
        self.engine.drain().await;
        let saved = agents::get(self.engine.pool(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("agent"))?;
        Ok(convert::agent(&saved))
    }

    async fn list_unassigned(
        &self,
        req: pb::ListUnassignedTicketsRequest,
    ) -> ApiResult<pb::ListUnassignedTicketsResponse> {
        let limit = match i64::from(req.page_size) {
            0 => UNASSIGNED_PAGE.0,
            n if (1..=UNASSIGNED_PAGE.1).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "page_size",
                    format!("must be between 1 and {}", UNASSIGNED_PAGE.1),
                ));
            }
        };
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
        let ticket = v.take("ticket_id", uuid(&req.ticket_id));
        let target = match (req.agent_id.is_empty(), req.auto) {
            (true, true) => Some(Target::Auto),
            (false, false) => v.take("agent_id", uuid(&req.agent_id)).map(Target::Agent),
            (true, false) => {
                v.add("agent_id", "name an agent, or set auto");
                None
            }
            (false, true) => {
                v.add("agent_id", "must be empty when auto is set");
                None
            }
        };
        v.into_result()?;
        let (Some(ticket), Some(target)) = (ticket, target) else {
            unreachable!("violations were empty");
        };

        let seed = Uuid::new_v4();
        let mut tx = self.engine.begin().await?;
        let a = assignments::get(&mut *tx, ticket)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("ticket {ticket}")))?;
        if !a.open {
            return Err(ApiError::precondition("ticket is resolved or closed"));
        }
        let outcome = match target {
            Target::Agent(id) => {
                let agent = agents::get(&mut *tx, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("agent {id}")))?;
                if !agent.active {
                    return Err(ApiError::precondition(format!(
                        "agent {id} is not active staff"
                    )));
                }
                if a.agent_id == Some(id) {
                    Given::Assigned
                } else {
                    self.engine.give(&mut tx, &a, id, seed).await?
                }
            }
            Target::Auto => loop {
                let Some(id) = agents::pick(&mut tx, &a.category_id, None, a.agent_id).await?
                else {
                    return Err(ApiError::precondition("no agent available"));
                };
                match self.engine.give(&mut tx, &a, id, seed).await? {
                    Given::AgentRejected => continue,
                    other => break other,
                }
            },
        };
        let saved = assignments::get(&mut *tx, ticket)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        tx.commit().await?;
        // The previous holder has room again.
        self.engine.wake_drainer();
        match outcome {
            Given::Assigned => Ok(convert::assignment(&saved)),
            Given::TicketClosed | Given::TicketMissing => {
                Err(ApiError::precondition("ticket is closed"))
            }
            Given::AgentRejected => Err(ApiError::precondition(
                "the ticket service refused this agent (not active staff)",
            )),
        }
    }

    async fn rebalance(&self) -> ApiResult<pb::RebalanceResponse> {
        let moved = self.engine.rebalance().await?;
        Ok(pb::RebalanceResponse { moved })
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
    ) -> Result<Response<pb::RebalanceResponse>, Status> {
        if !Caller::from_request(&request)?.is_admin() {
            return Err(ApiError::denied("only admins may rebalance").into());
        }
        Ok(Response::new(AssignmentApi::rebalance(self).await?))
    }
}
