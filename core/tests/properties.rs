//! Property tests: random input sequences on a virtual clock, checked
//! against a model of the driver (one socket at a time, auth first, no
//! reconnect after a final failure or a manual disconnect, no lost message).

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;
use tether_core::{
    Backoff, Config, Connection, Detail, Effect, Event, Input, Keepalive, Millis, RefreshFailure,
    SocketUrl,
};

#[derive(Debug, Clone)]
enum Op {
    Wait(u64),
    Input(Input),
    /// A pong for the last ping the machine sent.
    PongLast,
    /// An ack for one of the ids sent on the current socket.
    AckSent(usize),
    Send(usize),
}

fn token_input(refreshed: bool) -> impl Strategy<Value = Input> {
    (
        "[a-z0-9.]{1,12}",
        prop_oneof![
            Just(None),
            (0u64..200).prop_map(|s| Some(Duration::from_secs(s))),
            Just(Some(Duration::from_secs(3_600))),
        ],
    )
        .prop_map(move |(token, expires_in)| {
            let token = token.into();
            if refreshed {
                Input::TokenRefreshed { token, expires_in }
            } else {
                Input::SetToken { token, expires_in }
            }
        })
}

fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![Just(0i64), Just(1), Just(60), Just(900)].prop_map(auth_success),
        1 => prop_oneof![Just("invalid_token"), Just("revoked"), Just("auth_timeout"), Just("?")]
            .prop_map(auth_error),
        3 => (0u64..30).prop_map(notification),
        1 => (0u64..5).prop_map(pong),
        1 => Just(ack("unknown")),
        1 => Just(r#"{"type":"error","payload":{"code":"rate_limited","message":"m"}}"#.to_owned()),
        2 => any::<String>(),
        1 => "\\{\"type\":\"[a-z_]{0,12}\"(,\"payload\":\\{\\})?\\}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let code = prop_oneof![
        Just(1000u16),
        Just(1001),
        Just(1006),
        Just(1008),
        Just(1009),
        Just(4000),
        Just(4001),
        Just(4003),
        any::<u16>(),
    ];
    prop_oneof![
        6 => prop_oneof![0u64..1_000, 0u64..40_000, 0u64..400_000].prop_map(Op::Wait),
        2 => token_input(false).prop_map(Op::Input),
        2 => token_input(true).prop_map(Op::Input),
        1 => any::<bool>().prop_map(|rejected| Op::Input(Input::RefreshFailed {
            failure: if rejected { RefreshFailure::Rejected } else { RefreshFailure::Transient },
            message: "m".into()
        })),
        4 => Just(Op::Input(Input::Connect)),
        1 => Just(Op::Input(Input::Disconnect)),
        6 => Just(Op::Input(Input::Opened)),
        8 => frame().prop_map(|f| Op::Input(Input::Frame(f))),
        1 => (0usize..100_000).prop_map(|len| Op::Input(Input::BinaryFrame { len })),
        3 => code.prop_map(|code| Op::Input(Input::Closed { code, reason: "r".into() })),
        2 => Just(Op::Input(Input::Tick)),
        1 => Just(Op::Input(Input::Online)),
        1 => Just(Op::Input(Input::Offline)),
        1 => Just(Op::Input(Input::Visible)),
        1 => Just(Op::Input(Input::Hidden)),
        3 => Just(Op::PongLast),
        3 => (0usize..8).prop_map(Op::AckSent),
        4 => prop_oneof![4 => 0usize..50, 1 => 0usize..300].prop_map(Op::Send),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        any::<u64>(),
        prop_oneof![Just(None), (0u32..6).prop_map(Some)],
        1usize..6,
    )
        .prop_map(|(seed, max_attempts, outbox_capacity)| Config {
            seed,
            outbox_capacity,
            max_frame_bytes: 256,
            backoff: Backoff {
                max_attempts,
                ..Backoff::default()
            },
            ..Config::default()
        })
}

