//! Logs on Redis: the history of one user's notifications or of one topic.
//!
//! A log of hash tag `{x}` (`{u:<user>}` or `{t:<topic>}`) is two keys and
//! one channel:
//! - `<prefix>{x}:meta`, a hash: `epoch` (random hex, new when the log was
//!   lost) and `top` (the latest offset, 0 when nothing was appended);
//! - `<prefix>{x}:log`, a stream whose entry `<offset>-1` holds the encoded
//!   frame in field `f`, trimmed to the retention (`MAXLEN`, exact);
//! - `<prefix>{x}:live`, the pub/sub channel of what is appended
//!   (`m <epoch> <offset> <frame>`), of resets (`r <epoch>`, or
//!   `d <epoch>` when sockets are to be dropped instead of told) and, for
//!   topics, of presence (`p ...`, see [`super::presence`]).
//!
//! Each operation is one Lua script on the keys of one hash tag: an append
//! takes the next offset, adds and trims the entry and publishes it
//! atomically; a missing meta hash (Redis lost the data) gets a new epoch
//! from whichever script finds it missing first.

use super::{Redis, StoreError};
use axum::extract::ws::Utf8Bytes;
use std::sync::LazyLock;

/// The keys and channel of one log, and how many entries it keeps.
#[derive(Debug, Clone)]
pub struct LogKeys {
    /// The meta hash (`epoch`, `top`).
    pub meta: String,
    /// The stream of frames.
    pub log: String,
    /// The pub/sub channel.
    pub channel: String,
    /// Entries kept (at least 1).
    pub retention: usize,
    /// Where a log made anew starts.
    pub start: Start,
}

/// Where a log that the store does not have starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At offset 0 in a new epoch (a topic: the epoch tells clients).
    Zero,
    /// At [`Redis::feed_floor`] (a notification feed: the wire has no
    /// epoch for it, so seqs must stay above those issued before a loss).
    FeedFloor,
}

impl Start {
    /// The scripts' floor argument of a first try: `0` for a topic, `-`
    /// (answer "missing" instead of making it) for a feed.
    fn first_try(self) -> &'static str {
        match self {
            Self::Zero => "0",
            Self::FeedFloor => "-",
        }
    }
}

impl Redis {
    /// The log of `user`'s notifications.
    pub fn feed_log(&self, user: uuid::Uuid, retention: usize) -> LogKeys {
        LogKeys {
            meta: self.user_key(user, "meta"),
            log: self.user_key(user, "log"),
            channel: self.user_key(user, "live"),
            retention: retention.max(1),
            start: Start::FeedFloor,
        }
    }

    /// The log of `topic`.
    pub fn topic_log(&self, topic: &str, retention: usize) -> LogKeys {
        LogKeys {
            meta: self.topic_key(topic, "meta"),
            log: self.topic_key(topic, "log"),
            channel: self.topic_key(topic, "live"),
            retention: retention.max(1),
            start: Start::Zero,
        }
    }
}

/// What a read found: the log's epoch and top, and the retained entries
/// asked for, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The epoch now.
    pub epoch: String,
    /// The latest offset now.
    pub top: u64,
    /// `(offset, frame)`, oldest first, without gaps.
    pub entries: Vec<(u64, Utf8Bytes)>,
}

/// One message of a log's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// An appended frame.
    Appended {
        /// The epoch it was appended in.
        epoch: String,
        /// Its offset.
        offset: u64,
        /// The encoded frame.
        frame: Utf8Bytes,
    },
    /// The log was reset to this new epoch.
    Reset {
        /// The new epoch.
        epoch: String,
        /// Drop the subscribers' sockets instead of telling them.
        drop: bool,
    },
    /// A user joined or left a topic (see [`super::presence`]).
    Presence {
        /// Joined (else left).
        joined: bool,
        /// The instance and socket not to tell (the subscriber itself).
        except: Option<(String, u64)>,
        /// The user.
        user: crate::topics::User,
    },
}

impl LiveEvent {
    /// Parses a channel message (see the module docs).
    pub fn parse(payload: &[u8]) -> Result<Self, StoreError> {
        let text = std::str::from_utf8(payload)
            .map_err(|_| StoreError::Corrupt("a live message is not UTF-8".into()))?;
        let corrupt = || StoreError::Corrupt("a malformed live message".into());
        if let Some(rest) = text.strip_prefix("p ") {
            return super::presence::parse(rest).ok_or_else(corrupt);
        }
        let mut parts = text.splitn(4, ' ');
        let kind = parts.next().ok_or_else(corrupt)?;
        let epoch = parts.next().ok_or_else(corrupt)?.to_owned();
        match kind {
            "m" => {
                let offset = parts
                    .next()
                    .and_then(|o| o.parse().ok())
                    .ok_or_else(corrupt)?;
                let frame = parts.next().ok_or_else(corrupt)?;
                Ok(Self::Appended {
                    epoch,
                    offset,
                    frame: Utf8Bytes::from(frame.to_owned()),
                })
            }
            "r" | "d" => Ok(Self::Reset {
                epoch,
                drop: kind == "d",
            }),
            _ => Err(corrupt()),
        }
    }
}

