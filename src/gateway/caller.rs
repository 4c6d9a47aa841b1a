//! A caller's WebSocket (`/ws/caller`): anonymous, no account. The pre-chat step ends in `join`;
//! a `resume_token` brings the caller back to the same contact after a reload or network loss.
//!
//! Every line the caller writes is durable before it is acknowledged (`said`) or shown to anyone,
//! and is scanned against the risk lexicon; a match raises the contact's risk (never lowers it).
//! A dropped connection is not an abandon: the engine gives the caller a grace period to return.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::hub::{CallerNotice, INBOX};
use super::protocol::{
    CallerEvent, CallerRequest, ErrorFrame, PROTOCOL_VERSION, ScreeningAnswer, TranscriptLine,
};
use super::router::Join;
use super::transcript::Pending;
use super::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, FloodGuard, MAX_FRAME_BYTES, MAX_READ_BYTES,
    READ_BUFFER_BYTES, RouterError, check_origin, decode, farewell, oversized_frame, recv_inbox,
    router_error_frame, send_frames, store_error_frame,
};
use crate::app::AppState;
use crate::auth::{random_token, token_hash};
use crate::config::CallerSettings;
use crate::domain::{ContactId, Language, QueueId, RiskLevel, Timestamp, Topic};
use crate::error::ApiError;
use crate::extract::ClientAddress;
use crate::routing::{Command, ContactState, EngineError, NewContact, SkillRequirement};
use crate::store::{
    Message, NewContactRecord, NewMessage, Reader, Sender, StoreError, StoreResult, Visibility,
};

/// Skills a contact needs beyond its queue's, from its topic. (The crisis skill, which follows
/// the contact's risk, is the engine's: see `EngineConfig::crisis_skill`.)
pub fn topic_requirements(
    settings: &CallerSettings,
    topic: Option<&Topic>,
) -> Vec<SkillRequirement> {
    topic
        .and_then(|t| settings.topic_skills.get(t))
        .cloned()
        .unwrap_or_default()
}

pub async fn upgrade(
    crate::extract::WebSocketUpgrade(ws): crate::extract::WebSocketUpgrade,
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.settings.server)?;
    let tasks = state.tasks.clone();
    Ok(ws
        .max_message_size(MAX_READ_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            tasks.track_future(CallerSession::new(state, address).run(socket))
        }))
}

struct CallerSession {
    state: AppState,
    /// Where the caller connects from, for the limit on new chats.
    address: IpAddr,
    /// The contact, and this connection's registration number in the hub.
    joined: Option<(ContactId, u64)>,
    inbox: Option<mpsc::Receiver<CallerNotice>>,
    left: bool,
    /// Lines handed to the transcript writer, oldest first, not yet answered.
    lines: VecDeque<Line>,
    /// The conversation is over (`ended` was sent, or the caller left): nobody reads new lines.
    over: bool,
}

