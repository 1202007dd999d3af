//! Per-user notification feeds: sequence numbers, retention, replay and live
//! fan-out without gaps or duplicates.
//!
//! The history lives in this process's memory (the default) or on Redis
//! ([`crate::redis::streams`]); the live side (which local socket follows
//! which user) is always this process's. In memory a publish and a
//! subscribe run under the feed's lock, so a notification lands in the
//! replay or the live queue, never both. On Redis a socket subscribes to
//! the user's channel before it reads the history: a notification may come
//! both ways, and each socket drops what it already sent (the frames
//! carry their seq, see [`Outbound::Notification`]).

use crate::redis::StoreError;
use crate::redis::pubsub::PubSub;
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
    /// The epoch of the last frame delivered from Redis.
    epoch: Option<Arc<str>>,
    /// The seq of the last frame delivered from Redis, and its waiters.
    delivered: u64,
    delivery: Arc<tokio::sync::Notify>,
}

/// Where the feeds' history is.
#[derive(Debug)]
enum Store {
    /// Here; the epoch is this process's.
    Memory { epoch: Arc<str> },
    /// On Redis, shared with other instances.
    Redis {
        pubsub: Arc<PubSub>,
        retention: usize,
    },
}

/// A feed's history after a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRead {
    /// The feed's epoch: it changes when the history was lost (a Redis
    /// restart without its data; in memory, a restart of the process).
    pub epoch: Arc<str>,
    /// The feed's latest seq.
    pub top: u64,
    /// The retained notifications asked for, `(seq, frame)`, oldest first.
    pub frames: Vec<(u64, Utf8Bytes)>,
}

/// Every user's feed.
#[derive(Debug)]
pub struct Feeds {
    feeds: Mutex<HashMap<Uuid, Arc<Mutex<Feed>>>>,
    store: Store,
}

impl Default for Feeds {
    fn default() -> Self {
        Self {
            feeds: Mutex::default(),
            store: Store::Memory {
                epoch: Arc::from(crate::redis::streams::new_epoch()),
            },
        }
    }
}

impl Feeds {
    /// Feeds on Redis, keeping `retention` notifications per user.
    pub fn redis(pubsub: Arc<PubSub>, retention: usize) -> Self {
        Self {
            feeds: Mutex::default(),
            store: Store::Redis { pubsub, retention },
        }
    }

    fn feed(&self, user: Uuid) -> Arc<Mutex<Feed>> {
        self.feeds
            .lock()
            .expect("lock")
            .entry(user)
            .or_default()
            .clone()
    }

    fn redis_log(&self, user: Uuid) -> Option<(&Arc<PubSub>, crate::redis::streams::LogKeys)> {
        match &self.store {
            Store::Memory { .. } => None,
            Store::Redis { pubsub, retention } => {
                Some((pubsub, pubsub.redis().feed_log(user, *retention)))
            }
        }
    }

    /// Appends a notification to `user`'s feed and pushes it to their
    /// subscribed sockets (on Redis: to every instance's, by pub/sub).
    ///
    /// # Errors
    /// [`StoreError`] when the shared store did not take it (nothing was
    /// published then).
    pub async fn publish(
        &self,
        user: Uuid,
        title: &str,
        body: &str,
    ) -> Result<Notification, StoreError> {
        let mut notification = Notification {
            seq: 0,
            id: Uuid::new_v4().to_string(),
            title: title.to_owned(),
            body: body.to_owned(),
            created_at: tether_protocol::time::format_rfc3339(crate::now_ms()),
        };
        let (pubsub, log) = match (&self.store, self.redis_log(user)) {
            (Store::Memory { epoch }, _) => {
                let feed = self.feed(user);
                let mut feed = feed.lock().expect("lock");
                feed.last_seq += 1;
                notification.seq = feed.last_seq;
                let frame =
                    Utf8Bytes::from(ServerMessage::Notification(notification.clone()).encode());
                if feed.retained.len() == RETAINED {
                    feed.retained.pop_front();
                }
                feed.retained.push_back((notification.seq, frame.clone()));
                let out = Outbound::Notification {
                    epoch: epoch.clone(),
                    seq: notification.seq,
                    frame,
                };
                feed.subscribers
                    .retain(|_, outbox| outbox.send(out.clone()).is_ok());
                return Ok(notification);
            }
            (_, Some(redis)) => redis,
            (Store::Redis { .. }, None) => unreachable!("a Redis store has a log"),
        };
        let (_, seq, _) = pubsub
            .redis()
            .append(&log, &mut |seq| {
                let mut n = notification.clone();
                n.seq = seq;
                Utf8Bytes::from(ServerMessage::Notification(n).encode())
            })
            .await?;
        notification.seq = seq;
        Ok(notification)
    }

