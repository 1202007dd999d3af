//! Rooms: an owner and members, the Rooms HTTP API (Bearer token) and the
//! permission of topic `room:<id>`: members subscribe and publish, others
//! are refused. Contract: "Rooms" in `shared/PROTOCOL.md`.
//!
//! `GET /api/rooms`, `POST /api/rooms`, `PUT` and `DELETE
//! /api/rooms/{id}/members/{username}`. Removing a member ends each of
//! their subscriptions to the room's topic at once (`unsubscribed
//! removed`).

use crate::AppState;
use crate::error::{ApiFailure, parse_json};
use crate::topics::{SubscribeErrorCode, User};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;
use uuid::Uuid;

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;

/// Most rooms one user may own (there is no room deletion yet).
pub const MAX_ROOMS_PER_OWNER: usize = 1_000;

/// Most members of one room, the owner included.
pub const MAX_MEMBERS: usize = 10_000;

/// The topic kind of rooms: topic `room:<id>`.
pub const ROOM_TOPIC_KIND: &str = "room";

/// One room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Its id: a UUID's simple form (32 hex digits), topic-safe.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The owner (always a member).
    pub owner: Uuid,
    /// The members, in the order they were added, the owner first.
    pub members: Vec<Uuid>,
}

impl Room {
    /// The room's topic, `room:<id>`.
    pub fn topic(&self) -> String {
        format!("{ROOM_TOPIC_KIND}:{}", self.id)
    }

    /// Whether `user` is a member.
    pub fn has_member(&self, user: Uuid) -> bool {
        self.members.contains(&user)
    }
}

/// Why a membership change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// No such room.
    #[error("no such room")]
    NoSuchRoom,
    /// The caller may not do this.
    #[error("only the room's owner may do this")]
    NotOwner,
    /// The owner cannot remove themselves.
    #[error("the owner cannot leave the room")]
    OwnerCannotLeave,
    /// The user to remove is not a member.
    #[error("that user is not a member of the room")]
    NotAMember,
    /// The owner has [`MAX_ROOMS_PER_OWNER`] rooms already.
    #[error("a user may own at most {MAX_ROOMS_PER_OWNER} rooms")]
    TooManyRooms,
    /// The room would have more than [`MAX_MEMBERS`] members.
    #[error("a room may have at most {MAX_MEMBERS} members")]
    TooManyMembers,
}

/// Every room, in memory.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: RwLock<HashMap<String, Room>>,
    owned: std::sync::Mutex<HashMap<Uuid, usize>>,
}

impl Rooms {
    /// Creates a room owned by `owner` with `members` (the owner is added
    /// first; duplicates are dropped).
    pub fn create(&self, name: &str, owner: Uuid, members: &[Uuid]) -> Result<Room, RoomError> {
        let mut all = vec![owner];
        let mut seen = std::collections::HashSet::from([owner]);
        for member in members {
            if seen.insert(*member) {
                all.push(*member);
            }
        }
        if all.len() > MAX_MEMBERS {
            return Err(RoomError::TooManyMembers);
        }
        {
            let mut owned = self.owned.lock().expect("lock");
            let count = owned.entry(owner).or_default();
            if *count >= MAX_ROOMS_PER_OWNER {
                return Err(RoomError::TooManyRooms);
            }
            *count += 1;
        }
        let room = Room {
            id: Uuid::new_v4().simple().to_string(),
            name: name.to_owned(),
            owner,
            members: all,
        };
        self.rooms
            .write()
            .expect("lock")
            .insert(room.id.clone(), room.clone());
        Ok(room)
    }

    /// The room with this id.
    pub fn get(&self, id: &str) -> Option<Room> {
        self.rooms.read().expect("lock").get(id).cloned()
    }

    /// The room of topic `room:<id>`.
    pub fn of_topic(&self, topic: &str) -> Option<Room> {
        let id = topic.strip_prefix(ROOM_TOPIC_KIND)?.strip_prefix(':')?;
        self.get(id)
    }

    /// Whether `user` is a member of the room of topic `room:<id>`; `None`
    /// when there is no such room. Clones nothing (it runs on every
    /// subscribe and publish).
    pub fn membership(&self, topic: &str, user: Uuid) -> Option<bool> {
        let id = topic.strip_prefix(ROOM_TOPIC_KIND)?.strip_prefix(':')?;
        let rooms = self.rooms.read().expect("lock");
        rooms.get(id).map(|room| room.has_member(user))
    }

    /// The rooms `user` belongs to, by name then id.
    pub fn of_member(&self, user: Uuid) -> Vec<Room> {
        let mut rooms: Vec<Room> = self
            .rooms
            .read()
            .expect("lock")
            .values()
            .filter(|r| r.has_member(user))
            .cloned()
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        rooms
    }