/// The driver as the properties see it.
#[derive(Default)]
struct Model {
    /// A socket is open or opening (OpenSocket seen, no CloseSocket/Closed since).
    live: bool,
    /// Its `auth` was answered with success.
    authed: bool,
    /// Since the last final auth failure or manual disconnect, and no Connect yet.
    blocked: bool,
    refresh_outstanding: bool,
    /// Ids accepted by send and neither acked nor failed.
    pending: BTreeSet<String>,
    /// Ids sent as frames on the current socket.
    sent_on_socket: Vec<String>,
    last_ping: Option<u64>,
    last_notification: Option<u64>,
}

impl Model {
    fn before(&mut self, input: &Input) {
        match input {
            Input::Connect => self.blocked = false,
            Input::Disconnect => self.blocked = true,
            Input::Closed { .. } => self.live = false,
            Input::TokenRefreshed { .. } | Input::RefreshFailed { .. } => {
                self.refresh_outstanding = false;
            }
            _ => {}
        }
    }

    fn after(&mut self, conn: &Connection, now: Millis, config: &Config, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::OpenSocket { url } => {
                    assert!(!self.live, "a second socket while one is open");
                    assert!(
                        !self.blocked,
                        "reconnected after a final failure or disconnect"
                    );
                    assert!(
                        !url.to_string().contains("token=")
                            || url.to_string().contains("token=***")
                    );
                    self.live = true;
                    self.authed = false;
                    self.sent_on_socket.clear();
                    self.last_ping = None;
                }
                Effect::CloseSocket { code, .. } => {
                    assert!(*code == 1000 || (3000..5000).contains(code));
                    self.live = false;
                }
                Effect::SendFrame(text) => {
                    assert!(self.live, "frame with no socket: {text}");
                    let v: serde_json::Value = serde_json::from_str(text).unwrap();
                    if !self.authed {
                        assert_eq!(v["type"], "auth", "frame before auth_success: {text}");
                    }
                    match v["type"].as_str() {
                        Some("send") => self
                            .sent_on_socket
                            .push(v["payload"]["id"].as_str().unwrap().to_owned()),
                        Some("ping") => self.last_ping = v["payload"]["seq"].as_u64(),
                        _ => {}
                    }
                }
                Effect::RefreshToken => {
                    assert!(!self.refresh_outstanding, "two refreshes in flight");
                    self.refresh_outstanding = true;
                }
                Effect::Navigate(_) => self.blocked = true,
                Effect::Emit(event) => self.event(event, now, config),
                Effect::StoreToken(_) | Effect::ClearToken => {}
                other => panic!("an effect this test does not know: {other:?}"),
            }
        }
        if let Some(d) = conn.deadline() {
            assert!(d > now, "a due deadline was left unfired");
        }
        let snap = conn.snapshot();
        assert_eq!(snap.pending, self.pending.len());
        assert_eq!(snap.state(), conn.state());
    }

    fn event(&mut self, event: &Event, now: Millis, config: &Config) {
        match event {
            Event::Connected { .. } => {
                assert!(self.live);
                self.authed = true;
            }
            Event::ReconnectScheduled { attempt, delay, at } => {
                assert!(*delay <= config.backoff.max);
                assert!(*delay <= config.backoff.cap(*attempt));
                assert_eq!(*at, now + delay.as_millis() as u64);
                assert!(!self.live);
            }
            Event::Ack { id } => assert!(self.pending.remove(id.as_str()), "ack of {id}"),
            Event::SendFailed { id, .. } => {
                assert!(self.pending.remove(id.as_str()), "failure of {id}")
            }
            Event::Notification(n) => {
                assert!(self.last_notification.is_none_or(|last| n.seq > last));
                self.last_notification = Some(n.seq);
            }
            _ => {}
        }
    }
}

struct Run {
    conn: Connection,
    config: Config,
    model: Model,
    now: Millis,
}

