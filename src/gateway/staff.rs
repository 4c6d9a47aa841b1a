//! A staff console's WebSocket (`/ws/staff`), authenticated by the session cookie: presence, offers,
//! chats, wrap-up, transfer, and joining live contacts (monitor, whisper, barge).
//!
//! One console per person: a new connection replaces the old one. A dropped console starts the
//! engine's grace period; reconnecting within it keeps the person's contacts (sent again in `hello`).
//!
//! A console works with the account as it is: it registers with the hub first and reads the
//! account (and its session) afterwards, so a change made before that read is seen by it, and
//! one made after closes the console through the hub. Either way a disabled account is left with
//! no console and no routing presence, and the profile in force is the newest.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::hub::{INBOX, StaffClosed, StaffNotice};
use super::protocol::{
    ContactDetail, ContactParticipant, ContactSummary, ErrorFrame, HistoryItem, HistoryNote,
    PROTOCOL_VERSION, StaffEvent, StaffLine, StaffRequest,
};
use super::router::summarize;
use super::{
    CLOSE_GOING_AWAY, CLOSE_POLICY, FloodGuard, MAX_FRAME_BYTES, MAX_READ_BYTES, READ_BUFFER_BYTES,
    check_origin, decode, farewell, oversized_frame, recv_inbox, router_error_frame, send_frames,
    store_error_frame,
};
use crate::admin::AccountView;
use crate::app::{AppState, StaffStage};
use crate::auth::CurrentUser;
use crate::domain::{ContactId, JoinMode, OperatorId, RiskLevel, Timestamp};
use crate::error::ApiError;
use crate::routing::{Command, ContactState, EndedBy};
use crate::store::notes::NoteStatus;
use crate::store::quality::AccessKind;
use crate::store::{NewMessage, Reader, Sender, StoreError, Visibility};

/// Frames a console may send per 10 s before it is closed as abusive.
const STAFF_FRAMES_PER_10S: u32 = 200;

/// WebSocket close code for a console whose account could not be read (RFC 6455 registry:
/// "try again later"); the console connects again by itself.
const CLOSE_TRY_AGAIN: u16 = 1013;

/// The close of a console whose session ended or whose account changed: it connects again, as
/// the account now is, or is refused and shows the sign-in.
const SIGNED_OUT: (u16, &str) = (CLOSE_POLICY, "signed out or account changed");

/// The close of a console that could not be sent a contact it holds, joined or is offered (the
/// store failed to read it): it connects again and reads everything afresh in its `hello`.
const UNREADABLE: (u16, &str) = (CLOSE_TRY_AGAIN, "could not read a contact; connect again");

pub async fn upgrade(
    crate::extract::WebSocketUpgrade(ws): crate::extract::WebSocketUpgrade,
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.settings.server)?;
    let tasks = state.tasks.clone();
    Ok(ws
        .max_message_size(MAX_READ_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| tasks.track_future(run(state, user, socket))))
}

