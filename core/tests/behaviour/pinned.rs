//! Behaviours that a run of hand-made mutants found no test pinning down
//! (issue 20, "What survives"). Each test fails on the mutant named in its
//! doc comment.

use crate::common::*;
use std::time::Duration;
use tether_core::{
    Backoff, Config, Connection, ConnectionError, ConnectionState, Effect, Event, Input, Keepalive,
    RefreshFailure, Secret, StopReason,
};

fn navigations(effects: &[Effect]) -> usize {
    count(effects, |e| matches!(e, Effect::Navigate(_)))
}

fn refreshes(effects: &[Effect]) -> usize {
    count(effects, |e| matches!(e, Effect::RefreshToken))
}

fn notifications(effects: &[Effect]) -> Vec<u64> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::Notification(n) => Some(n.seq),
            _ => None,
        })
        .collect()
}

fn auth_last_seqs(effects: &[Effect]) -> Vec<serde_json::Value> {
    frames(effects)
        .into_iter()
        .filter(|f| f["type"] == "auth")
        .map(|f| f["payload"]["last_seq"].clone())
        .collect()
}

// ----- backoff grows ----------------------------------------------------

/// The reconnect delay's upper bound doubles per attempt up to the cap:
/// a backoff that caps every delay at 500 ms fails here.
#[test]
fn backoff_cap_doubles_per_attempt_up_to_max() {
    let b = Backoff::default();
    let caps: Vec<u64> = (1..=9).map(|n| b.cap(n).as_millis() as u64).collect();
    assert_eq!(
        caps,
        [
            500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000
        ]
    );
    let steep = Backoff {
        initial: Duration::from_millis(100),
        factor: 3.0,
        max: Duration::from_secs(3_600),
        max_attempts: None,
    };
    assert_eq!(steep.cap(1), Duration::from_millis(100));
    assert_eq!(steep.cap(4), Duration::from_millis(2_700));
    assert!(steep.allows(u32::MAX));
    let limited = Backoff::default();
    assert!(limited.allows(10) && !limited.allows(11));
}

/// Delays drawn by the machine grow with the attempt number: over many
/// seeds the largest delay before attempt n is above the cap of attempt
/// n - 1, and no delay is above its own cap.
#[test]
fn reconnect_delays_grow_with_the_attempt() {
    const ATTEMPTS: usize = 7;
    let mut largest = [Duration::ZERO; ATTEMPTS];
    let mut smallest = [Duration::MAX; ATTEMPTS];
    for seed in 0..64 {
        let mut h = Harness::with_token_config(Config {
            seed,
            backoff: Backoff {
                max_attempts: None,
                ..Backoff::default()
            },
            ..Config::default()
        });
        h.input(Input::Connect);
        for n in 0..ATTEMPTS {
            let (attempt, delay, at) = scheduled(&h.input(closed(1006)))[0];
            assert_eq!(attempt as usize, n + 1);
            assert!(delay <= Backoff::default().cap(attempt), "{delay:?}");
            largest[n] = largest[n].max(delay);
            smallest[n] = smallest[n].min(delay);
            assert_eq!(opens(&h.tick_at(at)).len(), 1);
        }
    }
    for (n, largest) in largest.iter().enumerate().skip(1) {
        let previous_cap = Backoff::default().cap(n as u32);
        assert!(
            *largest > previous_cap,
            "attempt {}: largest delay {largest:?} is not above the previous cap {previous_cap:?}",
            n + 1,
        );
    }
    // Full jitter: delays start near zero at every attempt.
    for (n, low) in smallest.iter().enumerate() {
        let cap = Backoff::default().cap(n as u32 + 1);
        assert!(*low < cap / 4, "attempt {}: smallest {low:?}", n + 1);
    }
}

// ----- a second user ----------------------------------------------------

