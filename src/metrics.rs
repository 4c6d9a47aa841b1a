//! The Prometheus registry. Labels are bounded (roles, states, queue ids, risk levels, outcomes) and
//! never carry personal data. Gauges that describe the floor are refreshed at scrape time from the
//! engine and the hub, so they cannot drift from the truth.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::routing::{Event, OperatorState};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub connections: IntGaugeVec,
    pub operators: IntGaugeVec,
    pub contacts_waiting: IntGaugeVec,
    pub oldest_wait_seconds: IntGaugeVec,
    pub offers: IntCounterVec,
    pub events: IntCounterVec,
    pub wait_seconds: HistogramVec,
    pub routing_seconds: HistogramVec,
    pub store_write_seconds: HistogramVec,
    pub store_failures: IntCounterVec,
    pub frames_rejected: IntCounterVec,
    /// Crisis incidents by state, refreshed by the pager after every change.
    pub incidents: IntGaugeVec,
    pub time_to_acknowledge_seconds: HistogramVec,
    /// Levels paged, by level (1-based; bounded by the policy's 10 levels).
    pub escalations: IntCounterVec,
    /// Page delivery attempts by channel and outcome.
    pub notifications: IntCounterVec,
    /// Timers the auditor fired because the worker had not, by kind.
    pub escalations_overdue_fixed: IntCounterVec,
    // Quality (src/quality/live.rs reads them from the event log). A contact is counted under
    // the queue it entered.
    /// Contacts that entered a queue.
    pub arrived: IntCounterVec,
    /// Per operator, labelled by account id only (bounded by the number of accounts).
    pub operator_answered: IntCounterVec,
    pub operator_completed: IntCounterVec,
    pub operator_handle_seconds: prometheus::CounterVec,
    /// Contacts answered (first connect only), by queue.
    pub answered: IntCounterVec,
    /// Contacts abandoned, by queue; `short` = "true" under `quality.short_abandon_ms`.
    pub abandoned: IntCounterVec,
    /// Today's (local day) service level by queue and threshold (seconds).
    pub service_level_ratio: GaugeVec,
    /// Queue wait of answered high- and imminent-risk contacts, by risk.
    pub high_risk_wait_seconds: HistogramVec,
    /// Certifications whose skill was removed, by cause (expired, revoked).
    pub certification_lapses: IntCounterVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let fast = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
        ];
        let m = Metrics {
            connections: gauge(
                &r,
                "hotline_connections",
                "Open WebSocket connections by role.",
                &["role"],
            ),
            operators: gauge(&r, "hotline_operators", "Operators by state.", &["state"]),
            contacts_waiting: gauge(
                &r,
                "hotline_contacts_waiting",
                "Contacts waiting, by queue and risk.",
                &["queue", "risk"],
            ),
            oldest_wait_seconds: gauge(
                &r,
                "hotline_oldest_wait_seconds",
                "Longest current wait, by queue.",
                &["queue"],
            ),
            offers: counter(
                &r,
                "hotline_offers_total",
                "Offers by outcome.",
                &["outcome"],
            ),
            events: counter(
                &r,
                "hotline_events_total",
                "Event-log entries by kind.",
                &["kind"],
            ),
            wait_seconds: histogram(
                &r,
                "hotline_wait_seconds",
                "Queue wait before each answer: from entering the queue, or, for a contact transferred or requeued, from when its last operator let it go.",
                &["queue"],
                vec![5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
            ),
            routing_seconds: histogram(
                &r,
                "hotline_routing_seconds",
                "Engine decision time per command batch.",
                &["op"],
                fast.clone(),
            ),
            store_write_seconds: histogram(
                &r,
                "hotline_store_write_seconds",
                "Durable write time.",
                &["what"],
                fast,
            ),
            store_failures: counter(
                &r,
                "hotline_store_failures_total",
                "Failed durable writes (retried).",
                &["what"],
            ),
            frames_rejected: counter(
                &r,
                "hotline_frames_rejected_total",
                "WebSocket frames refused, by code.",
                &["code"],
            ),
            incidents: gauge(
                &r,
                "hotline_incidents",
                "Crisis incidents by state.",
                &["state"],
            ),
            time_to_acknowledge_seconds: histogram(
                &r,
                "hotline_incident_time_to_acknowledge_seconds",
                "From trigger to acknowledgement.",
                &["urgency"],
                vec![5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0],
            ),
            escalations: counter(
                &r,
                "hotline_escalations_total",
                "Escalation levels paged, by level.",
                &["level"],
            ),
            notifications: counter(
                &r,
                "hotline_notifications_total",
                "Page delivery attempts by channel and outcome.",
                &["channel", "outcome"],
            ),
            escalations_overdue_fixed: counter(
                &r,
                "hotline_escalations_overdue_fixed_total",
                "Overdue paging timers the auditor fired, and crisis flags it raised (kind crisis_flag), by kind.",
                &["kind"],
            ),
            operator_answered: counter(
                &r,
                "hotline_operator_answered_total",
                "Contacts an operator answered (first connect), by operator id.",
                &["operator"],
            ),
            operator_completed: counter(
                &r,
                "hotline_operator_completed_total",
                "Contacts an operator completed (after wrap-up), by operator id.",
                &["operator"],
            ),
            operator_handle_seconds: {
                let c = prometheus::CounterVec::new(
                    Opts::new(
                        "hotline_operator_handle_seconds_total",
                        "Talk + wrap-up time of completed contacts, by operator id \
                         (average handle time = this / hotline_operator_completed_total).",
                    ),
                    &["operator"],
                )
                .expect("valid metric");
                r.register(Box::new(c.clone())).expect("unique metric");
                c
            },
            arrived: counter(
                &r,
                "hotline_arrived_total",
                "Contacts that entered a queue, by queue.",
                &["queue"],
            ),
            answered: counter(
                &r,
                "hotline_answered_total",
                "Contacts answered (first connect), by the queue they entered.",
                &["queue"],
            ),
            abandoned: counter(
                &r,
                "hotline_abandoned_total",
                "Contacts abandoned, by the queue they entered; short abandons apart.",
                &["queue", "short"],
            ),
            service_level_ratio: {
                let g = GaugeVec::new(
                    Opts::new("hotline_service_level_ratio", "Today's service level: answered within the threshold / (answered + abandoned - short abandoned)."),
                    &["queue", "threshold"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            high_risk_wait_seconds: histogram(
                &r,
                "hotline_high_risk_wait_seconds",
                "Queue wait of answered high- and imminent-risk contacts.",
                &["risk"],
                vec![5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0],
            ),
            certification_lapses: counter(
                &r,
                "hotline_certification_lapses_total",
                "Certifications whose skill was removed, by cause.",
                &["cause"],
            ),
            registry: r,
        };
        for cause in ["expired", "revoked"] {
            m.certification_lapses.with_label_values(&[cause]);
        }
        // Export every outcome from the start, so rates work before the first offer.
        for outcome in ["accepted", "rejected", "timed_out", "rescinded"] {
            m.offers.with_label_values(&[outcome]);
        }
        m
    }

    /// Counts what an event says about offers and waits.
    pub fn observe(&self, event: &Event) {
        self.events.with_label_values(&[event.kind()]).inc();
        match event {
            Event::Accept { .. } => self.offers.with_label_values(&["accepted"]).inc(),
            Event::Reject { .. } => self.offers.with_label_values(&["rejected"]).inc(),
            Event::OfferTimeout { .. } => self.offers.with_label_values(&["timed_out"]).inc(),
            Event::OfferRescinded { .. } => self.offers.with_label_values(&["rescinded"]).inc(),
            Event::Connect {
                queue, waited_ms, ..
            } => self
                .wait_seconds
                .with_label_values(&[queue.as_str()])
                .observe(*waited_ms as f64 / 1000.0),
            _ => {}
        }
    }

    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The label an operator state is counted under.
pub fn state_label(state: &OperatorState) -> &'static str {
    match state {
        OperatorState::Available => "available",
        OperatorState::Busy => "busy",
        OperatorState::WrapUp => "wrap_up",
        OperatorState::Break { .. } => "break",
        OperatorState::Away => "away",
        OperatorState::Offline => "offline",
    }
}
