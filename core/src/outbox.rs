//! Messages with a delivery guarantee, kept until their `ack`.

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

/// Unacknowledged messages in send order, each with its encoded frame.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    entries: VecDeque<(MessageId, String)>,
}

impl Outbox {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, id: MessageId, frame: String) {
        self.entries.push_back((id, frame));
    }

    /// Removes the entry with this wire id, if any.
    pub(crate) fn ack(&mut self, id: &str) -> Option<MessageId> {
        let index = self.entries.iter().position(|(m, _)| m.as_str() == id)?;
        self.entries.remove(index).map(|(m, _)| m)
    }

    pub(crate) fn frames(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, frame)| frame.as_str())
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = MessageId> + '_ {
        self.entries.drain(..).map(|(m, _)| m)
    }
}
