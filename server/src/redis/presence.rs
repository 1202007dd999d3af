//! Topic presence across instances: who is subscribed to a topic on any
//! instance, and join/leave events when a user's first subscription (on any
//! instance) starts or their last one ends.
//!
//! Per topic a hash `<prefix>{t:<topic>}:presence`: field
//! `<instance>|<user id>` (one per instance where the user has a local
//! subscription), value `<expires at, ms>|<username>`. Each instance
//! refreshes its own fields every [`HEARTBEAT`]; a field not refreshed
//! within [`TTL`] (its instance died) is swept by the others' heartbeats,
//! with a leave when it was that user's last; the hash itself expires
//! when no instance refreshes it. Join and leave are decided
//! and announced on the topic's channel (`p j|l <except> <user id>
//! <username>`) by one script each, so two instances cannot both announce
//! one user's join. The operations of one instance run in order on one
//! task (a join and a leave of the same user never swap).

use super::{Redis, StoreError};
use crate::topics::User;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often an instance refreshes its presence fields (and sweeps).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a field lives without a refresh.
pub const TTL: Duration = Duration::from_secs(30);

/// Whether another instance's live field of user ARGV[user] exists
/// (fields are `<instance>|<user>`, values `<expiry>|<name>`).
const OTHERS: &str = r"
local function others(all, own, user, now)
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    local bar = string.find(f, '|', 1, true)
    local vbar = string.find(v, '|', 1, true)
    if f ~= own and bar and vbar and string.sub(f, bar + 1) == user
        and tonumber(string.sub(v, 1, vbar - 1)) >= now then
      return true
    end
  end
  return false
end
";

/// KEYS: hash. ARGV: now, field, value, user id, channel, message, the
/// hash's lifetime (ms; refreshed by every join and heartbeat).
static JOIN: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{OTHERS}
local all = redis.call('HGETALL', KEYS[1])
local present = others(all, ARGV[2], ARGV[4], tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
if not present then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 0
"
    ))
});

/// KEYS: hash. ARGV: now, field, user id, channel, message.
static LEAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{OTHERS}
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
local all = redis.call('HGETALL', KEYS[1])
if not others(all, ARGV[2], ARGV[3], tonumber(ARGV[1])) then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 0
",
    ))
});

/// KEYS: hash. ARGV: now, channel, instance, new expiry, the hash's
/// lifetime (ms). Refreshes this instance's fields, drops expired ones and
/// announces the leaves.
static SWEEP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local live, gone = {}, {}
for i = 1, #all, 2 do
  local f, v = all[i], all[i + 1]
  local bar = string.find(f, '|', 1, true)
  local vbar = string.find(v, '|', 1, true)
  if bar and vbar then
    local instance, user = string.sub(f, 1, bar - 1), string.sub(f, bar + 1)
    local expiry, name = tonumber(string.sub(v, 1, vbar - 1)), string.sub(v, vbar + 1)
    if instance == ARGV[3] then
      redis.call('HSET', KEYS[1], f, ARGV[4] .. '|' .. name)
      live[user] = true
    elseif expiry < now then
      redis.call('HDEL', KEYS[1], f)
      gone[user] = name
    else
      live[user] = true
    end
  end
end
for user, name in pairs(gone) do
  if not live[user] then
    redis.call('PUBLISH', ARGV[2], 'p l - ' .. user .. ' ' .. name)
  end
end
if #all > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 0
",
    )
});

enum Op {
    Join {
        topic: Arc<str>,
        user: User,
        except: u64,
    },
    Leave {
        topic: Arc<str>,
        user: User,
    },
    Read {
        topic: Arc<str>,
        reply: oneshot::Sender<Result<Vec<User>, StoreError>>,
    },
}

/// This instance's presence on Redis.
#[derive(Debug)]
pub struct Presence {
    redis: Redis,
    instance: String,
    ops: mpsc::UnboundedSender<Op>,
    /// The (topic, user id) pairs with local subscriptions.
    local: Mutex<HashMap<Arc<str>, HashSet<String>>>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Join { .. } => "Join",
            Self::Leave { .. } => "Leave",
            Self::Read { .. } => "Read",
        })
    }
}

fn now_ms() -> i64 {
    crate::now_ms()
}

/// How long a presence hash lives without a join or heartbeat: twice
/// [`TTL`] (a topic nobody holds any more leaves no garbage).
fn lifetime_ms() -> u64 {
    2 * TTL.as_millis() as u64
}

