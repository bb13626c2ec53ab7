//! The message writer: one task that stores every message, in batches.
//!
//! Durability costs one fsync per transaction (`synchronous=FULL`). Sends that arrive while a
//! transaction is being committed queue up and go into the next one together (group commit), so
//! throughput is not capped at the disk's fsync rate while every acknowledgement still means
//! "on disk". Being the only writer of messages also gives one order: the writer publishes to
//! the hub in commit order, so every client sees a room's messages in `seq` order.

use std::sync::Arc;

use app::api::Message;
use app::error::ErrorCode;
use app::protocol::ServerFrame;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::{ConnHandle, Hub, encode};
use crate::storage::{AppendOutcome, NewMessage, Storage};

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
    Http(oneshot::Sender<Result<AppendOutcome, ()>>),
}

pub struct Job {
    pub message: NewMessage,
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
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tasks.spawn(run(jobs, storage, hub, shutdown));
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
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            () = shutdown.cancelled() => {
                // Store what was already accepted, then stop.
                jobs.close();
                jobs.recv().await
            }
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&mut batch, storage.as_ref(), &hub).await;
    }
}

async fn commit(batch: &mut Vec<Job>, storage: &dyn Storage, hub: &Hub) {
    let messages: Vec<NewMessage> = batch.iter().map(|j| j.message.clone()).collect();
    match storage.append_messages(&messages).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                if let AppendOutcome::Stored(m) = &outcome {
                    let frame = encode(&ServerFrame::Message { message: m.clone() });
                    hub.publish_message(m.room_id, m.seq, frame);
                }
                answer(job, Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = ?e, messages = batch.len(), "storing messages failed");
            for job in batch.drain(..) {
                answer(job, Err(()));
            }
        }
    }
}

fn answer(job: Job, outcome: Result<AppendOutcome, ()>) {
    let client_id = job.message.client_id.as_str().to_owned();
    match job.reply {
        Reply::Http(tx) => {
            // The HTTP client may have gone away; the message is stored regardless.
            tx.send(outcome).ok();
        }
        Reply::Conn(conn) => {
            let frame = match outcome {
                Ok(AppendOutcome::Stored(message) | AppendOutcome::Duplicate(message)) => {
                    sent_frame(client_id, message)
                }
                Ok(AppendOutcome::NoSuchReplyTarget) => ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    message: "The message you reply to is not in this room.".into(),
                    client_id: Some(client_id),
                },
                Ok(AppendOutcome::NotMember) => ServerFrame::Error {
                    code: ErrorCode::NotFound,
                    message: "No such room, or you are not a member of it.".into(),
                    client_id: Some(client_id),
                },
                Err(()) => ServerFrame::Error {
                    code: ErrorCode::Internal,
                    message: "The message was not stored; send it again.".into(),
                    client_id: Some(client_id),
                },
            };
            conn.send_frame(&frame);
        }
    }
}

fn sent_frame(client_id: String, message: Message) -> ServerFrame {
    ServerFrame::Sent { client_id, message }
}
