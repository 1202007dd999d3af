//! Reconnect backoff: exponential growth, full jitter, a cap and a limit.

use crate::rng::SplitMix64;
use std::time::Duration;

/// When to retry a failed connection. The delay before reconnect attempt `n`
/// (1-based) is uniform in `[0, min(max, initial * factor^(n-1))]` ("full
/// jitter"), so a crowd of clients that lost the same server does not come
/// back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The cap of the first delay. Defaults to 500 ms.
    pub initial: Duration,
    /// Growth of the cap per attempt. Defaults to 2.0.
    pub factor: f64,
    /// The largest delay. Defaults to 30 s.
    pub max: Duration,
    /// How many reconnect attempts to make before giving up
    /// ([`crate::Event::ReconnectFailed`]); `None` retries forever.
    /// Defaults to `Some(10)`.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(30),
            max_attempts: Some(10),
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before reconnect attempt `attempt`
    /// (1-based): `min(max, initial * factor^(attempt-1))`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = tether_core::Backoff::default();
    /// assert_eq!(b.cap(1), Duration::from_millis(500));
    /// assert_eq!(b.cap(3), Duration::from_secs(2));
    /// assert_eq!(b.cap(50), Duration::from_secs(30));
    /// ```
    pub fn cap(&self, attempt: u32) -> Duration {
        let max = crate::config::ms(self.max);
        let initial = crate::config::ms(self.initial) as f64;
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let cap = initial * self.factor.powi(exp);
        let cap = if cap.is_nan() || cap >= max as f64 {
            max
        } else if cap <= 0.0 {
            0
        } else {
            cap as u64
        };
        Duration::from_millis(cap.min(max))
    }

    /// Whether a reconnect attempt with this 1-based number is allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt <= max)
    }

    /// A jittered delay in `[0, cap(attempt)]`, in whole milliseconds.
    pub(crate) fn delay(&self, attempt: u32, rng: &mut SplitMix64) -> Duration {
        let cap = crate::config::ms(self.cap(attempt));
        Duration::from_millis(rng.up_to(cap))
    }
}
