//! The live-connection registry: which authenticated socket belongs to whom,
//! and the channel to reach each one.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;
use uuid::Uuid;

/// What other parts of the server ask a socket task to do.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Send this (already encoded) frame.
    Frame(Utf8Bytes),
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
}

/// The sending half of a socket task's queue.
pub type Outbox = mpsc::UnboundedSender<Outbound>;

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
#[derive(Debug, Default)]
pub struct Registry {
    sockets: Mutex<HashMap<u64, Entry>>,
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
        self.sockets.lock().expect("lock").insert(
            socket_id,
            Entry {
                user_id,
                session_id,
                username: username.to_owned(),
                authenticated_at,
                outbox,
            },
        );
    }

    /// Forgets a socket (on close).
    pub fn unregister(&self, socket_id: u64) {
        self.sockets.lock().expect("lock").remove(&socket_id);
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
