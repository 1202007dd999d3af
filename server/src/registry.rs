//! The live-connection registry: which authenticated socket belongs to whom,
//! and the channel to reach each one.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

/// What other parts of the server ask a socket task to do.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Send this (already encoded) frame.
    Frame(Utf8Bytes),
    /// A live `notification` of the socket's user. The socket sends it
    /// only if it is the next one (`seq` one above the last it sent, in the
    /// same epoch): it drops one it already sent, and reads a gap from the
    /// store first.
    Notification {
        /// The feed's epoch when it was published.
        epoch: std::sync::Arc<str>,
        /// Its seq.
        seq: u64,
        /// The encoded frame.
        frame: Utf8Bytes,
    },
    /// A live frame of a topic (`message`, `presence`) for the socket's
    /// subscription of this generation; dropped if the socket has
    /// unsubscribed or subscribed again since it was queued.
    Topic {
        /// The topic.
        topic: std::sync::Arc<str>,
        /// The subscription it was queued for.
        generation: u64,
        /// A `message`'s epoch and offset, merged like
        /// [`Outbound::Notification`]'s seq (`None`: a `presence`).
        position: Option<(std::sync::Arc<str>, u64)>,
        /// The encoded frame.
        frame: Utf8Bytes,
    },
    /// The live feed may have lost frames (the pub/sub connection broke):
    /// catch up the feed and every topic from the store.
    Resync,
    /// The server ended the socket's subscription of this generation
    /// (`unsubscribed removed` or `reset`): forget it, send the frame.
    TopicEnded {
        /// The topic.
        topic: std::sync::Arc<str>,
        /// The subscription that ended.
        generation: u64,
        /// The encoded `unsubscribed` frame.
        frame: Utf8Bytes,
    },
    /// The user logged out: `auth_error revoked`, close 4001.
    Revoked,
    /// The token was expired by an admin: `auth_error expired_token`, close 4001.
    Expired,
    /// Close with this code and reason.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Drop the connection without a close frame (the peer sees 1006).
    Drop,
    /// Stop sending queued live frames for this long, as if the peer had
    /// stopped reading (a dev fault: the queue fills up, and past its bound
    /// the socket closes with 1013).
    Stall(std::time::Duration),
}

/// The bounds of one socket's queue of live frames (contract section 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most queued messages. Defaults to 1,024.
    pub frames: usize,
    /// Most queued bytes of frames. Defaults to 1 MiB.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            frames: 1024,
            bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct QueueState {
    limits: QueueLimits,
    bytes: AtomicUsize,
    overflowed: AtomicBool,
    overflow: Notify,
}

/// The sending half of a socket task's queue: bounded by [`QueueLimits`].
/// A message that does not fit is not queued; the socket is told instead
/// to close with 1013 (try again later), and its client catches up by
/// replay.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    state: Arc<QueueState>,
}

/// The socket was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the socket is closed")]
pub struct Closed;

impl Outbox {
    /// A queue with these bounds, and its receiving half.
    pub fn new(limits: QueueLimits) -> (Self, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(limits.frames.max(1));
        let state = Arc::new(QueueState {
            limits,
            bytes: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
        });
        (
            Self {
                tx,
                state: state.clone(),
            },
            OutboxReceiver { rx, state },
        )
    }

    /// Queues `message` without waiting. If the queue is full the message
    /// is dropped and the socket closes with 1013 (still `Ok`: the socket
    /// exists). `Err` when the socket is gone.
    pub fn send(&self, message: Outbound) -> Result<(), Closed> {
        if self.state.overflowed.load(Ordering::Acquire) {
            return if self.tx.is_closed() {
                Err(Closed)
            } else {
                Ok(())
            };
        }
        let size = message.size();
        let queued = self.state.bytes.fetch_add(size, Ordering::AcqRel);
        if queued + size > self.state.limits.bytes && queued > 0 {
            self.state.bytes.fetch_sub(size, Ordering::AcqRel);
            self.overflow();
            return Ok(());
        }
        match self.tx.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.state.bytes.fetch_sub(size, Ordering::AcqRel);
                self.overflow();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
        }
    }

    fn overflow(&self) {
        if !self.state.overflowed.swap(true, Ordering::AcqRel) {
            self.state.overflow.notify_one();
        }
    }

    /// Waits until at most half of the queue's frames are taken (or the
    /// socket is gone): back-pressure for bulk publishers of small frames
    /// that should not overrun a reader that keeps up (the benchmark's
    /// flood). The byte bound still applies: large frames can overflow it.
    pub async fn wait_for_room(&self) {
        let half = (self.state.limits.frames / 2).max(1);
        if self.tx.capacity() >= half {
            return;
        }
        // The permits are released at once: only the wait matters.
        drop(self.tx.reserve_many(half).await);
    }
}

