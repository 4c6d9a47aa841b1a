//! Quality, training and assessment: the figures supervisors run the service with.
//!
//! What it owns:
//! - **KPIs** computed from the event log ([`kpi`], pure) and reported over HTTP in JSON and CSV
//!   ([`reports`], [`http`]); live Prometheus metrics read from the same log ([`live`]).
//! - **Trends** by day, queue, risk level, note category and call type with week-over-week
//!   change, for reporting upward ([`trends`], pure).
//! - **Quality audits**: reproducible sampling (every crisis contact, plus a share of each
//!   operator's contacts per cycle), a scorecard defined as data, written feedback, the
//!   operator's acknowledgement ([`audits`]).
//! - **Training**: the "8+x" module catalogue, sessions, hours per person; **certifications**
//!   that grant a routing skill while valid and remove it when they lapse ([`training`]).
//! - **Assessment cycles**: per operator, KPIs + audits + training against the requirement, and
//!   the supervisor's sign-off, as JSON, CSV and a printable page ([`assessment`]).
//! - **The access log**: every read of a contact's transcript, notes or audit view is recorded
//!   ([`record_access`]) before the data is returned.
//!
//! What it must never do: change the event log, notes or transcripts (it only reads them);
//! decide routing (a certification changes an account's skills and tells the engine through
//! [`crate::admin::sync_account`], like an administrator would); put names or any personal data
//! in metric labels (operators are labelled by id, queues by id); return a contact's
//! records without recording the read.

pub mod assessment;
pub mod audits;
pub mod csv;
pub mod http;
pub mod kpi;
pub mod live;
pub mod period;
pub mod reports;
pub mod training;
pub mod trends;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::config::QualitySettings;
use crate::domain::{ContactId, Timestamp};
use crate::error::ApiError;
use crate::store::quality::{AccessKind, AuditFilter};
use audits::Scorecard;
use period::{Cycle, local_day};

/// The quality module's shared handles (one `AppState` field).
#[derive(Clone)]
pub struct Quality {
    pub scorecard: Arc<Scorecard>,
    /// Wakes the housekeeping task (a certification was granted: its expiry may be the next).
    wake: Arc<Notify>,
}