impl CallerSession {
    fn new(state: AppState, address: IpAddr) -> Self {
        CallerSession {
            state,
            address,
            joined: None,
            inbox: None,
            left: false,
            lines: VecDeque::new(),
            over: false,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let shutdown = self.state.shutdown.clone();
        let caller = &self.state.settings.caller;
        let mut flood = FloodGuard::new(caller.frames_per_10s, Duration::from_secs(10));
        let mut out = vec![CallerEvent::Hello {
            protocol: PROTOCOL_VERSION,
        }];
        let close = loop {
            if send_frames(&mut sink, out.drain(..)).await.is_err() {
                break None;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.settle(&mut out).await;
                    out.push(CallerEvent::Error(ErrorFrame::new(
                        "shutting_down",
                        "the service is restarting; reconnect in a moment to keep your place",
                    )));
                    break Some((CLOSE_GOING_AWAY, "restarting"));
                }
                outcome = next_durable(&mut self.lines) => {
                    self.durable(outcome, &mut out).await;
                    // Every line of the writer's batch is durable now: answer them in one write.
                    while let Some(outcome) = self.lines.front_mut().and_then(|l| l.pending.try_take()) {
                        self.durable(outcome, &mut out).await;
                    }
                }
                notice = recv_inbox(&mut self.inbox) => match notice {
                    Some(CallerNotice::Frame(frame)) => {
                        self.pass(frame, &mut out);
                        while let Some(Ok(CallerNotice::Frame(frame))) = self.inbox.as_mut().map(|rx| rx.try_recv()) {
                            self.pass(frame, &mut out);
                        }
                    }
                    None => match self.joined {
                        // Resumed in another window: an ordinary close, so this one does not
                        // reconnect and take the conversation back.
                        Some((contact, conn)) if self.state.hub.caller_replaced(contact, conn) => {
                            out.push(CallerEvent::Error(ErrorFrame::new(
                                "replaced",
                                "this conversation continues in another window",
                            )));
                            break Some((CLOSE_NORMAL, "replaced"));
                        }
                        _ => break Some((CLOSE_POLICY, "too slow")),
                    },
                },
                frame = stream.next(), if self.lines.len() < LINES_IN_FLIGHT => match frame {
                    // Binary frames count too: a flood of frames we refuse still costs an answer each.
                    Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                        if !flood.admit() {
                            self.state.metrics.frames_rejected.with_label_values(&["flood"]).inc();
                            break Some((CLOSE_POLICY, "too many frames"));
                        }
                        match message {
                            WsMessage::Text(text) => self.handle(&text, &mut out).await,
                            _ => out.push(CallerEvent::Error(ErrorFrame::new("bad_frame", "frames must be text"))),
                        }
                    }
                    Some(Err(e)) => match oversized_frame(e, &self.state.metrics) {
                        // The lines before it are answered first: they were accepted.
                        Some((error, close)) => {
                            self.settle(&mut out).await;
                            out.push(CallerEvent::Error(error));
                            break Some(close);
                        }
                        None => break None,
                    },
                    Some(Ok(WsMessage::Close(_))) | None => break None,
                    Some(Ok(_)) => {}
                },
            }
        };
        // Lines already handed to the writer are written whatever happens to the socket; answer
        // them if it is still there.
        self.settle(&mut out).await;
        farewell(&mut sink, &mut stream, out, close).await;
        self.disconnected().await;
    }

    /// Waits until every submitted line is durable and answered.
    async fn settle(&mut self, out: &mut Vec<CallerEvent>) {
        while let Some(line) = self.lines.front_mut() {
            let outcome = line.pending.outcome().await;
            self.durable(outcome, out).await;
        }
    }

    /// The oldest submitted line is durable (or failed): acknowledge it, show it to the operator
    /// and raise the contact's risk if the lexicon matched it.
    async fn durable(&mut self, outcome: StoreResult<Message>, out: &mut Vec<CallerEvent>) {
        let Some(line) = self.lines.pop_front() else {
            return;
        };
        let message = match outcome {
            Ok(message) => message,
            Err(e) => {
                out.push(CallerEvent::Error(
                    store_error_frame(e).for_line(&line.client_id),
                ));
                return;
            }
        };
        out.push(CallerEvent::Said {
            client_id: line.client_id,
            seq: message.seq,
        });
        self.state.hub.deliver_message(&message);
        if let Some(risk) = line.risk {
            let contact = message.contact;
            // The line is already durable; a failure to raise risk is logged, not shown to the caller.
            if let Err(e) = self
                .state
                .router
                .send(Command::RaiseRisk { contact, risk })
                .await
            {
                tracing::warn!(contact = %contact, error = %e, "could not raise risk");
            }
        }
    }

    async fn handle(&mut self, text: &str, out: &mut Vec<CallerEvent>) {
        let request = match decode::<CallerRequest>(text, MAX_FRAME_BYTES) {
            Ok(r) => r,
            Err(e) => {
                self.state
                    .metrics
                    .frames_rejected
                    .with_label_values(&[e.code.as_str()])
                    .inc();
                out.push(CallerEvent::Error(e));
                return;
            }
        };
        if !matches!(request, CallerRequest::Say { .. }) {
            // Everything else sees the lines before it as durable and answered.
            self.settle(out).await;
        }
        let result = match request {
            CallerRequest::Join {
                queue,
                language,
                topic,
                age_group,
                screening,
                accepted_confidentiality,
                caller_key,
            } => {
                self.join(
                    JoinForm {
                        queue,
                        language,
                        topic,
                        age_group,
                        screening,
                        accepted_confidentiality,
                        caller_key,
                    },
                    out,
                )
                .await
            }
            CallerRequest::Resume { resume_token } => self.resume(&resume_token, out).await,
            CallerRequest::Say { text, client_id } => {
                let line = client_id.clone();
                self.say(text, client_id)
                    .await
                    .map_err(|e| e.for_line(&line))
            }
            CallerRequest::Typing => self.contact().map(|contact| {
                self.state.hub.relay_typing(contact, true, None);
            }),
            CallerRequest::Earlier { before } => match self.contact() {
                Ok(contact) => self
                    .page(contact, Some(before))
                    .await
                    .map(|(lines, earlier)| {
                        out.push(CallerEvent::Earlier { lines, earlier });
                    }),
                Err(e) => Err(e),
            },
            CallerRequest::Leave => self.leave().await,
            CallerRequest::Ping => {
                out.push(CallerEvent::Pong);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.state
                .metrics
                .frames_rejected
                .with_label_values(&[e.code.as_str()])
                .inc();
            out.push(CallerEvent::Error(e));
        }
    }

    /// The caller's lines of a contact before `before` (the newest ones when `None`), a page
    /// at a time, and whether earlier ones exist.
    async fn page(
        &self,
        contact: ContactId,
        before: Option<i64>,
    ) -> Result<(Vec<TranscriptLine>, bool), ErrorFrame> {
        let limit = self.state.settings.caller.transcript_page_lines.get();
        let page = self
            .state
            .store
            .transcript_page(contact, Reader::Caller, before, limit)
            .await
            .map_err(store_error_frame)?;
        let lines = page.lines.iter().map(TranscriptLine::from).collect();
        Ok((lines, page.earlier))
    }

    fn contact(&self) -> Result<ContactId, ErrorFrame> {
        self.joined
            .map(|(c, _)| c)
            .ok_or_else(|| ErrorFrame::new("not_joined", "join a queue or resume first"))
    }

    /// Registers this connection for a contact's notices (replacing an older connection of it).
    fn attach(&mut self, contact: ContactId) {
        let (tx, rx) = mpsc::channel(INBOX);
        let conn = self.state.hub.register_caller(contact, tx);
        self.joined = Some((contact, conn));
        self.inbox = Some(rx);
    }

    async fn join(&mut self, form: JoinForm, out: &mut Vec<CallerEvent>) -> Result<(), ErrorFrame> {
        if self.joined.is_some() {
            return Err(ErrorFrame::new(
                "already_joined",
                "this connection already has a contact",
            ));
        }
        if !form.accepted_confidentiality {
            return Err(ErrorFrame::new(
                "invalid",
                "accepted_confidentiality: please read and accept the confidentiality statement",
            ));
        }
        let queue = self
            .state
            .queue(&form.queue)
            .ok_or_else(|| ErrorFrame::new("not_found", "no such queue"))?;
        if !queue.languages.is_empty() && !queue.languages.contains(&form.language) {
            return Err(ErrorFrame::new(
                "invalid",
                "language: this queue does not serve that language",
            ));
        }
        if form
            .age_group
            .as_ref()
            .is_some_and(|a| a.chars().count() > 40)
        {
            return Err(ErrorFrame::new(
                "invalid",
                "age_group: at most 40 characters",
            ));
        }
        if form
            .caller_key
            .as_ref()
            .is_some_and(|k| !(16..=128).contains(&k.len()))
        {
            return Err(ErrorFrame::new(
                "invalid",
                "caller_key: 16 to 128 characters",
            ));
        }
        let now = Timestamp::now();
        if !queue.opening_hours.is_open(now) {
            out.push(CallerEvent::Closed {
                message: queue.closed_message.clone(),
                alternatives: queue.alternatives.clone(),
            });
            return Ok(());
        }
        self.state.join_limiter.check(self.address).map_err(|_| {
            ErrorFrame::new(
                "rate_limited",
                "too many new chats from here; please wait a minute",
            )
        })?;

        let risk = form.screening.risk();
        let resume_token = random_token(24);
        let extra_skills = topic_requirements(&self.state.settings.caller, form.topic.as_ref());
        let (tx, rx) = mpsc::channel(INBOX);
        let joined = self
            .state
            .router
            .join(Join {
                record: NewContactRecord {
                    queue: form.queue.clone(),
                    channel: crate::domain::Channel::Chat,
                    language: form.language.clone(),
                    topic: form.topic.clone(),
                    age_group: form.age_group,
                    risk,
                    caller_key_hash: form.caller_key.as_deref().map(token_hash),
                    resume_token_hash: token_hash(&resume_token),
                    entered_at: now,
                },
                routing: NewContact {
                    id: ContactId(0),
                    queue: form.queue.clone(),
                    channel: crate::domain::Channel::Chat,
                    language: form.language,
                    topic: form.topic,
                    extra_skills,
                    risk,
                },
                inbox: tx,
            })
            .await
            .map_err(router_error_frame)?;
        let id = joined.contact;
        self.joined = Some((id, joined.conn));
        self.inbox = Some(rx);
        tracing::info!(contact = %id, queue = %form.queue, risk = risk.as_str(), "caller joined");
        let (position, estimated_wait_ms) = joined.place.unwrap_or((1, 0));
        out.push(CallerEvent::Joined {
            contact: id,
            resume_token,
            position,
            estimated_wait_ms,
        });
        Ok(())
    }

    /// Current position and wait estimate of a waiting contact.
    async fn place(&self, id: ContactId) -> Option<(u32, i64)> {
        self.state
            .router
            .read(move |engine, now| {
                let queue = engine.contact(id)?.queue;
                engine
                    .queue_places(now, &queue)
                    .into_iter()
                    .find(|p| p.contact == id)
                    .map(|p| (p.position, p.estimated_wait_ms))
            })
            .await
            .ok()
            .flatten()
    }

    async fn resume(&mut self, token: &str, out: &mut Vec<CallerEvent>) -> Result<(), ErrorFrame> {
        if self.joined.is_some() {
            return Err(ErrorFrame::new(
                "already_joined",
                "this connection already has a contact",
            ));
        }
        let ended = || {
            ErrorFrame::new(
                "ended",
                "this conversation has ended; you can start a new one",
            )
        };
        let record = match self
            .state
            .store
            .contact_by_resume_token(&token_hash(token))
            .await
        {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(ended()),
            Err(e) => return Err(store_error_frame(e)),
        };
        let id = record.id;
        self.attach(id);
        match self
            .state
            .router
            .send(Command::CallerReturned { contact: id })
            .await
        {
            Ok(_) => {}
            // Already marked present: the old connection had not been noticed as gone yet.
            Err(RouterError::Engine(EngineError::WrongState(_))) => {}
            Err(RouterError::Engine(EngineError::UnknownContact)) => {
                self.detach();
                return Err(ended());
            }
            // Not back: the caller may try again on this connection.
            Err(e) => {
                self.detach();
                return Err(router_error_frame(e));
            }
        }
        let view = self
            .state
            .router
            .read(move |engine, _| engine.contact(id))
            .await
            .ok()
            .flatten();
        // In wrap-up the conversation is over for the caller: nobody would read a new line.
        let Some(view) = view.filter(|v| {
            matches!(
                v.state,
                ContactState::Waiting | ContactState::Offered | ContactState::Assigned
            )
        }) else {
            self.detach();
            return Err(ended());
        };
        let (transcript, earlier) = match self.page(id, None).await {
            Ok(page) => page,
            Err(e) => {
                // As if this connection had never come back, so that trying again on it (or on
                // a new one) resumes, and routing knows the caller is not there meanwhile.
                self.detach();
                let _ = self
                    .state
                    .router
                    .send(Command::CallerDisconnected { contact: id })
                    .await;
                return Err(e);
            }
        };
        let place = self.place(id).await;
        out.push(CallerEvent::Resumed {
            contact: id,
            state: view.state,
            transcript,
            earlier,
            position: place.map(|p| p.0),
            estimated_wait_ms: place.map(|p| p.1),
        });
        if let Some(operator) = view
            .operator
            .filter(|_| view.state == ContactState::Assigned)
        {
            let operator_name = self.state.hub.staff_name(operator).unwrap_or_default();
            out.push(CallerEvent::Connected { operator_name });
        }
        Ok(())
    }

    /// Passes a notice on to the caller, noting when it ends the conversation.
    fn pass(&mut self, frame: CallerEvent, out: &mut Vec<CallerEvent>) {
        if let CallerEvent::Ended { .. } = frame {
            self.over = true;
        }
        out.push(frame);
    }

    fn detach(&mut self) {
        if let Some((contact, conn)) = self.joined.take() {
            self.state.hub.unregister_caller(contact, conn);
        }
        self.inbox = None;
    }

    /// Checks a line and hands it to the transcript writer; it is acknowledged (`said`) and shown
    /// to the operator once durable, in [`CallerSession::durable`].
    async fn say(&mut self, text: String, client_id: String) -> Result<(), ErrorFrame> {
        let contact = self.contact()?;
        if self.over || self.left {
            return Err(ErrorFrame::new(
                "ended",
                "this conversation has ended; nobody reads new lines. You can start a new one",
            ));
        }
        let max = self.state.settings.caller.max_message_bytes;
        let text = text.trim();
        if text.is_empty() {
            return Err(ErrorFrame::new("invalid", "text: must not be empty"));
        }
        if text.len() > max {
            return Err(ErrorFrame::new(
                "too_large",
                format!("text: at most {max} bytes"),
            ));
        }
        if client_id.len() > 64 {
            return Err(ErrorFrame::new(
                "invalid",
                "client_id: at most 64 characters",
            ));
        }
        let risk = self.state.lexicon.scan(text);
        self.state.hub.spoke(contact);
        let pending = self
            .state
            .transcripts
            .submit(NewMessage {
                contact,
                sender: Sender::Caller,
                author: None,
                visibility: Visibility::All,
                body: text.to_owned(),
                at: Timestamp::now(),
            })
            .await
            .map_err(store_error_frame)?;
        self.lines.push_back(Line {
            client_id,
            risk,
            pending,
        });
        Ok(())
    }

    async fn leave(&mut self) -> Result<(), ErrorFrame> {
        let contact = self.contact()?;
        self.state
            .router
            .send(Command::CallerLeft { contact })
            .await
            .map_err(router_error_frame)?;
        self.left = true;
        Ok(())
    }

    /// The socket is gone: unless the caller left on purpose (or a newer connection took over),
    /// the engine starts the caller's grace period.
    async fn disconnected(mut self) {
        let Some((contact, conn)) = self.joined.take() else {
            return;
        };
        if self.state.hub.unregister_caller(contact, conn) && !self.left {
            let _ = self
                .state
                .router
                .send(Command::CallerDisconnected { contact })
                .await;
        }
    }
}

/// Lines a caller may have in flight (handed to the writer, not yet durable); past this the
/// connection stops reading until the oldest is written.
const LINES_IN_FLIGHT: usize = 32;

/// A line handed to the transcript writer.
struct Line {
    client_id: String,
    /// What the lexicon found in it, acted on once the line is durable.
    risk: Option<RiskLevel>,
    pending: Pending,
}

/// The outcome of the oldest line in flight; pends while there is none.
async fn next_durable(lines: &mut VecDeque<Line>) -> StoreResult<Message> {
    match lines.front_mut() {
        Some(line) => line.pending.outcome().await,
        None => std::future::pending().await,
    }
}

struct JoinForm {
    queue: QueueId,
    language: Language,
    topic: Option<Topic>,
    age_group: Option<String>,
    screening: ScreeningAnswer,
    accepted_confidentiality: bool,
    caller_key: Option<String>,
}
