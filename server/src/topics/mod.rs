//! Topics (`room:<id>`): subscriptions, per-topic offsets and recovery,
//! publishing with de-duplicated ids, presence, and the server-initiated
//! ends of a subscription (removal, reset). Contract: "Topics" in
//! `shared/PROTOCOL.md`.
//!
//! The history lives behind [`TopicStore`] ([`MemoryStore`] by default);
//! the live side (which socket is subscribed, as which user) is the
//! [`Topics`] hub of this process. Every operation on one topic runs under
//! that topic's lock: a message published while a socket subscribes lands
//! either in the socket's replay or in its live queue, never both, never
//! neither; an authorization check and the change it allows cannot be
//! separated by a removal.

pub mod store;

use crate::delivery::{BodyError, Claim, Inbox};
use crate::redis::StoreError;
use crate::redis::presence::Presence as SharedPresence;
use crate::redis::pubsub::PubSub;
use crate::redis::streams::LiveEvent;
use crate::registry::{Outbound, Outbox};
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub use store::{Entries, Head, Histories, History, MemoryStore, TopicStore};
pub use tether_protocol::{
    MAX_LAST, MAX_TOPIC_BYTES, MAX_TOPICS_PER_SOCKET, Position, SubscribeErrorCode, Subscribed,
    TOPIC_RETENTION, UnsubscribedCode, User, is_valid_topic,
};
use tether_protocol::{Presence, RawJson, ServerMessage, TopicMessage, Unsubscribed};

/// Encodes a server frame once, for every socket it goes to.
fn encode(message: ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(message.encode())
}

#[derive(Debug)]
struct Entry {
    user_id: Uuid,
    user: User,
    generation: u64,
    outbox: Outbox,
    /// The epoch the subscription started in (`None` while its subscribe
    /// is reading the history from Redis).
    epoch: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Live {
    /// By socket id.
    subscribers: HashMap<u64, Entry>,
    /// The users subscribed, each with their number of sockets.
    users: HashMap<Uuid, (User, usize)>,
}

/// What [`Live::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Added {
    /// The user had no other subscription here.
    Joined,
    /// The user had another socket subscribed.
    Counted,
    /// The socket was subscribed already (replaced, no join).
    Replaced,
}

impl Live {
    /// Adds (or replaces) a socket's subscription.
    fn add(&mut self, socket_id: u64, entry: Entry) -> Added {
        let user_id = entry.user_id;
        let user = entry.user.clone();
        if let Some(old) = self.subscribers.insert(socket_id, entry) {
            // A socket's user does not change under a subscription (a
            // re-auth as another user ends them first).
            debug_assert_eq!(old.user_id, user_id);
            return Added::Replaced;
        }
        let count = self.users.entry(user_id).or_insert((user, 0));
        count.1 += 1;
        if count.1 == 1 {
            Added::Joined
        } else {
            Added::Counted
        }
    }

    /// Removes a socket's subscription; with `true` when its user left
    /// (had no other).
    fn remove(&mut self, socket_id: u64) -> Option<(Entry, bool)> {
        let entry = self.subscribers.remove(&socket_id)?;
        let left = match self.users.get_mut(&entry.user_id) {
            Some(count) if count.1 > 1 => {
                count.1 -= 1;
                false
            }
            _ => {
                self.users.remove(&entry.user_id);
                true
            }
        };
        Some((entry, left))
    }

    /// Users subscribed now, each once, sorted by username.
    fn present(&self) -> Vec<User> {
        let mut users: Vec<User> = self.users.values().map(|(u, _)| u.clone()).collect();
        users.sort_by(|a, b| a.username.cmp(&b.username).then(a.user_id.cmp(&b.user_id)));
        users
    }

    /// Queues a live frame of `topic` to every subscriber but `except`.
    fn fan_out(
        &self,
        topic: &Arc<str>,
        frame: &Utf8Bytes,
        position: Option<(Arc<str>, u64)>,
        except: Option<u64>,
    ) {
        for (socket, s) in &self.subscribers {
            if Some(*socket) == except {
                continue;
            }
            // A closed socket is removed by its own cleanup.
            let _ = s.outbox.send(Outbound::Topic {
                topic: topic.clone(),
                generation: s.generation,
                position: position.clone(),
                frame: frame.clone(),
            });
        }
    }

