//! The words of paging, as types: incidents and their states, what raised them, every step of
//! their timeline, and the views staff consoles and the HTTP API show. Nothing here does IO.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{ContactId, OperatorId, Timestamp};

use super::policy::PolicyDefinition;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            JsonSchema,
        )]
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
    /// A crisis incident: one per contact while it is open.
    IncidentId
);
id_type!(
    /// A stored escalation policy.
    PolicyId
);
id_type!(
    /// A stored on-call schedule.
    ScheduleId
);

/// PagerDuty's incident states. An acknowledged incident goes back to `triggered` (paging from
/// level 1 again) when it is not resolved within the acknowledgement timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 3] = [
        IncidentState::Triggered,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Triggered => "triggered",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_open(self) -> bool {
        !matches!(self, IncidentState::Resolved)
    }
}

/// Crisis incidents are always `high`; `low` exists so that the vocabulary matches PagerDuty's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    High,
    Low,
}

/// What raised a crisis flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "operator", rename_all = "snake_case")]
pub enum FlagSource {
    /// The one-click crisis flag in the console (operator, supervisor or crisis lead).
    Operator(OperatorId),
    /// A note marked the contact as a crisis.
    Note(OperatorId),
    /// Routing saw imminent risk.
    Routing,
}

impl FlagSource {
    pub fn operator(self) -> Option<OperatorId> {
        match self {
            FlagSource::Operator(id) | FlagSource::Note(id) => Some(id),
            FlagSource::Routing => None,
        }
    }
}

/// A channel a page goes out on. Adding one means a new [`Notifier`](super::notify::Notifier).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PageChannel {
    /// A `page` frame on the person's staff console (WebSocket).
    Console,
    /// A signed JSON POST (a person's own address, e.g. an SMS gateway, or the global one).
    Webhook,
    /// An e-mail over SMTP.
    Email,
}

impl PageChannel {
    pub const ALL: [PageChannel; 3] = [
        PageChannel::Console,
        PageChannel::Webhook,
        PageChannel::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PageChannel::Console => "console",
            PageChannel::Webhook => "webhook",
            PageChannel::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageOutcome {
    /// The receiver confirmed it (HTTP 2xx, SMTP accepted).
    Delivered,
    /// Pushed to the person's console, if it is connected (consoles do not confirm).
    Sent,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed for good (out of attempts, or refused permanently): a dead letter.
    DeadLettered,
}

impl PageOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PageOutcome::Delivered => "delivered",
            PageOutcome::Sent => "sent",
            PageOutcome::Retrying => "retrying",
            PageOutcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Which emergency service was called (the 12356 hotline is linked with 110/119/120).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyService {
    /// 110, the police.
    #[serde(rename = "police_110")]
    Police110,
    /// 120, the ambulance service.
    #[serde(rename = "ambulance_120")]
    Ambulance120,
    /// 119, the fire and rescue service.
    #[serde(rename = "fire_119")]
    Fire119,
    Other,
}

/// Why a level was paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageCause {
    /// The incident was just triggered.
    Triggered,
    /// Nobody acknowledged the previous level in time.
    NotAcknowledged,
    /// Acknowledged, but not resolved within the acknowledgement timeout.
    AckTimeout,
}

/// The durable timers of an incident: one row of each kind, re-armed with a new generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Page the next level (nobody acknowledged in time).
    Escalate,
    /// Re-trigger (acknowledged but not resolved in time).
    AckTimeout,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Escalate => "escalate",
            TimerKind::AckTimeout => "ack_timeout",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [TimerKind::Escalate, TimerKind::AckTimeout]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// One step of an incident's timeline. Stored as JSON, append-only, shown in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// The incident was opened by a crisis flag.
    Triggered {
        source: FlagSource,
        reason: Option<String>,
    },
    /// Another crisis flag on the same contact while the incident is open.
    Flagged {
        source: FlagSource,
        reason: Option<String>,
    },
    /// No default escalation policy exists: the built-in fallback pages every crisis lead,
    /// then every supervisor.
    FallbackPolicy,
    /// A level of the policy was paged (1-based level and pass).
    Escalated {
        level: u32,
        cycle: u32,
        targets: Vec<OperatorId>,
        cause: PageCause,
    },
    /// A target of a level resolved to nobody (empty schedule, disabled account…).
    NobodyToPage {
        level: u32,
        detail: String,
    },
    /// Every level of every pass was paged and nobody acknowledged.
    PolicyExhausted {
        cycles: u32,
    },
    /// One delivery attempt of a page, with its outcome. `target` is absent for the global webhook.
    Paged {
        delivery: i64,
        target: Option<OperatorId>,
        channel: PageChannel,
        attempt: u32,
        outcome: PageOutcome,
        detail: Option<String>,
    },
    Acknowledged {
        by: OperatorId,
    },
    /// Acknowledged but not resolved within the timeout: paging starts again from level 1.
    Retriggered {
        ack_timeout_ms: u64,
    },
    /// The auditor fired a timer its worker had missed.
    OverdueTimerFired {
        timer: TimerKind,
        overdue_ms: i64,
    },
    /// Someone from the crisis team joined the live contact.
    JoinedContact {
        who: OperatorId,
    },
    EmergencyServicesContacted {
        service: EmergencyService,
        /// The service's own reference (incident or dispatch number), when given.
        reference: Option<String>,
        detail: Option<String>,
    },
    /// Emergency services (or whoever was sent) actually reached the person (988's rule).
    HelpConfirmed {
        how: String,
    },
    ReferralMade {
        service: String,
        reference: Option<String>,
    },
    Outcome {
        text: String,
    },
    Resolved {
        by: OperatorId,
        resolution: String,
        /// Set when emergency services were contacted but help was not confirmed.
        unconfirmed_reason: Option<String>,
    },
}

