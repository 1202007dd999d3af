//! Sessions on Redis: every instance sees a login, a refresh rotation and
//! a revocation made on another.
//!
//! Keys (`<sid>` a session id; the hashes are SHA-256 of refresh secrets,
//! hex):
//! - `{u:<id>}:session:<sid>`: a hash `current` (the current refresh
//!   secret's hash) and `created` (ms); its TTL is the refresh cookie's
//!   lifetime, renewed by each refresh (idle expiry);
//! - `{u:<id>}:session:<sid>:rotated`: a sorted set of the hashes the
//!   session rotated away from (reuse detection), the newest
//!   [`ROTATED_REMEMBERED`], same TTL;
//! - `{u:<id>}:sessions`: a sorted set of the user's session ids by
//!   creation time (the per-user cap and `revoke_user`), same TTL;
//! - `{u:<id>}:token-cutoff`, `{g}:token-cutoff`: access tokens of a lower
//!   generation are expired (`POST /api/admin/expire-tokens`);
//!   `{g}:token-generation` counts the tokens issued.
//!
//! Login, refresh and revocation are each one Lua script on the user's
//! slot (the scripts derive the session keys from the user's key prefix,
//! all in that slot).

use super::{Redis, StoreError};
use crate::auth::{MAX_SESSIONS_PER_USER, ROTATED_REMEMBERED};
use redis::Script;
use std::sync::LazyLock;
use uuid::Uuid;

/// KEYS: the user's session set. ARGV: session key base
/// (`...{u:<id>}:session:`), sid, hash, now ms, ttl secs, cap.
static LOGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local base, sid, ttl, cap = ARGV[1], ARGV[2], ARGV[5], tonumber(ARGV[6])
for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', base .. old) == 0 then
    redis.call('ZREM', KEYS[1], old)
    redis.call('DEL', base .. old .. ':rotated')
  end
end
local n = redis.call('ZCARD', KEYS[1])
if n >= cap then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, n - cap)) do
    redis.call('ZREM', KEYS[1], old)
    redis.call('DEL', base .. old, base .. old .. ':rotated')
  end
end
redis.call('HSET', base .. sid, 'current', ARGV[3], 'created', ARGV[4])
redis.call('EXPIRE', base .. sid, ttl)
redis.call('ZADD', KEYS[1], ARGV[4], sid)
redis.call('EXPIRE', KEYS[1], ttl)
return 1
",
    )
});

/// KEYS: session hash, its rotated set, the user's session set.
/// ARGV: presented hash, new hash, ttl secs, rotated cap, sid.
/// Returns 1 rotated, 2 reused (the session is deleted), 0 invalid.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HGET', KEYS[1], 'current')
if not current then return 0 end
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'current', ARGV[2])
  local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local next = 1
  if top[2] then next = tonumber(top[2]) + 1 end
  redis.call('ZADD', KEYS[2], next, ARGV[1])
  local n = redis.call('ZCARD', KEYS[2])
  local cap = tonumber(ARGV[4])
  if n > cap then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, n - cap - 1) end
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  return 1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[5])
  return 2
end
return 0
",
    )
});

/// KEYS: the user's session set. ARGV: session key base.
/// Returns the ids of the sessions it deleted.
static REVOKE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', ARGV[1] .. sid, ARGV[1] .. sid .. ':rotated')
end
redis.call('DEL', KEYS[1])
return sids
",
    )
});

/// KEYS: a cutoff key. ARGV: the cutoff. Raises the key to it (never lowers).
static RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
",
    )
});

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The presented hash was current; the new one is now.
    Rotated,
    /// The presented hash was rotated away from: the session is deleted.
    Reused,
    /// Unknown session or hash.
    Invalid,
}

/// Whether a session exists and the cutoffs that apply to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The session exists (under that user).
    pub exists: bool,
    /// The highest of the user's and everyone's cutoff.
    pub cutoff: u64,
}

/// The Redis session records.
#[derive(Debug)]
pub struct RedisSessions {
    redis: Redis,
}

