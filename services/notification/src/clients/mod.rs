//! The services we call, translated into our terms at the edge.

pub mod accounts;
