//! Fault injection switches of the dev admin routes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A switch that is on until some instant, for everyone or per user.
#[derive(Debug, Default)]
pub struct TimedSwitch {
    until: Mutex<HashMap<Option<Uuid>, Instant>>,
}

impl TimedSwitch {
    /// Turns the switch on for `duration`, for `user` or everyone (`None`).
    pub fn set(&self, user: Option<Uuid>, duration: Duration) {
        let mut until = self.until.lock().expect("lock");
        let now = Instant::now();
        until.retain(|_, t| *t > now);
        until.insert(user, now + duration);
    }

    /// Whether the switch is on for `user` (`None`: a connection whose user
    /// is not known, affected only by the switch for everyone).
    pub fn is_on(&self, user: Option<Uuid>) -> bool {
        let until = self.until.lock().expect("lock");
        if until.is_empty() {
            return false;
        }
        let now = Instant::now();
        let on = |key: Option<Uuid>| until.get(&key).is_some_and(|t| *t > now);
        on(None) || user.is_some_and(|u| on(Some(u)))
    }
}

/// Every fault switch.
#[derive(Debug, Default)]
pub struct Faults {
    /// Pongs are not sent while on.
    pub withhold_pongs: TimedSwitch,
    /// New socket upgrades get HTTP 503 while on.
    pub refuse_sockets: TimedSwitch,
}