/// The receiving half of a socket's queue, owned by its task.
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: mpsc::Receiver<Outbound>,
    state: Arc<QueueState>,
}

impl OutboxReceiver {
    /// The next queued message.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let message = self.rx.recv().await?;
        self.state.bytes.fetch_sub(message.size(), Ordering::AcqRel);
        Some(message)
    }

    /// A handle that tells when a message did not fit.
    pub fn overflow(&self) -> Overflow {
        Overflow(self.state.clone())
    }
}

/// Tells a socket task that its queue overflowed (see [`Outbox::send`]).
#[derive(Debug, Clone)]
pub struct Overflow(Arc<QueueState>);

impl Overflow {
    /// Resolves once a message did not fit: close the socket with 1013.
    pub async fn happened(&self) {
        if self.0.overflowed.load(Ordering::Acquire) {
            return;
        }
        self.0.overflow.notified().await;
    }
}

impl Outbound {
    /// Bytes this message counts against the queue bound.
    fn size(&self) -> usize {
        match self {
            Self::Frame(frame)
            | Self::Notification { frame, .. }
            | Self::Topic { frame, .. }
            | Self::TopicEnded { frame, .. } => frame.len(),
            Self::Close { reason, .. } => reason.len(),
            Self::Revoked | Self::Expired | Self::Drop | Self::Stall(_) | Self::Resync => 0,
        }
    }
}

#[derive(Debug)]
struct Entry {
    user_id: Uuid,
    session_id: Uuid,
    username: String,
    authenticated_at: String,
    outbox: Outbox,
}

/// One row of `GET /api/admin/connections`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    /// Server-side socket id.
    pub socket_id: u64,
    /// The authenticated user.
    pub user_id: Uuid,
    /// Their username.
    pub username: String,
    /// When the socket last authenticated, RFC 3339.
    pub authenticated_at: String,
}

/// Authenticated sockets by socket id.
#[derive(Debug)]
pub struct Registry {
    sockets: Mutex<HashMap<u64, Entry>>,
    count: watch::Sender<usize>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            sockets: Mutex::default(),
            count: watch::Sender::new(0),
        }
    }
}

impl Registry {
    /// Records (or updates, on re-auth) an authenticated socket.
    pub fn register(
        &self,
        socket_id: u64,
        user_id: Uuid,
        session_id: Uuid,
        username: &str,
        authenticated_at: String,
        outbox: Outbox,
    ) {
        let mut sockets = self.sockets.lock().expect("lock");
        sockets.insert(
            socket_id,
            Entry {
                user_id,
                session_id,
                username: username.to_owned(),
                authenticated_at,
                outbox,
            },
        );
        self.count.send_replace(sockets.len());
    }

    /// Forgets a socket (on close).
    pub fn unregister(&self, socket_id: u64) {
        let mut sockets = self.sockets.lock().expect("lock");
        if sockets.remove(&socket_id).is_some() {
            self.count.send_replace(sockets.len());
        }
    }

    /// The number of authenticated sockets, updated as they come and go
    /// (tests await it instead of polling).
    pub fn watch_len(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Every authenticated socket, sorted by id.
    pub fn list(&self) -> Vec<ConnectionInfo> {
        let mut rows: Vec<_> = self
            .sockets
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, e)| ConnectionInfo {
                socket_id: *id,
                user_id: e.user_id,
                username: e.username.clone(),
                authenticated_at: e.authenticated_at.clone(),
            })
            .collect();
        rows.sort_by_key(|r| r.socket_id);
        rows
    }

    /// Number of authenticated sockets.
    pub fn len(&self) -> usize {
        self.sockets.lock().expect("lock").len()
    }

    /// Whether no socket is authenticated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `message` to every socket authenticated with a token of
    /// `session_id`; returns how many were reached.
    pub fn send_to_session(&self, session_id: Uuid, message: &Outbound) -> usize {
        self.sockets
            .lock()
            .expect("lock")
            .values()
            .filter(|e| e.session_id == session_id)
            .filter(|e| e.outbox.send(message.clone()).is_ok())
            .count()
    }

    /// Sends `message` to every socket of `user` (or every socket when
    /// `None`); returns how many were reached.
    pub fn send_to(&self, user: Option<Uuid>, message: &Outbound) -> usize {
        self.sockets
            .lock()
            .expect("lock")
            .values()
            .filter(|e| user.is_none_or(|u| u == e.user_id))
            .filter(|e| e.outbox.send(message.clone()).is_ok())
            .count()
    }
}
