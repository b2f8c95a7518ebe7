//! The ticket domain: states, rules and validated values. It knows nothing
//! of gRPC or SQL; `api/` translates to it and `storage/` persists it.

pub mod attachment;
pub mod category;
pub mod commands;
pub mod faq;
pub mod jobs;
pub mod lookup;
pub mod references;
pub mod search;
pub mod sniff;
pub mod stats;
pub mod status;
pub mod ticket;
pub mod ticket_number;
pub mod values;

pub use category::Category;
pub use lookup::{ListFilter, TicketKey};
pub use status::{Priority, Status};
pub use ticket::{Change, DomainEvent, Message, Ticket};
pub use ticket_number::TicketNumber;
pub use values::{AccountId, CategoryDescription, CategoryId, CategoryName, Rating, Subject, Text};

#[cfg(test)]
mod tests {
    /// The layering rule, checked: a domain file that names gRPC, SQL or
    /// protobuf types fails here rather than in review.
    #[test]
    fn the_domain_knows_no_grpc_sql_or_protobuf() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/domain");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            for crate_name in ["tonic", "sqlx", "prost", "helpdesk_proto"] {
                assert!(
                    !source.contains(&format!("{crate_name}::")),
                    "{} uses {crate_name}",
                    path.display()
                );
            }
        }
    }
}
