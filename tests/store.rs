//! The storage test-suite. Every test runs twice, on SQLite (a fresh file) and on PostgreSQL
//! (a fresh database; set `HOTLINE_TEST_DATABASE_URL`, see `tests/common/mod.rs`):
//!
//! ```sh
//! HOTLINE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --test store
//! ```
//!
//! Each test is one `async fn name(store, db)` and one `store_test!(name)` line that generates
//! `name::sqlite` and `name::postgres`.

mod common;

use std::collections::BTreeSet;

use common::{Backend, FreshDb};
use hotline::domain::{
    Channel, ContactId, JoinMode, Language, OperatorId, Proficiency, QueueId, RiskLevel, Role,
    Skill, Timestamp, Topic,
};
use hotline::queues::{Alternative, OpeningHours, QueueDefinition};
use hotline::routing::{
    ContactState, EndedBy, Event, OperatorState, OverflowReason, RelaxStep, RequeueReason,
    SkillRequirement, TransferTarget,
};
use hotline::store::projection::project;
use hotline::store::{
    AccountUpdate, ContactRecord, DynStore, Log, NewAccount, NewContactRecord, NewMessage, Reader,
    Sender, Session, SkillInfo, Stay, StoreError, TranscriptPage, Visibility,
};
use sqlx::Connection;

/// `store_test!(name)`: runs `async fn name(store: DynStore, db: FreshDb)` on both databases.
/// Multi-threaded, so that concurrent store calls really run in parallel.
macro_rules! store_test {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                common::run(Backend::Sqlite, super::$name).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                common::run(Backend::Postgres, super::$name).await
            }
        }
    };
}

// ---------- helpers ----------

fn lang(code: &str) -> Language {
    Language::parse(code).unwrap()
}

fn queue_id(id: &str) -> QueueId {
    QueueId::parse(id).unwrap()
}

fn skill(name: &str) -> Skill {
    Skill::parse(name).unwrap()
}

fn level(n: u8) -> Proficiency {
    Proficiency::new(n).unwrap()
}

fn new_account(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        display_name: format!("{name} (display)"),
        role: Role::Operator,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        languages: vec![lang("zh"), lang("en")],
        chat_capacity: 3,
        voice_capacity: 1,
        voice_excludes_chat: true,
        must_change_password: false,
    }
}

fn new_contact(resume_token: &str, caller: Option<&str>, entered_at: i64) -> NewContactRecord {
    NewContactRecord {
        queue: queue_id("general"),
        channel: Channel::Chat,
        language: lang("zh"),
        topic: Some(Topic::parse("family").unwrap()),
        age_group: Some("18-24".into()),
        risk: RiskLevel::Low,
        caller_key_hash: caller.map(str::to_owned),
        resume_token_hash: resume_token.into(),
        entered_at: Timestamp(entered_at),
    }
}

/// Contacts made the ordinary way, one per resume token.
async fn made_contacts<const N: usize>(store: &DynStore, tokens: [&str; N]) -> [ContactId; N] {
    let mut ids = [ContactId(0); N];
    for (id, token) in ids.iter_mut().zip(tokens) {
        *id = store
            .create_contact(new_contact(token, None, 1))
            .await
            .unwrap();
    }
    ids
}

fn line(contact: ContactId, body: &str, at: i64) -> NewMessage {
    NewMessage {
        contact,
        sender: Sender::Caller,
        author: None,
        visibility: Visibility::All,
        body: body.into(),
        at: Timestamp(at),
    }
}

// ---------- accounts ----------

