//! The connection machine: [`Connection`].

use crate::adapter::{Adapter, AuthOutcome, ContractAuth, Delivery, Incoming};
use crate::config::ms;
use crate::outbox::{Entry, Outbox};
use crate::rng::SplitMix64;
use crate::topics::{Action, Topics};
use crate::{
    CloseInfo, Config, ConnectionError, ConnectionState, Detail, Effect, Event, Input, MessageId,
    Millis, RefreshFailure, SendError, Snapshot, SocketUrl, StopReason, SubscribeOptions,
    TopicError, TopicEvent, TopicSnapshot,
};
use std::time::Duration;
use tether_protocol::{
    AuthErrorCode, ClientMessage, MAX_LAST, MAX_TOPICS_PER_SOCKET, Nack, NackCode, Publish,
    RawJson, Secret, ServerMessage, close_code, is_valid_topic,
};

/// Close code the machine uses when it abandons a socket after a timeout
/// (browsers only allow 1000 and 3000–4999 in `close()`).
pub const CLOSE_TIMEOUT: u16 = 4000;

/// Where the machine is. Socket-holding phases are `Opening`,
/// `Authenticating`, `Online` and `Disconnecting`.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Initial,
    /// The token has expired: a refresh is in flight, the socket opens after it.
    Refreshing {
        attempt: u32,
    },
    Opening {
        attempt: u32,
        deadline: Millis,
    },
    Authenticating {
        attempt: u32,
        deadline: Millis,
    },
    Online {
        since: Millis,
        next_ping_at: Millis,
        ping: Option<PingOut>,
    },
    Waiting {
        attempt: u32,
        at: Millis,
    },
    Disconnecting {
        deadline: Millis,
    },
    Stopped(StopReason),
}

/// A ping awaiting its pong.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PingOut {
    seq: u64,
    sent_at: Millis,
    deadline: Millis,
    timeout: Duration,
}

/// The token refresh cycle, independent of the socket.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refresh {
    /// Refresh at `expires_at - lead`, if the expiry is known.
    Idle,
    /// [`Effect::RefreshToken`] is outstanding.
    InFlight { failures: u32 },
    /// The last refresh failed; try again at `at`.
    Backoff { at: Millis, failures: u32 },
}

/// Where a token comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TokenSource {
    /// The app (sign-in, storage): cancels a refresh backoff only.
    App,
    /// The answer to [`Effect::RefreshToken`]: ends the refresh cycle.
    Refresh,
}

/// What a due deadline means.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Due {
    ConnectTimeout,
    PongTimeout,
    Ping,
    Retry,
    CloseTimeout,
    Refresh,
    /// A message held back after a `rate_limited` nack may go again.
    Resend,
    /// The oldest message in the outbox reached its give-up age.
    Expire,
    /// A topic refused with `rate_limited`/`unavailable` may subscribe again.
    TopicRetry,
}

/// The client-side connection machine (sans-IO): feed it [`Input`]s with
/// the current time, drain its [`Effect`]s, arm one timer at
/// [`Connection::deadline`]. See the crate docs for an example.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    phase: Phase,
    /// The public state last announced with `StateChanged`.
    announced: ConnectionState,
    now: Millis,
    rng: SplitMix64,
    /// Effects not yet polled, in order: new ones are pushed on `effects`;
    /// `poll_effect` takes them from `ready`, which holds an earlier batch
    /// reversed. Two `Vec`s make a FIFO with O(1) steps and without a
    /// `VecDeque`, whose code (generic per element type) costs ~1 KiB of
    /// gzipped wasm.
    effects: Vec<Effect>,
    ready: Vec<Effect>,
    token: Option<Secret>,
    /// Bumped on every new token, so an `auth_success` can be matched to the
    /// token it accepted.
    token_gen: u64,
    token_expires_at: Option<Millis>,
    token_lifetime: Option<u64>,
    refresh: Refresh,
    /// Token generations of the `auth` frames sent on the current socket and
    /// not answered yet, oldest first.
    auths_in_flight: Vec<u64>,
    network_online: bool,
    outbox: Outbox,
    /// The `max_frame` of the last `auth_success`, if it announced one.
    server_max_frame: Option<usize>,
    ping_seq: u64,
    /// Highest notification `seq` delivered to the application.
    last_seq: Option<u64>,
    /// Whether to send `last_seq` in the next `auth` (false after the session ended).
    resume: bool,
    /// The user `last_seq` belongs to.
    seq_user: Option<String>,
    /// The JWT `sub` of that user's token, when a token told it: a new token
    /// with another `sub` resets the cursor before its first `auth`.
    seq_subject: Option<String>,
    /// A refresh was started because the server refused the token with
    /// `expired_token`; another `expired_token` before an `auth_success`
    /// is final.
    expiry_refresh: bool,
    user_id: Option<String>,
    rtt: Option<Duration>,
    last_close: Option<CloseInfo>,
    last_error: Option<ConnectionError>,
    /// The wire side of the protocol.
    auth: Box<dyn Adapter>,
    /// The topics the app subscribed to.
    topics: Topics,
}

impl Connection {
    /// A machine in state `INITIAL`, with no effects queued, speaking the
    /// contract's protocol ([`ContractAuth`]).
    pub fn new(config: Config) -> Self {
        Self::with_adapter(config, Box::new(ContractAuth))
    }

    /// A machine that speaks `adapter`'s protocol (see [`crate::adapter`]).
    pub fn with_adapter(config: Config, adapter: Box<dyn Adapter>) -> Self {
        Self {
            auth: adapter,
            rng: SplitMix64::new(config.seed),
            config,
            phase: Phase::Initial,
            announced: ConnectionState::Initial,
            now: 0,
            effects: Vec::new(),
            ready: Vec::new(),
            token: None,
            token_gen: 0,
            token_expires_at: None,
            token_lifetime: None,
            refresh: Refresh::Idle,
            auths_in_flight: Vec::new(),
            network_online: true,
            outbox: Outbox::default(),
            server_max_frame: None,
            ping_seq: 0,
            last_seq: None,
            resume: true,
            seq_user: None,
            seq_subject: None,
            expiry_refresh: false,
            user_id: None,
            rtt: None,
            last_close: None,
            last_error: None,
            topics: Topics::default(),
        }
    }