impl Presence {
    /// Presence on `redis`, as a new instance; starts its task and
    /// heartbeat (they end when the returned handle is dropped).
    pub fn start(redis: Redis) -> Arc<Self> {
        let (ops, rx) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            redis,
            instance: super::streams::new_epoch(),
            ops,
            local: Mutex::default(),
        });
        tokio::spawn(run(Arc::downgrade(&presence), rx));
        presence
    }

    /// This instance's id (in presence fields and messages).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn key(&self, topic: &str) -> String {
        self.redis.topic_key(topic, "presence")
    }

    /// The user's first local subscription of `topic` started (the
    /// subscriber `except` is not told).
    pub fn join(&self, topic: &Arc<str>, user: &User, except: u64) {
        self.local
            .lock()
            .expect("lock")
            .entry(topic.clone())
            .or_default()
            .insert(user.user_id.clone());
        let _ = self.ops.send(Op::Join {
            topic: topic.clone(),
            user: user.clone(),
            except,
        });
    }

    /// The user's last local subscription of `topic` ended.
    pub fn leave(&self, topic: &Arc<str>, user: &User) {
        {
            let mut local = self.local.lock().expect("lock");
            if let Some(users) = local.get_mut(topic) {
                users.remove(&user.user_id);
                if users.is_empty() {
                    local.remove(topic);
                }
            }
        }
        let _ = self.ops.send(Op::Leave {
            topic: topic.clone(),
            user: user.clone(),
        });
    }

    /// The users subscribed to `topic` on any instance, each once, sorted
    /// by username (after this instance's queued joins and leaves).
    pub async fn read(&self, topic: &Arc<str>) -> Result<Vec<User>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Read {
                topic: topic.clone(),
                reply,
            })
            .map_err(|_| StoreError::Unavailable("the presence task ended".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the presence task ended".into()))?
    }

    async fn apply(&self, op: Op) {
        let mut conn = self.redis.conn();
        let expiry = now_ms() + TTL.as_millis() as i64;
        let result: Result<(), StoreError> = match op {
            Op::Join {
                topic,
                user,
                except,
            } => JOIN
                .key(self.key(&topic))
                .arg(now_ms())
                .arg(format!("{}|{}", self.instance, user.user_id))
                .arg(format!("{expiry}|{}", user.username))
                .arg(&user.user_id)
                .arg(self.redis.topic_key(&topic, "live"))
                .arg(format!(
                    "p j {}:{except} {} {}",
                    self.instance, user.user_id, user.username
                ))
                .arg(lifetime_ms())
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(StoreError::from),
            Op::Leave { topic, user } => LEAVE
                .key(self.key(&topic))
                .arg(now_ms())
                .arg(format!("{}|{}", self.instance, user.user_id))
                .arg(&user.user_id)
                .arg(self.redis.topic_key(&topic, "live"))
                .arg(format!("p l - {} {}", user.user_id, user.username))
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(StoreError::from),
            Op::Read { topic, reply } => {
                let read = redis::cmd("HGETALL")
                    .arg(self.key(&topic))
                    .query_async::<Vec<(String, String)>>(&mut conn)
                    .await
                    .map_err(StoreError::from)
                    .map(|fields| present(&fields, now_ms()));
                let _ = reply.send(read);
                Ok(())
            }
        };
        if let Err(err) = result {
            tracing::info!(%err, "presence not updated");
        }
    }

    async fn heartbeat(&self) {
        let topics: Vec<Arc<str>> = self.local.lock().expect("lock").keys().cloned().collect();
        let expiry = now_ms() + TTL.as_millis() as i64;
        for topic in topics {
            let swept: Result<i64, _> = SWEEP
                .key(self.key(&topic))
                .arg(now_ms())
                .arg(self.redis.topic_key(&topic, "live"))
                .arg(&self.instance)
                .arg(expiry)
                .arg(lifetime_ms())
                .invoke_async(&mut self.redis.conn())
                .await;
            if let Err(err) = swept {
                tracing::info!(%err, "presence not refreshed");
            }
        }
    }
}

/// The live users of a presence hash, each once, sorted by username.
fn present(fields: &[(String, String)], now: i64) -> Vec<User> {
    let mut users: HashMap<&str, &str> = HashMap::new();
    for (field, value) in fields {
        let (Some((_, user)), Some((expiry, name))) =
            (field.split_once('|'), value.split_once('|'))
        else {
            continue;
        };
        if expiry.parse::<i64>().is_ok_and(|e| e >= now) {
            users.insert(user, name);
        }
    }
    let mut users: Vec<User> = users
        .into_iter()
        .map(|(id, name)| User {
            user_id: id.to_owned(),
            username: name.to_owned(),
        })
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username).then(a.user_id.cmp(&b.user_id)));
    users
}

async fn run(presence: std::sync::Weak<Presence>, mut ops: mpsc::UnboundedReceiver<Op>) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            op = ops.recv() => {
                let (Some(op), Some(presence)) = (op, presence.upgrade()) else {
                    return;
                };
                presence.apply(op).await;
            }
            _ = heartbeat.tick() => {
                let Some(presence) = presence.upgrade() else {
                    return;
                };
                presence.heartbeat().await;
            }
        }
    }
}

/// A presence event of a topic's channel: `p j|l <except> <user> <name>`
/// (the part after `p `).
pub fn parse(rest: &str) -> Option<super::streams::LiveEvent> {
    let mut parts = rest.splitn(4, ' ');
    let joined = match parts.next()? {
        "j" => true,
        "l" => false,
        _ => return None,
    };
    let except = match parts.next()? {
        "-" => None,
        e => {
            let (instance, socket) = e.split_once(':')?;
            Some((instance.to_owned(), socket.parse().ok()?))
        }
    };
    let user_id = parts.next()?.to_owned();
    let username = parts.next()?.to_owned();
    Some(super::streams::LiveEvent::Presence {
        joined,
        except,
        user: User { user_id, username },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_users_are_the_live_fields_once_each() {
        let fields = vec![
            ("a|u1".to_owned(), "100|zed".to_owned()),
            ("b|u1".to_owned(), "100|zed".to_owned()),
            ("a|u2".to_owned(), "5|old".to_owned()),
            ("b|u3".to_owned(), "100|amy b".to_owned()),
        ];
        let users = present(&fields, 50);
        let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["amy b", "zed"]);
        assert_eq!(
            parse("j i:7 u1 amy b"),
            Some(super::super::streams::LiveEvent::Presence {
                joined: true,
                except: Some(("i".into(), 7)),
                user: User {
                    user_id: "u1".into(),
                    username: "amy b".into()
                }
            })
        );
        assert!(matches!(
            parse("l - u1 x"),
            Some(super::super::streams::LiveEvent::Presence {
                joined: false,
                except: None,
                ..
            })
        ));
        assert!(parse("x - u1 x").is_none());
    }
}