impl Run {
    fn new(config: Config) -> Self {
        Self {
            conn: Connection::new(config.clone()),
            config,
            model: Model::default(),
            now: 1_000,
        }
    }

    fn input(&mut self, input: Input) {
        self.model.before(&input);
        self.conn.handle(self.now, input);
        self.collect();
    }

    fn collect(&mut self) {
        let fx: Vec<Effect> = std::iter::from_fn(|| self.conn.poll_effect()).collect();
        self.model.after(&self.conn, self.now, &self.config, &fx);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Wait(ms) => {
                self.now += ms;
                self.input(Input::Tick);
            }
            Op::Input(input) => self.input(input),
            Op::PongLast => {
                if let Some(seq) = self.model.last_ping {
                    self.input(Input::Frame(pong(seq)));
                }
            }
            Op::AckSent(i) => {
                if let Some(id) = self.model.sent_on_socket.get(i).cloned() {
                    self.input(Input::Frame(ack(&id)));
                }
            }
            Op::Send(size) => {
                let result = self
                    .conn
                    .send(self.now, common::raw(serde_json::json!("x".repeat(size))));
                if let Ok(id) = result {
                    assert!(self.model.pending.insert(id.to_string()), "duplicate id");
                }
                self.collect();
            }
        }
    }

    /// Online, Connect, open, authenticate; then ack everything sent.
    fn happy_ending(&mut self) {
        self.input(Input::SetToken {
            token: "final".into(),
            expires_in: None,
        });
        self.input(Input::Online);
        for _ in 0..30 {
            match self.conn.snapshot().detail {
                Detail::Online { .. } => break,
                Detail::Refreshing { .. } => self.input(Input::TokenRefreshed {
                    token: "final2".into(),
                    expires_in: None,
                }),
                Detail::Opening { .. } => self.input(Input::Opened),
                Detail::Authenticating { .. } => self.input(Input::Frame(auth_success(3_600))),
                Detail::RetryScheduled { at, .. } => {
                    self.now = at;
                    self.input(Input::Tick);
                }
                Detail::Closing => self.input(closed(1000)),
                _ => self.input(Input::Connect),
            }
        }
        assert!(matches!(self.conn.snapshot().detail, Detail::Online { .. }));
        for id in self.model.sent_on_socket.clone() {
            self.input(Input::Frame(ack(&id)));
        }
        assert!(
            self.model.pending.is_empty(),
            "lost messages: {:?}",
            self.model.pending
        );
    }
}

