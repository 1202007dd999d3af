//! The SPA behind two instances on one Redis (a round-robin proxy in
//! front, no sticky sessions: the page, its API calls and its socket may
//! each land on either). The instance holding the dashboard's socket is
//! killed with SIGKILL: the dashboard leaves CONNECTED, comes back to
//! CONNECTED through the other instance, and shows every notification
//! (before, during and after the kill) exactly once. `tests/e2e/run` runs
//! it in Chromium only: what it tests is on the server side.

use std::sync::Arc;
use std::time::Duration;
use tether_e2e::{Cluster, Result, Session};

/// A reconnect with backoff after the socket reset, plus the replay.
const RECOVERY: Duration = Duration::from_secs(30);

async fn shown_once(s: &Session, expected: &[u64]) -> Result {
    s.wait_notifications(expected.len()).await?;
    s.assert_notifications_once(expected).await
}

#[tokio::test]
async fn the_dashboard_survives_the_kill_of_its_instance_with_every_notification_once() {
    Session::run_cluster(
        "failover",
        |s: Arc<Session>, cluster: Arc<Cluster>| async move {
            let username = s.signed_in_user().await?;
            for title in ["before 1", "before 2"] {
                s.server.notify(&username, title).await?;
            }
            shown_once(&s, &[2, 1]).await?;

            // Kill the instance that holds the dashboard's socket.
            let holder = cluster
                .instance_of(&username)
                .await?
                .ok_or("no instance holds the dashboard's socket")?;
            s.record_states().await?;
            cluster.kill(holder);
            assert_eq!(cluster.running(), 1);
            // Published through the proxy, i.e. the surviving instance,
            // while the page reconnects (or just after): replay or live,
            // each must show once.
            for title in ["during 1", "during 2", "during 3"] {
                s.server.notify(&username, title).await?;
            }
            s.wait_for(
                "the badge to leave CONNECTED and come back",
                "(w => w.length >= 3 && w[w.length - 1] === 'CONNECTED' && w.slice(1).some(t => t !== 'CONNECTED'))(window.__tetherStates || [])",
                RECOVERY,
            )
            .await?;
            shown_once(&s, &[5, 4, 3, 2, 1]).await?;
            let survivor = cluster.instance_of(&username).await?;
            assert!(
                survivor.is_some_and(|i| i != holder),
                "the socket is back on the other instance ({survivor:?}, killed {holder})"
            );

            s.server.notify(&username, "after").await?;
            shown_once(&s, &[6, 5, 4, 3, 2, 1]).await?;
            // Still signed in: the session lives in Redis, not in the
            // killed instance.
            assert!(!s.stored_token().await?.is_empty(), "still signed in");
            assert_eq!(s.path().await?, "/", "still on the dashboard");
            Ok(())
        },
    )
    .await;
}
