//! The manager built for the server (server-side rendering, any non-wasm
//! target): every handle method works without a browser, the state reads
//! INITIAL, nothing panics, nothing connects, and `send` says why it did
//! nothing. (The server's HTML itself is checked by `examples/ssr`, driven
//! in headless Chromium by `scripts/test`.)
#![cfg(not(target_arch = "wasm32"))]

use futures::StreamExt;
use leptos::prelude::*;
use serde_json::json;
use std::time::Duration;
use tether::prelude::*;
use tether::{Detail, Secret, TokenStorage};

#[test]
fn every_handle_method_works_without_a_browser() {
    let owner = Owner::new();
    owner.with(|| {
        let conn = provide_connection_manager(
            ConnectionOptions::default().storage(TokenStorage::Session("k".into())),
        );
        let found = use_connection_manager();
        for c in [conn, found] {
            assert_eq!(c.state().get_untracked(), ConnectionState::Initial);
            assert_eq!(c.detail().get_untracked(), Detail::Idle);
            assert!(!c.is_connected().get_untracked());
            assert!(!c.authenticating().get_untracked());
            assert!(!c.is_signed_in().get_untracked());
            assert_eq!(c.attempt().get_untracked(), 0);
            assert_eq!(c.next_retry_at().get_untracked(), None);
            assert_eq!(c.last_close().get_untracked(), None);
            assert_eq!(c.last_error().get_untracked(), None);
            assert_eq!(c.rtt().get_untracked(), None);
            assert_eq!(c.pending().get_untracked(), 0);
            assert_eq!(c.user().get_untracked(), None);
            assert_eq!(c.snapshot().get_untracked(), tether::Snapshot::default());
        }
        conn.sign_in(Secret::new("t0ken"), Some(Duration::from_secs(60)));
        conn.connect();
        assert_eq!(conn.state().get_untracked(), ConnectionState::Initial);
        assert_eq!(conn.token(), None, "nothing is stored on the server");
        assert_eq!(conn.send(&json!({"a": 1})), Err(SendError::NotInBrowser));
        let raw = RawJson::new("[1]".to_owned()).unwrap();
        assert_eq!(conn.send_raw(raw), Err(SendError::NotInBrowser));
        assert!(
            SendError::NotInBrowser.to_string().contains("server-side"),
            "a clear error"
        );
        assert_eq!(conn.pending().get_untracked(), 0, "nothing queued");
        let _one = conn.on(EventKind::Notification, |_| {
            panic!("no events on the server")
        });
        let _all = conn.on_any(|_| panic!("no events on the server"));
        let mut events = conn.events();
        assert!(futures::executor::block_on(events.next()).is_none());
        conn.disconnect();
        conn.sign_out();
        conn.destroy();
        assert_eq!(conn.send(&json!(1)), Err(SendError::NotInBrowser));
    });
    owner.cleanup();
}

#[test]
fn topics_and_app_frames_are_inert_without_a_browser() {
    let owner = Owner::new();
    owner.with(|| {
        let conn = provide_connection_manager(ConnectionOptions::default());
        let name = RwSignal::new("room:1".to_owned());
        let handles = [
            conn.topic::<serde_json::Value>("room:1"),
            use_topic::<serde_json::Value>(name),
            use_topic_with_options::<serde_json::Value>("room:1", TopicOptions::default().last(50)),
        ];
        for topic in handles {
            assert_eq!(topic.name(), "room:1");
            assert_eq!(topic.state().get_untracked(), TopicState::Unsubscribed);
            assert!(topic.presence().get_untracked().is_empty());
            assert_eq!(topic.position().get_untracked(), None);
            topic.on_message(|_| panic!("no messages on the server"));
            topic.on_error(|_| panic!("no errors on the server"));
            topic.on_published(|_, _| panic!("no acks on the server"));
            assert_eq!(
                topic.publish("said", &json!({"text": "hi"})),
                Err(SendError::NotInBrowser)
            );
        }
        let _frames = conn
            .on_frame::<serde_json::Value>("chat.typing", |_| panic!("no frames on the server"));
        use_frame::<serde_json::Value>("chat.typing", |_| panic!("no frames on the server"));
        name.set("room:2".into());
    });
    owner.cleanup();
}
