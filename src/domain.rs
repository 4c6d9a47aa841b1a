//! Domain values, parsed once at the edge so that invalid states cannot be built.
//!
//! These are the words of DOMAIN.md: operators, contacts, queues, skills, risk levels.
//! The same names are used in the protocol (`proto/`), the database and the console.
//! Nothing here does IO.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The routing engine never reads a clock: time is an input.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as i64)
    }

    pub fn plus_ms(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, never negative.
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0).max(0)
    }

    /// The instant itself if it falls within [`CLIENT_YEARS`] (UTC), else why it is refused.
    pub fn within_client_years(self) -> Result<Timestamp, &'static str> {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(at) if CLIENT_YEARS.contains(&chrono::Datelike::year(&at)) => Ok(self),
            _ => Err(OUTSIDE_CLIENT_YEARS),
        }
    }
}

/// The years a client may name in a date or an instant (a report bound, a training day, an
/// on-call question, an expiry). Anything outside is refused at the edge with 422 `invalid`, so
/// calendar arithmetic never meets the ends of what chrono can represent.
pub const CLIENT_YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// Why a date or an instant outside [`CLIENT_YEARS`] is refused.
pub const OUTSIDE_CLIENT_YEARS: &str = "must fall in the years 2000 to 2200";

/// The date itself if it falls within [`CLIENT_YEARS`], else why it is refused.
pub fn date_within_client_years(day: chrono::NaiveDate) -> Result<chrono::NaiveDate, &'static str> {
    if CLIENT_YEARS.contains(&chrono::Datelike::year(&day)) {
        Ok(day)
    } else {
        Err(OUTSIDE_CLIENT_YEARS)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account id; operators, crisis leads and supervisors are accounts.
    OperatorId
);
id_type!(
    /// A contact (one conversation with a caller), assigned by the store when it is first made durable.
    ContactId
);

/// Validation failure of a domain value; the message is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: &'static str,
}

fn parse_slug(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidValue> {
    let ok = !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(InvalidValue {
            field,
            reason: "must be 1-40 characters of a-z, 0-9, '_' or '-'",
        })
    }
}

macro_rules! slug_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                parse_slug($field, raw, 40).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(raw: String) -> Result<Self, InvalidValue> {
                Self::parse(&raw)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_type!(
    /// A queue's stable id, e.g. `general`, `crisis`, `youth`.
    QueueId,
    "queue"
);
slug_type!(
    /// A routing skill, e.g. `crisis`, `youth`, `bereavement`.
    Skill,
    "skill"
);
slug_type!(
    /// A language code, e.g. `zh`, `en`.
    Language,
    "language"
);
slug_type!(
    /// A pre-chat topic chosen by the caller, e.g. `suicide`, `family`, `study`.
    Topic,
    "topic"
);

/// Skill proficiency, 1 (learning) to 5 (expert).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Proficiency(u8);

impl Proficiency {
    pub const MIN: Proficiency = Proficiency(1);
    pub const MAX: Proficiency = Proficiency(5);

    pub fn new(level: u8) -> Result<Self, InvalidValue> {
        if (1..=5).contains(&level) {
            Ok(Proficiency(level))
        } else {
            Err(InvalidValue {
                field: "proficiency",
                reason: "must be between 1 and 5",
            })
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}
impl TryFrom<u8> for Proficiency {
    type Error = InvalidValue;
    fn try_from(v: u8) -> Result<Self, InvalidValue> {
        Proficiency::new(v)
    }
}
impl From<Proficiency> for u8 {
    fn from(p: Proficiency) -> u8 {
        p.0
    }
}

/// Risk of a contact, lowest to highest. Imminent risk is routed strictly first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    #[default]
    None,
    Low,
    Medium,
    High,
    Imminent,
}

/// The three-colour early-warning level (三色预警) a risk level is shown as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskColour {
    Green,
    Yellow,
    Red,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 5] = [
        RiskLevel::None,
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::Imminent,
    ];

    pub fn colour(self) -> RiskColour {
        match self {
            RiskLevel::None | RiskLevel::Low => RiskColour::Green,
            RiskLevel::Medium => RiskColour::Yellow,
            RiskLevel::High | RiskLevel::Imminent => RiskColour::Red,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::None => "none",
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Imminent => "imminent",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or(InvalidValue {
                field: "risk",
                reason: "must be none, low, medium, high or imminent",
            })
    }

    /// Index 0..=4, for per-level tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a contact reaches the hotline.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Chat,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Voice => "voice",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "chat" => Ok(Channel::Chat),
            "voice" => Ok(Channel::Voice),
            _ => Err(InvalidValue {
                field: "channel",
                reason: "must be chat or voice",
            }),
        }
    }
}

/// What an account may do. One role per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    CrisisLead,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Operator,
        Role::CrisisLead,
        Role::Supervisor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::CrisisLead => "crisis_lead",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or(InvalidValue {
                field: "role",
                reason: "must be operator, crisis_lead, supervisor or admin",
            })
    }

    /// Whether this role takes contacts from queues (crisis leads also answer, supervisors may).
    pub fn takes_contacts(self) -> bool {
        matches!(self, Role::Operator | Role::CrisisLead | Role::Supervisor)
    }

    /// Supervisors and admins may monitor, whisper and barge; crisis leads may barge into any contact.
    pub fn may_join_contacts(self) -> bool {
        matches!(self, Role::CrisisLead | Role::Supervisor | Role::Admin)
    }
}

/// Why an operator is on break. `NoAnswer` is set by the router after too many missed offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    Meal,
    Training,
    Supervision,
    Personal,
    NoAnswer,
}

/// The presence an operator chooses. Wrap-up is not chosen: it follows the end of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Presence {
    Available,
    Break { reason: BreakReason },
    Offline,
}

/// How an extra participant takes part in a live contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinMode {
    /// Sees everything; nobody sees them.
    Monitor,
    /// Sees everything; writes to the operator only.
    Whisper,
    /// Sees everything; writes to everyone, the caller included.
    Barge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_reject_bad_input() {
        assert!(QueueId::parse("general").is_ok());
        assert!(QueueId::parse("").is_err());
        assert!(QueueId::parse("Gen eral").is_err());
        assert!(QueueId::parse(&"x".repeat(41)).is_err());
        let parsed: Result<Skill, _> = serde_json::from_str("\"DROP TABLE\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn risk_levels_order_and_colour() {
        assert!(RiskLevel::Imminent > RiskLevel::High);
        assert_eq!(RiskLevel::Medium.colour(), RiskColour::Yellow);
        assert_eq!(RiskLevel::parse("high"), Ok(RiskLevel::High));
        assert!(RiskLevel::parse("urgent").is_err());
        assert!(Proficiency::new(0).is_err() && Proficiency::new(6).is_err());
    }

    #[test]
    fn client_years_and_saturating_spans() {
        assert_eq!(Timestamp(i64::MAX).since(Timestamp(i64::MIN)), i64::MAX);
        assert_eq!(Timestamp(i64::MIN).since(Timestamp(i64::MAX)), 0);
        assert!(Timestamp(946_684_800_000).within_client_years().is_ok()); // 2000-01-01Z
        assert!(Timestamp(946_684_799_999).within_client_years().is_err());
        assert!(Timestamp(7_289_654_399_999).within_client_years().is_ok()); // 2200-12-31 end
        assert!(Timestamp(7_289_654_400_000).within_client_years().is_err()); // 2201-01-01Z
        assert!(Timestamp(i64::MAX).within_client_years().is_err());
        assert!(date_within_client_years(chrono::NaiveDate::MAX).is_err());
    }
}
