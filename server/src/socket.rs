//! The notification socket: handshake checks, then one task per connection
//! that authenticates, answers pings and sends, and forwards notifications.

use crate::AppState;
use crate::delivery::{Applying, MAX_ID_BYTES};
use crate::registry::{Outbound, Outbox, OutboxReceiver};
use crate::topics::{Published, Publisher, Subscriber};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tether_protocol::{
    Ack, Auth, AuthError, AuthErrorCode, AuthSuccess, ClientMessage, DecodeError, ErrorPayload,
    MAX_LAST, MAX_TOPICS_PER_SOCKET, Nack, NackCode, Outgoing, Pong, Publish, Secret,
    ServerMessage, Subscribe, SubscribeError, SubscribeErrorCode, Unsubscribe, Unsubscribed,
    UnsubscribedCode, User, close_code, error_code, is_valid_topic,
};
use tokio::time::Instant;
use uuid::Uuid;

/// What the server reads at all: above [`tether_protocol::MAX_FRAME_BYTES`]
/// so that oversized frames up to this size reach the session and get a
/// `frame_too_large` answer; a larger message (or frame) is not read: the
/// library reports it, and the session closes with 1009 (message too big).
pub const LIBRARY_MAX_MESSAGE: usize = 1024 * 1024;

/// How long to wait for the peer's close frame after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// `GET /api/ws/notification`: checks the `Origin`, an optional handshake
/// token (query `token` or `Authorization: Bearer`) and the refuse-sockets
/// fault, then upgrades.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.config.allowed_origins.allows(o));
        if !allowed {
            tracing::info!("socket refused: origin not allowed");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    let handshake_token = query
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .or_else(|| crate::http_api::bearer(&headers).map(str::to_owned))
        .map(Secret::new);
    // An invalid query token is NOT refused with 401 here, although the
    // contract allows it: browsers hide the status of a failed handshake and
    // report it as a 1006 close, indistinguishable from a network failure, so
    // the client would retry in vain. Upgrading and answering the `auth` frame
    // with `auth_error invalid_token` + 4001 tells it the failure is final.
    let user = handshake_token
        .as_ref()
        .and_then(|t| state.sessions.token_owner(t.expose()));
    if state.faults.refuse_sockets.is_on(user) {
        return (StatusCode::SERVICE_UNAVAILABLE, "sockets refused for now").into_response();
    }
    ws.max_message_size(LIBRARY_MAX_MESSAGE)
        .max_frame_size(LIBRARY_MAX_MESSAGE)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| run(state, socket, handshake_token))
}

/// How a session ends.
#[derive(Debug)]
enum Flow {
    Continue,
    /// Send a close frame with this code and reason.
    Close(u16, String),
    /// Drop the TCP stream without a close frame.
    Drop,
    /// The peer is gone or closed.
    Gone,
}

#[derive(Debug)]
struct Authenticated {
    user_id: Uuid,
    /// The user as topic frames show them.
    user: User,
    expires_at: Instant,
}

#[derive(Debug)]
enum Phase {
    AwaitingAuth { deadline: Instant },
    Authenticated(Authenticated),
}

/// A token bucket: `rate` frames per second, bursts of `rate`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A frame of the replay queue: a notification or a topic message, with
/// its seq or offset, or a frame sent as it is.
#[derive(Debug)]
struct Replayed {
    stream: Stream,
    position: u64,
    frame: Utf8Bytes,
}

/// What a replayed frame belongs to.
#[derive(Debug, PartialEq, Eq)]
enum Stream {
    Feed,
    Topic(Arc<str>),
    /// Sent as it is (an `unsubscribed reset`).
    Plain,
}

/// One topic subscription of the socket: its generation, and the epoch and
/// last offset it has sent (live messages at or below it are dropped).
#[derive(Debug)]
struct Subscription {
    generation: u64,
    epoch: Arc<str>,
    offset: u64,
}

/// The feed's epoch and the last seq the socket sent (or that the client
/// had).
#[derive(Debug)]
struct FeedPosition {
    epoch: Arc<str>,
    seq: u64,
}

/// What a live frame is, given what the socket has sent.
enum Merge {
    /// Sent already (or of another epoch): drop it.
    Drop,
    /// The next one: send it.
    Next,
    /// Some are missing before it: catch up from the store first.
    Gap,
}

fn merge(epoch: &str, known: &str, position: u64, last: u64) -> Merge {
    if epoch != known {
        Merge::Gap
    } else if position <= last {
        Merge::Drop
    } else if position == last + 1 {
        Merge::Next
    } else {
        Merge::Gap
    }
}

