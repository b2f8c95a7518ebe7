//! Who hears what: the rules of docs/notifications.md as one pure
//! function, so every row of the table is testable without a database.
//!
//! Nobody is told of their own action, with one exception: the user who
//! opens a ticket gets its receipt (`ticket_created`), as in the original.

use uuid::Uuid;

use super::kind::Kind;

/// Who staff-wide news goes to (`NEW_TICKET_AUDIENCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffAudience {
    /// Every active staff member (the original; fine for small teams).
    AllStaff,
    /// The configured triage group.
    Triage,
    /// Nobody until the ticket is assigned; then the assignee.
    AssigneeOnly,
}

impl std::str::FromStr for StaffAudience {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all_staff" => Ok(Self::AllStaff),
            "triage" => Ok(Self::Triage),
            "assignee_only" => Ok(Self::AssigneeOnly),
            other => Err(format!(
                "{other:?} is not all_staff, triage or assignee_only"
            )),
        }
    }
}

/// What happened, reduced to what decides the recipients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    Created,
    /// `to` is `None` when the ticket was unassigned.
    Assigned {
        to: Option<Uuid>,
    },
    Message {
        by_staff: bool,
        internal: bool,
    },
    Resolved,
    Closed,
    RatingRequested {
        reminder: bool,
    },
    Overdue,
    Escalated,
}

/// The ticket's people at the moment of the event.
#[derive(Clone, Debug)]
pub struct TicketPeople {
    pub user_id: Uuid,
    pub assignee_id: Option<Uuid>,
    /// Staff who were assigned or wrote on it before (internal notes).
    pub staff: Vec<Uuid>,
}

/// The configured groups.
#[derive(Clone, Debug)]
pub struct Groups<'a> {
    pub new_ticket: StaffAudience,
    /// Active staff (for [`StaffAudience::AllStaff`]).
    pub all_staff: &'a [Uuid],
    pub triage: &'a [Uuid],
    pub escalation: &'a [Uuid],
}

impl Groups<'_> {
    /// Who hears of unassigned work (new tickets, a user's reply nobody holds).
    fn unassigned_work(&self) -> &[Uuid] {
        match self.new_ticket {
            StaffAudience::AllStaff => self.all_staff,
            StaffAudience::Triage => self.triage,
            StaffAudience::AssigneeOnly => &[],
        }
    }
}

/// Whether [`recipients`] needs the staff directory for this fact: only
/// staff-wide news does, so most events cost no directory lookup.
pub fn needs_all_staff(fact: &Fact, people: &TicketPeople, audience: StaffAudience) -> bool {
    audience == StaffAudience::AllStaff
        && match fact {
            Fact::Created => true,
            Fact::Message {
                by_staff: false,
                internal: false,
            } => people.assignee_id.is_none(),
            _ => false,
        }
}

