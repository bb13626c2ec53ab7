//! A connection's outbox: the frames waiting for its writer, bounded, and holding no memory
//! while empty.
//!
//! Why not `tokio::sync::mpsc`: its bounded channel allocates a block of 32 slots up front and
//! a cache-padded channel state, ~2 KB per connection that an idle socket (most of them) never
//! uses; heaptrack at 5,000 idle sockets put it at a fifth of the server's memory per socket
//! (docs/perf.md, S1). Here the queue is a `VecDeque` that grows with a burst and is released
//! when the writer has drained it and goes to sleep. There is one reader (the socket's writer),
//! so a single waker suffices; many producers push under a short lock, never across an await.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::hub::Outgoing;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The outbox holds its limit: the reader is too slow.
    Full,
    /// The writer is gone (the connection is over).
    Closed,
}

/// The queue itself, shared by the connection's handles (producers) and its writer.
#[derive(Debug)]
pub struct Queue {
    frames: Mutex<VecDeque<Outgoing>>,
    limit: usize,
    /// The writer, asleep on an empty queue.
    writer: AtomicWaker,
    /// Producers waiting for room (`push_wait`).
    space: Notify,
    /// The writer has ended: nothing is queued any more.
    closed: AtomicBool,
}

impl Queue {
    pub fn new(limit: usize) -> Self {
        Self {
            frames: Mutex::new(VecDeque::new()),
            limit,
            writer: AtomicWaker::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Outgoing>> {
        // A panic while holding the lock cannot leave the deque inconsistent.
        self.frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `out` unless the outbox is full or closed.
    pub fn push(&self, out: Outgoing) -> Result<(), Refused> {
        {
            let mut frames = self.lock();
            if self.closed.load(Ordering::Acquire) {
                return Err(Refused::Closed);
            }
            if frames.len() >= self.limit {
                return Err(Refused::Full);
            }
            frames.push_back(out);
        }
        self.writer.wake();
        Ok(())
    }

    /// Queues `out`, waiting while the outbox is full; `false` if the writer is gone.
    pub async fn push_wait(&self, out: Outgoing) -> bool {
        let mut out = Some(out);
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let Some(frame) = out.take() else {
                return false;
            };
            {
                let mut frames = self.lock();
                if self.closed.load(Ordering::Acquire) {
                    return false;
                }
                if frames.len() < self.limit {
                    frames.push_back(frame);
                    drop(frames);
                    self.writer.wake();
                    return true;
                }
                out = Some(frame);
            }
            space.await;
        }
    }

    /// The next frame, if one is queued.
    pub fn try_pop(&self) -> Option<Outgoing> {
        let mut frames = self.lock();
        let was_full = frames.len() >= self.limit;
        let out = frames.pop_front();
        drop(frames);
        if was_full {
            self.space.notify_waiters();
        }
        out
    }

    /// The next frame, waiting for one. An empty queue gives its memory back before the
    /// writer sleeps.
    pub async fn pop(&self) -> Outgoing {
        std::future::poll_fn(|cx| {
            if let Some(out) = self.try_pop() {
                return Poll::Ready(out);
            }
            self.writer.register(cx.waker());
            let mut frames = self.lock();
            match frames.pop_front() {
                Some(out) => Poll::Ready(out),
                None => {
                    if frames.capacity() > 0 {
                        *frames = VecDeque::new();
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The writer has ended: refuse frames from now on and drop the queued ones.
    pub fn close(&self) {
        let dropped = {
            let mut frames = self.lock();
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut *frames)
        };
        drop(dropped);
        self.space.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;

    fn frame(s: &str) -> Outgoing {
        Outgoing::Frame(Utf8Bytes::from(s.to_owned()))
    }

    fn text(out: Option<Outgoing>) -> String {
        match out {
            Some(Outgoing::Frame(t)) => t.as_str().to_owned(),
            _ => String::new(),
        }
    }

    #[test]
    fn frames_come_out_in_order_up_to_the_limit() {
        let q = Queue::new(2);
        assert_eq!(q.push(frame("a")), Ok(()));
        assert_eq!(q.push(frame("b")), Ok(()));
        assert_eq!(q.push(frame("c")), Err(Refused::Full));
        assert_eq!(text(q.try_pop()), "a");
        assert_eq!(q.push(frame("d")), Ok(()));
        assert_eq!(text(q.try_pop()), "b");
        assert_eq!(text(q.try_pop()), "d");
        assert!(q.try_pop().is_none());
    }

    #[tokio::test]
    async fn an_idle_queue_holds_no_memory_and_a_closed_one_takes_nothing() {
        let q = std::sync::Arc::new(Queue::new(8));
        for s in ["a", "b", "c"] {
            q.push(frame(s)).unwrap();
        }
        for s in ["a", "b", "c"] {
            assert_eq!(text(Some(q.pop().await)), s);
        }
        // The writer waits on the empty queue: the deque's buffer is released.
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { text(Some(q.pop().await)) }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(q.lock().capacity(), 0);
        q.push(frame("wake")).unwrap();
        assert_eq!(waiting.await.unwrap(), "wake");
        q.close();
        assert_eq!(q.push(frame("late")), Err(Refused::Closed));
        assert!(!q.push_wait(frame("late")).await);
    }

    #[tokio::test]
    async fn a_waiting_producer_goes_on_when_there_is_room() {
        let q = std::sync::Arc::new(Queue::new(1));
        q.push(frame("a")).unwrap();
        let producer = tokio::spawn({
            let q = q.clone();
            async move { q.push_wait(frame("b")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!producer.is_finished());
        assert_eq!(text(q.try_pop()), "a");
        assert!(producer.await.unwrap());
        assert_eq!(text(q.try_pop()), "b");
    }
}
