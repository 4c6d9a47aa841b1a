//! Queue definitions as administrators configure them: routing settings for the engine plus what
//! callers see (name, opening hours, the closed message with alternative numbers).
//! Opening hours are evaluated here, outside the engine, with the current time as an input.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{QueueId, Timestamp};
use crate::routing::{QueueConfig, RelaxStep, SkillRequirement};

/// A queue as stored and as edited through the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueDefinition {
    pub id: QueueId,
    /// Display name shown to callers and operators.
    pub name: String,
    #[serde(default)]
    pub required_skills: Vec<SkillRequirement>,
    #[serde(default)]
    pub languages: Vec<crate::domain::Language>,
    #[serde(default)]
    pub relaxation: Vec<RelaxStep>,
    #[serde(default)]
    pub never_relax: bool,
    #[serde(default)]
    pub overflow_to: Option<QueueId>,
    #[serde(default)]
    pub max_wait_ms: Option<i64>,
    #[serde(default)]
    pub opening_hours: OpeningHours,
    /// Shown when the queue is closed, above the alternatives.
    #[serde(default = "default_closed_message")]
    pub closed_message: String,
    #[serde(default = "default_alternatives")]
    pub alternatives: Vec<Alternative>,
}

/// Another service a caller can reach when this queue is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Alternative {
    pub name: String,
    pub number: String,
}

/// When a queue takes new contacts. `always` is the 7×24 default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpeningHours {
    #[default]
    Always,
    /// Open every day from `open_minute` to `close_minute` (minutes after local midnight;
    /// close < open means the window runs past midnight), in a fixed UTC offset (Asia/Shanghai is +480).
    Daily {
        open_minute: u16,
        close_minute: u16,
        utc_offset_minutes: i16,
    },
}

impl OpeningHours {
    pub fn is_open(&self, now: Timestamp) -> bool {
        match *self {
            OpeningHours::Always => true,
            OpeningHours::Daily {
                open_minute,
                close_minute,
                utc_offset_minutes,
            } => {
                let local_min = (now.0 / 60_000 + i64::from(utc_offset_minutes)).rem_euclid(1440);
                let (open, close) = (i64::from(open_minute), i64::from(close_minute));
                if open == close {
                    true
                } else if open < close {
                    (open..close).contains(&local_min)
                } else {
                    local_min >= open || local_min < close
                }
            }
        }
    }
}

fn default_closed_message() -> String {
    "本热线现在不在服务时间。如果你正处于危险中，请拨打下面的电话。\n\
     This line is closed now. If you are in danger, please call one of these numbers."
        .into()
}

fn default_alternatives() -> Vec<Alternative> {
    [
        ("心理援助热线 Psychological assistance hotline", "12356"),
        ("报警 Police", "110"),
        ("急救 Ambulance", "120"),
    ]
    .into_iter()
    .map(|(name, number)| Alternative {
        name: name.into(),
        number: number.into(),
    })
    .collect()
}

impl QueueDefinition {
    /// A 7×24 queue with no skill requirements.
    pub fn open(id: QueueId, name: &str) -> Self {
        QueueDefinition {
            id,
            name: name.into(),
            required_skills: Vec::new(),
            languages: Vec::new(),
            relaxation: Vec::new(),
            never_relax: false,
            overflow_to: None,
            max_wait_ms: None,
            opening_hours: OpeningHours::Always,
            closed_message: default_closed_message(),
            alternatives: default_alternatives(),
        }
    }

    /// What an administrator may not save: a caller turned away by a closed queue (or in danger
    /// while waiting) must always be shown numbers to call, and opening minutes must lie within
    /// a day. The message names the field, as `ApiError::Invalid` expects.
    pub fn check(&self) -> Result<(), String> {
        if self.alternatives.is_empty() {
            return Err("alternatives: list at least one number callers can turn to".into());
        }
        if self
            .alternatives
            .iter()
            .any(|a| a.name.trim().is_empty() || a.number.trim().is_empty())
        {
            return Err("alternatives: every entry needs a name and a number".into());
        }
        if let OpeningHours::Daily {
            open_minute,
            close_minute,
            utc_offset_minutes,
        } = self.opening_hours
        {
            if open_minute >= 1440 || close_minute > 1440 {
                return Err(
                    "opening_hours: open_minute must be 0 to 1439, close_minute 0 to 1440".into(),
                );
            }
            if !(-720..=840).contains(&utc_offset_minutes) {
                return Err("opening_hours: utc_offset_minutes must be -720 to 840".into());
            }
        }
        Ok(())
    }

    /// What the routing engine needs of this queue.
    pub fn routing(&self) -> QueueConfig {
        QueueConfig {
            id: self.id.clone(),
            required_skills: self.required_skills.clone(),
            languages: self.languages.clone(),
            relaxation: self.relaxation.clone(),
            never_relax: self.never_relax,
            overflow_to: self.overflow_to.clone(),
            max_wait_ms: self.max_wait_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_hours_wrap_past_midnight() {
        // 20:00–08:00 Beijing time.
        let h = OpeningHours::Daily {
            open_minute: 20 * 60,
            close_minute: 8 * 60,
            utc_offset_minutes: 480,
        };
        let at_utc = |hour: i64| Timestamp(hour * 3_600_000);
        assert!(h.is_open(at_utc(13))); // 21:00 local
        assert!(h.is_open(at_utc(23))); // 07:00 local
        assert!(!h.is_open(at_utc(4))); // 12:00 local
        assert!(OpeningHours::Always.is_open(at_utc(4)));
    }
}