/// A frame with its offset left out: `prefix + offset + suffix` is the
/// frame `encode(offset)` builds. Encoded once with a sentinel offset,
/// split where it is when it occurs exactly once (the offset is always
/// there); otherwise by encoding two offsets that share no digit and
/// length (the offset is then the only part that differs).
fn template(encode: &mut dyn FnMut(u64) -> Utf8Bytes) -> Result<(String, String), StoreError> {
    const SENTINEL: u64 = 9_876_543_210_123;
    let frame = encode(SENTINEL);
    let text = frame.as_str();
    let digits = SENTINEL.to_string();
    // (The sentinel cannot overlap itself: no proper prefix of its digits
    // is a suffix of them, so these are all its occurrences.)
    let mut found = text.match_indices(digits.as_str()).map(|(at, _)| at);
    if let (Some(at), None) = (found.next(), found.next()) {
        return Ok((text[..at].to_owned(), text[at + digits.len()..].to_owned()));
    }
    const A: u64 = 1_111_111_111;
    const B: u64 = 22_222_222_222;
    let (a, b) = (encode(A), encode(B));
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    // The only difference must be the offset's digits.
    if prefix + suffix + 10 != a.len() || prefix + suffix + 11 != b.len() {
        return Err(StoreError::Corrupt(
            "the frame does not hold its offset exactly once".into(),
        ));
    }
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec());
    match (text(&a[..prefix]), text(&a[a.len() - suffix..])) {
        (Ok(p), Ok(s)) => Ok((p, s)),
        _ => Err(StoreError::Corrupt(
            "a frame split inside a character".into(),
        )),
    }
}

/// A fresh random epoch (16 hex digits).
pub fn new_epoch() -> String {
    crate::random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates the meta hash (a new epoch, top `floor`, no stream) when
/// missing, unless `floor` is `-`: then the script answers `{'', '0'}`
/// (the caller learns the feed floor first, see [`Redis::feed_floor`], and
/// calls again); leaves `epoch` in a local. Expects a local `floor`.
const ENSURE_META: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if floor == '-' then return {'', '0'} end
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', floor)
end
";

/// KEYS: meta, log. ARGV: fresh epoch, prefix, suffix, retention, channel,
/// floor. Returns `{epoch, offset}`.
static APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"local floor = ARGV[6]
{ENSURE_META}
local offset = string.format('%d', redis.call('HINCRBY', KEYS[1], 'top', 1))
local frame = ARGV[2] .. offset .. ARGV[3]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], offset .. '-1', 'f', frame)
redis.call('PUBLISH', ARGV[5], 'm ' .. epoch .. ' ' .. offset .. ' ' .. frame)
return {{epoch, offset}}
"
    ))
});

/// KEYS: meta, log. ARGV: fresh epoch, mode (`after`: entries from offset
/// ARGV[3]; `last`: the newest ARGV[3] entries; `head`: none), floor.
/// Returns `{epoch, top, id, frame, id, frame, ...}`, oldest first for
/// `after`, newest first for `last`.
static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"local floor = ARGV[4]
{ENSURE_META}
local out = {{epoch, redis.call('HGET', KEYS[1], 'top')}}
local entries = {{}}
if ARGV[2] == 'after' then
  entries = redis.call('XRANGE', KEYS[2], ARGV[3], '+')
elseif ARGV[2] == 'last' and tonumber(ARGV[3]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3])
end
for _, entry in ipairs(entries) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
"
    ))
});

/// KEYS: meta, log. ARGV: new epoch, channel, `r` or `d`. Drops the log,
/// starts the new epoch and announces it.
static RESET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'top', 0)
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. ARGV[1])
return ARGV[1]
",
    )
});

fn offset_of_id(id: &str) -> Result<u64, StoreError> {
    id.strip_suffix("-1")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("a log entry id `{id}`")))
}

