//! Assessment cycles (quarterly by default): per operator, the cycle's KPIs, the average audit
//! score and training against the requirement (≥ 4 systematic trainings a year, pro-rated per
//! cycle) give an outcome — meets, needs improvement, not eligible — that a supervisor signs off.
//! Exported as CSV and as a printable HTML page (the assessment form).
//!
//! Once signed off, an operator's assessment *is* the signed form: every view (JSON, CSV, the
//! printable page) shows the figures as they were when signed ([`as_signed`]), never figures
//! that were not signed, and lists apart what the data now gives differently (a contact
//! completed or an audit scored since, a training recorded late…). An audit score that was
//! signed cannot be changed (the store refuses it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kpi::Kpis;
use super::training::TrainingSummary;
use crate::domain::{OperatorId, Role};
use crate::store::quality::SignOff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Meets,
    NeedsImprovement,
    /// Too little work in the cycle to assess (new, on leave…).
    NotEligible,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Meets => "meets",
            Outcome::NeedsImprovement => "needs_improvement",
            Outcome::NotEligible => "not_eligible",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Outcome::Meets,
            Outcome::NeedsImprovement,
            Outcome::NotEligible,
        ]
        .into_iter()
        .find(|o| o.as_str() == raw)
    }
}

/// The rules an assessment applies (from `quality` settings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rules {
    /// Systematic trainings required in this cycle.
    pub trainings_required: u32,
    pub audit_pass_percent: f64,
    pub min_contacts: u64,
}

/// Systematic trainings a cycle of `months` months requires: the yearly number pro-rated and
/// rounded up (4 a year → 1 a quarter).
pub fn trainings_required(per_year: u32, months: u32) -> u32 {
    (per_year * months).div_ceil(12)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditSummary {
    /// Scored or acknowledged audits of the cycle.
    pub scored: u64,
    pub pending: u64,
    pub average_percent: Option<f64>,
}

/// One operator's assessment for one cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorAssessment {
    pub operator: OperatorId,
    pub name: String,
    pub role: Role,
    pub kpis: Kpis,
    pub audits: AuditSummary,
    /// Training in the cycle.
    pub training: TrainingSummary,
    /// Training in the calendar year up to the end of the cycle.
    pub training_year: TrainingSummary,
    /// Certifications held at the end of the cycle (or now, if earlier): one revoked or expired
    /// after that still counts.
    pub certifications: Vec<String>,
    pub computed: Outcome,
    /// Why the outcome is not `meets`.
    pub reasons: Vec<String>,
    pub sign_off: Option<SignOff>,
    /// Signed off: the figures above are those signed; these are the figures the data now
    /// gives differently (empty when nothing changed, and before the sign-off).
    pub changed_since_sign_off: Vec<FigureChange>,
}

/// A figure of a signed assessment that the data now gives differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FigureChange {
    /// Where it is in the assessment, e.g. `audits.average_percent` or `kpis.completed`.
    pub figure: String,
    /// As signed (empty for none).
    pub signed: String,
    /// As the data gives it now (empty for none).
    pub now: String,
}

/// The figures of an assessment that a sign-off keeps and that are compared with the data.
const FIGURES: [&str; 6] = [
    "kpis",
    "audits",
    "training",
    "training_year",
    "certifications",
    "computed",
];

/// What a supervisor signs: the assessment as computed, without a sign-off.
pub fn figures_to_sign(assessment: &OperatorAssessment) -> Value {
    let mut unsigned = assessment.clone();
    unsigned.sign_off = None;
    unsigned.changed_since_sign_off.clear();
    serde_json::to_value(&unsigned).unwrap_or_default()
}

/// A signed-off operator's assessment: the figures of `sign_off`, with the differences from
/// `computed` (the same assessment computed from the data now). A figure the signed form does
/// not have (added to the assessment after it was signed) is taken from `computed`. If the
/// signed figures cannot be read at all, the computed ones are shown and the change list says
/// so, rather than passing them off as signed.
pub fn as_signed(computed: OperatorAssessment, sign_off: SignOff) -> OperatorAssessment {
    let now = figures_to_sign(&computed);
    let mut merged = now.clone();
    overlay(&mut merged, &sign_off.figures);
    match serde_json::from_value::<OperatorAssessment>(merged) {
        Ok(mut signed) => {
            let mut changes = Vec::new();
            for figure in FIGURES {
                if let Some(was) = sign_off.figures.get(figure) {
                    differences(figure, was, &now[figure], &mut changes);
                }
            }
            signed.operator = computed.operator;
            signed.sign_off = Some(sign_off);
            signed.changed_since_sign_off = changes;
            signed
        }
        Err(e) => {
            tracing::error!(
                operator = %computed.operator,
                cycle = %sign_off.cycle,
                error = %e,
                "the signed assessment figures cannot be read; showing the computed ones"
            );
            OperatorAssessment {
                sign_off: Some(sign_off),
                changed_since_sign_off: vec![FigureChange {
                    figure: "*".into(),
                    signed: "unreadable".into(),
                    now: "shown".into(),
                }],
                ..computed
            }
        }
    }
}

