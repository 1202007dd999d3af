//! Client `send` frames (and the ids of topic `publish`es, in a list of
//! their own with the same window): each id applied at most once per user, bodies kept
//! as the exact JSON text that arrived, and bounds on what one user can make
//! the server hold.
//!
//! Bounds per user (README "Server limits"):
//! - an id is at most [`MAX_ID_BYTES`];
//! - applied ids are remembered for at least [`tether_protocol::DEDUP_WINDOW`]
//!   (24 h) and at least the last [`tether_protocol::DEDUP_WINDOW_IDS`]
//!   (10,000), as 16-byte digests, and at most [`MAX_REMEMBERED_IDS`]: a
//!   user who has sent that many within 24 h gets `nack` `rate_limited` until
//!   the oldest ones age out;
//! - of the applied messages themselves (what `/api/admin/received` shows)
//!   only the newest [`KEPT_BYTES`] (id + body) are kept.
//!
//! On Redis ([`crate::redis::dedup`]) the ids are shared by every instance
//! and survive a restart; each is remembered for exactly the 24 h window
//! (`SET NX EX`), and the bound counts the ids of a 24 h window that
//! starts with its first id (a fixed window, where memory's slides).

use crate::redis::StoreError;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tether_protocol::{DEDUP_WINDOW, DEDUP_WINDOW_IDS};
use uuid::Uuid;

/// Longest `send` id, in bytes (a UUID is 36).
pub const MAX_ID_BYTES: usize = 128;

/// Most ids remembered per user; beyond it (all younger than 24 h) new
/// sends get `nack` `rate_limited`. About 64 bytes each.
pub const MAX_REMEMBERED_IDS: usize = 100_000;

/// Bytes of applied messages (id + body) kept per user for inspection.
pub const KEPT_BYTES: usize = 1024 * 1024;

/// One applied `send` (on Redis stored as this JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The client-chosen id.
    pub id: String,
    /// The body, exactly the JSON text that arrived.
    pub body: Box<RawValue>,
    /// When it was applied, RFC 3339.
    pub received_at: String,
}

impl Applied {
    fn bytes(&self) -> usize {
        self.id.len() + self.body.get().len() + self.received_at.len()
    }
}

/// What [`Inbox::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applying {
    /// Applied now: ack.
    Applied,
    /// Applied before (within the window): ack again, not re-applied.
    Duplicate,
    /// The user has [`MAX_REMEMBERED_IDS`] ids younger than the window:
    /// `nack` `rate_limited`, the client resends later.
    Full,
}

type Digest16 = [u8; 16];