    /// The configuration the machine was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds an input observed at `now` (caller's clock, milliseconds; a
    /// clock that goes backwards is treated as standing still). Due timers
    /// run first, so every input doubles as a [`Input::Tick`]. Effects queue
    /// up for [`Connection::poll_effect`].
    pub fn handle(&mut self, now: Millis, input: Input) {
        if self.is_destroyed() {
            return;
        }
        self.now = self.now.max(now);
        self.run_timers();
        match input {
            Input::SetToken { token, expires_in } => {
                self.on_token(token, expires_in, TokenSource::App);
            }
            Input::TokenRefreshed { token, expires_in } => {
                self.on_token(token, expires_in, TokenSource::Refresh);
            }
            Input::RefreshFailed { failure, message } => self.on_refresh_failed(failure, message),
            Input::SignOut => self.on_sign_out(),
            Input::Connect => self.on_connect(),
            Input::Disconnect => self.on_disconnect(),
            Input::Opened => self.on_opened(),
            Input::Frame(text) => self.on_frame(&text),
            Input::BinaryFrame { len } => {
                if self.has_socket() {
                    self.error(ConnectionError::BinaryFrame { len });
                }
            }
            Input::Closed { code, reason } => self.on_closed(code, reason),
            Input::Tick | Input::Hidden => {}
            Input::Online => self.on_online(),
            Input::Offline => self.on_offline(),
            Input::Visible => self.on_visible(),
            Input::Destroy => self.on_destroy(),
        }
        self.run_timers();
    }

