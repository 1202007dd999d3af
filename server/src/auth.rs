//! Sessions: access tokens, rotating refresh tokens, revocation (logout) and
//! the admin "expire every token" switch.
//!
//! The refresh cookie is `<user id>.<session id>.<secret>` (the user id
//! names the Redis slot of the session). With Redis
//! ([`crate::redis::sessions`]) every instance sees every session; the
//! instances must share `--jwt-secret` to accept each other's tokens.

use crate::redis::StoreError;
use crate::redis::sessions::{RedisSessions, Rotation};
use crate::tokens::{Claims, TokenError, TokenKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tether_protocol::AuthErrorCode;
use uuid::Uuid;

/// Why an access token was refused; maps onto the `auth_error` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// Bad shape or signature.
    #[error("the token is invalid")]
    Invalid,
    /// `exp` has passed, or an admin expired it.
    #[error("the token has expired")]
    Expired,
    /// Its session was revoked (logout) or is unknown to this server.
    #[error("the session was revoked")]
    Revoked,
}

impl AuthFailure {
    /// The `auth_error` code.
    pub fn code(self) -> AuthErrorCode {
        match self {
            Self::Invalid => AuthErrorCode::InvalidToken,
            Self::Expired => AuthErrorCode::ExpiredToken,
            Self::Revoked => AuthErrorCode::Revoked,
        }
    }
}

/// A freshly issued access token and the refresh cookie value that goes with it.
#[derive(Debug)]
pub struct Issued {
    /// The signed access token.
    pub access_token: String,
    /// Its claims.
    pub claims: Claims,
    /// The new `refresh_token` cookie value (`<user>.<sid>.<secret>`).
    pub refresh: String,
}

/// Why a refresh cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshFailure {
    /// Unknown, malformed, expired or revoked.
    #[error("the refresh token is invalid")]
    Invalid,
    /// A secret this session already rotated away from was presented again:
    /// it was copied (RFC 9700 section 4.14.2). The whole session has been
    /// revoked; close its sockets.
    #[error("a rotated refresh token was reused; the session is revoked")]
    Reused {
        /// The user of the revoked session.
        user_id: Uuid,
        /// The revoked session.
        session_id: Uuid,
    },
}

/// Rotated-away refresh secrets remembered per session (to detect reuse):
/// one refresh every 5 minutes for the cookie's 7 days is 2,016.
pub const ROTATED_REMEMBERED: usize = 2_048;

/// Sessions per user; logging in again evicts the oldest.
pub const MAX_SESSIONS_PER_USER: usize = 100;

#[derive(Debug)]
struct Session {
    user_id: Uuid,
    /// SHA-256 of the current refresh secret.
    refresh_hash: [u8; 32],
    /// SHA-256 of the secrets it replaced, oldest first.
    rotated: std::collections::VecDeque<[u8; 32]>,
    /// Login or last refresh; a session idle for the cookie's lifetime is
    /// forgotten.
    last_used: std::time::Instant,
    created: std::time::Instant,
}

#[derive(Debug, Default)]
struct Cutoffs {
    everyone: u64,
    per_user: HashMap<Uuid, u64>,
}

/// The session store: tokens are signed here, the session records live in
/// memory (the default) or on Redis ([`crate::redis::sessions`]).
#[derive(Debug)]
pub struct Sessions {
    key: TokenKey,
    ttl: Duration,
    store: SessionStore,
}

#[derive(Debug)]
enum SessionStore {
    Memory(MemorySessions),
    Redis(RedisSessions),
}

#[derive(Debug)]
struct MemorySessions {
    sessions: Mutex<HashMap<Uuid, Session>>,
    next_generation: AtomicU64,
    cutoffs: Mutex<Cutoffs>,
}

impl Sessions {
    /// An in-memory store signing with `key`, issuing access tokens valid
    /// for `ttl`.
    pub fn new(key: TokenKey, ttl: Duration) -> Self {
        Self {
            key,
            ttl,
            store: SessionStore::Memory(MemorySessions {
                sessions: Mutex::default(),
                next_generation: AtomicU64::new(1),
                cutoffs: Mutex::default(),
            }),
        }
    }

    /// A store whose records are on Redis (every instance signing with
    /// the same `key` sees the same sessions).
    pub fn redis(key: TokenKey, ttl: Duration, redis: crate::redis::Redis) -> Self {
        Self {
            key,
            ttl,
            store: SessionStore::Redis(RedisSessions::new(redis)),
        }
    }