impl RedisSessions {
    /// Records on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn session_base(&self, user: Uuid) -> String {
        self.redis.user_key(user, "session:")
    }

    /// The next token generation (shared by every instance).
    pub async fn next_generation(&self) -> Result<u64, StoreError> {
        let r = &self.redis;
        Ok(redis::cmd("INCR")
            .arg(r.global_key("token-generation"))
            .query_async(&mut r.conn())
            .await?)
    }

    /// Starts session `sid` with refresh hash `hash`, evicting the user's
    /// oldest beyond the cap.
    pub async fn login(
        &self,
        user: Uuid,
        sid: Uuid,
        hash: &str,
        now_ms: i64,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let r = &self.redis;
        let _: i64 = LOGIN
            .key(r.user_key(user, "sessions"))
            .arg(self.session_base(user))
            .arg(sid.to_string())
            .arg(hash)
            .arg(now_ms)
            .arg(ttl_secs)
            .arg(MAX_SESSIONS_PER_USER)
            .invoke_async(&mut r.conn())
            .await?;
        Ok(())
    }

    /// Rotates `presented` to `new` if it is current.
    pub async fn refresh(
        &self,
        user: Uuid,
        sid: Uuid,
        presented: &str,
        new: &str,
        ttl_secs: u64,
    ) -> Result<Rotation, StoreError> {
        let r = &self.redis;
        let base = self.session_base(user);
        let code: i64 = REFRESH
            .key(format!("{base}{sid}"))
            .key(format!("{base}{sid}:rotated"))
            .key(r.user_key(user, "sessions"))
            .arg(presented)
            .arg(new)
            .arg(ttl_secs)
            .arg(ROTATED_REMEMBERED)
            .arg(sid.to_string())
            .invoke_async(&mut r.conn())
            .await?;
        Ok(match code {
            1 => Rotation::Rotated,
            2 => Rotation::Reused,
            _ => Rotation::Invalid,
        })
    }

    /// The session's current refresh hash, if it exists.
    pub async fn current(&self, user: Uuid, sid: Uuid) -> Result<Option<String>, StoreError> {
        let r = &self.redis;
        Ok(redis::cmd("HGET")
            .arg(format!("{}{sid}", self.session_base(user)))
            .arg("current")
            .query_async(&mut r.conn())
            .await?)
    }

    /// Whether the session exists, and the cutoffs (one round trip).
    pub async fn check(&self, user: Uuid, sid: Uuid) -> Result<Check, StoreError> {
        let r = &self.redis;
        let (exists, mine, everyone): (bool, Option<u64>, Option<u64>) = redis::pipe()
            .cmd("EXISTS")
            .arg(format!("{}{sid}", self.session_base(user)))
            .cmd("GET")
            .arg(r.user_key(user, "token-cutoff"))
            .cmd("GET")
            .arg(r.global_key("token-cutoff"))
            .query_async(&mut r.conn())
            .await?;
        Ok(Check {
            exists,
            cutoff: mine.unwrap_or(0).max(everyone.unwrap_or(0)),
        })
    }

    /// Deletes every session of the user; returns their ids.
    pub async fn revoke_user(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let r = &self.redis;
        let sids: Vec<String> = REVOKE_USER
            .key(r.user_key(user, "sessions"))
            .arg(self.session_base(user))
            .invoke_async(&mut r.conn())
            .await?;
        Ok(sids
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect())
    }

    /// Expires every token issued so far, of `user` or of everyone.
    pub async fn expire_tokens(&self, user: Option<Uuid>) -> Result<(), StoreError> {
        let r = &self.redis;
        let issued: Option<u64> = redis::cmd("GET")
            .arg(r.global_key("token-generation"))
            .query_async(&mut r.conn())
            .await?;
        let cutoff = issued.unwrap_or(0) + 1;
        let key = match user {
            Some(user) => r.user_key(user, "token-cutoff"),
            None => r.global_key("token-cutoff"),
        };
        let _: i64 = RAISE
            .key(key)
            .arg(cutoff)
            .invoke_async(&mut r.conn())
            .await?;
        Ok(())
    }
}
