//! Messages with a delivery guarantee, kept until their `ack`.

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

/// Unacknowledged messages in send order, each with its encoded frame.
///
/// A `Vec` and a start index rather than a `VecDeque`: acks mostly come in
/// send order, so the oldest entry goes in O(1) by moving `head`, and a
/// deque's code, generic per element type, costs ~1 KiB of gzipped wasm.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Entries before `head` are acked and emptied; they are dropped when
    /// they outnumber the live ones.
    entries: Vec<(MessageId, String)>,
    head: usize,
}

impl Outbox {
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.head
    }

    pub(crate) fn push(&mut self, id: MessageId, frame: String) {
        self.entries.push((id, frame));
    }

    /// Removes the entry with this wire id, if any.
    pub(crate) fn ack(&mut self, id: &str) -> Option<MessageId> {
        let index = self.head + self.live().position(|(m, _)| m.as_str() == id)?;
        if index > self.head {
            return Some(self.entries.remove(index).0);
        }
        let (acked, frame) = &mut self.entries[index];
        let acked = MessageId(std::mem::take(&mut acked.0));
        drop(std::mem::take(frame));
        self.head += 1;
        if self.head * 2 >= self.entries.len() {
            self.compact();
        }
        Some(acked)
    }

    /// Drops the acked entries before `head`.
    fn compact(&mut self) {
        self.entries.drain(..std::mem::take(&mut self.head));
    }

    fn live(&self) -> std::slice::Iter<'_, (MessageId, String)> {
        self.entries[self.head..].iter()
    }

    pub(crate) fn frames(&self) -> impl Iterator<Item = &str> {
        self.live().map(|(_, frame)| frame.as_str())
    }

    /// Empties the outbox, returning what it held in send order.
    pub(crate) fn take_all(&mut self) -> Vec<(MessageId, String)> {
        self.compact();
        std::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::{MessageId, Outbox};

    fn outbox(n: usize) -> Outbox {
        let mut outbox = Outbox::default();
        for i in 0..n {
            outbox.push(MessageId::new(format!("m{i}")), format!("frame {i}"));
        }
        outbox
    }

    fn frames(outbox: &Outbox) -> Vec<&str> {
        outbox.frames().collect()
    }

    #[test]
    fn acks_in_send_order_keep_the_rest_in_order() {
        let mut outbox = outbox(5);
        for i in 0..3 {
            let id = format!("m{i}");
            assert_eq!(outbox.ack(&id).as_ref().map(MessageId::as_str), Some(&*id));
            assert_eq!(outbox.len(), 4 - i);
        }
        assert_eq!(frames(&outbox), ["frame 3", "frame 4"]);
        assert_eq!(outbox.ack("m0"), None, "an acked id is gone");
        outbox.push(MessageId::new("m5".into()), "frame 5".into());
        assert_eq!(frames(&outbox), ["frame 3", "frame 4", "frame 5"]);
    }

    #[test]
    fn acks_out_of_order_and_unknown_ids() {
        let mut outbox = outbox(4);
        assert_eq!(outbox.ack("nope"), None);
        assert_eq!(outbox.ack("m2").unwrap().as_str(), "m2");
        assert_eq!(outbox.ack("m0").unwrap().as_str(), "m0");
        assert_eq!(frames(&outbox), ["frame 1", "frame 3"]);
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn take_all_returns_only_the_unacked_in_send_order() {
        let mut outbox = outbox(6);
        outbox.ack("m0");
        outbox.ack("m1");
        outbox.ack("m4");
        let ids: Vec<String> = outbox
            .take_all()
            .into_iter()
            .map(|(m, _)| m.into())
            .collect();
        assert_eq!(ids, ["m2", "m3", "m5"]);
        assert_eq!(outbox.len(), 0);
        assert_eq!(frames(&outbox), Vec::<&str>::new());
    }

    #[test]
    fn a_long_run_of_in_order_acks_does_not_keep_the_acked() {
        let mut outbox = outbox(1000);
        for i in 0..999 {
            outbox.ack(&format!("m{i}")).unwrap();
            assert!(outbox.entries.len() <= 2 * outbox.len(), "after ack {i}");
        }
        assert_eq!(frames(&outbox), ["frame 999"]);
    }
}
