//! Where topic history lives: the [`TopicStore`] interface and its default,
//! in-memory implementation, and [`Histories`], the async seam the hub
//! uses, over a [`TopicStore`] or shared on Redis.

use crate::redis::streams::LogKeys;
use crate::redis::{Redis, StoreError};
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A topic's epoch and latest offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Changes only when the topic's history is lost (a restart of the
    /// in-memory store, a reset); offsets start again from 1 then.
    pub epoch: String,
    /// The latest offset (0: nothing published in this epoch).
    pub offset: u64,
}

/// What [`TopicStore::read_after`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// Every message after the asked offset, in order (offsets
    /// `after + 1 ..= head.offset`).
    Complete(Vec<Utf8Bytes>),
    /// Some of them are no longer retained (or the offset is beyond the head).
    Trimmed,
}

/// The history of every topic: per-topic gapless offsets from 1, an epoch,
/// and at least the last `retention` encoded `message` frames.
///
/// The caller serializes the operations on one topic (the hub holds a lock
/// per topic around them), so a store needs no cross-call atomicity.
pub trait TopicStore: Send + Sync + std::fmt::Debug {
    /// The topic's epoch and latest offset (creating the topic's epoch on
    /// first use).
    fn head(&self, topic: &str) -> Head;

    /// Appends the frame `encode` builds for the next offset; returns the
    /// head after it and the frame.
    fn append(&self, topic: &str, encode: &mut dyn FnMut(u64) -> Utf8Bytes) -> (Head, Utf8Bytes);

    /// The retained frames with offsets after `after`.
    fn read_after(&self, topic: &str, after: u64) -> History;

    /// The newest `count` retained frames (fewer if fewer are retained).
    fn read_last(&self, topic: &str, count: usize) -> Vec<Utf8Bytes>;

    /// Drops the topic's history and starts a new epoch; returns it.
    fn reset(&self, topic: &str) -> Head;
}

#[derive(Debug)]
struct Log {
    epoch: String,
    offset: u64,
    /// `(offset, frame)`, oldest first.
    retained: VecDeque<(u64, Utf8Bytes)>,
}

impl Log {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            offset: 0,
            retained: VecDeque::new(),
        }
    }

    fn head(&self) -> Head {
        Head {
            epoch: self.epoch.clone(),
            offset: self.offset,
        }
    }
}

