//! Tunables of the connection machine.

use std::time::Duration;

pub use crate::backoff::Backoff;

/// Everything the machine needs to know up front. Build it with struct-update
/// syntax: `Config { url: "wss://example.com/api/ws/notification".into(), ..Config::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The socket URL without the token, e.g.
    /// `"ws://127.0.0.1:3001/api/ws/notification"`. Defaults to
    /// `"/api/ws/notification"` ([`tether_protocol::WS_PATH`]).
    pub url: String,
    /// Whether to append `?token=<token>` (or `&token=` when the URL already
    /// has a query) to the URL, percent-encoding the token. The token is sent
    /// in the `auth` frame either way. Defaults to `true`.
    pub token_in_query: bool,
    /// How long to wait between reconnect attempts and when to give up.
    /// Defaults to [`Backoff::default`]: 500 ms doubling up to 30 s, 10 attempts.
    pub backoff: Backoff,
    /// Ping cadence and how long to wait for the pong. Defaults to
    /// [`Keepalive::default`]: ping every 5 s, pong within 4 s (2 s for the
    /// probe sent when the page becomes visible), so a dead link is noticed
    /// in under 10 s.
    pub keepalive: Keepalive,
    /// How long before the access token expires to ask for a fresh one; clamped
    /// to at most half the token's lifetime. Defaults to 60 s.
    pub refresh_lead: Duration,
    /// The most messages accepted by [`crate::Connection::send`] and not yet
    /// acknowledged; beyond it `send` fails with
    /// [`crate::SendError::QueueFull`]. At most 9,999 (larger values count
    /// as 9,999): a server remembers at least the last
    /// [`tether_protocol::DEDUP_WINDOW_IDS`] ids of a user, and a resent id
    /// must still be among them. Defaults to 1000.
    pub outbox_capacity: usize,
    /// How long a message may wait for its `ack` after `send` accepted it;
    /// then it fails with [`crate::SendError::Expired`] and is never resent.
    /// At most 12 h (longer values count as 12 h), well inside the
    /// server's de-duplication window ([`tether_protocol::DEDUP_WINDOW`],
    /// 24 h). Defaults to 1 h.
    pub outbox_max_age: Duration,
    /// The largest text frame sent, in bytes, unless the server's
    /// `auth_success` announces another `max_frame`; frames from the server
    /// are accepted up to twice the limit in force. Defaults to
    /// [`tether_protocol::MAX_FRAME_BYTES`] (64 KiB).
    pub max_frame_bytes: usize,
    /// Where [`crate::Effect::Navigate`] sends the user after a final
    /// authentication failure. Defaults to `"/login"`.
    pub login_route: String,
    /// Seed of the generator behind the backoff jitter and the message ids;
    /// the driver passes real randomness, tests a fixed value. Defaults to
    /// `0x7e7e_7e7e`.
    pub seed: u64,
    /// How long opening the socket plus the `auth` round trip may take before
    /// the attempt counts as failed (the socket is closed with 4000
    /// `"Connect timeout"` and a reconnect is scheduled). Defaults to 10 s.
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: tether_protocol::WS_PATH.to_owned(),
            token_in_query: true,
            backoff: Backoff::default(),
            keepalive: Keepalive::default(),
            refresh_lead: Duration::from_secs(60),
            outbox_capacity: 1000,
            outbox_max_age: Duration::from_secs(60 * 60),
            max_frame_bytes: tether_protocol::MAX_FRAME_BYTES,
            login_route: "/login".to_owned(),
            seed: 0x7e7e_7e7e,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Keepalive: while connected the machine sends a `ping` every `interval`
/// and treats the link as dead when the matching `pong` has not arrived
/// within `timeout`. The worst case to notice a dead link is
/// `interval + timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between pings. Defaults to 5 s.
    pub interval: Duration,
    /// How long to wait for a pong. Defaults to 4 s.
    pub timeout: Duration,
    /// How long to wait for the pong of the probe sent when the page becomes
    /// visible again (the link may have died while the tab slept). Defaults to 2 s.
    pub probe_timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(4),
            probe_timeout: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// [`Config::outbox_capacity`], bounded below the server's
    /// de-duplication window.
    pub(crate) fn outbox_bound(&self) -> usize {
        self.outbox_capacity
            .min(tether_protocol::DEDUP_WINDOW_IDS - 1)
    }

    /// [`Config::outbox_max_age`] in milliseconds, bounded to half the
    /// server's de-duplication window.
    pub(crate) fn outbox_age_bound(&self) -> u64 {
        ms(self.outbox_max_age).min(ms(tether_protocol::DEDUP_WINDOW) / 2)
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
