//! Cross-instance control events on the channel `<prefix>control`: what one
//! instance decides (a sign-out, a removed room member) that must act on
//! the sockets of every instance.
//!
//! The instance that decides applies the event itself at once
//! ([`announce`]), then publishes it; every instance, the publisher
//! included, applies what it receives ([`apply`], called by the pub/sub
//! subscriber task). [`apply`] is idempotent: applying an event twice acts
//! once.

use super::{Redis, StoreError};
use crate::AppState;
use crate::registry::Outbound;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The control channel's name (under the prefix): `<prefix>control`.
pub const CHANNEL: &str = "control";

/// One control event, JSON `{"type": "...", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlEvent {
    /// Sessions were revoked (sign-out, `DELETE /api/auth/session`, a
    /// reused refresh token): close the user's sockets, or only those of
    /// one session, with `auth_error revoked` + 4001.
    Revoked {
        /// The user.
        user_id: Uuid,
        /// Only this session's sockets; `None`: every socket of the user.
        #[serde(default)]
        session_id: Option<Uuid>,
    },
    /// Access tokens were expired (`POST /api/admin/expire-tokens`, dev):
    /// close the sockets of the user, or of everyone, with `auth_error
    /// expired_token` + 4001.
    Expired {
        /// The user; `None`: everyone.
        #[serde(default)]
        user_id: Option<Uuid>,
    },
    /// A member left or was removed from a room: end their subscriptions
    /// to `room:<room_id>` with `unsubscribed removed`.
    MemberRemoved {
        /// The room's id.
        room_id: String,
        /// The member.
        user_id: Uuid,
        /// Whether they left (rather than being removed by the owner).
        #[serde(default)]
        left: bool,
    },
}

/// Acts on this instance's sockets; returns how many sockets it reached.
/// Idempotent (a socket already closing, or a subscription already ended,
/// is not reached again).
pub async fn apply(state: &AppState, event: ControlEvent) -> usize {
    match event {
        ControlEvent::Revoked {
            user_id,
            session_id: None,
        } => state.registry.send_to(Some(user_id), &Outbound::Revoked),
        ControlEvent::Revoked {
            session_id: Some(session_id),
            ..
        } => state
            .registry
            .send_to_session(session_id, &Outbound::Revoked),
        ControlEvent::Expired { user_id } => state.registry.send_to(user_id, &Outbound::Expired),
        ControlEvent::MemberRemoved {
            room_id,
            user_id,
            left,
        } => {
            let topic = format!("{}:{room_id}", crate::rooms::ROOM_TOPIC_KIND);
            let message = if left {
                "you left the room"
            } else {
                "you were removed from the room"
            };
            state.topics.remove_user(&topic, user_id, message)
        }
    }
}

/// Publishes `event` on the control channel.
pub async fn publish(redis: &Redis, event: &ControlEvent) -> Result<(), StoreError> {
    let json = serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(format!("a control event: {e}")))?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(redis.channel(CHANNEL))
        .arg(json)
        .query_async(&mut redis.conn())
        .await?;
    Ok(())
}

/// Applies `event` here at once and, with Redis, publishes it to every
/// instance. Returns how many local sockets it reached. A failed publish
/// is logged, not returned: the change it announces is already stored
/// (the other instances' sockets then learn of it when they next
/// authenticate or subscribe).
pub async fn announce(state: &AppState, redis: Option<&Redis>, event: ControlEvent) -> usize {
    let reached = apply(state, event.clone()).await;
    if let Some(redis) = redis
        && let Err(err) = publish(redis, &event).await
    {
        tracing::warn!(%err, "could not publish a control event to the other instances");
    }
    reached
}