/// The replay cursor belongs to one user: after signing in as another user
/// their notifications from seq 1 reach the app, and the next `auth` carries
/// the new user's cursor.
#[test]
fn another_user_starts_a_new_replay_cursor() {
    const OTHER: &str = "2f0c1e9a-0000-4000-8000-000000000002";
    let mut h = Harness::with_token();
    h.online();
    let mut fx = Vec::new();
    for seq in 1..=5 {
        fx.extend(h.frame(notification(seq)));
    }
    assert_eq!(notifications(&fx), [1, 2, 3, 4, 5]);
    h.input(Input::Disconnect);
    h.input(closed(1000));
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);

    h.input(Input::SetToken {
        token: Secret::new("other"),
        expires_in: None,
    });
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(auth_success_for(OTHER, 900));
    assert!(events(&fx).contains(&Event::Connected {
        user_id: OTHER.into()
    }));
    let mut fx = Vec::new();
    for seq in 1..=2 {
        fx.extend(h.frame(notification(seq)));
    }
    assert_eq!(notifications(&fx), [1, 2], "the other user's feed");
    // A reconnect resumes the other user's feed where it is.
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    h.tick_at(at);
    let fx = h.input(Input::Opened);
    assert_eq!(auth_last_seqs(&fx), [serde_json::json!(2)]);
}

// ----- stale auth answers -------------------------------------------------

/// An `auth` sent on a socket that was then abandoned is forgotten: the
/// `auth_success` on the new socket answers the new `auth`, so its lifetime
/// is taken for the current token.
#[test]
fn an_abandoned_sockets_auth_is_not_awaited_on_the_next_socket() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened); // `auth` with token generation 1 in flight
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    // A new token while waiting; the next socket authenticates with it.
    h.input(Input::SetToken {
        token: Secret::new("newer"),
        expires_in: None,
    });
    h.tick_at(at);
    let fx = h.input(Input::Opened);
    assert_eq!(frames(&fx)[0]["payload"]["token"], "newer");
    let fx = h.frame(auth_success(600));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    assert_eq!(
        h.conn.snapshot().token_expires_at,
        Some(h.now + 600_000),
        "the answer is matched to the current token"
    );
    assert!(
        frame_types(&fx).iter().all(|t| t != "auth"),
        "no second auth: {fx:?}"
    );
}

// ----- refresh failures -------------------------------------------------

/// Runs the timer until `t` like [`Harness::run_until`], answering every
/// ping at once, so the link stays up however long it runs.
fn run_answering_pings(h: &mut Harness, t: u64) -> Vec<Effect> {
    run_answering_pings_while(h, t, |_| true)
}

/// [`run_answering_pings`], stopping early after the firing whose effects
/// fail `go_on`.
fn run_answering_pings_while(
    h: &mut Harness,
    t: u64,
    go_on: impl Fn(&[Effect]) -> bool,
) -> Vec<Effect> {
    let mut all = Vec::new();
    for _ in 0..MAX_TIMER_FIRINGS {
        match h.conn.deadline() {
            Some(d) if d <= t => {
                h.now = h.now.max(d);
                let fx = h.input(Input::Tick);
                for f in frames(&fx) {
                    if f["type"] == "ping" {
                        all.extend(h.frame(pong(f["payload"]["seq"].as_u64().unwrap())));
                    }
                }
                let stop = !go_on(&fx);
                all.extend(fx);
                if stop {
                    return all;
                }
            }
            _ => {
                h.now = h.now.max(t);
                all.extend(h.input(Input::Tick));
                return all;
            }
        }
    }
    panic!("the timer kept firing before {t}");
}

/// Online with a token of `lifetime_s` and the refresh request out.
fn refreshing(config: Config, lifetime_s: i64) -> Harness {
    let mut h = Harness::with_token_config(config);
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(auth_success(lifetime_s));
    let expires_at = h.conn.snapshot().token_expires_at.expect("a lifetime");
    let fx = run_answering_pings_while(&mut h, expires_at - 1, |fx| refreshes(fx) == 0);
    assert_eq!(refreshes(&fx), 1, "one refresh requested before expiry");
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    h
}