    fn presence(&self, topic: &Arc<str>, joined: Vec<User>, left: Vec<User>, except: Option<u64>) {
        let frame = encode(ServerMessage::Presence(Presence {
            topic: topic.to_string(),
            joined,
            left,
        }));
        self.fan_out(topic, &frame, None, except);
    }
}

/// Who subscribes: one socket of one user.
#[derive(Debug, Clone, Copy)]
pub struct Subscriber<'a> {
    /// The socket.
    pub socket_id: u64,
    /// Its subscription's generation: live frames queued for an older
    /// subscription of the same socket to the same topic are dropped.
    pub generation: u64,
    /// The user's account id.
    pub user_id: Uuid,
    /// The user as the wire shows them.
    pub user: &'a User,
    /// The socket's live queue.
    pub outbox: &'a Outbox,
}

/// A granted subscription.
#[derive(Debug)]
pub struct Joined {
    /// The `subscribed` payload to send first.
    pub subscribed: Subscribed,
    /// The replayed `message` frames (offsets `from ..= offset`), to send
    /// after it as the socket drains.
    pub replay: Vec<Utf8Bytes>,
}

/// Who publishes.
#[derive(Debug, Clone, Copy)]
pub struct Publisher<'a> {
    /// The socket the `publish` came on (it must be subscribed).
    pub socket_id: u64,
    /// The user's account id.
    pub user_id: Uuid,
    /// The user as the wire shows them.
    pub user: &'a User,
    /// The client's publish id.
    pub id: &'a str,
    /// The de-duplication store (shared with `send`).
    pub inbox: &'a Inbox,
}

/// What a publish did (the answer to it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Published {
    /// Applied at this offset: `ack`.
    Applied(u64),
    /// This id was applied before: `ack` again with its topic and offset.
    Duplicate {
        /// The topic it was applied to.
        topic: String,
        /// Its offset.
        offset: u64,
    },
    /// `nack forbidden`: the user may not publish there.
    Forbidden,
    /// `nack not_subscribed`: the socket is not subscribed to the topic.
    NotSubscribed,
    /// `nack malformed_body`: the data cannot be taken exactly.
    MalformedBody(BodyError),
    /// `nack rate_limited`: too many ids in the de-duplication window, or
    /// the same id being applied on another topic right now.
    RateLimited,
    /// `nack rate_limited`: the shared store did not take it (nothing was
    /// published; the client resends).
    Unavailable,
}

/// The live topics of this process, over [`Histories`].
#[derive(Debug)]
pub struct Topics {
    store: Histories,
    pubsub: Option<Arc<PubSub>>,
    /// Presence across instances (Redis); `None`: this process's [`Live`].
    presence: Option<Arc<SharedPresence>>,
    live: Mutex<HashMap<Arc<str>, Arc<Mutex<Live>>>>,
    by_socket: Mutex<HashMap<u64, HashSet<Arc<str>>>>,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(Box::new(MemoryStore::default()))
    }
}

/// The `unsubscribed reset` frame of `topic` for its new `epoch`.
fn reset_frame(topic: &str, epoch: &str) -> Utf8Bytes {
    encode(ServerMessage::Unsubscribed(Unsubscribed {
        topic: topic.to_owned(),
        code: UnsubscribedCode::Reset,
        message: "the topic's history was reset; earlier messages may be missing".into(),
        epoch: Some(epoch.to_owned()),
    }))
}

impl Topics {
    /// A hub over `store` (in this process).
    pub fn new(store: Box<dyn TopicStore>) -> Self {
        Self {
            store: Histories::Memory(store),
            pubsub: None,
            presence: None,
            live: Mutex::default(),
            by_socket: Mutex::default(),
        }
    }

    /// A hub over Redis, keeping `retention` messages per topic; live
    /// frames and presence come by pub/sub ([`Topics::deliver`]). Starts
    /// the presence task (call within a Tokio runtime).
    pub fn redis(pubsub: Arc<PubSub>, retention: usize) -> Self {
        Self {
            store: Histories::Redis {
                redis: pubsub.redis().clone(),
                retention,
            },
            presence: Some(SharedPresence::start(pubsub.redis().clone())),
            pubsub: Some(pubsub),
            live: Mutex::default(),
            by_socket: Mutex::default(),
        }
    }

