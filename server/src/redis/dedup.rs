//! De-duplication of `send` and `publish` ids on Redis, shared by every
//! instance and surviving a restart of any of them.
//!
//! Keys (all in the user's slot, `{u:<id>}`; `<d>` is the id's 16-byte
//! SHA-256 digest in hex):
//! - `{u:<id>}:send:<d>`: `SET NX EX 86400` when a `send` is applied;
//! - `{u:<id>}:send-count`: ids applied in the current 24 h window (a
//!   counter whose TTL starts with the window's first id); at
//!   [`MAX_REMEMBERED_IDS`] new ids get [`Applying::Full`];
//! - `{u:<id>}:received`: the applied items as JSON (a list, oldest
//!   first, at most [`KEPT_BYTES`] of them) and `{u:<id>}:received-meta`
//!   (a hash: `total` applied ever, `bytes` in the list);
//! - `{u:<id>}:publish:<d>`: `inflight` while claimed (for
//!   [`CLAIM_TTL`]), then `<offset> <topic>` for 24 h;
//!   `{u:<id>}:publish-count` as `send-count`.
//!
//! The check, the claim, the count and the applied record of one `send`
//! are one Lua script: two instances given the same id apply it once.

use super::{Redis, StoreError};
use crate::delivery::{Applied, Applying, Claim, KEPT_BYTES, MAX_REMEMBERED_IDS};
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// How long a publish claim holds without being settled: past it (the
/// instance that claimed died between claim and settle) the id can be
/// claimed again.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);

/// KEYS: id key, count key, received list, received meta.
/// ARGV: window secs, max ids, item JSON, kept bytes.
/// Returns 1 applied, 0 duplicate, 2 full.
static APPLY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if n >= tonumber(ARGV[2]) then return 2 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[4], 'total', 1)
local bytes = redis.call('HINCRBY', KEYS[4], 'bytes', #ARGV[3])
local kept = tonumber(ARGV[4])
while bytes > kept do
  local old = redis.call('LPOP', KEYS[3])
  if not old then break end
  bytes = redis.call('HINCRBY', KEYS[4], 'bytes', -#old)
end
return 1
",
    )
});

/// KEYS: publish id key, count key. ARGV: claim secs, max ids.
/// Returns {0, ''} new, {1, ''} in flight, {2, value} settled, {3, ''} full.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == 'inflight' then return {1, ''} end
if v then return {2, v} end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return {3, ''} end
redis.call('SET', KEYS[1], 'inflight', 'EX', ARGV[1])
return {0, ''}
",
    )
});

/// KEYS: publish id key, count key. ARGV: value, window secs.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
",
    )
});

/// KEYS: publish id key. Deletes it if still only claimed.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == 'inflight' then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

/// The Redis inbox.
#[derive(Debug)]
pub struct RedisInbox {
    redis: Redis,
    window: Duration,
}

impl RedisInbox {
    /// An inbox remembering ids for `window` (whole seconds, at least 1).
    pub fn new(redis: Redis, window: Duration) -> Self {
        Self { redis, window }
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }

    /// Applies `item` unless the id of digest `digest` was applied.
    pub async fn apply(
        &self,
        user: Uuid,
        digest: &str,
        item: &Applied,
    ) -> Result<Applying, StoreError> {
        let json = serde_json::to_string(item)
            .map_err(|e| StoreError::Corrupt(format!("an applied item: {e}")))?;
        let r = &self.redis;
        let outcome: i64 = APPLY
            .key(r.user_key(user, &format!("send:{digest}")))
            .key(r.user_key(user, "send-count"))
            .key(r.user_key(user, "received"))
            .key(r.user_key(user, "received-meta"))
            .arg(self.window_secs())
            .arg(MAX_REMEMBERED_IDS)
            .arg(json)
            .arg(KEPT_BYTES)
            .invoke_async(&mut r.conn())
            .await?;
        match outcome {
            1 => Ok(Applying::Applied),
            0 => Ok(Applying::Duplicate),
            2 => Ok(Applying::Full),
            other => Err(StoreError::Corrupt(format!("apply answered {other}"))),
        }
    }

    /// Claims the publish id of digest `digest`.
    pub async fn claim_publish(&self, user: Uuid, digest: &str) -> Result<Claim, StoreError> {
        let r = &self.redis;
        let (code, value): (i64, String) = CLAIM
            .key(r.user_key(user, &format!("publish:{digest}")))
            .key(r.user_key(user, "publish-count"))
            .arg(CLAIM_TTL.as_secs())
            .arg(MAX_REMEMBERED_IDS)
            .invoke_async(&mut r.conn())
            .await?;
        match (code, value) {
            (0, _) => Ok(Claim::New),
            (1, _) => Ok(Claim::InFlight),
            (3, _) => Ok(Claim::Full),
            (2, value) => {
                let parsed = value
                    .split_once(' ')
                    .and_then(|(offset, topic)| Some((offset.parse().ok()?, topic)));
                match parsed {
                    Some((offset, topic)) => Ok(Claim::Duplicate {
                        topic: topic.to_owned(),
                        offset,
                    }),
                    None => Err(StoreError::Corrupt("a settled publish id".into())),
                }
            }
            (code, _) => Err(StoreError::Corrupt(format!("claim answered {code}"))),
        }
    }

    /// Settles a claimed publish id: applied at `offset` of `topic`.
    pub async fn settle_publish(
        &self,
        user: Uuid,
        digest: &str,
        topic: &str,
        offset: u64,
    ) -> Result<(), StoreError> {
        let r = &self.redis;
        let _: i64 = SETTLE
            .key(r.user_key(user, &format!("publish:{digest}")))
            .key(r.user_key(user, "publish-count"))
            .arg(format!("{offset} {topic}"))
            .arg(self.window_secs())
            .invoke_async(&mut r.conn())
            .await?;
        Ok(())
    }

    /// Forgets the claim of the publish id of digest `digest`, unless it
    /// was settled.
    pub async fn release_publish(&self, user: Uuid, digest: &str) -> Result<(), StoreError> {
        let r = &self.redis;
        let _: i64 = RELEASE
            .key(r.user_key(user, &format!("publish:{digest}")))
            .invoke_async(&mut r.conn())
            .await?;
        Ok(())
    }

    /// The kept applied items (oldest first) and the total count.
    pub async fn applied(&self, user: Uuid) -> Result<(u64, Vec<Applied>), StoreError> {
        let r = &self.redis;
        let (items, total): (Vec<String>, Option<u64>) = redis::pipe()
            .cmd("LRANGE")
            .arg(r.user_key(user, "received"))
            .arg(0)
            .arg(-1)
            .cmd("HGET")
            .arg(r.user_key(user, "received-meta"))
            .arg("total")
            .query_async(&mut r.conn())
            .await?;
        let items = items
            .iter()
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|e| StoreError::Corrupt(format!("an applied item: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok((total.unwrap_or(0), items))
    }
}