impl Step {
    /// The stored `kind` column (the same word as the JSON tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Triggered { .. } => "triggered",
            Step::Flagged { .. } => "flagged",
            Step::FallbackPolicy => "fallback_policy",
            Step::Escalated { .. } => "escalated",
            Step::NobodyToPage { .. } => "nobody_to_page",
            Step::PolicyExhausted { .. } => "policy_exhausted",
            Step::Paged { .. } => "paged",
            Step::Acknowledged { .. } => "acknowledged",
            Step::Retriggered { .. } => "retriggered",
            Step::OverdueTimerFired { .. } => "overdue_timer_fired",
            Step::JoinedContact { .. } => "joined_contact",
            Step::EmergencyServicesContacted { .. } => "emergency_services_contacted",
            Step::HelpConfirmed { .. } => "help_confirmed",
            Step::ReferralMade { .. } => "referral_made",
            Step::Outcome { .. } => "outcome",
            Step::Resolved { .. } => "resolved",
        }
    }
}

/// A stored timeline step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    pub id: i64,
    pub at: Timestamp,
    /// The account that did it; absent for what the server did by itself.
    pub actor: Option<OperatorId>,
    #[serde(flatten)]
    pub step: Step,
}

/// A step the crisis lead records (`POST /api/incidents/{id}/steps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepRequest {
    /// The caller of the request joined the contact.
    JoinedContact,
    EmergencyServicesContacted {
        service: EmergencyService,
        #[serde(default)]
        reference: Option<String>,
        /// Required when `service` is `other`: which service.
        #[serde(default)]
        detail: Option<String>,
    },
    /// How it was confirmed that help reached the person (e.g. "120 crew called back: on scene").
    HelpConfirmed {
        how: String,
    },
    ReferralMade {
        service: String,
        #[serde(default)]
        reference: Option<String>,
    },
    Outcome {
        text: String,
    },
}

/// Longest free text in a step (a reason, a resolution, an outcome).
pub const MAX_TEXT: usize = 2_000;
/// Longest reference number or service name.
pub const MAX_SHORT: usize = 200;

pub(crate) fn check_text(
    field: &str,
    text: &str,
    max: usize,
    required: bool,
) -> Result<(), String> {
    if required && text.trim().is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if text.chars().count() > max {
        return Err(format!("{field}: must be at most {max} characters"));
    }
    Ok(())
}

impl StepRequest {
    /// The timeline step this request records, `who` being the person asking.
    pub fn into_step(self, who: OperatorId) -> Result<Step, String> {
        let short = |field: &str, v: &Option<String>| match v {
            Some(v) => check_text(field, v, MAX_SHORT, true),
            None => Ok(()),
        };
        Ok(match self {
            StepRequest::JoinedContact => Step::JoinedContact { who },
            StepRequest::EmergencyServicesContacted {
                service,
                reference,
                detail,
            } => {
                short("reference", &reference)?;
                short("detail", &detail)?;
                if service == EmergencyService::Other && detail.is_none() {
                    return Err("detail: say which service was contacted".into());
                }
                Step::EmergencyServicesContacted {
                    service,
                    reference,
                    detail,
                }
            }
            StepRequest::HelpConfirmed { how } => {
                check_text("how", &how, MAX_TEXT, true)?;
                Step::HelpConfirmed { how }
            }
            StepRequest::ReferralMade { service, reference } => {
                check_text("service", &service, MAX_SHORT, true)?;
                short("reference", &reference)?;
                Step::ReferralMade { service, reference }
            }
            StepRequest::Outcome { text } => {
                check_text("text", &text, MAX_TEXT, true)?;
                Step::Outcome { text }
            }
        })
    }
}

