//! A ticket as a caller names it: its UUID or its human id. docs/ticket-ids.md
//! promises every request taking a ticket id accepts either, and people read
//! human ids off a phone call, so their case does not matter. Every service
//! but the ticket service (which parses them into its own number type) takes
//! ticket references through this one parser.

use uuid::Uuid;

/// A parsed ticket reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketRef {
    /// The ticket's UUID.
    Id(Uuid),
    /// A human id in its canonical (uppercase) spelling.
    Human(String),
}

impl TicketRef {
    /// A UUID, or `TKT-` then k ≥ 3 letters then k digits, in any case.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("is required".into());
        }
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(TicketRef::Id(id));
        }
        let upper = raw.to_ascii_uppercase();
        let shaped = upper.strip_prefix("TKT-").is_some_and(|code| {
            // Bytes, not chars: a non-ASCII byte fails both tests below.
            let (code, k) = (code.as_bytes(), code.len() / 2);
            code.len() % 2 == 0
                && k >= 3
                && code[..k].iter().all(u8::is_ascii_uppercase)
                && code[k..].iter().all(u8::is_ascii_digit)
        });
        if shaped {
            Ok(TicketRef::Human(upper))
        } else {
            Err("must be a UUID or a ticket number like TKT-QHB407".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_human_ids_in_any_case() {
        let id = Uuid::new_v4();
        assert_eq!(TicketRef::parse(&id.to_string()), Ok(TicketRef::Id(id)));
        for raw in ["TKT-QHB407", "tkt-qhb407", "Tkt-QhB407"] {
            assert_eq!(
                TicketRef::parse(raw),
                Ok(TicketRef::Human("TKT-QHB407".into()))
            );
        }
        assert_eq!(
            TicketRef::parse("tkt-abcd1234"),
            Ok(TicketRef::Human("TKT-ABCD1234".into()))
        );
        for bad in [
            "",
            "TKT-",
            "TKT-AB12",
            "TKT-ABC12",
            "TKT-123ABC",
            "QHB407",
            "TKT-QHB40Ä",
            "TKT-QQQÄ123",
        ] {
            assert!(TicketRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