#[test]
fn a_refresh_failure_after_an_auth_failure_does_not_navigate_again() {
    let mut h = refreshing(Config::default(), 900);
    let fx = h.frame(auth_error("revoked"));
    assert_eq!(navigations(&fx), 1);
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Rejected,
        message: "invalid_refresh".into(),
    });
    assert_eq!(navigations(&fx), 0, "{fx:?}");
    assert_eq!(count(&fx, |e| matches!(e, Effect::ClearToken)), 0);
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: "network".into(),
    });
    assert_eq!(navigations(&fx), 0, "{fx:?}");
}

/// With an expired token and no connection wanted, a failed refresh is
/// reported, not final: the next connect refreshes again.
#[test]
fn a_refresh_failure_while_not_connecting_is_not_final() {
    let mut h = Harness::new(Config::default());
    h.input(Input::SetToken {
        token: Secret::new("tok"),
        expires_in: Some(Duration::from_secs(60)),
    });
    h.wait(61_000); // expired
    let fx = h.input(Input::Connect);
    assert_eq!(refreshes(&fx), 1);
    assert!(opens(&fx).is_empty());
    h.input(Input::Disconnect);
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: "network down".into(),
    });
    assert_eq!(navigations(&fx), 0, "{fx:?}");
    assert_eq!(count(&fx, |e| matches!(e, Effect::ClearToken)), 0);
    assert_eq!(
        errors(&fx),
        [ConnectionError::RefreshFailed {
            message: "network down".into()
        }]
    );
    assert!(!matches!(
        h.conn.snapshot().detail,
        tether_core::Detail::Stopped(StopReason::AuthFailed(_))
    ));
    let fx = h.input(Input::Connect);
    assert_eq!(refreshes(&fx), 1, "the next attempt refreshes first");
}

/// A token that arrives while a failed refresh waits to be retried cancels
/// that retry: the next refresh is the new token's.
#[test]
fn a_new_token_cancels_the_refresh_backoff() {
    let mut h = refreshing(Config::default(), 900);
    h.input(Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: "503".into(),
    });
    // Without the new token the retry would come within the first cap.
    h.input(Input::SetToken {
        token: Secret::new("from elsewhere"),
        expires_in: Some(Duration::from_secs(900)),
    });
    let until = h.now + Backoff::default().cap(1).as_millis() as u64 + 1;
    let fx = run_answering_pings(&mut h, until);
    assert_eq!(refreshes(&fx), 0, "the backoff was cancelled: {fx:?}");
    // The new token's own refresh is due 60 s before it expires.
    let set_at = h.now;
    let fx = run_answering_pings_while(&mut h, set_at + 900_000, |fx| refreshes(fx) == 0);
    assert_eq!(refreshes(&fx), 1);
    assert!(h.now >= set_at + 839_000, "refreshed at {}", h.now - set_at);
}

/// Consecutive refresh failures back off like reconnects: the failure
/// count carries into each retry, so the third retry may wait longer than
/// the second one's cap.
#[test]
fn refresh_failures_back_off_with_a_growing_delay() {
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        factor: 10.0,
        max: Duration::from_secs(1_000),
        max_attempts: None,
    };
    let mut third = Vec::new();
    for seed in 0..16 {
        let config = Config {
            seed,
            backoff,
            refresh_lead: Duration::from_secs(600),
            ..Config::default()
        };
        let mut h = refreshing(config, 3_600);
        for failure in 1..=3u32 {
            let failed_at = h.now;
            let mut fx = h.input(Input::RefreshFailed {
                failure: RefreshFailure::Transient,
                message: "503".into(),
            });
            if refreshes(&fx) == 0 {
                fx = run_answering_pings_while(&mut h, failed_at + 2_000_000, |fx| {
                    refreshes(fx) == 0
                });
            }
            assert_eq!(refreshes(&fx), 1, "failure {failure}");
            let delay = h.now - failed_at;
            assert!(
                delay <= backoff.cap(failure).as_millis() as u64,
                "failure {failure}: {delay} ms"
            );
            if failure == 3 {
                third.push(delay);
            }
        }
    }
    let cap2 = backoff.cap(2).as_millis() as u64;
    assert!(
        third.iter().any(|d| *d > cap2),
        "third retries {third:?} all within the second cap {cap2} ms"
    );
}