impl Quality {
    /// Loads the scorecard (`quality.scorecard_file`, or openCHS's) and checks the settings.
    pub fn load(settings: &QualitySettings) -> anyhow::Result<Quality> {
        let scorecard = match &settings.scorecard_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading scorecard {}", path.display()))?;
                serde_json::from_str(&text).context("parsing the scorecard")?
            }
            None => audits::default_scorecard(),
        };
        scorecard
            .check()
            .map_err(|e| anyhow::anyhow!("the scorecard is invalid: {e}"))?;
        if !period::CYCLE_MONTHS.contains(&settings.cycle_months) {
            anyhow::bail!("quality.cycle_months must be 1, 2, 3, 4, 6 or 12");
        }
        if !(0.0..=1.0).contains(&settings.audit_share) {
            anyhow::bail!("quality.audit_share must be between 0 and 1");
        }
        if settings.service_level_thresholds_ms.iter().any(|t| *t < 0) {
            anyhow::bail!("quality.service_level_thresholds_ms must not be negative");
        }
        Ok(Quality {
            scorecard: Arc::new(scorecard),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Tells the housekeeping task to look at certifications again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Starts the quality tasks (live metrics; certification lapses and audit sampling). They stop
/// with `shutdown` and are tracked by `state.tasks`.
pub fn spawn(state: &AppState, shutdown: &CancellationToken) {
    state
        .tasks
        .spawn(live::run(state.clone(), shutdown.clone()));
    state
        .tasks
        .spawn(housekeeping(state.clone(), shutdown.clone()));
}

/// Records that `user` read `what` of `contact`, before the data is returned: a read that cannot
/// be recorded is refused (confidentiality: who reads sensitive records must always be known).
pub async fn record_access(
    state: &AppState,
    user: &CurrentUser,
    contact: ContactId,
    what: AccessKind,
) -> Result<(), ApiError> {
    state
        .store
        .record_access(user.id(), contact, what, Timestamp::now())
        .await?;
    Ok(())
}

/// The cycle containing `at`.
pub fn cycle_at(settings: &QualitySettings, at: Timestamp) -> Cycle {
    Cycle::containing(local_day(settings.time_zone.0, at), settings.cycle_months)
}

/// Draws the audits of a cycle (idempotent: audits already drawn stay as they are). Returns how
/// many are new.
pub async fn sample_cycle(state: &AppState, cycle: Cycle) -> Result<u64, ApiError> {
    let q = &state.settings.quality;
    let period = cycle.period(q.time_zone.0);
    let now = Timestamp::now();
    let inputs = reports::load(&state.store, q, period, now).await?;
    let existing = state
        .store
        .audits(
            &AuditFilter {
                cycle: Some(cycle.id()),
                ..AuditFilter::default()
            },
            i64::MAX,
        )
        .await?
        .into_iter()
        .map(|a| (a.contact, a.operator))
        .collect();
    let audits = audits::sample(
        &inputs.digest,
        &inputs.incidents,
        &cycle.id(),
        q.audit_share,
        q.audit_min_per_operator,
        &existing,
    );
    let new = state.store.insert_audits(&audits, now).await?;
    if new > 0 {
        tracing::info!(cycle = %cycle.id(), new, "audits drawn");
    }
    Ok(new)
}

/// How often audits are drawn in the background.
const SAMPLE_EVERY: Duration = Duration::from_secs(3600);

/// Applies certification lapses (at each expiry and every `check_interval_ms`) and draws the
/// current cycle's audits every hour (and the previous cycle's during the first week of a new
/// one, so that its last contacts are drawn too).
async fn housekeeping(state: AppState, shutdown: CancellationToken) {
    let q = state.settings.quality.clone();
    let interval = Duration::from_millis(q.check_interval_ms.max(50));
    let mut next_sample = tokio::time::Instant::now() + interval;
    loop {
        let now = Timestamp::now();
        if let Err(e) = training::apply_lapses(&state, now).await {
            tracing::warn!(error = %e, "applying certification lapses failed; will retry");
        }
        if tokio::time::Instant::now() >= next_sample {
            next_sample = tokio::time::Instant::now() + SAMPLE_EVERY;
            let current = cycle_at(&q, now);
            let mut cycles = vec![current];
            let week_ago = cycle_at(&q, now.plus_ms(-7 * 86_400_000));
            if week_ago != current {
                cycles.push(week_ago);
            }
            for cycle in cycles {
                if let Err(e) = sample_cycle(&state, cycle).await {
                    tracing::warn!(error = %e, "drawing audits failed; will retry");
                }
            }
        }
        // Sleep until the next expiry, the next check, or a wake-up. An expiry already past
        // (its lapse failed and is retried) waits for the next check rather than spinning.
        let mut sleep =
            interval.min(next_sample.saturating_duration_since(tokio::time::Instant::now()));
        if let Ok(Some(next)) = state.store.next_certification_expiry().await
            && let Ok(ms) = u64::try_from(next.since(Timestamp::now()))
            && ms > 0
        {
            sleep = sleep.min(Duration::from_millis(ms));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.quality.wake.notified() => {}
            _ = tokio::time::sleep(sleep.max(Duration::from_millis(20))) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_configuration_reads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hotline.example.toml");
        let settings = crate::config::Settings::load(Some(&path)).unwrap();
        let q = &settings.quality;
        assert_eq!(q.service_level_thresholds_ms, [20_000, 60_000]);
        assert_eq!(q.certifications["crisis_certified"].proficiency.get(), 3);
        super::Quality::load(q).unwrap();
        let mut bad = q.clone();
        bad.cycle_months = 5;
        assert!(super::Quality::load(&bad).is_err());
    }
}
