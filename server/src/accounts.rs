//! User accounts: argon2-hashed passwords and login throttling.
//!
//! With Redis ([`crate::redis::accounts`]) accounts are shared by every
//! instance; login throttling stays per instance (each counts the
//! failures it saw).

use crate::redis::StoreError;
use crate::redis::accounts::{AccountRecord, Created, RedisAccounts};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Id of the demo user `alice` (password `wonderland`).
pub const ALICE_ID: Uuid = Uuid::from_u128(0xa11c_e000_0000_4000_8000_0000_0000_0001);
/// Id of the demo user `bob` (password `builder`).
pub const BOB_ID: Uuid = Uuid::from_u128(0xb0b0_0000_0000_4000_8000_0000_0000_0002);

/// Failed logins for one username from one client within
/// [`THROTTLE_WINDOW`] after which that client's attempts on that username
/// get 429. Other clients can still sign in as that user.
pub const MAX_FAILURES: usize = 5;
/// Failed logins from one client (on any usernames) within
/// [`THROTTLE_WINDOW`] after which every attempt of that client gets 429:
/// one client cannot try many accounts.
pub const MAX_CLIENT_FAILURES: usize = 20;
/// Failed logins for one username from all clients together within
/// [`THROTTLE_WINDOW`] after which every attempt on it gets 429 (a guess
/// spread over many clients). Above [`MAX_CLIENT_FAILURES`], so that no single
/// client can lock a user out.
pub const MAX_ACCOUNT_FAILURES: usize = 100;
/// The window of the failure limits.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// Distinct keys a failure table holds before idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Who is trying: an IPv4 address, or the /64 prefix of an IPv6 address
/// (one host usually holds a whole /64). `None` for in-process callers
/// without a peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(Option<u128>);

impl ClientKey {
    /// The key of a peer address.
    pub fn of(ip: std::net::IpAddr) -> Self {
        let bits = match ip.to_canonical() {
            std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => (u128::from(v6) >> 64) << 64 | 1 << 32,
        };
        Self(Some(bits))
    }

    /// A caller whose address is unknown (all such callers share one key).
    pub fn unknown() -> Self {
        Self(None)
    }
}

/// Failure times per key, within [`THROTTLE_WINDOW`].
#[derive(Debug)]
struct FailureTable<K> {
    limit: usize,
    times: HashMap<K, VecDeque<Instant>>,
}

impl<K: std::hash::Hash + Eq + Clone> FailureTable<K> {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            times: HashMap::new(),
        }
    }

    /// How long `key` is still throttled, if it is.
    fn throttled(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let times = self.times.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= THROTTLE_WINDOW)
        {
            times.pop_front();
        }
        if times.is_empty() {
            self.times.remove(key);
            return None;
        }
        (times.len() >= self.limit).then(|| {
            let oldest = times[times.len() - self.limit];
            THROTTLE_WINDOW.saturating_sub(now.duration_since(oldest))
        })
    }

    fn record(&mut self, key: K, now: Instant) {
        if self.times.len() >= MAX_TRACKED {
            self.times.retain(|_, t| {
                t.back()
                    .is_some_and(|t| now.duration_since(*t) < THROTTLE_WINDOW)
            });
        }
        let times = self.times.entry(key).or_default();
        times.push_back(now);
        // Only the last `limit` failures matter.
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    fn clear(&mut self, key: &K) {
        self.times.remove(key);
    }
}

#[derive(Debug)]
struct Failures {
    pair: FailureTable<(ClientKey, String)>,
    client: FailureTable<ClientKey>,
    account: FailureTable<String>,
}

impl Default for Failures {
    fn default() -> Self {
        Self {
            pair: FailureTable::new(MAX_FAILURES),
            client: FailureTable::new(MAX_CLIENT_FAILURES),
            account: FailureTable::new(MAX_ACCOUNT_FAILURES),
        }
    }
}

/// One account.
#[derive(Debug)]
pub struct User {
    /// Stable id, the `sub` of its tokens.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// `None` for an account created with a passkey.
    password_hash: Option<String>,
}

/// Why an account could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateUserError {
    /// The username is taken.
    #[error("the username is taken")]
    Exists,
    /// Empty username or password, or a username longer than 64 bytes
    /// (see [`valid_username`]).
    #[error("the username must be 1 to 64 characters and the password non-empty")]
    Invalid,
}

