//! Messages with a delivery guarantee, kept until their `ack`.

use crate::Millis;
use std::collections::VecDeque;
use std::fmt;

/// The id of a message passed to [`crate::Connection::send`]: a UUID v4
/// string from the machine's seeded generator. The server acks it and
/// applies it at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    pub(crate) fn new(id: String) -> Self {
        Self(id)
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

/// One unacknowledged message.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: MessageId,
    /// The encoded `send` frame.
    pub(crate) frame: String,
    /// When `send` accepted it; the outbox gives up on it after the
    /// configured age.
    pub(crate) queued_at: Millis,
    /// After a `rate_limited` nack: not resent before this time.
    pub(crate) held_until: Option<Millis>,
    /// How many `rate_limited` nacks it got (the backoff exponent).
    pub(crate) rate_limited: u32,
    /// The topic of a publish (`None` for a `send`). A publish goes out
    /// only while its topic is subscribed.
    pub(crate) topic: Option<String>,
    /// Whether a publish went out on the current socket since its topic's
    /// last `subscribed` (a `send` is resent on every new socket instead).
    pub(crate) sent: bool,
}

/// Unacknowledged messages in send order, each with its encoded frame.
/// Acks mostly come in send order, and a `VecDeque` removes its front
/// entry in O(1).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// How many entries are held after a `rate_limited` nack.
    held: usize,
}

impl Outbox {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, id: MessageId, frame: String, queued_at: Millis) {
        self.entries.push_back(Entry {
            id,
            frame,
            queued_at,
            held_until: None,
            rate_limited: 0,
            topic: None,
            sent: false,
        });
    }

    /// Queues a publish to `topic`; `sent` when it went out at once.
    pub(crate) fn push_publish(
        &mut self,
        id: MessageId,
        frame: String,
        queued_at: Millis,
        topic: String,
        sent: bool,
    ) {
        self.entries.push_back(Entry {
            id,
            frame,
            queued_at,
            held_until: None,
            rate_limited: 0,
            topic: Some(topic),
            sent,
        });
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.live().position(|e| e.id.as_str() == id)
    }

    /// Removes the entry with this wire id, if any.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.entries.remove(self.position(id)?)?;
        if entry.held_until.is_some() {
            self.held -= 1;
        }
        Some(entry)
    }

    /// Holds the entry with this wire id back until `until` (a
    /// `rate_limited` nack); returns how often it was rate limited, or
    /// `None` for an unknown id.
    pub(crate) fn hold(&mut self, id: &str, until: impl FnOnce(u32) -> Millis) -> Option<u32> {
        let index = self.position(id)?;
        let entry = &mut self.entries[index];
        entry.rate_limited = entry.rate_limited.saturating_add(1);
        entry.sent = false;
        if entry.held_until.is_none() {
            self.held += 1;
        }
        entry.held_until = Some(until(entry.rate_limited));
        Some(entry.rate_limited)
    }

    /// The earliest time a held entry may be resent.
    pub(crate) fn next_release(&self) -> Option<Millis> {
        if self.held == 0 {
            return None;
        }
        self.live().filter_map(|e| e.held_until).min()
    }

    /// Releases the entries held until `now` or earlier and returns the
    /// frames to send now, in send order: the `send`s, and the publishes
    /// whose topic is `live` (the others wait for their topic's next
    /// `subscribed`).
    pub(crate) fn release(&mut self, now: Millis, live: impl Fn(&str) -> bool) -> Vec<String> {
        let mut frames = Vec::new();
        if self.held == 0 {
            return frames;
        }
        for entry in &mut self.entries {
            if entry.held_until.is_some_and(|at| at <= now) {
                entry.held_until = None;
                self.held -= 1;
                if entry.topic.as_deref().is_none_or(&live) {
                    entry.sent = true;
                    frames.push(entry.frame.clone());
                }
            }
        }
        frames
    }

    /// The publishes to `topic` not sent since its `subscribed` and not
    /// held back: their frames, in send order, now marked sent.
    pub(crate) fn flush(&mut self, topic: &str) -> Vec<String> {
        let mut frames = Vec::new();
        for entry in &mut self.entries {
            if !entry.sent && entry.held_until.is_none() && entry.topic.as_deref() == Some(topic) {
                entry.sent = true;
                frames.push(entry.frame.clone());
            }
        }
        frames
    }

    /// A new socket: no publish has gone out on it yet.
    pub(crate) fn unsend_all(&mut self) {
        for entry in &mut self.entries {
            entry.sent = false;
        }
    }

    /// The publish with this id must go again after its topic's next
    /// `subscribed` (a `not_subscribed` nack): its topic, or `None` when
    /// the id is unknown or not a publish.
    pub(crate) fn unsend(&mut self, id: &str) -> Option<&str> {
        let index = self.position(id)?;
        let entry = &mut self.entries[index];
        entry.topic.as_ref()?;
        entry.sent = false;
        entry.topic.as_deref()
    }

    /// Removes the publishes to `topic`, in send order.
    pub(crate) fn remove_topic(&mut self, topic: &str) -> Vec<Entry> {
        let ids: Vec<String> = self
            .live()
            .filter(|e| e.topic.as_deref() == Some(topic))
            .map(|e| e.id.as_str().to_owned())
            .collect();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// When the oldest entry was queued.
    pub(crate) fn oldest(&self) -> Option<Millis> {
        self.live().next().map(|e| e.queued_at)
    }

    /// Removes the entries queued at `cutoff` or earlier (the oldest
    /// first), in send order.
    pub(crate) fn expire(&mut self, cutoff: Millis) -> Vec<Entry> {
        let mut expired = Vec::new();
        while let Some(entry) = self.live().next()
            && entry.queued_at <= cutoff
        {
            let id = entry.id.as_str().to_owned();
            expired.extend(self.remove(&id));
        }
        expired
    }

    /// Removes the entries whose frame is longer than `limit` bytes, in
    /// send order.
    pub(crate) fn remove_larger(&mut self, limit: usize) -> Vec<Entry> {
        let ids: Vec<String> = self
            .live()
            .filter(|e| e.frame.len() > limit)
            .map(|e| e.id.as_str().to_owned())
            .collect();
        ids.iter().filter_map(|id| self.remove(id)).collect()
    }

    fn live(&self) -> std::collections::vec_deque::Iter<'_, Entry> {
        self.entries.iter()
    }

    /// The frames to send on a fresh socket: every `send` not held back
    /// (publishes wait for their topic's `subscribed`).
    pub(crate) fn frames(&self) -> impl Iterator<Item = &str> {
        self.live()
            .filter(|e| e.held_until.is_none() && e.topic.is_none())
            .map(|e| e.frame.as_str())
    }

    /// Empties the outbox, returning what it held in send order.
    pub(crate) fn take_all(&mut self) -> Vec<Entry> {
        self.held = 0;
        std::mem::take(&mut self.entries).into()
    }
}

