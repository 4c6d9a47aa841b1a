//! Group commit for transcript lines. Connection tasks hand lines to one writer task, which writes
//! everything queued at that moment in one transaction — one fsync for many lines — and answers
//! each sender once its line is durable. Under light load a batch is one line, so nothing waits
//! for a batch to fill; under heavy load the cost of a commit is shared.
//!
//! Batches are numbered. A batch reported failed may have committed all the same (the connection
//! lost after the commit): the writer then reads its lines back instead of writing them again, and
//! the store refuses a number written before, so no retry writes a line twice. A batch that failed
//! for a reason of the moment (a lost connection) is written again after short pauses; if it still
//! fails, its lines are retried one by one, so one bad line fails alone.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{DynStore, Log, LogHead, Message, NewMessage, StoreError, StoreResult};

/// Lines written in one transaction at most.
const BATCH: usize = 1024;

/// Pauses before writing a batch again after a failure of the moment (a lost connection, a busy
/// database): about 1.5 s in all, then each line is tried once more on its own and a line that
/// still fails is answered with the error (its sender may send it again).
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_millis(1_000),
];

type Reply = oneshot::Sender<StoreResult<Message>>;

/// A cheap handle to the writer task.
#[derive(Clone)]
pub struct TranscriptWriter {
    tx: mpsc::Sender<(NewMessage, Reply)>,
}

impl TranscriptWriter {
    /// Starts the writer; it stops when every handle is dropped or `shutdown` is cancelled and
    /// its queue is drained.
    pub fn start(
        store: DynStore,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let task = tokio::spawn(write_batches(store, metrics, rx, shutdown));
        (TranscriptWriter { tx }, task)
    }

    /// Appends a line; returns once it is durable.
    pub async fn append(&self, message: NewMessage) -> StoreResult<Message> {
        self.submit(message).await?.wait().await
    }

    /// Hands a line to the writer (waiting only for room in its queue) and returns at once, so
    /// that a connection can go on reading while the line is written. Lines are written in the
    /// order they are submitted.
    pub async fn submit(&self, message: NewMessage) -> StoreResult<Pending> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((message, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Pending(answer))
    }
}

/// A submitted line, until it is durable.
pub struct Pending(oneshot::Receiver<StoreResult<Message>>);

impl Pending {
    /// The stored line, once durable.
    pub async fn wait(mut self) -> StoreResult<Message> {
        self.outcome().await
    }

    /// The outcome if it is already known.
    pub fn try_take(&mut self) -> Option<StoreResult<Message>> {
        match self.0.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(StoreError::Closed)),
        }
    }

    /// Waits for the outcome without consuming (for use in `select!`).
    pub async fn outcome(&mut self) -> StoreResult<Message> {
        (&mut self.0).await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_batches(
    store: DynStore,
    metrics: Metrics,
    mut rx: mpsc::Receiver<(NewMessage, Reply)>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut head = LogHead::new(Log::Transcript);
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = shutdown.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (lines, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let started = Instant::now();
        let mut outcome = write(&mut head, &store, &lines).await;
        for pause in RETRY_PAUSES {
            match &outcome {
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, lines = lines.len(), "transcript write failed; retrying");
                    tokio::time::sleep(pause).await;
                    outcome = write(&mut head, &store, &lines).await;
                }
                _ => break,
            }
        }
        match outcome {
            Ok(written) => {
                metrics
                    .store_write_seconds
                    .with_label_values(&["transcript"])
                    .observe(started.elapsed().as_secs_f64());
                for (reply, message) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(message));
                }
            }
            Err(e) if lines.len() > 1 => {
                tracing::warn!(error = %e, lines = lines.len(), "batch failed; writing lines one by one");
                for (reply, line) in replies.into_iter().zip(&lines) {
                    let outcome = write(&mut head, &store, std::slice::from_ref(line)).await;
                    let _ = reply
                        .send(outcome.and_then(|mut one| one.pop().ok_or(StoreError::NotFound)));
                }
            }
            Err(e) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// Writes `lines` as the transcript's next batch. When the store reports a failure, a batch that
/// committed all the same is read back instead (see [`crate::store::Log`]).
async fn write(
    head: &mut LogHead,
    store: &DynStore,
    lines: &[NewMessage],
) -> StoreResult<Vec<Message>> {
    let batch = head.next(&**store).await?;
    let e = match store.append_messages(lines.to_vec(), Some(batch)).await {
        Ok(written) => {
            head.written(batch);
            return Ok(written);
        }
        Err(e) => e,
    };
    if !head.committed_anyway(&**store, batch).await {
        return Err(e);
    }
    match store.appended_batch(batch, lines.to_vec()).await? {
        Some(written) => {
            tracing::warn!(error = %e, batch, "a transcript write reported as failed had committed");
            Ok(written)
        }
        None => Err(e),
    }
}