    /// The history store.
    pub fn store(&self) -> &Histories {
        &self.store
    }

    fn topic(&self, topic: &str) -> (Arc<str>, Arc<Mutex<Live>>) {
        let mut live = self.live.lock().expect("lock");
        if let Some((name, entry)) = live.get_key_value(topic) {
            return (name.clone(), entry.clone());
        }
        let name: Arc<str> = Arc::from(topic);
        let entry = Arc::new(Mutex::new(Live::default()));
        live.insert(name.clone(), entry.clone());
        (name, entry)
    }

    fn existing(&self, topic: &str) -> Option<(Arc<str>, Arc<Mutex<Live>>)> {
        let live = self.live.lock().expect("lock");
        live.get_key_value(topic)
            .map(|(name, entry)| (name.clone(), entry.clone()))
    }

    fn index(&self, socket_id: u64, topic: &Arc<str>, subscribed: bool) {
        let mut by_socket = self.by_socket.lock().expect("lock");
        if subscribed {
            by_socket
                .entry(socket_id)
                .or_default()
                .insert(topic.clone());
        } else if let Some(topics) = by_socket.get_mut(&socket_id) {
            topics.remove(topic);
            if topics.is_empty() {
                by_socket.remove(&socket_id);
            }
        }
    }

    /// Lets go of the topic's channel for one subscription that ended
    /// (Redis only).
    fn release(&self, topic: &str) {
        if let (Some(pubsub), Some(channel)) = (&self.pubsub, self.store.channel(topic)) {
            pubsub.release(channel);
        }
    }

    /// Tells who should know that `user` left `topic` (their last
    /// subscription here ended): this process's subscribers, or (Redis)
    /// every instance's when it was their last anywhere.
    fn left(&self, live: &Live, topic: &Arc<str>, user: User) {
        match &self.presence {
            Some(presence) => presence.leave(topic, &user),
            None => live.presence(topic, Vec::new(), vec![user], None),
        }
    }

    /// The topic's epoch and latest offset.
    ///
    /// # Errors
    /// [`StoreError`] when the shared store cannot be read.
    pub async fn head(&self, topic: &str) -> Result<Head, StoreError> {
        match &self.store {
            Histories::Memory(store) => {
                let (_, live) = self.topic(topic);
                let _guard = live.lock().expect("lock");
                Ok(store.head(topic))
            }
            Histories::Redis { .. } => self.store.head(topic).await,
        }
    }

    /// Subscribes (or re-subscribes, replacing the socket's subscription
    /// without a leave or join) if `authorize` allows it (it is called
    /// twice: before the topic's entry is made, and under its lock).
    /// Where the stream starts follows Topics rule 2: `since` of the same
    /// epoch with everything after it retained is `recovered: true` from
    /// `since.offset + 1`; otherwise (`recovered: false` when `since` was
    /// given) the newest `last` retained messages are replayed.
    ///
    /// In memory it all runs under the topic's lock. On Redis the topic's
    /// channel is subscribed and the socket added to the live subscribers
    /// before the history is read: a message may then come both in the
    /// replay and live, and the socket drops the second (by offset).
    /// [`SubscribeErrorCode::Unavailable`] when the store cannot be read.
    pub async fn subscribe(
        &self,
        topic: &str,
        who: Subscriber<'_>,
        since: Option<&Position>,
        last: u32,
        authorize: impl Fn() -> Result<(), SubscribeErrorCode>,
    ) -> Result<Joined, SubscribeErrorCode> {
        // Checked before the topic's entry is made (a refused name leaves
        // nothing behind), and again under its lock.
        authorize()?;
        let Histories::Memory(store) = &self.store else {
            return self
                .subscribe_shared(topic, who, since, last, authorize)
                .await;
        };
        let (name, live) = self.topic(topic);
        let mut live = live.lock().expect("lock");
        authorize()?;
        let head = store.head(topic);
        let recovered = since.and_then(|since| {
            (since.epoch == head.epoch).then(|| store.read_after(topic, since.offset))
        });
        let (recovered, from, replay) = match (since, recovered) {
            (Some(since), Some(History::Complete(frames))) => {
                (Some(true), since.offset + 1, frames)
            }
            (since, _) => {
                let replay = store.read_last(topic, last as usize);
                let from = head.offset + 1 - replay.len() as u64;
                (since.map(|_| false), from, replay)
            }
        };
        let added = live.add(
            who.socket_id,
            Entry {
                user_id: who.user_id,
                user: who.user.clone(),
                generation: who.generation,
                outbox: who.outbox.clone(),
                epoch: Some(Arc::from(head.epoch.as_str())),
            },
        );
        self.index(who.socket_id, &name, true);
        if added == Added::Joined {
            live.presence(
                &name,
                vec![who.user.clone()],
                Vec::new(),
                Some(who.socket_id),
            );
        }
        Ok(Joined {
            subscribed: Subscribed {
                topic: topic.to_owned(),
                epoch: head.epoch,
                offset: head.offset,
                from,
                recovered,
                presence: live.present(),
            },
            replay,
        })
    }

