//! Command-line tasks that work on the store directly: adding an account, seeding a demo.
//!
//! They may run while a server uses the same database, so they add and never change: a running
//! server keeps in memory what it read at its start (the queues, which it routes by) and does
//! not see a change made behind its back; what an administrator edited must stay as they left it.

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

/// Seeds sample skills, queues and accounts, adding only what the database does not have yet:
/// a skill, queue or account that exists is left as it is (an administrator may have edited the
/// `general` queue the first start created, or a demo person's skills), so running it twice, or
/// on a database in use, changes nothing already there. Returns lines to print: the demo logins,
/// what was left as it was, and, when queues were added, that a server already running on this
/// database must be restarted to serve them (it reads queues only when it starts).
pub async fn seed_demo(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = open(settings).await?;
    let mut lines = Vec::new();
    let skills_there: Vec<Skill> = store.skills().await?.into_iter().map(|s| s.skill).collect();
    for (skill, description) in [
        (
            "crisis",
            "Suicide and self-harm risk assessment and intervention",
        ),
        ("youth", "Children, adolescents and students"),
        ("family", "Family and relationships"),
    ] {
        let skill = Skill::parse(skill)?;
        if !skills_there.contains(&skill) {
            store
                .put_skill(SkillInfo {
                    skill,
                    description: description.into(),
                })
                .await?;
        }
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
    let queues_there: Vec<QueueId> = store.queues().await?.into_iter().map(|q| q.id).collect();
    let mut added_queues = Vec::new();
    // `general` first: `youth` overflows to it.
    for q in [&general, &crisis, &youth] {
        if queues_there.contains(&q.id) {
            lines.push(format!(
                "  queue {:<8} already there, left as it is",
                q.id.as_str()
            ));
        } else {
            store.put_queue(q).await?;
            added_queues.push(q.id.as_str().to_owned());
        }
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
    let mut logins = vec![format!(
        "Demo data ready. Accounts created now have the password: {password}"
    )];
    for (name, display, role, languages, skills) in people {
        let there = match store.account_by_name(name).await {
            Ok(_) => true,
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if there {
            logins.push(format!(
                "  {:<10} {:<12} {} (already there, left as it is)",
                name,
                role.as_str(),
                display
            ));
            continue;
        }
        let account = create(&store, name, display, role, &password, languages).await?;
        let skills = skills
            .iter()
            .map(|(s, p)| Ok((Skill::parse(s)?, Proficiency::new(*p)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.set_account_skills(account.id, &skills).await?;
        logins.push(format!("  {:<10} {:<12} {}", name, role.as_str(), display));
    }
    logins.append(&mut lines);
    if !added_queues.is_empty() {
        logins.push(format!(
            "Added the queues {}. A hotline server already running on this database reads \
             queues only when it starts: restart it to serve them.",
            added_queues.join(", ")
        ));
    }
    Ok(logins)
}
