//! The Redis store: what several `tether-server` instances share when
//! started with `--redis-url` (README "Scaling out").
//!
//! Every key and channel starts with the configured prefix, and every key of
//! one user or topic carries that user's or topic's hash tag (`{u:<id>}`,
//! `{t:<topic>}`), so that one script touches one cluster slot.

pub mod accounts;
pub mod control;
pub mod dedup;
pub mod presence;
pub mod pubsub;
pub mod rooms;
pub mod sessions;
pub mod streams;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use uuid::Uuid;

/// Where the shared store is (`--redis-url`, `--redis-prefix`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. May hold a password: never
    /// logged whole (see [`RedisConfig::redacted`]).
    pub url: String,
    /// Prepended to every key and channel. Instances that share state use
    /// the same prefix; tests give each server a prefix of its own.
    pub prefix: String,
}

impl RedisConfig {
    /// The default prefix.
    pub const DEFAULT_PREFIX: &'static str = "tether:";

    /// `host:port` of the URL, without credentials, for logs and errors.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(url) => format!(
                "{}:{}",
                url.host_str().unwrap_or("?"),
                url.port().unwrap_or(6379)
            ),
            Err(_) => "an unparsable redis URL".to_owned(),
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Why the store could not answer. Never holds the URL's credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis is unreachable, the connection broke, or it did not answer in
    /// time: the operation did not happen (or may be retried).
    #[error("the shared store is unavailable: {0}")]
    Unavailable(String),
    /// A value in the store does not have the shape this server writes.
    #[error("the shared store holds a malformed value: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        // redis-rs errors name the failed command and its kind, never the
        // connection URL.
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
        {
            Self::Unavailable(err.to_string())
        } else {
            Self::Corrupt(err.to_string())
        }
    }
}

/// How long one Redis command may take before it counts as unavailable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the shared store (cheap to clone: one multiplexed
/// connection that reconnects by itself).
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    config: RedisConfig,
    mark: std::sync::Arc<std::sync::Mutex<Option<StoreMark>>>,
}

/// The store as this instance last saw it: `<prefix>{g}:store`, a hash
/// written once per store (`id`, `floor`), so that an instance can tell
/// a store that lost its data from the one it knew.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreMark {
    id: String,
    floor: u64,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects (and checks the connection with `PING`).
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|_| StoreError::Unavailable(format!("bad URL ({})", config.redacted())))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(2);
        let mut conn = client
            .get_connection_manager_with_config(manager)
            .await
            .map_err(|err| StoreError::Unavailable(format!("{} ({err})", config.redacted())))?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        let redis = Self {
            client,
            conn,
            config: config.clone(),
            mark: std::sync::Arc::default(),
        };
        redis.feed_floor().await?;
        Ok(redis)
    }

    /// Where a user's notification feed starts when the store has none:
    /// 0 in a store this instance found at its start (a new deployment:
    /// seqs from 1), and the time in milliseconds since the Unix epoch in a
    /// store that replaced one this instance knew (Redis lost its data while
    /// it ran). The wire has no epoch for notifications, and a client drops
    /// a seq at or below the last one it has: a feed that started again from
    /// 1 would be dropped silently, one that starts above every seq issued
    /// before is delivered. (More than one notification per millisecond
    /// since 1970 would be needed to reach it.)
    ///
    /// Called when a feed's meta hash is missing, before it is made (and at
    /// connect), so the loss is always noticed before a feed is re-created.
    pub async fn feed_floor(&self) -> Result<u64, StoreError> {
        let key = self.global_key("store");
        let mut conn = self.conn();
        let known = self.mark.lock().expect("lock").clone();
        let (id, floor): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("id")
            .arg("floor")
            .query_async(&mut conn)
            .await?;
        let mark = match (id, floor) {
            (Some(id), Some(floor)) => StoreMark { id, floor },
            _ => {
                let floor = if known.is_some() {
                    u64::try_from(crate::now_ms()).unwrap_or(0)
                } else {
                    0
                };
                let id = crate::random_bytes::<8>()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>();
                // HSETNX: the first instance to notice writes the mark,
                // every other one reads it.
                let (id, floor): (String, u64) = redis::pipe()
                    .atomic()
                    .cmd("HSETNX")
                    .arg(&key)
                    .arg("id")
                    .arg(&id)
                    .ignore()
                    .cmd("HSETNX")
                    .arg(&key)
                    .arg("floor")
                    .arg(floor)
                    .ignore()
                    .cmd("HMGET")
                    .arg(&key)
                    .arg("id")
                    .arg("floor")
                    .query_async::<((String, u64),)>(&mut conn)
                    .await?
                    .0;
                if known.is_some() {
                    tracing::warn!(
                        floor,
                        "the shared store lost its data: notification feeds start again above every earlier seq"
                    );
                }
                StoreMark { id, floor }
            }
        };
        let floor = mark.floor;
        *self.mark.lock().expect("lock") = Some(mark);
        Ok(floor)
    }

    /// The multiplexed command connection.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The client, for dedicated connections (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// `<prefix>{u:<user>}:<suffix>`.
    pub fn user_key(&self, user: Uuid, suffix: &str) -> String {
        format!("{}{{u:{user}}}:{suffix}", self.config.prefix)
    }

    /// `<prefix>{t:<topic>}:<suffix>`.
    pub fn topic_key(&self, topic: &str, suffix: &str) -> String {
        format!("{}{{t:{topic}}}:{suffix}", self.config.prefix)
    }

    /// `<prefix>{g}:<suffix>`: keys not of one user or topic.
    pub fn global_key(&self, suffix: &str) -> String {
        format!("{}{{g}}:{suffix}", self.config.prefix)
    }

    /// `<prefix><name>`: a pub/sub channel.
    pub fn channel(&self, name: &str) -> String {
        format!("{}{name}", self.config.prefix)
    }
}