// Cases: 3,000 + 3,500 + 2,500 + 2,000 = 11,000 per `cargo test` run.
proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    /// One socket at a time, auth first, no reconnect when blocked, every
    /// message acked or failed, delays in bounds, a due deadline never left unfired.
    #[test]
    fn random_sequences_keep_the_invariants(
        config in config(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let mut run = Run::new(config);
        run.input(Input::SetToken { token: "tok".into(), expires_in: None });
        for op in ops {
            run.apply(op);
        }
        run.happy_ending();
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_500, ..ProptestConfig::default() })]

    /// Any string as a frame in any phase: no panic, the machine goes on.
    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec(any::<String>(), 1..8),
        phase in 0usize..4,
    ) {
        let mut h = Harness::with_token();
        match phase {
            0 => {}
            1 => { h.input(Input::Connect); }
            2 => { h.input(Input::Connect); h.input(Input::Opened); }
            _ => { h.online(); }
        }
        let state = h.conn.state();
        for f in frames {
            h.frame(f);
        }
        prop_assert_eq!(h.conn.state(), state);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_500, ..ProptestConfig::default() })]

    /// Backoff delays stay within [0, min(max, initial*factor^(n-1))].
    #[test]
    fn reconnect_delays_stay_within_bounds(
        seed in any::<u64>(),
        initial in 0u64..5_000,
        factor in 0.5f64..4.0,
        max in 0u64..60_000,
        failures in 1usize..15,
    ) {
        let backoff = Backoff {
            initial: Duration::from_millis(initial),
            factor,
            max: Duration::from_millis(max),
            max_attempts: None,
        };
        let mut h = Harness::with_token_config(Config {
            seed,
            backoff,
            keepalive: Keepalive::default(),
            ..Config::default()
        });
        h.input(Input::Connect);
        for n in 1..=failures {
            let fx = h.input(closed(1006));
            let (attempt, delay, at) = scheduled(&fx)[0];
            prop_assert_eq!(attempt as usize, n);
            prop_assert!(delay <= backoff.cap(attempt));
            prop_assert!(delay <= Duration::from_millis(max));
            h.tick_at(at);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// The token never shows in the URL's Debug or Display output.
    #[test]
    fn socket_urls_never_print_the_token(
        base in "(ws|wss)://[a-z]{1,8}(:[0-9]{1,4})?/[a-z/]{0,12}(\\?[a-z]=[a-z0-9]{1,4})?",
        token in "[A-Za-z0-9._~+/=-]{8,40}",
    ) {
        let url = SocketUrl::new(&base, Some(&token));
        prop_assert!(url.expose().contains("token="));
        prop_assert!(!url.to_string().contains(&token));
        let debug = format!("{:?}", url);
        prop_assert!(!debug.contains(&token));
    }
}

/// What happens to the connection and the feed in the delivery property.
#[derive(Debug, Clone)]
enum Step {
    /// The server publishes this many notifications for the user.
    Publish(u8),
    /// The server sends the last few notifications again (a duplicate).
    Redeliver(u8),
    /// The socket dies (1006).
    Drop,
    /// The browser goes offline; the next `Online` (or the end) ends it.
    Offline,
    Online,
    /// The app disconnects and connects again.
    Reconnect,
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..4).prop_map(Step::Publish),
        1 => (1u8..4).prop_map(Step::Redeliver),
        2 => Just(Step::Drop),
        1 => Just(Step::Offline),
        1 => Just(Step::Online),
        1 => Just(Step::Reconnect),
        2 => prop_oneof![0u64..2_000, 0u64..60_000].prop_map(Step::Wait),
    ]
}

/// The socket as a model server sees it.
#[derive(Debug, PartialEq)]
enum ServerSocket {
    None,
    Opening,
    Open { authed: bool },
}

/// A machine wired to a model server that keeps the user's whole feed and
/// answers as the contract says: `auth` with `last_seq = n` replays every
/// notification after `n`, live ones follow while authenticated, pings are
/// answered at once.
struct Feed {
    conn: Connection,
    now: Millis,
    /// Notifications 1..=published exist.
    published: u64,
    socket: ServerSocket,
    /// Seqs the app received, in order.
    delivered: Vec<u64>,
}

impl Feed {
    fn new(seed: u64) -> Self {
        let mut feed = Self {
            conn: Connection::new(Config {
                seed,
                ..Config::default()
            }),
            now: 1_000,
            published: 0,
            socket: ServerSocket::None,
            delivered: Vec::new(),
        };
        feed.input(Input::SetToken {
            token: "tok".into(),
            expires_in: None,
        });
        feed.input(Input::Connect);
        feed
    }

    fn input(&mut self, input: Input) {
        self.conn.handle(self.now, input);
        self.pump();
    }

    /// Executes effects and answers frames until the machine is quiet.
    fn pump(&mut self) {
        let mut replies = Vec::new();
        loop {
            while let Some(effect) = self.conn.poll_effect() {
                match effect {
                    Effect::OpenSocket { .. } => self.socket = ServerSocket::Opening,
                    Effect::CloseSocket { .. } => self.socket = ServerSocket::None,
                    Effect::SendFrame(text) => replies.extend(self.answer(&text)),
                    Effect::Emit(Event::Notification(n)) => self.delivered.push(n.seq),
                    _ => {}
                }
            }
            if self.socket == ServerSocket::Opening {
                self.socket = ServerSocket::Open { authed: false };
                self.conn.handle(self.now, Input::Opened);
            } else if !replies.is_empty() {
                for reply in std::mem::take(&mut replies) {
                    self.conn.handle(self.now, Input::Frame(reply));
                }
            } else {
                return;
            }
        }
    }