/// Writes `over`'s fields onto `base`, object by object.
fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) => overlay(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The same figure (numbers equal to within rounding: the signed form went through JSON).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (x, y) => x == y,
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => items
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The leaves where `was` and `now` differ, by path.
fn differences(path: &str, was: &Value, now: &Value, out: &mut Vec<FigureChange>) {
    match (was, now) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                let absent = Value::Null;
                differences(
                    &format!("{path}.{key}"),
                    value,
                    y.get(key).unwrap_or(&absent),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y))
            if x.len() == y.len() && x.iter().all(|i| i.is_object()) =>
        {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}.{i}"), x, y, out);
            }
        }
        (x, y) if !same(x, y) => out.push(FigureChange {
            figure: path.to_owned(),
            signed: shown(x),
            now: shown(y),
        }),
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleAssessment {
    pub cycle: String,
    pub first_day: String,
    pub last_day: String,
    pub time_zone: String,
    pub rules: Rules,
    pub operators: Vec<OperatorAssessment>,
}

/// The outcome the rules give, and why.
pub fn assess(
    completed: u64,
    audits: &AuditSummary,
    training: &TrainingSummary,
    rules: &Rules,
) -> (Outcome, Vec<String>) {
    if completed < rules.min_contacts {
        return (
            Outcome::NotEligible,
            vec![format!(
                "handled {completed} contact(s) in the cycle, fewer than {}",
                rules.min_contacts
            )],
        );
    }
    let mut reasons = Vec::new();
    if training.systematic_sessions < u64::from(rules.trainings_required) {
        reasons.push(format!(
            "attended {} systematic training(s), {} required",
            training.systematic_sessions, rules.trainings_required
        ));
    }
    match audits.average_percent {
        None => reasons.push("no scored audit in the cycle".into()),
        Some(p) if p < rules.audit_pass_percent => reasons.push(format!(
            "average audit score {p:.1} % is below {:.1} %",
            rules.audit_pass_percent
        )),
        Some(_) => {}
    }
    if reasons.is_empty() {
        (Outcome::Meets, reasons)
    } else {
        (Outcome::NeedsImprovement, reasons)
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}")).unwrap_or_default()
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_default()
}

/// The changes since the sign-off on one line: `figure: signed → now; …`.
fn changes(a: &OperatorAssessment) -> String {
    a.changed_since_sign_off
        .iter()
        .map(|c| format!("{}: {} → {}", c.figure, c.signed, c.now))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The CSV header and rows of a cycle's assessment (a signed-off operator's row has the figures
/// signed).
pub fn csv(report: &CycleAssessment) -> String {
    let tz: chrono_tz::Tz = report
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let mut out = super::csv::Writer::new(&[
        "cycle",
        "operator",
        "name",
        "role",
        "answered",
        "completed",
        "asa_seconds",
        "aht_seconds",
        "occupancy_percent",
        "audits_scored",
        "audit_average_percent",
        "systematic_trainings",
        "trainings_required",
        "training_hours",
        "certified_hours",
        "year_training_hours",
        "certifications",
        "computed",
        "reasons",
        "signed_outcome",
        "signed_by",
        "signed_at",
        "comment",
        "changed_since_sign_off",
    ]);
    for a in &report.operators {
        let sign = a.sign_off.as_ref();
        out.row(&[
            report.cycle.clone(),
            a.operator.to_string(),
            a.name.clone(),
            a.role.as_str().into(),
            a.kpis.answered.to_string(),
            a.kpis.completed.to_string(),
            opt(a.kpis.asa_seconds, 1),
            opt(a.kpis.aht_seconds, 1),
            percent(a.kpis.occupancy.as_ref().and_then(|o| o.ratio)),
            a.audits.scored.to_string(),
            opt(a.audits.average_percent, 1),
            a.training.systematic_sessions.to_string(),
            report.rules.trainings_required.to_string(),
            a.training.hours.to_string(),
            a.training.certified_hours.to_string(),
            a.training_year.hours.to_string(),
            a.certifications.join(" "),
            a.computed.as_str().into(),
            a.reasons.join("; "),
            sign.map(|s| s.outcome.clone()).unwrap_or_default(),
            sign.map(|s| s.signed_by.to_string()).unwrap_or_default(),
            sign.map(|s| super::period::local_time(tz, s.signed_at))
                .unwrap_or_default(),
            sign.map(|s| s.comment.clone()).unwrap_or_default(),
            changes(a),
        ]);
    }
    out.finish()
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "meets" => "达标 Meets",
        "needs_improvement" => "待改进 Needs improvement",
        "not_eligible" => "不参评 Not eligible",
        _ => "",
    }
}