// ----- timing and visibility ---------------------------------------------

/// A pong that arrives after its deadline, with no tick in between, does
/// not revive the link: the due timeout runs before the frame.
#[test]
fn due_timers_run_before_the_input_that_carries_the_time() {
    let mut h = Harness::with_token();
    h.online();
    let ping_at = h.conn.deadline().unwrap();
    let fx = h.tick_at(ping_at);
    assert_eq!(frame_types(&fx), ["ping"]);
    let seq = frames(&fx)[0]["payload"]["seq"].as_u64().unwrap();
    // The pong comes 5 s later (timeout 4 s); the tab's timer never fired.
    h.now = ping_at + 5_000;
    let fx = h.frame(pong(seq));
    assert!(fx.contains(&Effect::CloseSocket {
        code: tether_core::CLOSE_TIMEOUT,
        reason: "Keepalive timeout".into()
    }));
    assert!(
        !events(&fx).iter().any(|e| matches!(e, Event::Pong { .. })),
        "{fx:?}"
    );
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
}

#[test]
fn connect_while_disconnecting_opens_a_new_socket() {
    let mut h = Harness::with_token();
    h.online();
    h.input(Input::Disconnect);
    assert_eq!(h.conn.state(), ConnectionState::Disconnecting);
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx), ["/api/ws/notification?token=tok"]);
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    h.input(Input::Opened);
    h.frame(auth_success(900));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

/// Becoming visible shortens the wait for a pong already in flight to the
/// probe timeout (never lengthens it), and the timeout names that wait.
#[test]
fn visible_shortens_a_ping_in_flight() {
    let keepalive = Keepalive::default();
    let mut h = Harness::with_token();
    h.online();
    let ping_at = h.conn.deadline().unwrap();
    assert_eq!(frame_types(&h.tick_at(ping_at)), ["ping"]);
    assert_eq!(h.conn.deadline(), Some(ping_at + 4_000));
    h.now = ping_at + 500;
    let fx = h.input(Input::Visible);
    assert!(frame_types(&fx).is_empty(), "no second ping: {fx:?}");
    assert_eq!(h.conn.deadline(), Some(ping_at + 500 + 2_000));
    // Visible again later would end it after the current deadline: kept.
    h.now = ping_at + 1_500;
    h.input(Input::Visible);
    assert_eq!(h.conn.deadline(), Some(ping_at + 2_500));
    let fx = h.tick_at(ping_at + 2_500);
    assert!(errors(&fx).contains(&ConnectionError::KeepaliveTimeout {
        after: keepalive.probe_timeout
    }));
    assert!(!errors(&fx).contains(&ConnectionError::KeepaliveTimeout {
        after: keepalive.timeout
    }));
}

#[test]
fn visible_after_giving_up_tries_again_unless_offline() {
    let mut h = Harness::with_token_config(Config {
        backoff: Backoff {
            max_attempts: Some(1),
            ..Backoff::default()
        },
        ..Config::default()
    });
    h.input(Input::Connect);
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    h.tick_at(at);
    h.input(closed(1006));
    assert!(matches!(
        h.conn.snapshot().detail,
        tether_core::Detail::Stopped(StopReason::GaveUp { attempts: 1 })
    ));
    let fx = h.input(Input::Visible);
    assert_eq!(opens(&fx).len(), 1, "{fx:?}");
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    // Given up again, then offline: becoming visible does not try.
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    h.tick_at(at);
    h.input(closed(1006));
    assert!(matches!(
        h.conn.snapshot().detail,
        tether_core::Detail::Stopped(StopReason::GaveUp { .. })
    ));
    h.input(Input::Offline);
    let fx = h.input(Input::Visible);
    assert!(opens(&fx).is_empty(), "{fx:?}");
}

// ----- survivors of the first mutation run -------------------------------

#[test]
fn the_machine_keeps_the_config_it_was_built_with() {
    let config = Config {
        url: "wss://example.com/socket".into(),
        seed: 42,
        ..Config::default()
    };
    assert_eq!(Connection::new(config.clone()).config(), &config);
}