/// Each recipient once, with the kind they receive; the actor is left out.
pub fn recipients(
    fact: &Fact,
    people: &TicketPeople,
    actor: Option<Uuid>,
    groups: &Groups<'_>,
) -> Vec<(Uuid, Kind)> {
    let mut out: Vec<(Uuid, Kind)> = Vec::new();
    let add = |out: &mut Vec<(Uuid, Kind)>, ids: &[Uuid], kind: Kind| {
        for id in ids {
            if Some(*id) != actor && !out.iter().any(|(r, _)| r == id) {
                out.push((*id, kind));
            }
        }
    };
    let user = [people.user_id];
    let assignee: Vec<Uuid> = people.assignee_id.into_iter().collect();
    match fact {
        Fact::Created => {
            // The receipt goes to the user even when they opened it.
            out.push((people.user_id, Kind::TicketCreated));
            add(&mut out, groups.unassigned_work(), Kind::NewTicket);
        }
        Fact::Assigned { to: Some(agent) } => {
            add(&mut out, &[*agent], Kind::TicketAssigned);
            add(&mut out, &user, Kind::AgentAssigned);
        }
        Fact::Assigned { to: None } => {}
        Fact::Message { internal: true, .. } => {
            let mut staff = assignee.clone();
            staff.extend(&people.staff);
            add(&mut out, &staff, Kind::InternalNote);
        }
        Fact::Message { by_staff: true, .. } => add(&mut out, &user, Kind::StaffReply),
        Fact::Message {
            by_staff: false, ..
        } => {
            if assignee.is_empty() {
                add(&mut out, groups.unassigned_work(), Kind::UserReply);
            } else {
                add(&mut out, &assignee, Kind::UserReply);
            }
        }
        Fact::Resolved => add(&mut out, &user, Kind::TicketResolved),
        Fact::Closed => add(&mut out, &user, Kind::TicketClosed),
        Fact::RatingRequested { reminder: false } => add(&mut out, &user, Kind::RatingRequested),
        Fact::RatingRequested { reminder: true } => add(&mut out, &user, Kind::RatingReminder),
        Fact::Overdue | Fact::Escalated => {
            let kind = if *fact == Fact::Overdue {
                Kind::TicketOverdue
            } else {
                Kind::TicketEscalated
            };
            add(&mut out, &assignee, kind);
            add(&mut out, groups.escalation, kind);
        }
    }
    // A user never receives staff kinds (a staff member who owns a ticket
    // is its user there), and staff kinds never reach the ticket's user.
    out.retain(|(id, kind)| {
        (kind.audience() == super::kind::Audience::User) == (*id == people.user_id)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    const USER: u128 = 1;
    const AGENT: u128 = 10;
    const OTHER_AGENT: u128 = 11;
    const LEAD: u128 = 20;

    fn people(assignee: Option<u128>) -> TicketPeople {
        TicketPeople {
            user_id: id(USER),
            assignee_id: assignee.map(id),
            staff: vec![id(OTHER_AGENT)],
        }
    }

    fn run(
        fact: Fact,
        assignee: Option<u128>,
        actor: Option<u128>,
        audience: StaffAudience,
    ) -> Vec<(Uuid, Kind)> {
        let all = [id(AGENT), id(OTHER_AGENT), id(LEAD)];
        let groups = Groups {
            new_ticket: audience,
            all_staff: &all,
            triage: &[id(LEAD)],
            escalation: &[id(LEAD)],
        };
        recipients(&fact, &people(assignee), actor.map(id), &groups)
    }

    #[test]
    fn created_tells_the_user_and_the_configured_staff() {
        let all = run(Fact::Created, None, Some(USER), StaffAudience::AllStaff);
        assert_eq!(all[0], (id(USER), Kind::TicketCreated));
        assert_eq!(all.len(), 4);
        let triage = run(Fact::Created, None, Some(USER), StaffAudience::Triage);
        assert_eq!(
            triage,
            vec![(id(USER), Kind::TicketCreated), (id(LEAD), Kind::NewTicket)]
        );
        let nobody = run(Fact::Created, None, Some(USER), StaffAudience::AssigneeOnly);
        assert_eq!(nobody, vec![(id(USER), Kind::TicketCreated)]);
        // A staff member opening a ticket for a user is not told of it.
        let by_agent = run(Fact::Created, None, Some(AGENT), StaffAudience::AllStaff);
        assert!(!by_agent.iter().any(|(r, _)| *r == id(AGENT)));
    }

    #[test]
    fn assignment_tells_the_agent_and_the_user_but_not_a_self_assigner() {
        let fact = Fact::Assigned {
            to: Some(id(AGENT)),
        };
        assert_eq!(
            run(fact.clone(), Some(AGENT), None, StaffAudience::AllStaff),
            vec![
                (id(AGENT), Kind::TicketAssigned),
                (id(USER), Kind::AgentAssigned)
            ]
        );
        assert_eq!(
            run(fact, Some(AGENT), Some(AGENT), StaffAudience::AllStaff),
            vec![(id(USER), Kind::AgentAssigned)]
        );
        assert!(
            run(
                Fact::Assigned { to: None },
                None,
                None,
                StaffAudience::AllStaff
            )
            .is_empty()
        );
    }

    #[test]
    fn replies_go_to_the_other_side() {
        let staff_reply = Fact::Message {
            by_staff: true,
            internal: false,
        };
        assert_eq!(
            run(
                staff_reply,
                Some(AGENT),
                Some(AGENT),
                StaffAudience::AllStaff
            ),
            vec![(id(USER), Kind::StaffReply)]
        );
        let user_reply = Fact::Message {
            by_staff: false,
            internal: false,
        };
        assert_eq!(
            run(
                user_reply.clone(),
                Some(AGENT),
                Some(USER),
                StaffAudience::AllStaff
            ),
            vec![(id(AGENT), Kind::UserReply)]
        );
        // Nobody holds it: the triage audience hears.
        assert_eq!(
            run(user_reply, None, Some(USER), StaffAudience::Triage),
            vec![(id(LEAD), Kind::UserReply)]
        );
    }

    #[test]
    fn internal_notes_reach_other_staff_on_the_ticket_only() {
        let note = Fact::Message {
            by_staff: true,
            internal: true,
        };
        let got = run(note, Some(AGENT), Some(AGENT), StaffAudience::AllStaff);
        assert_eq!(got, vec![(id(OTHER_AGENT), Kind::InternalNote)]);
    }

    #[test]
    fn status_and_rating_go_to_the_user_unless_they_did_it() {
        assert_eq!(
            run(
                Fact::Resolved,
                Some(AGENT),
                Some(AGENT),
                StaffAudience::AllStaff
            ),
            vec![(id(USER), Kind::TicketResolved)]
        );
        assert!(
            run(
                Fact::Closed,
                Some(AGENT),
                Some(USER),
                StaffAudience::AllStaff
            )
            .is_empty()
        );
        assert_eq!(
            run(Fact::Closed, Some(AGENT), None, StaffAudience::AllStaff),
            vec![(id(USER), Kind::TicketClosed)]
        );
        assert_eq!(
            run(
                Fact::RatingRequested { reminder: true },
                None,
                None,
                StaffAudience::AllStaff
            ),
            vec![(id(USER), Kind::RatingReminder)]
        );
    }

    #[test]
    fn overdue_and_escalated_reach_the_agent_and_the_escalation_group_once() {
        let got = run(Fact::Escalated, Some(LEAD), None, StaffAudience::AllStaff);
        assert_eq!(got, vec![(id(LEAD), Kind::TicketEscalated)]);
        let got = run(Fact::Overdue, Some(AGENT), None, StaffAudience::AllStaff);
        assert_eq!(
            got,
            vec![
                (id(AGENT), Kind::TicketOverdue),
                (id(LEAD), Kind::TicketOverdue)
            ]
        );
    }
}