    /// `caller` adds `member` (owner only; adding a member again is fine).
    pub fn add_member(&self, id: &str, caller: Uuid, member: Uuid) -> Result<(), RoomError> {
        let mut rooms = self.rooms.write().expect("lock");
        let room = rooms.get_mut(id).ok_or(RoomError::NoSuchRoom)?;
        if room.owner != caller {
            return Err(RoomError::NotOwner);
        }
        if !room.has_member(member) {
            if room.members.len() >= MAX_MEMBERS {
                return Err(RoomError::TooManyMembers);
            }
            room.members.push(member);
        }
        Ok(())
    }

    /// `caller` removes `member`: the owner removing another member, or a
    /// member leaving.
    pub fn remove_member(&self, id: &str, caller: Uuid, member: Uuid) -> Result<(), RoomError> {
        let mut rooms = self.rooms.write().expect("lock");
        let room = rooms.get_mut(id).ok_or(RoomError::NoSuchRoom)?;
        if caller != room.owner && caller != member {
            return Err(RoomError::NotOwner);
        }
        if member == room.owner {
            return Err(RoomError::OwnerCannotLeave);
        }
        if !room.has_member(member) {
            return Err(RoomError::NotAMember);
        }
        room.members.retain(|m| *m != member);
        Ok(())
    }
}

/// Whether `user` may subscribe to `topic` (already a valid topic name):
/// only `room:<id>` topics of existing rooms exist, and only their members
/// may.
pub fn may_subscribe(state: &AppState, topic: &str, user: Uuid) -> Result<(), SubscribeErrorCode> {
    match state.rooms.membership(topic, user) {
        None => Err(SubscribeErrorCode::NotFound),
        Some(true) => Ok(()),
        Some(false) => Err(SubscribeErrorCode::Forbidden),
    }
}

/// Whether `user` may publish to `topic` (a topic that does not exist
/// included: no).
pub fn may_publish(state: &AppState, topic: &str, user: Uuid) -> bool {
    may_subscribe(state, topic, user).is_ok()
}

/// A user on the wire, `{"user_id","username"}`; `None` for an unknown id.
pub fn wire_user(state: &AppState, id: Uuid) -> Option<User> {
    state.accounts.by_id(id).map(|u| User {
        user_id: u.id.to_string(),
        username: u.username.clone(),
    })
}

/// A room as JSON: `{"id","name","owner","members"}`.
#[derive(Debug, Serialize)]
struct RoomJson {
    id: String,
    name: String,
    owner: User,
    members: Vec<User>,
}

fn room_json(state: &AppState, room: &Room) -> RoomJson {
    let user = |id: Uuid| {
        wire_user(state, id).unwrap_or_else(|| User {
            user_id: id.to_string(),
            username: String::new(),
        })
    };
    RoomJson {
        id: room.id.clone(),
        name: room.name.clone(),
        owner: user(room.owner),
        members: room.members.iter().map(|m| user(*m)).collect(),
    }
}

/// The Rooms routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(list).post(create))
        .route(
            "/api/rooms/{id}/members/{username}",
            put(add_member).delete(remove_member),
        )
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiFailure> {
    let user = crate::http_api::authenticated_user(&state, &headers)?;
    let rooms: Vec<RoomJson> = state
        .rooms
        .of_member(user)
        .iter()
        .map(|r| room_json(&state, r))
        .collect();
    Ok(Json(rooms).into_response())
}

#[derive(Debug, Deserialize)]
struct NewRoom {
    name: String,
    #[serde(default)]
    members: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let owner = crate::http_api::authenticated_user(&state, &headers)?;
    let new: NewRoom = parse_json(&body)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(ApiFailure::Invalid {
            code: "invalid_name",
            message: format!("a room name must be 1 to {MAX_ROOM_NAME_CHARS} characters"),
        });
    }
    let mut members = Vec::with_capacity(new.members.len());
    for username in &new.members {
        match state.accounts.by_name(username) {
            Some(user) => members.push(user.id),
            None => {
                return Err(ApiFailure::Invalid {
                    code: "unknown_user",
                    message: format!("no user named {username:?}"),
                });
            }
        }
    }
    let room = state
        .rooms
        .create(name, owner, &members)
        .map_err(room_failure)?;
    tracing::info!(room = %room.id, %owner, members = room.members.len(), "room created");
    Ok((StatusCode::CREATED, Json(room_json(&state, &room))).into_response())
}

