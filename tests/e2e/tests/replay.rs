//! Replay end to end: notifications published while the SPA is away (the
//! browser offline, or the server dropping and refusing sockets) are
//! shown once each when it is back. Without `last_seq` in the `auth` frame
//! the server replays nothing, and these tests fail.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tether_e2e::{Result, Session, TIMEOUT};

/// Long enough for refused sockets to be accepted again plus a backoff.
const RECOVERY: Duration = Duration::from_secs(40);

/// Waits for `expected.len()` notifications, then checks they are
/// exactly `expected`, each delivered once.
async fn shown_once(s: &Session, expected: &[u64]) -> Result {
    s.wait_notifications(expected.len()).await?;
    s.assert_notifications_once(expected).await
}

#[tokio::test]
async fn notifications_published_while_offline_arrive_once_after_reconnect() {
    Session::run("replay_offline", |s: Arc<Session>| async move {
        let username = s.signed_in_user().await?;
        s.server.notify(&username, "before").await?;
        shown_once(&s, &[1]).await?;

        s.network("offline").await?;
        s.wait_state("DISCONNECTED", TIMEOUT).await?;
        for title in ["away 1", "away 2", "away 3"] {
            s.server.notify(&username, title).await?;
        }
        assert_eq!(
            s.notification_seqs().await?,
            [1],
            "nothing arrives while offline"
        );

        s.network("online").await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        shown_once(&s, &[4, 3, 2, 1]).await?;
        // Live delivery goes on after the replay, without a repeat.
        s.server.notify(&username, "after").await?;
        shown_once(&s, &[5, 4, 3, 2, 1]).await
    })
    .await;
}

#[tokio::test]
async fn notifications_published_while_the_server_refuses_arrive_once() {
    Session::run("replay_refused", |s: Arc<Session>| async move {
        let username = s.signed_in_user().await?;
        s.server.notify(&username, "before").await?;
        shown_once(&s, &[1]).await?;
        // The server drops the socket and refuses new ones for 3 s: the
        // client retries with backoff and is away meanwhile.
        s.server
            .admin(
                "/api/admin/refuse-sockets",
                json!({"username": username, "seconds": 3}),
            )
            .await?;
        s.server
            .admin("/api/admin/drop-sockets", json!({"username": username}))
            .await?;
        s.wait_for(
            "the badge to leave CONNECTED",
            "document.querySelector('[data-testid=connection-state]')?.textContent !== 'CONNECTED'",
            TIMEOUT,
        )
        .await?;
        for title in ["away 1", "away 2"] {
            s.server.notify(&username, title).await?;
        }
        s.wait_state("CONNECTED", RECOVERY).await?;
        shown_once(&s, &[3, 2, 1]).await
    })
    .await;
}
