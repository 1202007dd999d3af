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

use super::{Redis, StoreError};
use crate::rooms::{MAX_MEMBERS, MAX_ROOMS_PER_OWNER, ROOM_TOPIC_KIND, Room, RoomError};
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;
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

/// The Redis room records.
#[derive(Debug)]
pub struct RedisRooms {
    redis: Redis,
}

impl RedisRooms {
    /// Records on `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
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
            Ok(Ok(()))
        } else {
            Err(StoreError::Corrupt("a new room id exists already".into()))
        }
    }

    /// The room `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Room>, StoreError> {
        Ok(self.get_many(&[id.to_owned()]).await?.pop().flatten())
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
        ids.iter()
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
            .collect()
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
        Ok(exists.then_some(score.is_some()))
    }

    /// The rooms `user` belongs to (unsorted).
    pub async fn of_member(&self, user: Uuid) -> Result<Vec<Room>, StoreError> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.redis.user_key(user, "rooms"))
            .query_async(&mut self.redis.conn())
            .await?;
        Ok(self
            .get_many(&ids)
            .await?
            .into_iter()
            .flatten()
            .filter(|room| room.has_member(user))
            .collect())
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
            self.index(&[member], id, false).await?;
        }
        room_error(code)
    }
}

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("a room: {err}"))
}
