//! Every query of the notification service, one module per table.

pub mod deliveries;
pub mod notifications;
pub mod outgoing;
pub mod preferences;
pub mod ticket_staff;
