//! Browser tests: the real ConnectionManager in headless Chromium and
//! Firefox against the real reference server that `scripts/test` starts.
#![cfg(target_arch = "wasm32")]

mod support;

use futures::StreamExt;
use leptos::prelude::*;
use serde_json::json;
use std::time::Duration;
use support::*;
use tether::prelude::*;
use tether::{Detail, Secret, StopReason};
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

#[wasm_bindgen_test]
async fn dead_link_is_noticed_and_recovered() {
    let user = sign_up("deadlink").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    admin(
        "withhold-pongs",
        json!({"username": user.name, "seconds": 9}),
    )
    .await;
    // Default keepalive: a dead link is noticed within 10 s.
    f.wait_for("leaving CONNECTED", Duration::from_secs(10), |e| {
        matches!(
            e,
            Event::StateChanged {
                from: ConnectionState::Connected,
                ..
            }
        )
    })
    .await;
    f.wait_for("Connected again", Duration::from_secs(30), |e| {
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

#[wasm_bindgen_test]
async fn messages_sent_while_disconnected_are_delivered_once() {
    let user = sign_up("outbox").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    f.conn.disconnect();
    f.wait_for("DISCONNECTED", Duration::from_secs(5), |e| {
        matches!(
            e,
            Event::StateChanged {
                to: ConnectionState::Disconnected,
                ..
            }
        )
    })
    .await;
    let ids: Vec<_> = (0..3)
        .map(|n| f.conn.send(&json!({"n": n})).expect("queued"))
        .collect();
    assert_eq!(f.snapshot().pending, 3);
    f.conn.connect();
    let mut acked = Vec::new();
    while acked.len() < 3 {
        if let Event::Ack { id } = f
            .wait_for("Ack", Duration::from_secs(10), |e| {
                matches!(e, Event::Ack { .. })
            })
            .await
        {
            acked.push(id);
        }
    }
    assert_eq!(acked, ids, "acked once each, in order");
    assert_eq!(f.snapshot().pending, 0);
    let received = get_json(&format!("/api/admin/received?user={}", user.name)).await;
    assert_eq!(received["count"], 3, "{received}");
}

#[wasm_bindgen_test]
async fn twenty_components_and_two_providers_share_one_socket() {
    let user = sign_up("shared").await;
    let token = log_in(&user).await.access_token;
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
    f.connected().await;
    assert_eq!(second.state().get_untracked(), ConnectionState::Connected);
    assert_eq!(root.child_element_count(), 20);
    assert_eq!(server_sockets(&user).await, 1);
    drop(handle);
    second_owner.cleanup();
    root.remove();
}

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
    // Destroying reports what was still pending, and then nothing else fires.
    // (The ack cannot have arrived: nothing yielded to the event loop since `send`.)
    assert_eq!(*failed.borrow(), vec![queued]);
    calls.set(0);
    fire_window_event("offline");
    fire_window_event("online");
    fire_window_event("pageshow");
    assert_eq!(calls.get(), 0);
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

/// 1,000 full cycles (provide, connect, authenticate, destroy) leave the
/// wasm heap where it was after warm-up: no leaked closures, listeners,
/// timers or drivers.
#[wasm_bindgen_test]
async fn a_thousand_connect_destroy_cycles_do_not_grow_memory() {
    const BOUND: u32 = 64 * 1024; // one wasm page; measured: 0 B
    let user = sign_up("leak").await;
    let token = log_in(&user).await.access_token;
    // Like an app, each cycle starts from the newest stored token (the
    // server's 30 s tokens get refreshed along the way).
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
    let warm = wasm_memory_bytes();
    let started = js_sys::Date::now();
    for n in 0..1000 {
        cycle().await;
        if n % 100 == 99 {
            let (ms, bytes) = (js_sys::Date::now() - started, wasm_memory_bytes());
            web_sys::console::log_1(
                &format!("{} cycles in {ms} ms, wasm memory {bytes} B", n + 1).into(),
            );
        }
    }
    let after = wasm_memory_bytes();
    web_sys::console::log_1(
        &format!("wasm memory after warm-up {warm} B, after 1,000 cycles {after} B").into(),
    );
    assert!(
        after.saturating_sub(warm) <= BOUND,
        "wasm memory grew by {} B over 1,000 cycles (bound {BOUND} B)",
        after - warm
    );
    assert_eq!(server_sockets(&user).await, 0, "every socket was closed");
}

/// Malformed frames, unknown types and oversized frames from the server are
/// Error events; the connection stays up and keeps working.
#[wasm_bindgen_test]
async fn bad_frames_are_errors_and_the_connection_stays() {
    let user = sign_up("badframes").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    let oversized = format!(
        r#"{{"type":"notification","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    for (text, expected) in [
        ("{not json", "malformed"),
        (
            r#"{"type":"party_time","payload":{}}"#,
            "unknown frame type `party_time`",
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
    // Still usable: a message goes through and is acked.
    let id = f.conn.send(&json!("still here")).unwrap();
    let event = f
        .wait_for("Ack", Duration::from_secs(10), |e| {
            matches!(e, Event::Ack { .. })
        })
        .await;
    assert_eq!(event, Event::Ack { id });
}