/// Outcome of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The password is right.
    Ok(Arc<User>),
    /// Wrong username or password.
    Invalid,
    /// Too many failures (this client on this username, this client on any,
    /// or everyone on this username); retry after this long.
    Throttled(Duration),
}

/// The account store: records in memory (the default) or on Redis
/// ([`crate::redis::accounts`], cached here: accounts never change), login
/// throttling in this process (per instance, also with Redis).
#[derive(Debug)]
pub struct Accounts {
    hasher: Argon2<'static>,
    failures: Mutex<Failures>,
    /// Verified against when the username is unknown, so both cases cost the same.
    dummy_hash: String,
    /// Every account (memory), or those read so far (Redis).
    local: LocalAccounts,
    redis: Option<RedisAccounts>,
}

/// Accounts cached beyond this many (Redis) are dropped and read again.
const MAX_CACHED: usize = 100_000;

#[derive(Debug, Default)]
struct LocalAccounts {
    by_name: RwLock<HashMap<String, Arc<User>>>,
    by_id: RwLock<HashMap<Uuid, Arc<User>>>,
}

impl LocalAccounts {
    /// Inserts `user` unless its name is taken.
    fn insert(&self, user: User) -> Result<Arc<User>, CreateUserError> {
        let user = Arc::new(user);
        let mut by_name = self.by_name.write().expect("lock");
        if by_name.contains_key(&user.username) {
            return Err(CreateUserError::Exists);
        }
        by_name.insert(user.username.clone(), user.clone());
        self.by_id
            .write()
            .expect("lock")
            .insert(user.id, user.clone());
        Ok(user)
    }

    /// Caches a user read from Redis.
    fn cache(&self, record: AccountRecord) -> Arc<User> {
        let user = Arc::new(User {
            id: record.id,
            username: record.username,
            password_hash: record.password_hash,
        });
        let mut by_name = self.by_name.write().expect("lock");
        let mut by_id = self.by_id.write().expect("lock");
        if by_id.len() >= MAX_CACHED {
            by_id.clear();
            by_name.clear();
        }
        by_name.insert(user.username.clone(), user.clone());
        by_id.insert(user.id, user.clone());
        user
    }

    fn by_name(&self, username: &str) -> Option<Arc<User>> {
        self.by_name.read().expect("lock").get(username).cloned()
    }

    fn by_id(&self, id: Uuid) -> Option<Arc<User>> {
        self.by_id.read().expect("lock").get(&id).cloned()
    }
}

