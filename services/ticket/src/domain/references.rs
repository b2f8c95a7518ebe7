//! What the platform's accounts and rides services tell us about the ids a
//! ticket refers to, reduced to what our rules need.

use uuid::Uuid;

/// An account, as far as tickets care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub active: bool,
    pub is_staff: bool,
}

/// A ride's people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ride {
    pub rider_id: Option<Uuid>,
    pub driver_id: Option<Uuid>,
}

impl Ride {
    /// A ride belongs to a user as its rider or as its driver: drivers open
    /// tickets about the rides they drove ("Driver Issue" is theirs too).
    /// Its status does not matter: a cancelled ride has fees and no-shows.
    pub fn belongs_to(&self, user: Uuid) -> bool {
        self.rider_id == Some(user) || self.driver_id == Some(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ride_belongs_to_its_rider_and_its_driver_only() {
        let (rider, driver, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let ride = Ride {
            rider_id: Some(rider),
            driver_id: Some(driver),
        };
        assert!(ride.belongs_to(rider));
        assert!(ride.belongs_to(driver));
        assert!(!ride.belongs_to(other));
        let driverless = Ride {
            rider_id: Some(rider),
            driver_id: None,
        };
        assert!(!driverless.belongs_to(other));
    }
}
