//! Browser tests: the real ConnectionManager in headless Chromium and
//! Firefox against the real reference server that `scripts/test` starts.
#![cfg(target_arch = "wasm32")]

mod library;
mod slow_consumer;
mod spy;
mod support;
mod topics;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use serde_json::json;
use spy::SendSpy;
use std::time::Duration;
use support::*;
use tether::prelude::*;
use tether::{CloseInfo, ConnectionError, Detail, Secret, StopReason};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The harness itself: a plain browser WebSocket reaches the reference
/// server, authenticates and gets a pong.
#[wasm_bindgen_test]
async fn raw_socket_authenticates_and_gets_a_pong() {
    let user = sign_up("raw").await;
    let token = log_in(&user).await.access_token;
    let ws = web_sys::WebSocket::new(&ws_url()).unwrap();
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<String>();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let _ = tx.unbounded_send(e.data().as_string().unwrap_or_default());
        });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let (open_tx, open_rx) = futures::channel::oneshot::channel::<()>();
    let mut open_tx = Some(open_tx);
    let on_open = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = open_tx.take() {
            let _ = tx.send(());
        }
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    open_rx.await.expect("the socket opens");

    let auth = json!({"type": "auth", "payload": {"token": token.expose(), "last_seq": null}});
    ws.send_with_str(&auth.to_string()).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&rx.next().await.unwrap()).unwrap();
    assert_eq!(reply["type"], "auth_success", "{reply}");
    assert_eq!(reply["payload"]["user_id"], user.id.as_str());

    ws.send_with_str(r#"{"type":"ping","payload":{"seq":42}}"#)
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&rx.next().await.unwrap()).unwrap();
    assert_eq!(reply, json!({"type": "pong", "payload": {"seq": 42}}));
    ws.set_onmessage(None);
    ws.set_onopen(None);
    ws.close().unwrap();
}