    /// [`Topics::subscribe`] on Redis.
    async fn subscribe_shared(
        &self,
        topic: &str,
        who: Subscriber<'_>,
        since: Option<&Position>,
        last: u32,
        authorize: impl Fn() -> Result<(), SubscribeErrorCode>,
    ) -> Result<Joined, SubscribeErrorCode> {
        let pubsub = self.pubsub.as_ref().expect("a Redis hub has pub/sub");
        let channel = self.store.channel(topic).expect("a Redis channel");
        pubsub.acquire(&channel).await;
        let (name, live) = self.topic(topic);
        let presence = {
            let mut live = live.lock().expect("lock");
            if let Err(code) = authorize() {
                drop(live);
                pubsub.release(channel);
                return Err(code);
            }
            let added = live.add(
                who.socket_id,
                Entry {
                    user_id: who.user_id,
                    user: who.user.clone(),
                    generation: who.generation,
                    outbox: who.outbox.clone(),
                    epoch: None,
                },
            );
            self.index(who.socket_id, &name, true);
            match added {
                Added::Joined => match &self.presence {
                    Some(presence) => presence.join(&name, who.user, who.socket_id),
                    None => live.presence(
                        &name,
                        vec![who.user.clone()],
                        Vec::new(),
                        Some(who.socket_id),
                    ),
                },
                Added::Counted => {}
                // One channel hold per subscription.
                Added::Replaced => pubsub.release(channel.clone()),
            }
            live.present()
        };
        let presence = match &self.presence {
            // After this instance's queued joins and leaves, this one's too.
            Some(shared) => shared.read(&name).await.unwrap_or(presence),
            None => presence,
        };
        let read = self.read_start(topic, since, last).await;
        let (head, recovered, from, replay) = match read {
            Ok(read) => read,
            Err(err) => {
                tracing::info!(%err, "subscribe: the store is unavailable");
                self.end_if(topic, who.socket_id, who.generation);
                return Err(SubscribeErrorCode::Unavailable);
            }
        };
        {
            let mut live = live.lock().expect("lock");
            if let Some(entry) = live.subscribers.get_mut(&who.socket_id)
                && entry.generation == who.generation
                && entry.epoch.is_none()
            {
                entry.epoch = Some(Arc::from(head.epoch.as_str()));
            }
        }
        Ok(Joined {
            subscribed: Subscribed {
                topic: topic.to_owned(),
                epoch: head.epoch,
                offset: head.offset,
                from,
                recovered,
                presence,
            },
            replay,
        })
    }

    /// Where a subscription starts (Topics rule 2), read from the store.
    async fn read_start(
        &self,
        topic: &str,
        since: Option<&Position>,
        last: u32,
    ) -> Result<(Head, Option<bool>, u64, Vec<Utf8Bytes>), StoreError> {
        if let Some(since) = since {
            let (head, history) = self.store.read_after(topic, since.offset).await?;
            if let (true, History::Complete(frames)) = (head.epoch == since.epoch, history) {
                return Ok((head, Some(true), since.offset + 1, frames));
            }
        }
        let (head, replay) = self.store.read_last(topic, last as usize).await?;
        let from = head.offset + 1 - replay.len() as u64;
        Ok((head, since.map(|_| false), from, replay))
    }

