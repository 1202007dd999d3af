//! Where the Redis store lives (TEMPORARY local copy of the lead's skeleton;
//! replaced by main's on merge).

pub mod accounts;
pub mod control;
pub mod dedup;
pub mod rooms;
pub mod sessions;

use redis::aio::ConnectionManager;
use std::time::Duration;
use uuid::Uuid;

/// `--redis-url` and `--redis-prefix`.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL.
    pub url: String,
    /// The key prefix.
    pub prefix: String,
}

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Connection refused or lost, or a timeout: retried.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not parse.
    #[error("the store holds a corrupt value: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// A connection to Redis and the key prefix.
#[derive(Clone)]
pub struct Redis {
    /// The multiplexed, reconnecting connection.
    pub conn: ConnectionManager,
    /// The client (for pub/sub connections).
    pub client: redis::Client,
    /// The prefix of every key and channel.
    pub prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Redis {
    /// Connects.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())?;
        // Fail fast while Redis is down (HTTP 503, nack rate_limited):
        // one quick retry per request, not the default six with backoff.
        let settings = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client.clone(), settings).await?;
        Ok(Self {
            conn,
            client,
            prefix: config.prefix.clone(),
        })
    }

    /// `<prefix>{u:<uuid>}:<suffix>`.
    pub fn user_key(&self, user: Uuid, suffix: &str) -> String {
        format!("{}{{u:{user}}}:{suffix}", self.prefix)
    }

    /// `<prefix>{t:<topic>}:<suffix>`.
    pub fn topic_key(&self, topic: &str, suffix: &str) -> String {
        format!("{}{{t:{topic}}}:{suffix}", self.prefix)
    }

    /// `<prefix>{g}:<suffix>`.
    pub fn global_key(&self, suffix: &str) -> String {
        format!("{}{{g}}:{suffix}", self.prefix)
    }

    /// `<prefix><name>`.
    pub fn channel(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}
