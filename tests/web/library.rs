//! The library as apps adopt it (issue 14): sign-out and the token API,
//! where the token lives, pluggable refresh, nested providers, socket URLs,
//! and the first events reaching components of the first render.

use crate::support::*;
use futures::StreamExt;
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tether::prelude::*;
use tether::{
    AuthErrorCode, Detail, FreshToken, RefreshError, Secret, StopReason, TokenStorage,
    resolve_socket_url,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

/// A JWT whose `exp` (2023-11-14) has passed: connecting refreshes first.
const EXPIRED_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn session() -> web_sys::Storage {
    web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap()
}

/// What the browser fires in *other* tabs when one tab changes
/// `localStorage` (it never fires in the tab that made the change).
fn other_tab_changed(key: &str, new_value: Option<&str>) {
    let init = web_sys::StorageEventInit::new();
    init.set_key(Some(key));
    init.set_new_value(new_value);
    init.set_storage_area(Some(&local()));
    let event = web_sys::StorageEvent::new_with_event_init_dict("storage", &init).unwrap();
    web_sys::window().unwrap().dispatch_event(&event).unwrap();
}

fn random_key(prefix: &str) -> String {
    format!("tether.{prefix}.{}", (js_sys::Math::random() * 1e12) as u64)
}

#[wasm_bindgen_test]
async fn sign_out_closes_with_1000_clears_the_token_and_stays_signed_out() {
    let user = sign_up("signout").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    assert!(f.conn.is_signed_in().get_untracked());
    assert_eq!(f.conn.token().as_ref(), Some(&token));
    f.conn.sign_out();
    f.wait_for("SignedOut", Duration::from_secs(5), |e| {
        matches!(e, Event::SignedOut)
    })
    .await;
    let close = f.snapshot().last_close.expect("a close");
    assert_eq!((close.code, close.reason.as_str()), (1000, "Signed out"));
    assert_eq!(f.stored_token(), None, "the stored token is gone");
    assert_eq!(f.conn.token(), None);
    assert!(!f.conn.is_signed_in().get_untracked());
    assert_eq!(f.snapshot().detail, Detail::Stopped(StopReason::SignedOut));
    assert!(
        f.navigations.borrow().is_empty(),
        "no navigation unless asked"
    );
    // Nothing brings it back by itself.
    fire_window_event("offline");
    fire_window_event("online");
    fire_window_event("pageshow");
    assert_eq!(
        f.conn.state().get_untracked(),
        ConnectionState::Disconnected
    );
    // Signing in again does.
    f.conn.sign_in(token, None);
    f.connected().await;
}

#[wasm_bindgen_test]
async fn another_tabs_sign_out_is_followed_at_once() {
    let user = sign_up("tabout").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    local().remove_item(&f.storage_key).unwrap();
    other_tab_changed(&f.storage_key, None);
    f.wait_for("SignedOut", Duration::from_secs(5), |e| {
        matches!(e, Event::SignedOut)
    })
    .await;
    assert_eq!(
        f.conn.state().get_untracked(),
        ConnectionState::Disconnected
    );
    assert!(!f.conn.is_signed_in().get_untracked());
    // Another key, or another storage area, is none of its business.
    let mut g = Fixture::start(Some(&token), |o| o);
    g.connected().await;
    other_tab_changed("some.other.key", None);
    session().set_item(&g.storage_key, "x").unwrap();
    assert!(g.conn.is_signed_in().get_untracked());
    assert_eq!(g.conn.state().get_untracked(), ConnectionState::Connected);
    session().remove_item(&g.storage_key).unwrap();
}

#[wasm_bindgen_test]
async fn another_tabs_new_token_is_used_at_once() {
    let user = sign_up("tabin").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    f.conn.sign_out();
    f.wait_for("SignedOut", Duration::from_secs(5), |e| {
        matches!(e, Event::SignedOut)
    })
    .await;
    // The other tab signs in again: this one follows without a click.
    let fresh = log_in(&user).await.access_token;
    local().set_item(&f.storage_key, fresh.expose()).unwrap();
    other_tab_changed(&f.storage_key, Some(fresh.expose()));
    f.connected().await;
    assert_eq!(f.conn.token().as_ref(), Some(&fresh));
    assert!(f.conn.is_signed_in().get_untracked());
}

#[wasm_bindgen_test]
async fn session_storage_keeps_the_token_in_this_tab_only() {
    let user = sign_up("session").await;
    let token = log_in(&user).await.access_token;
    let key = random_key("session");
    let mut f = Fixture::start(None, |o| o.storage(TokenStorage::Session(key.clone())));
    f.conn.sign_in(token.clone(), None);
    f.connected().await;
    assert_eq!(
        session().get_item(&key).unwrap().as_deref(),
        Some(token.expose())
    );
    assert_eq!(local().get_item(&key).unwrap(), None);
    f.conn.sign_out();
    f.wait_for("SignedOut", Duration::from_secs(5), |e| {
        matches!(e, Event::SignedOut)
    })
    .await;
    assert_eq!(session().get_item(&key).unwrap(), None);
}

#[wasm_bindgen_test]
async fn memory_storage_stores_nothing() {
    let user = sign_up("memory").await;
    let token = log_in(&user).await.access_token;
    let key = random_key("memory");
    let mut f = Fixture::start(None, |o| o.storage(TokenStorage::Memory));
    f.conn.sign_in(token.clone(), None);
    f.connected().await;
    assert_eq!(f.conn.token().as_ref(), Some(&token));
    for storage in [local(), session()] {
        for i in 0..storage.length().unwrap() {
            let k = storage.key(i).unwrap().unwrap_or_default();
            let value = storage.get_item(&k).unwrap().unwrap_or_default();
            assert_ne!(value, token.expose(), "the token was stored under {k}");
        }
    }
    drop(key);
}

#[wasm_bindgen_test]
async fn an_apps_own_refresh_function_is_used() {
    let user = sign_up("custom").await;
    let calls = Rc::new(RefCell::new(0));
    let counted = calls.clone();
    let user = Rc::new(user);
    let refreshing = user.clone();
    let mut f = Fixture::start(Some(&Secret::new(EXPIRED_JWT)), move |o| {
        o.refresh_with(move || {
            *counted.borrow_mut() += 1;
            let user = refreshing.clone();
            async move {
                let login = log_in(&user).await;
                Ok(FreshToken {
                    token: login.access_token,
                    expires_in: Some(Duration::from_secs(login.expires_in)),
                })
            }
        })
    });
    f.connected().await;
    assert_eq!(*calls.borrow(), 1, "the expired token was refreshed first");
    assert_eq!(f.snapshot().user_id.as_deref(), Some(user.id.as_str()));
    assert_ne!(f.stored_token().as_deref(), Some(EXPIRED_JWT));
}

#[wasm_bindgen_test]
async fn a_rejected_refresh_ends_the_session() {
    let mut f = Fixture::start(Some(&Secret::new(EXPIRED_JWT)), |o| {
        o.refresh_with(|| async { Err(RefreshError::rejected("the session ended")) })
    });
    let event = f
        .wait_for("AuthError", Duration::from_secs(5), |e| {
            matches!(e, Event::AuthError { .. })
        })
        .await;
    let Event::AuthError { code, message } = event else {
        unreachable!()
    };
    assert_eq!(code, AuthErrorCode::Other("invalid_refresh".into()));
    assert_eq!(message, "the session ended");
    assert_eq!(*f.navigations.borrow(), ["/login"]);
    assert_eq!(f.stored_token(), None);
}

#[wasm_bindgen_test]
async fn a_nested_provider_with_other_options_gets_its_own_manager() {
    let _ = any_spawner::Executor::init_wasm_bindgen();
    let alice = sign_up("outer").await;
    let bob = sign_up("inner").await;
    let (outer_key, inner_key) = (random_key("outer"), random_key("inner"));
    local()
        .set_item(&outer_key, log_in(&alice).await.access_token.expose())
        .unwrap();
    local()
        .set_item(&inner_key, log_in(&bob).await.access_token.expose())
        .unwrap();
    let navs = Rc::new(RefCell::new(Vec::new()));
    let owner = Owner::new();
    let (outer, nested, inner, seen_inside, seen_outside) = owner.with(|| {
        let outer = provide_connection_manager(options(&outer_key, &navs));
        let nested = Owner::new(); // a component below the outer provider
        let (inner, seen_inside) = nested.with(|| {
            let inner = provide_connection_manager(options(&inner_key, &navs));
            (inner, use_connection_manager())
        });
        (outer, nested, inner, seen_inside, use_connection_manager())
    });
    let mut outer_events = outer.events();
    let mut inner_events = inner.events();
    outer.connect();
    inner.connect();
    for events in [&mut outer_events, &mut inner_events] {
        while let Some(event) = events.next().await {
            if matches!(event, Event::Connected { .. }) {
                break;
            }
        }
    }
    assert_eq!(
        outer.user().get_untracked().as_deref(),
        Some(alice.id.as_str())
    );
    assert_eq!(
        inner.user().get_untracked().as_deref(),
        Some(bob.id.as_str())
    );
    assert_eq!(
        seen_inside.user().get_untracked().as_deref(),
        Some(bob.id.as_str())
    );
    assert_eq!(
        seen_outside.user().get_untracked().as_deref(),
        Some(alice.id.as_str())
    );
    assert_eq!(server_sockets(&alice).await, 1);
    assert_eq!(server_sockets(&bob).await, 1);
    outer.destroy();
    inner.destroy();
    nested.cleanup();
    owner.cleanup();
    local().remove_item(&outer_key).unwrap();
    local().remove_item(&inner_key).unwrap();
}

#[wasm_bindgen_test]
async fn a_nested_provider_with_the_same_options_shares_the_manager() {
    let user = sign_up("samenest").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    let navs = f.navigations.clone();
    let nested = f.owner.with(Owner::new);
    let inner = nested.with(|| provide_connection_manager(options(&f.storage_key, &navs)));
    f.connected().await;
    assert_eq!(inner.state().get_untracked(), ConnectionState::Connected);
    assert_eq!(
        inner.user().get_untracked().as_deref(),
        Some(user.id.as_str())
    );
    assert_eq!(server_sockets(&user).await, 1, "one socket for both");
    nested.cleanup();
    assert_eq!(f.conn.state().get_untracked(), ConnectionState::Connected);
}

#[wasm_bindgen_test]
fn socket_urls_resolve_like_links() {
    let base = "https://app.example:8443/app/page?tab=1#top";
    let cases = [
        (
            "/api/ws/notification",
            "wss://app.example:8443/api/ws/notification",
        ),
        (
            "ws/notification",
            "wss://app.example:8443/app/ws/notification",
        ),
        ("../ws", "wss://app.example:8443/ws"),
        ("//other.example/ws", "wss://other.example/ws"),
        ("http://plain.example/ws?x=1", "ws://plain.example/ws?x=1"),
        ("https://secure.example/ws", "wss://secure.example/ws"),
        (
            "ws://127.0.0.1:3001/api/ws/notification",
            "ws://127.0.0.1:3001/api/ws/notification",
        ),
        ("wss://kept.example/ws#frag", "wss://kept.example/ws"),
    ];
    for (url, expected) in cases {
        assert_eq!(
            resolve_socket_url(url, base).as_deref(),
            Ok(expected),
            "{url}"
        );
    }
    let plain = "http://localhost:8080/";
    assert_eq!(
        resolve_socket_url("/api/ws", plain).as_deref(),
        Ok("ws://localhost:8080/api/ws")
    );
    let err = resolve_socket_url("ftp://files.example/x", base).unwrap_err();
    assert!(err.to_string().contains("ftp"), "{err}");
    assert!(resolve_socket_url("http://[::1", base).is_err());
}

/// Section 7: with `connect_on_mount`, the first attempt starts after the
/// first render, so a component subscribed in that render hears the first
/// events: here, without a token, its own `missing_token` failure and the
/// move to the login route.
#[wasm_bindgen_test]
async fn a_component_subscribed_in_the_first_render_hears_the_first_events() {
    let key = random_key("firstrender");
    let navs = Rc::new(RefCell::new(Vec::new()));
    let heard = Rc::new(RefCell::new(Vec::<Event>::new()));
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<()>();
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let options = options(&key, &navs).connect_on_mount(true);
    let child_heard = heard.clone();
    let handle = leptos::mount::mount_to(root.clone().unchecked_into(), move || {
        let conn = provide_connection_manager(options.clone());
        let heard = child_heard.clone();
        let tx = tx.clone();
        let child = move || {
            use_connection_event(EventKind::AuthError, move |e| {
                heard.borrow_mut().push(e.clone());
                let _ = tx.unbounded_send(());
            });
            view! { <span id="first-state">{move || conn.state().get().to_string()}</span> }
        };
        child()
    });
    // The first render shows INITIAL: nothing started during it.
    assert_eq!(root.text_content().as_deref(), Some("INITIAL"));
    let wait = gloo_timers::future::sleep(Duration::from_secs(5));
    futures::future::select(rx.next(), Box::pin(wait)).await;
    let heard = heard.borrow().clone();
    assert!(
        matches!(
            heard.as_slice(),
            [Event::AuthError {
                code: AuthErrorCode::MissingToken,
                ..
            }]
        ),
        "{heard:?}"
    );
    assert_eq!(*navs.borrow(), ["/login"]);
    drop(handle);
    root.remove();
}

/// The same with a token: the component sees the very first state change.
#[wasm_bindgen_test]
async fn a_component_subscribed_in_the_first_render_sees_the_first_state_change() {
    let user = sign_up("firststate").await;
    let token = log_in(&user).await.access_token;
    let key = random_key("firststate");
    local().set_item(&key, token.expose()).unwrap();
    let navs = Rc::new(RefCell::new(Vec::new()));
    let heard = Rc::new(RefCell::new(Vec::<Event>::new()));
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<()>();
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    let options = options(&key, &navs).connect_on_mount(true);
    let child_heard = heard.clone();
    let handle = leptos::mount::mount_to(root.clone().unchecked_into(), move || {
        let conn = provide_connection_manager(options.clone());
        let heard = child_heard.clone();
        let tx = tx.clone();
        let _ = conn;
        let subscription = use_connection_manager().on_any(move |e| {
            heard.borrow_mut().push(e.clone());
            if matches!(e, Event::Connected { .. }) {
                let _ = tx.unbounded_send(());
            }
        });
        StoredValue::new_local(subscription);
        view! { <span>{move || use_connection_manager().state().get().to_string()}</span> }
    });
    let wait = gloo_timers::future::sleep(Duration::from_secs(15));
    futures::future::select(rx.next(), Box::pin(wait)).await;
    let heard = heard.borrow().clone();
    assert_eq!(
        heard.first(),
        Some(&Event::StateChanged {
            from: ConnectionState::Initial,
            to: ConnectionState::Connecting
        }),
        "{heard:?}"
    );
    assert!(
        heard.iter().any(|e| matches!(e, Event::Connected { .. })),
        "{heard:?}"
    );
    drop(handle);
    root.remove();
    local().remove_item(&key).unwrap();
}