    /// Ends the socket's subscription of this generation without telling
    /// it (a subscribe that failed, or one the socket found to be of an
    /// older epoch), with a leave when it was the user's last. `false` when
    /// there was none (it ended already).
    pub fn end_if(&self, topic: &str, socket_id: u64, generation: u64) -> bool {
        self.end(topic, socket_id, Some(generation))
    }

    /// Ends the socket's subscription (of `generation`, or any), with a
    /// leave when it was the user's last; `false` when there was none.
    fn end(&self, topic: &str, socket_id: u64, generation: Option<u64>) -> bool {
        let Some((name, live)) = self.existing(topic) else {
            return false;
        };
        let mut live = live.lock().expect("lock");
        if let Some(generation) = generation
            && live
                .subscribers
                .get(&socket_id)
                .is_none_or(|e| e.generation != generation)
        {
            return false;
        }
        let Some((gone, left)) = live.remove(socket_id) else {
            return false;
        };
        self.index(socket_id, &name, false);
        self.release(topic);
        if left {
            self.left(&live, &name, gone.user);
        }
        true
    }

    /// The `unsubscribed reset` frame of `topic` for its new `epoch`.
    pub fn reset_frame(topic: &str, epoch: &str) -> Utf8Bytes {
        reset_frame(topic, epoch)
    }

    /// Ends the socket's subscription (if any), with a leave when it was
    /// the user's last on the topic. Returns whether there was one.
    pub fn unsubscribe(&self, topic: &str, socket_id: u64) -> bool {
        self.end(topic, socket_id, None)
    }

    /// Ends every subscription of a closed socket.
    pub fn remove_socket(&self, socket_id: u64) {
        let topics = self
            .by_socket
            .lock()
            .expect("lock")
            .remove(&socket_id)
            .unwrap_or_default();
        for topic in topics {
            self.unsubscribe(&topic, socket_id);
        }
    }

    /// The topics a socket is subscribed to now.
    pub fn topics_of(&self, socket_id: u64) -> Vec<String> {
        self.by_socket
            .lock()
            .expect("lock")
            .get(&socket_id)
            .map(|t| t.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default()
    }

    /// The topics with local subscribers.
    pub fn held(&self) -> Vec<Arc<str>> {
        self.live
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, live)| !live.lock().expect("lock").subscribers.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Ends every subscription of `user` on `topic` with `unsubscribed
    /// removed` (queued to each socket at once), and tells the others that
    /// the user left. Returns how many sockets were subscribed.
    pub fn remove_user(&self, topic: &str, user_id: Uuid, message: &str) -> usize {
        let (name, live) = self.topic(topic);
        let mut live = live.lock().expect("lock");
        let sockets: Vec<u64> = live
            .subscribers
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(socket, _)| *socket)
            .collect();
        let frame = encode(ServerMessage::Unsubscribed(Unsubscribed {
            topic: topic.to_owned(),
            code: UnsubscribedCode::Removed,
            message: message.to_owned(),
            epoch: None,
        }));
        let mut user = None;
        for socket in &sockets {
            if let Some((s, _)) = live.remove(*socket) {
                self.index(*socket, &name, false);
                self.release(topic);
                let _ = s.outbox.send(Outbound::TopicEnded {
                    topic: name.clone(),
                    generation: s.generation,
                    frame: frame.clone(),
                });
                user = Some(s.user);
            }
        }
        if let Some(user) = user {
            self.left(&live, &name, user);
        }
        sockets.len()
    }