    /// Lifetime of access tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    async fn issue(&self, user_id: Uuid, sid: Uuid) -> Result<(String, Claims), StoreError> {
        let generation = match &self.store {
            SessionStore::Memory(m) => m.next_generation.fetch_add(1, Ordering::SeqCst),
            SessionStore::Redis(r) => r.next_generation().await?,
        };
        let now_ms = crate::now_ms();
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let claims = Claims {
            sub: user_id,
            sid,
            iat: now_ms / 1000,
            // Round up so a token never lives shorter than the ttl.
            exp: (now_ms + ttl_ms + 999) / 1000,
            generation,
        };
        Ok((self.key.sign(&claims), claims))
    }

    fn new_refresh(user_id: Uuid, sid: Uuid) -> (String, [u8; 32]) {
        let secret = URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>());
        let hash = Sha256::digest(secret.as_bytes()).into();
        (format!("{user_id}.{sid}.{secret}"), hash)
    }

    /// Starts a session for a user who just logged in. Forgets sessions
    /// idle for longer than the refresh cookie lives, and the user's oldest
    /// session beyond [`MAX_SESSIONS_PER_USER`].
    pub async fn login(&self, user_id: Uuid) -> Result<Issued, StoreError> {
        let sid = Uuid::new_v4();
        let (refresh, refresh_hash) = Self::new_refresh(user_id, sid);
        match &self.store {
            SessionStore::Memory(m) => m.login(user_id, sid, refresh_hash),
            SessionStore::Redis(r) => {
                r.login(
                    user_id,
                    sid,
                    &hex(&refresh_hash),
                    crate::now_ms(),
                    crate::http_api::REFRESH_MAX_AGE_SECS,
                )
                .await?;
            }
        }
        let (access_token, claims) = self.issue(user_id, sid).await?;
        Ok(Issued {
            access_token,
            claims,
            refresh,
        })
    }

    /// Rotates a refresh cookie: the old value stops working. A value this
    /// session already rotated away from revokes the whole session
    /// ([`RefreshFailure::Reused`]).
    pub async fn refresh(
        &self,
        cookie: &str,
    ) -> Result<Result<Issued, RefreshFailure>, StoreError> {
        let Some((user_id, sid, presented)) = parse_cookie(cookie) else {
            return Ok(Err(RefreshFailure::Invalid));
        };
        let (refresh, hash) = Self::new_refresh(user_id, sid);
        let rotation = match &self.store {
            SessionStore::Memory(m) => m.refresh(user_id, sid, &presented, hash),
            SessionStore::Redis(r) => {
                r.refresh(
                    user_id,
                    sid,
                    &hex(&presented),
                    &hex(&hash),
                    crate::http_api::REFRESH_MAX_AGE_SECS,
                )
                .await?
            }
        };
        match rotation {
            Rotation::Rotated => {}
            Rotation::Reused => {
                return Ok(Err(RefreshFailure::Reused {
                    user_id,
                    session_id: sid,
                }));
            }
            Rotation::Invalid => return Ok(Err(RefreshFailure::Invalid)),
        }
        let (access_token, claims) = self.issue(user_id, sid).await?;
        Ok(Ok(Issued {
            access_token,
            claims,
            refresh,
        }))
    }

    /// The user whose current refresh cookie this is, without rotating it.
    pub async fn refresh_owner(&self, cookie: &str) -> Result<Option<Uuid>, StoreError> {
        let Some((user_id, sid, presented)) = parse_cookie(cookie) else {
            return Ok(None);
        };
        let current = match &self.store {
            SessionStore::Memory(m) => {
                let sessions = m.sessions.lock().expect("lock");
                sessions
                    .get(&sid)
                    .filter(|s| s.user_id == user_id)
                    .map(|s| s.refresh_hash)
            }
            SessionStore::Redis(r) => r.current(user_id, sid).await?.and_then(|h| unhex(&h)),
        };
        Ok(current
            .is_some_and(|current| constant_time_eq(&current, &presented))
            .then_some(user_id))
    }

    /// Checks an access token: signature, expiry, admin expiry, revocation
    /// (its session exists and belongs to its `sub`).
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Result<Claims, AuthFailure>, StoreError> {
        let claims = match self.key.verify(token, crate::now_ms(), false) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Ok(Err(AuthFailure::Expired)),
            Err(_) => return Ok(Err(AuthFailure::Invalid)),
        };
        let (exists, cutoff) = match &self.store {
            SessionStore::Memory(m) => {
                let cutoff = {
                    let cutoffs = m.cutoffs.lock().expect("lock");
                    let user = cutoffs.per_user.get(&claims.sub).copied().unwrap_or(0);
                    cutoffs.everyone.max(user)
                };
                let sessions = m.sessions.lock().expect("lock");
                let exists = sessions
                    .get(&claims.sid)
                    .is_some_and(|s| s.user_id == claims.sub);
                (exists, cutoff)
            }
            SessionStore::Redis(r) => {
                let check = r.check(claims.sub, claims.sid).await?;
                (check.exists, check.cutoff)
            }
        };
        Ok(if claims.generation < cutoff {
            Err(AuthFailure::Expired)
        } else if !exists {
            Err(AuthFailure::Revoked)
        } else {
            Ok(claims)
        })
    }

    /// The user of a correctly signed token, even an expired or revoked one.
    /// Only for choosing which fault switch applies to a handshake; never
    /// for authorising anything.
    pub fn token_owner(&self, token: &str) -> Option<Uuid> {
        self.key.verify(token, 0, true).ok().map(|c| c.sub)
    }

    /// Revokes every session of a user: their access tokens get `revoked`,
    /// their refresh cookies `invalid_refresh`. (Closing their sockets is
    /// the caller's: [`crate::redis::control::announce`].)
    pub async fn revoke_user(&self, user_id: Uuid) -> Result<(), StoreError> {
        match &self.store {
            SessionStore::Memory(m) => m
                .sessions
                .lock()
                .expect("lock")
                .retain(|_, session| session.user_id != user_id),
            SessionStore::Redis(r) => {
                r.revoke_user(user_id).await?;
            }
        }
        Ok(())
    }

    /// Expires every access token issued so far, of one user or of everyone
    /// (on every instance with Redis). Refresh cookies stay valid.
    pub async fn expire_tokens(&self, user: Option<Uuid>) -> Result<(), StoreError> {
        match &self.store {
            SessionStore::Memory(m) => {
                let cutoff = m.next_generation.load(Ordering::SeqCst);
                let mut cutoffs = m.cutoffs.lock().expect("lock");
                match user {
                    None => cutoffs.everyone = cutoffs.everyone.max(cutoff),
                    Some(user) => {
                        let entry = cutoffs.per_user.entry(user).or_default();
                        *entry = (*entry).max(cutoff);
                    }
                }
                Ok(())
            }
            SessionStore::Redis(r) => r.expire_tokens(user).await,
        }
    }
}

