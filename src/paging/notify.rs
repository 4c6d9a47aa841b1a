//! Notifiers: how a page reaches a person. One trait, one implementation per channel — the staff
//! console (a `page` frame over the WebSocket), a signed webhook, e-mail over SMTP. Adding a
//! channel is one more [`Notifier`] and a [`PageChannel`] word.
//!
//! A notifier makes one attempt and says how it went; retries, backoff and dead letters belong to
//! the timer worker ([`super::timers`]), which records every attempt on the incident's timeline.
//!
//! External channels carry no reason text, no transcript and no caller detail: only incident and
//! contact numbers and a link to the console. What a caller said stays on the hotline's servers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;

use crate::config::{PagingSettings, SmtpSettings, SmtpTls};
use crate::domain::{ContactId, OperatorId, Timestamp};
use crate::gateway::Hub;
use crate::gateway::hub::StaffNotice;
use crate::gateway::protocol::StaffEvent;

use super::model::{IncidentId, IncidentState, IncidentView, PageChannel, PageOutcome, Urgency};

/// The header carrying the body's HMAC.
pub const SIGNATURE_HEADER: &str = "X-Hotline-Signature";
/// The header a receiver deduplicates retries on: the same for every attempt of one delivery.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// One attempt at one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub delivery: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub incident: IncidentView,
    /// The person paged; `None` for the global webhook.
    pub target: Option<OperatorId>,
    /// Webhook URL or e-mail address.
    pub address: Option<String>,
    /// Stable across the retries of this delivery.
    pub idempotency_key: String,
}

impl Page {
    pub fn idempotency_key(incident: IncidentId, delivery: i64) -> String {
        format!("hotline-incident-{incident}-page-{delivery}")
    }
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// `Delivered` when the receiver confirmed, `Sent` when it cannot (consoles).
    pub outcome: PageOutcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    /// May work later (network, timeout, 5xx, 429): retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// Will not work by retrying (bad address, 4xx): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    fn channel(&self) -> PageChannel;
    /// One attempt. Must give up within the configured send timeout.
    async fn notify(&self, page: &Page) -> Result<Delivered, NotifyError>;
}

/// The notifiers of this server, by channel.
#[derive(Clone, Default)]
pub struct Notifiers {
    by_channel: HashMap<PageChannel, Arc<dyn Notifier>>,
}

impl Notifiers {
    /// Console and webhook always; e-mail when SMTP is configured.
    pub fn from_settings(settings: &PagingSettings, hub: Arc<Hub>) -> anyhow::Result<Self> {
        let mut notifiers = Notifiers::default();
        notifiers.add(Arc::new(ConsoleNotifier { hub }));
        notifiers.add(Arc::new(WebhookNotifier::new(settings)?));
        if let Some(smtp) = &settings.smtp {
            notifiers.add(Arc::new(EmailNotifier::new(smtp, settings)?));
        }
        Ok(notifiers)
    }

    pub fn add(&mut self, notifier: Arc<dyn Notifier>) {
        self.by_channel.insert(notifier.channel(), notifier);
    }

    pub fn get(&self, channel: PageChannel) -> Option<&Arc<dyn Notifier>> {
        self.by_channel.get(&channel)
    }

    pub fn has(&self, channel: PageChannel) -> bool {
        self.by_channel.contains_key(&channel)
    }
}

// ---- console ----

/// Rings the person's console: a `page` frame through the hub (dropped if they are offline —
/// the other channels and the next level are for that).
pub struct ConsoleNotifier {
    pub hub: Arc<Hub>,
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    fn channel(&self) -> PageChannel {
        PageChannel::Console
    }

