//! Sessions: access tokens, rotating refresh tokens, revocation (logout) and
//! the admin "expire every token" switch.

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
    /// The new `refresh_token` cookie value (`<sid>.<secret>`).
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

/// The session store.
#[derive(Debug)]
pub struct Sessions {
    key: TokenKey,
    ttl: Duration,
    sessions: Mutex<HashMap<Uuid, Session>>,
    next_generation: AtomicU64,
    cutoffs: Mutex<Cutoffs>,
}

impl Sessions {
    /// A store signing with `key`, issuing access tokens valid for `ttl`.
    pub fn new(key: TokenKey, ttl: Duration) -> Self {
        Self {
            key,
            ttl,
            sessions: Mutex::default(),
            next_generation: AtomicU64::new(1),
            cutoffs: Mutex::default(),
        }
    }

    /// Lifetime of access tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn issue(&self, user_id: Uuid, sid: Uuid) -> (String, Claims) {
        let now_ms = crate::now_ms();
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let claims = Claims {
            sub: user_id,
            sid,
            iat: now_ms / 1000,
            // Round up so a token never lives shorter than the ttl.
            exp: (now_ms + ttl_ms + 999) / 1000,
            generation: self.next_generation.fetch_add(1, Ordering::SeqCst),
        };
        (self.key.sign(&claims), claims)
    }

    fn new_refresh(sid: Uuid) -> (String, [u8; 32]) {
        let secret = URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>());
        let hash = Sha256::digest(secret.as_bytes()).into();
        (format!("{sid}.{secret}"), hash)
    }

    /// Starts a session for a user who just logged in. Forgets sessions
    /// idle for longer than the refresh cookie lives, and the user's oldest
    /// session beyond [`MAX_SESSIONS_PER_USER`].
    pub fn login(&self, user_id: Uuid) -> Issued {
        let sid = Uuid::new_v4();
        let (refresh, refresh_hash) = Self::new_refresh(sid);
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
        drop(sessions);
        let (access_token, claims) = self.issue(user_id, sid);
        Issued {
            access_token,
            claims,
            refresh,
        }
    }

    /// Rotates a refresh cookie: the old value stops working. A value this
    /// session already rotated away from revokes the whole session
    /// ([`RefreshFailure::Reused`]).
    pub fn refresh(&self, cookie: &str) -> Result<Issued, RefreshFailure> {
        let (sid, presented) = parse_cookie(cookie).ok_or(RefreshFailure::Invalid)?;
        let (user_id, refresh) = {
            let mut sessions = self.sessions.lock().expect("lock");
            let session = sessions.get_mut(&sid).ok_or(RefreshFailure::Invalid)?;
            if !constant_time_eq(&session.refresh_hash, &presented) {
                if session
                    .rotated
                    .iter()
                    .any(|old| constant_time_eq(old, &presented))
                {
                    let user_id = session.user_id;
                    sessions.remove(&sid);
                    return Err(RefreshFailure::Reused {
                        user_id,
                        session_id: sid,
                    });
                }
                return Err(RefreshFailure::Invalid);
            }
            let (refresh, hash) = Self::new_refresh(sid);
            if session.rotated.len() == ROTATED_REMEMBERED {
                session.rotated.pop_front();
            }
            let old = std::mem::replace(&mut session.refresh_hash, hash);
            session.rotated.push_back(old);
            session.last_used = std::time::Instant::now();
            (session.user_id, refresh)
        };
        let (access_token, claims) = self.issue(user_id, sid);
        Ok(Issued {
            access_token,
            claims,
            refresh,
        })
    }

    /// The user whose current refresh cookie this is, without rotating it.
    pub fn refresh_owner(&self, cookie: &str) -> Option<Uuid> {
        let (sid, presented) = parse_cookie(cookie)?;
        let sessions = self.sessions.lock().expect("lock");
        let session = sessions.get(&sid)?;
        constant_time_eq(&session.refresh_hash, &presented).then_some(session.user_id)
    }

    /// Checks an access token: signature, expiry, admin expiry, revocation.
    pub fn authenticate(&self, token: &str) -> Result<Claims, AuthFailure> {
        let claims = self
            .key
            .verify(token, crate::now_ms(), false)
            .map_err(|e| match e {
                TokenError::Expired => AuthFailure::Expired,
                _ => AuthFailure::Invalid,
            })?;
        if self.is_force_expired(&claims) {
            return Err(AuthFailure::Expired);
        }
        let sessions = self.sessions.lock().expect("lock");
        match sessions.get(&claims.sid) {
            Some(s) if s.user_id == claims.sub => Ok(claims),
            _ => Err(AuthFailure::Revoked),
        }
    }

    /// The user of a correctly signed token, even an expired or revoked one.
    /// Only for choosing which fault switch applies to a handshake; never
    /// for authorising anything.
    pub fn token_owner(&self, token: &str) -> Option<Uuid> {
        self.key.verify(token, 0, true).ok().map(|c| c.sub)
    }

    /// Revokes every session of a user: their access tokens get `revoked`,
    /// their refresh cookies `invalid_refresh`.
    pub fn revoke_user(&self, user_id: Uuid) {
        self.sessions
            .lock()
            .expect("lock")
            .retain(|_, session| session.user_id != user_id);
    }

    /// Number of sessions held (all users).
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("lock").len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Expires every access token issued so far, of one user or of everyone.
    /// Refresh cookies stay valid.
    pub fn expire_tokens(&self, user: Option<Uuid>) {
        let cutoff = self.next_generation.load(Ordering::SeqCst);
        let mut cutoffs = self.cutoffs.lock().expect("lock");
        match user {
            None => cutoffs.everyone = cutoffs.everyone.max(cutoff),
            Some(user) => {
                let entry = cutoffs.per_user.entry(user).or_default();
                *entry = (*entry).max(cutoff);
            }
        }
    }

    fn is_force_expired(&self, claims: &Claims) -> bool {
        let cutoffs = self.cutoffs.lock().expect("lock");
        let user = cutoffs.per_user.get(&claims.sub).copied().unwrap_or(0);
        claims.generation < cutoffs.everyone.max(user)
    }
}