    /// Ends the local subscriptions of `topic` that are not of `epoch`:
    /// `unsubscribed reset` with it, or (`restart`) a dropped socket.
    /// Returns how many there were.
    fn reset_local(&self, topic: &str, epoch: &str, restart: bool) -> usize {
        let Some((name, live)) = self.existing(topic) else {
            return 0;
        };
        let mut live = live.lock().expect("lock");
        let frame = reset_frame(topic, epoch);
        let stale: Vec<u64> = live
            .subscribers
            .iter()
            .filter(|(_, s)| s.epoch.as_deref() != Some(epoch))
            .map(|(socket, _)| *socket)
            .collect();
        for socket in &stale {
            // Everyone reset leaves without a `presence` (their clients
            // subscribe again at once).
            let Some((s, left)) = live.remove(*socket) else {
                continue;
            };
            self.index(*socket, &name, false);
            self.release(topic);
            if left && let Some(presence) = &self.presence {
                presence.leave(&name, &s.user);
            }
            let _ = s.outbox.send(if restart {
                Outbound::Drop
            } else {
                Outbound::TopicEnded {
                    topic: name.clone(),
                    generation: s.generation,
                    frame: frame.clone(),
                }
            });
        }
        stale.len()
    }

    /// Drops the topic's history live: a new epoch, and every subscriber
    /// gets `unsubscribed reset` with it; with `restart`, as a restart of
    /// the in-memory store would, they are not told but their sockets are
    /// dropped (they see 1006, reconnect, and their `since` names the old
    /// epoch). On Redis every instance does the same to its subscribers.
    /// Returns the new head and how many sockets (of this instance) were
    /// subscribed.
    ///
    /// # Errors
    /// [`StoreError`] when the shared store did not take the reset.
    pub async fn reset(&self, topic: &str, restart: bool) -> Result<(Head, usize), StoreError> {
        let Histories::Memory(store) = &self.store else {
            let head = self.store.reset(topic, restart).await?;
            let count = self.reset_local(topic, &head.epoch, restart);
            return Ok((head, count));
        };
        let (name, live) = self.topic(topic);
        let mut live = live.lock().expect("lock");
        let head = store.reset(topic);
        let frame = reset_frame(topic, &head.epoch);
        live.users.clear();
        let subscribers = std::mem::take(&mut live.subscribers);
        for (socket, s) in &subscribers {
            self.index(*socket, &name, false);
            let _ = s.outbox.send(if restart {
                Outbound::Drop
            } else {
                Outbound::TopicEnded {
                    topic: name.clone(),
                    generation: s.generation,
                    frame: frame.clone(),
                }
            });
        }
        Ok((head, subscribers.len()))
    }

    /// Hands a message of `topic`'s channel to the local subscribers: an
    /// appended frame, or a reset (the subscriptions of another epoch end).
    pub fn deliver(&self, topic: &str, event: LiveEvent) {
        match event {
            LiveEvent::Appended {
                epoch,
                offset,
                frame,
            } => {
                let Some((name, live)) = self.existing(topic) else {
                    return;
                };
                let live = live.lock().expect("lock");
                live.fan_out(&name, &frame, Some((Arc::from(epoch), offset)), None);
            }
            LiveEvent::Reset { epoch, drop } => {
                self.reset_local(topic, &epoch, drop);
            }
            LiveEvent::Presence {
                joined,
                except,
                user,
            } => {
                let Some((name, live)) = self.existing(topic) else {
                    return;
                };
                let except = except
                    .filter(|(instance, _)| {
                        self.presence
                            .as_ref()
                            .is_some_and(|p| p.instance() == instance)
                    })
                    .map(|(_, socket)| socket);
                let live = live.lock().expect("lock");
                let (joined, left) = if joined {
                    (vec![user], Vec::new())
                } else {
                    (Vec::new(), vec![user])
                };
                live.presence(&name, joined, left, except);
            }
        }
    }

    /// After the live feed may have lost messages: reads the head of every
    /// held topic and resets the local subscriptions of an older epoch
    /// (Redis lost the topic). Topics the store cannot answer for are left
    /// as they are (their sockets catch up, or close, on their own).
    pub async fn check_epochs(&self) {
        for topic in self.held() {
            if let Ok(head) = self.store.head(&topic).await {
                self.reset_local(&topic, &head.epoch, false);
            }
        }
    }