async fn run(state: AppState, user: CurrentUser, socket: WebSocket) {
    let me = user.id();
    state.hooks.staff(me, StaffStage::Upgraded).await;
    let (mut sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(INBOX);
    // Registered before the account is read again: from here on, disabling or changing it
    // closes this console through the hub.
    let conn = state.hub.register_staff(me, user.role(), tx);
    let mut inbox = Some(rx);
    let mut out = Vec::new();
    let account = match admit(&state, &user).await {
        Ok(account) => account,
        Err((frame, close)) => {
            farewell(
                &mut sink,
                &mut stream,
                vec![StaffEvent::Error(frame)],
                Some(close),
            )
            .await;
            // It may have replaced an older console of the same person, which then left the
            // telling to this one.
            if state.hub.unregister_staff(me, conn) {
                let _ = state
                    .router
                    .send(Command::OperatorDisconnected { operator: me })
                    .await;
            }
            return;
        }
    };
    state.hooks.staff(me, StaffStage::Admitted).await;
    if let Err(e) = state
        .router
        .send(Command::OperatorConnected { operator: me })
        .await
    {
        out.push(StaffEvent::Error(router_error_frame(e)));
    }
    // A frame that could not be built (the store failed to read a contact) is never left out in
    // silence: the console is told, closed, and connects again to read everything afresh.
    let mut unreadable = None;
    match hello(&state, &account).await {
        Ok(hello) => out.push(hello),
        Err(e) => {
            out.push(StaffEvent::Error(e));
            unreadable = Some(UNREADABLE);
        }
    }
    let mut flood = FloodGuard::new(STAFF_FRAMES_PER_10S, Duration::from_secs(10));
    let close = loop {
        if send_frames(&mut sink, out.drain(..)).await.is_err() {
            break None;
        }
        if let Some(close) = unreadable.take() {
            break Some(close);
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                out.push(StaffEvent::Shutdown);
                break Some((CLOSE_GOING_AWAY, "restarting"));
            }
            notice = recv_inbox(&mut inbox) => match notice {
                Some(notice) => {
                    // Whatever else is queued goes out in the same write.
                    let mut next = Some(notice);
                    while let Some(notice) = next.take() {
                        match expand(&state, me, notice).await {
                            Ok(frame) => out.push(frame),
                            Err(e) => {
                                out.push(StaffEvent::Error(e));
                                unreadable = Some(UNREADABLE);
                                break;
                            }
                        }
                        next = inbox.as_mut().and_then(|rx| rx.try_recv().ok());
                    }
                }
                None => break Some(match state.hub.why_staff_closed(me, conn) {
                    // The console stops: it must not take the place back from the newer one.
                    StaffClosed::Replaced => (CLOSE_POLICY, "replaced by a newer console"),
                    StaffClosed::SignedOut => SIGNED_OUT,
                    // Nothing is wrong with the person: connect again, within the grace period.
                    StaffClosed::TooSlow => (CLOSE_TRY_AGAIN, "too slow; connect again"),
                }),
            },
            frame = stream.next() => match frame {
                // Binary frames count toward the flood limit too: each one is answered.
                Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                    if !flood.admit() {
                        state.metrics.frames_rejected.with_label_values(&["flood"]).inc();
                        break Some((CLOSE_POLICY, "too many frames"));
                    }
                    match message {
                        WsMessage::Text(text) => {
                            if let Some(frame) = handle(&state, &user, &text).await {
                                out.push(frame);
                            }
                        }
                        _ => out.push(StaffEvent::Error(ErrorFrame::new("bad_frame", "frames must be text"))),
                    }
                }
                Some(Err(e)) => match oversized_frame(e, &state.metrics) {
                    Some((error, close)) => {
                        out.push(StaffEvent::Error(error));
                        break Some(close);
                    }
                    None => break None,
                },
                Some(Ok(WsMessage::Close(_))) | None => break None,
                Some(Ok(_)) => {}
            },
        }
    };
    farewell(&mut sink, &mut stream, out, close).await;
    if state.hub.unregister_staff(me, conn) {
        let _ = state
            .router
            .send(Command::OperatorDisconnected { operator: me })
            .await;
    }
}

/// Reads the account and its session again, now that the console is registered, and puts the
/// profile in force (the profile is read afresh at every connection, so an account added or
/// changed outside this server, e.g. by `hotline user add`, routes correctly from its first
/// sign-in). Refused, with the close to send, when the session has ended or the account was
/// disabled or given another role since the request was signed in: the console then connects
/// again as the account now is, or not at all.
async fn admit(
    state: &AppState,
    user: &CurrentUser,
) -> Result<AccountView, (ErrorFrame, (u16, &'static str))> {
    let signed_out = || {
        (
            ErrorFrame::new("unauthorized", "signed out, or your account has changed"),
            SIGNED_OUT,
        )
    };
    let try_again = |frame| (frame, (CLOSE_TRY_AGAIN, "could not load your profile"));
    match state
        .store
        .session(&user.token_hash, Timestamp::now())
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(signed_out()),
        Err(e) => return Err(try_again(store_error_frame(e))),
    }
    let account = match crate::admin::sync_account(state, user.id()).await {
        Ok(account) => account,
        Err(ApiError::NotFound) => return Err(signed_out()),
        Err(e) => {
            tracing::error!(error = %e, "could not load the operator's profile");
            return Err(try_again(ErrorFrame::new(
                "unavailable",
                "could not load your profile; connecting again",
            )));
        }
    };
    if account.disabled || account.role != user.role() {
        return Err(signed_out());
    }
    Ok(account)
}