/// A printable page: one table for the cycle, then one form per operator with a signature block
/// (a signed-off operator's form has the figures signed, and the changes since listed apart).
/// `signer_name` names the supervisors who signed; times are shown in `tz`.
pub fn html(
    report: &CycleAssessment,
    tz: chrono_tz::Tz,
    signer_name: impl Fn(OperatorId) -> String,
) -> String {
    let e = escape;
    let mut page = String::new();
    page.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>考核 Assessment {cycle}</title>\n<style>\n\
         body {{ font-family: system-ui, \"Noto Sans CJK SC\", sans-serif; margin: 2em; color: #111; }}\n\
         h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 1.5em; }}\n\
         table {{ border-collapse: collapse; width: 100%; font-size: 0.85em; }}\n\
         th, td {{ border: 1px solid #999; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }}\n\
         th {{ background: #eee; }} td.n {{ text-align: right; }}\n\
         .meets {{ color: #155724; }} .needs_improvement {{ color: #856404; }} .not_eligible {{ color: #555; }}\n\
         .form {{ page-break-inside: avoid; border-top: 2px solid #333; margin-top: 1.5em; }}\n\
         .sign {{ margin-top: 1em; }}\n\
         @media print {{ body {{ margin: 0; }} .form {{ page-break-before: always; }} \
         a {{ color: inherit; text-decoration: none; }} }}\n\
         </style>\n</head>\n<body>\n\
         <h1>心理援助热线 接线员考核 · Operator assessment {cycle}</h1>\n\
         <p>{first} – {last} ({tz}). 系统培训要求 Systematic trainings required: {req}; \
         质量审核合格线 Audit pass mark: {pass:.0} %; 最少接线数 Minimum contacts: {min}. \
         已签核者为签核时的数据 A signed-off operator's figures are those signed.</p>\n",
        cycle = e(&report.cycle),
        first = e(&report.first_day),
        last = e(&report.last_day),
        tz = e(&report.time_zone),
        req = report.rules.trainings_required,
        pass = report.rules.audit_pass_percent,
        min = report.rules.min_contacts,
    ));
    page.push_str(
        "<table>\n<tr><th>接线员 Operator</th><th>接通 Answered</th><th>完成 Completed</th>\
         <th>ASA s</th><th>AHT s</th><th>占用率 Occupancy %</th><th>审核 Audits</th>\
         <th>平均分 Avg %</th><th>系统培训 Trainings</th><th>学时 Hours</th>\
         <th>结果 Computed</th><th>签核 Signed</th></tr>\n",
    );
    for a in &report.operators {
        let signed = a
            .sign_off
            .as_ref()
            .map(|s| {
                format!(
                    "<span class=\"{0}\">{1}</span>",
                    e(&s.outcome),
                    outcome_label(&s.outcome)
                )
            })
            .unwrap_or_else(|| "—".into());
        page.push_str(&format!(
            "<tr><td>{name} (#{id})</td><td class=\"n\">{answered}</td><td class=\"n\">{completed}</td>\
             <td class=\"n\">{asa}</td><td class=\"n\">{aht}</td><td class=\"n\">{occ}</td>\
             <td class=\"n\">{scored}</td><td class=\"n\">{avg}</td>\
             <td class=\"n\">{sys} / {req}</td><td class=\"n\">{hours}</td>\
             <td class=\"{outcome}\">{label}</td><td>{signed}</td></tr>\n",
            name = e(&a.name),
            id = a.operator,
            answered = a.kpis.answered,
            completed = a.kpis.completed,
            asa = opt(a.kpis.asa_seconds, 1),
            aht = opt(a.kpis.aht_seconds, 1),
            occ = percent(a.kpis.occupancy.as_ref().and_then(|o| o.ratio)),
            scored = a.audits.scored,
            avg = opt(a.audits.average_percent, 1),
            sys = a.training.systematic_sessions,
            req = report.rules.trainings_required,
            hours = a.training.hours,
            outcome = a.computed.as_str(),
            label = outcome_label(a.computed.as_str()),
        ));
    }
    page.push_str("</table>\n");
    for a in &report.operators {
        page.push_str(&format!(
            "<div class=\"form\">\n<h2>{name} (#{id}) — {cycle}</h2>\n<table>\n\
             <tr><th>接通 / 完成 Answered / completed</th><td>{answered} / {completed}</td></tr>\n\
             <tr><th>平均应答时间 ASA</th><td>{asa} s</td></tr>\n\
             <tr><th>平均处理时长 AHT</th><td>{aht} s</td></tr>\n\
             <tr><th>转接 Transfers</th><td>{transfers}</td></tr>\n\
             <tr><th>高危来电应答 High / imminent risk answered</th><td>{high} / {imminent}</td></tr>\n\
             <tr><th>质量审核 Audits (scored / pending)</th><td>{scored} / {pending}, 平均 average {avg} %</td></tr>\n\
             <tr><th>本期培训 Training this cycle</th><td>{sys} systematic / {sessions} sessions, {hours} h ({chours} h with questionnaire)</td></tr>\n\
             <tr><th>全年培训 Training this year</th><td>{ysys} systematic, {yhours} h</td></tr>\n\
             <tr><th>资质 Certifications</th><td>{certs}</td></tr>\n\
             <tr><th>计算结果 Computed</th><td class=\"{outcome}\">{label}{reasons}</td></tr>\n",
            name = e(&a.name),
            id = a.operator,
            cycle = e(&report.cycle),
            answered = a.kpis.answered,
            completed = a.kpis.completed,
            asa = opt(a.kpis.asa_seconds, 1),
            aht = opt(a.kpis.aht_seconds, 1),
            transfers = a.kpis.transfers,
            high = a.kpis.high_risk.answered,
            imminent = a.kpis.imminent_risk.answered,
            scored = a.audits.scored,
            pending = a.audits.pending,
            avg = opt(a.audits.average_percent, 1),
            sys = a.training.systematic_sessions,
            sessions = a.training.sessions,
            hours = a.training.hours,
            chours = a.training.certified_hours,
            ysys = a.training_year.systematic_sessions,
            yhours = a.training_year.hours,
            certs = e(&a.certifications.join(", ")),
            outcome = a.computed.as_str(),
            label = outcome_label(a.computed.as_str()),
            reasons = if a.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", e(&a.reasons.join("; ")))
            },
        ));
        match &a.sign_off {
            Some(s) => {
                page.push_str(&format!(
                    "<tr><th>督导签核 Supervisor sign-off</th><td class=\"{o}\">{label} — {by}, {at}<br>{comment}</td></tr>\n",
                    o = e(&s.outcome),
                    label = outcome_label(&s.outcome),
                    by = e(&signer_name(s.signed_by)),
                    at = e(&super::period::local_time(tz, s.signed_at)),
                    comment = e(&s.comment),
                ));
                if !a.changed_since_sign_off.is_empty() {
                    page.push_str(
                        "<tr><th>签核后数据变化 Changed since the sign-off (not signed)</th><td><ul>",
                    );
                    for c in &a.changed_since_sign_off {
                        page.push_str(&format!(
                            "<li>{figure}: {signed} → {now}</li>",
                            figure = e(&c.figure),
                            signed = e(&c.signed),
                            now = e(&c.now),
                        ));
                    }
                    page.push_str("</ul></td></tr>\n");
                }
                page.push_str("</table>\n");
            }
            None => page.push_str(
                "</table>\n<p class=\"sign\">督导签名 Supervisor: ____________________ \
                 日期 Date: ____________ 结果 Outcome: □ 达标 Meets □ 待改进 Needs improvement \
                 □ 不参评 Not eligible</p>\n",
            ),
        }
        page.push_str("</div>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn training(systematic: u64) -> TrainingSummary {
        TrainingSummary {
            account: OperatorId(1),
            sessions: systematic,
            systematic_sessions: systematic,
            hours: 4 * systematic as u32,
            certified_hours: 0,
            modules_completed: Vec::new(),
            base_modules_missing: Vec::new(),
        }
    }

    fn audits(average: Option<f64>) -> AuditSummary {
        AuditSummary {
            scored: u64::from(average.is_some()),
            pending: 0,
            average_percent: average,
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(trainings_required(4, 3), 1);
        assert_eq!(trainings_required(4, 12), 4);
        assert_eq!(trainings_required(4, 1), 1);
        assert_eq!(trainings_required(6, 3), 2);
        let rules = Rules {
            trainings_required: 1,
            audit_pass_percent: 80.0,
            min_contacts: 5,
        };
        assert_eq!(
            assess(10, &audits(Some(85.0)), &training(1), &rules),
            (Outcome::Meets, vec![])
        );
        let (o, why) = assess(10, &audits(Some(70.0)), &training(0), &rules);
        assert_eq!(o, Outcome::NeedsImprovement);
        assert_eq!(why.len(), 2, "{why:?}");
        assert_eq!(
            assess(10, &audits(None), &training(2), &rules).0,
            Outcome::NeedsImprovement
        );
        assert_eq!(
            assess(4, &audits(Some(99.0)), &training(2), &rules).0,
            Outcome::NotEligible
        );
    }

    fn operator(average: Option<f64>, completed: u64) -> OperatorAssessment {
        let params = super::super::kpi::KpiParams {
            from: crate::domain::Timestamp(0),
            to: crate::domain::Timestamp(1),
            now: crate::domain::Timestamp(1),
            short_abandon_ms: 6_000,
            service_level_ms: vec![20_000],
        };
        let mut kpis = super::super::kpi::kpis(
            &super::super::kpi::Digest::default(),
            None,
            &params,
            &super::super::kpi::KpiFilter::default(),
        );
        kpis.completed = completed;
        OperatorAssessment {
            operator: OperatorId(7),
            name: "op".into(),
            role: Role::Operator,
            kpis,
            audits: audits(average),
            training: training(1),
            training_year: training(1),
            certifications: vec!["crisis_certified".into()],
            computed: Outcome::Meets,
            reasons: vec![],
            sign_off: None,
            changed_since_sign_off: vec![],
        }
    }

    fn signed(figures: Value) -> SignOff {
        SignOff {
            cycle: "2026-Q1".into(),
            operator: OperatorId(7),
            computed: "meets".into(),
            outcome: "meets".into(),
            comment: String::new(),
            figures,
            signed_by: OperatorId(1),
            signed_at: crate::domain::Timestamp(5),
        }
    }

    #[test]
    fn a_signed_assessment_shows_the_signed_figures_and_the_changes() {
        let at_signing = operator(Some(100.0 / 3.0), 10);
        let figures = figures_to_sign(&at_signing);
        // Unchanged (the average went through JSON): the signed form, no change.
        let same = as_signed(operator(Some(100.0 / 3.0), 10), signed(figures.clone()));
        assert_eq!(same.changed_since_sign_off, vec![]);
        assert_eq!(same.audits, at_signing.audits);
        assert!(same.sign_off.is_some());
        // A contact completed and an audit re-scored since: the signed figures, the changes apart.
        let mut now = operator(Some(50.0), 11);
        now.computed = Outcome::NeedsImprovement;
        now.certifications.clear();
        let shown = as_signed(now, signed(figures.clone()));
        assert_eq!(
            (
                shown.kpis.completed,
                shown.audits.average_percent,
                shown.computed
            ),
            (10, Some(100.0 / 3.0), Outcome::Meets)
        );
        let changes: Vec<(&str, &str, &str)> = shown
            .changed_since_sign_off
            .iter()
            .map(|c| (c.figure.as_str(), c.signed.as_str(), c.now.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("kpis.completed", "10", "11"),
                ("audits.average_percent", "33.333333333333336", "50.0"),
                ("certifications", "crisis_certified", ""),
                ("computed", "meets", "needs_improvement"),
            ]
        );
        // Signed before a figure existed: that figure is taken from the data, the rest signed.
        let mut older = figures.clone();
        older.as_object_mut().unwrap().remove("training_year");
        older["kpis"].as_object_mut().unwrap().remove("transfers");
        let mut now = operator(Some(50.0), 10);
        now.training_year = training(3);
        now.kpis.transfers = 4;
        let shown = as_signed(now, signed(older));
        assert_eq!(
            (
                shown.training_year.systematic_sessions,
                shown.kpis.transfers
            ),
            (3, 4)
        );
        assert_eq!(shown.audits.average_percent, Some(100.0 / 3.0));
        // Unreadable figures: the computed ones, and the change list says so.
        let shown = as_signed(operator(Some(50.0), 10), signed(json!({"kpis": 3})));
        assert_eq!(shown.audits.average_percent, Some(50.0));
        assert_eq!(shown.changed_since_sign_off[0].signed, "unreadable");
    }

    #[test]
    fn html_escapes() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