store_test!(accounts_crud);
async fn accounts_crud(store: DynStore, _db: FreshDb) {
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    let mut admin = new_account("admin");
    admin.role = Role::Admin;
    admin.must_change_password = true;
    let admin = store.create_account(admin, Timestamp(1_000)).await.unwrap();
    assert_eq!(admin.name, "admin");
    assert_eq!(admin.display_name, "admin (display)");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.languages, vec![lang("zh"), lang("en")]);
    assert_eq!((admin.chat_capacity, admin.voice_capacity), (3, 1));
    assert!(!admin.disabled);
    assert!(admin.must_change_password);
    assert_eq!(admin.created_at, Timestamp(1_000));

    let lin = store
        .create_account(new_account("lin"), Timestamp(2_000))
        .await
        .unwrap();
    assert_ne!(lin.id, admin.id);
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    assert_eq!(store.account(admin.id).await.unwrap(), admin);
    assert_eq!(store.account_by_name("lin").await.unwrap(), lin);
    assert_eq!(
        store.accounts().await.unwrap(),
        vec![admin.clone(), lin.clone()]
    );

    let duplicate = store
        .create_account(new_account("lin"), Timestamp(3_000))
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict)),
        "{duplicate:?}"
    );
    assert_eq!(store.count_accounts().await.unwrap(), 2);

    assert!(matches!(
        store.account(OperatorId(9_999)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.account_by_name("nobody").await,
        Err(StoreError::NotFound)
    ));

    // A partial update changes only what it names.
    let updated = store
        .update_account(
            lin.id,
            AccountUpdate {
                role: Some(Role::CrisisLead),
                languages: Some(vec![lang("en")]),
                voice_capacity: Some(0),
                disabled: Some(true),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    let expected = lin_after_update(&lin);
    assert_eq!(updated, expected);
    assert_eq!(store.account(lin.id).await.unwrap(), expected);

    let renamed = store
        .update_account(
            lin.id,
            AccountUpdate {
                display_name: Some("林老师".into()),
                chat_capacity: Some(5),
                disabled: Some(false),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "林老师");
    assert_eq!(renamed.chat_capacity, 5);
    assert!(!renamed.disabled);
    assert_eq!(
        renamed.role,
        Role::CrisisLead,
        "untouched by the second update"
    );

    // Nothing to update still returns the row; an unknown account is NotFound.
    assert_eq!(
        store
            .update_account(lin.id, AccountUpdate::default())
            .await
            .unwrap(),
        renamed
    );
    assert!(matches!(
        store
            .update_account(OperatorId(9_999), AccountUpdate::default())
            .await,
        Err(StoreError::NotFound)
    ));
}

fn lin_after_update(lin: &hotline::store::Account) -> hotline::store::Account {
    let mut expected = lin.clone();
    expected.role = Role::CrisisLead;
    expected.languages = vec![lang("en")];
    expected.voice_capacity = 0;
    expected.disabled = true;
    expected
}

store_test!(voice_excludes_chat_round_trip);
async fn voice_excludes_chat_round_trip(store: DynStore, db: FreshDb) {
    // On unless an account says otherwise, as before the setting existed.
    let on = store
        .create_account(new_account("on"), Timestamp(1))
        .await
        .unwrap();
    assert!(on.voice_excludes_chat);
    let off = store
        .create_account(
            NewAccount {
                voice_excludes_chat: false,
                ..new_account("off")
            },
            Timestamp(2),
        )
        .await
        .unwrap();
    assert!(!off.voice_excludes_chat);
    assert!(!store.account(off.id).await.unwrap().voice_excludes_chat);
    assert!(
        !store
            .account_by_name("off")
            .await
            .unwrap()
            .voice_excludes_chat
    );

    // Changed on its own, and left alone by an update that does not name it.
    let turned = store
        .update_account(
            on.id,
            AccountUpdate {
                voice_excludes_chat: Some(false),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        turned,
        hotline::store::Account {
            voice_excludes_chat: false,
            ..on.clone()
        }
    );
    let kept = store
        .update_account(
            on.id,
            AccountUpdate {
                chat_capacity: Some(4),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(!kept.voice_excludes_chat);
    let back = store
        .update_account(
            off.id,
            AccountUpdate {
                voice_excludes_chat: Some(true),
                ..AccountUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(back.voice_excludes_chat);

    // Kept across a reopening of the database.
    let reopened = db.connect().await;
    let flags: Vec<(String, bool)> = reopened
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.name, a.voice_excludes_chat))
        .collect();
    assert_eq!(flags, [("on".into(), false), ("off".into(), true)]);
}

store_test!(password_change_clears_must_change);
async fn password_change_clears_must_change(store: DynStore, _db: FreshDb) {
    let mut first = new_account("admin");
    first.must_change_password = true;
    let admin = store.create_account(first, Timestamp(1)).await.unwrap();

    store
        .set_password(admin.id, "$argon2id$new", false)
        .await
        .unwrap();
    let after = store.account(admin.id).await.unwrap();
    assert_eq!(after.password_hash, "$argon2id$new");
    assert!(!after.must_change_password);

    // An administrator's reset sets a generated password that must be changed again.
    store
        .set_password(admin.id, "$argon2id$reset", true)
        .await
        .unwrap();
    let after = store.account(admin.id).await.unwrap();
    assert_eq!(after.password_hash, "$argon2id$reset");
    assert!(after.must_change_password);

    assert!(matches!(
        store.set_password(OperatorId(9_999), "x", false).await,
        Err(StoreError::NotFound)
    ));
}

// ---------- sessions ----------

store_test!(sessions);
async fn sessions(store: DynStore, _db: FreshDb) {
    let a = store
        .create_account(new_account("a"), Timestamp(0))
        .await
        .unwrap();
    let b = store
        .create_account(new_account("b"), Timestamp(0))
        .await
        .unwrap();
    let session = |token: &str, account: OperatorId| Session {
        token_hash: token.into(),
        account,
        created_at: Timestamp(1_000),
        expires_at: Timestamp(2_000),
    };
    for (token, account) in [("a1", a.id), ("a2", a.id), ("b1", b.id)] {
        store.create_session(session(token, account)).await.unwrap();
    }

    // Valid strictly before expiry.
    assert_eq!(
        store.session("a1", Timestamp(1_999)).await.unwrap(),
        session("a1", a.id)
    );
    for now in [2_000, 5_000] {
        assert!(matches!(
            store.session("a1", Timestamp(now)).await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store.session("nope", Timestamp(1_500)).await,
        Err(StoreError::NotFound)
    ));

    assert!(matches!(
        store.create_session(session("a1", a.id)).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.create_session(session("x", OperatorId(9_999))).await,
        Err(StoreError::NotFound)
    ));

    store.delete_session("a1").await.unwrap();
    store
        .delete_session("a1")
        .await
        .expect("logging out twice is fine");
    assert!(store.session("a1", Timestamp(1_500)).await.is_err());
    assert!(store.session("a2", Timestamp(1_500)).await.is_ok());

    store.delete_sessions_of(a.id).await.unwrap();
    assert!(store.session("a2", Timestamp(1_500)).await.is_err());
    assert!(
        store.session("b1", Timestamp(1_500)).await.is_ok(),
        "other accounts keep theirs"
    );
}

// ---------- skills ----------

store_test!(skills_and_account_skills);
async fn skills_and_account_skills(store: DynStore, _db: FreshDb) {
    let info = |name: &str, description: &str| SkillInfo {
        skill: skill(name),
        description: description.into(),
    };
    store
        .put_skill(info("youth", "young callers"))
        .await
        .unwrap();
    store
        .put_skill(info("crisis", "imminent risk"))
        .await
        .unwrap();
    store
        .put_skill(info("youth", "callers under 25"))
        .await
        .unwrap();
    assert_eq!(
        store.skills().await.unwrap(),
        vec![
            info("crisis", "imminent risk"),
            info("youth", "callers under 25")
        ]
    );

    let op = store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    assert!(store.account_skills(op.id).await.unwrap().is_empty());

    let set = vec![(skill("youth"), level(2)), (skill("crisis"), level(5))];
    store.set_account_skills(op.id, &set).await.unwrap();
    assert_eq!(
        store.account_skills(op.id).await.unwrap(),
        vec![(skill("crisis"), level(5)), (skill("youth"), level(2))]
    );

    // Replaces, does not merge.
    store
        .set_account_skills(op.id, &[(skill("youth"), level(4))])
        .await
        .unwrap();
    assert_eq!(
        store.account_skills(op.id).await.unwrap(),
        vec![(skill("youth"), level(4))]
    );

    // An unknown skill is NotFound, and the whole replacement is rolled back.
    let unknown = store
        .set_account_skills(
            op.id,
            &[(skill("crisis"), level(1)), (skill("juggling"), level(3))],
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert_eq!(
        store.account_skills(op.id).await.unwrap(),
        vec![(skill("youth"), level(4))]
    );

    assert!(matches!(
        store.set_account_skills(OperatorId(9_999), &[]).await,
        Err(StoreError::NotFound)
    ));

    store.set_account_skills(op.id, &[]).await.unwrap();
    assert!(store.account_skills(op.id).await.unwrap().is_empty());
}

// ---------- queues ----------

fn crisis_queue() -> QueueDefinition {
    QueueDefinition {
        id: queue_id("crisis"),
        name: "危机干预 Crisis".into(),
        required_skills: vec![SkillRequirement {
            skill: skill("crisis"),
            min_proficiency: level(4),
        }],
        languages: vec![lang("zh"), lang("en")],
        relaxation: vec![
            RelaxStep {
                after_ms: 60_000,
                max_proficiency: Some(level(2)),
                drop_skills: false,
            },
            RelaxStep {
                after_ms: 300_000,
                max_proficiency: None,
                drop_skills: true,
            },
        ],
        never_relax: false,
        overflow_to: Some(queue_id("general")),
        max_wait_ms: Some(600_000),
        opening_hours: OpeningHours::Daily {
            open_minute: 20 * 60,
            close_minute: 8 * 60,
            utc_offset_minutes: 480,
        },
        closed_message: "现在不在服务时间。".into(),
        alternatives: vec![Alternative {
            name: "Hotline".into(),
            number: "12356".into(),
        }],
    }
}

store_test!(queues_round_trip);
async fn queues_round_trip(store: DynStore, _db: FreshDb) {
    assert!(store.queues().await.unwrap().is_empty());
    let general = QueueDefinition::open(queue_id("general"), "General");
    let mut crisis = crisis_queue();
    store.put_queue(&general).await.unwrap();
    store.put_queue(&crisis).await.unwrap();
    assert_eq!(
        store.queues().await.unwrap(),
        vec![crisis.clone(), general.clone()]
    );

    crisis.never_relax = true;
    crisis.relaxation.clear();
    crisis.opening_hours = OpeningHours::Always;
    store.put_queue(&crisis).await.unwrap();
    assert_eq!(
        store.queues().await.unwrap(),
        vec![crisis.clone(), general.clone()]
    );

    store.delete_queue(&crisis.id).await.unwrap();
    assert_eq!(store.queues().await.unwrap(), vec![general]);
    assert!(matches!(
        store.delete_queue(&crisis.id).await,
        Err(StoreError::NotFound)
    ));
}

// ---------- contacts ----------

store_test!(contacts);
async fn contacts(store: DynStore, _db: FreshDb) {
    let first = store
        .create_contact(new_contact("r1", Some("caller-a"), 1_000))
        .await
        .unwrap();
    let expected = ContactRecord {
        id: first,
        queue: queue_id("general"),
        channel: Channel::Chat,
        language: lang("zh"),
        topic: Some(Topic::parse("family").unwrap()),
        age_group: Some("18-24".into()),
        risk: RiskLevel::Low,
        state: ContactState::Waiting,
        operator: None,
        caller_key_hash: Some("caller-a".into()),
        resume_token_hash: "r1".into(),
        entered_at: Timestamp(1_000),
        connected_at: None,
        ended_at: None,
    };
    assert_eq!(store.contact(first).await.unwrap(), expected);
    assert_eq!(store.contact_by_resume_token("r1").await.unwrap(), expected);

    let mut anonymous = new_contact("r2", None, 500);
    anonymous.channel = Channel::Voice;
    anonymous.topic = None;
    anonymous.age_group = None;
    anonymous.risk = RiskLevel::Imminent;
    let second = store.create_contact(anonymous).await.unwrap();
    let third = store
        .create_contact(new_contact("r3", Some("caller-a"), 3_000))
        .await
        .unwrap();
    let fourth = store
        .create_contact(new_contact("r4", Some("caller-b"), 2_000))
        .await
        .unwrap();
    assert_eq!(
        BTreeSet::from([first, second, third, fourth]).len(),
        4,
        "ids are unique"
    );
    let record = store.contact(second).await.unwrap();
    assert_eq!(
        (record.channel, record.topic, record.age_group, record.risk),
        (Channel::Voice, None, None, RiskLevel::Imminent)
    );
    assert_eq!(record.caller_key_hash, None);

    assert!(matches!(
        store.create_contact(new_contact("r1", None, 4_000)).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.contact(ContactId(9_999)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.contact_by_resume_token("nope").await,
        Err(StoreError::NotFound)
    ));

    // Open contacts, oldest first; a completed one drops out.
    let ids = |records: Vec<ContactRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.open_contacts().await.unwrap()),
        vec![second, first, fourth, third]
    );
    store
        .record_events(
            Timestamp(5_000),
            &[Event::Complete {
                contact: fourth,
                operator: OperatorId(1),
                handled_ms: 1,
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store.open_contacts().await.unwrap()),
        vec![second, first, third]
    );
    // Abandoned ones are found by when they were abandoned.
    assert!(
        store
            .abandoned_since(Timestamp(0))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .record_events(
            Timestamp(6_000),
            &[Event::Abandon {
                contact: third,
                queue: queue_id("general"),
                waited_ms: 1,
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store.abandoned_since(Timestamp(6_000)).await.unwrap()),
        vec![third]
    );
    assert!(
        store
            .abandoned_since(Timestamp(6_001))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.open_contacts().await.unwrap()),
        vec![second, first]
    );

    // A caller's contacts, newest first, limited.
    assert_eq!(
        ids(store.contacts_of_caller("caller-a", 10).await.unwrap()),
        vec![third, first]
    );
    assert_eq!(
        ids(store.contacts_of_caller("caller-a", 1).await.unwrap()),
        vec![third]
    );
    assert_eq!(
        ids(store.contacts_of_caller("caller-b", 10).await.unwrap()),
        vec![fourth]
    );
    assert!(
        store
            .contacts_of_caller("nobody", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

store_test!(corrupt_rows_are_reported);
async fn corrupt_rows_are_reported(store: DynStore, db: FreshDb) {
    let id = store
        .create_contact(new_contact("r1", Some("c"), 1))
        .await
        .unwrap();
    store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    db.execute("UPDATE contacts SET risk = 'apocalyptic'").await;
    db.execute("UPDATE accounts SET role = 'janitor'").await;
    assert!(matches!(
        store.contact(id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.contacts_of_caller("c", 5).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.account_by_name("op").await,
        Err(StoreError::Corrupt(_))
    ));

    db.execute("UPDATE contacts SET risk = 'low', state = 'lost'")
        .await;
    assert!(matches!(
        store.contact(id).await,
        Err(StoreError::Corrupt(_))
    ));
}

// ---------- transcripts ----------

store_test!(messages_are_numbered_per_contact);
async fn messages_are_numbered_per_contact(store: DynStore, _db: FreshDb) {
    let op = store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    let [a, b] = made_contacts(&store, ["ra", "rb"]).await;

    let m1 = store.append_message(line(a, "你好", 10)).await.unwrap();
    let whisper = NewMessage {
        contact: a,
        sender: Sender::Participant,
        author: Some(op.id),
        visibility: Visibility::Operators,
        body: "ask about safety".into(),
        at: Timestamp(11),
    };
    let m2 = store.append_message(whisper.clone()).await.unwrap();
    let b1 = store.append_message(line(b, "hello", 12)).await.unwrap();
    assert_eq!((m1.seq, m2.seq, b1.seq), (1, 2, 1));
    assert_eq!(
        (m2.sender, m2.author, m2.visibility),
        (Sender::Participant, Some(op.id), Visibility::Operators)
    );
    assert_eq!(store.messages(a).await.unwrap(), vec![m1, m2]);
    assert_eq!(store.messages(b).await.unwrap(), vec![b1]);
    assert!(store.messages(ContactId(9_999)).await.unwrap().is_empty());

    assert!(matches!(
        store.append_message(line(ContactId(9_999), "x", 1)).await,
        Err(StoreError::NotFound)
    ));
    let ghost_author = NewMessage {
        author: Some(OperatorId(9_999)),
        ..whisper
    };
    assert!(matches!(
        store.append_message(ghost_author).await,
        Err(StoreError::NotFound)
    ));
    // Failed appends leave no gap.
    assert_eq!(store.append_message(line(a, "x", 13)).await.unwrap().seq, 3);
}

store_test!(concurrent_appends_have_no_gaps);
async fn concurrent_appends_have_no_gaps(store: DynStore, _db: FreshDb) {
    let contact = store
        .create_contact(new_contact("r", None, 1))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_message(line(contact, &format!("line {i}"), i))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>());

    let stored = store.messages(contact).await.unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<i64>>()
    );
    let bodies: BTreeSet<_> = stored.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), 20, "every line stored once");
}

store_test!(a_transcript_is_read_a_page_at_a_time);
async fn a_transcript_is_read_a_page_at_a_time(store: DynStore, _db: FreshDb) {
    let op = store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    let [a, b] = made_contacts(&store, ["pa", "pb"]).await;
    // Seven lines; the 3rd and 6th are whispers, which only staff read.
    let mut lines = Vec::new();
    for i in 1..=7 {
        let mut m = line(a, &format!("line {i}"), i);
        if i % 3 == 0 {
            m.sender = Sender::Participant;
            m.author = Some(op.id);
            m.visibility = Visibility::Operators;
        }
        lines.push(m);
    }
    store.append_messages(lines, None).await.unwrap();
    store.append_message(line(b, "other", 8)).await.unwrap();
    let seqs = |page: &TranscriptPage| page.lines.iter().map(|m| m.seq).collect::<Vec<_>>();

    let newest = store
        .transcript_page(a, Reader::Staff, None, 3)
        .await
        .unwrap();
    assert_eq!((seqs(&newest), newest.earlier), (vec![5, 6, 7], true));
    assert_eq!(newest.lines[0].body, "line 5");
    let before = store
        .transcript_page(a, Reader::Staff, Some(5), 3)
        .await
        .unwrap();
    assert_eq!((seqs(&before), before.earlier), (vec![2, 3, 4], true));
    let first = store
        .transcript_page(a, Reader::Staff, Some(2), 3)
        .await
        .unwrap();
    assert_eq!((seqs(&first), first.earlier), (vec![1], false));
    // Exactly the lines left: nothing earlier.
    let exact = store
        .transcript_page(a, Reader::Staff, Some(4), 3)
        .await
        .unwrap();
    assert_eq!((seqs(&exact), exact.earlier), (vec![1, 2, 3], false));

    let caller = store
        .transcript_page(a, Reader::Caller, None, 3)
        .await
        .unwrap();
    assert_eq!((seqs(&caller), caller.earlier), (vec![4, 5, 7], true));
    let caller = store
        .transcript_page(a, Reader::Caller, Some(4), 3)
        .await
        .unwrap();
    assert_eq!((seqs(&caller), caller.earlier), (vec![1, 2], false));

    let all = store
        .transcript_page(a, Reader::Staff, None, 100)
        .await
        .unwrap();
    assert_eq!(all.lines, store.messages(a).await.unwrap());
    assert!(!all.earlier);
    let none = store
        .transcript_page(ContactId(9_999), Reader::Staff, None, 3)
        .await
        .unwrap();
    assert_eq!((none.lines.len(), none.earlier), (0, false));
}

// ---------- event log ----------

/// Records a batch and checks the contact row against the in-memory projection.
async fn record_and_check(
    store: &DynStore,
    expected: &mut ContactRecord,
    at: i64,
    batch: &[Event],
) -> ContactRecord {
    store.record_events(Timestamp(at), batch).await.unwrap();
    for event in batch {
        if let Some((id, change)) = project(event, Timestamp(at)) {
            assert_eq!(id, expected.id);
            change.apply(expected);
        }
    }
    let row = store.contact(expected.id).await.unwrap();
    assert_eq!(
        &row,
        expected,
        "after {:?}",
        batch.iter().map(Event::kind).collect::<Vec<_>>()
    );
    row
}

store_test!(a_batch_creates_contacts_with_reserved_ids);
async fn a_batch_creates_contacts_with_reserved_ids(store: DynStore, _db: FreshDb) {
    let before = store
        .create_contact(new_contact("r0", None, 1))
        .await
        .unwrap();
    let ids = store.reserve_contact_ids(3).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|id| id.0 > before.0),
        "{ids:?} after {before:?}"
    );
    let more = store.reserve_contact_ids(2).await.unwrap();
    assert!(
        more.iter().all(|id| !ids.contains(id)),
        "never handed out twice"
    );
    // A contact created the ordinary way takes none of the reserved ids.
    let after = store
        .create_contact(new_contact("r9", None, 1))
        .await
        .unwrap();
    assert!(!ids.contains(&after) && !more.contains(&after));

    // Contacts created in the batch that logs their first events; the projection applies to
    // them, and to a contact that existed before, in the same batch.
    let (a, d, b) = (ids[0], ids[1], ids[2]);
    let op = OperatorId(7);
    let enter = |contact, risk| Event::EnterQueue {
        contact,
        queue: queue_id("general"),
        channel: Channel::Chat,
        risk,
    };
    store
        .record_batch(
            Timestamp(5_000),
            None,
            &[
                (a, new_contact("ra", Some("caller"), 5_000)),
                (b, new_contact("rb", None, 5_000)),
                (d, new_contact("rd", None, 5_000)),
            ],
            &[
                enter(a, RiskLevel::Low),
                enter(b, RiskLevel::Low),
                Event::RiskChange {
                    contact: b,
                    from: RiskLevel::Low,
                    to: RiskLevel::High,
                },
                enter(d, RiskLevel::None),
                Event::Offer {
                    contact: d,
                    operator: op,
                    expires_at: Timestamp(5_030),
                },
                Event::Offer {
                    contact: before,
                    operator: op,
                    expires_at: Timestamp(5_030),
                },
            ],
        )
        .await
        .unwrap();
    for id in [d, before] {
        let row = store.contact(id).await.unwrap();
        assert_eq!((row.state, row.operator), (ContactState::Offered, Some(op)));
    }
    let (row_a, row_b) = (
        store.contact(a).await.unwrap(),
        store.contact(b).await.unwrap(),
    );
    assert_eq!(
        (row_a.state, row_a.risk),
        (ContactState::Waiting, RiskLevel::Low)
    );
    assert_eq!(row_a.caller_key_hash.as_deref(), Some("caller"));
    assert_eq!(row_b.risk, RiskLevel::High);
    assert_eq!(store.contact_by_resume_token("rb").await.unwrap().id, b);
    let kinds: Vec<_> = store
        .events_of_contact(b)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["enter_queue", "risk_change"]);
    // Lines can be appended to them at once.
    assert_eq!(
        store
            .append_message(line(b, "hi", 5_001))
            .await
            .unwrap()
            .seq,
        1
    );

    // A batch that fails (a resume token used twice) creates nothing and logs nothing.
    let c = more[0];
    assert!(
        store
            .record_batch(
                Timestamp(6_000),
                None,
                &[(c, new_contact("ra", None, 6_000))],
                &[enter(c, RiskLevel::None)],
            )
            .await
            .is_err()
    );
    assert!(matches!(store.contact(c).await, Err(StoreError::NotFound)));
    assert!(store.events_of_contact(c).await.unwrap().is_empty());
    // Nothing of the failed transaction lingers (no lock held, no half-open transaction): the
    // next writes go through at once.
    for _ in 0..10 {
        store.append_message(line(b, "again", 6_001)).await.unwrap();
    }
    store
        .record_batch(
            Timestamp(7_000),
            None,
            &[(c, new_contact("rc", None, 7_000))],
            &[enter(c, RiskLevel::None)],
        )
        .await
        .unwrap();
    assert_eq!(store.contact(c).await.unwrap().state, ContactState::Waiting);
}

store_test!(a_numbered_batch_is_written_once);
/// The router numbers its batches: a batch that committed although its writer was told it failed
/// (the connection lost after the commit) must not be written again when the writer retries.
async fn a_numbered_batch_is_written_once(store: DynStore, _db: FreshDb) {
    let ids = store.reserve_contact_ids(2).await.unwrap();
    let enter = |contact| Event::EnterQueue {
        contact,
        queue: queue_id("general"),
        channel: Channel::Chat,
        risk: RiskLevel::None,
    };
    let head = store.log_head(Log::Events).await.unwrap();
    let first = [(ids[0], new_contact("n1", None, 1_000))];
    store
        .record_batch(Timestamp(1_000), Some(head + 1), &first, &[enter(ids[0])])
        .await
        .unwrap();
    assert_eq!(store.log_head(Log::Events).await.unwrap(), head + 1);
    // The same batch again (a retry after an ambiguous commit) is refused and writes nothing.
    assert!(
        store
            .record_batch(Timestamp(1_000), Some(head + 1), &[], &[enter(ids[0])])
            .await
            .is_err()
    );
    // So is a number that skips ahead.
    let second = [(ids[1], new_contact("n2", None, 2_000))];
    assert!(
        store
            .record_batch(Timestamp(2_000), Some(head + 3), &second, &[enter(ids[1])])
            .await
            .is_err()
    );
    assert_eq!(store.log_head(Log::Events).await.unwrap(), head + 1);
    assert_eq!(store.events_of_contact(ids[0]).await.unwrap().len(), 1);
    assert!(matches!(
        store.contact(ids[1]).await,
        Err(StoreError::NotFound)
    ));
    // The next number goes through, and so does an unnumbered batch after it.
    store
        .record_batch(Timestamp(2_000), Some(head + 2), &second, &[enter(ids[1])])
        .await
        .unwrap();
    store.record_events(Timestamp(3_000), &[]).await.unwrap();
    store
        .record_events(Timestamp(3_000), &[enter(ids[1])])
        .await
        .unwrap();
    assert_eq!(store.log_head(Log::Events).await.unwrap(), head + 3);
}

store_test!(a_numbered_transcript_batch_is_written_once_and_read_back);
/// The transcript writer numbers its batches: one that committed although the writer was told it
/// failed is read back, not written again.
async fn a_numbered_transcript_batch_is_written_once_and_read_back(store: DynStore, _db: FreshDb) {
    let [a, b] = made_contacts(&store, ["ta", "tb"]).await;
    store.append_message(line(a, "before", 1)).await.unwrap();
    let head = store.log_head(Log::Transcript).await.unwrap();
    let batch = || vec![line(b, "b1", 2), line(a, "a2", 3), line(b, "b2", 4)];
    assert!(
        store
            .appended_batch(head + 1, batch())
            .await
            .unwrap()
            .is_none()
    );
    let written = store
        .append_messages(batch(), Some(head + 1))
        .await
        .unwrap();
    assert_eq!(store.log_head(Log::Transcript).await.unwrap(), head + 1);
    // Read back as the write returned them.
    let again = store.appended_batch(head + 1, batch()).await.unwrap();
    assert_eq!(again.as_ref(), Some(&written));
    // The same number again, or one that skips ahead, writes nothing.
    assert!(
        store
            .append_messages(batch(), Some(head + 1))
            .await
            .is_err()
    );
    assert!(
        store
            .append_messages(batch(), Some(head + 3))
            .await
            .is_err()
    );
    let bodies =
        |m: Vec<hotline::store::Message>| m.into_iter().map(|m| m.body).collect::<Vec<_>>();
    assert_eq!(bodies(store.messages(a).await.unwrap()), ["before", "a2"]);
    assert_eq!(bodies(store.messages(b).await.unwrap()), ["b1", "b2"]);
    // An earlier number is no longer the last batch.
    store.append_message(line(a, "after", 5)).await.unwrap();
    assert!(
        store
            .appended_batch(head + 1, batch())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.log_head(Log::Transcript).await.unwrap(), head + 2);
}

store_test!(the_last_alive_is_the_newest_event_or_line);
/// Without an alive mark, when the server last wrote something: the later of the newest event
/// and the newest transcript line; `None` before either is written.
async fn the_last_alive_is_the_newest_event_or_line(store: DynStore, _db: FreshDb) {
    assert_eq!(store.last_alive().await.unwrap(), None);
    // A contact row is not activity; its events and lines are.
    let [a] = made_contacts(&store, ["la"]).await;
    assert_eq!(store.last_alive().await.unwrap(), None);
    store.append_message(line(a, "first", 1_000)).await.unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(1_000)));
    store
        .record_events(Timestamp(2_000), &[Event::CallerAway { contact: a }])
        .await
        .unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(2_000)));
    store
        .append_messages(vec![line(a, "a", 2_500), line(a, "b", 3_000)], None)
        .await
        .unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(3_000)));
    store
        .record_events(
            Timestamp(4_000),
            &[
                Event::CallerBack { contact: a },
                Event::CallerAway { contact: a },
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(4_000)));
}

