//! Layered settings: built-in defaults → `hotline.toml` (or `--config FILE`) → `HOTLINE__SECTION__KEY`
//! environment variables → command-line flags. With nothing configured the server runs on one node
//! with SQLite under `./data/`.
//!
//! Secrets (the database URL may carry a password) are redacted in `Debug`.
//!
//! An environment value is read as the setting it sets asks for (see [`EnvSettings`]): a string
//! setting takes it as written, whatever it looks like (`20240518`, `true`, `[x]` are passwords
//! too), a number or a boolean setting parses it, a list setting takes it comma-separated or as
//! `[…]`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{Proficiency, Skill, Topic};
use crate::routing::{EngineConfig, SkillRequirement};

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub caller: CallerSettings,
    pub routing: EngineConfig,
    pub notes: NotesSettings,
    pub paging: PagingSettings,
    pub quality: QualitySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NotesSettings {
    /// How long an operator may amend their own submitted note; supervisors may at any time.
    pub amend_window_hours: i64,
    /// A note form (JSON, the shape of `GET /api/notes/form`); the built-in form when unset.
    pub form_file: Option<PathBuf>,
}

impl Default for NotesSettings {
    fn default() -> Self {
        NotesSettings {
            amend_window_hours: 24,
            form_file: None,
        }
    }
}

/// Quality, training and assessment: report thresholds, audit sampling, cycles, certifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QualitySettings {
    /// Report days and assessment cycles are counted in this time zone (IANA name).
    pub time_zone: crate::paging::schedule::TimeZone,
    /// Abandons after a shorter wait are counted apart (short abandons).
    pub short_abandon_ms: i64,
    /// Service-level thresholds: SL(T) = answered within T / (answered + abandoned − short).
    pub service_level_thresholds_ms: Vec<i64>,
    /// How far before a report's start the event log is read to know who held what.
    pub report_lookback_hours: i64,
    /// Share (0–1) of each operator's contacts drawn for audit per cycle, besides every crisis
    /// contact. The draw is reproducible: hash(cycle, contact) < share.
    pub audit_share: f64,
    /// At least this many audits per operator and cycle (the lowest hashes are drawn first; the
    /// cycle's audits already drawn count towards it).
    pub audit_min_per_operator: u32,
    /// The scorecard (JSON, the shape of `GET /api/audits/scorecard`); openCHS's when unset.
    pub scorecard_file: Option<PathBuf>,
    /// Months per assessment cycle: 1, 2, 3 (quarters, the default), 4, 6 or 12.
    pub cycle_months: u32,
    /// Systematic trainings required a year (pro-rated per cycle, rounded up).
    pub trainings_per_year: u32,
    /// Average audit score (percent) an assessment needs to meet the standard.
    pub audit_pass_percent: f64,
    /// Fewer completed contacts in a cycle make an operator not eligible for assessment.
    pub assessment_min_contacts: u64,
    /// A 7-day count rising at least this much over the 7 days before is flagged (0.5 = +50 %)…
    pub trend_alert_ratio: f64,
    /// … when it reaches at least this many contacts.
    pub trend_alert_min: u64,
    /// Certifications by name, each granting a routing skill while valid.
    pub certifications: BTreeMap<String, CertificationRule>,
    /// How often lapsed certifications are looked for (they are also applied at their expiry
    /// time when this node knows it, and at once on revocation) and audits sampled.
    pub check_interval_ms: u64,
    /// How often the live KPI metrics read new events from the log.
    pub live_interval_ms: u64,
}

/// What a certification requires and grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificationRule {
    /// The routing skill it grants while valid, and at what proficiency.
    pub skill: Skill,
    pub proficiency: Proficiency,
    /// Training modules the person must have attended, questionnaire done.
    #[serde(default)]
    pub requires_modules: Vec<String>,
    /// How long it is valid from the grant.
    pub valid_days: u32,
}