fn digest(id: &str) -> Digest16 {
    let full = Sha256::digest(id.as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Ids remembered within the window, with a value each.
#[derive(Debug)]
struct Remembered<V> {
    ids: HashMap<Digest16, V>,
    order: VecDeque<(Digest16, Instant)>,
}

impl<V> Default for Remembered<V> {
    fn default() -> Self {
        Self {
            ids: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> Remembered<V> {
    /// Forgets ids that are both older than the window and beyond the last
    /// `DEDUP_WINDOW_IDS`.
    fn forget_old(&mut self, now: Instant, window: Duration) {
        while self.order.len() > DEDUP_WINDOW_IDS
            && self
                .order
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) >= window)
        {
            if let Some((old, _)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Remembers a new id; `false` when [`MAX_REMEMBERED_IDS`] younger than
    /// the window are remembered already.
    fn insert(&mut self, key: Digest16, value: V, now: Instant, window: Duration) -> bool {
        self.forget_old(now, window);
        if self.order.len() >= MAX_REMEMBERED_IDS {
            return false;
        }
        self.ids.insert(key, value);
        self.order.push_back((key, now));
        true
    }
}

/// A publish id's state.
#[derive(Debug, Clone)]
enum PublishState {
    /// Being applied (under its topic's lock) right now.
    InFlight,
    /// Applied at this offset of this topic (the name shared with the
    /// topic's hub entry).
    Done {
        topic: std::sync::Arc<str>,
        offset: u64,
    },
}

#[derive(Debug, Default)]
struct Received {
    sends: Remembered<()>,
    publishes: Remembered<PublishState>,
    kept: VecDeque<Applied>,
    kept_bytes: usize,
    total: u64,
}

/// What [`Inbox::claim_publish`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// A new id, now claimed: apply it, then [`Inbox::settle_publish`].
    New,
    /// Applied before: ack again with this topic and offset.
    Duplicate {
        /// The topic it was applied to.
        topic: String,
        /// Its offset there.
        offset: u64,
    },
    /// Being applied on another topic right now (the same id sent twice
    /// at once): `nack rate_limited`, the client resends.
    InFlight,
    /// Too many ids within the window: `nack rate_limited`.
    Full,
}

/// Per-user received lists: applied `send` ids and bodies, and publish
/// ids. In memory (the default), or on Redis (shared by every instance,
/// surviving a restart: see [`crate::redis::dedup`]).
#[derive(Debug)]
pub struct Inbox(InboxStore);

#[derive(Debug)]
enum InboxStore {
    Memory(MemoryInbox),
    Redis(crate::redis::dedup::RedisInbox),
}

impl Default for Inbox {
    fn default() -> Self {
        Self::with_window(DEDUP_WINDOW)
    }
}

impl Inbox {
    /// An in-memory inbox that remembers ids for `window` (and at least the
    /// last 10,000); the contract's is 24 h, shorter ones are for tests.
    pub fn with_window(window: Duration) -> Self {
        Self(InboxStore::Memory(MemoryInbox::with_window(window)))
    }

    /// An inbox on Redis: ids are remembered for [`DEDUP_WINDOW`].
    pub fn redis(redis: crate::redis::Redis) -> Self {
        Self(InboxStore::Redis(crate::redis::dedup::RedisInbox::new(
            redis,
            DEDUP_WINDOW,
        )))
    }

    /// Applies a `send` unless its id was seen. `id` must be at most
    /// [`MAX_ID_BYTES`] (the socket refuses longer ones before this).
    pub async fn apply(
        &self,
        user: Uuid,
        id: &str,
        body: Box<RawValue>,
    ) -> Result<Applying, StoreError> {
        match &self.0 {
            InboxStore::Memory(memory) => Ok(memory.apply(user, id, body)),
            InboxStore::Redis(redis) => {
                redis.apply(user, &digest_hex(id), &applied(id, body)).await
            }
        }
    }

    /// Claims a publish id of `user` (ids are remembered like `send` ids,
    /// in their own list of the same window and bounds). [`Claim::New`]
    /// means the caller owns the id now: apply the publish, then
    /// [`Inbox::settle_publish`]. On Redis a claim that is not settled
    /// within [`crate::redis::dedup::CLAIM_TTL`] (the instance died) lapses,
    /// and the id can be claimed again.
    pub async fn claim_publish(&self, user: Uuid, id: &str) -> Result<Claim, StoreError> {
        match &self.0 {
            InboxStore::Memory(memory) => Ok(memory.claim_publish(user, id)),
            InboxStore::Redis(redis) => redis.claim_publish(user, &digest_hex(id)).await,
        }
    }

    /// Records where a claimed publish id was applied: a later claim of it
    /// is answered [`Claim::Duplicate`] for the window.
    pub async fn settle_publish(
        &self,
        user: Uuid,
        id: &str,
        topic: std::sync::Arc<str>,
        offset: u64,
    ) -> Result<(), StoreError> {
        match &self.0 {
            InboxStore::Memory(memory) => {
                memory.settle_publish(user, id, topic, offset);
                Ok(())
            }
            InboxStore::Redis(redis) => {
                redis
                    .settle_publish(user, &digest_hex(id), &topic, offset)
                    .await
            }
        }
    }

    /// Forgets a claimed publish id that could not be applied (the store
    /// was unavailable): the client's resend is applied then. An id
    /// already settled is kept.
    pub async fn release_publish(&self, user: Uuid, id: &str) -> Result<(), StoreError> {
        match &self.0 {
            InboxStore::Memory(memory) => {
                memory.release_publish(user, id);
                Ok(())
            }
            InboxStore::Redis(redis) => redis.release_publish(user, &digest_hex(id)).await,
        }
    }

    /// The user's kept applied items (oldest first) and the total count.
    pub async fn applied(&self, user: Uuid) -> Result<(u64, Vec<Applied>), StoreError> {
        match &self.0 {
            InboxStore::Memory(memory) => Ok(memory.applied(user)),
            InboxStore::Redis(redis) => redis.applied(user).await,
        }
    }

    /// Bytes this process holds for `user`: kept items plus remembered id
    /// digests (an estimate of the heap, for the bounds' tests). 0 on
    /// Redis, where nothing is held in the process.
    pub fn held_bytes(&self, user: Uuid) -> usize {
        match &self.0 {
            InboxStore::Memory(memory) => memory.held_bytes(user),
            InboxStore::Redis(_) => 0,
        }
    }
}

fn applied(id: &str, body: Box<RawValue>) -> Applied {
    Applied {
        id: id.to_owned(),
        body,
        received_at: tether_protocol::time::format_rfc3339(crate::now_ms()),
    }
}

/// The id's 16-byte digest in hex (32 characters): its Redis key part.
fn digest_hex(id: &str) -> String {
    digest(id).iter().map(|b| format!("{b:02x}")).collect()
}

/// Per-user received lists, in this process.
#[derive(Debug)]
struct MemoryInbox {
    users: Mutex<HashMap<Uuid, Received>>,
    window: Duration,
}

impl MemoryInbox {
    fn with_window(window: Duration) -> Self {
        Self {
            users: Mutex::default(),
            window,
        }
    }

    /// Applies a `send` unless its id was seen. `id` must be at most
    /// [`MAX_ID_BYTES`] (the socket refuses longer ones before this).
    fn apply(&self, user: Uuid, id: &str, body: Box<RawValue>) -> Applying {
        let now = Instant::now();
        let key = digest(id);
        let mut users = self.users.lock().expect("lock");
        let received = users.entry(user).or_default();
        if received.sends.ids.contains_key(&key) {
            return Applying::Duplicate;
        }
        if !received.sends.insert(key, (), now, self.window) {
            return Applying::Full;
        }
        let applied = applied(id, body);
        received.kept_bytes += applied.bytes();
        received.kept.push_back(applied);
        while received.kept_bytes > KEPT_BYTES {
            match received.kept.pop_front() {
                Some(old) => received.kept_bytes -= old.bytes(),
                None => break,
            }
        }
        received.total += 1;
        Applying::Applied
    }

    /// Claims a publish id of `user` (ids are remembered like `send` ids,
    /// in their own list of the same window and bounds).
    fn claim_publish(&self, user: Uuid, id: &str) -> Claim {
        let now = Instant::now();
        let key = digest(id);
        let mut users = self.users.lock().expect("lock");
        let received = users.entry(user).or_default();
        match received.publishes.ids.get(&key) {
            Some(PublishState::InFlight) => return Claim::InFlight,
            Some(PublishState::Done { topic, offset }) => {
                return Claim::Duplicate {
                    topic: topic.to_string(),
                    offset: *offset,
                };
            }
            None => {}
        }
        if received
            .publishes
            .insert(key, PublishState::InFlight, now, self.window)
        {
            Claim::New
        } else {
            Claim::Full
        }
    }

    fn release_publish(&self, user: Uuid, id: &str) {
        let key = digest(id);
        let mut users = self.users.lock().expect("lock");
        if let Some(received) = users.get_mut(&user)
            && matches!(
                received.publishes.ids.get(&key),
                Some(PublishState::InFlight)
            )
        {
            received.publishes.ids.remove(&key);
            received.publishes.order.retain(|(k, _)| *k != key);
        }
    }

    /// Records where a claimed publish id was applied.
    fn settle_publish(&self, user: Uuid, id: &str, topic: std::sync::Arc<str>, offset: u64) {
        let key = digest(id);
        let mut users = self.users.lock().expect("lock");
        if let Some(state) = users
            .get_mut(&user)
            .and_then(|r| r.publishes.ids.get_mut(&key))
        {
            *state = PublishState::Done { topic, offset };
        }
    }

    /// The user's kept applied items (oldest first) and the total count.
    fn applied(&self, user: Uuid) -> (u64, Vec<Applied>) {
        self.users
            .lock()
            .expect("lock")
            .get(&user)
            .map(|r| (r.total, r.kept.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Bytes held for `user`: kept items plus remembered id digests
    /// (an estimate of the heap, for the bounds' tests).
    fn held_bytes(&self, user: Uuid) -> usize {
        self.users.lock().expect("lock").get(&user).map_or(0, |r| {
            r.kept_bytes
                + r.sends.order.len() * (2 * size_of::<Digest16>() + size_of::<Instant>())
                + r.publishes.order.len() * (2 * size_of::<Digest16>() + size_of::<Instant>() + 64)
        })
    }
}

/// Why a `send` body is refused (`nack` `malformed_body`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// An integer outside -2^63 ..= 2^64-1.
    #[error("the integer {0} is outside -2^63 to 2^64-1 and cannot be kept exactly")]
    IntegerOutOfRange(String),
    /// A number with a fraction or exponent that a double does not hold as
    /// written (overflow, underflow, or more digits than it keeps).
    #[error("the number {0} is not exactly representable as a 64-bit float")]
    InexactNumber(String),
}

/// Checks the contract's rule for `send` bodies: every number in the JSON
/// text `body` must be one the server (and any client reading it back)
/// keeps exactly:
/// - an integer written without fraction or exponent must lie in
///   -2^63 ..= 2^64-1 (what i64 / u64 hold);
/// - any other number must read as a finite 64-bit float whose shortest
///   decimal form has the same value as the text: `0.1`, `1.5e300`, `-0.0`
///   pass; `1e400` (overflow), `1e-400` (underflow to 0),
///   `18446744073709551617.0` and `3.14159265358979323846` (more digits than
///   a double keeps) are refused.
///
/// `body` must already be valid JSON (serde_json checked it). Numbers shown
/// in the error are cut to 40 characters.
pub fn check_numbers(body: &str) -> Result<(), BodyError> {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                check_number(&body[start..i])?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn shown(number: &str) -> String {
    if number.len() > 40 {
        format!("{}…", &number[..40])
    } else {
        number.to_owned()
    }
}

fn check_number(number: &str) -> Result<(), BodyError> {
    let is_integer = !number.contains(['.', 'e', 'E']);
    if is_integer {
        return if number.parse::<i64>().is_ok() || number.parse::<u64>().is_ok() {
            Ok(())
        } else {
            Err(BodyError::IntegerOutOfRange(shown(number)))
        };
    }
    let inexact = || BodyError::InexactNumber(shown(number));
    let value: f64 = number.parse().map_err(|_| inexact())?;
    if !value.is_finite() {
        return Err(inexact());
    }
    let written = decimal(number).ok_or_else(inexact)?;
    let stored = decimal(&format!("{value:e}")).ok_or_else(inexact)?;
    if written == stored {
        Ok(())
    } else {
        Err(inexact())
    }
}

/// A decimal number as (negative, significant digits without leading or
/// trailing zeros, exponent of the first digit); zero has no digits and
/// exponent 0. `None` if the exponent does not fit an i64.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = format!("{int}{frac}");
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0').to_owned();
    if digits.is_empty() {
        return Some((negative, digits, 0));
    }
    let exponent: i64 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .ok()?;
    // Value = 0.<all> × 10^(int.len() + exponent); the first significant
    // digit sits `leading` places further right.
    let int_len = i64::try_from(int.len()).ok()?;
    let leading = i64::try_from(leading).ok()?;
    Some((
        negative,
        digits,
        exponent.checked_add(int_len)?.checked_sub(leading)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn publish_ids_past_the_bound_within_the_window_are_refused() {
        let inbox = Inbox::default();
        let user = Uuid::new_v4();
        for i in 0..MAX_REMEMBERED_IDS {
            let id = i.to_string();
            assert_eq!(inbox.claim_publish(user, &id).await.unwrap(), Claim::New);
            inbox
                .settle_publish(user, &id, "room:1".into(), i as u64 + 1)
                .await
                .unwrap();
        }
        // `nack rate_limited`; the ones remembered are still answered.
        assert_eq!(inbox.claim_publish(user, "new").await.unwrap(), Claim::Full);
        assert_eq!(
            inbox.claim_publish(user, "0").await.unwrap(),
            Claim::Duplicate {
                topic: "room:1".into(),
                offset: 1
            }
        );
    }

    #[tokio::test]
    async fn ids_are_remembered_for_the_window_and_the_last_10000() {
        let inbox = Inbox::with_window(Duration::ZERO);
        let user = Uuid::new_v4();
        for i in 0..=DEDUP_WINDOW_IDS {
            assert_eq!(
                inbox.apply(user, &i.to_string(), raw("0")).await.unwrap(),
                Applying::Applied
            );
        }
        // With a zero window only the count keeps ids: the last 10,000.
        assert_eq!(
            inbox.apply(user, "1", raw("0")).await.unwrap(),
            Applying::Duplicate
        );
        assert_eq!(
            inbox.apply(user, "x", raw("0")).await.unwrap(),
            Applying::Applied
        );
        assert_eq!(
            inbox.apply(user, "0", raw("0")).await.unwrap(),
            Applying::Applied
        );
        // With the real window, ids younger than 24 h are all kept.
        let inbox = Inbox::default();
        for i in 0..=DEDUP_WINDOW_IDS + 5 {
            inbox.apply(user, &i.to_string(), raw("0")).await.unwrap();
        }
        assert_eq!(
            inbox.apply(user, "0", raw("0")).await.unwrap(),
            Applying::Duplicate
        );
    }

    #[test]
    fn numbers_are_taken_only_when_exact() {
        for ok in [
            "0",
            "-0",
            "1",
            "-9223372036854775808",
            "18446744073709551615",
            "0.1",
            "1.5",
            "1e2",
            "1.5e300",
            "-0.0",
            "0e999999999999999999999",
            "5e-324",
            "1.7976931348623157e308",
            r#"{"a":[1,2.5,"1e400 in a string \" 1e400"],"b":null}"#,
            r#""\\" "#,
        ] {
            assert_eq!(check_numbers(ok), Ok(()), "{ok}");
        }
        for bad in [
            "1e400",
            "-1e400",
            "1e-400",
            "18446744073709551616",
            "-9223372036854775809",
            "18446744073709551617.0",
            "3.14159265358979323846",
            "[1, 2, 1e999]",
        ] {
            assert!(check_numbers(bad).is_err(), "{bad}");
        }
        let long = "9".repeat(400);
        assert!(matches!(
            check_numbers(&long),
            Err(BodyError::IntegerOutOfRange(shown)) if shown.chars().count() == 41
        ));
    }
}
