//! Routing engine throughput.
//!
//! A floor of 1,000 operators (voice 1 or chat 2, exclusive; mixed languages and skills) and
//! five queues (general; youth and crisis with skill requirements, crisis relaxing; an English
//! queue; bereavement), with 10,000 contacts waiting.
//!
//! - `steady_cycle`: everyone is busy; one iteration ends a live contact, finishes its wrap-up
//!   (the freed operator is offered the best contact they can take), accepts that offer, and
//!   enqueues a new contact so that 10,000 keep waiting. Throughput is in routing decisions
//!   (offers made); the ratio of offers to iterations is printed and is ≈1.
//! - `enqueue_free`: 1,000 operators are free; enqueue 1,000 contacts, each offered at once.
//!
//! Run: `cargo bench --bench routing`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hotline::domain::{
    Channel, ContactId, Language, OperatorId, Presence, Proficiency, QueueId, RiskLevel, Skill,
    Timestamp,
};
use hotline::routing::{
    Command, EndedBy, Engine, EngineConfig, Event, NewContact, OperatorProfile, QueueConfig,
    RelaxStep, SkillRequirement,
};

const OPERATORS: i64 = 1_000;
const WAITING: usize = 10_000;

/// xorshift64*: deterministic inputs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn skill(s: &str) -> Skill {
    Skill::parse(s).unwrap()
}
fn lang(s: &str) -> Language {
    Language::parse(s).unwrap()
}
fn prof(n: u8) -> Proficiency {
    Proficiency::new(n).unwrap()
}
fn qid(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}

fn queues() -> Vec<QueueConfig> {
    let q = |id: &str, reqs: Vec<SkillRequirement>| QueueConfig {
        id: qid(id),
        required_skills: reqs,
        languages: vec![],
        relaxation: vec![],
        never_relax: false,
        overflow_to: None,
        max_wait_ms: None,
    };
    let need = |s: &str, n: u8| SkillRequirement {
        skill: skill(s),
        min_proficiency: prof(n),
    };
    vec![
        q("general", vec![]),
        q("youth", vec![need("youth", 2)]),
        QueueConfig {
            relaxation: vec![RelaxStep {
                after_ms: 120_000,
                max_proficiency: Some(prof(2)),
                drop_skills: false,
            }],
            ..q("crisis", vec![need("crisis", 3)])
        },
        QueueConfig {
            languages: vec![lang("en")],
            ..q("english", vec![])
        },
        q("bereavement", vec![need("bereavement", 1)]),
    ]
}

fn operator(id: i64, rng: &mut Rng) -> OperatorProfile {
    let languages = match rng.below(20) {
        0 => vec![lang("en")],
        1 | 2 => vec![lang("zh"), lang("en")],
        _ => vec![lang("zh")],
    };
    let mut skills = std::collections::BTreeMap::new();
    for (name, pct) in [("youth", 50), ("crisis", 40), ("bereavement", 30)] {
        if rng.below(100) < pct {
            skills.insert(skill(name), prof(1 + rng.below(5) as u8));
        }
    }
    let voice = rng.below(2) == 0;
    OperatorProfile {
        id: OperatorId(id),
        skills,
        languages,
        chat_capacity: if voice { 0 } else { 2 },
        voice_capacity: if voice { 1 } else { 0 },
        voice_excludes_chat: true,
    }
}

fn contact(id: i64, rng: &mut Rng) -> NewContact {
    let (queue, language) = match rng.below(100) {
        0..50 => ("general", "zh"),
        50..65 => ("youth", "zh"),
        65..80 => ("crisis", "zh"),
        80..85 => ("english", "en"),
        _ => ("bereavement", "zh"),
    };
    let risk = match rng.below(100) {
        0..2 => RiskLevel::Imminent,
        2..12 => RiskLevel::High,
        12..30 => RiskLevel::Medium,
        _ => RiskLevel::None,
    };
    NewContact {
        id: ContactId(id),
        queue: qid(queue),
        channel: if rng.below(2) == 0 {
            Channel::Voice
        } else {
            Channel::Chat
        },
        language: lang(language),
        topic: None,
        extra_skills: vec![],
        risk,
    }
}

fn offers(events: &[Event]) -> impl Iterator<Item = (ContactId, OperatorId)> + '_ {
    events.iter().filter_map(|e| match e {
        Event::Offer {
            contact, operator, ..
        } => Some((*contact, *operator)),
        _ => None,
    })
}