    async fn notify(&self, page: &Page) -> Result<Delivered, NotifyError> {
        let target = page
            .target
            .ok_or_else(|| NotifyError::Permanent("a console page needs a person".into()))?;
        let connected = self.hub.to_staff(
            target,
            StaffNotice::Frame(StaffEvent::Page {
                incident: page.incident.clone(),
            }),
        );
        // Consoles do not confirm; the timeline says whether one was there to ring. A person who
        // signs in later finds the open incident on their crisis desk.
        Ok(Delivered {
            outcome: PageOutcome::Sent,
            detail: (!connected).then(|| "console not connected".to_owned()),
        })
    }
}

// ---- webhook ----

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a webhook receives. Deliberately without the flag's reason or anything the caller said.
#[derive(Debug, Serialize)]
pub struct WebhookBody {
    /// Always `page`.
    pub event: &'static str,
    pub delivery: i64,
    pub attempt: u32,
    pub incident: WebhookIncident,
    /// The person paged (their own webhook), or absent for the global webhook.
    pub target: Option<OperatorId>,
    /// Where to acknowledge, when the console URL is configured.
    pub console_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WebhookIncident {
    pub id: IncidentId,
    pub contact: ContactId,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub level: u32,
    pub cycle: u32,
    pub policy: String,
    pub triggered_at: Timestamp,
}

impl WebhookBody {
    pub fn of(page: &Page, console_url: Option<&str>) -> Self {
        let i = &page.incident;
        WebhookBody {
            event: "page",
            delivery: page.delivery,
            attempt: page.attempt,
            incident: WebhookIncident {
                id: i.id,
                contact: i.contact,
                state: i.state,
                urgency: i.urgency,
                level: i.level,
                cycle: i.cycle,
                policy: i.policy.name.clone(),
                triggered_at: i.triggered_at,
            },
            target: page.target,
            console_url: console_url.map(|base| incident_link(base, i.id)),
        }
    }
}

fn incident_link(base: &str, id: IncidentId) -> String {
    format!("{}/incidents/{id}", base.trim_end_matches('/'))
}

/// A JSON POST, signed when a secret is configured. 2xx is delivered; 408, 429, 5xx and network
/// errors are retried; anything else (other 4xx, redirects, which are not followed) is
/// dead-lettered at once: a wrong address does not heal.
pub struct WebhookNotifier {
    client: reqwest::Client,
    secret: Option<String>,
    console_url: Option<String>,
}

impl WebhookNotifier {
    pub fn new(settings: &PagingSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.send_timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(WebhookNotifier {
            client,
            secret: settings.webhook_secret.clone(),
            console_url: settings.console_url.clone(),
        })
    }
}

/// A transport error in words, without the URL (which may carry a token or a phone number).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = &e;
    while let Some(source) = root.source() {
        root = source;
    }
    format!("{what}: {root}")
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn channel(&self) -> PageChannel {
        PageChannel::Webhook
    }

    async fn notify(&self, page: &Page) -> Result<Delivered, NotifyError> {
        let url = page
            .address
            .as_deref()
            .ok_or_else(|| NotifyError::Permanent("no webhook address".into()))?;
        let body = serde_json::to_vec(&WebhookBody::of(page, self.console_url.as_deref()))
            .map_err(|e| NotifyError::Permanent(format!("encoding the body: {e}")))?;
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &page.idempotency_key);
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret.as_bytes(), &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::Transient(describe(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(Delivered {
                outcome: PageOutcome::Delivered,
                detail: Some(format!("HTTP {}", status.as_u16())),
            })
        } else if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            Err(NotifyError::Transient(format!("HTTP {}", status.as_u16())))
        } else {
            Err(NotifyError::Permanent(format!("HTTP {}", status.as_u16())))
        }
    }
}

// ---- e-mail ----

