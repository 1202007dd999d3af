//! Per-user notification feeds: sequence numbers, retention, replay and live
//! fan-out without gaps or duplicates.

use crate::registry::{Outbound, Outbox};
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tether_protocol::{Notification, ServerMessage};
use uuid::Uuid;

/// How many notifications each user's feed retains for replay.
pub const RETAINED: usize = 1_000;

#[derive(Debug, Default)]
struct Feed {
    last_seq: u64,
    retained: VecDeque<(u64, Utf8Bytes)>,
    subscribers: HashMap<u64, Outbox>,
}

/// Every user's feed.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<Uuid, Arc<Mutex<Feed>>>>,
}

impl Feeds {
    fn feed(&self, user: Uuid) -> Arc<Mutex<Feed>> {
        self.feeds
            .lock()
            .expect("lock")
            .entry(user)
            .or_default()
            .clone()
    }

    /// Appends a notification to `user`'s feed and pushes it to their
    /// subscribed sockets.
    pub fn publish(&self, user: Uuid, title: &str, body: &str) -> Notification {
        let feed = self.feed(user);
        let mut feed = feed.lock().expect("lock");
        feed.last_seq += 1;
        let notification = Notification {
            seq: feed.last_seq,
            id: Uuid::new_v4().to_string(),
            title: title.to_owned(),
            body: body.to_owned(),
            created_at: tether_protocol::time::format_rfc3339(crate::now_ms()),
        };
        let frame = Utf8Bytes::from(ServerMessage::Notification(notification.clone()).encode());
        if feed.retained.len() == RETAINED {
            feed.retained.pop_front();
        }
        feed.retained.push_back((notification.seq, frame.clone()));
        feed.subscribers
            .retain(|_, outbox| outbox.send(Outbound::Frame(frame.clone())).is_ok());
        notification
    }

    /// Subscribes a socket to `user`'s feed. Under the feed's lock, it
    /// takes the retained notifications with `seq > last_seq` (returned, for
    /// the socket to send as it drains: they do not count against its queue
    /// bound), then adds `outbox` to the live subscribers: a concurrent
    /// publish lands either in the replay or after it, never both, never
    /// neither.
    pub fn subscribe(
        &self,
        user: Uuid,
        socket_id: u64,
        last_seq: Option<u64>,
        outbox: &Outbox,
    ) -> Vec<Utf8Bytes> {
        let feed = self.feed(user);
        let mut feed = feed.lock().expect("lock");
        let replay = match last_seq {
            Some(after) => feed
                .retained
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, frame)| frame.clone())
                .collect(),
            None => Vec::new(),
        };
        feed.subscribers.insert(socket_id, outbox.clone());
        replay
    }

    /// The queues of `user`'s subscribed sockets.
    pub fn subscribers(&self, user: Uuid) -> Vec<Outbox> {
        self.feed(user)
            .lock()
            .expect("lock")
            .subscribers
            .values()
            .cloned()
            .collect()
    }

    /// Removes a socket from `user`'s feed.
    pub fn unsubscribe(&self, user: Uuid, socket_id: u64) {
        if let Some(feed) = self.feeds.lock().expect("lock").get(&user) {
            feed.lock().expect("lock").subscribers.remove(&socket_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{OutboxReceiver, QueueLimits};

    fn seq(frame: &Utf8Bytes) -> u64 {
        match ServerMessage::decode(frame.as_str()).unwrap() {
            ServerMessage::Notification(n) => n.seq,
            other => panic!("{other:?}"),
        }
    }

    async fn seqs(replay: Vec<Utf8Bytes>, rx: &mut OutboxReceiver) -> Vec<u64> {
        let mut out: Vec<u64> = replay.iter().map(seq).collect();
        while let Ok(Some(Outbound::Frame(frame))) =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await
        {
            out.push(seq(&frame));
        }
        out
    }

    #[tokio::test]
    async fn replay_then_live_and_retention() {
        let feeds = Feeds::default();
        let user = Uuid::new_v4();
        for i in 0..(RETAINED + 5) {
            assert_eq!(feeds.publish(user, "t", "b").seq, i as u64 + 1);
        }
        let (tx, mut rx) = Outbox::new(QueueLimits::default());
        let replay = feeds.subscribe(user, 1, Some(1_000), &tx);
        assert_eq!(replay.len(), 5);
        feeds.publish(user, "t", "b");
        assert_eq!(
            seqs(replay, &mut rx).await,
            vec![1_001, 1_002, 1_003, 1_004, 1_005, 1_006]
        );
        let (tx2, mut rx2) = Outbox::new(QueueLimits::default());
        let replay = feeds.subscribe(user, 2, Some(0), &tx2);
        assert_eq!(replay.len(), RETAINED);
        assert_eq!(seqs(replay, &mut rx2).await.first(), Some(&7));
        feeds.unsubscribe(user, 1);
        feeds.publish(user, "t", "b");
        assert!(seqs(Vec::new(), &mut rx).await.is_empty());
    }
}