/// A floor with every operator free.
fn free_floor(rng: &mut Rng, now: Timestamp) -> Engine {
    let mut e = Engine::new(EngineConfig::default());
    for q in queues() {
        e.handle(now, Command::UpsertQueue(q)).unwrap();
    }
    for id in 1..=OPERATORS {
        let operator = OperatorId(id);
        e.handle(now, Command::UpsertOperator(self::operator(id, rng)))
            .unwrap();
        e.handle(now, Command::OperatorConnected { operator })
            .unwrap();
        e.handle(
            now,
            Command::SetPresence {
                operator,
                presence: Presence::Available,
            },
        )
        .unwrap();
    }
    e
}

struct Steady {
    e: Engine,
    rng: Rng,
    now: i64,
    next_id: i64,
    live: VecDeque<(ContactId, OperatorId)>,
    offers: u64,
    iterations: u64,
}

impl Steady {
    fn new() -> Self {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let now = 1_700_000_000_000;
        let e = free_floor(&mut rng, Timestamp(now));
        let mut s = Steady {
            e,
            rng,
            now,
            next_id: 0,
            live: VecDeque::new(),
            offers: 0,
            iterations: 0,
        };
        // Everyone enqueued is either live (accepted) or waiting.
        while (s.next_id as usize) - s.live.len() < WAITING {
            s.enqueue();
        }
        s
    }

    fn waiting(&self) -> usize {
        self.e.waiting_summary().iter().map(|w| w.waiting).sum()
    }

    /// Accepts every offer in `events` (which may produce more offers).
    fn accept_all(&mut self, events: Vec<Event>) {
        let mut pending: Vec<(ContactId, OperatorId)> = offers(&events).collect();
        while let Some((contact, operator)) = pending.pop() {
            self.offers += 1;
            let ev = self
                .e
                .handle(Timestamp(self.now), Command::Accept { operator, contact })
                .unwrap();
            self.live.push_back((contact, operator));
            pending.extend(offers(&ev));
        }
    }

    fn enqueue(&mut self) {
        self.next_id += 1;
        self.now += 1;
        let c = contact(self.next_id, &mut self.rng);
        let ev = self
            .e
            .handle(Timestamp(self.now), Command::Enqueue(c))
            .unwrap();
        self.accept_all(ev);
    }

    /// End a live contact, finish its wrap-up, accept what the freed operator is offered,
    /// and enqueue one more contact.
    fn cycle(&mut self) {
        self.iterations += 1;
        let Some((contact, operator)) = self.live.pop_front() else {
            return;
        };
        let now = Timestamp(self.now);
        self.e
            .handle(
                now,
                Command::End {
                    contact,
                    by: EndedBy::Operator,
                },
            )
            .unwrap();
        let ev = self
            .e
            .handle(now, Command::FinishWrapUp { operator, contact })
            .unwrap();
        self.accept_all(ev);
        self.enqueue();
    }
}

fn steady_cycle(c: &mut Criterion) {
    let mut s = Steady::new();
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("steady_cycle_1000_ops_10000_waiting", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                s.cycle();
            }
            start.elapsed()
        })
    });
    group.finish();
    eprintln!(
        "steady_cycle: {} offers in {} iterations ({:.3} per iteration), {} waiting",
        s.offers,
        s.iterations,
        s.offers as f64 / s.iterations.max(1) as f64,
        s.waiting()
    );
    black_box(&s.e);
}

fn enqueue_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(OPERATORS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let mut made = (0u64, 0u64);
    group.bench_function("enqueue_1000_onto_1000_free_ops", |b| {
        b.iter_batched(
            || {
                let mut rng = Rng(0x2545_f491_4f6c_dd1d);
                let e = free_floor(&mut rng, Timestamp(1_700_000_000_000));
                let contacts: Vec<NewContact> =
                    (1..=OPERATORS).map(|id| contact(id, &mut rng)).collect();
                (e, contacts)
            },
            |(mut e, contacts)| {
                let mut n = 0u64;
                for (i, c) in contacts.into_iter().enumerate() {
                    let ev = e
                        .handle(Timestamp(1_700_000_000_000 + i as i64), Command::Enqueue(c))
                        .unwrap();
                    n += offers(&ev).count() as u64;
                }
                made.0 += n;
                made.1 += OPERATORS as u64;
                e
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    eprintln!(
        "enqueue_free: {} of {} enqueued contacts were offered at once",
        made.0, made.1
    );
}

criterion_group!(benches, steady_cycle, enqueue_free);
criterion_main!(benches);
