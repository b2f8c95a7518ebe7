//! Generated protobuf and gRPC code for Helpdesk and the platform contracts it
//! calls. One crate compiles every `.proto` so all services share one set of
//! types; [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Our own services and events (`proto/support/v1`).
pub mod support {
    pub mod v1 {
        tonic::include_proto!("support.v1");
    }
}

/// Other teams' contracts that Helpdesk calls (`proto/platform`).
pub mod platform {
    pub mod accounts {
        pub mod v1 {
            tonic::include_proto!("platform.accounts.v1");
        }
    }
    pub mod rides {
        pub mod v1 {
            tonic::include_proto!("platform.rides.v1");
        }
    }
}

/// `google.api` HTTP annotations and `google.rpc.Status`, generated because
/// our protos import them.
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
    /// `google.rpc.Status`: the per-item error of a batch call. The same
    /// bytes as the status a failed call carries in `grpc-status-details-bin`.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// Encoded `FileDescriptorSet` of every compiled proto, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("helpdesk_descriptor");

/// An event the ticket service publishes: its message type plus the routing
/// key on the `support.events` topic exchange (docs/events.md).
pub trait Event: prost::Message + prost::Name + Default {
    const ROUTING_KEY: &'static str;
}

macro_rules! routed {
    ($($event:ident => $key:literal),* $(,)?) => {
        $(impl Event for support::v1::$event {
            const ROUTING_KEY: &'static str = $key;
        })*
    };
}

routed! {
    TicketCreated => "ticket.created",
    TicketAssigned => "ticket.assigned",
    TicketStatusChanged => "ticket.status_changed",
    TicketPriorityChanged => "ticket.priority_changed",
    TicketCategoryChanged => "ticket.category_changed",
    MessagePosted => "ticket.message_posted",
    TicketRated => "ticket.rated",
    TicketEscalated => "ticket.escalated",
    TicketOverdue => "ticket.overdue",
    RatingRequested => "ticket.rating_requested",
    AttachmentAdded => "ticket.attachment_added",
    FaqCreated => "faq.created",
    FaqUpdated => "faq.updated",
    FaqPublished => "faq.published",
    FaqUnpublished => "faq.unpublished",
}