/// The first frame: who you are, your state, the contacts you hold or have joined (how you
/// joined them, and who else has), and which offers still ring for you.
async fn hello(state: &AppState, account: &AccountView) -> Result<StaffEvent, ErrorFrame> {
    let me = account.id;
    let snapshot = state
        .router
        .read(move |engine, _| {
            let state = engine.operator(me).map(|o| o.state);
            let contacts = engine.contacts();
            let offered: Vec<ContactId> = contacts
                .iter()
                .filter(|c| c.operator == Some(me) && c.state == ContactState::Offered)
                .map(|c| c.id)
                .collect();
            let mine: Vec<(ContactSummary, Vec<(OperatorId, JoinMode)>)> = contacts
                .into_iter()
                .filter(|c| {
                    let holds = c.operator == Some(me)
                        && matches!(c.state, ContactState::Assigned | ContactState::Wrapping);
                    holds || c.participants.iter().any(|(p, _)| *p == me)
                })
                .map(|c| (summarize(&c), c.participants))
                .collect();
            (state, mine, offered)
        })
        .await;
    let (operator_state, mine, offered) = snapshot.unwrap_or((None, Vec::new(), Vec::new()));
    let mut contacts = Vec::new();
    for (summary, participants) in mine {
        contacts.push(detail(state, me, summary, &participants).await?);
    }
    Ok(StaffEvent::Hello {
        protocol: PROTOCOL_VERSION,
        operator: me,
        name: account.display_name.clone(),
        role: account.role,
        state: operator_state,
        contacts,
        offered,
    })
}

/// A contact with its transcript, who has joined it, and the caller's earlier contacts, as
/// `reader` sees it.
///
/// What is read beyond the reader's own work is written to the access log first, as every other
/// read is (no record, no read): the notes of the caller's earlier contacts, and the transcript
/// of a contact the reader joined rather than holds.
async fn detail(
    state: &AppState,
    reader: OperatorId,
    summary: ContactSummary,
    participants: &[(OperatorId, JoinMode)],
) -> Result<ContactDetail, ErrorFrame> {
    let log_read = |contact, what| async move {
        state
            .store
            .record_access(reader, contact, what, Timestamp::now())
            .await
            .map_err(store_error_frame)
    };
    if summary.operator != Some(reader) {
        log_read(summary.id, AccessKind::Transcript).await?;
    }
    let (transcript, earlier) = newest_lines(state, summary.id).await?;
    let record = state
        .store
        .contact(summary.id)
        .await
        .map_err(store_error_frame)?;
    let previous = match &record.caller_key_hash {
        Some(key) => state
            .store
            .contacts_of_caller(key, 11)
            .await
            .map_err(store_error_frame)?,
        None => Vec::new(),
    };
    let mut history = Vec::new();
    for c in previous.into_iter().filter(|c| c.id != summary.id).take(10) {
        let submitted: Vec<_> = state
            .store
            .notes_of_contact(c.id)
            .await
            .map_err(store_error_frame)?
            .into_iter()
            .filter(|n| n.status == NoteStatus::Submitted)
            .collect();
        if !submitted.is_empty() {
            log_read(c.id, AccessKind::Notes).await?;
        }
        let notes = submitted
            .into_iter()
            .map(|n| {
                let fields = n.effective();
                let text = |k: &str| fields.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                HistoryNote {
                    author: n.author,
                    call_type: text("call_type"),
                    risk_level: text("risk_level").and_then(|r| RiskLevel::parse(&r).ok()),
                    summary: text("summary"),
                }
            })
            .collect();
        history.push(HistoryItem {
            contact: c.id,
            entered_at: c.entered_at,
            topic: c.topic,
            risk: c.risk,
            state: c.state,
            notes,
        });
    }
    let mode = participants
        .iter()
        .find(|(p, _)| *p == reader)
        .map(|(_, mode)| *mode);
    let participants = participants
        .iter()
        .map(|&(id, mode)| ContactParticipant {
            id,
            name: state.hub.staff_name(id),
            mode,
        })
        .collect();
    Ok(ContactDetail {
        summary,
        mode,
        participants,
        transcript,
        earlier,
        history,
    })
}

