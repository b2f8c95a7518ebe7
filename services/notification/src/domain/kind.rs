//! What a notification is about ([`Kind`]) and how it travels
//! ([`Channel`]). Stored as their snake_case names; the API translates to
//! the protobuf enums at the edge.

use std::{fmt, str::FromStr};

/// Who a kind is addressed to: it decides the role defaults and which
/// kinds a person's preferences list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The ticket's owner.
    User,
    /// Agents and admins.
    Staff,
}

macro_rules! kinds {
    ($($variant:ident => $name:literal, $audience:ident;)*) => {
        /// One kind of notification; each has its own templates.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind { $($variant),* }

        impl Kind {
            /// Every kind, in a stable order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The stored and template name (`ticket_created`).
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $name),* }
            }

            /// Whom this kind is for.
            pub fn audience(self) -> Audience {
                match self { $(Kind::$variant => Audience::$audience),* }
            }
        }

        impl FromStr for Kind {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok(Kind::$variant),)*
                    _ => Err(UnknownName(s.to_owned())),
                }
            }
        }
    };
}

kinds! {
    TicketCreated => "ticket_created", User;
    NewTicket => "new_ticket", Staff;
    TicketAssigned => "ticket_assigned", Staff;
    AgentAssigned => "agent_assigned", User;
    StaffReply => "staff_reply", User;
    UserReply => "user_reply", Staff;
    InternalNote => "internal_note", Staff;
    TicketResolved => "ticket_resolved", User;
    TicketClosed => "ticket_closed", User;
    RatingRequested => "rating_requested", User;
    RatingReminder => "rating_reminder", User;
    TicketOverdue => "ticket_overdue", Staff;
    TicketEscalated => "ticket_escalated", Staff;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel that sends outside the app (in-app is always kept, so it has
/// no setting and no delivery row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Push,
}

impl Channel {
    /// Both sending channels.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Push];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Push => "push",
        }
    }

    /// The channel's bit in a notification's `declined` set (storage).
    pub fn bit(self) -> i16 {
        match self {
            Channel::Email => 1,
            Channel::Push => 2,
        }
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "email" => Ok(Channel::Email),
            "push" => Ok(Channel::Push),
            _ => Err(UnknownName(s.to_owned())),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored or configured name that is no kind or channel.
#[derive(Debug, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), *kind);
        }
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>().unwrap(), channel);
        }
        assert!("ticket_creatd".parse::<Kind>().is_err());
    }
}