/// `<sid>.<secret>` → the session id and the SHA-256 of the secret.
fn parse_cookie(cookie: &str) -> Option<(Uuid, [u8; 32])> {
    let (sid, secret) = cookie.split_once('.')?;
    let sid = Uuid::parse_str(sid).ok()?;
    Some((sid, Sha256::digest(secret.as_bytes()).into()))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(TokenKey::random(), Duration::from_secs(60))
    }

    #[test]
    fn refresh_rotates() {
        let s = sessions();
        let user = Uuid::new_v4();
        let first = s.login(user);
        assert_eq!(s.authenticate(&first.access_token).unwrap().sub, user);
        let second = s.refresh(&first.refresh).unwrap();
        assert_eq!(second.claims.sid, first.claims.sid);
        let third = s.refresh(&second.refresh).unwrap();
        assert_eq!(s.refresh("garbage").err(), Some(RefreshFailure::Invalid));
        // Reusing a rotated cookie revokes the session: the newest cookie
        // and the session's access tokens stop working.
        assert_eq!(
            s.refresh(&first.refresh).err(),
            Some(RefreshFailure::Reused {
                user_id: user,
                session_id: first.claims.sid
            })
        );
        assert_eq!(
            s.refresh(&third.refresh).err(),
            Some(RefreshFailure::Invalid)
        );
        assert_eq!(
            s.authenticate(&third.access_token),
            Err(AuthFailure::Revoked)
        );
    }

    #[test]
    fn revoke_and_expire() {
        let s = sessions();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ta = s.login(a);
        let tb = s.login(b);
        s.expire_tokens(Some(a));
        assert_eq!(s.authenticate(&ta.access_token), Err(AuthFailure::Expired));
        assert!(s.authenticate(&tb.access_token).is_ok());
        let fresh = s.refresh(&ta.refresh).unwrap();
        assert!(s.authenticate(&fresh.access_token).is_ok());
        s.revoke_user(a);
        assert_eq!(
            s.authenticate(&fresh.access_token),
            Err(AuthFailure::Revoked)
        );
        assert!(s.refresh(&fresh.refresh).is_err());
        assert!(s.authenticate(&tb.access_token).is_ok());
        assert_eq!(s.authenticate("x.y.z"), Err(AuthFailure::Invalid));
    }
}