    /// A client's `publish`, checked in the contract's order under the
    /// topic's lock: `authorize` (forbidden), the socket's subscription
    /// (not_subscribed), `body` (malformed_body), then the id (a duplicate
    /// is answered with its original offset); then appended and sent to
    /// every subscriber, the publisher's socket included. `authorize` is
    /// called twice (before the topic's entry is made, and under its lock).
    /// The id is claimed outside the topic's lock (the inbox may be on
    /// Redis); on Redis the append runs outside it too.
    pub async fn publish(
        &self,
        topic: &str,
        who: Publisher<'_>,
        event: &str,
        data: &RawJson,
        body: Result<(), BodyError>,
        authorize: impl Fn() -> bool,
    ) -> Published {
        if !authorize() {
            return Published::Forbidden;
        }
        let (name, live) = self.topic(topic);
        {
            let live = live.lock().expect("lock");
            if !authorize() {
                return Published::Forbidden;
            }
            if !live.subscribers.contains_key(&who.socket_id) {
                return Published::NotSubscribed;
            }
        }
        if let Err(err) = body {
            return Published::MalformedBody(err);
        }
        // The id is claimed outside the topic's lock (the inbox may be on
        // Redis); a claim is this caller's until settled or released.
        match who.inbox.claim_publish(who.user_id, who.id).await {
            Ok(Claim::New) => {}
            Ok(Claim::Duplicate { topic, offset }) => {
                return Published::Duplicate { topic, offset };
            }
            Ok(Claim::InFlight | Claim::Full) => return Published::RateLimited,
            Err(err) => {
                tracing::warn!(%err, "publish id not claimed");
                return Published::Unavailable;
            }
        }
        let appended = match &self.store {
            Histories::Memory(store) => {
                let live = live.lock().expect("lock");
                Ok(Self::append_memory(
                    store.as_ref(),
                    &name,
                    &live,
                    event,
                    data,
                    Some(who.user),
                ))
            }
            Histories::Redis { .. } => self.append_shared(&name, event, data, Some(who.user)).await,
        };
        match appended {
            Ok(offset) => {
                if let Err(err) = who
                    .inbox
                    .settle_publish(who.user_id, who.id, name.clone(), offset)
                    .await
                {
                    tracing::warn!(%err, "publish id applied but not settled");
                }
                Published::Applied(offset)
            }
            Err(err) => {
                tracing::info!(%err, "publish: the store is unavailable");
                if let Err(err) = who.inbox.release_publish(who.user_id, who.id).await {
                    tracing::warn!(%err, "publish id not released");
                }
                Published::Unavailable
            }
        }
    }

    /// Publishes as the server (`from: null`); returns the offset.
    ///
    /// # Errors
    /// [`StoreError`] when the shared store did not take it.
    pub async fn publish_as_server(
        &self,
        topic: &str,
        event: &str,
        data: &RawJson,
    ) -> Result<u64, StoreError> {
        let (name, live) = self.topic(topic);
        if let Histories::Memory(store) = &self.store {
            let live = live.lock().expect("lock");
            return Ok(Self::append_memory(
                store.as_ref(),
                &name,
                &live,
                event,
                data,
                None,
            ));
        }
        self.append_shared(&name, event, data, None).await
    }

    fn message(
        topic: &Arc<str>,
        event: &str,
        data: &RawJson,
        from: Option<&User>,
    ) -> impl FnMut(u64) -> Utf8Bytes + Send + use<> {
        let id = Uuid::new_v4().to_string();
        let created_at = tether_protocol::time::format_rfc3339(crate::now_ms());
        let (topic, event, data, from) = (
            topic.to_string(),
            event.to_owned(),
            data.clone(),
            from.cloned(),
        );
        move |offset| {
            encode(ServerMessage::Message(TopicMessage {
                topic: topic.clone(),
                offset,
                event: event.clone(),
                data: data.clone(),
                from: from.clone(),
                id: id.clone(),
                created_at: created_at.clone(),
            }))
        }
    }

    fn append_memory(
        store: &dyn TopicStore,
        topic: &Arc<str>,
        live: &Live,
        event: &str,
        data: &RawJson,
        from: Option<&User>,
    ) -> u64 {
        let mut encode = Self::message(topic, event, data, from);
        let (head, frame) = store.append(topic, &mut encode);
        let position = Some((Arc::from(head.epoch.as_str()), head.offset));
        live.fan_out(topic, &frame, position, None);
        head.offset
    }

