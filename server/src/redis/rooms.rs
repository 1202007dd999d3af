//! Rooms on Redis: every instance sees the same rooms and members.
//!
//! Keys (a room's keys share its topic's slot, `{t:room:<id>}`):
//! - `{t:room:<id>}:room`: a hash `name`, `owner`, `seq` (members added);
//! - `{t:room:<id>}:members`: a sorted set of member ids by the order they
//!   were added (the owner first): the authority on membership;
//! - `{u:<id>}:rooms`: a set of the ids of the rooms the user may belong
//!   to (an index for "my rooms": added to before a member is added,
//!   removed from after; read through the members set);
//! - `{u:<id>}:rooms-owned`: how many rooms the user owns (the cap).
//!
//! Each change to a room is one Lua script on the room's slot.
//!
//! Each instance also remembers the rooms it has seen (created, read,
//! changed; a member removed anywhere is forgotten by
//! [`RedisRooms::forget_member`]), at most [`MAX_KNOWN`]: when Redis lost
//! its data (restarted empty), the first instance that looks for a room it
//! knows writes it back as it last saw it, so that the rooms' topics go on
//! (a member added through another instance since may be missing from it).
//! Rooms are never deleted, so a room missing from Redis that an instance
//! knows was lost, not deleted.

use super::{Redis, StoreError};
use crate::rooms::{MAX_MEMBERS, MAX_ROOMS_PER_OWNER, ROOM_TOPIC_KIND, Room, RoomError};
use redis::Script;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// KEYS: room hash, members. ARGV: name, then the members, owner first.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'owner', ARGV[2], 'seq', #ARGV - 1)
for i = 2, #ARGV do redis.call('ZADD', KEYS[2], i - 1, ARGV[i]) end
return 1
",
    )
});

/// KEYS: room hash, members. ARGV: caller, member, max members.
/// Returns 0 ok, 1 no room, 2 not owner, 3 too many members.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 1 end
if owner ~= ARGV[1] then return 2 end
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 3 end
redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[1], 'seq', 1), ARGV[2])
return 0
",
    )
});

/// KEYS: room hash, members. ARGV: caller, member.
/// Returns 0 ok, 1 no room, 2 not owner, 4 owner cannot leave, 5 not a member.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 1 end
if ARGV[1] ~= owner and ARGV[1] ~= ARGV[2] then return 2 end
if ARGV[2] == owner then return 4 end
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then return 5 end
return 0
",
    )
});

fn room_error(code: i64) -> Result<Result<(), RoomError>, StoreError> {
    Ok(Err(match code {
        0 => return Ok(Ok(())),
        1 => RoomError::NoSuchRoom,
        2 => RoomError::NotOwner,
        3 => RoomError::TooManyMembers,
        4 => RoomError::OwnerCannotLeave,
        5 => RoomError::NotAMember,
        other => {
            return Err(StoreError::Corrupt(format!(
                "a room change answered {other}"
            )));
        }
    }))
}

/// Rooms an instance remembers for writing back (beyond it, it forgets
/// them all and starts again).
pub const MAX_KNOWN: usize = 10_000;

/// The Redis room records.
#[derive(Debug)]
pub struct RedisRooms {
    redis: Redis,
    known: Mutex<HashMap<String, Room>>,
}

