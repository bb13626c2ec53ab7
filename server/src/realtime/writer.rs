//! The message writer: one task that stores every message and every change to one, in batches.
//!
//! Durability costs one fsync per transaction (`synchronous=FULL`). Sends that arrive while a
//! transaction is being committed queue up and go into the next one together (group commit), so
//! throughput is not capped at the disk's fsync rate while every acknowledgement still means
//! "on disk". Being the only writer of messages also gives one order: the writer publishes to
//! the hub in commit order, so every client sees a room's messages in `seq` order and its
//! changes (edits, deletions, reactions) in `rev` order.

use std::sync::Arc;

use app::error::ErrorCode;
use app::protocol::ServerFrame;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::{ConnHandle, Hub, encode};
use crate::push::Pusher;
use crate::storage::{Change, ChangeOutcome, Storage, StorageError};

/// Sends waiting for the writer. Bounded: when full, senders wait (back-pressure on their
/// connection's reader) instead of growing memory.
const QUEUE: usize = 4096;
/// Most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// Where the outcome of a send goes.
pub enum Reply {
    /// A WebSocket connection: it gets `sent` or an `error` frame.
    Conn(ConnHandle),
    /// An HTTP request waiting for the outcome.
    Http(oneshot::Sender<Result<ChangeOutcome, ()>>),
}

pub struct Job {
    pub change: Change,
    pub reply: Reply,
}

#[derive(Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
#[error("the message writer has stopped")]
pub struct WriterStopped;

impl MessageWriter {
    pub fn spawn(
        storage: Arc<dyn Storage>,
        hub: Arc<Hub>,
        pusher: Pusher,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tasks.spawn(run(jobs, storage, hub, pusher, shutdown));
        Self { queue }
    }

    pub async fn submit(&self, job: Job) -> Result<(), WriterStopped> {
        self.queue.send(job).await.map_err(|_| WriterStopped)
    }
}

async fn run(
    mut jobs: mpsc::Receiver<Job>,
    storage: Arc<dyn Storage>,
    hub: Arc<Hub>,
    pusher: Pusher,
    shutdown: CancellationToken,
) {
    // Two batches in flight at most: while the storage commits one, the previous one is
    // published and acknowledged (fan-out no longer waits for the disk, nor the disk for the
    // fan-out). Batches are committed and published in the same order.
    let mut in_flight: Option<InFlight> = None;
    loop {
        let mut batch: Vec<Job> = Vec::new();
        if in_flight.is_none() {
            let first = tokio::select! {
                job = jobs.recv() => job,
                () = shutdown.cancelled() => {
                    // Store what was already accepted, then stop.
                    jobs.close();
                    jobs.recv().await
                }
            };
            let Some(first) = first else { return };
            batch.reserve(MAX_BATCH);
            batch.push(first);
        }
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let next = (!batch.is_empty()).then(|| InFlight::start(storage.clone(), batch));
        if let Some(previous) = in_flight.take() {
            previous.finish(&hub, &pusher).await;
        }
        in_flight = next;
    }
}

/// A batch handed to the storage, committing.
struct InFlight {
    jobs: Vec<Job>,
    applied: tokio::task::JoinHandle<Result<Vec<ChangeOutcome>, StorageError>>,
    started: std::time::Instant,
}

impl InFlight {
    fn start(storage: Arc<dyn Storage>, jobs: Vec<Job>) -> Self {
        let changes: Vec<Change> = jobs.iter().map(|j| j.change.clone()).collect();
        Self {
            jobs,
            applied: tokio::spawn(async move { storage.apply_changes(changes).await }),
            started: std::time::Instant::now(),
        }
    }

    /// Waits for the commit, then publishes what was stored and answers every job.
    async fn finish(self, hub: &Hub, pusher: &Pusher) {
        let applied = match self.applied.await {
            Ok(applied) => applied,
            Err(e) => Err(StorageError::Corrupt(format!(
                "the commit task failed: {e}"
            ))),
        };
        tracing::debug!(
            changes = self.jobs.len(),
            micros = self.started.elapsed().as_micros() as u64,
            "batch committed"
        );
        match applied {
            Ok(outcomes) => {
                for (job, outcome) in self.jobs.into_iter().zip(outcomes) {
                    match &outcome {
                        ChangeOutcome::Stored(m) => {
                            let frame = encode(&ServerFrame::Message { message: m.clone() });
                            hub.publish_message(m.room_id, m.seq, frame);
                            pusher.message_stored(m);
                        }
                        ChangeOutcome::Updated { message, .. } => {
                            let frame = encode(&ServerFrame::MessageUpdated {
                                message: message.clone(),
                            });
                            hub.publish_update(message.room_id, message.rev, frame);
                        }
                        _ => {}
                    }
                    answer(job, Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, changes = self.jobs.len(), "storing changes failed");
                for job in self.jobs {
                    answer(job, Err(()));
                }
            }
        }
    }
}

fn answer(job: Job, outcome: Result<ChangeOutcome, ()>) {
    let conn = match job.reply {
        Reply::Http(tx) => {
            // The HTTP client may have gone away; the change is stored regardless.
            tx.send(outcome).ok();
            return;
        }
        Reply::Conn(conn) => conn,
    };
    // Only sends come from sockets.
    let client_id = match &job.change {
        Change::Append(m) => m.client_id.as_str().to_owned(),
        _ => return,
    };
    let error = |code, message: &str| ServerFrame::Error {
        code,
        message: message.to_owned(),
        client_id: Some(client_id.clone()),
    };
    let frame = match outcome {
        Ok(ChangeOutcome::Stored(message) | ChangeOutcome::Duplicate(message)) => {
            ServerFrame::Sent {
                client_id: client_id.clone(),
                message,
            }
        }
        Ok(ChangeOutcome::NoSuchMessage) => error(
            ErrorCode::NotFound,
            "The message you reply to is not in this room.",
        ),
        Ok(ChangeOutcome::BadAttachment) => error(
            ErrorCode::NotFound,
            "An attachment is unknown or already used; upload it again.",
        ),
        Ok(_) => error(
            ErrorCode::NotFound,
            "No such room, or you are not a member of it.",
        ),
        Err(()) => error(
            ErrorCode::Internal,
            "The message was not stored; send it again.",
        ),
    };
    conn.send_frame(&frame);
}