struct Session {
    state: AppState,
    socket: WebSocket,
    socket_id: u64,
    outbox: Outbox,
    /// Replayed notifications and topic messages still to send, ahead of
    /// the live queue.
    replay: VecDeque<Replayed>,
    /// The socket's topic subscriptions (the [`crate::topics::Topics`] hub
    /// holds the same set; live frames of an older generation are
    /// dropped).
    subscriptions: HashMap<Arc<str>, Subscription>,
    /// Where the socket is in its user's feed (after `auth_success`).
    feed: Option<FeedPosition>,
    /// The generation of the newest subscription.
    generation: u64,
    /// Sends nothing queued until then (the `stall-sockets` dev fault).
    stalled_until: Option<Instant>,
    handshake_token: Option<Secret>,
    phase: Phase,
    bucket: Bucket,
}

/// Unregisters the socket however the task ends (including a panic).
struct Cleanup {
    state: AppState,
    socket_id: u64,
    user: Option<Uuid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.state.registry.unregister(self.socket_id);
        self.state.topics.remove_socket(self.socket_id);
        if let Some(user) = self.user {
            self.state.feeds.unsubscribe(user, self.socket_id);
        }
    }
}

async fn run(state: AppState, socket: WebSocket, handshake_token: Option<Secret>) {
    let socket_id = state.next_socket_id();
    let (outbox, mut inbox) = Outbox::new(state.config.queue);
    let overflow = inbox.overflow();
    let mut cleanup = Cleanup {
        state: state.clone(),
        socket_id,
        user: None,
    };
    let deadline = Instant::now() + state.config.auth_timeout;
    let mut session = Session {
        bucket: Bucket::new(state.config.frames_per_second),
        state,
        socket,
        socket_id,
        outbox,
        replay: VecDeque::new(),
        subscriptions: HashMap::new(),
        feed: None,
        generation: 0,
        stalled_until: None,
        handshake_token,
        phase: Phase::AwaitingAuth { deadline },
    };
    tracing::debug!(socket_id, "socket opened");
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    let flow = loop {
        let stalled = session
            .stalled_until
            .filter(|until| *until > Instant::now());
        let draining = stalled.is_none();
        let flow = tokio::select! {
            biased;
            () = overflow.happened() => {
                tracing::info!(socket_id, "slow consumer: closing with 1013");
                Flow::Close(close_code::TRY_AGAIN_LATER, "too far behind; reconnect and catch up".into())
            }
            incoming = session.socket.recv() => match incoming {
                Some(Ok(message)) => session.on_message(message).await,
                Some(Err(err)) => read_failure(err),
                None => Flow::Gone,
            },
            () = &mut timer => session.on_timer().await,
            // Replays first, as the socket drains; live frames after them.
            () = tokio::time::sleep_until(stalled.unwrap_or_else(Instant::now)), if !draining => Flow::Continue,
            () = std::future::ready(()), if draining && !session.replay.is_empty() => session.send_replay().await,
            Some(out) = next_live(&mut inbox), if draining && session.replay.is_empty() => session.on_outbound(out).await,
        };
        if let Phase::Authenticated(a) = &session.phase {
            cleanup.user = Some(a.user_id);
        }
        if !matches!(flow, Flow::Continue) {
            break flow;
        }
        let deadline = match &session.phase {
            Phase::AwaitingAuth { deadline } => *deadline,
            Phase::Authenticated(a) => a.expires_at,
        };
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
    };
    tracing::debug!(socket_id, ?flow, "socket closing");
    // A closing socket is no longer reachable: forget it now, not after the
    // closing handshake's linger.
    drop(cleanup);
    match flow {
        Flow::Close(code, reason) => session.close(code, reason).await,
        // The peer closed (or the connection broke): finish the closing
        // handshake. tungstenite queues the close reply when it reads the
        // peer's close frame and sends it on the next read; dropping the
        // socket instead would end the TCP connection without it, and the
        // browser would see an unclean 1006 (Firefox then delays every
        // reconnect to this host).
        Flow::Gone => session.finish_close().await,
        Flow::Drop | Flow::Continue => {}
    }
}

impl Session {
    async fn send(&mut self, message: ServerMessage) -> Flow {
        self.send_raw(Utf8Bytes::from(message.encode())).await
    }