fn room_failure(err: RoomError) -> ApiFailure {
    match err {
        RoomError::NoSuchRoom => ApiFailure::NotFound("no such room"),
        RoomError::NotAMember => ApiFailure::NotFound("that user is not a member of the room"),
        RoomError::NotOwner => ApiFailure::Forbidden("only the room's owner may do this"),
        RoomError::OwnerCannotLeave => ApiFailure::Invalid {
            code: "owner_cannot_leave",
            message: err.to_string(),
        },
        RoomError::TooManyRooms => ApiFailure::Invalid {
            code: "too_many_rooms",
            message: err.to_string(),
        },
        RoomError::TooManyMembers => ApiFailure::Invalid {
            code: "too_many_members",
            message: err.to_string(),
        },
    }
}

async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    let caller = crate::http_api::authenticated_user(&state, &headers)?;
    let room = state
        .rooms
        .get(&id)
        .ok_or(ApiFailure::NotFound("no such room"))?;
    if room.owner != caller {
        return Err(ApiFailure::Forbidden("only the room's owner may do this"));
    }
    let member = state
        .accounts
        .by_name(&username)
        .ok_or(ApiFailure::UnknownUser)?;
    state
        .rooms
        .add_member(&id, caller, member.id)
        .map_err(room_failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    let caller = crate::http_api::authenticated_user(&state, &headers)?;
    let room = state
        .rooms
        .get(&id)
        .ok_or(ApiFailure::NotFound("no such room"))?;
    let member = state.accounts.by_name(&username);
    let is_self = member.as_ref().is_some_and(|m| m.id == caller);
    if room.owner != caller && !is_self {
        return Err(ApiFailure::Forbidden(
            "only the room's owner may remove others",
        ));
    }
    let member = member.ok_or(ApiFailure::UnknownUser)?;
    state
        .rooms
        .remove_member(&id, caller, member.id)
        .map_err(room_failure)?;
    // After the membership is gone: a subscribe racing this one is either
    // refused or removed here (both run under the topic's lock).
    let sockets = state.topics.remove_user(
        &room.topic(),
        member.id,
        if is_self {
            "you left the room"
        } else {
            "you were removed from the room"
        },
    );
    tracing::info!(room = %room.id, member = %member.id, sockets, "member removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_rules() {
        let rooms = Rooms::default();
        let (owner, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let room = rooms.create("r", owner, &[a, a, owner]).unwrap();
        assert_eq!(room.members, [owner, a]);
        assert!(crate::topics::is_valid_topic(&room.topic()));
        assert_eq!(rooms.of_topic(&room.topic()), Some(room.clone()));
        assert_eq!(rooms.membership(&room.topic(), a), Some(true));
        assert_eq!(rooms.membership(&room.topic(), b), Some(false));
        assert_eq!(rooms.membership("room:nope", a), None);
        assert_eq!(rooms.membership(&format!("chat:{}", room.id), a), None);
        assert_eq!(rooms.add_member(&room.id, a, b), Err(RoomError::NotOwner));
        assert_eq!(rooms.add_member(&room.id, owner, b), Ok(()));
        assert_eq!(
            rooms.remove_member(&room.id, a, b),
            Err(RoomError::NotOwner)
        );
        assert_eq!(rooms.remove_member(&room.id, b, b), Ok(()));
        assert_eq!(
            rooms.remove_member(&room.id, owner, owner),
            Err(RoomError::OwnerCannotLeave)
        );
        assert_eq!(rooms.remove_member(&room.id, owner, a), Ok(()));
        assert_eq!(
            rooms.remove_member(&room.id, owner, a),
            Err(RoomError::NotAMember)
        );
        assert_eq!(rooms.of_member(a), []);
        assert_eq!(rooms.of_member(owner).len(), 1);
        assert_eq!(
            rooms.add_member("nope", owner, a),
            Err(RoomError::NoSuchRoom)
        );
    }

    #[test]
    fn rooms_per_owner_and_members_per_room_are_bounded() {
        let rooms = Rooms::default();
        let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 1..MAX_ROOMS_PER_OWNER {
            rooms.create("r", owner, &[]).unwrap();
        }
        let last = rooms.create("r", owner, &[]).unwrap();
        assert_eq!(rooms.create("r", owner, &[]), Err(RoomError::TooManyRooms));
        assert!(rooms.create("r", other, &[]).is_ok());
        let many: Vec<Uuid> = (0..MAX_MEMBERS).map(|_| Uuid::new_v4()).collect();
        assert_eq!(
            rooms.create("r", other, &many),
            Err(RoomError::TooManyMembers)
        );
        let full = rooms.create("r", other, &many[1..]).unwrap();
        assert_eq!(full.members.len(), MAX_MEMBERS);
        assert_eq!(
            rooms.add_member(&full.id, other, Uuid::new_v4()),
            Err(RoomError::TooManyMembers)
        );
        assert_eq!(rooms.add_member(&full.id, other, many[5]), Ok(()));
        assert_eq!(rooms.add_member(&last.id, owner, other), Ok(()));
    }
}
