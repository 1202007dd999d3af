//! Contract section 10 in a real browser: a socket that falls too far
//! behind is closed by the server with 1013; the manager reconnects with
//! backoff and catches up by replay, and the app sees every notification
//! exactly once, in order.

use crate::support::*;
use serde_json::json;
use std::time::Duration;
use tether::prelude::*;
use wasm_bindgen_test::*;

/// Collects notification seqs until `last` has arrived, checking each is
/// the next one.
async fn notifications_up_to(f: &mut Fixture, next: &mut u64, last: u64) {
    while *next <= last {
        let event = f
            .wait_for("a notification", Duration::from_secs(30), |e| {
                matches!(e, Event::Notification(_))
            })
            .await;
        let Event::Notification(n) = event else {
            unreachable!()
        };
        assert_eq!(n.seq, *next, "every notification once, in order");
        *next += 1;
    }
}

#[wasm_bindgen_test]
async fn a_socket_too_far_behind_is_closed_with_1013_and_catches_up_by_replay() {
    let user = sign_up("slow").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    f.connected().await;
    let mut next = 1;
    admin("notify", json!({"username": user.name, "count": 5})).await;
    notifications_up_to(&mut f, &mut next, 5).await;

    // The server stops draining this socket's queue, as it would if the
    // browser stopped reading; 600 notifications of 2 KB then overflow the
    // queue's 1 MiB bound. All 600 stay retained for replay (1,000).
    admin(
        "stall-sockets",
        json!({"username": user.name, "seconds": 60}),
    )
    .await;
    admin(
        "notify",
        json!({"username": user.name, "count": 600, "body": "x".repeat(2_000)}),
    )
    .await;
    let event = f
        .wait_for("Disconnected", Duration::from_secs(15), |e| {
            matches!(e, Event::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(event, Event::Disconnected { code: 1013, .. }),
        "{event:?}"
    );
    f.wait_for("ReconnectScheduled", Duration::from_secs(5), |e| {
        matches!(e, Event::ReconnectScheduled { .. })
    })
    .await;
    // The new socket is not stalled: the replay brings 6..=605.
    notifications_up_to(&mut f, &mut next, 605).await;
    assert_eq!(f.snapshot().state(), ConnectionState::Connected);
    assert_eq!(server_sockets(&user).await, 1);
}
