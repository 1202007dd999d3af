//! Rooms: an owner and members, the Rooms HTTP API (Bearer token) and the
//! permission of topic `room:<id>`: members subscribe and publish, others
//! are refused. Contract: "Rooms" in `shared/PROTOCOL.md`.
//!
//! `GET /api/rooms`, `POST /api/rooms`, `PUT` and `DELETE
//! /api/rooms/{id}/members/{username}`. Removing a member ends each of
//! their subscriptions to the room's topic at once (`unsubscribed
//! removed`), on every instance ([`crate::redis::control`]). With Redis
//! ([`crate::redis::rooms`]) rooms and members are shared by every instance.

use crate::AppState;
use crate::error::{ApiFailure, parse_json};
use crate::redis::StoreError;
use crate::redis::control::ControlEvent;
use crate::redis::rooms::RedisRooms;
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

/// Every room: in memory (the default) or on Redis
/// ([`crate::redis::rooms`]).
#[derive(Debug, Default)]
pub struct Rooms {
    memory: MemoryRooms,
    redis: Option<RedisRooms>,
}

#[derive(Debug, Default)]
struct MemoryRooms {
    rooms: RwLock<HashMap<String, Room>>,
    owned: std::sync::Mutex<HashMap<Uuid, usize>>,
}

/// The id of the room of topic `room:<id>`.
fn room_id(topic: &str) -> Option<&str> {
    topic.strip_prefix(ROOM_TOPIC_KIND)?.strip_prefix(':')
}

impl Rooms {
    /// Rooms on Redis, shared by every instance.
    pub fn redis(redis: crate::redis::Redis) -> Self {
        Self {
            memory: MemoryRooms::default(),
            redis: Some(RedisRooms::new(redis)),
        }
    }

    /// Creates a room owned by `owner` with `members` (the owner is added
    /// first; duplicates are dropped).
    pub async fn create(
        &self,
        name: &str,
        owner: Uuid,
        members: &[Uuid],
    ) -> Result<Result<Room, RoomError>, StoreError> {
        let mut all = vec![owner];
        let mut seen = std::collections::HashSet::from([owner]);
        for member in members {
            if seen.insert(*member) {
                all.push(*member);
            }
        }
        if all.len() > MAX_MEMBERS {
            return Ok(Err(RoomError::TooManyMembers));
        }
        let room = Room {
            id: Uuid::new_v4().simple().to_string(),
            name: name.to_owned(),
            owner,
            members: all,
        };
        if let Some(redis) = &self.redis {
            return Ok(redis.create(&room).await?.map(|()| room));
        }
        Ok(self.memory.create(room))
    }

    /// The room with this id.
    pub async fn get(&self, id: &str) -> Result<Option<Room>, StoreError> {
        match &self.redis {
            Some(redis) => redis.get(id).await,
            None => Ok(self.memory.rooms.read().expect("lock").get(id).cloned()),
        }
    }

