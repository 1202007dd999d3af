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