fn hasher(fast_hashing: bool) -> Argon2<'static> {
    let params = if fast_hashing {
        Params::new(Params::MIN_M_COST.max(64), 1, 1, None).expect("valid argon2 params")
    } else {
        Params::default()
    };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Accounts {
    /// An in-memory store with the demo users. `fast_hashing` picks tiny
    /// argon2 costs (for `--dev` and tests); passwords are hashed either way.
    pub fn new(fast_hashing: bool) -> Self {
        let accounts = Self::empty(fast_hashing, None);
        for (id, name, password) in DEMO_USERS {
            let hash = hash(&accounts.hasher, password);
            accounts
                .local
                .insert(User {
                    id,
                    username: name.to_owned(),
                    password_hash: Some(hash),
                })
                .expect("demo user");
        }
        accounts
    }

    /// A store on Redis. Creates the demo users unless they exist (every
    /// instance does this at start; they get the same ids).
    pub async fn redis(fast_hashing: bool, redis: crate::redis::Redis) -> Result<Self, StoreError> {
        let accounts = Self::empty(fast_hashing, Some(RedisAccounts::new(redis)));
        for demo in DEMO_USERS {
            accounts.ensure_demo_user(demo).await?;
        }
        Ok(accounts)
    }

    /// Creates a demo user on Redis unless it exists (at start, and when
    /// its name is not found: Redis lost its data).
    async fn ensure_demo_user(
        &self,
        (id, name, password): (Uuid, &str, &str),
    ) -> Result<(), StoreError> {
        let Some(store) = &self.redis else {
            return Ok(());
        };
        if store.id_of(name).await? == Some(id) && store.get(id).await?.is_some() {
            return Ok(());
        }
        let hash = self.hash_blocking(password.to_owned()).await;
        if store.create(id, name, Some(&hash)).await? == Created::Taken {
            tracing::warn!(
                username = name,
                "a demo user's name belongs to another account"
            );
        }
        Ok(())
    }

    fn empty(fast_hashing: bool, redis: Option<RedisAccounts>) -> Self {
        let hasher = hasher(fast_hashing);
        let dummy_hash = hash(&hasher, "not a password");
        Self {
            hasher,
            failures: Mutex::default(),
            dummy_hash,
            local: LocalAccounts::default(),
            redis,
        }
    }

    async fn hash_blocking(&self, password: String) -> String {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hash(&hasher, &password))
            .await
            .expect("the hashing task does not panic")
    }

    /// Creates an account with a random id (hashing on a blocking thread).
    pub async fn create(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Result<Arc<User>, CreateUserError>, StoreError> {
        if !valid_username(username) || password.is_empty() {
            return Ok(Err(CreateUserError::Invalid));
        }
        if self.by_name(username).await?.is_some() {
            return Ok(Err(CreateUserError::Exists));
        }
        let hash = self.hash_blocking(password.to_owned()).await;
        self.insert(Uuid::new_v4(), username, Some(hash)).await
    }

    /// Creates an account without a password (it signs in with a passkey),
    /// with the id its passkey was registered for.
    pub async fn create_passwordless(
        &self,
        id: Uuid,
        username: &str,
    ) -> Result<Result<Arc<User>, CreateUserError>, StoreError> {
        if !valid_username(username) {
            return Ok(Err(CreateUserError::Invalid));
        }
        self.insert(id, username, None).await
    }

    async fn insert(
        &self,
        id: Uuid,
        username: &str,
        password_hash: Option<String>,
    ) -> Result<Result<Arc<User>, CreateUserError>, StoreError> {
        let Some(store) = &self.redis else {
            return Ok(self.local.insert(User {
                id,
                username: username.to_owned(),
                password_hash,
            }));
        };
        match store.create(id, username, password_hash.as_deref()).await? {
            Created::Taken => Ok(Err(CreateUserError::Exists)),
            Created::Ok => Ok(Ok(self.local.cache(AccountRecord {
                id,
                username: username.to_owned(),
                password_hash,
            }))),
        }
    }

    /// The account with this name.
    ///
    /// On Redis the name is always looked up there (one round trip; the
    /// account itself comes from the cache once read), so that every
    /// instance agrees on which names exist.
    pub async fn by_name(&self, username: &str) -> Result<Option<Arc<User>>, StoreError> {
        let Some(store) = &self.redis else {
            return Ok(self.local.by_name(username));
        };
        if let Some(id) = store.id_of(username).await? {
            return self.by_id(id).await;
        }
        match DEMO_USERS
            .into_iter()
            .find(|(_, name, _)| *name == username)
        {
            Some(demo) => {
                self.ensure_demo_user(demo).await?;
                match store.id_of(username).await? {
                    Some(id) => self.by_id(id).await,
                    None => Ok(None),
                }
            }
            None => Ok(None),
        }
    }

    /// The account with this id.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<Arc<User>>, StoreError> {
        if let Some(user) = self.local.by_id(id) {
            return Ok(Some(user));
        }
        let Some(store) = &self.redis else {
            return Ok(None);
        };
        Ok(store.get(id).await?.map(|record| self.local.cache(record)))
    }

    /// The accounts `ids`, in order (`None` for an unknown id); on Redis
    /// one round trip for those not cached.
    pub async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<Option<Arc<User>>>, StoreError> {
        let mut found: Vec<Option<Arc<User>>> =
            ids.iter().map(|id| self.local.by_id(*id)).collect();
        let Some(store) = &self.redis else {
            return Ok(found);
        };
        let missing: Vec<Uuid> = ids
            .iter()
            .zip(&found)
            .filter(|(_, user)| user.is_none())
            .map(|(id, _)| *id)
            .collect();
        let mut read = store.get_many(&missing).await?.into_iter();
        for slot in found.iter_mut().filter(|user| user.is_none()) {
            *slot = read.next().flatten().map(|record| self.local.cache(record));
        }
        Ok(found)
    }

    /// Every account.
    pub async fn all(&self) -> Result<Vec<Arc<User>>, StoreError> {
        match &self.redis {
            None => Ok(self
                .local
                .by_id
                .read()
                .expect("lock")
                .values()
                .cloned()
                .collect()),
            Some(store) => Ok(store
                .all()
                .await?
                .into_iter()
                .map(|record| self.local.cache(record))
                .collect()),
        }
    }

    /// Checks a password, with throttling per client, per client and
    /// username, and per username (in this process). The argon2
    /// verification runs on a blocking thread.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: ClientKey,
    ) -> Result<LoginOutcome, StoreError> {
        let now = Instant::now();
        let pair = (client, username.to_owned());
        {
            let mut failures = self.failures.lock().expect("lock");
            let failures = &mut *failures;
            let throttled = [
                failures.pair.throttled(&pair, now),
                failures.client.throttled(&client, now),
                failures.account.throttled(&pair.1, now),
            ]
            .into_iter()
            .flatten()
            .max();
            if let Some(retry) = throttled {
                return Ok(LoginOutcome::Throttled(retry));
            }
        }
        let user = self.by_name(username).await?;
        // An unknown user, or one without a password, costs the same.
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|parsed| hasher.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .expect("the verification task does not panic");
        let mut failures = self.failures.lock().expect("lock");
        Ok(match user {
            Some(user) if ok && user.password_hash.is_some() => {
                failures.pair.clear(&pair);
                LoginOutcome::Ok(user)
            }
            _ => {
                failures.account.record(pair.1.clone(), now);
                failures.client.record(client, now);
                failures.pair.record(pair, now);
                LoginOutcome::Invalid
            }
        })
    }
}