    /// The room of topic `room:<id>`.
    pub async fn of_topic(&self, topic: &str) -> Result<Option<Room>, StoreError> {
        match room_id(topic) {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// Whether `user` is a member of the room of topic `room:<id>`; `None`
    /// when there is no such room. Clones nothing (it runs on every
    /// subscribe and publish); one round trip on Redis.
    pub async fn membership(&self, topic: &str, user: Uuid) -> Result<Option<bool>, StoreError> {
        let Some(id) = room_id(topic) else {
            return Ok(None);
        };
        match &self.redis {
            Some(redis) => redis.membership(id, user).await,
            None => {
                let rooms = self.memory.rooms.read().expect("lock");
                Ok(rooms.get(id).map(|room| room.has_member(user)))
            }
        }
    }

    /// The rooms `user` belongs to, by name then id.
    pub async fn of_member(&self, user: Uuid) -> Result<Vec<Room>, StoreError> {
        let mut rooms: Vec<Room> = match &self.redis {
            Some(redis) => redis.of_member(user).await?,
            None => self
                .memory
                .rooms
                .read()
                .expect("lock")
                .values()
                .filter(|r| r.has_member(user))
                .cloned()
                .collect(),
        };
        rooms.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(rooms)
    }

    /// `caller` adds `member` (owner only; adding a member again is fine).
    pub async fn add_member(
        &self,
        id: &str,
        caller: Uuid,
        member: Uuid,
    ) -> Result<Result<(), RoomError>, StoreError> {
        match &self.redis {
            Some(redis) => redis.add_member(id, caller, member).await,
            None => Ok(self.memory.add_member(id, caller, member)),
        }
    }

    /// `caller` removes `member`: the owner removing another member, or a
    /// member leaving. (Ending their subscriptions is the caller's:
    /// [`crate::redis::control::ControlEvent::MemberRemoved`].)
    pub async fn remove_member(
        &self,
        id: &str,
        caller: Uuid,
        member: Uuid,
    ) -> Result<Result<(), RoomError>, StoreError> {
        match &self.redis {
            Some(redis) => redis.remove_member(id, caller, member).await,
            None => Ok(self.memory.remove_member(id, caller, member)),
        }
    }
}

impl MemoryRooms {
    fn create(&self, room: Room) -> Result<Room, RoomError> {
        {
            let mut owned = self.owned.lock().expect("lock");
            let count = owned.entry(room.owner).or_default();
            if *count >= MAX_ROOMS_PER_OWNER {
                return Err(RoomError::TooManyRooms);
            }
            *count += 1;
        }
        self.rooms
            .write()
            .expect("lock")
            .insert(room.id.clone(), room.clone());
        Ok(room)
    }

    fn add_member(&self, id: &str, caller: Uuid, member: Uuid) -> Result<(), RoomError> {
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

    fn remove_member(&self, id: &str, caller: Uuid, member: Uuid) -> Result<(), RoomError> {
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
/// may. When the store cannot tell: [`SubscribeErrorCode::Unavailable`]
/// (not final: the client retries).
///
/// The subscribe path calls this twice: before registering the
/// subscription and again after it (a removal that raced the subscribe is
/// then seen, and the subscription undone), because a removal is stored
/// before its [`crate::redis::control::ControlEvent::MemberRemoved`] ends
/// the subscriptions.
pub async fn may_subscribe(
    state: &AppState,
    topic: &str,
    user: Uuid,
) -> Result<(), SubscribeErrorCode> {
    match state.rooms.membership(topic, user).await {
        Ok(None) => Err(SubscribeErrorCode::NotFound),
        Ok(Some(true)) => Ok(()),
        Ok(Some(false)) => Err(SubscribeErrorCode::Forbidden),
        Err(err) => {
            tracing::warn!(%err, "membership check failed");
            Err(SubscribeErrorCode::Unavailable)
        }
    }
}

/// Whether `user` may publish to `topic` (a topic that does not exist
/// included: no); an error when the store cannot tell (`nack
/// rate_limited`: the client resends).
pub async fn may_publish(state: &AppState, topic: &str, user: Uuid) -> Result<bool, StoreError> {
    Ok(state.rooms.membership(topic, user).await? == Some(true))
}

/// A user on the wire, `{"user_id","username"}`; `None` for an unknown id.
pub async fn wire_user(state: &AppState, id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(state.accounts.by_id(id).await?.map(|u| User {
        user_id: u.id.to_string(),
        username: u.username.clone(),
    }))
}

/// A room as JSON: `{"id","name","owner","members"}`.
#[derive(Debug, Serialize)]
struct RoomJson {
    id: String,
    name: String,
    owner: User,
    members: Vec<User>,
}

async fn room_json(state: &AppState, room: &Room) -> Result<RoomJson, StoreError> {
    let mut ids = Vec::with_capacity(room.members.len() + 1);
    ids.push(room.owner);
    ids.extend(&room.members);
    let users = state.accounts.by_ids(&ids).await?;
    let mut users = ids.iter().zip(users).map(|(id, user)| match user {
        Some(u) => User {
            user_id: u.id.to_string(),
            username: u.username.clone(),
        },
        None => User {
            user_id: id.to_string(),
            username: String::new(),
        },
    });
    Ok(RoomJson {
        id: room.id.clone(),
        name: room.name.clone(),
        owner: users.next().expect("the owner"),
        members: users.collect(),
    })
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
    let user = crate::http_api::authenticated_user(&state, &headers).await?;
    let mut rooms = Vec::new();
    for room in state.rooms.of_member(user).await? {
        rooms.push(room_json(&state, &room).await?);
    }
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
    let owner = crate::http_api::authenticated_user(&state, &headers).await?;
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
        match state.accounts.by_name(username).await? {
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
        .await?
        .map_err(room_failure)?;
    tracing::info!(room = %room.id, %owner, members = room.members.len(), "room created");
    Ok((StatusCode::CREATED, Json(room_json(&state, &room).await?)).into_response())
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
    let caller = crate::http_api::authenticated_user(&state, &headers).await?;
    let room = state
        .rooms
        .get(&id)
        .await?
        .ok_or(ApiFailure::NotFound("no such room"))?;
    if room.owner != caller {
        return Err(ApiFailure::Forbidden("only the room's owner may do this"));
    }
    let member = state
        .accounts
        .by_name(&username)
        .await?
        .ok_or(ApiFailure::UnknownUser)?;
    state
        .rooms
        .add_member(&id, caller, member.id)
        .await?
        .map_err(room_failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, username)): Path<(String, String)>,
) -> Result<Response, ApiFailure> {
    let caller = crate::http_api::authenticated_user(&state, &headers).await?;
    let room = state
        .rooms
        .get(&id)
        .await?
        .ok_or(ApiFailure::NotFound("no such room"))?;
    let member = state.accounts.by_name(&username).await?;
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
        .await?
        .map_err(room_failure)?;
    // After the membership is gone: a subscribe racing this one sees it
    // gone when it checks again after registering, or is ended here (on
    // every instance).
    let sockets = crate::redis::control::announce(
        &state,
        state.redis.as_ref(),
        ControlEvent::MemberRemoved {
            room_id: room.id.clone(),
            user_id: member.id,
            left: is_self,
        },
    )
    .await;
    tracing::info!(room = %room.id, member = %member.id, sockets, "member removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