store_test!(the_alive_mark_is_the_last_alive_unless_something_is_newer);
/// The alive mark tells when the server was last alive when it is the latest, even with no
/// event or line at all (a quiet night); an older mark hides no newer event or line.
async fn the_alive_mark_is_the_last_alive_unless_something_is_newer(store: DynStore, _db: FreshDb) {
    store.mark_alive(Timestamp(1_000)).await.unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(1_000)));
    let [a] = made_contacts(&store, ["am"]).await;
    store
        .record_events(Timestamp(2_000), &[Event::CallerAway { contact: a }])
        .await
        .unwrap();
    store.append_message(line(a, "a", 2_500)).await.unwrap();
    assert_eq!(
        store.last_alive().await.unwrap(),
        Some(Timestamp(2_500)),
        "a line after the mark"
    );
    store.mark_alive(Timestamp(10_000)).await.unwrap();
    assert_eq!(
        store.last_alive().await.unwrap(),
        Some(Timestamp(10_000)),
        "the mark after the last event and line"
    );
    store
        .record_events(Timestamp(12_000), &[Event::CallerBack { contact: a }])
        .await
        .unwrap();
    assert_eq!(
        store.last_alive().await.unwrap(),
        Some(Timestamp(12_000)),
        "an event after the mark"
    );
    // One mark, written over: the last one written is the mark (a clock set back is corrected
    // at the next), and an earlier mark than the newest event still leaves that event.
    store.mark_alive(Timestamp(20_000)).await.unwrap();
    store.mark_alive(Timestamp(15_000)).await.unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(15_000)));
    store.mark_alive(Timestamp(11_000)).await.unwrap();
    assert_eq!(store.last_alive().await.unwrap(), Some(Timestamp(12_000)));
}

