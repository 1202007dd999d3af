//! Client `send` frames: each id applied at most once per user.

use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use uuid::Uuid;

/// How many ids (and applied items) are remembered per user.
pub const REMEMBERED_IDS: usize = 10_000;

/// One applied `send`.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The client-chosen id.
    pub id: String,
    /// The JSON body.
    pub body: serde_json::Value,
    /// When it was applied, RFC 3339.
    pub received_at: String,
}

#[derive(Debug, Default)]
struct Received {
    seen: HashSet<String>,
    order: VecDeque<String>,
    applied: VecDeque<Applied>,
    total: u64,
}

/// Per-user received lists.
#[derive(Debug, Default)]
pub struct Inbox {
    users: Mutex<HashMap<Uuid, Received>>,
}

impl Inbox {
    /// Applies a `send` unless its id was seen; returns whether it was applied.
    pub fn apply(&self, user: Uuid, id: &str, body: serde_json::Value) -> bool {
        let mut users = self.users.lock().expect("lock");
        let received = users.entry(user).or_default();
        if received.seen.contains(id) {
            return false;
        }
        if received.order.len() == REMEMBERED_IDS {
            if let Some(old) = received.order.pop_front() {
                received.seen.remove(&old);
            }
            received.applied.pop_front();
        }
        received.seen.insert(id.to_owned());
        received.order.push_back(id.to_owned());
        received.applied.push_back(Applied {
            id: id.to_owned(),
            body,
            received_at: tether_protocol::time::format_rfc3339(crate::now_ms()),
        });
        received.total += 1;
        true
    }

    /// The user's applied items (the last [`REMEMBERED_IDS`]) and the total count.
    pub fn applied(&self, user: Uuid) -> (u64, Vec<Applied>) {
        self.users
            .lock()
            .expect("lock")
            .get(&user)
            .map(|r| (r.total, r.applied.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_once() {
        let inbox = Inbox::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(inbox.apply(a, "1", serde_json::json!(1)));
        assert!(!inbox.apply(a, "1", serde_json::json!(2)));
        assert!(inbox.apply(b, "1", serde_json::json!(3)));
        let (total, items) = inbox.applied(a);
        assert_eq!(total, 1);
        assert_eq!(items[0].body, serde_json::json!(1));
    }
}