impl Redis {
    /// Appends the frame `encode` builds for the next offset, trims the log
    /// and publishes the frame on its channel, in one script. Returns the
    /// epoch, the offset and the frame.
    pub async fn append(
        &self,
        log: &LogKeys,
        encode: &mut (dyn FnMut(u64) -> Utf8Bytes + Send),
    ) -> Result<(String, u64, Utf8Bytes), StoreError> {
        let (prefix, suffix) = template(encode)?;
        let mut floor = log.start.first_try().to_owned();
        let (epoch, offset) = loop {
            let (epoch, offset): (String, u64) = APPEND
                .key(&log.meta)
                .key(&log.log)
                .arg(new_epoch())
                .arg(&prefix)
                .arg(&suffix)
                .arg(log.retention)
                .arg(&log.channel)
                .arg(&floor)
                .invoke_async(&mut self.conn())
                .await?;
            if !epoch.is_empty() {
                break (epoch, offset);
            }
            floor = self.feed_floor().await?.to_string();
        };
        let frame = Utf8Bytes::from(format!("{prefix}{offset}{suffix}"));
        Ok((epoch, offset, frame))
    }

    async fn read(&self, log: &LogKeys, mode: &str, n: u64) -> Result<Read, StoreError> {
        let mut floor = log.start.first_try().to_owned();
        let reply = loop {
            let reply: Vec<String> = READ
                .key(&log.meta)
                .key(&log.log)
                .arg(new_epoch())
                .arg(mode)
                .arg(n)
                .arg(&floor)
                .invoke_async(&mut self.conn())
                .await?;
            if reply.first().is_none_or(|epoch| !epoch.is_empty()) {
                break reply;
            }
            floor = self.feed_floor().await?.to_string();
        };
        let mut reply = reply.into_iter();
        let (Some(epoch), Some(top)) = (reply.next(), reply.next()) else {
            return Err(StoreError::Corrupt("a short log read".into()));
        };
        let top = top
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("a log top `{top}`")))?;
        let mut entries = Vec::new();
        while let (Some(id), Some(frame)) = (reply.next(), reply.next()) {
            entries.push((offset_of_id(&id)?, Utf8Bytes::from(frame)));
        }
        Ok(Read {
            epoch,
            top,
            entries,
        })
    }

    /// The epoch and top of the log (creating its epoch when missing).
    pub async fn head(&self, log: &LogKeys) -> Result<Read, StoreError> {
        self.read(log, "head", 0).await
    }

    /// The retained entries with offsets after `after`.
    pub async fn read_after(&self, log: &LogKeys, after: u64) -> Result<Read, StoreError> {
        self.read(log, "after", after.saturating_add(1)).await
    }

    /// The newest `count` retained entries, oldest first.
    pub async fn read_last(&self, log: &LogKeys, count: usize) -> Result<Read, StoreError> {
        let mut read = self.read(log, "last", count as u64).await?;
        read.entries.reverse();
        Ok(read)
    }

    /// Drops the log and starts a new epoch (announced on the channel, `d`
    /// when `drop`); returns it.
    pub async fn reset(&self, log: &LogKeys, drop: bool) -> Result<String, StoreError> {
        let epoch: String = RESET
            .key(&log.meta)
            .key(&log.log)
            .arg(new_epoch())
            .arg(&log.channel)
            .arg(if drop { "d" } else { "r" })
            .invoke_async(&mut self.conn())
            .await?;
        Ok(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_rebuilds_the_frame_of_any_offset() {
        let mut encode = |offset: u64| {
            Utf8Bytes::from(format!(
                r#"{{"topic":"room:1111111111","offset":{offset},"data":"22222222222 1"}}"#
            ))
        };
        let (prefix, suffix) = template(&mut encode).unwrap();
        for offset in [1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(format!("{prefix}{offset}{suffix}"), encode(offset).as_str());
        }
        // The sentinel in the data too: split by the two-offset method.
        let mut tricky = |offset: u64| {
            Utf8Bytes::from(format!(
                r#"{{"offset":{offset},"data":"98765432101239876543210123"}}"#
            ))
        };
        let (prefix, suffix) = template(&mut tricky).unwrap();
        assert_eq!(format!("{prefix}7{suffix}"), tricky(7).as_str());
        let mut twice = |offset: u64| Utf8Bytes::from(format!("{offset}-{offset}"));
        assert!(template(&mut twice).is_err());
    }

    #[test]
    fn live_messages_parse() {
        assert_eq!(
            LiveEvent::parse(b"m ab 12 {\"x\": 1 2}").unwrap(),
            LiveEvent::Appended {
                epoch: "ab".into(),
                offset: 12,
                frame: Utf8Bytes::from("{\"x\": 1 2}")
            }
        );
        assert_eq!(
            LiveEvent::parse(b"d cd").unwrap(),
            LiveEvent::Reset {
                epoch: "cd".into(),
                drop: true
            }
        );
        assert!(LiveEvent::parse(b"m ab x {}").is_err());
        assert!(LiveEvent::parse(b"q ab").is_err());
    }
}
