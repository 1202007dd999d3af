//! Store conformance: the same test bodies run against the in-memory stores
//! and the Redis stores (a real `redis-server` per test): notification
//! feeds ([`Feeds`]) and topic histories ([`Histories`]).

#[path = "support/redis.rs"]
mod redis_server;

use axum::extract::ws::Utf8Bytes;
use redis_server::RedisServer;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use tether_server::notifications::{Feeds, RETAINED};
use tether_server::redis::pubsub::PubSub;
use tether_server::redis::{Redis, RedisConfig, StoreError};
use tether_server::topics::{Histories, History, MemoryStore, TOPIC_RETENTION};
use tokio::time::{Duration, Instant};
use uuid::Uuid;

/// Where the stores under test keep their data.
enum Backend {
    Memory,
    Redis(RedisServer),
}

impl Backend {
    /// Memory first, then a fresh redis-server.
    fn all() -> [Self; 2] {
        [Self::Memory, Self::Redis(RedisServer::start())]
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// A connection as one instance would have (`None` in memory).
    async fn redis(&self, prefix: &str) -> Option<Redis> {
        match self {
            Self::Memory => None,
            Self::Redis(server) => Some(
                Redis::connect(&RedisConfig {
                    url: server.url.clone(),
                    prefix: prefix.to_owned(),
                })
                .await
                .expect("redis is up"),
            ),
        }
    }

    /// The topic histories of one instance.
    async fn histories(&self, prefix: &str) -> Histories {
        match self.redis(prefix).await {
            None => Histories::Memory(Box::new(MemoryStore::default())),
            Some(redis) => Histories::Redis {
                redis,
                retention: TOPIC_RETENTION,
            },
        }
    }

    /// The notification feeds of one instance.
    async fn feeds(&self, prefix: &str) -> Feeds {
        match self.redis(prefix).await {
            None => Feeds::default(),
            Some(redis) => Feeds::redis(Arc::new(PubSub::new(redis)), RETAINED),
        }
    }
}

fn prefix() -> String {
    format!("test-{}:", Uuid::new_v4().simple())
}

fn frame(offset: u64) -> Utf8Bytes {
    Utf8Bytes::from(format!(r#"{{"offset":{offset}}}"#))
}

fn offset_of(frame: &Utf8Bytes) -> u64 {
    let value: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
    value["offset"].as_u64().unwrap()
}

fn offsets(frames: &[Utf8Bytes]) -> Vec<u64> {
    frames.iter().map(offset_of).collect()
}

fn seq_of(frame: &Utf8Bytes) -> u64 {
    match tether_protocol::ServerMessage::decode(frame.as_str()).unwrap() {
        tether_protocol::ServerMessage::Notification(n) => n.seq,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn topic_offsets_are_gapless_from_1_and_at_least_1000_are_retained() {
    for backend in Backend::all() {
        let name = backend.name();
        let store = backend.histories(&prefix()).await;
        let epoch = store.head("room:a").await.unwrap().epoch;
        assert_eq!(store.head("room:a").await.unwrap().offset, 0, "{name}");
        for expected in 1..=(TOPIC_RETENTION as u64 + 5) {
            let (head, frame) = store.append("room:a", &mut frame).await.unwrap();
            assert_eq!(
                (head.epoch.as_str(), head.offset),
                (epoch.as_str(), expected)
            );
            assert_eq!(
                offset_of(&frame),
                expected,
                "{name}: the frame holds its offset"
            );
        }
        let top = TOPIC_RETENTION as u64 + 5;
        // Exactly the last TOPIC_RETENTION are kept: after 5 is complete,
        // after 4 is trimmed.
        let (head, history) = store.read_after("room:a", 5).await.unwrap();
        assert_eq!(head.epoch, epoch, "{name}: the epoch is kept across reads");
        match history {
            History::Complete(frames) => {
                assert_eq!(offsets(&frames), (6..=top).collect::<Vec<_>>())
            }
            History::Trimmed => panic!("{name}: 6..={top} are retained"),
        }
        assert_eq!(
            store.read_after("room:a", 4).await.unwrap().1,
            History::Trimmed,
            "{name}"
        );
        assert_eq!(
            store.read_after("room:a", top + 1).await.unwrap().1,
            History::Trimmed,
            "{name}"
        );
        assert_eq!(
            store.read_after("room:a", top).await.unwrap().1,
            History::Complete(vec![]),
            "{name}"
        );
        let (_, last) = store.read_last("room:a", 3).await.unwrap();
        assert_eq!(offsets(&last), [top - 2, top - 1, top], "{name}");
        let (_, all) = store.read_last("room:a", 5_000).await.unwrap();
        assert_eq!(all.len(), TOPIC_RETENTION, "{name}");
        let entries = store.entries_after("room:a", 0).await.unwrap();
        assert_eq!(
            entries.entries.first().map(|e| e.0),
            Some(6),
            "{name}: trimmed entries start at 6"
        );
        assert_eq!(entries.entries.len(), TOPIC_RETENTION, "{name}");
        // Other topics have their own offsets and epochs.
        assert_eq!(
            store.append("room:b", &mut frame).await.unwrap().0.offset,
            1,
            "{name}"
        );
        assert_ne!(store.head("room:b").await.unwrap().epoch, epoch, "{name}");
        assert_eq!(store.head("room:a").await.unwrap().epoch, epoch, "{name}");
    }
}

#[tokio::test]
async fn a_topic_reset_starts_a_new_epoch_from_offset_0() {
    for backend in Backend::all() {
        let name = backend.name();
        let store = backend.histories(&prefix()).await;
        store.append("room:a", &mut frame).await.unwrap();
        store.append("room:a", &mut frame).await.unwrap();
        let before = store.head("room:a").await.unwrap();
        let after = store.reset("room:a", false).await.unwrap();
        assert_ne!(after.epoch, before.epoch, "{name}");
        assert_eq!(after.offset, 0, "{name}");
        assert_eq!(store.head("room:a").await.unwrap(), after, "{name}");
        assert!(
            store.read_last("room:a", 10).await.unwrap().1.is_empty(),
            "{name}"
        );
        let (head, _) = store.append("room:a", &mut frame).await.unwrap();
        assert_eq!((head.epoch, head.offset), (after.epoch, 1), "{name}");
    }
}

#[tokio::test]
async fn history_lost_with_its_store_gets_a_new_epoch() {
    for mut backend in Backend::all() {
        let name = backend.name();
        let prefix = prefix();
        let (store, feeds) = (
            backend.histories(&prefix).await,
            backend.feeds(&prefix).await,
        );
        let user = Uuid::new_v4();
        for _ in 0..3 {
            store.append("room:a", &mut frame).await.unwrap();
            feeds.publish(user, "t", "b").await.unwrap();
        }
        let epoch = store.head("room:a").await.unwrap().epoch;
        let feed_epoch = feeds.read_after(user, 0).await.unwrap().epoch;
        // The memory store's loss is a restart of the process; Redis's is a
        // restart without its data (the same connections reconnect).
        let (store, feeds) = match &mut backend {
            Backend::Memory => (
                backend.histories(&prefix).await,
                backend.feeds(&prefix).await,
            ),
            Backend::Redis(server) => {
                server.restart_empty();
                (store, feeds)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let head = loop {
            match store.head("room:a").await {
                Ok(head) => break head,
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("{name}: {err}"),
            }
        };
        assert_ne!(head.epoch, epoch, "{name}: a lost topic gets a new epoch");
        assert_eq!(head.offset, 0, "{name}");
        assert_eq!(
            store.append("room:a", &mut frame).await.unwrap().0.offset,
            1,
            "{name}"
        );
        let notification = loop {
            match feeds.publish(user, "t", "b").await {
                Ok(n) => break n,
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("{name}: {err}"),
            }
        };
        // The memory store's feed starts again from 1 (a restarted process
        // knows nothing of before); a Redis feed lost under a running
        // instance starts above every seq issued before (the store's feed
        // floor: clients drop a seq at or below the last they have).
        let first = match backend {
            Backend::Memory => 1,
            Backend::Redis(_) => {
                assert!(
                    notification.seq > 1_000_000,
                    "{name}: a lost feed starts above the floor, not at {}",
                    notification.seq
                );
                notification.seq
            }
        };
        assert_eq!(notification.seq, first, "{name}");
        let read = feeds.read_after(user, 0).await.unwrap();
        assert_ne!(read.epoch, feed_epoch, "{name}: ... in a new epoch");
        assert_eq!(
            read.frames
                .iter()
                .map(|(s, f)| (*s, seq_of(f)))
                .collect::<Vec<_>>(),
            [(first, first)]
        );
        // ... and counts by one from there.
        assert_eq!(feeds.publish(user, "t", "b").await.unwrap().seq, first + 1);
    }
}

#[tokio::test]
async fn feed_seqs_are_gapless_from_1_and_the_last_1000_are_replayed() {
    for backend in Backend::all() {
        let name = backend.name();
        let feeds = backend.feeds(&prefix()).await;
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        for expected in 1..=(RETAINED as u64 + 5) {
            let n = feeds
                .publish(user, "title", "body \"quoted\" 1111111111")
                .await
                .unwrap();
            assert_eq!(n.seq, expected, "{name}");
        }
        assert_eq!(
            feeds.publish(other, "t", "b").await.unwrap().seq,
            1,
            "{name}"
        );
        let top = RETAINED as u64 + 5;
        let all = feeds.read_after(user, 0).await.unwrap();
        assert_eq!(all.top, top, "{name}");
        assert_eq!(
            all.frames.len(),
            RETAINED,
            "{name}: exactly the last {RETAINED}"
        );
        for (seq, frame) in &all.frames {
            assert_eq!(seq_of(frame), *seq, "{name}: the frame holds its seq");
        }
        assert_eq!(all.frames.first().map(|f| f.0), Some(6), "{name}");
        let tail = feeds.read_after(user, top - 2).await.unwrap();
        assert_eq!(
            tail.frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            [top - 1, top]
        );
        assert_eq!(
            tail.epoch, all.epoch,
            "{name}: the epoch is kept across reads"
        );
        // A socket's subscribe returns the same replay and the top.
        let (outbox, _rx) = tether_server::registry::Outbox::new(Default::default());
        let replay = feeds
            .subscribe(user, 1, Some(top - 1), &outbox)
            .await
            .unwrap();
        assert_eq!((replay.top, replay.frames.len()), (top, 1), "{name}");
        let replay = feeds.subscribe(other, 2, None, &outbox).await.unwrap();
        assert_eq!((replay.top, replay.frames.len()), (1, 0), "{name}");
    }
}

#[tokio::test]
async fn two_instances_publishing_at_once_get_unique_gapless_offsets() {
    for backend in Backend::all() {
        let name = backend.name();
        let prefix = prefix();
        // In memory "two instances" are two handles on one process's store.
        let (store_a, feeds_a) = (
            Arc::new(backend.histories(&prefix).await),
            Arc::new(backend.feeds(&prefix).await),
        );
        let (store_b, feeds_b) = match backend {
            Backend::Memory => (store_a.clone(), feeds_a.clone()),
            Backend::Redis(_) => (
                Arc::new(backend.histories(&prefix).await),
                Arc::new(backend.feeds(&prefix).await),
            ),
        };
        let user = Uuid::new_v4();
        let mut tasks = Vec::new();
        for (store, feeds) in [(store_a, feeds_a), (store_b, feeds_b)] {
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..200 {
                    got.push(store.append("room:x", &mut frame).await.unwrap().0.offset);
                    got.push(feeds.publish(user, "t", "b").await.unwrap().seq);
                }
                got
            }));
        }
        let mut topic = Vec::new();
        let mut feed = Vec::new();
        for task in tasks {
            let got = task.await.unwrap();
            for pair in got.chunks(2) {
                topic.push(pair[0]);
                feed.push(pair[1]);
            }
        }
        topic.sort_unstable();
        feed.sort_unstable();
        assert_eq!(topic, (1..=400).collect::<Vec<u64>>(), "{name}");
        assert_eq!(feed, (1..=400).collect::<Vec<u64>>(), "{name}");
    }
}

#[tokio::test]
async fn with_redis_down_publishing_fails_with_unavailable() {
    let mut server = RedisServer::start();
    let prefix = prefix();
    let redis = Redis::connect(&RedisConfig {
        url: server.url.clone(),
        prefix: prefix.clone(),
    })
    .await
    .unwrap();
    let store = Histories::Redis {
        redis: redis.clone(),
        retention: TOPIC_RETENTION,
    };
    let feeds = Feeds::redis(Arc::new(PubSub::new(redis)), RETAINED);
    store.append("room:a", &mut frame).await.unwrap();
    server.stop();
    let started = Instant::now();
    let user = Uuid::new_v4();
    assert!(matches!(
        store.append("room:a", &mut frame).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        feeds.publish(user, "t", "b").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.read_after("room:a", 0).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failures are reported within the response timeouts"
    );
}

/// Sends one inline command and returns the raw reply.
fn raw(port: u16, command: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).unwrap();
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

#[test]
fn the_redis_helper_starts_restarts_empty_and_stops() {
    let mut server = RedisServer::start();
    assert_eq!(raw(server.port, "SET k v"), "+OK\r\n");
    assert_eq!(raw(server.port, "GET k"), "$1\r\nv\r\n");
    let pid = server.pid().unwrap();
    server.restart_empty();
    assert_ne!(server.pid(), Some(pid));
    assert_eq!(raw(server.port, "GET k"), "$-1\r\n");
    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}
