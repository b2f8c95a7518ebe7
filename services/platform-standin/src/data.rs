//! The seed file and its validated form.
//!
//! The stand-in serves whatever a JSON file describes (`data/demo.json` by
//! default), so local runs and tests share fixed, documented ids. The file is
//! read into plain serde shapes, then checked once, at start (ids are UUIDs
//! and unique, times are RFC 3339), so a bad file fails loudly before serving
//! rather than as odd answers mid-test.
//!
//! Shape: `{"users": [User…], "rides": [Ride…]}`. A user has `id`,
//! `display_name`, `email`, `locale`, `push_tokens` (optional), `active`,
//! `is_staff` and `create_time`. A ride has `id`, `rider_id`, `driver_id`
//! (optional), `status` (`requested`, `in_progress`, `completed` or
//! `cancelled`), `requested_at`, and optional `started_at` / `completed_at`.

use std::{collections::HashSet, path::Path};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use helpdesk_proto::platform::rides::v1::RideStatus;
use serde::Deserialize;
use uuid::Uuid;

/// The demo data, embedded so the binary runs with no files at all.
pub const DEMO_JSON: &str = include_str!("../data/demo.json");

/// Everything the stand-in serves, validated. Immutable once loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoData {
    pub users: Vec<SeedUser>,
    pub rides: Vec<SeedRide>,
}

/// An account, as the accounts service would return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedUser {
    pub id: Uuid,
    pub display_name: String,
    pub email: String,
    pub locale: String,
    pub push_tokens: Vec<String>,
    pub active: bool,
    pub is_staff: bool,
    pub create_time: DateTime<Utc>,
}

/// A ride, as the rides service would return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedRide {
    pub id: Uuid,
    pub rider_id: Uuid,
    pub driver_id: Option<Uuid>,
    pub status: RideStatus,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl DemoData {
    /// The embedded demo data (`data/demo.json`).
    pub fn demo() -> Self {
        Self::from_json(DEMO_JSON).expect("the embedded demo.json is valid (unit-tested)")
    }

    /// Reads and validates a seed file.
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("reading seed file {}", path.display()))?;
        Self::from_json(&json).with_context(|| format!("seed file {}", path.display()))
    }

    /// Parses and validates seed JSON.
    pub fn from_json(json: &str) -> anyhow::Result<Self> {
        let file: SeedFile = serde_json::from_str(json).context("parsing seed JSON")?;

        let mut user_ids = HashSet::new();
        let mut users = Vec::with_capacity(file.users.len());
        for (i, raw) in file.users.into_iter().enumerate() {
            let at = |field: &str| format!("users[{i}].{field}");
            let id = uuid(&raw.id, &at("id"))?;
            if !user_ids.insert(id) {
                bail!("{}: duplicate user id {id}", at("id"));
            }
            users.push(SeedUser {
                id,
                display_name: raw.display_name,
                email: raw.email,
                locale: raw.locale,
                push_tokens: raw.push_tokens,
                active: raw.active,
                is_staff: raw.is_staff,
                create_time: time(&raw.create_time, &at("create_time"))?,
            });
        }

        let mut ride_ids = HashSet::new();
        let mut rides = Vec::with_capacity(file.rides.len());
        for (i, raw) in file.rides.into_iter().enumerate() {
            let at = |field: &str| format!("rides[{i}].{field}");
            let id = uuid(&raw.id, &at("id"))?;
            if !ride_ids.insert(id) {
                bail!("{}: duplicate ride id {id}", at("id"));
            }
            let ride = SeedRide {
                id,
                rider_id: uuid(&raw.rider_id, &at("rider_id"))?,
                driver_id: raw
                    .driver_id
                    .as_deref()
                    .map(|d| uuid(d, &at("driver_id")))
                    .transpose()?,
                status: raw.status.into(),
                requested_at: time(&raw.requested_at, &at("requested_at"))?,
                started_at: raw
                    .started_at
                    .as_deref()
                    .map(|t| time(t, &at("started_at")))
                    .transpose()?,
                completed_at: raw
                    .completed_at
                    .as_deref()
                    .map(|t| time(t, &at("completed_at")))
                    .transpose()?,
            };
            let times = [Some(ride.requested_at), ride.started_at, ride.completed_at];
            let present: Vec<_> = times.into_iter().flatten().collect();
            if present.windows(2).any(|w| w[0] > w[1]) {
                bail!("rides[{i}]: requested_at <= started_at <= completed_at must hold");
            }
            rides.push(ride);
        }

        Ok(Self { users, rides })
    }
}

fn uuid(raw: &str, field: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(raw).with_context(|| format!("{field}: {raw:?} is not a UUID"))
}