    /// Sends one frame, waiting at most the write timeout for the peer to
    /// read: a peer that does not is dropped (it cannot read a close frame
    /// either).
    async fn send_raw(&mut self, frame: Utf8Bytes) -> Flow {
        let write = self.socket.send(Message::Text(frame));
        match tokio::time::timeout(self.state.config.write_timeout, write).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::Gone,
            Err(_) => {
                tracing::info!(
                    socket_id = self.socket_id,
                    "write timed out: dropping the socket"
                );
                Flow::Drop
            }
        }
    }

    /// Sends the next replayed frame unless the socket sent it already
    /// (a catch-up read can overlap what was sent live).
    async fn send_replay(&mut self) -> Flow {
        let Some(next) = self.replay.pop_front() else {
            return Flow::Continue;
        };
        let last = match &next.stream {
            Stream::Feed => self.feed.as_mut().map(|f| &mut f.seq),
            Stream::Topic(topic) => self.subscriptions.get_mut(topic).map(|s| &mut s.offset),
            Stream::Plain => return self.send_raw(next.frame).await,
        };
        match last {
            Some(last) if next.position > *last => {
                *last = next.position;
                self.send_raw(next.frame).await
            }
            _ => Flow::Continue,
        }
    }

    /// Catches the feed up from the store after `feed.seq` (all of a new
    /// epoch): into the replay queue. `false` when the store cannot be read.
    async fn catch_up_feed(&mut self) -> bool {
        let (Some(user), Some(feed)) = (self.user(), self.feed.as_ref()) else {
            return true;
        };
        let (epoch, after) = (feed.epoch.clone(), feed.seq);
        let mut read = match self.state.feeds.read_after(user, after).await {
            Ok(read) => read,
            Err(err) => {
                tracing::info!(socket_id = self.socket_id, %err, "feed catch-up failed");
                return false;
            }
        };
        if read.epoch != epoch {
            // The history was lost: the new epoch's notifications follow.
            read = match self.state.feeds.read_after(user, 0).await {
                Ok(read) => read,
                Err(_) => return false,
            };
            self.feed = Some(FeedPosition {
                epoch: read.epoch.clone(),
                seq: 0,
            });
            self.replay.retain(|r| r.stream != Stream::Feed);
        }
        self.replay
            .extend(read.frames.into_iter().map(|(position, frame)| Replayed {
                stream: Stream::Feed,
                position,
                frame,
            }));
        true
    }

    /// Catches a topic up from the store after the last offset sent, in
    /// its epoch (a trimmed gap shows as one: the client resubscribes).
    /// `false` when the store cannot be read.
    async fn catch_up_topic(&mut self, topic: &Arc<str>) -> bool {
        let Some(sub) = self.subscriptions.get(topic) else {
            return true;
        };
        let (epoch, after) = (sub.epoch.clone(), sub.offset);
        let read = match self.state.topics.store().entries_after(topic, after).await {
            Ok(read) => read,
            Err(err) => {
                tracing::info!(socket_id = self.socket_id, %err, "topic catch-up failed");
                return false;
            }
        };
        if *read.head.epoch == *epoch {
            self.replay
                .extend(read.entries.into_iter().map(|(position, frame)| Replayed {
                    stream: Stream::Topic(topic.clone()),
                    position,
                    frame,
                }));
        } else {
            self.stale_topic(topic, &read.head.epoch);
        }
        true
    }

    /// The topic's history was lost under the subscription (another epoch
    /// in the store or live): ends it with `unsubscribed reset`, unless the
    /// hub did already (its `reset` is queued then).
    fn stale_topic(&mut self, topic: &Arc<str>, epoch: &str) {
        let Some(sub) = self.subscriptions.get(topic) else {
            return;
        };
        if self
            .state
            .topics
            .end_if(topic, self.socket_id, sub.generation)
        {
            self.forget_topic(topic);
            self.replay.push_back(Replayed {
                stream: Stream::Plain,
                position: 0,
                frame: crate::topics::Topics::reset_frame(topic, epoch),
            });
        }
    }

    /// The store could not be read to fill a gap: the client reconnects
    /// and catches up by replay.
    fn behind() -> Flow {
        Flow::Close(
            close_code::TRY_AGAIN_LATER,
            "the store is unavailable; reconnect and catch up".into(),
        )
    }

    async fn error(&mut self, code: &str, message: impl Into<String>) -> Flow {
        self.send(ServerMessage::Error(ErrorPayload {
            code: code.to_owned(),
            message: message.into(),
        }))
        .await
    }

    /// Sends `auth_error` and asks for a 4001 close.
    async fn fail(&mut self, code: AuthErrorCode, message: &str) -> Flow {
        let reason = code.as_str().to_owned();
        match self
            .send(ServerMessage::AuthError(AuthError {
                code,
                message: message.to_owned(),
            }))
            .await
        {
            Flow::Continue => Flow::Close(close_code::UNAUTHORIZED, reason),
            other => other,
        }
    }

    async fn close(mut self, code: u16, mut reason: String) {
        if reason.len() > 120 {
            let mut end = 120;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let write = self.socket.send(Message::Close(Some(frame)));
        if !matches!(
            tokio::time::timeout(self.state.config.write_timeout, write).await,
            Ok(Ok(()))
        ) {
            return;
        }
        // Wait for the peer's close (reading what it still sends) so that
        // unread data does not turn our FIN into a reset that loses the frame.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(_)) = self.socket.recv().await {}
        })
        .await;
    }

    async fn on_timer(&mut self) -> Flow {
        match self.phase {
            Phase::AwaitingAuth { .. } => {
                self.fail(
                    AuthErrorCode::AuthTimeout,
                    "no auth frame arrived within the auth timeout",
                )
                .await
            }
            Phase::Authenticated(_) => {
                self.fail(AuthErrorCode::ExpiredToken, "the access token expired")
                    .await
            }
        }
    }

    async fn on_outbound(&mut self, out: Outbound) -> Flow {
        match out {
            Outbound::Frame(frame) => self.send_raw(frame).await,
            Outbound::Notification { epoch, seq, frame } => {
                let Some(feed) = self.feed.as_mut() else {
                    return Flow::Continue;
                };
                match merge(&epoch, &feed.epoch, seq, feed.seq) {
                    Merge::Drop => Flow::Continue,
                    Merge::Next => {
                        feed.seq = seq;
                        self.send_raw(frame).await
                    }
                    Merge::Gap if self.catch_up_feed().await => Flow::Continue,
                    Merge::Gap => Self::behind(),
                }
            }
            Outbound::Topic {
                topic,
                generation,
                position,
                frame,
            } => {
                let Some(sub) = self
                    .subscriptions
                    .get_mut(&topic)
                    .filter(|s| s.generation == generation)
                else {
                    return Flow::Continue;
                };
                let Some((epoch, offset)) = position else {
                    // A presence: not part of the history.
                    return self.send_raw(frame).await;
                };
                match merge(&epoch, &sub.epoch, offset, sub.offset) {
                    Merge::Drop => Flow::Continue,
                    Merge::Next => {
                        sub.offset = offset;
                        self.send_raw(frame).await
                    }
                    Merge::Gap if *epoch != *sub.epoch => {
                        self.stale_topic(&topic, &epoch);
                        Flow::Continue
                    }
                    Merge::Gap if self.catch_up_topic(&topic).await => Flow::Continue,
                    Merge::Gap => Self::behind(),
                }
            }
            Outbound::Resync => {
                if !self.catch_up_feed().await {
                    return Self::behind();
                }
                let mut topics: Vec<Arc<str>> = self.subscriptions.keys().cloned().collect();
                topics.sort();
                for topic in topics {
                    if !self.catch_up_topic(&topic).await {
                        return Self::behind();
                    }
                }
                Flow::Continue
            }
            Outbound::TopicEnded {
                topic,
                generation,
                frame,
            } => {
                if self
                    .subscriptions
                    .get(&topic)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.forget_topic(&topic);
                    self.send_raw(frame).await
                } else {
                    Flow::Continue
                }
            }
            Outbound::Revoked => {
                self.fail(AuthErrorCode::Revoked, "the session was signed out")
                    .await
            }
            Outbound::Expired => {
                self.fail(AuthErrorCode::ExpiredToken, "the access token expired")
                    .await
            }
            Outbound::Close { code, reason } => Flow::Close(code, reason),
            Outbound::Drop => Flow::Drop,
            Outbound::Stall(duration) => {
                self.stalled_until = Some(Instant::now() + duration);
                Flow::Continue
            }
        }
    }

    /// Reads until the connection ends, which sends tungstenite's pending
    /// close reply; bounded by the close linger time.
    async fn finish_close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(_)) = self.socket.recv().await {}
        })
        .await;
    }

    async fn on_message(&mut self, message: Message) -> Flow {
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            Message::Close(_) => return Flow::Gone,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
        };
        if !self.bucket.take() {
            return self
                .rate_limited(text.as_ref().map(Utf8Bytes::as_str))
                .await;
        }
        let authenticated = matches!(self.phase, Phase::Authenticated(_));
        let Some(text) = text else {
            if !authenticated {
                return self.not_authenticated().await;
            }
            return self
                .error(
                    error_code::UNSUPPORTED_DATA,
                    "binary frames are not supported; send JSON text",
                )
                .await;
        };
        let decoded = match ClientMessage::decode(text.as_str()) {
            Ok(message) => message,
            Err(DecodeError::InvalidPayload { kind, .. }) if kind == "auth" => {
                return self.on_auth(lenient_auth(text.as_str())).await;
            }
            Err(_) if !authenticated => return self.not_authenticated().await,
            Err(DecodeError::InvalidSubscribe { topic }) => {
                return self.on_invalid_subscribe(topic).await;
            }
            Err(err) => return self.error(err.code(), err.to_string()).await,
        };
        match decoded {
            ClientMessage::Auth(auth) => self.on_auth(Some(auth)).await,
            _ if !authenticated => self.not_authenticated().await,
            ClientMessage::Ping(ping) => {
                let user = self.user();
                if self.state.faults.withhold_pongs.is_on(user) {
                    return Flow::Continue;
                }
                self.send(ServerMessage::Pong(Pong { seq: ping.seq })).await
            }
            ClientMessage::Send(send) => self.on_send(send).await,
            ClientMessage::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
            ClientMessage::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe).await,
            ClientMessage::Publish(publish) => self.on_publish(publish).await,
            _ => {
                self.error(error_code::UNKNOWN_TYPE, "unknown frame type")
                    .await
            }
        }
    }

    /// A `send` frame (read once, by [`ClientMessage::decode`]): the body
    /// stays the raw text that arrived (never re-encoded), and is acked only
    /// if it obeys [`crate::delivery::check_numbers`].
    async fn on_send(&mut self, send: Outgoing) -> Flow {
        let Outgoing { id, body } = send;
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return self
                .error(
                    error_code::MALFORMED_FRAME,
                    format!("a send id must be 1 to {MAX_ID_BYTES} bytes"),
                )
                .await;
        }
        if let Err(err) = crate::delivery::check_numbers(body.as_str()) {
            return self
                .send(ServerMessage::Nack(Nack {
                    id,
                    code: NackCode::MalformedBody,
                    message: err.to_string(),
                }))
                .await;
        }
        let user = self.user().expect("authenticated");
        let applying = match self.state.inbox.apply(user, &id, body.into()).await {
            Ok(applying) => applying,
            Err(err) => {
                tracing::warn!(socket_id = self.socket_id, %err, "send not applied");
                return self
                    .send(ServerMessage::Nack(Nack {
                        id,
                        code: NackCode::RateLimited,
                        message:
                            "the store is unavailable; the message was not taken, resend it later"
                                .into(),
                    }))
                    .await;
            }
        };
        tracing::debug!(socket_id = self.socket_id, ?applying, "send frame");
        match applying {
            Applying::Applied | Applying::Duplicate => {
                self.send(ServerMessage::Ack(Ack {
                    id,
                    topic: None,
                    offset: None,
                }))
                .await
            }
            Applying::Full => {
                self.send(ServerMessage::Nack(Nack {
                    id,
                    code: NackCode::RateLimited,
                    message: "too many messages within the de-duplication window; retry later"
                        .into(),
                }))
                .await
            }
        }
    }

    /// A frame over the socket's rate. A `subscribe` or `publish` is
    /// answered for its topic or id (`subscribe_error rate_limited` with
    /// `retry: true`, `nack rate_limited`), so that the client retries it
    /// after a backoff instead of waiting for an answer; anything else gets
    /// `error rate_limited`.
    async fn rate_limited(&mut self, text: Option<&str>) -> Flow {
        const SLOW_DOWN: &str = "too many frames, slow down";
        let authenticated = matches!(self.phase, Phase::Authenticated(_));
        let decoded = text
            .filter(|t| authenticated && t.len() <= tether_protocol::MAX_FRAME_BYTES)
            .and_then(|t| ClientMessage::decode(t).ok());
        match decoded {
            Some(ClientMessage::Subscribe(subscribe)) => {
                self.send(ServerMessage::SubscribeError(SubscribeError {
                    topic: subscribe.topic,
                    code: SubscribeErrorCode::RateLimited,
                    message: SLOW_DOWN.into(),
                    retry: true,
                }))
                .await
            }
            Some(ClientMessage::Publish(publish)) => {
                self.send(ServerMessage::Nack(Nack {
                    id: publish.id,
                    code: NackCode::RateLimited,
                    message: SLOW_DOWN.into(),
                }))
                .await
            }
            _ => self.error(error_code::RATE_LIMITED, SLOW_DOWN).await,
        }
    }

    /// Forgets a subscription the hub no longer has, and its pending replay.
    fn forget_topic(&mut self, topic: &str) {
        self.subscriptions.remove(topic);
        self.replay
            .retain(|r| !matches!(&r.stream, Stream::Topic(t) if **t == *topic));
    }

    async fn subscribe_error(
        &mut self,
        topic: String,
        code: SubscribeErrorCode,
        message: impl Into<String>,
    ) -> Flow {
        self.send(ServerMessage::SubscribeError(SubscribeError {
            topic,
            retry: !code.is_final(),
            code,
            message: message.into(),
        }))
        .await
    }

    /// A `subscribe` with a string topic but a malformed `since` or `last`.
    async fn on_invalid_subscribe(&mut self, topic: String) -> Flow {
        if !is_valid_topic(&topic) {
            return self.invalid_topic(topic).await;
        }
        self.subscribe_error(
            topic,
            SubscribeErrorCode::BadRequest,
            "`since` must be null or {\"epoch\": <string>, \"offset\": <integer >= 0>}, `last` an integer from 0 to 1000",
        )
        .await
    }

    async fn invalid_topic(&mut self, topic: String) -> Flow {
        self.subscribe_error(
            topic,
            SubscribeErrorCode::InvalidTopic,
            "a topic is <kind>:<id> of ASCII letters, digits, '-', '_' and '.', at most 128 bytes",
        )
        .await
    }

    /// `subscribe`: the checks of Topics rule 1 in order (topic name,
    /// `since`/`last`, the socket's topic count, the room's existence and
    /// membership), then `subscribed` and the replay.
    async fn on_subscribe(&mut self, subscribe: Subscribe) -> Flow {
        if !is_valid_topic(&subscribe.topic) {
            return self.invalid_topic(subscribe.topic).await;
        }
        let last = subscribe.last.unwrap_or(0);
        if last > MAX_LAST {
            return self
                .subscribe_error(
                    subscribe.topic,
                    SubscribeErrorCode::BadRequest,
                    format!("`last` must be an integer from 0 to {MAX_LAST}"),
                )
                .await;
        }
        let topic = subscribe.topic;
        if !self.subscriptions.contains_key(topic.as_str())
            && self.subscriptions.len() >= MAX_TOPICS_PER_SOCKET
        {
            return self
                .subscribe_error(
                    topic,
                    SubscribeErrorCode::TooManyTopics,
                    format!("a socket may be subscribed to at most {MAX_TOPICS_PER_SOCKET} topics"),
                )
                .await;
        }
        let Phase::Authenticated(me) = &self.phase else {
            unreachable!("only authenticated sockets subscribe")
        };
        let state = self.state.clone();
        let user_id = me.user_id;
        // Checked before registering and again after (a removal made on any
        // instance while this runs is then seen: see `rooms::may_subscribe`).
        let allowed = crate::rooms::may_subscribe(&state, &topic, user_id).await;
        let Phase::Authenticated(me) = &self.phase else {
            unreachable!("only authenticated sockets subscribe")
        };
        self.generation += 1;
        let joined = state
            .topics
            .subscribe(
                &topic,
                Subscriber {
                    socket_id: self.socket_id,
                    generation: self.generation,
                    user_id,
                    user: &me.user,
                    outbox: &self.outbox,
                },
                subscribe.since.as_ref(),
                last,
                || allowed.clone(),
            )
            .await;
        let joined = match joined {
            Ok(joined) => match crate::rooms::may_subscribe(&state, &topic, user_id).await {
                Ok(()) => Ok(joined),
                Err(code) => {
                    // Removed meanwhile: undo it (and any earlier
                    // subscription it replaced).
                    state.topics.unsubscribe(&topic, self.socket_id);
                    self.forget_topic(&topic);
                    Err(code)
                }
            },
            Err(code) => Err(code),
        };
        let joined = match joined {
            Ok(joined) => joined,
            Err(SubscribeErrorCode::Unavailable) => {
                let held = state.topics.topics_of(self.socket_id);
                if !held.contains(&topic) {
                    // A failed resubscribe ended the old subscription too.
                    self.forget_topic(&topic);
                }
                return self
                    .send(ServerMessage::SubscribeError(SubscribeError {
                        topic,
                        code: SubscribeErrorCode::Unavailable,
                        message: "the store is unavailable; retry later".into(),
                        retry: true,
                    }))
                    .await;
            }
            Err(code) => {
                let message = match code {
                    SubscribeErrorCode::Forbidden => "you are not a member of this room",
                    _ => "no such topic",
                };
                if self.subscriptions.contains_key(topic.as_str()) {
                    // A failed resubscribe ended the old subscription too.
                    self.forget_topic(&topic);
                }
                return self.subscribe_error(topic, code, message).await;
            }
        };
        let name: Arc<str> = Arc::from(topic.as_str());
        self.forget_topic(&topic);
        let from = joined.subscribed.from;
        self.subscriptions.insert(
            name.clone(),
            Subscription {
                generation: self.generation,
                epoch: Arc::from(joined.subscribed.epoch.as_str()),
                offset: from - 1,
            },
        );
        tracing::debug!(
            socket_id = self.socket_id,
            from = joined.subscribed.from,
            replayed = joined.replay.len(),
            "subscribed"
        );
        let flow = self
            .send(ServerMessage::Subscribed(joined.subscribed))
            .await;
        self.replay.extend(
            (from..)
                .zip(joined.replay)
                .map(|(position, frame)| Replayed {
                    stream: Stream::Topic(name.clone()),
                    position,
                    frame,
                }),
        );
        flow
    }

    /// `unsubscribe`: always answered `unsubscribed` (also when the socket
    /// was not subscribed).
    async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Flow {
        let topic = unsubscribe.topic;
        self.state.topics.unsubscribe(&topic, self.socket_id);
        self.forget_topic(&topic);
        self.send(ServerMessage::Unsubscribed(Unsubscribed {
            topic,
            code: UnsubscribedCode::Unsubscribed,
            message: "unsubscribed".into(),
            epoch: None,
        }))
        .await
    }

    /// `publish`: `data` stays the raw text that arrived; Topics rule 4.
    async fn on_publish(&mut self, publish: Publish) -> Flow {
        if publish.id.is_empty() || publish.id.len() > MAX_ID_BYTES {
            return self
                .error(
                    error_code::MALFORMED_FRAME,
                    format!("a publish id must be 1 to {MAX_ID_BYTES} bytes"),
                )
                .await;
        }
        let Phase::Authenticated(me) = &self.phase else {
            unreachable!("only authenticated sockets publish")
        };
        let state = self.state.clone();
        let user_id = me.user_id;
        let topic = publish.topic.as_str();
        let allowed = if is_valid_topic(topic) {
            crate::rooms::may_publish(&state, topic, user_id).await
        } else {
            Ok(false)
        };
        let allowed = match allowed {
            Ok(allowed) => allowed,
            Err(err) => {
                tracing::warn!(socket_id = self.socket_id, %err, "publish not checked");
                return self
                    .send(ServerMessage::Nack(Nack {
                        id: publish.id,
                        code: NackCode::RateLimited,
                        message:
                            "the store is unavailable; the message was not taken, resend it later"
                                .into(),
                    }))
                    .await;
            }
        };
        let Phase::Authenticated(me) = &self.phase else {
            unreachable!("only authenticated sockets publish")
        };
        let outcome = state
            .topics
            .publish(
                topic,
                Publisher {
                    socket_id: self.socket_id,
                    user_id,
                    user: &me.user,
                    id: &publish.id,
                    inbox: &state.inbox,
                },
                &publish.event,
                &publish.data,
                crate::delivery::check_numbers(publish.data.as_str()),
                || allowed,
            )
            .await;
        tracing::debug!(socket_id = self.socket_id, ?outcome, "publish");
        let nack = |code, message: String| {
            ServerMessage::Nack(Nack {
                id: publish.id.clone(),
                code,
                message,
            })
        };
        let ack = |topic: String, offset| {
            ServerMessage::Ack(Ack {
                id: publish.id.clone(),
                topic: Some(topic),
                offset: Some(offset),
            })
        };
        match outcome {
            Published::Applied(offset) => self.send(ack(publish.topic.clone(), offset)).await,
            Published::Duplicate { topic, offset } => self.send(ack(topic, offset)).await,
            Published::Forbidden => {
                self.send(nack(
                    NackCode::Forbidden,
                    "you may not publish to this topic (not a member, or no such topic)".into(),
                ))
                .await
            }
            Published::NotSubscribed => {
                self.send(nack(
                    NackCode::NotSubscribed,
                    "this socket is not subscribed to the topic; resend after `subscribed`".into(),
                ))
                .await
            }
            Published::MalformedBody(err) => {
                self.send(nack(NackCode::MalformedBody, err.to_string()))
                    .await
            }
            Published::RateLimited => {
                self.send(nack(
                    NackCode::RateLimited,
                    "too many messages within the de-duplication window; retry later".into(),
                ))
                .await
            }
            Published::Unavailable => {
                self.send(nack(
                    NackCode::RateLimited,
                    "the store is unavailable; retry".into(),
                ))
                .await
            }
        }
    }

    fn user(&self) -> Option<Uuid> {
        match &self.phase {
            Phase::Authenticated(a) => Some(a.user_id),
            Phase::AwaitingAuth { .. } => None,
        }
    }

    async fn not_authenticated(&mut self) -> Flow {
        self.fail(
            AuthErrorCode::NotAuthenticated,
            "the first frame must be `auth`",
        )
        .await
    }

    /// `auth` (first or in place). `None`: the payload had a token of the
    /// wrong shape.
    async fn on_auth(&mut self, auth: Option<Auth>) -> Flow {
        let Some(auth) = auth else {
            return self
                .fail(AuthErrorCode::InvalidToken, "the token is malformed")
                .await;
        };
        let token = auth
            .token
            .filter(|t| !t.is_empty())
            .or_else(|| self.handshake_token.clone());
        let Some(token) = token else {
            return self
                .fail(AuthErrorCode::MissingToken, "no token in the auth frame")
                .await;
        };
        let claims = match self.state.sessions.authenticate(token.expose()).await {
            Ok(Ok(claims)) => claims,
            Ok(Err(failure)) => return self.fail(failure.code(), &failure.to_string()).await,
            Err(err) => return store_unavailable(self.socket_id, &err),
        };
        let user = match self.state.accounts.by_id(claims.sub).await {
            Ok(Some(user)) => user,
            Ok(None) => return self.fail(AuthErrorCode::InvalidToken, "unknown user").await,
            Err(err) => return store_unavailable(self.socket_id, &err),
        };
        let now_ms = crate::now_ms();
        let exp_ms = claims.exp.saturating_mul(1000);
        let authenticated_at = tether_protocol::time::format_rfc3339(now_ms);
        let expires_at =
            Instant::now() + Duration::from_millis(u64::try_from(exp_ms - now_ms).unwrap_or(0));
        let previous = self.user();
        self.phase = Phase::Authenticated(Authenticated {
            user_id: user.id,
            user: User {
                user_id: user.id.to_string(),
                username: user.username.clone(),
            },
            expires_at,
        });
        self.state.registry.register(
            self.socket_id,
            user.id,
            claims.sid,
            &user.username,
            authenticated_at.clone(),
            self.outbox.clone(),
        );
        // The feed first (its channel held, its replay read), so that a
        // socket told `auth_success` follows its feed; if the store cannot
        // be read it is told to try again later instead.
        let user_changed = previous != Some(user.id);
        if user_changed {
            if let Some(previous) = previous {
                self.state.feeds.unsubscribe(previous, self.socket_id);
            }
            // The replay goes out ahead of any live notification.
            let replay = match self
                .state
                .feeds
                .subscribe(user.id, self.socket_id, auth.last_seq, &self.outbox)
                .await
            {
                Ok(replay) => replay,
                Err(err) => {
                    tracing::info!(socket_id = self.socket_id, %err, "feed unavailable");
                    return Self::behind();
                }
            };
            tracing::debug!(socket_id = self.socket_id, user_id = %user.id, replayed = replay.frames.len(), "authenticated");
            // Live notifications after what the client has (or, without
            // `last_seq`, after the newest one) follow.
            let seq = auth
                .last_seq
                .map_or(replay.top, |last| last.min(replay.top));
            self.feed = Some(FeedPosition {
                epoch: replay.epoch,
                seq,
            });
            self.replay = replay
                .frames
                .into_iter()
                .map(|(position, frame)| Replayed {
                    stream: Stream::Feed,
                    position,
                    frame,
                })
                .collect();
        }
        let flow = self
            .send(ServerMessage::AuthSuccess(AuthSuccess {
                user_id: user.id.to_string(),
                authenticated_at,
                expires_at: tether_protocol::time::format_rfc3339(exp_ms),
                max_frame: None,
            }))
            .await;
        if user_changed && previous.is_some() && matches!(flow, Flow::Continue) {
            return self.end_topics_for_user_change().await;
        }
        flow
    }

    /// A re-auth in place as another user: every subscription ends with
    /// `unsubscribed user_changed` (after the `auth_success`); the client
    /// resubscribes, checked for the new user.
    async fn end_topics_for_user_change(&mut self) -> Flow {
        let mut topics: Vec<Arc<str>> = self.subscriptions.drain().map(|(t, _)| t).collect();
        topics.sort();
        for topic in topics {
            self.state.topics.unsubscribe(&topic, self.socket_id);
            let flow = self
                .send(ServerMessage::Unsubscribed(Unsubscribed {
                    topic: topic.to_string(),
                    code: UnsubscribedCode::UserChanged,
                    message: "the socket signed in as another user; subscribe again".into(),
                    epoch: None,
                }))
                .await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        Flow::Continue
    }
}