    /// Appends on Redis: every instance's subscribers get it by pub/sub.
    async fn append_shared(
        &self,
        topic: &Arc<str>,
        event: &str,
        data: &RawJson,
        from: Option<&User>,
    ) -> Result<u64, StoreError> {
        let mut encode = Self::message(topic, event, data, from);
        let (head, _) = self.store.append(topic, &mut encode).await?;
        Ok(head.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::QueueLimits;

    #[tokio::test]
    async fn refused_names_leave_nothing_behind() {
        let topics = Topics::default();
        let (outbox, _rx) = Outbox::new(QueueLimits::default());
        let user = User {
            user_id: Uuid::nil().to_string(),
            username: "u".into(),
        };
        let who = Subscriber {
            socket_id: 1,
            generation: 1,
            user_id: Uuid::nil(),
            user: &user,
            outbox: &outbox,
        };
        let inbox = Inbox::default();
        for n in 0..100 {
            let topic = format!("room:{n}");
            let refused = topics
                .subscribe(&topic, who, None, 0, || Err(SubscribeErrorCode::NotFound))
                .await;
            assert_eq!(refused.unwrap_err(), SubscribeErrorCode::NotFound);
            let data = RawJson::new("1").unwrap();
            let publisher = Publisher {
                socket_id: 1,
                user_id: Uuid::nil(),
                user: &user,
                id: "p",
                inbox: &inbox,
            };
            assert_eq!(
                topics
                    .publish(&topic, publisher, "e", &data, Ok(()), || false)
                    .await,
                Published::Forbidden
            );
            assert!(!topics.unsubscribe(&topic, 1));
        }
        assert!(topics.live.lock().unwrap().is_empty());
        assert!(topics.topics_of(1).is_empty());
    }

    fn offset_of(frame: &Utf8Bytes) -> u64 {
        match ServerMessage::decode_with_limit(frame.as_str(), usize::MAX).unwrap() {
            ServerMessage::Message(m) => m.offset,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publish_racing_a_subscribe_lands_in_the_replay_or_live_exactly_once() {
        use futures_util::FutureExt as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let topics = Arc::new(Topics::new(Box::new(MemoryStore::new(usize::MAX))));
        let epoch = topics.head("room:1").await.unwrap().epoch;
        let subscribed = Arc::new(AtomicBool::new(false));
        // Publishes until 100 messages after the subscribe: some land in
        // the replay, some live, and some while the subscribe runs.
        let publisher = {
            let (topics, subscribed) = (topics.clone(), subscribed.clone());
            tokio::spawn(async move {
                let data = RawJson::new("1").unwrap();
                let mut after = 0;
                loop {
                    let offset = topics
                        .publish_as_server("room:1", "e", &data)
                        .await
                        .unwrap();
                    if subscribed.load(Ordering::Acquire) {
                        after += 1;
                        if after == 100 {
                            return offset;
                        }
                    }
                }
            })
        };
        let (outbox, mut rx) = Outbox::new(QueueLimits {
            frames: 1 << 20,
            bytes: usize::MAX / 2,
        });
        let user = User {
            user_id: Uuid::nil().to_string(),
            username: "u".into(),
        };
        while topics.head("room:1").await.unwrap().offset < 100 {
            tokio::task::yield_now().await;
        }
        let who = Subscriber {
            socket_id: 1,
            generation: 1,
            user_id: Uuid::nil(),
            user: &user,
            outbox: &outbox,
        };
        let since = Position { epoch, offset: 0 };
        let joined = topics
            .subscribe("room:1", who, Some(&since), 0, || Ok(()))
            .await
            .unwrap();
        subscribed.store(true, Ordering::Release);
        assert_eq!(joined.subscribed.recovered, Some(true));
        assert_eq!(joined.subscribed.from, 1);
        assert_eq!(joined.replay.len() as u64, joined.subscribed.offset);
        assert!(joined.replay.len() >= 100);
        let last = publisher.await.unwrap();
        let mut offsets: Vec<u64> = joined.replay.iter().map(offset_of).collect();
        while (offsets.len() as u64) < last {
            match rx.recv().await {
                Some(Outbound::Topic { frame, .. }) => offsets.push(offset_of(&frame)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(offsets, (1..=last).collect::<Vec<u64>>());
        assert!(rx.recv().now_or_never().is_none(), "nothing more");
    }
}