store_test!(a_batch_of_lines_is_numbered_per_contact);
async fn a_batch_of_lines_is_numbered_per_contact(store: DynStore, _db: FreshDb) {
    let [a, b] = made_contacts(&store, ["ra", "rb"]).await;
    store.append_message(line(a, "first", 1)).await.unwrap();
    let batch = vec![
        line(b, "b1", 2),
        line(a, "a2", 3),
        line(b, "b2", 4),
        line(a, "a3", 5),
    ];
    let written = store.append_messages(batch, None).await.unwrap();
    let got: Vec<_> = written
        .iter()
        .map(|m| (m.contact, m.seq, m.body.as_str()))
        .collect();
    assert_eq!(
        got,
        [(b, 1, "b1"), (a, 2, "a2"), (b, 2, "b2"), (a, 3, "a3")]
    );
    assert_eq!(
        store.messages(a).await.unwrap()[1..],
        [written[1].clone(), written[3].clone()]
    );
    let ids: BTreeSet<_> = written.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 4, "each line has its own id");
    // One unknown contact fails the whole batch, and leaves no gap.
    assert!(matches!(
        store
            .append_messages(vec![line(a, "x", 6), line(ContactId(9_999), "y", 6)], None)
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.append_message(line(a, "a4", 7)).await.unwrap().seq, 4);
    // Batches of every size the statements are shaped for (SQLite writes lines in inserts of 8
    // or 128 rows): each line once, in order, numbered on from the contact's last line.
    let mut next = [3, 5]; // b's and a's next seq
    for size in [8, 9, 128, 129, 300, 1_500] {
        let batch: Vec<_> = (0..size)
            .map(|i| line(if i % 3 == 0 { b } else { a }, &format!("{size}:{i}"), 10))
            .collect();
        let written = store.append_messages(batch, None).await.unwrap();
        assert_eq!(written.len(), size);
        for (i, m) in written.iter().enumerate() {
            let slot = usize::from(i % 3 != 0);
            assert_eq!(m.contact, [b, a][slot]);
            assert_eq!(
                (m.seq, m.body.as_str()),
                (next[slot], format!("{size}:{i}").as_str())
            );
            next[slot] += 1;
        }
    }
    let stored = store.messages(a).await.unwrap();
    assert_eq!(stored.len() as i64, next[1] - 1);
    assert!(stored.iter().zip(1..).all(|(m, seq)| m.seq == seq));
}

