//! Rebalancing, as a pure rule: given the workloads of the agents on shift,
//! which single move brings them closer to even. The engine applies one
//! move at a time and asks again, so each step sees the real state.

use uuid::Uuid;

/// What rebalancing needs to know about one agent on shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub agent: Uuid,
    pub open_tickets: i32,
    pub capacity: i32,
}

/// The next move `(from, to)`: from the most loaded agent to the least
/// loaded one that still has room, while their workloads differ by more
/// than one. Ties go to the lowest id, so the plan is deterministic.
/// `None` when the loads are even (or nobody has room).
pub fn next_move(loads: &[Load]) -> Option<(Uuid, Uuid)> {
    let from = loads.iter().max_by(|a, b| {
        a.open_tickets
            .cmp(&b.open_tickets)
            .then(b.agent.cmp(&a.agent))
    })?;
    let to = loads
        .iter()
        .filter(|l| l.open_tickets < l.capacity && l.agent != from.agent)
        .min_by(|a, b| {
            a.open_tickets
                .cmp(&b.open_tickets)
                .then(a.agent.cmp(&b.agent))
        })?;
    (from.open_tickets - to.open_tickets > 1).then_some((from.agent, to.agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(n: u128, open_tickets: i32, capacity: i32) -> Load {
        Load {
            agent: Uuid::from_u128(n),
            open_tickets,
            capacity,
        }
    }

    /// Applies moves until none is left; returns the final loads and the count.
    fn settle(mut loads: Vec<Load>) -> (Vec<i32>, usize) {
        let mut moves = 0;
        while let Some((from, to)) = next_move(&loads) {
            loads
                .iter_mut()
                .find(|l| l.agent == from)
                .unwrap()
                .open_tickets -= 1;
            loads
                .iter_mut()
                .find(|l| l.agent == to)
                .unwrap()
                .open_tickets += 1;
            moves += 1;
            assert!(moves < 1000, "does not converge");
        }
        (loads.iter().map(|l| l.open_tickets).collect(), moves)
    }

    #[test]
    fn moves_from_most_to_least_loaded_until_within_one() {
        let (loads, moves) = settle(vec![load(1, 9, 20), load(2, 0, 20), load(3, 3, 20)]);
        assert_eq!(loads, vec![4, 4, 4]);
        assert_eq!(moves, 5);
        let (loads, moves) = settle(vec![load(1, 5, 20), load(2, 4, 20)]);
        assert_eq!((loads, moves), (vec![5, 4], 0));
    }

    #[test]
    fn never_fills_anyone_past_capacity() {
        let (loads, _) = settle(vec![load(1, 10, 20), load(2, 0, 2), load(3, 0, 20)]);
        assert_eq!(loads, vec![4, 2, 4]);
        assert_eq!(next_move(&[]), None);
        assert_eq!(next_move(&[load(1, 7, 7)]), None);
    }
}
