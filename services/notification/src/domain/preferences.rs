//! Whether a kind goes out on a channel for one person: their own setting,
//! else their role's default; kinds configured mandatory ignore opt-outs.
//! In-app is always kept, so only email and push have settings.

use std::collections::{HashMap, HashSet};

use super::kind::{Audience, Channel, Kind};

/// One kind on one channel.
pub type Pair = (Kind, Channel);

/// The configured defaults and mandatory pairs.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Pairs off unless the person turns them on (`PREFERENCE_DEFAULTS_OFF`);
    /// every other pair is on by default.
    pub default_off: HashSet<Pair>,
    /// Pairs sent whatever the person chose (`MANDATORY_CHANNELS`).
    pub mandatory: HashSet<Pair>,
}

/// One resolved setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub kind: Kind,
    pub channel: Channel,
    pub enabled: bool,
    pub mandatory: bool,
}

impl Policy {
    /// Whether `pair` is sent, given the person's own choices.
    pub fn enabled(&self, pair: Pair, own: &HashMap<Pair, bool>) -> bool {
        self.mandatory.contains(&pair)
            || own
                .get(&pair)
                .copied()
                .unwrap_or(!self.default_off.contains(&pair))
    }

    /// Every setting a person with these audiences sees.
    pub fn settings(&self, audiences: &[Audience], own: &HashMap<Pair, bool>) -> Vec<Setting> {
        Kind::ALL
            .iter()
            .filter(|kind| audiences.contains(&kind.audience()))
            .flat_map(|kind| Channel::ALL.map(|channel| (*kind, channel)))
            .map(|pair| Setting {
                kind: pair.0,
                channel: pair.1,
                enabled: self.enabled(pair, own),
                mandatory: self.mandatory.contains(&pair),
            })
            .collect()
    }

    /// Parses `kind:channel` entries separated by commas (empty: none).
    pub fn parse_pairs(list: &str) -> Result<HashSet<Pair>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (kind, channel) = entry
                    .split_once(':')
                    .ok_or_else(|| format!("{entry:?} is not kind:channel"))?;
                Ok((
                    kind.parse().map_err(|e| format!("{entry:?}: {e}"))?,
                    channel.parse().map_err(|e| format!("{entry:?}: {e}"))?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_choice_beats_the_default_and_mandatory_beats_both() {
        let policy = Policy {
            default_off: Policy::parse_pairs("new_ticket:email").unwrap(),
            mandatory: Policy::parse_pairs("ticket_resolved:email").unwrap(),
        };
        let mut own = HashMap::new();
        assert!(!policy.enabled((Kind::NewTicket, Channel::Email), &own));
        assert!(policy.enabled((Kind::StaffReply, Channel::Email), &own));
        own.insert((Kind::NewTicket, Channel::Email), true);
        own.insert((Kind::StaffReply, Channel::Email), false);
        own.insert((Kind::TicketResolved, Channel::Email), false);
        assert!(policy.enabled((Kind::NewTicket, Channel::Email), &own));
        assert!(!policy.enabled((Kind::StaffReply, Channel::Email), &own));
        assert!(policy.enabled((Kind::TicketResolved, Channel::Email), &own));
    }

    #[test]
    fn settings_list_only_the_audiences_kinds() {
        let settings = Policy::default().settings(&[Audience::User], &HashMap::new());
        assert!(settings.iter().all(|s| s.kind.audience() == Audience::User));
        assert_eq!(settings.len(), 7 * 2);
    }

    #[test]
    fn bad_pairs_are_named() {
        let err = Policy::parse_pairs("new_ticket:sms").unwrap_err();
        assert!(err.contains("new_ticket:sms"), "{err}");
    }
}
