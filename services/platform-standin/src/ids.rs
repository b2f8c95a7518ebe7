//! The ids of the demo data (`data/demo.json`), named once for docs and for
//! every service's tests.

pub const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
pub const BOB: &str = "0a000000-0000-4000-8000-000000000002";
/// A deactivated user.
pub const CAROL_INACTIVE: &str = "0a000000-0000-4000-8000-000000000003";
pub const DAVE: &str = "0a000000-0000-4000-8000-000000000004";
/// Drivers are accounts too; they open tickets about the rides they drove.
pub const DAN_DRIVER: &str = "0e000000-0000-4000-8000-000000000001";
pub const DINA_DRIVER: &str = "0e000000-0000-4000-8000-000000000002";
pub const DREW_DRIVER: &str = "0e000000-0000-4000-8000-000000000003";
pub const SAM: &str = "0b000000-0000-4000-8000-000000000001";
pub const SUE: &str = "0b000000-0000-4000-8000-000000000002";
pub const TOM: &str = "0b000000-0000-4000-8000-000000000003";
/// Former staff: inactive.
pub const UMA_INACTIVE_STAFF: &str = "0b000000-0000-4000-8000-000000000004";
pub const ADA: &str = "0c000000-0000-4000-8000-000000000001";
/// Driven by Dan.
pub const ALICE_RIDE: &str = "0d000000-0000-4000-8000-000000000001";
/// Cancelled (tickets about it are legitimate: fees, no-shows); driver Dina.
pub const ALICE_CANCELLED_RIDE: &str = "0d000000-0000-4000-8000-000000000002";
/// Driven by Drew.
pub const BOB_RIDE: &str = "0d000000-0000-4000-8000-000000000003";
/// In progress; driven by Dan.
pub const DAVE_RIDE: &str = "0d000000-0000-4000-8000-000000000004";