store_test!(record_events_through_a_lifecycle);
async fn record_events_through_a_lifecycle(store: DynStore, _db: FreshDb) {
    let op = store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap()
        .id;
    let other_op = OperatorId(op.0 + 1_000); // the log needs no account for it
    let id = store
        .create_contact(new_contact("r", None, 1_000))
        .await
        .unwrap();
    let mut expected = store.contact(id).await.unwrap();
    let general = queue_id("general");
    let offer = |operator| Event::Offer {
        contact: id,
        operator,
        expires_at: Timestamp(99_999),
    };

    let batches: Vec<(i64, Vec<Event>)> = vec![
        (
            1_000,
            vec![Event::EnterQueue {
                contact: id,
                queue: general.clone(),
                channel: Channel::Chat,
                risk: RiskLevel::Low,
            }],
        ),
        (2_000, vec![offer(other_op)]),
        (
            3_000,
            vec![
                Event::Reject {
                    contact: id,
                    operator: other_op,
                },
                Event::RiskChange {
                    contact: id,
                    from: RiskLevel::Low,
                    to: RiskLevel::High,
                },
                offer(op),
            ],
        ),
        (
            4_000,
            vec![
                Event::Accept {
                    contact: id,
                    operator: op,
                },
                Event::Connect {
                    contact: id,
                    operator: op,
                    queue: general.clone(),
                    waited_ms: 3_000,
                },
                Event::OperatorState {
                    operator: op,
                    state: OperatorState::Busy,
                },
            ],
        ),
        (
            5_000,
            vec![Event::WrapUp {
                contact: id,
                operator: op,
                by: EndedBy::Caller,
            }],
        ),
        (
            6_000,
            vec![Event::Complete {
                contact: id,
                operator: op,
                handled_ms: 2_000,
            }],
        ),
    ];

    let mut states = Vec::new();
    for (at, batch) in &batches {
        let row = record_and_check(&store, &mut expected, *at, batch).await;
        states.push((row.state, row.operator));
    }
    assert_eq!(
        states,
        vec![
            (ContactState::Waiting, None),
            (ContactState::Offered, Some(other_op)),
            (ContactState::Offered, Some(op)),
            (ContactState::Assigned, Some(op)),
            (ContactState::Wrapping, Some(op)),
            (ContactState::Completed, Some(op)),
        ]
    );
    let done = store.contact(id).await.unwrap();
    assert_eq!(done.risk, RiskLevel::High);
    assert_eq!(done.connected_at, Some(Timestamp(4_000)));
    assert_eq!(done.ended_at, Some(Timestamp(6_000)));
    assert!(store.open_contacts().await.unwrap().is_empty());

    // The log holds every event of the contact, in order, whole.
    let logged = store.events_of_contact(id).await.unwrap();
    let recorded: Vec<(i64, &Event)> = batches
        .iter()
        .flat_map(|(at, batch)| batch.iter().map(move |e| (*at, e)))
        .filter(|(_, e)| e.contact() == Some(id))
        .collect();
    assert_eq!(logged.len(), recorded.len());
    for (stored, (at, event)) in logged.iter().zip(&recorded) {
        assert_eq!(stored.at, Timestamp(*at));
        assert_eq!(stored.kind, event.kind());
        assert_eq!(stored.contact, Some(id));
        assert_eq!(stored.operator, event.operator());
        let data: Event = serde_json::from_value(stored.data.clone()).unwrap();
        assert_eq!(&data, *event);
    }
    assert!(logged.windows(2).all(|w| w[0].seq < w[1].seq));

    // The global log also holds the operator-state event; page through it.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    let all_recorded = batches.iter().map(|(_, b)| b.len()).sum::<usize>();
    assert_eq!(paged.len(), all_recorded);
    assert!(paged.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        paged
            .iter()
            .filter(|e| e.kind == "operator_state")
            .map(|e| (e.contact, e.operator))
            .collect::<Vec<_>>(),
        vec![(None, Some(op))]
    );
    assert_eq!(
        paged.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        batches
            .iter()
            .flat_map(|(_, b)| b.iter().map(Event::kind))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        store.events_after(paged[1].seq, 2).await.unwrap(),
        paged[2..4].to_vec()
    );
    assert!(store.events_after(after, 10).await.unwrap().is_empty());
}