/// A NaN growth factor (a configuration mistake) waits the longest delay,
/// never none.
#[test]
fn a_nan_backoff_factor_caps_at_max() {
    let b = Backoff {
        factor: f64::NAN,
        ..Backoff::default()
    };
    assert_eq!(b.cap(2), Duration::from_secs(30));
}

#[test]
fn send_after_giving_up_fails_at_once() {
    let mut h = Harness::with_token_config(Config {
        backoff: Backoff {
            max_attempts: Some(0),
            ..Backoff::default()
        },
        ..Config::default()
    });
    h.input(Input::Connect);
    h.input(closed(1006));
    assert!(matches!(
        h.conn.snapshot().detail,
        tether_core::Detail::Stopped(StopReason::GaveUp { .. })
    ));
    assert_eq!(
        h.conn.send(h.now, raw(serde_json::json!(1))),
        Err(tether_core::SendError::GaveUp)
    );
}

/// A frame of exactly the limit is sent; one byte more is refused.
#[test]
fn a_message_of_exactly_the_frame_limit_is_accepted() {
    let body = serde_json::json!("x".repeat(40));
    let mut probe = Harness::with_token();
    probe.online();
    probe.send(body.clone());
    let len = probe
        .drain()
        .iter()
        .find_map(|e| match e {
            Effect::SendFrame(text) if text.contains("\"send\"") => Some(text.len()),
            _ => None,
        })
        .expect("the frame");
    for (limit, accepted) in [(len, true), (len - 1, false)] {
        let mut h = Harness::with_token_config(Config {
            max_frame_bytes: limit,
            ..Config::default()
        });
        let result = h.conn.send(h.now, raw(body.clone()));
        assert_eq!(result.is_ok(), accepted, "limit {limit}: {result:?}");
    }
}

/// Visible exactly when the probe's deadline equals the ping's: the ping's
/// own timeout stays (and names the error).
#[test]
fn visible_at_the_same_deadline_keeps_the_pings_timeout() {
    let mut h = Harness::with_token();
    h.online();
    let ping_at = h.conn.deadline().unwrap();
    h.tick_at(ping_at);
    h.now = ping_at + 2_000; // + probe 2 s = the ping's deadline (4 s)
    h.input(Input::Visible);
    assert_eq!(h.conn.deadline(), Some(ping_at + 4_000));
    let fx = h.tick_at(ping_at + 4_000);
    assert!(errors(&fx).contains(&ConnectionError::KeepaliveTimeout {
        after: Duration::from_secs(4)
    }));
}

/// An `auth_success` nobody asked for while connected is ignored: no
/// error, no second `Connected`.
#[test]
fn an_unsolicited_auth_success_while_connected_is_ignored() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.frame(auth_success(900));
    assert!(events(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

/// A frame before authentication is reported with its own type.
#[test]
fn frames_before_auth_are_reported_by_their_type() {
    let nack = r#"{"type":"nack","payload":{"id":"m1","code":"forbidden","message":"no"}}"#;
    let error = r#"{"type":"error","payload":{"code":"rate_limited","message":"m"}}"#;
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened); // authenticating: `auth` sent, no answer yet
    for (frame, kind) in [
        (pong(1), "pong"),
        (notification(1), "notification"),
        (ack("m1"), "ack"),
        (nack.to_owned(), "nack"),
        (error.to_owned(), "error"),
    ] {
        let fx = h.frame(frame);
        assert_eq!(
            errors(&fx),
            [ConnectionError::NotAuthenticated { kind: kind.into() }]
        );
    }
    // Before the socket has even opened (a driver that forwards early),
    // an answer to an `auth` never sent is reported too, not acted on.
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    for (frame, kind) in [
        (auth_success(900), "auth_success"),
        (auth_error("revoked"), "auth_error"),
    ] {
        let fx = h.frame(frame);
        assert_eq!(
            errors(&fx),
            [ConnectionError::NotAuthenticated { kind: kind.into() }],
            "{fx:?}"
        );
        assert_eq!(navigations(&fx), 0);
        assert_eq!(h.conn.state(), ConnectionState::Connecting);
    }
}
