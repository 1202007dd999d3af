//! User accounts: argon2-hashed passwords and login throttling.

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

/// Failed logins for one username within [`THROTTLE_WINDOW`] after which
/// further attempts get 429.
pub const MAX_FAILURES: usize = 5;
/// The window of [`MAX_FAILURES`].
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

/// One account.
#[derive(Debug)]
pub struct User {
    /// Stable id, the `sub` of its tokens.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    password_hash: String,
}

/// Why an account could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateUserError {
    /// The username is taken.
    #[error("the username is taken")]
    Exists,
    /// Empty username or password, or a username longer than 64 bytes.
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
    /// Too many failures for this username; retry after this long.
    Throttled(Duration),
}

/// The account store.
#[derive(Debug)]
pub struct Accounts {
    hasher: Argon2<'static>,
    by_name: RwLock<HashMap<String, Arc<User>>>,
    by_id: RwLock<HashMap<Uuid, Arc<User>>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Verified against when the username is unknown, so both cases cost the same.
    dummy_hash: String,
}

impl Accounts {
    /// A store with the demo users. `fast_hashing` picks tiny argon2 costs
    /// (for `--dev` and tests); passwords are hashed either way.
    pub fn new(fast_hashing: bool) -> Self {
        let params = if fast_hashing {
            Params::new(Params::MIN_M_COST.max(64), 1, 1, None).expect("valid argon2 params")
        } else {
            Params::default()
        };
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash(&hasher, "not a password");
        let accounts = Self {
            hasher,
            by_name: RwLock::default(),
            by_id: RwLock::default(),
            failures: Mutex::default(),
            dummy_hash,
        };
        accounts
            .insert(ALICE_ID, "alice", "wonderland")
            .expect("demo user");
        accounts
            .insert(BOB_ID, "bob", "builder")
            .expect("demo user");
        accounts
    }

    /// Creates an account with a random id.
    pub fn create(&self, username: &str, password: &str) -> Result<Arc<User>, CreateUserError> {
        self.insert(Uuid::new_v4(), username, password)
    }

    fn insert(
        &self,
        id: Uuid,
        username: &str,
        password: &str,
    ) -> Result<Arc<User>, CreateUserError> {
        if username.is_empty() || username.len() > 64 || password.is_empty() {
            return Err(CreateUserError::Invalid);
        }
        if self.by_name.read().expect("lock").contains_key(username) {
            return Err(CreateUserError::Exists);
        }
        let user = Arc::new(User {
            id,
            username: username.to_owned(),
            password_hash: hash(&self.hasher, password),
        });
        let mut by_name = self.by_name.write().expect("lock");
        if by_name.contains_key(username) {
            return Err(CreateUserError::Exists);
        }
        by_name.insert(user.username.clone(), user.clone());
        self.by_id.write().expect("lock").insert(id, user.clone());
        Ok(user)
    }

    /// The account with this name.
    pub fn by_name(&self, username: &str) -> Option<Arc<User>> {
        self.by_name.read().expect("lock").get(username).cloned()
    }

    /// The account with this id.
    pub fn by_id(&self, id: Uuid) -> Option<Arc<User>> {
        self.by_id.read().expect("lock").get(&id).cloned()
    }

    /// Every account.
    pub fn all(&self) -> Vec<Arc<User>> {
        self.by_id.read().expect("lock").values().cloned().collect()
    }

    /// Checks a password, with throttling. Blocking (argon2): call it from
    /// `spawn_blocking`.
    pub fn login(&self, username: &str, password: &str) -> LoginOutcome {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().expect("lock");
            if let Some(times) = failures.get_mut(username) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= THROTTLE_WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= MAX_FAILURES {
                    let oldest = *times.front().expect("non-empty");
                    return LoginOutcome::Throttled(THROTTLE_WINDOW - now.duration_since(oldest));
                }
            }
        }
        let user = self.by_name(username);
        let stored = user.as_ref().map_or(&self.dummy_hash, |u| &u.password_hash);
        let ok = PasswordHash::new(stored).is_ok_and(|parsed| {
            self.hasher
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        let mut failures = self.failures.lock().expect("lock");
        match user {
            Some(user) if ok => {
                failures.remove(username);
                LoginOutcome::Ok(user)
            }
            _ => {
                // Bound the map: forget idle usernames when it grows large.
                if failures.len() > 10_000 {
                    failures.retain(|_, t| {
                        t.back()
                            .is_some_and(|t| now.duration_since(*t) < THROTTLE_WINDOW)
                    });
                }
                failures
                    .entry(username.to_owned())
                    .or_default()
                    .push_back(now);
                LoginOutcome::Invalid
            }
        }
    }
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

    #[test]
    fn passwords_are_hashed_and_checked() {
        let accounts = Accounts::new(true);
        let alice = accounts.by_name("alice").unwrap();
        assert!(alice.password_hash.starts_with("$argon2id$"));
        assert!(!alice.password_hash.contains("wonderland"));
        assert!(
            matches!(accounts.login("alice", "wonderland"), LoginOutcome::Ok(u) if u.id == ALICE_ID)
        );
        assert!(matches!(accounts.login("bob", "builder"), LoginOutcome::Ok(u) if u.id == BOB_ID));
        assert!(matches!(
            accounts.login("alice", "nope"),
            LoginOutcome::Invalid
        ));
        assert!(matches!(
            accounts.login("nobody", "nope"),
            LoginOutcome::Invalid
        ));
    }

    #[test]
    fn five_failures_throttle() {
        let accounts = Accounts::new(true);
        for _ in 0..MAX_FAILURES {
            assert!(matches!(accounts.login("bob", "x"), LoginOutcome::Invalid));
        }
        assert!(matches!(
            accounts.login("bob", "builder"),
            LoginOutcome::Throttled(_)
        ));
        assert!(matches!(
            accounts.login("alice", "wonderland"),
            LoginOutcome::Ok(_)
        ));
    }
}