store_test!(abandon_and_resume);
async fn abandon_and_resume(store: DynStore, _db: FreshDb) {
    let id = store
        .create_contact(new_contact("r", None, 1_000))
        .await
        .unwrap();
    let mut expected = store.contact(id).await.unwrap();
    let abandon = Event::Abandon {
        contact: id,
        queue: queue_id("general"),
        waited_ms: 1_000,
    };
    let row = record_and_check(&store, &mut expected, 2_000, &[abandon]).await;
    assert_eq!(
        (row.state, row.ended_at),
        (ContactState::Abandoned, Some(Timestamp(2_000)))
    );
    assert!(store.open_contacts().await.unwrap().is_empty());

    let row = record_and_check(
        &store,
        &mut expected,
        2_500,
        &[Event::Resume { contact: id }],
    )
    .await;
    assert_eq!((row.state, row.ended_at), (ContactState::Waiting, None));
    assert_eq!(store.open_contacts().await.unwrap(), vec![row]);
}

store_test!(transfers_overflow_and_requeue);
async fn transfers_overflow_and_requeue(store: DynStore, _db: FreshDb) {
    let id = store
        .create_contact(new_contact("r", None, 1_000))
        .await
        .unwrap();
    let mut expected = store.contact(id).await.unwrap();
    let (a, b) = (OperatorId(1), OperatorId(2));
    let steps: Vec<Vec<Event>> = vec![
        vec![Event::Overflow {
            contact: id,
            from: queue_id("general"),
            to: queue_id("backup"),
            reason: OverflowReason::NoEligibleOperator,
        }],
        vec![
            Event::Offer {
                contact: id,
                operator: a,
                expires_at: Timestamp(0),
            },
            Event::OfferTimeout {
                contact: id,
                operator: a,
            },
        ],
        vec![
            Event::Offer {
                contact: id,
                operator: a,
                expires_at: Timestamp(0),
            },
            Event::Accept {
                contact: id,
                operator: a,
            },
        ],
        vec![Event::Transfer {
            contact: id,
            from: a,
            target: TransferTarget::Operator { operator: b },
        }],
        vec![Event::Requeue {
            contact: id,
            queue: queue_id("backup"),
            reason: RequeueReason::TransferNotTaken,
        }],
        vec![Event::Transfer {
            contact: id,
            from: b,
            target: TransferTarget::Queue {
                queue: queue_id("crisis"),
            },
        }],
        vec![
            Event::Offer {
                contact: id,
                operator: b,
                expires_at: Timestamp(0),
            },
            Event::OfferRescinded {
                contact: id,
                operator: b,
            },
        ],
    ];
    let mut seen = Vec::new();
    for (i, batch) in steps.iter().enumerate() {
        let row = record_and_check(&store, &mut expected, 2_000 + i as i64, batch).await;
        seen.push((row.state, row.operator, row.queue.to_string()));
    }
    let s = |state, operator, queue: &str| (state, operator, queue.to_string());
    assert_eq!(
        seen,
        vec![
            s(ContactState::Waiting, None, "backup"),
            s(ContactState::Waiting, None, "backup"),
            s(ContactState::Assigned, Some(a), "backup"),
            s(ContactState::Offered, Some(b), "backup"),
            s(ContactState::Waiting, None, "backup"),
            s(ContactState::Waiting, None, "crisis"),
            s(ContactState::Waiting, None, "crisis"),
        ]
    );
}

