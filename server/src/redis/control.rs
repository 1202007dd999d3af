//! Events one instance sends every instance on the control channel
//! (`<prefix>control`): revocations and room membership changes, so that a
//! change made through one instance acts on sockets held by any other.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One control event (JSON on the control channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlEvent {
    /// Close the user's sockets (or only those of one session) with 4001.
    Revoked {
        /// The user.
        user_id: Uuid,
        /// Only this session's sockets; all of the user's when `None`.
        session_id: Option<Uuid>,
    },
    /// Unsubscribe the user from `room:<room_id>` (`unsubscribed removed`).
    MemberRemoved {
        /// The room.
        room_id: String,
        /// The removed member.
        user_id: Uuid,
    },
}