/// A random epoch: 16 hex digits, new for each topic in each process.
fn new_epoch() -> String {
    let bytes = crate::random_bytes::<8>();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default store: history in this process's memory, lost on restart
/// (every topic gets a new random epoch then).
#[derive(Debug)]
pub struct MemoryStore {
    retention: usize,
    logs: Mutex<HashMap<String, Log>>,
}

impl MemoryStore {
    /// A store that keeps the last `retention` messages of each topic.
    pub fn new(retention: usize) -> Self {
        Self {
            retention: retention.max(1),
            logs: Mutex::default(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(super::TOPIC_RETENTION)
    }
}

impl TopicStore for MemoryStore {
    fn head(&self, topic: &str) -> Head {
        let mut logs = self.logs.lock().expect("lock");
        logs.entry(topic.to_owned()).or_insert_with(Log::new).head()
    }

    fn append(&self, topic: &str, encode: &mut dyn FnMut(u64) -> Utf8Bytes) -> (Head, Utf8Bytes) {
        let mut logs = self.logs.lock().expect("lock");
        let log = logs.entry(topic.to_owned()).or_insert_with(Log::new);
        log.offset += 1;
        let frame = encode(log.offset);
        if log.retained.len() >= self.retention {
            log.retained.pop_front();
        }
        log.retained.push_back((log.offset, frame.clone()));
        (log.head(), frame)
    }

    fn read_after(&self, topic: &str, after: u64) -> History {
        let mut logs = self.logs.lock().expect("lock");
        let log = logs.entry(topic.to_owned()).or_insert_with(Log::new);
        if after > log.offset {
            return History::Trimmed;
        }
        if after == log.offset {
            return History::Complete(Vec::new());
        }
        let Some(&(first, _)) = log.retained.front() else {
            return History::Trimmed;
        };
        if first > after + 1 {
            return History::Trimmed;
        }
        let skip = usize::try_from(after + 1 - first).unwrap_or(usize::MAX);
        History::Complete(
            log.retained
                .iter()
                .skip(skip)
                .map(|(_, f)| f.clone())
                .collect(),
        )
    }

    fn read_last(&self, topic: &str, count: usize) -> Vec<Utf8Bytes> {
        let logs = self.logs.lock().expect("lock");
        logs.get(topic).map_or_else(Vec::new, |log| {
            let skip = log.retained.len().saturating_sub(count);
            log.retained
                .iter()
                .skip(skip)
                .map(|(_, f)| f.clone())
                .collect()
        })
    }

    fn reset(&self, topic: &str) -> Head {
        let mut logs = self.logs.lock().expect("lock");
        let log = logs.entry(topic.to_owned()).or_insert_with(Log::new);
        let old = std::mem::replace(log, Log::new());
        while log.epoch == old.epoch {
            log.epoch = new_epoch();
        }
        log.head()
    }
}

/// The topics' history as the hub uses it: [`MemoryStore`] (or another
/// [`TopicStore`]) in this process, or shared on Redis. Every method is
/// async and may fail with [`StoreError`] (only on Redis).
#[derive(Debug)]
// One per hub (per process): the size of the Redis variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Histories {
    /// In this process (synchronous underneath).
    Memory(Box<dyn TopicStore>),
    /// On Redis ([`crate::redis::streams`]): `<prefix>{t:<topic>}:meta`,
    /// `:log`, `:live`.
    Redis {
        /// The store.
        redis: Redis,
        /// Messages kept per topic.
        retention: usize,
    },
}

/// Retained entries after a position, with their offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries {
    /// The topic's epoch and latest offset now.
    pub head: Head,
    /// `(offset, frame)`, oldest first; the first may be above the asked
    /// position + 1 when history was trimmed.
    pub entries: Vec<(u64, Utf8Bytes)>,
}

impl Histories {
    /// Whether this is the shared store.
    pub fn is_redis(&self) -> bool {
        matches!(self, Self::Redis { .. })
    }

    fn log(redis: &Redis, retention: usize, topic: &str) -> LogKeys {
        redis.topic_log(topic, retention)
    }

    /// The topic's epoch and latest offset (creating its epoch when missing).
    pub async fn head(&self, topic: &str) -> Result<Head, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.head(topic)),
            Self::Redis { redis, retention } => {
                let read = redis.head(&Self::log(redis, *retention, topic)).await?;
                Ok(Head {
                    epoch: read.epoch,
                    offset: read.top,
                })
            }
        }
    }

    /// Appends the frame `encode` builds for the next offset (on Redis:
    /// and publishes it to every instance); returns the head after it and
    /// the frame.
    pub async fn append(
        &self,
        topic: &str,
        encode: &mut (dyn FnMut(u64) -> Utf8Bytes + Send),
    ) -> Result<(Head, Utf8Bytes), StoreError> {
        match self {
            Self::Memory(store) => Ok(store.append(topic, encode)),
            Self::Redis { redis, retention } => {
                let (epoch, offset, frame) = redis
                    .append(&Self::log(redis, *retention, topic), encode)
                    .await?;
                Ok((Head { epoch, offset }, frame))
            }
        }
    }

    /// The head, and the retained frames with offsets after `after`
    /// ([`History::Trimmed`] when some are gone or `after` is beyond the
    /// head).
    pub async fn read_after(&self, topic: &str, after: u64) -> Result<(Head, History), StoreError> {
        match self {
            Self::Memory(store) => {
                let head = store.head(topic);
                Ok((head, store.read_after(topic, after)))
            }
            Self::Redis { .. } => {
                let Entries { head, entries } = self.entries_after(topic, after).await?;
                let complete = after <= head.offset
                    && (after == head.offset || entries.first().map(|e| e.0) == Some(after + 1));
                let history = if complete {
                    History::Complete(entries.into_iter().map(|(_, f)| f).collect())
                } else {
                    History::Trimmed
                };
                Ok((head, history))
            }
        }
    }

    /// The retained entries with offsets after `after`, as many as are
    /// retained (a socket catching up after a gap or a reconnect).
    pub async fn entries_after(&self, topic: &str, after: u64) -> Result<Entries, StoreError> {
        match self {
            Self::Memory(store) => {
                let head = store.head(topic);
                let frames = match store.read_after(topic, after) {
                    History::Complete(frames) => frames,
                    History::Trimmed if after < head.offset => store.read_last(topic, usize::MAX),
                    History::Trimmed => Vec::new(),
                };
                let first = head.offset + 1 - frames.len() as u64;
                let entries = (first..).zip(frames).collect();
                Ok(Entries { head, entries })
            }
            Self::Redis { redis, retention } => {
                let read = redis
                    .read_after(&Self::log(redis, *retention, topic), after)
                    .await?;
                Ok(Entries {
                    head: Head {
                        epoch: read.epoch,
                        offset: read.top,
                    },
                    entries: read.entries,
                })
            }
        }
    }

    /// The head, and the newest `count` retained frames (fewer if fewer
    /// are retained).
    pub async fn read_last(
        &self,
        topic: &str,
        count: usize,
    ) -> Result<(Head, Vec<Utf8Bytes>), StoreError> {
        match self {
            Self::Memory(store) => Ok((store.head(topic), store.read_last(topic, count))),
            Self::Redis { redis, retention } => {
                let read = redis
                    .read_last(&Self::log(redis, *retention, topic), count)
                    .await?;
                Ok((
                    Head {
                        epoch: read.epoch,
                        offset: read.top,
                    },
                    read.entries.into_iter().map(|(_, f)| f).collect(),
                ))
            }
        }
    }

    /// Drops the topic's history and starts a new epoch; returns it. On
    /// Redis every instance is told (`drop`: to drop the subscribers'
    /// sockets instead of telling them).
    pub async fn reset(&self, topic: &str, drop: bool) -> Result<Head, StoreError> {
        match self {
            Self::Memory(store) => Ok(store.reset(topic)),
            Self::Redis { redis, retention } => {
                let epoch = redis
                    .reset(&Self::log(redis, *retention, topic), drop)
                    .await?;
                Ok(Head { epoch, offset: 0 })
            }
        }
    }

    /// The pub/sub channel of `topic` (Redis only).
    pub fn channel(&self, topic: &str) -> Option<String> {
        match self {
            Self::Memory(_) => None,
            Self::Redis { redis, .. } => Some(redis.topic_key(topic, "live")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(offset: u64) -> Utf8Bytes {
        Utf8Bytes::from(offset.to_string())
    }

    fn offsets(frames: &[Utf8Bytes]) -> Vec<u64> {
        frames.iter().map(|f| f.as_str().parse().unwrap()).collect()
    }

    #[test]
    fn offsets_are_gapless_and_history_is_trimmed_past_retention() {
        let store = MemoryStore::new(3);
        let epoch = store.head("t:1").epoch;
        for expected in 1..=5 {
            let (head, _) = store.append("t:1", &mut frame);
            assert_eq!(
                head,
                Head {
                    epoch: epoch.clone(),
                    offset: expected
                }
            );
        }
        assert_eq!(store.read_after("t:1", 5), History::Complete(vec![]));
        match store.read_after("t:1", 2) {
            History::Complete(frames) => assert_eq!(offsets(&frames), [3, 4, 5]),
            History::Trimmed => panic!("3..=5 are retained"),
        }
        assert_eq!(store.read_after("t:1", 1), History::Trimmed);
        assert_eq!(store.read_after("t:1", 6), History::Trimmed);
        assert_eq!(offsets(&store.read_last("t:1", 2)), [4, 5]);
        assert_eq!(offsets(&store.read_last("t:1", 10)), [3, 4, 5]);
        // Other topics have their own offsets and epochs.
        assert_eq!(store.append("t:2", &mut frame).0.offset, 1);
        assert_ne!(store.head("t:2").epoch, epoch);
    }

    #[test]
    fn reset_starts_a_new_epoch_from_offset_zero() {
        let store = MemoryStore::default();
        store.append("t:1", &mut frame);
        let before = store.head("t:1");
        let after = store.reset("t:1");
        assert_ne!(after.epoch, before.epoch);
        assert_eq!(after.offset, 0);
        assert!(store.read_last("t:1", 10).is_empty());
        assert_eq!(store.append("t:1", &mut frame).0.offset, 1);
        // A fresh store (a restart) has other epochs.
        assert_ne!(MemoryStore::default().head("t:1").epoch, after.epoch);
    }
}