fn time(raw: &str, field: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{field}: {raw:?} is not an RFC 3339 time"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    users: Vec<RawUser>,
    #[serde(default)]
    rides: Vec<RawRide>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: String,
    display_name: String,
    email: String,
    locale: String,
    #[serde(default)]
    push_tokens: Vec<String>,
    active: bool,
    is_staff: bool,
    create_time: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRide {
    id: String,
    rider_id: String,
    #[serde(default)]
    driver_id: Option<String>,
    status: RawStatus,
    requested_at: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    completed_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawStatus {
    Requested,
    InProgress,
    Completed,
    Cancelled,
}

impl From<RawStatus> for RideStatus {
    fn from(status: RawStatus) -> Self {
        match status {
            RawStatus::Requested => RideStatus::Requested,
            RawStatus::InProgress => RideStatus::InProgress,
            RawStatus::Completed => RideStatus::Completed,
            RawStatus::Cancelled => RideStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    #[test]
    fn demo_file_loads_with_unique_documented_ids() {
        let data = DemoData::from_json(DEMO_JSON).expect("demo.json is valid");
        assert_eq!(data.users.len(), 12);
        assert_eq!(data.rides.len(), 4);

        let user_ids: HashSet<Uuid> = data.users.iter().map(|u| u.id).collect();
        let ride_ids: HashSet<Uuid> = data.rides.iter().map(|r| r.id).collect();
        assert_eq!(user_ids.len(), data.users.len(), "user ids are unique");
        assert_eq!(ride_ids.len(), data.rides.len(), "ride ids are unique");

        let staff: Vec<String> = data
            .users
            .iter()
            .filter(|u| u.is_staff)
            .map(|u| u.id.to_string())
            .collect();
        assert_eq!(
            staff,
            [
                "0b000000-0000-4000-8000-000000000001",
                "0b000000-0000-4000-8000-000000000002",
                "0b000000-0000-4000-8000-000000000003",
                "0b000000-0000-4000-8000-000000000004",
                "0c000000-0000-4000-8000-000000000001",
            ]
        );

        let carol = data
            .users
            .iter()
            .find(|u| u.id == id("0a000000-0000-4000-8000-000000000003"))
            .unwrap();
        assert!(!carol.active && !carol.is_staff);

        let dave_ride = data
            .rides
            .iter()
            .find(|r| r.id == id("0d000000-0000-4000-8000-000000000004"))
            .unwrap();
        assert_eq!(
            dave_ride.rider_id,
            id("0a000000-0000-4000-8000-000000000004")
        );
        assert_eq!(dave_ride.status, RideStatus::InProgress);
        // Every driver is an account too: drivers open tickets about their rides.
        assert!(data.rides.iter().all(|r| {
            r.driver_id.is_some_and(|d| {
                d.to_string().starts_with("0e000000-")
                    && data
                        .users
                        .iter()
                        .any(|u| u.id == d && u.active && !u.is_staff)
            })
        }));
    }

    #[test]
    fn rejects_bad_ids_duplicates_and_times() {
        let user = |id: &str, time: &str| {
            format!(
                r#"{{"id":"{id}","display_name":"X","email":"x@example.com","locale":"en-GB",
                    "active":true,"is_staff":false,"create_time":"{time}"}}"#
            )
        };
        let ok = user(
            "0a000000-0000-4000-8000-000000000001",
            "2024-01-01T00:00:00Z",
        );
        assert!(DemoData::from_json(&format!(r#"{{"users":[{ok}]}}"#)).is_ok());

        let bad_id = user("alice", "2024-01-01T00:00:00Z");
        let err = DemoData::from_json(&format!(r#"{{"users":[{bad_id}]}}"#)).unwrap_err();
        assert!(format!("{err:#}").contains("users[0].id"), "{err:#}");

        let dup = user(
            "0A000000-0000-4000-8000-000000000001",
            "2024-01-01T00:00:00Z",
        );
        let err = DemoData::from_json(&format!(r#"{{"users":[{ok},{dup}]}}"#)).unwrap_err();
        assert!(format!("{err:#}").contains("duplicate user id"), "{err:#}");

        let bad_time = user("0a000000-0000-4000-8000-000000000001", "yesterday");
        let err = DemoData::from_json(&format!(r#"{{"users":[{bad_time}]}}"#)).unwrap_err();
        assert!(format!("{err:#}").contains("create_time"), "{err:#}");

        let err = DemoData::from_json(r#"{"users":[],"rides":[{"id":"x"}]}"#).unwrap_err();
        assert!(format!("{err:#}").contains("parsing"), "{err:#}");
    }
}
