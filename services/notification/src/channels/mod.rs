//! The ways out of the building: SMTP email and the HTTP push gateway.

pub mod email;
pub mod push;