    /// Queues a message with a delivery guarantee and returns its id. It is
    /// sent at once when connected, otherwise after the next `auth_success`,
    /// and again after every reconnect until its `ack` arrives
    /// ([`Event::Ack`]) or it fails ([`Event::SendFailed`]).
    ///
    /// A message not acked within [`Config::outbox_max_age`] fails with
    /// [`SendError::Expired`]; one the server refuses with a `nack` fails
    /// with [`SendError::Nacked`], except `rate_limited`, which is resent
    /// after a backoff.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] when the encoded frame exceeds the frame
    /// limit in force ([`Config::max_frame_bytes`], or the `max_frame` the
    /// server announced); [`SendError::QueueFull`] when
    /// [`Config::outbox_capacity`] messages are unacknowledged;
    /// [`SendError::AuthFailed`], [`SendError::GaveUp`] or
    /// [`SendError::Destroyed`] while stopped for that reason.
    pub fn send(&mut self, now: Millis, body: RawJson) -> Result<MessageId, SendError> {
        self.now = self.now.max(now);
        self.check_sendable()?;
        let capacity = self.config.outbox_bound();
        if self.outbox.len() >= capacity {
            return Err(SendError::QueueFull { capacity });
        }
        let id = MessageId::new(self.rng.uuid_v4());
        let frame = self.auth.message_frame(&id, &body);
        let limit = self.send_limit();
        if frame.len() > limit {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit,
            });
        }
        if matches!(self.phase, Phase::Online { .. }) {
            if self.auth.delivery() == Delivery::FireAndForget {
                self.effects.push(Effect::SendFrame(frame));
                return Ok(id);
            }
            self.effects.push(Effect::SendFrame(frame.clone()));
        }
        self.outbox.push(id.clone(), frame, self.now);
        Ok(id)
    }

    /// Subscribes to `topic` (contract "Topics"). The `subscribe` goes out
    /// at once when connected, otherwise after the next `auth_success`, and
    /// again after every reconnect (with `since` = the topic's position, so
    /// nothing is missed or applied twice) until the app unsubscribes or
    /// the server refuses or ends the topic for good. The topic's progress
    /// is reported with [`TopicEvent`]s inside [`Event::Topic`]; its state
    /// is [`Connection::topic`]. Subscribing to a topic already subscribed
    /// (or being subscribed) changes nothing; subscribing to a failed one
    /// tries again from its position.
    ///
    /// ```
    /// use tether_core::{
    ///     Config, Connection, Effect, Event, Input, RawJson, Secret, SubscribeOptions, TopicEvent,
    ///     TopicState,
    /// };
    ///
    /// let mut conn = Connection::new(Config::default());
    /// let sent = |conn: &mut Connection| -> Vec<String> {
    ///     std::iter::from_fn(|| conn.poll_effect())
    ///         .filter_map(|e| match e {
    ///             Effect::SendFrame(frame) => Some(frame),
    ///             _ => None,
    ///         })
    ///         .collect()
    /// };
    /// conn.handle(0, Input::SetToken { token: Secret::new("tok"), expires_in: None });
    /// // Subscribing and publishing before the connection is up: both wait.
    /// conn.subscribe(0, "room:42", SubscribeOptions { last: 50 }).unwrap();
    /// let id = conn.publish(0, "room:42", "chat.text", RawJson::new(r#"{"text":"hi"}"#).unwrap()).unwrap();
    /// assert_eq!(conn.topic("room:42").unwrap().state, TopicState::Subscribing);
    /// conn.handle(0, Input::Connect);
    /// conn.handle(10, Input::Opened);
    /// conn.handle(20, Input::Frame(r#"{"type":"auth_success","payload":{"user_id":"u1",
    ///     "authenticated_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:15:00Z"}}"#.into()));
    /// // The subscribe goes out after `auth_success`; the publish waits for `subscribed`.
    /// let frames = sent(&mut conn);
    /// assert!(frames.iter().any(|f| f.contains(r#""type":"subscribe""#) && f.contains(r#""last":50"#)));
    /// assert!(!frames.iter().any(|f| f.contains(r#""type":"publish""#)));
    ///
    /// conn.handle(30, Input::Frame(r#"{"type":"subscribed","payload":{"topic":"room:42",
    ///     "epoch":"e1","offset":7,"from":8,"presence":[]}}"#.into()));
    /// assert!(sent(&mut conn).iter().any(|f| f.contains(id.as_str())), "the publish goes out now");
    /// assert_eq!(conn.topic("room:42").unwrap().state, TopicState::Subscribed);
    ///
    /// // Its ack, then the message itself as every subscriber gets it.
    /// conn.handle(40, Input::Frame(format!(r#"{{"type":"ack","payload":{{"id":"{id}","topic":"room:42","offset":8}}}}"#)));
    /// conn.handle(41, Input::Frame(r#"{"type":"message","payload":{"topic":"room:42","offset":8,
    ///     "event":"chat.text","data":{"text":"hi"},"from":{"user_id":"u1","username":"alice"},
    ///     "id":"m8","created_at":"2026-01-01T00:00:01Z"}}"#.into()));
    /// let events: Vec<TopicEvent> = std::iter::from_fn(|| conn.poll_effect())
    ///     .filter_map(|e| match e {
    ///         Effect::Emit(Event::Topic(event)) => Some(event),
    ///         _ => None,
    ///     })
    ///     .collect();
    /// assert!(matches!(&events[0], TopicEvent::Published { offset: 8, .. }));
    /// assert!(matches!(&events[1], TopicEvent::Message { message, replayed: false } if message.offset == 8));
    /// assert_eq!(conn.topic("room:42").unwrap().position.unwrap().offset, 8);
    /// ```
    ///
    /// # Errors
    /// [`TopicError::InvalidTopic`] for a name that is not `<kind>:<id>`,
    /// [`TopicError::InvalidLast`] for `last` over
    /// [`tether_protocol::MAX_LAST`], [`TopicError::TooManyTopics`] beyond
    /// [`tether_protocol::MAX_TOPICS_PER_SOCKET`] topics,
    /// [`TopicError::Unsupported`] when the adapter has no topics,
    /// [`TopicError::Destroyed`] after [`Input::Destroy`].
    pub fn subscribe(
        &mut self,
        now: Millis,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<(), TopicError> {
        self.now = self.now.max(now);
        if self.is_destroyed() {
            return Err(TopicError::Destroyed);
        }
        if !self.auth.topics() {
            return Err(TopicError::Unsupported);
        }
        if !is_valid_topic(topic) {
            return Err(TopicError::InvalidTopic {
                topic: topic.to_owned(),
            });
        }
        if options.last > MAX_LAST {
            return Err(TopicError::InvalidLast {
                last: options.last,
                max: MAX_LAST,
            });
        }
        let online = matches!(self.phase, Phase::Online { .. });
        let result = self
            .topics
            .subscribe(topic, options, online, MAX_TOPICS_PER_SOCKET);
        self.drain_topics();
        result
    }

    /// Unsubscribes from `topic`: `unsubscribe` goes out if the server
    /// holds the subscription, the topic's pending publishes fail with
    /// [`SendError::TopicEnded`], and the topic is forgotten
    /// ([`TopicState::Unsubscribed`](crate::TopicState::Unsubscribed);
    /// [`Connection::topic`] is `None`). Nothing happens for a topic the app
    /// has not subscribed to.
    pub fn unsubscribe(&mut self, now: Millis, topic: &str) {
        self.now = self.now.max(now);
        self.topics.unsubscribe(topic);
        self.drain_topics();
    }

    /// Publishes `event` with `data` to `topic` through the acked outbox
    /// and returns its id. It is held until the topic is subscribed, sent
    /// then, and resent after every reconnect (after the topic's new
    /// `subscribed`) until its `ack` ([`TopicEvent::Published`], with the
    /// message's offset) or its failure ([`TopicEvent::PublishFailed`]): a
    /// `nack` is final except `rate_limited` (resent after a backoff) and
    /// `not_subscribed` (resent after the topic's next `subscribed`); the
    /// topic ending fails it with [`SendError::TopicEnded`]; it expires like
    /// a `send` ([`Config::outbox_max_age`]).
    ///
    /// # Errors
    /// [`SendError::NotSubscribed`] when the app has not subscribed to the
    /// topic (or it failed); [`SendError::TooLarge`] when the encoded
    /// `publish` frame exceeds the frame limit in force;
    /// [`SendError::QueueFull`], [`SendError::AuthFailed`],
    /// [`SendError::GaveUp`] and [`SendError::Destroyed`] as for
    /// [`Connection::send`].
    pub fn publish(
        &mut self,
        now: Millis,
        topic: &str,
        event: &str,
        data: RawJson,
    ) -> Result<MessageId, SendError> {
        self.now = self.now.max(now);
        self.check_sendable()?;
        if !self.topics.wanted(topic) {
            return Err(SendError::NotSubscribed {
                topic: topic.to_owned(),
            });
        }
        let capacity = self.config.outbox_bound();
        if self.outbox.len() >= capacity {
            return Err(SendError::QueueFull { capacity });
        }
        let id = MessageId::new(self.rng.uuid_v4());
        let frame = self.auth.topic_frame(&ClientMessage::Publish(Publish {
            id: id.as_str().to_owned(),
            topic: topic.to_owned(),
            event: event.to_owned(),
            data,
        }));
        let limit = self.send_limit();
        if frame.len() > limit {
            return Err(SendError::TooLarge {
                size: frame.len(),
                limit,
            });
        }
        let live = matches!(self.phase, Phase::Online { .. }) && self.topics.is_live(topic);
        if live {
            self.effects.push(Effect::SendFrame(frame.clone()));
        }
        self.outbox
            .push_publish(id.clone(), frame, self.now, topic.to_owned(), live);
        Ok(id)
    }

    /// The state, presence and position of `topic`; `None` when the app
    /// has not subscribed to it (never, or it unsubscribed, or the session
    /// ended).
    pub fn topic(&self, topic: &str) -> Option<TopicSnapshot> {
        self.topics.snapshot(topic)
    }

    /// The next effect to execute, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut self.effects);
            self.ready.reverse();
        }
        self.ready.pop()
    }

    /// The coarse public state.
    pub fn state(&self) -> ConnectionState {
        public_state(&self.phase)
    }

    /// The earliest time the machine wants an [`Input::Tick`], if any. The
    /// driver keeps its one timer armed at this time, re-reading it after
    /// every call that takes `now` ([`handle`](Self::handle),
    /// [`send`](Self::send), [`subscribe`](Self::subscribe),
    /// [`unsubscribe`](Self::unsubscribe), [`publish`](Self::publish)).
    pub fn deadline(&self) -> Option<Millis> {
        self.next_due().map(|(at, _)| at)
    }

    /// The public state for the UI.
    pub fn snapshot(&self) -> Snapshot {
        let detail = match &self.phase {
            Phase::Initial => Detail::Idle,
            Phase::Refreshing { attempt } => Detail::Refreshing { attempt: *attempt },
            Phase::Opening { attempt, .. } => Detail::Opening { attempt: *attempt },
            Phase::Authenticating { attempt, .. } => Detail::Authenticating { attempt: *attempt },
            Phase::Online { since, .. } => Detail::Online { since: *since },
            Phase::Waiting { attempt, at } => Detail::RetryScheduled {
                attempt: *attempt,
                at: *at,
            },
            Phase::Disconnecting { .. } => Detail::Closing,
            Phase::Stopped(reason) => Detail::Stopped(reason.clone()),
        };
        let ended = matches!(
            self.phase,
            Phase::Stopped(StopReason::AuthFailed(_) | StopReason::SignedOut)
        );
        Snapshot {
            detail,
            signed_in: self.token.is_some() || (!self.auth.requires_token() && !ended),
            last_close: self.last_close.clone(),
            last_error: self.last_error.clone(),
            rtt: self.rtt,
            pending: self.outbox.len(),
            user_id: self.user_id.clone(),
            token_expires_at: self.token_expires_at,
        }
    }

    // ----- inputs ---------------------------------------------------------

    fn on_token(&mut self, token: Secret, expires_in: Option<Duration>, source: TokenSource) {
        // A refresh answer ends the cycle; a token from elsewhere only
        // cancels a backoff (the outstanding request still gets its answer).
        if source == TokenSource::Refresh || matches!(self.refresh, Refresh::Backoff { .. }) {
            self.refresh = Refresh::Idle;
        }
        // A refresh that was in flight when the user signed out must not
        // sign them back in.
        if source == TokenSource::Refresh
            && matches!(self.phase, Phase::Stopped(StopReason::SignedOut))
        {
            return;
        }
        // Another user's token: their first `auth` must not carry this
        // user's replay cursor. (A token without a readable `sub` keeps the
        // cursor until `auth_success` names another user.)
        if let Some(subject) = crate::jwt::subject(token.expose())
            && self.seq_subject.as_ref().is_some_and(|s| *s != subject)
        {
            self.last_seq = None;
            self.seq_user = None;
            self.seq_subject = None;
        }
        if source == TokenSource::App {
            // The app's own token gets its own chance to be refreshed.
            self.expiry_refresh = false;
        }
        self.token = Some(token.clone());
        self.token_gen += 1;
        self.token_lifetime = expires_in.map(ms);
        self.token_expires_at = self.token_lifetime.map(|l| self.now.saturating_add(l));
        self.effects.push(Effect::StoreToken(token));
        match self.phase {
            Phase::Refreshing { attempt } => self.start_attempt(attempt),
            Phase::Online { .. } if self.auth.reauth_in_place() => self.send_auth(),
            // The handshake cannot take a new token on the open socket:
            // reconnect with it.
            Phase::Online { .. } => {
                self.close_socket(1000, "Re-authenticating");
                self.start_attempt(0);
            }
            _ => {}
        }
    }

    fn on_refresh_failed(&mut self, failure: RefreshFailure, message: String) {
        let failures = match self.refresh {
            Refresh::InFlight { failures } | Refresh::Backoff { failures, .. } => failures,
            Refresh::Idle => 0,
        };
        self.refresh = Refresh::Idle;
        if matches!(
            self.phase,
            Phase::Stopped(StopReason::AuthFailed(_) | StopReason::SignedOut)
        ) {
            return;
        }
        if failure == RefreshFailure::Rejected {
            self.close_socket(1000, "Signed out");
            self.fail_auth(AuthErrorCode::Other("invalid_refresh".into()), message);
            return;
        }
        let expired = self.token.is_none() || self.token_expired();
        if !expired {
            let failures = failures.saturating_add(1);
            let delay = self.config.backoff.delay(failures, &mut self.rng);
            self.refresh = Refresh::Backoff {
                at: self.now.saturating_add(ms(delay)),
                failures,
            };
            self.error(ConnectionError::RefreshFailed { message });
        } else if self.is_active() {
            self.close_socket(1000, "Token expired");
            self.fail_auth(AuthErrorCode::ExpiredToken, message);
        } else {
            // Not trying to connect: the next attempt refreshes first.
            self.error(ConnectionError::RefreshFailed { message });
        }
    }

    fn on_sign_out(&mut self) {
        self.end_topics();
        self.close_socket(1000, "Signed out");
        self.forget_token();
        self.resume = false;
        self.set_phase(Phase::Stopped(StopReason::SignedOut));
        self.effects.push(Effect::ClearToken);
        self.emit(Event::SignedOut);
        self.fail_pending(&SendError::SignedOut);
    }

    fn on_connect(&mut self) {
        match self.phase {
            Phase::Refreshing { .. }
            | Phase::Opening { .. }
            | Phase::Authenticating { .. }
            | Phase::Online { .. } => {}
            Phase::Initial
            | Phase::Waiting { .. }
            | Phase::Disconnecting { .. }
            | Phase::Stopped(_) => {
                // A connect from DISCONNECTING abandons the closing socket;
                // the driver replaces it on OpenSocket.
                self.start_attempt(0);
            }
        }
    }

    fn on_disconnect(&mut self) {
        match self.phase {
            Phase::Opening { .. } | Phase::Authenticating { .. } | Phase::Online { .. } => {
                self.close_socket(1000, "Client disconnect");
                let deadline = self.now.saturating_add(ms(self.config.keepalive.timeout));
                self.set_phase(Phase::Disconnecting { deadline });
            }
            Phase::Disconnecting { .. } => {}
            Phase::Initial
            | Phase::Refreshing { .. }
            | Phase::Waiting { .. }
            | Phase::Stopped(_) => {
                self.set_phase(Phase::Stopped(StopReason::Manual));
            }
        }
    }

    fn on_opened(&mut self) {
        if let Phase::Opening { attempt, deadline } = self.phase {
            self.set_phase(Phase::Authenticating { attempt, deadline });
            self.send_auth();
        }
    }

    fn on_closed(&mut self, code: u16, reason: String) {
        match self.phase {
            Phase::Disconnecting { .. } => {
                self.record_close(code, reason);
                self.set_phase(Phase::Stopped(StopReason::Manual));
            }
            Phase::Opening { attempt, .. } | Phase::Authenticating { attempt, .. } => {
                self.socket_lost(attempt, code, reason);
            }
            Phase::Online { .. } => self.socket_lost(0, code, reason),
            // No socket of ours: a late close of an abandoned one.
            _ => {}
        }
    }

    fn socket_lost(&mut self, attempt: u32, code: u16, reason: String) {
        self.record_close(code, reason.clone());
        if let Some(auth_code) = self.auth.final_close(code) {
            let message = if reason.is_empty() {
                format!("the server closed the socket with {code}")
            } else {
                reason
            };
            self.fail_auth(auth_code, message);
        } else {
            if code == close_code::TOO_BIG {
                self.error(ConnectionError::MessageTooBig);
            }
            self.retry_later(attempt);
        }
    }

    fn on_online(&mut self) {
        self.network_online = true;
        match self.phase {
            Phase::Waiting { .. }
            | Phase::Stopped(StopReason::Offline | StopReason::GaveUp { .. }) => {
                self.start_attempt(0);
            }
            _ => {}
        }
    }

    fn on_offline(&mut self) {
        self.network_online = false;
        match self.phase {
            Phase::Opening { .. }
            | Phase::Authenticating { .. }
            | Phase::Online { .. }
            | Phase::Refreshing { .. }
            | Phase::Waiting { .. } => {
                self.close_socket(1000, "Network offline");
                self.set_phase(Phase::Stopped(StopReason::Offline));
            }
            _ => {}
        }
    }

    fn on_visible(&mut self) {
        match &mut self.phase {
            Phase::Online { ping, .. } => {
                let probe = self.config.keepalive.probe_timeout;
                let deadline = self.now.saturating_add(ms(probe));
                match ping {
                    Some(out) => {
                        if deadline < out.deadline {
                            out.deadline = deadline;
                            out.timeout = probe;
                        }
                    }
                    None => self.send_ping(probe),
                }
            }
            Phase::Waiting { attempt, .. } => {
                let attempt = *attempt;
                self.start_attempt(attempt);
            }
            Phase::Stopped(StopReason::GaveUp { .. }) if self.network_online => {
                self.start_attempt(0);
            }
            _ => {}
        }
    }

    fn on_destroy(&mut self) {
        self.end_topics();
        self.close_socket(1000, "Client disconnect");
        self.set_phase(Phase::Stopped(StopReason::Destroyed));
        self.fail_pending(&SendError::Destroyed);
    }

    fn on_frame(&mut self, text: &str) {
        if !self.has_socket() || matches!(self.phase, Phase::Disconnecting { .. }) {
            return; // a frame of a socket we no longer listen to
        }
        if !self.auths_in_flight.is_empty()
            && let Some(outcome) = self.auth.auth_response(text)
        {
            return match outcome {
                AuthOutcome::Accepted {
                    user_id,
                    lifetime,
                    max_frame,
                } => {
                    let max_frame = max_frame.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                    self.on_auth_success(user_id, lifetime, max_frame);
                }
                AuthOutcome::Refused { code, message } => self.on_auth_refused(code, message),
            };
        }
        let limit = self.send_limit().saturating_mul(2);
        let online = matches!(self.phase, Phase::Online { .. });
        let message = match self.auth.decode(text, limit) {
            Incoming::Contract(message) => message,
            Incoming::Malformed(err) => return self.error(ConnectionError::Decode(err)),
            Incoming::Error { code, message } => {
                return self.error(ConnectionError::Server { code, message });
            }
            Incoming::Ignore => return,
            Incoming::Message { kind, .. } if !online => {
                return self.error(ConnectionError::NotAuthenticated { kind });
            }
            Incoming::Message { kind, payload } => {
                return self.emit(Event::Message { kind, payload });
            }
            Incoming::Pong { seq } => return self.on_pong(seq),
            Incoming::Reply(frame) => {
                if online {
                    self.effects.push(Effect::SendFrame(frame));
                    self.on_pong(None);
                }
                return;
            }
        };
        match message {
            // An answer nobody asked for (no `auth` pending): ignored.
            ServerMessage::AuthSuccess(_) if online => {}
            ServerMessage::AuthError(err) if self.is_socket_open() => {
                self.on_auth_refused(err.code, err.message);
            }
            other if !online => {
                let kind = other_kind(&other);
                self.error(ConnectionError::NotAuthenticated { kind });
            }
            ServerMessage::Pong(pong) => self.on_pong(Some(pong.seq)),
            ServerMessage::Notification(n) => {
                if self.last_seq.is_none_or(|last| n.seq > last) {
                    self.last_seq = Some(n.seq);
                    self.emit(Event::Notification(n));
                }
            }
            ServerMessage::Ack(ack) => {
                if let Some(entry) = self.outbox.remove(&ack.id) {
                    let event = match entry.topic {
                        None => Event::Ack { id: entry.id },
                        Some(topic) => Event::Topic(TopicEvent::Published {
                            id: entry.id,
                            topic,
                            offset: ack.offset.unwrap_or(0),
                        }),
                    };
                    self.emit(event);
                }
            }
            ServerMessage::Nack(nack) => self.on_nack(nack),
            ServerMessage::Error(err) => self.error(ConnectionError::Server {
                code: err.code,
                message: err.message,
            }),
            ServerMessage::Subscribed(subscribed) => {
                self.topics.on_subscribed(subscribed);
                self.drain_topics();
            }
            ServerMessage::SubscribeError(refusal) => {
                let (backoff, now, rng) = (self.config.backoff, self.now, &mut self.rng);
                let retry_at = |n| now.saturating_add(ms(backoff.delay(n, rng)));
                self.topics.on_subscribe_error(refusal, retry_at);
                self.drain_topics();
            }
            ServerMessage::Unsubscribed(ended) => {
                self.topics.on_unsubscribed(ended);
                self.drain_topics();
            }
            ServerMessage::Message(message) => {
                self.topics.on_message(message);
                self.drain_topics();
            }
            ServerMessage::Presence(presence) => {
                self.topics.on_presence(presence);
                self.drain_topics();
            }
            // An adapter that hands the app's own frames over as contract frames.
            ServerMessage::App(app) => self.emit(Event::Message {
                kind: app.kind,
                payload: app.payload,
            }),
            other => {
                let kind = other_kind(&other);
                self.error(ConnectionError::Decode(
                    tether_protocol::DecodeError::UnknownType(kind),
                ));
            }
        }
    }

    /// An `auth_error`. Final, except `expired_token` for a token that was
    /// not just refreshed for that reason (one stored with no known expiry,
    /// or a server whose clock disagrees): that refreshes once and
    /// reconnects with the fresh token. The refresh failing is then final
    /// (`invalid_refresh` when rejected, `expired_token` otherwise).
    fn on_auth_refused(&mut self, code: AuthErrorCode, message: String) {
        self.close_socket(1000, "Authentication failed");
        if code != AuthErrorCode::ExpiredToken || self.expiry_refresh || self.token.is_none() {
            return self.fail_auth(code, message);
        }
        self.expiry_refresh = true;
        let attempt = match self.phase {
            Phase::Opening { attempt, .. } | Phase::Authenticating { attempt, .. } => attempt,
            _ => 0,
        };
        // The server says it has expired: so it has.
        self.token_expires_at = Some(self.now);
        self.start_attempt(attempt);
    }

    fn on_auth_success(
        &mut self,
        user_id: String,
        lifetime: Option<Duration>,
        max_frame: Option<usize>,
    ) {
        self.server_max_frame = max_frame;
        // Queued messages that the server would not take fail at once.
        let limit = self.send_limit();
        for entry in self.outbox.remove_larger(limit) {
            let size = entry.frame.len();
            self.fail_entry(entry, SendError::TooLarge { size, limit });
        }
        let answered_gen =
            (!self.auths_in_flight.is_empty()).then(|| self.auths_in_flight.remove(0));
        if answered_gen == Some(self.token_gen)
            && let Some(lifetime) = lifetime.map(ms)
        {
            self.token_lifetime = Some(lifetime);
            self.token_expires_at = Some(self.now.saturating_add(lifetime));
        }
        if self.seq_user.as_deref() != Some(user_id.as_str()) {
            self.last_seq = None;
            self.seq_user = Some(user_id.clone());
            self.seq_subject = None;
        }
        if answered_gen == Some(self.token_gen)
            && let Some(subject) = self
                .token
                .as_ref()
                .and_then(|t| crate::jwt::subject(t.expose()))
        {
            self.seq_subject = Some(subject);
        }
        self.expiry_refresh = false;
        self.resume = true;
        self.user_id = Some(user_id.clone());
        let reauth = matches!(self.phase, Phase::Online { .. });
        self.emit(Event::AuthSuccess {
            user_id: user_id.clone(),
            expires_at: self.token_expires_at.unwrap_or(0),
            reauth,
        });
        if !reauth {
            let interval = ms(self.config.keepalive.interval);
            self.set_phase(Phase::Online {
                since: self.now,
                next_ping_at: self.now.saturating_add(interval),
                ping: None,
            });
            self.emit(Event::Connected { user_id });
            let frames: Vec<String> = self.outbox.frames().map(str::to_owned).collect();
            self.effects
                .extend(frames.into_iter().map(Effect::SendFrame));
            if self.auth.delivery() == Delivery::FireAndForget {
                // Sent once: nothing will ack them.
                self.outbox.take_all();
            }
            // Publishes go again after their topic's new `subscribed`.
            self.outbox.unsend_all();
            self.topics.connected();
            self.drain_topics();
        }
        // A newer token arrived while this auth was in flight: use it.
        if self.auths_in_flight.is_empty() && answered_gen.is_some_and(|g| g != self.token_gen) {
            self.send_auth();
        }
    }

    /// A `nack`: final for the message (reported, never silent), except
    /// `rate_limited`, which holds it back for a backoff and resends it.
    /// For a publish, `not_subscribed` resends it after its topic's next
    /// `subscribed` (it fails when the topic ends); for a `send` it is final.
    fn on_nack(&mut self, nack: Nack) {
        if nack.code == NackCode::RateLimited {
            let (backoff, now, rng) = (self.config.backoff, self.now, &mut self.rng);
            let until = |n| now.saturating_add(ms(backoff.delay(n, rng)));
            self.outbox.hold(&nack.id, until);
            return;
        }
        if nack.code == NackCode::NotSubscribed && self.outbox.unsend(&nack.id).is_some() {
            return;
        }
        if let Some(entry) = self.outbox.remove(&nack.id) {
            let error = SendError::Nacked {
                code: nack.code,
                message: nack.message,
            };
            self.fail_entry(entry, error);
        }
    }

    /// A pong for ping `seq` (`None`: for whichever ping is outstanding).
    fn on_pong(&mut self, seq: Option<u64>) {
        let Phase::Online {
            next_ping_at, ping, ..
        } = &mut self.phase
        else {
            return;
        };
        let Some(out) = ping.filter(|out| seq.is_none_or(|seq| out.seq == seq)) else {
            return; // stale or unsolicited
        };
        *ping = None;
        *next_ping_at = out
            .sent_at
            .saturating_add(ms(self.config.keepalive.interval));
        let rtt = Duration::from_millis(self.now.saturating_sub(out.sent_at));
        self.rtt = Some(rtt);
        self.emit(Event::Pong { rtt });
    }

    // ----- timers ---------------------------------------------------------

    fn next_due(&self) -> Option<(Millis, Due)> {
        let phase = match &self.phase {
            Phase::Opening { deadline, .. } | Phase::Authenticating { deadline, .. } => {
                Some((*deadline, Due::ConnectTimeout))
            }
            Phase::Online {
                ping: Some(out), ..
            } => Some((out.deadline, Due::PongTimeout)),
            // `MAX`: the adapter sends no pings.
            Phase::Online {
                next_ping_at,
                ping: None,
                ..
            } => (*next_ping_at != Millis::MAX).then_some((*next_ping_at, Due::Ping)),
            Phase::Waiting { at, .. } => Some((*at, Due::Retry)),
            Phase::Disconnecting { deadline } => Some((*deadline, Due::CloseTimeout)),
            Phase::Initial | Phase::Refreshing { .. } | Phase::Stopped(_) => None,
        };
        let refresh = self
            .refresh_due()
            .filter(|_| self.is_active())
            .map(|at| (at, Due::Refresh));
        let resend = self
            .outbox
            .next_release()
            .filter(|_| matches!(self.phase, Phase::Online { .. }))
            .map(|at| (at, Due::Resend));
        let expire = self.outbox.oldest().map(|at| {
            (
                at.saturating_add(self.config.outbox_age_bound()),
                Due::Expire,
            )
        });
        let topic_retry = self
            .topics
            .next_retry()
            .filter(|_| matches!(self.phase, Phase::Online { .. }))
            .map(|at| (at, Due::TopicRetry));
        [phase, refresh, resend, expire, topic_retry]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    fn refresh_due(&self) -> Option<Millis> {
        match self.refresh {
            Refresh::InFlight { .. } => None,
            Refresh::Backoff { at, .. } => Some(at),
            Refresh::Idle => {
                self.token.as_ref()?;
                let expires_at = self.token_expires_at?;
                let mut lead = ms(self.config.refresh_lead);
                if let Some(lifetime) = self.token_lifetime {
                    lead = lead.min(lifetime / 2);
                }
                Some(expires_at.saturating_sub(lead))
            }
        }
    }

    /// Fires every due deadline, earliest first.
    fn run_timers(&mut self) {
        for _ in 0..64 {
            match self.next_due() {
                Some((at, due)) if at <= self.now => self.fire(due),
                _ => return,
            }
        }
    }

    fn fire(&mut self, due: Due) {
        match (due, self.phase.clone()) {
            (Due::ConnectTimeout, Phase::Opening { attempt, .. })
            | (Due::ConnectTimeout, Phase::Authenticating { attempt, .. }) => {
                let after = self.config.connect_timeout;
                self.error(ConnectionError::ConnectTimeout { after });
                self.close_socket(CLOSE_TIMEOUT, "Connect timeout");
                self.retry_later(attempt);
            }
            (
                Due::PongTimeout,
                Phase::Online {
                    ping: Some(out), ..
                },
            ) => {
                self.error(ConnectionError::KeepaliveTimeout { after: out.timeout });
                self.close_socket(CLOSE_TIMEOUT, "Keepalive timeout");
                self.retry_later(0);
            }
            (Due::Ping, Phase::Online { .. }) => self.send_ping(self.config.keepalive.timeout),
            (Due::Retry, Phase::Waiting { attempt, .. }) => self.start_attempt(attempt),
            (Due::CloseTimeout, Phase::Disconnecting { .. }) => {
                self.set_phase(Phase::Stopped(StopReason::Manual));
            }
            (Due::Refresh, _) => {
                let failures = match self.refresh {
                    Refresh::Backoff { failures, .. } => failures,
                    _ => 0,
                };
                self.refresh = Refresh::InFlight { failures };
                self.effects.push(Effect::RefreshToken);
            }
            (Due::TopicRetry, Phase::Online { .. }) => {
                self.topics.retry_due(self.now);
                self.drain_topics();
            }
            (Due::Resend, Phase::Online { .. }) => {
                let topics = &self.topics;
                let frames = self.outbox.release(self.now, |t| topics.is_live(t));
                self.effects
                    .extend(frames.into_iter().map(Effect::SendFrame));
            }
            (Due::Expire, _) => {
                let max_age = self.config.outbox_age_bound();
                if let Some(cutoff) = self.now.checked_sub(max_age) {
                    let error = SendError::Expired {
                        max_age: Duration::from_millis(max_age),
                    };
                    for entry in self.outbox.expire(cutoff) {
                        self.fail_entry(entry, error.clone());
                    }
                }
            }
            // `next_due` only yields dues that fit the phase.
            _ => {}
        }
    }

    // ----- transitions ----------------------------------------------------

    /// Opens a socket for this attempt, refreshing an expired token first.
    fn start_attempt(&mut self, attempt: u32) {
        if self.token.is_none() && self.auth.requires_token() {
            return self.fail_auth(
                AuthErrorCode::MissingToken,
                "no access token; sign in".into(),
            );
        }
        if self.token_expired() {
            if !matches!(self.refresh, Refresh::InFlight { .. }) {
                self.refresh = Refresh::InFlight { failures: 0 };
                self.effects.push(Effect::RefreshToken);
            }
            return self.set_phase(Phase::Refreshing { attempt });
        }
        let token = self.token.as_ref().map(Secret::expose);
        let token = token.filter(|_| self.config.token_in_query);
        let url = SocketUrl::new(&self.config.url, token);
        self.auths_in_flight.clear();
        self.effects.push(Effect::OpenSocket { url });
        let deadline = self.now.saturating_add(ms(self.config.connect_timeout));
        self.set_phase(Phase::Opening { attempt, deadline });
    }

    /// The socket is gone (or was abandoned): schedule the next attempt, or
    /// give up.
    fn retry_later(&mut self, failed_attempt: u32) {
        if !self.network_online {
            return self.set_phase(Phase::Stopped(StopReason::Offline));
        }
        let attempt = failed_attempt.saturating_add(1);
        if !self.config.backoff.allows(attempt) {
            self.set_phase(Phase::Stopped(StopReason::GaveUp {
                attempts: failed_attempt,
            }));
            self.emit(Event::ReconnectFailed {
                attempts: failed_attempt,
            });
            return self.fail_pending(&SendError::GaveUp);
        }
        let delay = self.config.backoff.delay(attempt, &mut self.rng);
        let at = self.now.saturating_add(ms(delay));
        self.set_phase(Phase::Waiting { attempt, at });
        self.emit(Event::ReconnectScheduled { attempt, delay, at });
    }

    /// Final authentication failure: forget the token, go to the login
    /// route, fail pending messages. The caller has closed the socket.
    fn fail_auth(&mut self, code: AuthErrorCode, message: String) {
        self.end_topics();
        self.forget_token();
        self.resume = false;
        self.set_phase(Phase::Stopped(StopReason::AuthFailed(code.clone())));
        self.effects.push(Effect::ClearToken);
        self.effects
            .push(Effect::Navigate(self.config.login_route.clone()));
        self.emit(Event::AuthError { code, message });
        self.fail_pending(&SendError::AuthFailed);
    }

    /// Drops the token and any refresh backoff (an outstanding refresh
    /// still gets its answer, which is then ignored or used).
    fn forget_token(&mut self) {
        self.token = None;
        self.token_gen += 1;
        self.token_expires_at = None;
        self.token_lifetime = None;
        if matches!(self.refresh, Refresh::Backoff { .. }) {
            self.refresh = Refresh::Idle;
        }
    }

    fn fail_pending(&mut self, error: &SendError) {
        for entry in self.outbox.take_all() {
            self.fail_entry(entry, error.clone());
        }
    }

    /// The session is ending (sign-out, final authentication failure,
    /// destroy): every topic is forgotten; the caller fails the pending
    /// messages with the reason.
    fn end_topics(&mut self) {
        self.topics.end_all();
        self.drain_topics();
    }

    /// Closes the socket the machine holds, if any (not one that is already
    /// closing), recording the close. The caller changes the phase next.
    fn close_socket(&mut self, code: u16, reason: &str) {
        if matches!(
            self.phase,
            Phase::Opening { .. } | Phase::Authenticating { .. } | Phase::Online { .. }
        ) {
            self.effects.push(Effect::CloseSocket {
                code,
                reason: reason.to_owned(),
            });
            self.record_close(code, reason.to_owned());
        }
    }

    fn record_close(&mut self, code: u16, reason: String) {
        let close = CloseInfo { code, reason };
        self.last_close = Some(close.clone());
        self.emit(close.into());
    }

    fn set_phase(&mut self, phase: Phase) {
        let was_online = matches!(self.phase, Phase::Online { .. });
        self.phase = phase;
        let to = public_state(&self.phase);
        if to != self.announced {
            let from = std::mem::replace(&mut self.announced, to);
            self.emit(Event::StateChanged { from, to });
        }
        if was_online && !matches!(self.phase, Phase::Online { .. }) {
            // The server forgets this socket's subscriptions with it.
            self.topics.disconnected();
            self.drain_topics();
        }
    }

    fn send_auth(&mut self) {
        let last_seq = if self.resume { self.last_seq } else { None };
        self.auths_in_flight.push(self.token_gen);
        if let Some(frame) = self.auth.auth_frame(self.token.as_ref(), last_seq) {
            self.effects.push(Effect::SendFrame(frame));
        }
    }

    fn send_ping(&mut self, timeout: Duration) {
        self.ping_seq += 1;
        let seq = self.ping_seq;
        let now = self.now;
        let frame = self.auth.ping_frame(seq);
        if let Phase::Online {
            ping, next_ping_at, ..
        } = &mut self.phase
        {
            let Some(frame) = frame else {
                // No client keepalive.
                *next_ping_at = Millis::MAX;
                return;
            };
            *ping = Some(PingOut {
                seq,
                sent_at: now,
                deadline: now.saturating_add(ms(timeout)),
                timeout,
            });
            self.effects.push(Effect::SendFrame(frame));
        }
    }

    /// Refuses new messages while stopped for good.
    fn check_sendable(&self) -> Result<(), SendError> {
        match &self.phase {
            Phase::Stopped(StopReason::Destroyed) => Err(SendError::Destroyed),
            Phase::Stopped(StopReason::AuthFailed(_)) => Err(SendError::AuthFailed),
            Phase::Stopped(StopReason::GaveUp { .. }) => Err(SendError::GaveUp),
            _ => Ok(()),
        }
    }

    /// Carries out what the topics asked for, in order.
    fn drain_topics(&mut self) {
        // The buffer goes back afterwards, so a message costs no allocation
        // for it (none of these actions makes the topics act again).
        let mut actions = std::mem::take(&mut self.topics.out);
        for action in actions.drain(..) {
            match action {
                Action::Subscribe(subscribe) => {
                    let frame = self.auth.topic_frame(&ClientMessage::Subscribe(subscribe));
                    self.effects.push(Effect::SendFrame(frame));
                }
                Action::Unsubscribe(unsubscribe) => {
                    let frame = self
                        .auth
                        .topic_frame(&ClientMessage::Unsubscribe(unsubscribe));
                    self.effects.push(Effect::SendFrame(frame));
                }
                Action::Emit(event) => self.emit(Event::Topic(event)),
                Action::Flush(topic) => {
                    let frames = self.outbox.flush(&topic);
                    self.effects
                        .extend(frames.into_iter().map(Effect::SendFrame));
                }
                Action::End(topic) => {
                    for entry in self.outbox.remove_topic(&topic) {
                        let topic = topic.clone();
                        self.fail_entry(entry, SendError::TopicEnded { topic });
                    }
                }
            }
        }
        debug_assert!(self.topics.out.is_empty(), "an action made the topics act");
        self.topics.out = actions;
    }

    /// Reports a message that left the outbox without an ack.
    fn fail_entry(&mut self, entry: Entry, error: SendError) {
        let event = match entry.topic {
            None => Event::SendFailed {
                id: entry.id,
                error,
            },
            Some(topic) => Event::Topic(TopicEvent::PublishFailed {
                id: entry.id,
                topic,
                error,
            }),
        };
        self.emit(event);
    }

    fn error(&mut self, error: ConnectionError) {
        self.last_error = Some(error.clone());
        self.emit(Event::Error(error));
    }

    fn emit(&mut self, event: Event) {
        self.effects.push(Effect::Emit(event));
    }

    // ----- queries --------------------------------------------------------

    /// The largest `send` frame the server takes now.
    fn send_limit(&self) -> usize {
        self.server_max_frame.unwrap_or(self.config.max_frame_bytes)
    }

    fn token_expired(&self) -> bool {
        self.token_expires_at.is_some_and(|at| at <= self.now)
    }

    fn has_socket(&self) -> bool {
        matches!(
            self.phase,
            Phase::Opening { .. }
                | Phase::Authenticating { .. }
                | Phase::Online { .. }
                | Phase::Disconnecting { .. }
        )
    }

    /// Whether the socket is open and has sent `auth`.
    fn is_socket_open(&self) -> bool {
        matches!(
            self.phase,
            Phase::Authenticating { .. } | Phase::Online { .. }
        )
    }

    /// Whether the machine is trying to be connected.
    fn is_active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Refreshing { .. }
                | Phase::Opening { .. }
                | Phase::Authenticating { .. }
                | Phase::Online { .. }
                | Phase::Waiting { .. }
        )
    }

    fn is_destroyed(&self) -> bool {
        matches!(self.phase, Phase::Stopped(StopReason::Destroyed))
    }
}