    /// The model server's answers to one client frame.
    fn answer(&mut self, text: &str) -> Vec<String> {
        let frame: serde_json::Value = serde_json::from_str(text).unwrap();
        match frame["type"].as_str().unwrap() {
            "auth" => {
                let last_seq = &frame["payload"]["last_seq"];
                let expected = self.delivered.last().copied();
                assert_eq!(
                    last_seq.as_u64(),
                    expected,
                    "auth must resume after the last notification delivered ({text})"
                );
                self.socket = ServerSocket::Open { authed: true };
                let after = last_seq.as_u64();
                let mut out = vec![auth_success(3_600)];
                if let Some(after) = after {
                    out.extend((after + 1..=self.published).map(notification));
                }
                out
            }
            "ping" => vec![pong(frame["payload"]["seq"].as_u64().unwrap())],
            _ => Vec::new(),
        }
    }

    fn authed(&self) -> bool {
        self.socket == (ServerSocket::Open { authed: true })
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Publish(k) => {
                for _ in 0..k {
                    self.published += 1;
                    if self.authed() {
                        self.input(Input::Frame(notification(self.published)));
                    }
                }
            }
            Step::Redeliver(k) => {
                if self.authed() {
                    let from = self.published.saturating_sub(u64::from(k)) + 1;
                    for seq in from..=self.published {
                        self.input(Input::Frame(notification(seq)));
                    }
                }
            }
            Step::Drop => {
                if self.socket != ServerSocket::None {
                    self.socket = ServerSocket::None;
                    self.input(closed(1006));
                }
            }
            Step::Offline => self.input(Input::Offline),
            Step::Online => self.input(Input::Online),
            Step::Reconnect => {
                self.input(Input::Disconnect);
                self.input(closed(1000));
                self.socket = ServerSocket::None;
                self.input(Input::Connect);
            }
            Step::Wait(ms) => self.run_until(self.now + ms),
        }
    }

    fn run_until(&mut self, t: Millis) {
        for _ in 0..10_000 {
            match self.conn.deadline() {
                Some(d) if d <= t => {
                    self.now = self.now.max(d);
                    self.input(Input::Tick);
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self.input(Input::Tick);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Every notification the server publishes reaches the app exactly
    /// once and in order, whatever happens to the connection in between:
    /// each `auth` resumes after the last one delivered, the server
    /// replays the rest, and duplicates are dropped.
    #[test]
    fn every_notification_is_delivered_once_across_reconnects(
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let mut feed = Feed::new(seed);
        prop_assert!(feed.authed(), "connected at the start");
        // One live notification first: a client that has received none
        // resumes with `last_seq: null`, which replays nothing.
        feed.apply(Step::Publish(1));
        prop_assert_eq!(&feed.delivered, &[1]);
        for step in steps {
            feed.apply(step);
        }
        // Back online and connected, then everything is there.
        feed.input(Input::Online);
        feed.input(Input::Connect);
        for _ in 0..100 {
            if feed.authed() && feed.conn.state() == tether_core::ConnectionState::Connected {
                break;
            }
            let next = feed.conn.deadline().unwrap_or(feed.now + 1_000);
            feed.run_until(next);
        }
        prop_assert_eq!(feed.conn.state(), tether_core::ConnectionState::Connected);
        let expected: Vec<u64> = (1..=feed.published).collect();
        prop_assert_eq!(&feed.delivered, &expected);
    }
}