impl RedisRooms {
    /// Records on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            known: Mutex::default(),
        }
    }

    fn remember(&self, room: &Room) {
        let mut known = self.known.lock().expect("lock");
        if known.len() >= MAX_KNOWN && !known.contains_key(&room.id) {
            known.clear();
        }
        known.insert(room.id.clone(), room.clone());
    }

    fn known(&self, id: &str) -> Option<Room> {
        self.known.lock().expect("lock").get(id).cloned()
    }

    /// Forgets that `member` belongs to room `id` (removed through any
    /// instance), so that a write-back does not bring them back.
    pub fn forget_member(&self, id: &str, member: Uuid) {
        if let Some(room) = self.known.lock().expect("lock").get_mut(id) {
            room.members.retain(|m| *m != member);
        }
    }

    /// Writes back a room this instance knows that Redis lost (unless
    /// another instance did first); returns it as known here.
    async fn restore(&self, id: &str) -> Result<Option<Room>, StoreError> {
        let Some(room) = self.known(id) else {
            return Ok(None);
        };
        self.index(&room.members, &room.id, true).await?;
        let mut invocation = CREATE.key(self.key(&room.id, "room"));
        invocation
            .key(self.key(&room.id, "members"))
            .arg(&room.name);
        for member in &room.members {
            invocation.arg(member.to_string());
        }
        let written: i64 = invocation.invoke_async(&mut self.redis.conn()).await?;
        if written == 1 {
            tracing::warn!(room = %room.id, "a room Redis lost was written back");
        }
        Ok(Some(room))
    }

    fn key(&self, id: &str, suffix: &str) -> String {
        self.redis
            .topic_key(&format!("{ROOM_TOPIC_KIND}:{id}"), suffix)
    }

    async fn index(&self, users: &[Uuid], id: &str, add: bool) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for user in users {
            pipe.cmd(if add { "SADD" } else { "SREM" })
                .arg(self.redis.user_key(*user, "rooms"))
                .arg(id)
                .ignore();
        }
        let () = pipe.query_async(&mut self.redis.conn()).await?;
        Ok(())
    }

    /// Creates room `room` (its members deduplicated, the owner first).
    pub async fn create(&self, room: &Room) -> Result<Result<(), RoomError>, StoreError> {
        let r = &self.redis;
        let mut conn = r.conn();
        let owned_key = r.user_key(room.owner, "rooms-owned");
        let owned: u64 = redis::cmd("INCR")
            .arg(&owned_key)
            .query_async(&mut conn)
            .await?;
        if owned > MAX_ROOMS_PER_OWNER as u64 {
            let _: i64 = redis::cmd("DECR")
                .arg(&owned_key)
                .query_async(&mut conn)
                .await?;
            return Ok(Err(RoomError::TooManyRooms));
        }
        self.index(&room.members, &room.id, true).await?;
        let mut invocation = CREATE.key(self.key(&room.id, "room"));
        invocation
            .key(self.key(&room.id, "members"))
            .arg(&room.name);
        for member in &room.members {
            invocation.arg(member.to_string());
        }
        let created: i64 = invocation.invoke_async(&mut conn).await?;
        if created == 1 {
            self.remember(room);
            Ok(Ok(()))
        } else {
            Err(StoreError::Corrupt("a new room id exists already".into()))
        }
    }

    /// The room `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Room>, StoreError> {
        match self.get_many(&[id.to_owned()]).await?.pop().flatten() {
            Some(room) => Ok(Some(room)),
            None => self.restore(id).await,
        }
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Option<Room>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGETALL")
                .arg(self.key(id, "room"))
                .cmd("ZRANGE")
                .arg(self.key(id, "members"))
                .arg(0)
                .arg(-1);
        }
        let answers: Vec<(HashMap<String, String>, Vec<String>)> = {
            let flat: Vec<redis::Value> = pipe.query_async(&mut self.redis.conn()).await?;
            let mut pairs = Vec::with_capacity(ids.len());
            let mut flat = flat.into_iter();
            while let (Some(hash), Some(members)) = (flat.next(), flat.next()) {
                pairs.push((
                    redis::from_redis_value(hash).map_err(corrupt)?,
                    redis::from_redis_value(members).map_err(corrupt)?,
                ));
            }
            pairs
        };
        let rooms: Vec<Option<Room>> = ids
            .iter()
            .zip(answers)
            .map(|(id, (mut hash, members))| {
                let (Some(name), Some(owner)) = (hash.remove("name"), hash.remove("owner")) else {
                    return Ok(None);
                };
                let parse = |text: &str| {
                    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt("a room member".into()))
                };
                Ok(Some(Room {
                    id: id.clone(),
                    name,
                    owner: parse(&owner)?,
                    members: members.iter().map(|m| parse(m)).collect::<Result<_, _>>()?,
                }))
            })
            .collect::<Result<_, StoreError>>()?;
        for room in rooms.iter().flatten() {
            self.remember(room);
        }
        Ok(rooms)
    }

    /// Whether `user` is a member of room `id`; `None` if there is none
    /// (one round trip).
    pub async fn membership(&self, id: &str, user: Uuid) -> Result<Option<bool>, StoreError> {
        let (exists, score): (bool, Option<f64>) = redis::pipe()
            .cmd("EXISTS")
            .arg(self.key(id, "room"))
            .cmd("ZSCORE")
            .arg(self.key(id, "members"))
            .arg(user.to_string())
            .query_async(&mut self.redis.conn())
            .await?;
        if !exists {
            return Ok(self.restore(id).await?.map(|room| room.has_member(user)));
        }
        if self.known(id).is_none() {
            // Read once in full, to be able to write it back.
            self.get(id).await?;
        }
        Ok(Some(score.is_some()))
    }

    /// The rooms `user` belongs to (unsorted).
    pub async fn of_member(&self, user: Uuid) -> Result<Vec<Room>, StoreError> {
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.redis.user_key(user, "rooms"))
            .query_async(&mut self.redis.conn())
            .await?;
        // And the rooms known here to have the user (their index may be
        // what Redis lost).
        let known: Vec<String> = self
            .known
            .lock()
            .expect("lock")
            .values()
            .filter(|room| room.has_member(user))
            .map(|room| room.id.clone())
            .collect();
        for id in known {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut rooms = Vec::with_capacity(ids.len());
        for (id, room) in ids.iter().zip(self.get_many(&ids).await?) {
            let room = match room {
                Some(room) => Some(room),
                None => self.restore(id).await?,
            };
            rooms.extend(room.filter(|room| room.has_member(user)));
        }
        Ok(rooms)
    }

    /// `caller` adds `member` to room `id`.
    pub async fn add_member(
        &self,
        id: &str,
        caller: Uuid,
        member: Uuid,
    ) -> Result<Result<(), RoomError>, StoreError> {
        self.index(&[member], id, true).await?;
        let code: i64 = ADD
            .key(self.key(id, "room"))
            .key(self.key(id, "members"))
            .arg(caller.to_string())
            .arg(member.to_string())
            .arg(MAX_MEMBERS)
            .invoke_async(&mut self.redis.conn())
            .await?;
        if code == 0
            && let Some(room) = self.known.lock().expect("lock").get_mut(id)
            && !room.has_member(member)
        {
            room.members.push(member);
        }
        room_error(code)
    }

    /// `caller` removes `member` from room `id`.
    pub async fn remove_member(
        &self,
        id: &str,
        caller: Uuid,
        member: Uuid,
    ) -> Result<Result<(), RoomError>, StoreError> {
        let code: i64 = REMOVE
            .key(self.key(id, "room"))
            .key(self.key(id, "members"))
            .arg(caller.to_string())
            .arg(member.to_string())
            .invoke_async(&mut self.redis.conn())
            .await?;
        if code == 0 {
            self.forget_member(id, member);
            self.index(&[member], id, false).await?;
        }
        room_error(code)
    }
}

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("a room: {err}"))
}