store_test!(events_without_a_contact_row_are_still_logged);
async fn events_without_a_contact_row_are_still_logged(store: DynStore, _db: FreshDb) {
    store.record_events(Timestamp(1), &[]).await.unwrap();
    assert!(store.events_after(0, 10).await.unwrap().is_empty());

    let ghost = ContactId(9_999);
    store
        .record_events(
            Timestamp(2),
            &[
                Event::CallerAway { contact: ghost },
                Event::Resume { contact: ghost },
            ],
        )
        .await
        .unwrap();
    let logged = store.events_of_contact(ghost).await.unwrap();
    assert_eq!(
        logged.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["caller_away", "resume"]
    );
}

store_test!(which_contacts_lost_their_operator);
async fn which_contacts_lost_their_operator(store: DynStore, _db: FreshDb) {
    assert!(store.lost_their_operator(&[]).await.unwrap().is_empty());
    let (lost, not_taken, never, lost_twice) =
        (ContactId(11), ContactId(12), ContactId(13), ContactId(14));
    let requeue = |contact, reason| Event::Requeue {
        contact,
        queue: queue_id("general"),
        reason,
    };
    store
        .record_events(
            Timestamp(1),
            &[
                requeue(lost_twice, RequeueReason::OperatorLost),
                requeue(lost, RequeueReason::OperatorLost),
                requeue(not_taken, RequeueReason::TransferNotTaken),
                Event::CallerAway { contact: never },
            ],
        )
        .await
        .unwrap();
    store
        .record_events(
            Timestamp(2),
            &[requeue(lost_twice, RequeueReason::OperatorLost)],
        )
        .await
        .unwrap();
    let asked = [lost, not_taken, never, lost_twice, ContactId(99)];
    assert_eq!(
        store.lost_their_operator(&asked).await.unwrap(),
        vec![lost, lost_twice]
    );
    // Only the contacts asked about.
    assert_eq!(
        store
            .lost_their_operator(&[not_taken, lost_twice])
            .await
            .unwrap(),
        vec![lost_twice]
    );
}

store_test!(joins_and_leaves_of_the_contacts_asked_about);
async fn joins_and_leaves_of_the_contacts_asked_about(store: DynStore, _db: FreshDb) {
    assert!(store.joins_and_leaves(&[]).await.unwrap().is_empty());
    let (a, b, other) = (ContactId(21), ContactId(22), ContactId(23));
    let (lead, supervisor) = (OperatorId(5), OperatorId(6));
    let join = |contact, participant, mode| Event::Join {
        contact,
        participant,
        mode,
    };
    store
        .record_events(
            Timestamp(1),
            &[
                join(a, lead, JoinMode::Monitor),
                join(other, lead, JoinMode::Barge),
                join(b, supervisor, JoinMode::Whisper),
                Event::CallerAway { contact: a },
            ],
        )
        .await
        .unwrap();
    store
        .record_events(
            Timestamp(2),
            &[
                Event::Leave {
                    contact: b,
                    participant: supervisor,
                },
                join(a, supervisor, JoinMode::Barge),
            ],
        )
        .await
        .unwrap();
    let found = store
        .joins_and_leaves(&[b, a, ContactId(99)])
        .await
        .unwrap();
    let kinds: Vec<(Option<ContactId>, &str)> =
        found.iter().map(|e| (e.contact, e.kind.as_str())).collect();
    // Oldest first; only joins and leaves; only the contacts asked about.
    assert_eq!(
        kinds,
        vec![
            (Some(a), "join"),
            (Some(b), "join"),
            (Some(b), "leave"),
            (Some(a), "join"),
        ]
    );
    assert_eq!(
        serde_json::from_value::<Event>(found[3].data.clone()).unwrap(),
        join(a, supervisor, JoinMode::Barge)
    );
}

store_test!(stays_of_the_contacts_asked_about);
async fn stays_of_the_contacts_asked_about(store: DynStore, _db: FreshDb) {
    assert!(store.stays(&[]).await.unwrap().is_empty());
    let (overflowed, requeued, moved, handed, resumed, other) = (
        ContactId(31),
        ContactId(32),
        ContactId(33),
        ContactId(34),
        ContactId(35),
        ContactId(36),
    );
    let enter = |contact, queue| Event::EnterQueue {
        contact,
        queue: queue_id(queue),
        channel: Channel::Chat,
        risk: RiskLevel::None,
    };
    let overflow = |contact, from, to| Event::Overflow {
        contact,
        from: queue_id(from),
        to: queue_id(to),
        reason: OverflowReason::MaxWait,
    };
    store
        .record_events(
            Timestamp(1),
            &[
                enter(overflowed, "a"),
                enter(requeued, "general"),
                enter(moved, "general"),
                enter(handed, "general"),
                enter(resumed, "general"),
                enter(other, "a"),
            ],
        )
        .await
        .unwrap();
    store
        .record_events(
            Timestamp(2),
            &[
                overflow(overflowed, "a", "b"),
                overflow(other, "a", "b"),
                Event::Abandon {
                    contact: resumed,
                    queue: queue_id("general"),
                    waited_ms: 1,
                },
            ],
        )
        .await
        .unwrap();
    store
        .record_events(
            Timestamp(3),
            &[
                overflow(overflowed, "b", "c"),
                Event::Relax {
                    contact: overflowed,
                    step: 0,
                },
                Event::Requeue {
                    contact: requeued,
                    queue: queue_id("general"),
                    reason: RequeueReason::OperatorLost,
                },
                Event::Transfer {
                    contact: moved,
                    from: OperatorId(1),
                    target: TransferTarget::Queue {
                        queue: queue_id("crisis"),
                    },
                },
                Event::Transfer {
                    contact: handed,
                    from: OperatorId(1),
                    target: TransferTarget::Operator {
                        operator: OperatorId(2),
                    },
                },
                Event::Resume { contact: resumed },
            ],
        )
        .await
        .unwrap();
    store
        .record_events(
            Timestamp(4),
            &[
                Event::Connect {
                    contact: handed,
                    operator: OperatorId(2),
                    queue: queue_id("general"),
                    waited_ms: 1,
                },
                Event::Offer {
                    contact: overflowed,
                    operator: OperatorId(1),
                    expires_at: Timestamp(5),
                },
                Event::OfferTimeout {
                    contact: overflowed,
                    operator: OperatorId(1),
                },
                Event::Relax {
                    contact: resumed,
                    step: 0,
                },
            ],
        )
        .await
        .unwrap();
    // The conversation with its current operator ends: the wrap-up is told apart too.
    store
        .record_events(
            Timestamp(6),
            &[Event::WrapUp {
                contact: handed,
                operator: OperatorId(2),
                by: EndedBy::Operator,
            }],
        )
        .await
        .unwrap();
    let stay = |contact, since, from: &[&str]| Stay {
        contact,
        since: Timestamp(since),
        overflowed_from: from.iter().map(|q| queue_id(q)).collect(),
        last_connect: None,
        last_wrap_up: None,
    };
    // In id order; only the contacts asked about; offers, relaxation, abandoning, resuming and
    // connecting begin no stay (the last connect is told apart).
    assert_eq!(
        store
            .stays(&[resumed, handed, overflowed, requeued, moved, ContactId(99)])
            .await
            .unwrap(),
        vec![
            stay(overflowed, 3, &["a", "b"]),
            stay(requeued, 3, &[]),
            stay(moved, 3, &[]),
            Stay {
                last_connect: Some(Timestamp(4)),
                last_wrap_up: Some(Timestamp(6)),
                ..stay(handed, 3, &[])
            },
            stay(resumed, 1, &[]),
        ]
    );
}