#[wasm_bindgen_test]
async fn connects_and_authenticates() {
    let user = sign_up("connect").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    let snapshot = f.snapshot();
    assert_eq!(snapshot.user_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(f.conn.state().get_untracked().to_string(), "CONNECTED");
    assert!(f.conn.is_connected().get_untracked());
    assert_eq!(server_sockets(&user).await, 1);
}

/// The per-field signals are made on first use under the provider's owner,
/// not the caller's: the component that asked first can unmount without
/// taking the signal down for everyone else, and every caller gets the same
/// signal.
#[wasm_bindgen_test]
async fn field_signals_outlive_the_component_that_asked_first() {
    let user = sign_up("fields").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    let child = f.owner.with(Owner::new); // a component below the provider
    let first = child.with(|| f.conn.state());
    child.cleanup(); // ...unmounts
    f.connected().await;
    assert_eq!(first.get_untracked(), ConnectionState::Connected);
    assert_eq!(f.conn.state().get_untracked(), ConnectionState::Connected);
    assert!(f.conn.state() == first, "one memo per field and provider");
    // A field nobody asked for before the connection still starts current.
    assert_eq!(
        f.conn.user().get_untracked().as_deref(),
        Some(user.id.as_str())
    );
}

#[wasm_bindgen_test]
async fn invalid_token_is_final() {
    // Well-formed, but signed with another key.
    let forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6NDEwMDAwMDAwMCwic2lkIjoieCJ9.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5LXh4eHh4eHg";
    let mut f = Fixture::start(Some(&Secret::new(forged)), |o| o);
    let event = f
        .wait_for("AuthError", Duration::from_secs(10), |e| {
            matches!(e, Event::AuthError { .. })
        })
        .await;
    let Event::AuthError { code, .. } = event else {
        unreachable!()
    };
    assert_eq!(code, tether::AuthErrorCode::InvalidToken);
    assert_eq!(
        f.stored_token(),
        None,
        "the token is cleared from localStorage"
    );
    assert_eq!(*f.navigations.borrow(), vec!["/login".to_owned()]);
    let snapshot = f.snapshot();
    assert_eq!(snapshot.state(), ConnectionState::Disconnected);
    assert_eq!(snapshot.next_retry_at(), None);
    // Neither the network coming back nor the page showing again retries.
    fire_window_event("online");
    fire_window_event("pageshow");
    assert_eq!(f.snapshot().state(), ConnectionState::Disconnected);
    assert!(matches!(
        f.snapshot().detail,
        Detail::Stopped(StopReason::AuthFailed(_))
    ));
}

#[wasm_bindgen_test]
async fn reconnects_after_the_server_drops_the_socket() {
    let user = sign_up("drop").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    admin("drop-sockets", json!({"username": user.name})).await;
    let event = f
        .wait_for("Disconnected", Duration::from_secs(10), |e| {
            matches!(e, Event::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(event, Event::Disconnected { code: 1006, .. }),
        "{event:?}"
    );
    let event = f
        .wait_for("ReconnectScheduled", Duration::from_secs(5), |e| {
            matches!(e, Event::ReconnectScheduled { .. })
        })
        .await;
    let Event::ReconnectScheduled { attempt, at, .. } = event else {
        unreachable!()
    };
    assert_eq!(attempt, 1);
    let snapshot = f.snapshot();
    assert_eq!(snapshot.attempt(), 1);
    assert_eq!(snapshot.next_retry_at(), Some(at));
    f.connected().await;
    assert_eq!(f.snapshot().attempt(), 0);
}

/// Pongs withheld: the manager leaves CONNECTED because of the keepalive
/// timeout (4 s, the default) and closes with 4000 "Keepalive timeout",
/// then reconnects. How soon is the core's to pin (on a virtual clock,
/// `a_dead_link_is_noticed_within_ten_seconds...`); the bounds here only
/// keep a broken build from hanging.
#[wasm_bindgen_test]
async fn dead_link_is_noticed_and_recovered() {
    let user = sign_up("deadlink").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    // Longer than ping interval + pong timeout (5 + 4 s), so a ping falls
    // inside the window even when the browser fires its timer late.
    admin(
        "withhold-pongs",
        json!({"username": user.name, "seconds": 12}),
    )
    .await;
    // Everything from here to leaving CONNECTED.
    let seen = std::cell::RefCell::new(Vec::new());
    f.wait_for("leaving CONNECTED", Duration::from_secs(60), |e| {
        seen.borrow_mut().push(e.clone());
        matches!(
            e,
            Event::StateChanged {
                from: ConnectionState::Connected,
                ..
            }
        )
    })
    .await;
    let seen = seen.into_inner();
    let errors: Vec<&ConnectionError> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Error(error) => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        [&ConnectionError::KeepaliveTimeout {
            after: Duration::from_secs(4)
        }],
        "left CONNECTED for another reason: {seen:?}"
    );
    assert!(
        seen.contains(&Event::Disconnected {
            code: 4000,
            reason: "Keepalive timeout".into()
        }),
        "{seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&Event::StateChanged {
            from: ConnectionState::Connected,
            to: ConnectionState::Disconnected
        })
    );
    assert_eq!(
        f.snapshot().last_close,
        Some(CloseInfo {
            code: 4000,
            reason: "Keepalive timeout".into()
        })
    );
    f.wait_for("Connected again", Duration::from_secs(60), |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
}

#[wasm_bindgen_test]
async fn offline_closes_and_online_reconnects_at_once() {
    let user = sign_up("offline").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    fire_window_event("offline");
    let snapshot = f.snapshot();
    assert_eq!(snapshot.state(), ConnectionState::Disconnected);
    assert_eq!(snapshot.next_retry_at(), None, "no retries while offline");
    assert!(matches!(
        snapshot.detail,
        Detail::Stopped(StopReason::Offline)
    ));
    fire_window_event("online");
    assert_eq!(f.snapshot().state(), ConnectionState::Connecting);
    f.connected().await;
}

/// Messages sent while the network is down are queued, sent once each after
/// the connection is back (counted on the client: the server would hide a
/// resend by de-duplicating), acked once each in order, and reach the
/// server as sent.
#[wasm_bindgen_test]
async fn messages_sent_while_disconnected_are_delivered_once() {
    let user = sign_up("outbox").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    fire_window_event("offline");
    assert!(matches!(
        f.snapshot().detail,
        Detail::Stopped(StopReason::Offline)
    ));
    let spy = SendSpy::install();
    let ids: Vec<_> = (0..3)
        .map(|n| f.conn.send(&json!({"n": n})).expect("queued"))
        .collect();
    assert_eq!(f.snapshot().pending, 3);
    assert!(spy.frames().is_empty(), "nothing sent while offline");
    fire_window_event("online");
    let mut acked = Vec::new();
    while f.snapshot().pending > 0 || acked.len() < ids.len() {
        if let Event::Ack { id } = f
            .wait_for("Ack", Duration::from_secs(10), |e| {
                matches!(e, Event::Ack { .. })
            })
            .await
        {
            acked.push(id);
        }
        assert!(
            acked.len() <= ids.len(),
            "more acks than messages: {acked:?}"
        );
    }
    assert_eq!(acked, ids, "acked once each, in order");
    // One round trip more: a late duplicate ack would be an event by now.
    let id = f.conn.send(&json!("marker")).unwrap();
    let event = f
        .wait_for("Ack", Duration::from_secs(10), |e| {
            matches!(e, Event::Ack { .. })
        })
        .await;
    assert_eq!(
        event,
        Event::Ack { id },
        "no duplicate ack before the marker's"
    );
    // What the client sent: each queued message once, on the new socket.
    let sent = spy.frames_of("send");
    let sent_ids: Vec<&str> = sent
        .iter()
        .map(|(_, f)| f["payload"]["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    assert_eq!(&sent_ids[..3], expected.as_slice(), "{sent:?}");
    assert_eq!(sent_ids.len(), 4, "each message sent once: {sent:?}");
    let bodies: Vec<serde_json::Value> = sent[..3]
        .iter()
        .map(|(_, f)| f["payload"]["body"].clone())
        .collect();
    assert_eq!(bodies, [json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]);
    let received = get_json(&format!("/api/admin/received?user={}", user.name)).await;
    assert_eq!(received["count"], 4, "{received}");
    let applied: Vec<serde_json::Value> = received["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["body"].clone())
        .collect();
    assert_eq!(
        applied,
        [
            json!({"n": 0}),
            json!({"n": 1}),
            json!({"n": 2}),
            json!("marker")
        ]
    );
}

/// Waits (yielding to the event loop) until each of `root`'s 20 spans
/// reads `text`.
async fn all_read(root: &web_sys::Element, text: &str) {
    let expected = text.repeat(20);
    for _ in 0..200 {
        if root.child_element_count() == 20 && root.text_content().as_deref() == Some(&expected) {
            return;
        }
        gloo_timers::future::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "not every component reads {text}: {:?}",
        root.text_content()
    );
}

#[wasm_bindgen_test]
async fn twenty_components_and_two_providers_share_one_socket() {
    let user = sign_up("shared").await;
    let token = log_in(&user).await.access_token;
    let spy = SendSpy::install();
    let mut f = Fixture::start(Some(&token), |o| o);
    // A second provider elsewhere on the page joins the same connection.
    let second_owner = Owner::new();
    let navs = f.navigations.clone();
    let second = second_owner.with(|| provide_connection_manager(options(&f.storage_key, &navs)));
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let conn = f.conn;
    let handle = f.owner.with(|| {
        leptos::mount::mount_to(root.clone().unchecked_into(), move || {
            provide_context(conn);
            (0..20)
                .map(|_| {
                    let c = use_connection_manager();
                    view! { <span class="state">{move || c.state().get().to_string()}</span> }
                })
                .collect_view()
        })
    });
    all_read(&root, "CONNECTING").await;
    f.connected().await;
    all_read(&root, "CONNECTED").await;
    assert_eq!(second.state().get_untracked(), ConnectionState::Connected);
    assert_eq!(server_sockets(&user).await, 1);
    // A state change reaches all twenty, through either provider.
    second.disconnect();
    all_read(&root, "DISCONNECTED").await;
    conn.connect();
    f.connected().await;
    all_read(&root, "CONNECTED").await;
    assert_eq!(server_sockets(&user).await, 1);
    // Over the whole test, one socket at a time authenticated: the first,
    // then (after the disconnect) the second, never two for one connect.
    let auth_sockets: Vec<u64> = spy.frames_of("auth").iter().map(|(s, _)| *s).collect();
    assert_eq!(auth_sockets.len(), 2, "{auth_sockets:?}");
    assert_ne!(auth_sockets[0], auth_sockets[1]);
    drop(handle);
    second_owner.cleanup();
    root.remove();
}

/// Waits (yielding to the event loop) until the server holds `n`
/// authenticated sockets of `user`.
async fn server_sockets_become(user: &User, n: usize) {
    for _ in 0..200 {
        if server_sockets(user).await == n {
            return;
        }
        gloo_timers::future::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the server still has {} sockets of {}, not {n}",
        server_sockets(user).await,
        user.name
    );
}

/// After `destroy`, no callback of the manager runs again: not the socket's
/// late `close`, not a keepalive timer, not the window listeners. The test
/// yields to the event loop for longer than a ping interval (5 s) after
/// the socket is gone on the server, so such callbacks would have run.
#[wasm_bindgen_test]
async fn nothing_fires_after_destroy() {
    let user = sign_up("destroy").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = calls.clone();
    let _subscription = f.conn.on_any(move |_| counter.set(counter.get() + 1));
    let queued = f.conn.send(&json!("last words")).expect("accepted");
    let failed = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = failed.clone();
    let _failures = f.conn.on(EventKind::SendFailed, move |e| {
        if let Event::SendFailed { id, .. } = e {
            seen.borrow_mut().push(id.clone());
        }
    });
    f.conn.destroy();
    // Destroying reports what was still pending (the ack cannot have
    // arrived: nothing yielded to the event loop since `send`)...
    assert_eq!(*failed.borrow(), vec![queued]);
    while let Some(Some(_)) = f.events.next().now_or_never() {} // ...and what destroy itself emitted
    calls.set(0);
    let spy = SendSpy::install();
    // ...and then nothing else fires, whatever happens next.
    server_sockets_become(&user, 0).await;
    fire_window_event("offline");
    fire_window_event("online");
    fire_window_event("pageshow");
    gloo_timers::future::sleep(Duration::from_millis(6_000)).await;
    assert_eq!(calls.get(), 0, "a callback ran after destroy");
    if let Some(Some(event)) = f.events.next().now_or_never() {
        panic!("an event after destroy: {event:?}");
    }
    assert_eq!(spy.frames(), [], "a frame was sent after destroy");
    assert_eq!(server_sockets(&user).await, 0, "`online` reconnected");
    assert!(matches!(f.conn.send(&json!(1)), Err(SendError::Destroyed)));
}

/// `scripts/test` runs the server with `--token-ttl 30`: the manager
/// refreshes ahead of expiry (lead clamped to half the lifetime) and
/// re-authenticates in place, never leaving CONNECTED.
#[wasm_bindgen_test]
async fn expiring_token_is_refreshed_in_place() {
    let user = sign_up("refresh").await;
    let login = log_in(&user).await;
    let mut f = Fixture::start(Some(&login.access_token), |o| o);
    f.connected().await;
    let before = f.stored_token();
    let within = Duration::from_secs(login.expires_in + 5);
    let event = f
        .wait_for("a re-authentication or leaving CONNECTED", within, |e| {
            matches!(
                e,
                Event::AuthSuccess { reauth: true, .. }
                    | Event::StateChanged {
                        from: ConnectionState::Connected,
                        ..
                    }
            )
        })
        .await;
    assert!(
        matches!(event, Event::AuthSuccess { reauth: true, .. }),
        "{event:?}"
    );
    assert_eq!(f.snapshot().state(), ConnectionState::Connected);
    let after = f.stored_token();
    assert!(
        after.is_some() && after != before,
        "the fresh token is stored"
    );
    assert_eq!(
        server_sockets(&user).await,
        1,
        "the same socket, re-authenticated"
    );
}

fn wasm_memory_bytes() -> u32 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
}

/// The test binary's allocator counts what is live on the wasm heap.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Bytes allocated on the wasm heap and not freed yet. (stats_alloc 0.1.10
/// already counts a realloc's growth in `bytes_allocated` and its shrinking
/// in `bytes_deallocated`; `bytes_reallocated` is the same sum again, so
/// adding it would count every `Vec` or `String` that grew as a leak.)
fn live_heap_bytes() -> i64 {
    let s = HEAP.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// 1,000 full cycles (provide, connect, authenticate, destroy) leave the
/// wasm heap's live bytes (the allocator's count, so a leak of a byte a
/// cycle shows, where wasm memory only grows by 64 KiB pages) within
/// `LIVE_HEAP_BOUND` of where they were after warm-up, wasm memory within a
/// page, and every socket closed on the server. (The JS heap is measured by
/// `scripts/bench`, which runs Chromium with a `gc()` to call.)
#[wasm_bindgen_test]
async fn a_thousand_connect_destroy_cycles_do_not_grow_memory() {
    /// Growth over the 1,000 cycles after warm-up that is flat: under 4 B a
    /// cycle. Measured: about 1 KB over 1,000 cycles (2 KB over 3,000), all
    /// of it one long-lived buffer's capacity doubling now and then, not an
    /// object per cycle (see the next bound).
    const LIVE_HEAP_BOUND: i64 = 4_096;
    /// Allocations still live after the 1,000 cycles that were not before:
    /// anything a cycle leaves behind (a closure, a listener, an `Rc`, an
    /// owner) is at least one a cycle, 1,000 in all. Measured: 1.
    const LIVE_ALLOCATIONS_BOUND: usize = 10;
    let user = sign_up("leak").await;
    let token = log_in(&user).await.access_token;
    // Like an app, each cycle starts from the newest stored token. A cycle
    // is too short for the manager to refresh the server's 30 s tokens, so
    // the test logs in again every 100 cycles (a few seconds). The heap is
    // counted once the server holds none of the user's sockets, so no
    // cycle's cleanup is still running then.
    let token = std::cell::RefCell::new(token);
    let cycle = || async {
        let mut f = Fixture::start(Some(&token.borrow()), |o| o);
        f.connected().await;
        let newest = f.stored_token().expect("a stored token");
        *token.borrow_mut() = Secret::new(newest);
    };
    for _ in 0..50 {
        cycle().await;
    }
    *token.borrow_mut() = log_in(&user).await.access_token; // as in the loop
    server_sockets_become(&user, 0).await;
    let (warm, warm_pages) = (live_heap_bytes(), wasm_memory_bytes());
    let warm_stats = HEAP.stats();
    let started = js_sys::Date::now();
    for n in 0..1000 {
        if n % 100 == 0 {
            *token.borrow_mut() = log_in(&user).await.access_token;
        }
        cycle().await;
        if n % 100 == 99 {
            let ms = js_sys::Date::now() - started;
            web_sys::console::log_1(
                &format!(
                    "{} cycles in {ms} ms: live heap {} B, wasm memory {} B",
                    n + 1,
                    live_heap_bytes(),
                    wasm_memory_bytes()
                )
                .into(),
            );
        }
    }
    server_sockets_become(&user, 0).await; // every socket was closed
    let (after, after_pages) = (live_heap_bytes(), wasm_memory_bytes());
    let stats = HEAP.stats() - warm_stats;
    web_sys::console::log_1(
        &format!(
            "after warm-up / after 1,000 cycles: live heap {warm} / {after} B, wasm memory {warm_pages} / {after_pages} B; allocator over the cycles: {stats:?}"
        )
        .into(),
    );
    let live_allocations = stats.allocations.saturating_sub(stats.deallocations);
    assert!(
        live_allocations <= LIVE_ALLOCATIONS_BOUND,
        "{live_allocations} more allocations are live after 1,000 cycles (flat is at most {LIVE_ALLOCATIONS_BOUND})"
    );
    assert!(
        after - warm <= LIVE_HEAP_BOUND,
        "the live heap grew by {} B over 1,000 cycles (flat is at most {LIVE_HEAP_BOUND} B)",
        after - warm
    );
    assert!(
        after_pages.saturating_sub(warm_pages) <= 64 * 1024,
        "wasm memory grew by more than a page: {warm_pages} -> {after_pages} B"
    );
}

/// Malformed frames, unknown types and oversized frames from the server
/// (over twice the 64 KiB send limit, contract section 7) are Error
/// events; the connection stays up and keeps working.
#[wasm_bindgen_test]
async fn bad_frames_are_errors_and_the_connection_stays() {
    let user = sign_up("badframes").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    let oversized = format!(
        r#"{{"type":"notification","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(140_000)
    );
    for (text, expected) in [
        ("{not json", "malformed"),
        (
            r#"{"type":"notification","payload":{"seq":"one"}}"#,
            "notification",
        ),
        (oversized.as_str(), "exceeds the limit"),
    ] {
        admin("raw", json!({"username": user.name, "text": text})).await;
        let event = f
            .wait_for("an Error event", Duration::from_secs(10), |e| {
                matches!(e, Event::Error(_))
            })
            .await;
        let Event::Error(error) = event else {
            unreachable!()
        };
        assert!(
            error.to_string().contains(expected),
            "{error} should mention {expected}"
        );
        assert_eq!(f.snapshot().state(), ConnectionState::Connected);
    }
    // A type the contract does not define is the app's own (section 9),
    // not an error.
    admin(
        "raw",
        json!({"username": user.name, "text": r#"{"type":"party_time","payload":{"hats":2}}"#}),
    )
    .await;
    let event = f
        .wait_for("the app's message", Duration::from_secs(10), |e| {
            matches!(e, Event::Error(_) | Event::Message { .. })
        })
        .await;
    let Event::Message { kind, payload } = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        (kind.as_str(), payload.as_str()),
        ("party_time", r#"{"hats":2}"#)
    );
    // Still usable: a message goes through and is acked.
    let id = f.conn.send(&json!("still here")).unwrap();
    let event = f
        .wait_for("Ack", Duration::from_secs(10), |e| {
            matches!(e, Event::Ack { .. })
        })
        .await;
    assert_eq!(event, Event::Ack { id });
}