/// The newest page of a contact's transcript, and whether earlier lines exist.
async fn newest_lines(
    state: &AppState,
    contact: ContactId,
) -> Result<(Vec<StaffLine>, bool), ErrorFrame> {
    let limit = state.settings.caller.transcript_page_lines.get();
    let page = state
        .store
        .transcript_page(contact, Reader::Staff, None, limit)
        .await
        .map_err(store_error_frame)?;
    Ok((
        page.lines.iter().map(StaffLine::from).collect(),
        page.earlier,
    ))
}

/// Turns a notice into the frame to send, reading the store where the notice needs the
/// transcript or the caller's history; an error if that read failed.
async fn expand(
    state: &AppState,
    me: OperatorId,
    notice: StaffNotice,
) -> Result<StaffEvent, ErrorFrame> {
    match notice {
        StaffNotice::Frame(frame) => Ok(frame),
        StaffNotice::Offer {
            contact,
            expires_at,
        } => {
            // A contact that has just joined and written nothing needs no read of the store.
            let lines = if state.hub.is_quiet(contact.id) {
                Ok((Vec::new(), false))
            } else {
                newest_lines(state, contact.id).await
            };
            lines.map(|(transcript, earlier)| StaffEvent::Offer {
                contact,
                expires_at,
                transcript,
                earlier,
            })
        }
        StaffNotice::Assigned {
            contact,
            participants,
        } => detail(state, me, contact, &participants)
            .await
            .map(|contact| StaffEvent::Assigned { contact }),
        StaffNotice::Joined {
            contact,
            mode,
            participants,
        } => detail(state, me, contact, &participants)
            .await
            .map(|contact| StaffEvent::Joined { contact, mode }),
    }
}

/// Handles one frame; returns the direct answer, if any (errors included).
async fn handle(state: &AppState, user: &CurrentUser, text: &str) -> Option<StaffEvent> {
    let request = match decode::<StaffRequest>(text, MAX_FRAME_BYTES) {
        Ok(r) => r,
        Err(e) => return Some(refused(state, e)),
    };
    let me = user.id();
    let command = match request {
        StaffRequest::Ping => return Some(StaffEvent::Pong),
        StaffRequest::Say {
            contact,
            text,
            client_id,
        } => {
            let line = client_id.clone();
            return Some(
                say(state, me, contact, text, client_id)
                    .await
                    .unwrap_or_else(|e| refused(state, e.for_line(&line))),
            );
        }
        StaffRequest::Typing { contact } => {
            if let Ok((_, Visibility::All)) = speaking_as(state, me, contact) {
                state.hub.relay_typing(contact, false, Some(me));
            }
            return None;
        }
        StaffRequest::SetPresence { presence } => Command::SetPresence {
            operator: me,
            presence,
        },
        StaffRequest::Accept { contact } => Command::Accept {
            operator: me,
            contact,
        },
        StaffRequest::Reject { contact } => Command::Reject {
            operator: me,
            contact,
        },
        StaffRequest::End { contact } => {
            if !holds(state, me, contact) {
                return Some(refused(state, not_yours()));
            }
            Command::End {
                contact,
                by: EndedBy::Operator,
            }
        }
        StaffRequest::FinishWrapUp { contact } => Command::FinishWrapUp {
            operator: me,
            contact,
        },
        StaffRequest::Transfer { contact, target } => Command::Transfer {
            contact,
            by: me,
            target,
        },
        StaffRequest::RaiseRisk { contact, risk } => {
            if speaking_as(state, me, contact).is_err() {
                return Some(refused(state, not_yours()));
            }
            Command::RaiseRisk { contact, risk }
        }
        StaffRequest::Join { contact, mode } => {
            if !user.role().may_join_contacts() {
                return Some(refused(
                    state,
                    ErrorFrame::new("forbidden", "your role may not join contacts"),
                ));
            }
            Command::Join {
                contact,
                participant: me,
                mode,
            }
        }
        StaffRequest::Leave { contact } => Command::Leave {
            contact,
            participant: me,
        },
    };
    match state.router.send(command).await {
        Ok(_) => None,
        Err(e) => Some(refused(state, router_error_frame(e))),
    }
}