impl Default for QualitySettings {
    fn default() -> Self {
        let mut certifications = BTreeMap::new();
        certifications.insert(
            "crisis_certified".to_owned(),
            CertificationRule {
                skill: Skill::parse("crisis").expect("a valid skill"),
                proficiency: Proficiency::new(3).expect("a valid proficiency"),
                requires_modules: vec!["risk_assessment".into()],
                valid_days: 365,
            },
        );
        QualitySettings {
            time_zone: crate::paging::schedule::TimeZone::default(),
            short_abandon_ms: 6_000,
            service_level_thresholds_ms: vec![20_000, 60_000],
            report_lookback_hours: 24,
            audit_share: 0.05,
            audit_min_per_operator: 1,
            scorecard_file: None,
            cycle_months: 3,
            trainings_per_year: 4,
            audit_pass_percent: 80.0,
            assessment_min_contacts: 5,
            trend_alert_ratio: 0.5,
            trend_alert_min: 5,
            certifications,
            check_interval_ms: 60_000,
            live_interval_ms: 2_000,
        }
    }
}

/// Paging the crisis team: timeouts, webhook signing, retries, the auditor, SMTP.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PagingSettings {
    /// How long an acknowledged incident may stay unresolved before it re-triggers (paging
    /// starts again from level 1).
    pub ack_timeout_ms: u64,
    /// A webhook every page also goes to (a team channel, a paging gateway), when set.
    pub webhook_url: Option<String>,
    /// Signs every webhook body: `X-Hotline-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub webhook_secret: Option<String>,
    /// How long one webhook or SMTP attempt may take.
    pub send_timeout_ms: u64,
    /// Attempts per delivery before it is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt; it doubles for each further one, up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How often the auditor looks for timers the worker missed …
    pub audit_interval_ms: u64,
    /// … and how late a timer must be to count as missed.
    pub audit_slack_ms: u64,
    /// Longest the timer worker sleeps without looking at the database (it also wakes when this
    /// node arms a timer); bounds how late it sees timers armed by another node.
    pub poll_ms: u64,
    /// The console's base URL, for links in e-mails (e.g. `https://hotline.example.org`).
    pub console_url: Option<String>,
    /// E-mail pages, when set.
    pub smtp: Option<SmtpSettings>,
}

impl Default for PagingSettings {
    fn default() -> Self {
        PagingSettings {
            ack_timeout_ms: 30 * 60_000,
            webhook_url: None,
            webhook_secret: None,
            send_timeout_ms: 5_000,
            max_attempts: 5,
            retry_base_ms: 2_000,
            retry_max_ms: 60_000,
            audit_interval_ms: 10_000,
            audit_slack_ms: 5_000,
            poll_ms: 2_000,
            console_url: None,
            smtp: None,
        }
    }
}

impl fmt::Debug for PagingSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagingSettings")
            .field("ack_timeout_ms", &self.ack_timeout_ms)
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("send_timeout_ms", &self.send_timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("audit_interval_ms", &self.audit_interval_ms)
            .field("audit_slack_ms", &self.audit_slack_ms)
            .field("poll_ms", &self.poll_ms)
            .field("console_url", &self.console_url)
            .field("smtp", &self.smtp)
            .finish()
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on this host or a trusted network.
    None,
    /// STARTTLS (required) on the submission port.
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `Hotline paging <paging@hotline.example.org>`.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    587
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Origins allowed to open WebSockets, e.g. `https://hotline.example.org`. Empty: the request's own
    /// host only (same-origin), which is right when the console is served by this server.
    pub allowed_origins: Vec<String>,
    /// Set `Secure` on cookies (behind TLS).
    pub secure_cookies: bool,
    /// How long, at shutdown, connections get to close before the process exits: the deadline for
    /// everything shutdown waits for (the last routing write in flight gets 1 s more).
    pub shutdown_grace_ms: u64,
    /// How often the server records in the store that it is alive (and it does once more when
    /// it stops gracefully). A restart takes the last record, or a later event or transcript
    /// line, as when the server stopped and leaves the time since out of handle time; after a
    /// crash, up to this much of the time before it is left out too. At least 100 ms.
    pub alive_every_ms: u64,
    /// The reverse proxies in front of this server. Per-address limits (new chats, sign-in)
    /// count a request from one of them under the client address it forwarded. Empty: every
    /// request counts under the address it came from.
    pub trusted_proxies: TrustedProxies,
    /// Which header the trusted proxies write the client's address to.
    pub forwarded_header: ForwardedHeader,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: Vec::new(),
            secure_cookies: false,
            shutdown_grace_ms: 8_000,
            alive_every_ms: 10_000,
            trusted_proxies: TrustedProxies::default(),
            forwarded_header: ForwardedHeader::default(),
        }
    }
}