#[cfg(test)]
mod tests {
    use super::{MessageId, Outbox};

    fn outbox(n: usize) -> Outbox {
        let mut outbox = Outbox::default();
        for i in 0..n {
            outbox.push(
                MessageId::new(format!("m{i}")),
                format!("frame {i}"),
                i as u64,
            );
        }
        outbox
    }

    fn frames(outbox: &Outbox) -> Vec<&str> {
        outbox.frames().collect()
    }

    fn ack(outbox: &mut Outbox, id: &str) -> Option<String> {
        outbox.remove(id).map(|e| e.id.into())
    }

    #[test]
    fn acks_in_send_order_keep_the_rest_in_order() {
        let mut outbox = outbox(5);
        for i in 0..3 {
            let id = format!("m{i}");
            assert_eq!(ack(&mut outbox, &id), Some(id));
            assert_eq!(outbox.len(), 4 - i);
        }
        assert_eq!(frames(&outbox), ["frame 3", "frame 4"]);
        assert_eq!(ack(&mut outbox, "m0"), None, "an acked id is gone");
        outbox.push(MessageId::new("m5".into()), "frame 5".into(), 5);
        assert_eq!(frames(&outbox), ["frame 3", "frame 4", "frame 5"]);
    }

    #[test]
    fn acks_out_of_order_and_unknown_ids() {
        let mut outbox = outbox(4);
        assert_eq!(ack(&mut outbox, "nope"), None);
        assert_eq!(ack(&mut outbox, "m2").unwrap(), "m2");
        assert_eq!(ack(&mut outbox, "m0").unwrap(), "m0");
        assert_eq!(frames(&outbox), ["frame 1", "frame 3"]);
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn take_all_returns_only_the_unacked_in_send_order() {
        let mut outbox = outbox(6);
        ack(&mut outbox, "m0");
        ack(&mut outbox, "m1");
        ack(&mut outbox, "m4");
        let ids: Vec<String> = outbox.take_all().into_iter().map(|e| e.id.into()).collect();
        assert_eq!(ids, ["m2", "m3", "m5"]);
        assert_eq!(outbox.len(), 0);
        assert_eq!(frames(&outbox), Vec::<&str>::new());
    }

    #[test]
    fn a_long_run_of_in_order_acks_leaves_only_the_unacked() {
        let mut outbox = outbox(1000);
        for i in 0..999 {
            ack(&mut outbox, &format!("m{i}")).unwrap();
            assert_eq!(outbox.len(), 999 - i, "after ack {i}");
        }
        assert_eq!(frames(&outbox), ["frame 999"]);
    }

    #[test]
    fn held_entries_wait_for_their_release() {
        let mut outbox = outbox(3);
        assert_eq!(outbox.hold("m1", |n| 100 * u64::from(n)), Some(1));
        assert_eq!(outbox.hold("m1", |n| 100 * u64::from(n)), Some(2));
        assert_eq!(outbox.hold("zz", |_| 1), None);
        assert_eq!(frames(&outbox), ["frame 0", "frame 2"]);
        assert_eq!(outbox.next_release(), Some(200));
        assert!(outbox.release(199, |_| true).is_empty());
        assert_eq!(outbox.release(200, |_| true), ["frame 1"]);
        assert_eq!(outbox.held, 0, "the count of held entries follows");
        assert_eq!(outbox.next_release(), None);
        assert_eq!(frames(&outbox), ["frame 0", "frame 1", "frame 2"]);
        // Removing a held entry forgets the hold, and only its own.
        outbox.hold("m2", |_| 50);
        outbox.hold("m0", |_| 70);
        assert_eq!(outbox.held, 2);
        ack(&mut outbox, "m2");
        assert_eq!(outbox.held, 1);
        assert_eq!(outbox.next_release(), Some(70));
        ack(&mut outbox, "m0");
        assert_eq!(outbox.held, 0);
        assert_eq!(outbox.next_release(), None);
    }

    #[test]
    fn expire_takes_the_oldest_up_to_the_cutoff() {
        let mut outbox = outbox(5);
        ack(&mut outbox, "m1");
        assert_eq!(outbox.oldest(), Some(0));
        let expired: Vec<String> = outbox.expire(2).into_iter().map(|e| e.id.into()).collect();
        assert_eq!(expired, ["m0", "m2"]);
        assert_eq!(outbox.oldest(), Some(3));
        assert_eq!(frames(&outbox), ["frame 3", "frame 4"]);
    }

    #[test]
    fn remove_larger_keeps_what_fits() {
        let mut outbox = Outbox::default();
        for (i, size) in [10, 300, 100, 101, 400].into_iter().enumerate() {
            outbox.push(MessageId::new(format!("m{i}")), "x".repeat(size), 0);
        }
        let removed: Vec<(String, usize)> = outbox
            .remove_larger(100)
            .into_iter()
            .map(|e| (e.id.into(), e.frame.len()))
            .collect();
        // A frame of exactly the limit fits.
        assert_eq!(
            removed,
            [("m1".into(), 300), ("m3".into(), 101), ("m4".into(), 400)]
        );
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn publishes_go_out_only_when_flushed_for_their_topic() {
        let mut outbox = outbox(1);
        outbox.push_publish(
            MessageId::new("p1".into()),
            "pub 1".into(),
            1,
            "room:a".into(),
            false,
        );
        outbox.push_publish(
            MessageId::new("p2".into()),
            "pub 2".into(),
            2,
            "room:b".into(),
            true,
        );
        outbox.push_publish(
            MessageId::new("p3".into()),
            "pub 3".into(),
            3,
            "room:a".into(),
            false,
        );
        assert_eq!(
            frames(&outbox),
            ["frame 0"],
            "a new socket sends no publish"
        );
        assert_eq!(outbox.flush("room:a"), ["pub 1", "pub 3"]);
        assert!(
            outbox.flush("room:a").is_empty(),
            "sent once per subscribed"
        );
        assert!(outbox.flush("room:b").is_empty(), "p2 went out already");
        assert_eq!(outbox.unsend("p3"), Some("room:a"));
        assert_eq!(outbox.unsend("m0"), None, "a send is not a publish");
        assert_eq!(outbox.unsend("zz"), None);
        assert_eq!(outbox.flush("room:a"), ["pub 3"]);
        outbox.unsend_all();
        assert_eq!(outbox.flush("room:b"), ["pub 2"]);
        // Held publishes are released only for a live topic.
        outbox.hold("p1", |_| 10);
        outbox.hold("p2", |_| 10);
        assert_eq!(outbox.flush("room:a"), ["pub 3"], "a held publish waits");
        assert_eq!(outbox.release(10, |t| t == "room:b"), ["pub 2"]);
        assert_eq!(
            outbox.flush("room:a"),
            ["pub 1"],
            "released while not live: goes at the next flush"
        );
        let removed: Vec<String> = outbox
            .remove_topic("room:a")
            .into_iter()
            .map(|e| e.id.into())
            .collect();
        assert_eq!(removed, ["p1", "p3"]);
        assert_eq!(outbox.len(), 2);
    }
}