fn public_state(phase: &Phase) -> ConnectionState {
    match phase {
        Phase::Initial => ConnectionState::Initial,
        Phase::Refreshing { .. } | Phase::Opening { .. } | Phase::Authenticating { .. } => {
            ConnectionState::Connecting
        }
        Phase::Online { .. } => ConnectionState::Connected,
        Phase::Disconnecting { .. } => ConnectionState::Disconnecting,
        Phase::Waiting { .. } | Phase::Stopped(_) => ConnectionState::Disconnected,
    }
}

fn other_kind(message: &ServerMessage) -> String {
    match message {
        ServerMessage::AuthSuccess(_) => "auth_success",
        ServerMessage::AuthError(_) => "auth_error",
        ServerMessage::Pong(_) => "pong",
        ServerMessage::Notification(_) => "notification",
        ServerMessage::Ack(_) => "ack",
        ServerMessage::Nack(_) => "nack",
        ServerMessage::Error(_) => "error",
        ServerMessage::Subscribed(_) => "subscribed",
        ServerMessage::SubscribeError(_) => "subscribe_error",
        ServerMessage::Unsubscribed(_) => "unsubscribed",
        ServerMessage::Message(_) => "message",
        ServerMessage::Presence(_) => "presence",
        ServerMessage::App(app) => return app.kind.clone(),
        _ => "unknown",
    }
    .to_owned()
}
