//! Assessment cycles (quarterly by default): per operator, the cycle's KPIs, the average audit
//! score and training against the requirement (≥ 4 systematic trainings a year, pro-rated per
//! cycle) give an outcome — meets, needs improvement, not eligible — that a supervisor signs off.
//! Exported as CSV and as a printable HTML page (the assessment form, kept with the figures as
//! they were when signed).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Valid certifications at the end of the cycle (or now, if earlier).
    pub certifications: Vec<String>,
    pub computed: Outcome,
    /// Why the outcome is not `meets`.
    pub reasons: Vec<String>,
    pub sign_off: Option<SignOff>,
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

/// The CSV header and rows of a cycle's assessment.
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

/// A printable page: one table for the cycle, then one form per operator with a signature block.
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
         质量审核合格线 Audit pass mark: {pass:.0} %; 最少接线数 Minimum contacts: {min}.</p>\n",
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
            Some(s) => page.push_str(&format!(
                "<tr><th>督导签核 Supervisor sign-off</th><td class=\"{o}\">{label} — {by}, {at}<br>{comment}</td></tr>\n</table>\n",
                o = e(&s.outcome),
                label = outcome_label(&s.outcome),
                by = e(&signer_name(s.signed_by)),
                at = e(&super::period::local_time(tz, s.signed_at)),
                comment = e(&s.comment),
            )),
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

    #[test]
    fn html_escapes() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