impl MemorySessions {
    fn login(&self, user_id: Uuid, sid: Uuid, refresh_hash: [u8; 32]) {
        let now = std::time::Instant::now();
        let idle = Duration::from_secs(crate::http_api::REFRESH_MAX_AGE_SECS);
        let mut sessions = self.sessions.lock().expect("lock");
        sessions.retain(|_, s| now.duration_since(s.last_used) < idle);
        let mut mine: Vec<_> = sessions
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(id, s)| (s.created, *id))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_USER {
            mine.sort();
            for (_, id) in &mine[..=mine.len() - MAX_SESSIONS_PER_USER] {
                sessions.remove(id);
            }
        }
        sessions.insert(
            sid,
            Session {
                user_id,
                refresh_hash,
                rotated: std::collections::VecDeque::new(),
                last_used: now,
                created: now,
            },
        );
    }

    fn refresh(&self, user_id: Uuid, sid: Uuid, presented: &[u8; 32], hash: [u8; 32]) -> Rotation {
        let mut sessions = self.sessions.lock().expect("lock");
        let Some(session) = sessions.get_mut(&sid).filter(|s| s.user_id == user_id) else {
            return Rotation::Invalid;
        };
        if !constant_time_eq(&session.refresh_hash, presented) {
            if session
                .rotated
                .iter()
                .any(|old| constant_time_eq(old, presented))
            {
                sessions.remove(&sid);
                return Rotation::Reused;
            }
            return Rotation::Invalid;
        }
        if session.rotated.len() == ROTATED_REMEMBERED {
            session.rotated.pop_front();
        }
        let old = std::mem::replace(&mut session.refresh_hash, hash);
        session.rotated.push_back(old);
        session.last_used = std::time::Instant::now();
        Rotation::Rotated
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `<user>.<sid>.<secret>` → the user, the session id and the SHA-256 of
/// the secret.
fn parse_cookie(cookie: &str) -> Option<(Uuid, Uuid, [u8; 32])> {
    let (user, rest) = cookie.split_once('.')?;
    let (sid, secret) = rest.split_once('.')?;
    let user = Uuid::parse_str(user).ok()?;
    let sid = Uuid::parse_str(sid).ok()?;
    Some((user, sid, Sha256::digest(secret.as_bytes()).into()))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
