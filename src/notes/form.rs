//! The note form, defined as data: sections of typed fields, each required always, never, or only for
//! data contacts (call types that carry a real conversation). A note stores the form version it was
//! written with. Validation answers field by field so the console can show each message in place.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::RiskLevel;

/// A text in both console languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Label {
    pub zh: String,
    pub en: String,
}

fn label(zh: &str, en: &str) -> Label {
    Label {
        zh: zh.into(),
        en: en.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoteForm {
    pub version: u32,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Section {
    pub id: String,
    pub label: Label,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Field {
    pub id: String,
    pub label: Label,
    pub kind: FieldKind,
    #[serde(default)]
    pub required: Required,
}

/// When a field must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Required {
    #[default]
    Never,
    Always,
    /// Only when the call type is a data type (not silent, hang-up, joke, wrong number, abusive).
    DataContact,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Choice {
    pub id: String,
    pub label: Label,
    /// For the call-type field: whether this type is a data contact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Category {
    pub id: String,
    pub label: Label,
    pub subcategories: Vec<Choice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// The contact's call type; decides which other fields are required. Exactly one per form.
    CallType {
        options: Vec<Choice>,
    },
    Text {
        max_chars: usize,
    },
    Bool,
    Choice {
        options: Vec<Choice>,
    },
    MultiChoice {
        options: Vec<Choice>,
    },
    /// `{"category": ["subcategory", …]}`, at least one subcategory per named category.
    Categories {
        categories: Vec<Category>,
    },
    /// One of the five risk levels.
    RiskLevel,
    /// `[{"service": id, "reference": "…"}]`.
    Referrals {
        services: Vec<Choice>,
    },
}

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What a valid note says that matters beyond the note itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteFacts {
    pub data_contact: bool,
    pub risk: Option<RiskLevel>,
    pub crisis_flag: bool,
}

impl NoteForm {
    fn fields(&self) -> impl Iterator<Item = &Field> {
        self.sections.iter().flat_map(|s| s.fields.iter())
    }

    /// Checks the form itself: unique field ids and exactly one call-type field.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for f in self.fields() {
            if !seen.insert(f.id.as_str()) {
                return Err(format!("field id {} appears twice", f.id));
            }
        }
        let call_types = self
            .fields()
            .filter(|f| matches!(f.kind, FieldKind::CallType { .. }))
            .count();
        if call_types != 1 {
            return Err("the form needs exactly one call_type field".into());
        }
        Ok(())
    }

    /// Whether `values` names a data call type (unknown or missing counts as data: be strict).
    fn is_data_contact(&self, values: &BTreeMap<String, Value>) -> bool {
        self.fields()
            .find_map(|f| match &f.kind {
                FieldKind::CallType { options } => Some((f, options)),
                _ => None,
            })
            .and_then(|(f, options)| {
                let chosen = values.get(&f.id)?.as_str()?;
                options.iter().find(|o| o.id == chosen).map(|o| o.data)
            })
            .unwrap_or(true)
    }

    /// Validates a whole note; every problem is reported, each against its field.
    pub fn validate(&self, values: &BTreeMap<String, Value>) -> Result<NoteFacts, Vec<FieldError>> {
        let mut errors = Vec::new();
        let data_contact = self.is_data_contact(values);
        let known: std::collections::BTreeSet<&str> =
            self.fields().map(|f| f.id.as_str()).collect();
        for key in values.keys() {
            if !known.contains(key.as_str()) {
                errors.push(err(key, "is not a field of this form"));
            }
        }
        let mut facts = NoteFacts {
            data_contact,
            risk: None,
            crisis_flag: false,
        };
        for field in self.fields() {
            let value = values.get(&field.id).filter(|v| !is_empty(v));
            let required = match field.required {
                Required::Always => true,
                Required::DataContact => data_contact,
                Required::Never => false,
            };
            let Some(value) = value else {
                if required {
                    errors.push(err(&field.id, "is required"));
                }
                continue;
            };
            if let Err(message) = check_value(&field.kind, value) {
                errors.push(err(&field.id, &message));
                continue;
            }
            match &field.kind {
                FieldKind::RiskLevel => {
                    facts.risk = value.as_str().and_then(|r| RiskLevel::parse(r).ok())
                }
                FieldKind::Bool if field.id == "crisis_flag" => {
                    facts.crisis_flag = value.as_bool() == Some(true)
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(facts)
        } else {
            Err(errors)
        }
    }
}

fn err(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn one_of<'a>(options: &'a [Choice], v: &Value) -> Result<&'a Choice, String> {
    let id = v.as_str().ok_or("must be one of the listed options")?;
    options
        .iter()
        .find(|o| o.id == id)
        .ok_or_else(|| format!("'{id}' is not one of the listed options"))
}

fn check_value(kind: &FieldKind, v: &Value) -> Result<(), String> {
    match kind {
        FieldKind::CallType { options } | FieldKind::Choice { options } => {
            one_of(options, v).map(|_| ())
        }
        FieldKind::Text { max_chars } => {
            let s = v.as_str().ok_or("must be text")?;
            if s.chars().count() > *max_chars {
                return Err(format!("must be at most {max_chars} characters"));
            }
            Ok(())
        }
        FieldKind::Bool => v
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "must be true or false".into()),
        FieldKind::MultiChoice { options } => {
            let items = v.as_array().ok_or("must be a list of options")?;
            items
                .iter()
                .try_for_each(|i| one_of(options, i).map(|_| ()))
        }
        FieldKind::RiskLevel => {
            let s = v.as_str().ok_or("must be a risk level")?;
            RiskLevel::parse(s)
                .map(|_| ())
                .map_err(|e| e.reason.to_owned())
        }
        FieldKind::Categories { categories } => {
            let map = v
                .as_object()
                .ok_or("must map categories to subcategories")?;
            for (cat, subs) in map {
                let category = categories
                    .iter()
                    .find(|c| &c.id == cat)
                    .ok_or_else(|| format!("'{cat}' is not a category"))?;
                let subs = subs
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| format!("'{cat}' needs at least one subcategory"))?;
                for s in subs {
                    one_of(&category.subcategories, s).map_err(|_| {
                        format!(
                            "'{}' is not a subcategory of '{cat}'",
                            s.as_str().unwrap_or("?")
                        )
                    })?;
                }
            }
            Ok(())
        }
        FieldKind::Referrals { services } => {
            let items = v.as_array().ok_or("must be a list of referrals")?;
            for item in items {
                let service = item.get("service").ok_or("each referral needs a service")?;
                one_of(services, service)?;
                if let Some(reference) = item.get("reference") {
                    let r = reference.as_str().ok_or("a reference must be text")?;
                    if r.chars().count() > 100 {
                        return Err("a reference must be at most 100 characters".into());
                    }
                }
            }
            Ok(())
        }
    }
}

fn choices(items: &[(&str, &str, &str)]) -> Vec<Choice> {
    items
        .iter()
        .map(|(id, zh, en)| Choice {
            id: (*id).into(),
            label: label(zh, en),
            data: false,
        })
        .collect()
}

fn field(id: &str, zh: &str, en: &str, kind: FieldKind, required: Required) -> Field {
    Field {
        id: id.into(),
        label: label(zh, en),
        kind,
        required,
    }
}

fn yes_no_unknown() -> FieldKind {
    FieldKind::Choice {
        options: choices(&[
            ("yes", "是", "Yes"),
            ("no", "否", "No"),
            ("unknown", "不清楚", "Unknown"),
        ]),
    }
}

/// The built-in form (version 1), after Aselo's contact record and the national hotline guideline.
pub fn default_form() -> NoteForm {
    use Required::{Always, DataContact, Never};
    let mut call_types = choices(&[
        ("counselling", "心理咨询", "Counselling"),
        ("crisis", "危机干预", "Crisis"),
        ("information", "信息咨询", "Information request"),
        ("silent", "无声来电", "Silent"),
        ("hang_up", "挂断", "Hang-up"),
        ("joke", "恶作剧", "Joke"),
        ("wrong_number", "打错", "Wrong number"),
        ("abusive", "骚扰辱骂", "Abusive"),
    ]);
    for c in call_types.iter_mut().take(3) {
        c.data = true;
    }
    let category = |id: &str, zh: &str, en: &str, subs: &[(&str, &str, &str)]| Category {
        id: id.into(),
        label: label(zh, en),
        subcategories: choices(subs),
    };
    let categories = vec![
        category(
            "emotional_distress",
            "情绪困扰",
            "Emotional distress",
            &[
                ("anxiety", "焦虑", "Anxiety"),
                ("depression", "抑郁", "Low mood"),
                ("loneliness", "孤独", "Loneliness"),
                ("anger", "愤怒", "Anger"),
            ],
        ),
        category(
            "relationships",
            "人际关系",
            "Relationships",
            &[
                ("partner", "恋爱/伴侣", "Partner"),
                ("friends", "朋友", "Friends"),
                ("breakup", "分手", "Break-up"),
            ],
        ),
        category(
            "family",
            "家庭",
            "Family",
            &[
                ("conflict", "家庭冲突", "Conflict"),
                ("parenting", "亲子教育", "Parenting"),
                ("domestic_violence", "家庭暴力", "Domestic violence"),
            ],
        ),
        category(
            "study",
            "学习/学校",
            "Study and school",
            &[
                ("exam_stress", "考试压力", "Exam stress"),
                ("bullying", "校园欺凌", "Bullying"),
                ("school_refusal", "厌学", "School refusal"),
            ],
        ),
        category(
            "work",
            "工作",
            "Work",
            &[
                ("unemployment", "失业", "Unemployment"),
                ("workplace_stress", "职场压力", "Workplace stress"),
            ],
        ),
        category(
            "health",
            "健康",
            "Health",
            &[
                ("physical_illness", "躯体疾病", "Physical illness"),
                ("mental_illness", "精神疾病", "Mental illness"),
                ("sleep", "睡眠", "Sleep"),
            ],
        ),
        category(
            "suicide_self_harm",
            "自杀与自伤",
            "Suicide and self-harm",
            &[
                ("suicidal_thoughts", "自杀意念", "Suicidal thoughts"),
                ("self_harm", "自伤", "Self-harm"),
                ("attempt", "自杀未遂", "Attempt"),
                ("bereaved_by_suicide", "自杀者亲友", "Bereaved by suicide"),
            ],
        ),
        category(
            "violence_abuse",
            "暴力与虐待",
            "Violence and abuse",
            &[
                ("physical", "躯体", "Physical"),
                ("sexual", "性", "Sexual"),
                ("emotional", "情感", "Emotional"),
                ("neglect", "忽视", "Neglect"),
            ],
        ),
        category(
            "addiction",
            "成瘾",
            "Addiction",
            &[
                ("alcohol", "酒精", "Alcohol"),
                ("drugs", "药物", "Drugs"),
                ("gambling", "赌博", "Gambling"),
                ("internet", "网络", "Internet"),
            ],
        ),
        category(
            "bereavement",
            "丧亲",
            "Bereavement",
            &[
                ("family_member", "家人", "Family member"),
                ("friend", "朋友", "Friend"),
            ],
        ),
        category(
            "information",
            "信息咨询",
            "Information request",
            &[
                ("services", "服务信息", "Services"),
                ("mental_health", "心理健康知识", "Mental health"),
            ],
        ),
    ];
    NoteForm {
        version: 1,
        sections: vec![
            Section {
                id: "call".into(),
                label: label("来电类型", "Call type"),
                fields: vec![field(
                    "call_type",
                    "来电类型",
                    "Call type",
                    FieldKind::CallType {
                        options: call_types,
                    },
                    Always,
                )],
            },
            Section {
                id: "categories".into(),
                label: label("问题类别", "Categories"),
                fields: vec![field(
                    "categories",
                    "问题类别",
                    "Categories",
                    FieldKind::Categories { categories },
                    DataContact,
                )],
            },
            Section {
                id: "caller".into(),
                label: label("来电者信息", "Caller"),
                fields: vec![
                    field(
                        "age_group",
                        "年龄段",
                        "Age group",
                        FieldKind::Choice {
                            options: choices(&[
                                ("under_12", "12岁以下", "Under 12"),
                                ("12_17", "12–17岁", "12–17"),
                                ("18_24", "18–24岁", "18–24"),
                                ("25_44", "25–44岁", "25–44"),
                                ("45_64", "45–64岁", "45–64"),
                                ("65_plus", "65岁及以上", "65 and over"),
                                ("unknown", "不详", "Unknown"),
                            ]),
                        },
                        DataContact,
                    ),
                    field(
                        "gender",
                        "性别",
                        "Gender",
                        FieldKind::Choice {
                            options: choices(&[
                                ("female", "女", "Female"),
                                ("male", "男", "Male"),
                                ("other", "其他", "Other"),
                                ("not_said", "未透露", "Not said"),
                            ]),
                        },
                        Never,
                    ),
                    field(
                        "region",
                        "地区",
                        "Region",
                        FieldKind::Text { max_chars: 60 },
                        Never,
                    ),
                ],
            },
            Section {
                id: "risk".into(),
                label: label("风险评估", "Risk assessment"),
                fields: vec![
                    field(
                        "suicidal_thoughts",
                        "自杀意念",
                        "Suicidal thoughts",
                        yes_no_unknown(),
                        DataContact,
                    ),
                    field("plan", "自杀计划", "Plan", yes_no_unknown(), Never),
                    field(
                        "access_to_means",
                        "获取手段",
                        "Access to means",
                        yes_no_unknown(),
                        Never,
                    ),
                    field(
                        "timeframe",
                        "时间框架",
                        "Timeframe",
                        FieldKind::Choice {
                            options: choices(&[
                                ("none", "无", "None"),
                                ("within_24h", "24小时内", "Within 24 hours"),
                                ("within_week", "一周内", "Within a week"),
                                ("later", "更久", "Later"),
                                ("unknown", "不清楚", "Unknown"),
                            ]),
                        },
                        Never,
                    ),
                    field(
                        "previous_attempt",
                        "既往自杀未遂",
                        "Previous attempt",
                        yes_no_unknown(),
                        Never,
                    ),
                    field(
                        "self_harm",
                        "自伤行为",
                        "Self-harm",
                        yes_no_unknown(),
                        Never,
                    ),
                    field(
                        "harm_to_others",
                        "伤害他人风险",
                        "Harm to others",
                        yes_no_unknown(),
                        Never,
                    ),
                    field(
                        "protective_factors",
                        "保护性因素",
                        "Protective factors",
                        FieldKind::Text { max_chars: 1000 },
                        Never,
                    ),
                    field(
                        "risk_level",
                        "风险等级",
                        "Risk level",
                        FieldKind::RiskLevel,
                        DataContact,
                    ),
                    field(
                        "crisis_flag",
                        "危机标记",
                        "Crisis flag",
                        FieldKind::Bool,
                        Never,
                    ),
                ],
            },
            Section {
                id: "handling".into(),
                label: label("处理", "Handling"),
                fields: vec![
                    field(
                        "interventions",
                        "干预措施",
                        "Interventions",
                        FieldKind::MultiChoice {
                            options: choices(&[
                                ("active_listening", "积极倾听", "Active listening"),
                                ("psychoeducation", "心理健康教育", "Psychoeducation"),
                                ("problem_solving", "问题解决", "Problem solving"),
                                ("grounding", "稳定化技术", "Grounding"),
                                ("safety_planning", "安全计划", "Safety planning"),
                                ("emergency_services", "联系急救/警方", "Emergency services"),
                                ("information", "提供信息", "Information"),
                            ]),
                        },
                        DataContact,
                    ),
                    field(
                        "referrals",
                        "转介",
                        "Referrals",
                        FieldKind::Referrals {
                            services: choices(&[
                                (
                                    "psychiatric_hospital",
                                    "精神专科医院",
                                    "Psychiatric hospital",
                                ),
                                ("police_110", "110 公安", "Police (110)"),
                                ("ambulance_120", "120 急救", "Ambulance (120)"),
                                ("social_services", "社会服务机构", "Social services"),
                                ("school", "学校", "School"),
                                ("other_hotline", "其他热线", "Other hotline"),
                                ("other", "其他", "Other"),
                            ]),
                        },
                        Never,
                    ),
                    field(
                        "safety_plan_done",
                        "已完成安全计划",
                        "Safety plan done",
                        FieldKind::Bool,
                        Never,
                    ),
                    field(
                        "outcome",
                        "结果",
                        "Outcome",
                        FieldKind::Choice {
                            options: choices(&[
                                ("resolved", "已缓解", "Resolved"),
                                ("referred", "已转介", "Referred"),
                                ("follow_up", "需随访", "Follow-up needed"),
                                ("escalated", "已升级危机干预", "Escalated"),
                                ("caller_disconnected", "来电者中断", "Caller disconnected"),
                            ]),
                        },
                        DataContact,
                    ),
                    field(
                        "summary",
                        "摘要",
                        "Summary",
                        FieldKind::Text { max_chars: 4000 },
                        DataContact,
                    ),
                ],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn default_form_is_well_formed() {
        default_form().check().unwrap();
    }

    #[test]
    fn non_data_contacts_need_only_the_call_type() {
        let facts = default_form()
            .validate(&values(json!({"call_type": "silent"})))
            .unwrap();
        assert!(!facts.data_contact);
    }

    #[test]
    fn data_contacts_report_every_missing_field() {
        let errors = default_form()
            .validate(&values(json!({"call_type": "counselling"})))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "categories",
            "age_group",
            "suicidal_thoughts",
            "risk_level",
            "interventions",
            "outcome",
            "summary",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn values_are_checked_field_by_field() {
        let errors = default_form()
            .validate(&values(json!({
                "call_type": "crisis",
                "categories": {"suicide_self_harm": ["self_harm"], "family": ["cooking"]},
                "age_group": "18_24", "suicidal_thoughts": "yes", "risk_level": "urgent",
                "interventions": ["active_listening"], "outcome": "escalated",
                "summary": "x".repeat(4001), "colour": "red",
                "referrals": [{"service": "police_110", "reference": "A-1"}]
            })))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["colour", "categories", "risk_level", "summary"]);
    }

    #[test]
    fn a_valid_crisis_note_reports_its_risk() {
        let facts = default_form()
            .validate(&values(json!({
                "call_type": "crisis",
                "categories": {"suicide_self_harm": ["suicidal_thoughts"]},
                "age_group": "18_24", "suicidal_thoughts": "yes", "risk_level": "imminent",
                "interventions": ["safety_planning"], "outcome": "escalated", "summary": "…",
                "crisis_flag": true
            })))
            .unwrap();
        assert_eq!(facts.risk, Some(RiskLevel::Imminent));
        assert!(facts.crisis_flag && facts.data_contact);
    }
}