/// The demo users: id, name, password.
const DEMO_USERS: [(Uuid, &str, &str); 2] = [
    (ALICE_ID, "alice", "wonderland"),
    (BOB_ID, "bob", "builder"),
];

/// Whether `username` is acceptable: 1 to 64 bytes.
pub fn valid_username(username: &str) -> bool {
    !username.is_empty() && username.len() <= 64
}

fn hash(hasher: &Argon2<'_>, password: &str) -> String {
    let salt =
        SaltString::encode_b64(&crate::random_bytes::<16>()).expect("16 bytes is a valid salt");
    hasher
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid params")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_hashed_and_checked() {
        let accounts = Accounts::new(true);
        let alice = accounts.by_name("alice").await.unwrap().unwrap();
        let stored = alice.password_hash.as_deref().unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains("wonderland"));
        let me = ClientKey::unknown();
        assert!(
            matches!(accounts.login("alice", "wonderland", me).await.unwrap(), LoginOutcome::Ok(u) if u.id == ALICE_ID)
        );
        assert!(
            matches!(accounts.login("bob", "builder", me).await.unwrap(), LoginOutcome::Ok(u) if u.id == BOB_ID)
        );
        assert!(matches!(
            accounts.login("alice", "nope", me).await.unwrap(),
            LoginOutcome::Invalid
        ));
        assert!(matches!(
            accounts.login("nobody", "nope", me).await.unwrap(),
            LoginOutcome::Invalid
        ));
    }

    fn client(n: u8) -> ClientKey {
        ClientKey::of(std::net::IpAddr::from([10, 0, 0, n]))
    }

    #[tokio::test]
    async fn five_failures_throttle_that_client_on_that_user_only() {
        let accounts = Accounts::new(true);
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                accounts.login("bob", "x", client(1)).await.unwrap(),
                LoginOutcome::Invalid
            ));
        }
        assert!(matches!(
            accounts.login("bob", "builder", client(1)).await.unwrap(),
            LoginOutcome::Throttled(_)
        ));
        assert!(matches!(
            accounts.login("bob", "builder", client(2)).await.unwrap(),
            LoginOutcome::Ok(_)
        ));
        assert!(matches!(
            accounts
                .login("alice", "wonderland", client(1))
                .await
                .unwrap(),
            LoginOutcome::Ok(_)
        ));
    }

    #[tokio::test]
    async fn one_client_cannot_try_many_accounts() {
        let accounts = Accounts::new(true);
        for i in 0..MAX_CLIENT_FAILURES {
            let name = format!("nobody-{i}");
            assert!(matches!(
                accounts.login(&name, "x", client(3)).await.unwrap(),
                LoginOutcome::Invalid
            ));
        }
        assert!(matches!(
            accounts
                .login("alice", "wonderland", client(3))
                .await
                .unwrap(),
            LoginOutcome::Throttled(_)
        ));
        assert!(matches!(
            accounts
                .login("alice", "wonderland", client(4))
                .await
                .unwrap(),
            LoginOutcome::Ok(_)
        ));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: std::net::IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), client(1));
    }
}