/// A stored incident, with the policy as it was when the incident was triggered (a later edit of
/// the policy does not change how an incident already paging escalates).
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    pub contact: ContactId,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub source: FlagSource,
    pub reason: Option<String>,
    /// `None` for the built-in fallback policy.
    pub policy_id: Option<PolicyId>,
    pub policy: PolicyDefinition,
    /// The level paged last, 0-based.
    pub level: u32,
    /// The pass over the policy, 0-based (`repeat` more passes follow the first).
    pub cycle: u32,
    pub created_at: Timestamp,
    /// The last time it (re-)triggered.
    pub triggered_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<OperatorId>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<OperatorId>,
    pub resolution: Option<String>,
    /// Bumped by every change: writers compare-and-set on it.
    pub version: i64,
}

/// Which policy an incident follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyRef {
    /// Absent for the built-in fallback (no default policy was configured).
    pub id: Option<PolicyId>,
    pub name: String,
}

/// An incident as staff consoles and the HTTP API show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentView {
    pub id: IncidentId,
    pub contact: ContactId,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub source: FlagSource,
    pub reason: Option<String>,
    pub policy: PolicyRef,
    /// The level paged last, from 1.
    pub level: u32,
    /// The pass over the policy, from 1.
    pub cycle: u32,
    pub created_at: Timestamp,
    pub triggered_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<OperatorId>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<OperatorId>,
    pub resolution: Option<String>,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        IncidentView {
            id: i.id,
            contact: i.contact,
            state: i.state,
            urgency: i.urgency,
            source: i.source,
            reason: i.reason.clone(),
            policy: PolicyRef {
                id: i.policy_id,
                name: i.policy.name.clone(),
            },
            level: i.level + 1,
            cycle: i.cycle + 1,
            created_at: i.created_at,
            triggered_at: i.triggered_at,
            acknowledged_at: i.acknowledged_at,
            acknowledged_by: i.acknowledged_by,
            resolved_at: i.resolved_at,
            resolved_by: i.resolved_by,
            resolution: i.resolution.clone(),
        }
    }
}

/// An incident with its whole timeline (`GET /api/incidents/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentDetail {
    pub incident: IncidentView,
    pub timeline: Vec<TimelineEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_sources_and_steps_round_trip_as_json() {
        let steps = [
            Step::Triggered {
                source: FlagSource::Operator(OperatorId(3)),
                reason: Some("plan and means".into()),
            },
            Step::Flagged {
                source: FlagSource::Routing,
                reason: None,
            },
            Step::EmergencyServicesContacted {
                service: EmergencyService::Ambulance120,
                reference: Some("A-1".into()),
                detail: None,
            },
        ];
        for step in steps {
            let json = serde_json::to_value(&step).unwrap();
            assert_eq!(json["kind"], step.kind());
            assert_eq!(serde_json::from_value::<Step>(json).unwrap(), step);
        }
        let service = serde_json::to_value(EmergencyService::Ambulance120).unwrap();
        assert_eq!(service, "ambulance_120");
        let routing = serde_json::to_value(FlagSource::Routing).unwrap();
        assert_eq!(routing, serde_json::json!({"kind": "routing"}));
        let note = serde_json::to_value(FlagSource::Note(OperatorId(4))).unwrap();
        assert_eq!(note, serde_json::json!({"kind": "note", "operator": 4}));
    }

    #[test]
    fn step_requests_are_checked() {
        let who = OperatorId(1);
        let other = StepRequest::EmergencyServicesContacted {
            service: EmergencyService::Other,
            reference: None,
            detail: None,
        };
        assert!(other.into_step(who).unwrap_err().starts_with("detail"));
        let empty = StepRequest::HelpConfirmed { how: " ".into() };
        assert!(empty.into_step(who).is_err());
        let parsed: StepRequest =
            serde_json::from_str(r#"{"kind":"referral_made","service":"psychiatric ER"}"#).unwrap();
        assert!(matches!(
            parsed.into_step(who),
            Ok(Step::ReferralMade {
                reference: None,
                ..
            })
        ));
        assert!(
            serde_json::from_str::<StepRequest>(r#"{"kind":"outcome","text":"x","y":1}"#).is_err()
        );
    }
}