/// The session could not be checked: close with 1013 (try again later),
/// not `auth_error` + 4001, which would be final for the client.
fn store_unavailable(socket_id: u64, err: &crate::redis::StoreError) -> Flow {
    tracing::warn!(socket_id, %err, "auth not checked: the store is unavailable");
    Flow::Close(
        close_code::TRY_AGAIN_LATER,
        "the session store is unavailable; reconnect later".into(),
    )
}

/// The next live message (a function so that `select!` can disable it).
async fn next_live(inbox: &mut OutboxReceiver) -> Option<Outbound> {
    inbox.recv().await
}

/// What a failed read means: a message or frame over
/// [`LIBRARY_MAX_MESSAGE`] gets a 1009 close; anything else means the peer
/// is gone (or broke the protocol, and cannot be answered).
fn read_failure(err: axum::Error) -> Flow {
    let too_big = err
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        Flow::Close(
            close_code::TOO_BIG,
            format!("message over {LIBRARY_MAX_MESSAGE} bytes"),
        )
    } else {
        Flow::Gone
    }
}

/// An `auth` frame whose payload did not decode: without any `token` /
/// `access_token` it counts as an auth without token (`missing_token`, or
/// the handshake token); with one of the wrong type, `None` (`invalid_token`).
fn lenient_auth(text: &str) -> Option<Auth> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let payload = value.get("payload");
    let has_token = payload.is_some_and(|p| {
        p.get("token").is_some_and(|t| !t.is_null())
            || p.get("access_token").is_some_and(|t| !t.is_null())
    });
    (!has_token).then_some(Auth {
        token: None,
        last_seq: None,
    })
}