    /// Subscribes a socket to `user`'s feed and returns the retained
    /// notifications with `seq > last_seq` (none without it), for the
    /// socket to send as it drains: they do not count against its queue
    /// bound. In memory this runs under the feed's lock (a concurrent
    /// publish lands in the replay or after it); on Redis the user's
    /// channel is subscribed before the history is read (a concurrent
    /// publish may land in both: the socket drops the second).
    ///
    /// # Errors
    /// [`StoreError`] when the history cannot be read (the socket is not
    /// subscribed then).
    pub async fn subscribe(
        &self,
        user: Uuid,
        socket_id: u64,
        last_seq: Option<u64>,
        outbox: &Outbox,
    ) -> Result<FeedRead, StoreError> {
        let Some((pubsub, log)) = self.redis_log(user) else {
            let Store::Memory { epoch } = &self.store else {
                unreachable!("a memory store")
            };
            let feed = self.feed(user);
            let mut feed = feed.lock().expect("lock");
            let frames = match last_seq {
                Some(after) => feed
                    .retained
                    .iter()
                    .filter(|(seq, _)| *seq > after)
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            feed.subscribers.insert(socket_id, outbox.clone());
            return Ok(FeedRead {
                epoch: epoch.clone(),
                top: feed.last_seq,
                frames,
            });
        };
        pubsub.acquire(&log.channel).await;
        self.feed(user)
            .lock()
            .expect("lock")
            .subscribers
            .insert(socket_id, outbox.clone());
        let read = match last_seq {
            Some(after) => pubsub.redis().read_after(&log, after).await,
            None => pubsub.redis().head(&log).await,
        };
        match read {
            Ok(read) => Ok(FeedRead {
                epoch: Arc::from(read.epoch),
                top: read.top,
                frames: read.entries,
            }),
            Err(err) => {
                self.unsubscribe(user, socket_id);
                Err(err)
            }
        }
    }

    /// The retained notifications of `user` with `seq > after`, and the
    /// feed's epoch (a socket catching up after a gap or a reconnect).
    ///
    /// # Errors
    /// [`StoreError`] when the history cannot be read.
    pub async fn read_after(&self, user: Uuid, after: u64) -> Result<FeedRead, StoreError> {
        match self.redis_log(user) {
            Some((pubsub, log)) => {
                let read = pubsub.redis().read_after(&log, after).await?;
                Ok(FeedRead {
                    epoch: Arc::from(read.epoch),
                    top: read.top,
                    frames: read.entries,
                })
            }
            None => {
                let Store::Memory { epoch } = &self.store else {
                    unreachable!("a memory store")
                };
                let feed = self.feed(user);
                let feed = feed.lock().expect("lock");
                Ok(FeedRead {
                    epoch: epoch.clone(),
                    top: feed.last_seq,
                    frames: feed
                        .retained
                        .iter()
                        .filter(|(seq, _)| *seq > after)
                        .cloned()
                        .collect(),
                })
            }
        }
    }

    /// Hands a notification that arrived by pub/sub to the local sockets
    /// of `user`.
    pub fn deliver(&self, user: Uuid, epoch: &str, seq: u64, frame: Utf8Bytes) {
        let Some(feed) = self.feeds.lock().expect("lock").get(&user).cloned() else {
            return;
        };
        let mut feed = feed.lock().expect("lock");
        let epoch = match &feed.epoch {
            Some(known) if **known == *epoch => known.clone(),
            _ => {
                let epoch: Arc<str> = Arc::from(epoch);
                feed.epoch = Some(epoch.clone());
                epoch
            }
        };
        let out = Outbound::Notification { epoch, seq, frame };
        for outbox in feed.subscribers.values() {
            // A closed socket is removed by its own cleanup.
            let _ = outbox.send(out.clone());
        }
        feed.delivered = seq;
        feed.delivery.notify_waiters();
    }

    /// Waits (at most a second) until the notification `seq` of `user`
    /// has reached this instance's sockets (on Redis it comes by pub/sub;
    /// in memory it did at once): back-pressure for bulk publishers.
    pub async fn wait_delivered(&self, user: Uuid, seq: u64) {
        if matches!(self.store, Store::Memory { .. }) {
            return;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let feed = self.feeds.lock().expect("lock").get(&user).cloned();
            let Some(feed) = feed else {
                return;
            };
            let delivery = feed.lock().expect("lock").delivery.clone();
            let notified = delivery.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if feed.lock().expect("lock").delivered >= seq {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// The users with local subscribers.
    pub fn held(&self) -> Vec<Uuid> {
        self.feeds
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, feed)| !feed.lock().expect("lock").subscribers.is_empty())
            .map(|(user, _)| *user)
            .collect()
    }

    /// The queues of `user`'s subscribed sockets (on this instance).
    pub fn subscribers(&self, user: Uuid) -> Vec<Outbox> {
        self.feed(user)
            .lock()
            .expect("lock")
            .subscribers
            .values()
            .cloned()
            .collect()
    }

    /// Removes a socket from `user`'s feed (on Redis, the last local one
    /// lets go of the user's channel).
    pub fn unsubscribe(&self, user: Uuid, socket_id: u64) {
        let removed = {
            let mut feeds = self.feeds.lock().expect("lock");
            let Some(entry) = feeds.get(&user).cloned() else {
                return;
            };
            let mut feed = entry.lock().expect("lock");
            let removed = feed.subscribers.remove(&socket_id).is_some();
            // In memory the entry holds the history; on Redis only sockets.
            if feed.subscribers.is_empty() && matches!(self.store, Store::Redis { .. }) {
                drop(feed);
                feeds.remove(&user);
            }
            removed
        };
        if removed && let Some((pubsub, log)) = self.redis_log(user) {
            pubsub.release(log.channel);
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

    async fn seqs(replay: Vec<(u64, Utf8Bytes)>, rx: &mut OutboxReceiver) -> Vec<u64> {
        let mut out: Vec<u64> = replay.iter().map(|(_, f)| seq(f)).collect();
        while let Ok(Some(Outbound::Notification { frame, .. })) =
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
            assert_eq!(
                feeds.publish(user, "t", "b").await.unwrap().seq,
                i as u64 + 1
            );
        }
        let (tx, mut rx) = Outbox::new(QueueLimits::default());
        let replay = feeds.subscribe(user, 1, Some(1_000), &tx).await.unwrap();
        assert_eq!(replay.frames.len(), 5);
        assert_eq!(replay.top, 1_005);
        feeds.publish(user, "t", "b").await.unwrap();
        assert_eq!(
            seqs(replay.frames, &mut rx).await,
            vec![1_001, 1_002, 1_003, 1_004, 1_005, 1_006]
        );
        let (tx2, mut rx2) = Outbox::new(QueueLimits::default());
        let replay = feeds.subscribe(user, 2, Some(0), &tx2).await.unwrap();
        assert_eq!(replay.frames.len(), RETAINED);
        assert_eq!(seqs(replay.frames, &mut rx2).await.first(), Some(&7));
        feeds.unsubscribe(user, 1);
        feeds.publish(user, "t", "b").await.unwrap();
        assert!(seqs(Vec::new(), &mut rx).await.is_empty());
    }
}