/// The header the trusted proxies name the client in. Only the one the proxies are set up to write
/// is read: the other may come from the client unchanged, and would then let it choose its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: <client>, <proxy 1>, …` (nginx's `$proxy_add_x_forwarded_for`, most
    /// load balancers).
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239: `Forwarded: for=<client>, for=<proxy 1>, …` (the `for` parameter of each element).
    #[serde(rename = "forwarded")]
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, as `HeaderMap` looks it up.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// Networks of trusted reverse proxies, each a CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single
/// address. In a file, a list of strings; in the environment, the same list
/// (`HOTLINE__SERVER__TRUSTED_PROXIES='["10.0.0.0/8"]'`) or one string with the networks
/// separated by commas. A request whose peer is in one of them is read for `X-Forwarded-For`
/// (see `crate::extract::ClientAddress`); from anywhere else that header is ignored, since
/// anyone can send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Reads networks, refusing the first that is neither a CIDR block nor an address.
    pub fn parse<S: AsRef<str>>(networks: &[S]) -> Result<Self, String> {
        networks
            .iter()
            .map(|n| {
                let text = n.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "trusted_proxies: {text:?} is neither a network such as \
                             10.0.0.0/8 or fd00::/8 nor an address"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `address` is one of the trusted proxies (an IPv4 address written as IPv6,
    /// `::ffff:10.0.0.1`, counts as the IPv4 address).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|net| net.to_string()))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            List(Vec<String>),
            Separated(String),
        }
        let networks = match Written::deserialize(deserializer)? {
            Written::List(list) => list,
            Written::Separated(text) => comma_separated(&text).map(str::to_owned).collect(),
        };
        TrustedProxies::parse(&networks).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://data/hotline.db` (default) or `postgres://user:password@host/db`.
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://data/hotline.db".into(),
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub session_ttl_hours: i64,
    /// Sign-in attempts (and password changes) allowed per account name from one client address
    /// per minute; ten times as many per address, whatever the names (a shift signing in behind
    /// one NAT shares that).
    pub logins_per_minute: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_ttl_hours: 12,
            logins_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CallerSettings {
    /// New chats a single address may open per minute.
    pub joins_per_minute: u32,
    /// Longest chat message, in bytes.
    pub max_message_bytes: usize,
    /// Frames a caller may send per 10 s before the connection is closed as abusive.
    pub frames_per_10s: u32,
    /// A risk lexicon file (TOML, `[[term]] text = … level = …`); the built-in zh/en set when unset.
    pub lexicon_file: Option<PathBuf>,
    /// Extra skills a pre-chat topic requires (e.g. `suicide` → `crisis` at proficiency 3).
    pub topic_skills: BTreeMap<Topic, Vec<SkillRequirement>>,
    /// Skill every high- or imminent-risk contact requires, when set: from the screening
    /// answer at join, or from the moment its risk rises that far while it waits.
    pub crisis_skill: Option<Skill>,
    /// The most transcript lines one frame carries (an offer, a contact on a console, a
    /// caller's resume): the newest ones; earlier ones are read a page of this size at a time.
    pub transcript_page_lines: NonZeroU32,
}

impl Default for CallerSettings {
    fn default() -> Self {
        CallerSettings {
            joins_per_minute: 6,
            max_message_bytes: 4_000,
            frames_per_10s: 60,
            lexicon_file: None,
            topic_skills: BTreeMap::new(),
            crisis_skill: None,
            transcript_page_lines: NonZeroU32::new(200).expect("not zero"),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("database", &self.database)
            .field("auth", &self.auth)
            .field("caller", &self.caller)
            .field("routing", &self.routing)
            .field("notes", &self.notes)
            .field("paging", &self.paging)
            .field("quality", &self.quality)
            .finish()
    }
}

impl Settings {
    /// Defaults, then the TOML file (if it exists; an explicitly named file must exist), then env.
    pub fn load(file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(Box::new(figment::Error::from(format!(
                        "config file {} not found",
                        path.display()
                    ))));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("hotline.toml")),
        }
        // The shape of the settings so far (defaults and file) tells how to read each variable.
        let shape = figment.extract::<Value>().map_err(Box::new)?;
        let env = EnvSettings {
            env: Env::prefixed("HOTLINE__").split("__"),
            shape,
        };
        // Lossy: a number or boolean setting parses the string an environment value is kept as.
        figment.merge(env).extract_lossy().map_err(Box::new)
    }
}

/// The `HOTLINE__SECTION__KEY` environment variables, each read by the shape of the setting it
/// sets. figment's own `Env` guesses a type from the text alone, so `20240518` became a number
/// and `true` a boolean, which a string setting (an SMTP password, a webhook secret, a file name)
/// then refused; and `https://x` stayed a string, which a list refused. Here:
/// - a setting whose value is a list (in the defaults or the file) takes `[a, b]`, or the
///   text split at commas (`a, b`; empty: no items);
/// - one whose value is a table takes `{key = value, …}`;
/// - every other one — a string, a number, a boolean, an optional setting unset so far and the
///   fields of an optional section (`paging.smtp.*`) — keeps the text as written; the lossy
///   extraction parses it for a number or boolean setting (`true`/`false`, `yes`/`no`,
///   `on`/`off`, `1`/`0`);
/// - a key the shape does not know inside a table (a new `caller.topic_skills` entry) is read
///   as `[…]` or `{…}` when written so, else as written.
struct EnvSettings {
    env: Env,
    shape: Value,
}

impl EnvSettings {
    fn value(&self, key: &str, text: String) -> Value {
        let structured = |text: &str| {
            text.parse::<Value>()
                .expect("parsing a value is infallible")
        };
        match self.shape.find_ref(key) {
            Some(Value::Array(..)) if text.trim_start().starts_with('[') => structured(&text),
            Some(Value::Array(..)) => {
                Value::from(comma_separated(&text).map(Value::from).collect::<Vec<_>>())
            }
            Some(Value::Dict(..)) => structured(&text),
            Some(_) => Value::from(text),
            None => {
                // The nearest setting above the key that the shape knows.
                let mut above = key;
                let known = loop {
                    match above.rsplit_once('.') {
                        Some((parent, _)) => {
                            above = parent;
                            if let Some(value) = self.shape.find_ref(parent) {
                                break Some(value);
                            }
                        }
                        None => break None,
                    }
                };
                let bracketed = text.trim_start().starts_with(['[', '{']);
                match known {
                    Some(Value::Dict(..)) if bracketed => structured(&text),
                    _ => Value::from(text),
                }
            }
        }
    }
}

impl Provider for EnvSettings {
    fn metadata(&self) -> Metadata {
        // Errors name the variable (`HOTLINE__PAGING__SMTP__PORT`), as figment's `Env` does.
        self.env.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut settings = Dict::new();
        for (key, text) in self.env.iter() {
            let value = self.value(key.as_str(), text);
            if let Value::Dict(_, nested) = figment::util::nest(key.as_str(), value) {
                merge_into(&mut settings, nested);
            }
        }
        Ok(Profile::Default.collect(settings))
    }
}

/// The items of a list written as one string, `a, b`: trimmed, empty ones left out.
fn comma_separated(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Adds `more` to `dict`, table into table (two variables of one section, `HOTLINE__SERVER__A`
/// and `HOTLINE__SERVER__B`, make one `server` table).
fn merge_into(dict: &mut Dict, more: Dict) {
    for (key, value) in more {
        match (dict.get_mut(&key), value) {
            (Some(Value::Dict(_, inner)), Value::Dict(_, more)) => merge_into(inner, more),
            (_, value) => {
                dict.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        let s = DatabaseSettings {
            url: "postgres://hotline:s3cret@db:5432/hotline".into(),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("hotline:***@db"));
    }

    #[test]
    fn paging_secrets_are_redacted() {
        let s = PagingSettings {
            webhook_url: Some("https://gw:t0ken@sms.example/hook".into()),
            webhook_secret: Some("hmac-s3cret".into()),
            smtp: Some(SmtpSettings {
                host: "mail".into(),
                port: 587,
                tls: SmtpTls::Starttls,
                username: Some("pager".into()),
                password: Some("smtp-s3cret".into()),
                from: "p@example.org".into(),
            }),
            ..PagingSettings::default()
        };
        let shown = format!("{s:?}");
        for secret in ["t0ken", "hmac-s3cret", "smtp-s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", " 192.0.2.7 ", "fd00::/8"]).unwrap();
        assert!(proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(proxies.contains("192.0.2.7".parse().unwrap()));
        assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        // An IPv4 peer seen on an IPv6 socket.
        assert!(proxies.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::default().is_empty());
        for bad in ["10.0.0.0/33", "proxy.example", "10.0.0.0/", ""] {
            let refused = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(refused.starts_with("trusted_proxies:"), "{refused}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail fixes the closure's error type
    fn trusted_proxies_from_file_and_env() {
        figment::Jail::expect_with(|jail| {
            assert!(
                Settings::load(None)
                    .map_err(|e| *e)?
                    .server
                    .trusted_proxies
                    .is_empty()
            );
            jail.create_file(
                "hotline.toml",
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            )?;
            let s = Settings::load(None).map_err(|e| *e)?;
            assert!(
                s.server
                    .trusted_proxies
                    .contains("10.9.9.9".parse().unwrap())
            );
            assert!(s.server.trusted_proxies.contains("::1".parse().unwrap()));
            jail.set_env("HOTLINE__SERVER__TRUSTED_PROXIES", "[\"172.16.0.0/12\"]");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert!(
                s.server
                    .trusted_proxies
                    .contains("172.16.1.1".parse().unwrap())
            );
            assert!(
                !s.server
                    .trusted_proxies
                    .contains("10.9.9.9".parse().unwrap())
            );
            jail.set_env(
                "HOTLINE__SERVER__TRUSTED_PROXIES",
                "172.16.0.0/12, 192.0.2.1",
            );
            let s = Settings::load(None).map_err(|e| *e)?;
            assert!(
                s.server
                    .trusted_proxies
                    .contains("192.0.2.1".parse().unwrap())
            );
            jail.set_env("HOTLINE__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/40\"]");
            let refused = Settings::load(None).unwrap_err().to_string();
            assert!(refused.contains("trusted_proxies"), "{refused}");
            jail.set_env("HOTLINE__SERVER__TRUSTED_PROXIES", "10.0.0.0/8");
            assert_eq!(
                Settings::load(None)
                    .map_err(|e| *e)?
                    .server
                    .forwarded_header,
                ForwardedHeader::XForwardedFor
            );
            jail.set_env("HOTLINE__SERVER__FORWARDED_HEADER", "forwarded");
            assert_eq!(
                Settings::load(None)
                    .map_err(|e| *e)?
                    .server
                    .forwarded_header,
                ForwardedHeader::Forwarded
            );
            jail.set_env("HOTLINE__SERVER__FORWARDED_HEADER", "x-real-ip");
            let refused = Settings::load(None).unwrap_err().to_string();
            assert!(
                refused.to_lowercase().contains("forwarded_header"),
                "{refused}"
            );
            Ok(())
        });
    }

    /// A string setting takes an environment value as written, whatever it looks like.
    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail fixes the closure's error type
    fn string_settings_take_any_environment_value_as_written() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOTLINE__PAGING__SMTP__HOST", "mail.example.org");
            jail.set_env("HOTLINE__PAGING__SMTP__FROM", "p@example.org");
            jail.set_env("HOTLINE__PAGING__SMTP__PORT", "465");
            jail.set_env("HOTLINE__PAGING__SMTP__TLS", "tls");
            for password in ["20240518", "007", "true", "1.50", "[x]", "{y}", "a,b", ""] {
                jail.set_env("HOTLINE__PAGING__SMTP__PASSWORD", password);
                jail.set_env("HOTLINE__PAGING__SMTP__USERNAME", password);
                jail.set_env("HOTLINE__PAGING__WEBHOOK_SECRET", password);
                jail.set_env("HOTLINE__NOTES__FORM_FILE", password);
                let s = Settings::load(None).map_err(|e| *e)?;
                let smtp = s.paging.smtp.expect("smtp is set");
                assert_eq!(smtp.password.as_deref(), Some(password));
                assert_eq!(smtp.username.as_deref(), Some(password));
                assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Tls));
                assert_eq!(s.paging.webhook_secret.as_deref(), Some(password));
                assert_eq!(s.notes.form_file, Some(PathBuf::from(password)));
            }
            // Set in the file first, the environment still wins as written.
            jail.create_file("hotline.toml", "[database]\nurl = \"sqlite://x.db\"\n")?;
            jail.set_env("HOTLINE__DATABASE__URL", "12345");
            assert_eq!(Settings::load(None).map_err(|e| *e)?.database.url, "12345");
            Ok(())
        });
    }

    /// A list setting takes a comma-separated string or `[…]`; numbers and booleans still parse.
    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail fixes the closure's error type
    fn list_settings_take_comma_separated_values() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOTLINE__SERVER__ALLOWED_ORIGINS", "https://x");
            jail.set_env(
                "HOTLINE__QUALITY__SERVICE_LEVEL_THRESHOLDS_MS",
                "10000, 30000",
            );
            jail.set_env("HOTLINE__ROUTING__RISK_BONUS_MS", "0,1,2,3,4");
            jail.set_env("HOTLINE__SERVER__SECURE_COOKIES", "true");
            jail.set_env("HOTLINE__QUALITY__AUDIT_SHARE", "0.25");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(s.server.allowed_origins, ["https://x"]);
            assert_eq!(s.quality.service_level_thresholds_ms, [10_000, 30_000]);
            assert_eq!(s.routing.risk_bonus_ms, [0, 1, 2, 3, 4]);
            assert!(s.server.secure_cookies);
            assert_eq!(s.quality.audit_share, 0.25);

            jail.set_env(
                "HOTLINE__SERVER__ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            );
            jail.set_env("HOTLINE__QUALITY__SERVICE_LEVEL_THRESHOLDS_MS", "[20000]");
            jail.set_env("HOTLINE__SERVER__SECURE_COOKIES", "no");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(
                s.server.allowed_origins,
                ["https://a.example", "https://b.example"]
            );
            assert_eq!(s.quality.service_level_thresholds_ms, [20_000]);
            assert!(!s.server.secure_cookies);

            jail.set_env(
                "HOTLINE__SERVER__ALLOWED_ORIGINS",
                "[\"https://c.example\"]",
            );
            jail.set_env("HOTLINE__SERVER__SECURE_COOKIES", "maybe");
            let refused = Settings::load(None).unwrap_err().to_string();
            assert!(refused.contains("SECURE_COOKIES"), "{refused}");
            jail.set_env("HOTLINE__SERVER__SECURE_COOKIES", "false");
            jail.set_env("HOTLINE__SERVER__ALLOWED_ORIGINS", "");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert!(s.server.allowed_origins.is_empty());

            // A table, and a new entry of one, are still read from `{…}` and `[…]`.
            jail.set_env(
                "HOTLINE__CALLER__TOPIC_SKILLS__SUICIDE",
                "[{skill = \"crisis\", min_proficiency = 3}]",
            );
            let s = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(
                s.caller.topic_skills.len(),
                1,
                "{:?}",
                s.caller.topic_skills
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail fixes the closure's error type
    fn layers_file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hotline.toml",
                "[server]\nlisten = \"127.0.0.1:9000\"\n[routing]\noffer_timeout_ms = 5000\n",
            )?;
            jail.set_env("HOTLINE__ROUTING__OFFER_TIMEOUT_MS", "7000");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(s.server.listen.port(), 9000);
            assert_eq!(s.routing.offer_timeout_ms, 7000);
            assert_eq!(
                s.routing.max_no_answer,
                EngineConfig::default().max_no_answer
            );
            Ok(())
        });
    }
}