/// The e-mail for a page: incident and contact numbers, level, and a link — nothing the caller said.
pub fn email_message(
    page: &Page,
    from: &Mailbox,
    console_url: Option<&str>,
) -> Result<Message, NotifyError> {
    let to: Mailbox = page
        .address
        .as_deref()
        .ok_or_else(|| NotifyError::Permanent("no e-mail address".into()))?
        .parse()
        .map_err(|_| NotifyError::Permanent("not an e-mail address".into()))?;
    let i = &page.incident;
    let mut text = format!(
        "A crisis flag needs the crisis team now.\r\n\r\n\
         Incident #{} on contact #{} (urgency: high), level {} of policy \"{}\".\r\n",
        i.id, i.contact, i.level, i.policy.name
    );
    match console_url {
        Some(base) => text.push_str(&format!(
            "\r\nAcknowledge and join: {}\r\n",
            incident_link(base, i.id)
        )),
        None => text.push_str("\r\nAcknowledge it in the hotline console.\r\n"),
    }
    text.push_str("\r\nIf nobody acknowledges, the next level is paged.\r\n");
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!(
            "[hotline] Crisis incident #{} needs you (level {})",
            i.id, i.level
        ))
        .message_id(Some(format!("<{}@hotline>", page.idempotency_key)))
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| NotifyError::Permanent(format!("building the e-mail: {e}")))
}

pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    console_url: Option<String>,
}

impl EmailNotifier {
    pub fn new(smtp: &SmtpSettings, settings: &PagingSettings) -> anyhow::Result<Self> {
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("paging.smtp.from: {e}"))?;
        let tls = match smtp.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(TlsParameters::new(smtp.host.clone())?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(smtp.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(settings.send_timeout_ms.max(1))));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(EmailNotifier {
            transport: builder.build(),
            from,
            console_url: settings.console_url.clone(),
        })
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn channel(&self) -> PageChannel {
        PageChannel::Email
    }

    async fn notify(&self, page: &Page) -> Result<Delivered, NotifyError> {
        let message = email_message(page, &self.from, self.console_url.as_deref())?;
        match self.transport.send(message).await {
            Ok(response) => Ok(Delivered {
                outcome: PageOutcome::Delivered,
                detail: Some(format!("SMTP {}", response.code())),
            }),
            Err(e) if e.is_permanent() => Err(NotifyError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(NotifyError::Transient(format!("SMTP: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::model::{FlagSource, PolicyRef};

    fn page(address: &str) -> Page {
        Page {
            delivery: 9,
            attempt: 1,
            incident: IncidentView {
                id: IncidentId(4),
                contact: ContactId(77),
                state: IncidentState::Triggered,
                urgency: Urgency::High,
                source: FlagSource::Operator(OperatorId(2)),
                reason: Some("has a plan and the means".into()),
                policy: PolicyRef {
                    id: None,
                    name: "crisis".into(),
                },
                level: 2,
                cycle: 1,
                created_at: Timestamp(1),
                triggered_at: Timestamp(1),
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
                resolution: None,
            },
            target: Some(OperatorId(5)),
            address: Some(address.into()),
            idempotency_key: Page::idempotency_key(IncidentId(4), 9),
        }
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_body_leaves_the_reason_out() {
        let body = serde_json::to_value(WebhookBody::of(
            &page("http://x"),
            Some("https://hotline.example/"),
        ))
        .unwrap();
        assert_eq!(body["event"], "page");
        assert_eq!(body["incident"]["level"], 2);
        assert_eq!(body["console_url"], "https://hotline.example/incidents/4");
        assert!(!body.to_string().contains("plan"), "{body}");
    }

    #[test]
    fn email_has_a_link_and_no_reason() {
        let from: Mailbox = "Hotline <paging@hotline.example>".parse().unwrap();
        let message = email_message(
            &page("lead@hotline.example"),
            &from,
            Some("https://h.example"),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: [hotline] Crisis incident #4 needs you (level 2)"));
        assert!(text.contains("https://h.example/incidents/4"));
        assert!(text.contains("Message-ID: <hotline-incident-4-page-9@hotline>"));
        assert!(!text.contains("plan"));
        let bad = email_message(&page("not an address"), &from, None);
        assert!(matches!(bad, Err(NotifyError::Permanent(_))));
    }
}
