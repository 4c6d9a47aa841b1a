//! Command-line tasks that work on the store directly: adding an account, seeding a demo.

use anyhow::{Context as _, bail};

use crate::auth::{check_new_password, hash_password};
use crate::config::Settings;
use crate::domain::{Language, Proficiency, QueueId, Role, Skill, Timestamp};
use crate::queues::QueueDefinition;
use crate::routing::{RelaxStep, SkillRequirement};
use crate::store::{self, Account, DynStore, NewAccount, SkillInfo, StoreError};

async fn open(settings: &Settings) -> anyhow::Result<DynStore> {
    store::connect(&settings.database.url)
        .await
        .context("opening the database")
}

pub async fn add_user(
    settings: &Settings,
    name: &str,
    role: &str,
    display_name: Option<String>,
    languages: &[String],
    password: String,
) -> anyhow::Result<Account> {
    let role = Role::parse(role)?;
    crate::admin::check_account_name(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    check_new_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = open(settings).await?;
    let languages: Vec<&str> = languages.iter().map(|l| l.trim()).collect();
    create(
        &store,
        name,
        display_name.as_deref().unwrap_or(name),
        role,
        &password,
        &languages,
    )
    .await
}

async fn create(
    store: &DynStore,
    name: &str,
    display_name: &str,
    role: Role,
    password: &str,
    languages: &[&str],
) -> anyhow::Result<Account> {
    let account = NewAccount {
        name: name.into(),
        display_name: display_name.into(),
        role,
        password_hash: hash_password(password.into()).await?,
        languages: languages
            .iter()
            .map(|l| Language::parse(l))
            .collect::<Result<_, _>>()?,
        chat_capacity: if role.takes_contacts() { 2 } else { 0 },
        voice_capacity: if role.takes_contacts() { 1 } else { 0 },
        voice_excludes_chat: true,
        must_change_password: false,
    };
    match store.create_account(account, Timestamp::now()).await {
        Ok(a) => Ok(a),
        Err(StoreError::Conflict) => bail!("an account named {name} already exists"),
        Err(e) => Err(e.into()),
    }
}

fn requirement(skill: &str, level: u8) -> anyhow::Result<SkillRequirement> {
    Ok(SkillRequirement {
        skill: Skill::parse(skill)?,
        min_proficiency: Proficiency::new(level)?,
    })
}

/// A demo account: login, display name, role, languages, skills with proficiency.
type DemoPerson = (
    &'static str,
    &'static str,
    Role,
    &'static [&'static str],
    &'static [(&'static str, u8)],
);

/// Seeds sample skills, queues and accounts. Returns lines to print (with the demo logins).
pub async fn seed_demo(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = open(settings).await?;
    for (skill, description) in [
        (
            "crisis",
            "Suicide and self-harm risk assessment and intervention",
        ),
        ("youth", "Children, adolescents and students"),
        ("family", "Family and relationships"),
    ] {
        store
            .put_skill(SkillInfo {
                skill: Skill::parse(skill)?,
                description: description.into(),
            })
            .await?;
    }
    let mut crisis = QueueDefinition::open(QueueId::parse("crisis")?, "Crisis line");
    crisis.required_skills = vec![requirement("crisis", 3)?];
    crisis.never_relax = true;
    let mut youth = QueueDefinition::open(QueueId::parse("youth")?, "Youth and students");
    youth.required_skills = vec![requirement("youth", 3)?];
    youth.relaxation = vec![
        RelaxStep {
            after_ms: 60_000,
            max_proficiency: Some(Proficiency::new(1)?),
            drop_skills: false,
        },
        RelaxStep {
            after_ms: 180_000,
            max_proficiency: None,
            drop_skills: true,
        },
    ];
    youth.overflow_to = Some(QueueId::parse("general")?);
    youth.max_wait_ms = Some(600_000);
    let general = QueueDefinition::open(QueueId::parse("general")?, "General support");
    for q in [&general, &crisis, &youth] {
        store.put_queue(q).await?;
    }

    let password = crate::auth::random_token(12);
    let people: [DemoPerson; 5] = [
        (
            "li.na",
            "Li Na",
            Role::Operator,
            &["zh", "en"],
            &[("youth", 4), ("family", 3)],
        ),
        (
            "wang.wei",
            "Wang Wei",
            Role::Operator,
            &["zh"],
            &[("family", 4), ("crisis", 3)],
        ),
        (
            "chen.jie",
            "Chen Jie",
            Role::CrisisLead,
            &["zh", "en"],
            &[("crisis", 5)],
        ),
        (
            "zhao.min",
            "Zhao Min",
            Role::Supervisor,
            &["zh", "en"],
            &[("crisis", 4), ("youth", 3)],
        ),
        ("sun.admin", "Sun Lei", Role::Admin, &[], &[]),
    ];
    let mut lines = vec![format!(
        "Demo data ready. Accounts created now have the password: {password}"
    )];
    for (name, display, role, languages, skills) in people {
        let account = match store.account_by_name(name).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => {
                create(&store, name, display, role, &password, languages).await?
            }
            Err(e) => return Err(e.into()),
        };
        let skills = skills
            .iter()
            .map(|(s, p)| Ok((Skill::parse(s)?, Proficiency::new(*p)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.set_account_skills(account.id, &skills).await?;
        lines.push(format!("  {:<10} {:<12} {}", name, role.as_str(), display));
    }
    Ok(lines)
}