fn refused(state: &AppState, e: ErrorFrame) -> StaffEvent {
    state
        .metrics
        .frames_rejected
        .with_label_values(&[e.code.as_str()])
        .inc();
    StaffEvent::Error(e)
}

fn not_yours() -> ErrorFrame {
    ErrorFrame::new("forbidden", "you are not in this contact")
}

fn holds(state: &AppState, me: OperatorId, contact: ContactId) -> bool {
    state
        .hub
        .members(contact)
        .is_some_and(|m| m.operator == Some(me))
}

/// How `me` writes into a contact: as its operator (to all), or as a participant by join mode.
/// Monitors do not write.
fn speaking_as(
    state: &AppState,
    me: OperatorId,
    contact: ContactId,
) -> Result<(Sender, Visibility), ErrorFrame> {
    let members = state.hub.members(contact).ok_or_else(not_yours)?;
    if members.ended {
        return Err(ErrorFrame::new(
            "ended",
            "this conversation has ended; nobody reads new lines",
        ));
    }
    if members.operator == Some(me) {
        return Ok((Sender::Operator, Visibility::All));
    }
    match members.participants.iter().find(|(p, _)| *p == me) {
        Some((_, JoinMode::Barge)) => Ok((Sender::Participant, Visibility::All)),
        Some((_, JoinMode::Whisper)) => Ok((Sender::Participant, Visibility::Operators)),
        Some((_, JoinMode::Monitor)) => Err(ErrorFrame::new(
            "forbidden",
            "monitors do not write; join as whisper or barge",
        )),
        None => Err(not_yours()),
    }
}

async fn say(
    state: &AppState,
    me: OperatorId,
    contact: ContactId,
    text: String,
    client_id: String,
) -> Result<StaffEvent, ErrorFrame> {
    let (sender, visibility) = speaking_as(state, me, contact)?;
    let text = text.trim();
    let max = state.settings.caller.max_message_bytes;
    if text.is_empty() {
        return Err(ErrorFrame::new("invalid", "text: must not be empty"));
    }
    if text.len() > max || client_id.len() > 64 {
        return Err(ErrorFrame::new(
            "too_large",
            format!("text: at most {max} bytes; client_id: at most 64"),
        ));
    }
    // A contact where only staff write has a transcript all the same: an offer of it (after a
    // transfer, or a requeue) must read it, as the accept does.
    state.hub.spoke(contact);
    let message = state
        .transcripts
        .append(NewMessage {
            contact,
            sender,
            author: Some(me),
            visibility,
            body: text.to_owned(),
            at: Timestamp::now(),
        })
        .await
        .map_err(store_error_frame)?;
    state.hub.deliver_message(&message);
    Ok(StaffEvent::Said {
        client_id,
        contact,
        seq: message.seq,
    })
}

/// Used by the HTTP transcript endpoint: whether `me` may read this contact now.
pub fn is_member(state: &AppState, me: OperatorId, contact: ContactId) -> bool {
    state
        .hub
        .members(contact)
        .is_some_and(|m| m.operator == Some(me) || m.participants.iter().any(|(p, _)| *p == me))
}