// ---------- notes ----------

store_test!(amendments_to_a_note_are_appended_one_at_a_time);
async fn amendments_to_a_note_are_appended_one_at_a_time(store: DynStore, _db: FreshDb) {
    let op = store
        .create_account(new_account("op"), Timestamp(1))
        .await
        .unwrap();
    let [contact] = made_contacts(&store, ["amended"]).await;
    let fields = |json: serde_json::Value| -> hotline::store::notes::NoteFields {
        serde_json::from_value(json).unwrap()
    };
    let note = store
        .submit_note(
            contact,
            op.id,
            1,
            &fields(serde_json::json!({"call_type": "silent"})),
            Timestamp(2),
        )
        .await
        .unwrap();
    let amend = |after: Option<i64>, n: i64| {
        let store = store.clone();
        let changes = fields(serde_json::json!({"summary": format!("change {n}")}));
        async move {
            store
                .amend_note(note.id, op.id, "why", &changes, Timestamp(3 + n), after)
                .await
                .unwrap()
        }
    };
    // Eight at once, each checked against the note without amendments: one is appended.
    let tries: Vec<_> = (0..8).map(|n| tokio::spawn(amend(None, n))).collect();
    let mut appended = Vec::new();
    for t in tries {
        appended.extend(t.await.unwrap());
    }
    assert_eq!(appended.len(), 1, "{appended:?}");
    let first = appended.remove(0);
    // Checked against an amendment that is no longer the last: nothing is written.
    assert_eq!(amend(None, 10).await, None);
    let second = amend(Some(first.id), 11).await.expect("after the last one");
    assert_eq!(amend(Some(first.id), 12).await, None);
    let stored = store.note(note.id).await.unwrap();
    assert_eq!(stored.amendments, vec![first, second]);
    // A draft is not amended, whatever it was checked against.
    let other = store
        .create_account(new_account("other"), Timestamp(1))
        .await
        .unwrap();
    let draft = store
        .save_note_draft(
            contact,
            other.id,
            1,
            &fields(serde_json::json!({})),
            Timestamp(4),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .amend_note(
                draft.id,
                other.id,
                "why",
                &fields(serde_json::json!({})),
                Timestamp(5),
                None
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .amend_note(
                99_999,
                op.id,
                "why",
                &fields(serde_json::json!({})),
                Timestamp(5),
                None
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

// ---------- durability and migrations ----------

store_test!(data_survives_reopening);
async fn data_survives_reopening(store: DynStore, db: FreshDb) {
    let op = store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    let id = store
        .create_contact(new_contact("r", Some("c"), 1))
        .await
        .unwrap();
    let message = store.append_message(line(id, "hi", 2)).await.unwrap();
    store
        .record_events(
            Timestamp(3),
            &[Event::Offer {
                contact: id,
                operator: op.id,
                expires_at: Timestamp(4),
            }],
        )
        .await
        .unwrap();
    store
        .put_queue(&QueueDefinition::open(queue_id("general"), "General"))
        .await
        .unwrap();

    // Committed, not cached: a second store on the same database sees it at once.
    let second = db.connect().await;
    assert_eq!(second.account(op.id).await.unwrap(), op);
    assert_eq!(second.messages(id).await.unwrap(), vec![message.clone()]);

    drop(second);
    drop(store);
    let reopened = db.connect().await;
    assert_eq!(reopened.account(op.id).await.unwrap(), op);
    let contact = reopened.contact(id).await.unwrap();
    assert_eq!(
        (contact.state, contact.operator),
        (ContactState::Offered, Some(op.id))
    );
    assert_eq!(reopened.messages(id).await.unwrap(), vec![message]);
    assert_eq!(reopened.events_of_contact(id).await.unwrap().len(), 1);
    assert_eq!(reopened.queues().await.unwrap().len(), 1);
    // Numbering carries on after the reopen.
    assert_eq!(
        reopened
            .append_message(line(id, "again", 5))
            .await
            .unwrap()
            .seq,
        2
    );
}

store_test!(migrations_are_idempotent);
async fn migrations_are_idempotent(store: DynStore, db: FreshDb) {
    store
        .create_account(new_account("op"), Timestamp(0))
        .await
        .unwrap();
    // Connecting runs the migrations again: a no-op on a migrated database.
    let again = db.connect().await;
    let and_again = db.connect().await;
    assert_eq!(again.count_accounts().await.unwrap(), 1);
    assert_eq!(and_again.count_accounts().await.unwrap(), 1);
    and_again.ping().await.unwrap();
    assert_eq!(
        store.dialect(),
        match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
}

// ---------- SQLite only ----------

/// The embedded default runs in WAL mode, creates its directory, and works in memory too.
#[tokio::test]
async fn sqlite_file_is_wal_and_memory_works() {
    let db = common::fresh_database(Backend::Sqlite).await.unwrap();
    let store = hotline::store::SqliteStore::connect(db.url())
        .await
        .unwrap();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();

    let memory = hotline::store::connect("sqlite::memory:").await.unwrap();
    let id = memory
        .create_contact(new_contact("r", None, 1))
        .await
        .unwrap();
    assert_eq!(memory.contact(id).await.unwrap().id, id);
}

// ---------- PostgreSQL only ----------

/// Like SQLite's file, a missing PostgreSQL database is created on first connect.
#[tokio::test]
async fn postgres_creates_a_missing_database() {
    let Some(db) = common::uncreated_postgres_database() else {
        eprintln!(
            "skipped: set {} to run the PostgreSQL tests",
            common::PG_URL_VAR
        );
        return;
    };
    let store = db.connect().await;
    assert_eq!(store.dialect(), "postgres");
    assert_eq!(store.count_accounts().await.unwrap(), 0);
}

/// Several processes starting at once on a fresh database all open it: one migrates while the
/// others wait, as when `hotline user add` is run twice at once before the first start.
async fn opened_at_once_on_a_fresh_database(backend: Backend) {
    let Some(db) = common::fresh_database(backend).await else {
        eprintln!("skipped: no PostgreSQL configured");
        return;
    };
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { hotline::store::connect(&url).await })
        })
        .collect();
    for store in opening {
        let store = store.await.unwrap().expect("every one opens");
        assert_eq!(store.count_accounts().await.unwrap(), 0);
    }
}

mod opened_at_once_on_a_fresh_database {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::opened_at_once_on_a_fresh_database(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::opened_at_once_on_a_fresh_database(Backend::Postgres).await
    }
}
