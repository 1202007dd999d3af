//! Accounts on Redis: a user created on one instance signs in on every
//! other.
//!
//! Keys:
//! - `{g}:usernames`: a hash username → user id (what makes a username
//!   taken, across instances: `HSETNX`);
//! - `{u:<id>}:account`: a hash `username` and `password_hash` (argon2
//!   PHC string; absent for a passkey-only account).
//!
//! An account is written first, then its name claimed; a name claimed by
//! another id leaves our record deleted ([`Created::Taken`]). A crash in
//! between leaves an account record no name points at: invisible.
//! Accounts are never renamed or deleted, so instances may cache what
//! they read.

use super::{Redis, StoreError};
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;
use uuid::Uuid;

/// One stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Its id.
    pub id: Uuid,
    /// Its login name.
    pub username: String,
    /// The argon2 PHC string, if it has a password.
    pub password_hash: Option<String>,
}

/// What [`RedisAccounts::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The account exists now under this id (created now, or by another
    /// instance with the same id: the demo users).
    Ok,
    /// The name belongs to another id.
    Taken,
}

/// KEYS: account hash. ARGV: username, password hash or ''. Writes it if
/// absent; returns 1 when written.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'username', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'password_hash', ARGV[2]) end
return 1
",
    )
});

/// The Redis account records.
#[derive(Debug)]
pub struct RedisAccounts {
    redis: Redis,
}

impl RedisAccounts {
    /// Records on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// Creates account `id` named `username` unless the name is taken by
    /// another id.
    pub async fn create(
        &self,
        id: Uuid,
        username: &str,
        password_hash: Option<&str>,
    ) -> Result<Created, StoreError> {
        let r = &self.redis;
        let mut conn = r.conn();
        let account = r.user_key(id, "account");
        let written: i64 = WRITE
            .key(&account)
            .arg(username)
            .arg(password_hash.unwrap_or(""))
            .invoke_async(&mut conn)
            .await?;
        let names = r.global_key("usernames");
        let claimed: bool = redis::cmd("HSETNX")
            .arg(&names)
            .arg(username)
            .arg(id.to_string())
            .query_async(&mut conn)
            .await?;
        if claimed {
            return Ok(Created::Ok);
        }
        let owner: Option<String> = redis::cmd("HGET")
            .arg(&names)
            .arg(username)
            .query_async(&mut conn)
            .await?;
        if owner.as_deref() == Some(id.to_string().as_str()) {
            return Ok(Created::Ok);
        }
        if written == 1 {
            let _: i64 = redis::cmd("DEL")
                .arg(&account)
                .query_async(&mut conn)
                .await?;
        }
        Ok(Created::Taken)
    }

    /// The id that `username` belongs to.
    pub async fn id_of(&self, username: &str) -> Result<Option<Uuid>, StoreError> {
        let r = &self.redis;
        let id: Option<String> = redis::cmd("HGET")
            .arg(r.global_key("usernames"))
            .arg(username)
            .query_async(&mut r.conn())
            .await?;
        id.map(|id| parse_id(&id)).transpose()
    }

    /// Account `id`.
    pub async fn get(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError> {
        let r = &self.redis;
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(r.user_key(id, "account"))
            .query_async(&mut r.conn())
            .await?;
        Ok(record(id, fields))
    }

    /// Accounts `ids`, in order (one round trip).
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<AccountRecord>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let r = &self.redis;
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGETALL").arg(r.user_key(*id, "account"));
        }
        let records: Vec<HashMap<String, String>> = pipe.query_async(&mut r.conn()).await?;
        Ok(ids
            .iter()
            .zip(records)
            .map(|(id, fields)| record(*id, fields))
            .collect())
    }

    /// Every account (one round trip for the names, one for the records).
    pub async fn all(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let r = &self.redis;
        let names: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(r.global_key("usernames"))
            .query_async(&mut r.conn())
            .await?;
        let ids = names
            .values()
            .map(|id| parse_id(id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.get_many(&ids).await?.into_iter().flatten().collect())
    }
}

fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt("a user id".into()))
}

fn record(id: Uuid, mut fields: HashMap<String, String>) -> Option<AccountRecord> {
    Some(AccountRecord {
        id,
        username: fields.remove("username")?,
        password_hash: fields.remove("password_hash"),
    })
}
