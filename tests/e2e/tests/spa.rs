//! The built SPA in a headless browser against the reference server: sign
//! in, faults injected by the server's dev admin routes, the browser going
//! offline, reloads. Each test has its own server, browser and user.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tether_e2e::{Browser, Result, Session, TIMEOUT, root, text_of};

/// Long enough for a dead link to be noticed (ping every 5 s, 4 s to
/// answer) plus a reconnect with backoff.
const RECOVERY: Duration = Duration::from_secs(40);

/// Badge text history contains a state other than CONNECTED, and the badge
/// reads CONNECTED now.
const LEFT_AND_BACK: &str = "(window.__tetherStates || []).some(s => s !== 'CONNECTED') \
     && document.querySelector('[data-testid=connection-state]')?.textContent === 'CONNECTED'";

#[tokio::test]
async fn sign_in_reaches_connected() {
    Session::run("sign_in_reaches_connected", |s: Arc<Session>| async move {
        let username = s.signed_in_user().await?;
        assert_eq!(s.path().await?, "/");
        s.wait_for(
            "the signed-in user",
            &format!("{} === '{username}'", text_of("connection-user")),
            TIMEOUT,
        )
        .await?;
        assert_eq!(
            s.js(&format!("{} ?? ''", text_of("connection-attempt")))
                .await?
                .as_str(),
            Some("0")
        );
        assert!(!s.stored_token().await?.is_empty(), "the token is stored");
        // Already signed in: /login sends us back to the dashboard.
        s.goto("/login").await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        assert_eq!(s.path().await?, "/");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn wrong_password_shows_an_error() {
    Session::run(
        "wrong_password_shows_an_error",
        |s: Arc<Session>| async move {
            let (username, _) = s.server.new_user().await?;
            s.goto("/login").await?;
            s.submit_login(&username, "not the password").await?;
            s.wait_for(
                "the login error",
                &format!("({} ?? '').length > 0", text_of("login-error")),
                TIMEOUT,
            )
            .await?;
            let error = s.find("login-error").await?.text().await?;
            assert!(error.contains("Wrong username or password"), "{error}");
            assert_eq!(s.path().await?, "/login");
            assert_eq!(s.stored_token().await?, "");
            Ok(())
        },
    )
    .await;
}

#[tokio::test]
async fn signed_out_routes_go_to_login_and_unknown_paths_show_not_found() {
    Session::run("routes", |s: Arc<Session>| async move {
        s.goto("/").await?;
        s.wait_for(
            "the redirect to /login",
            "location.pathname === '/login' && document.querySelector('[data-testid=login-submit]')",
            TIMEOUT,
        )
        .await?;
        s.goto("/no/such/page").await?;
        s.wait_for(
            "the not-found page",
            "document.body.textContent.includes('Page not found')",
            TIMEOUT,
        )
        .await?;
        Ok(())
    })
    .await;
}

/// Signs in, gets one notification, injects `fault` (an admin route and its
/// body, scoped to the user), waits for the badge to leave CONNECTED and come
/// back, and checks each notification arrived exactly once.
async fn recovers_from_fault(
    s: Arc<Session>,
    fault: &str,
    body: serde_json::Value,
    what: &str,
) -> Result {
    let username = s.signed_in_user().await?;
    s.server.notify(&username, "before the fault").await?;
    s.wait_notifications(1).await?;
    s.record_states().await?;
    let mut body = body;
    body["username"] = json!(username);
    s.server.admin(fault, body).await?;
    s.wait_for(what, LEFT_AND_BACK, RECOVERY).await?;
    s.server.notify(&username, "after the fault").await?;
    s.wait_notifications(2).await?;
    s.assert_notifications_once(&[2, 1]).await
}

#[tokio::test]
async fn dropped_sockets_reconnect_without_duplicate_notifications() {
    Session::run("dropped_sockets", |s: Arc<Session>| async move {
        recovers_from_fault(
            s,
            "/api/admin/drop-sockets",
            json!({}),
            "a drop and a reconnect",
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn withheld_pongs_reconnect_without_duplicate_notifications() {
    // Longer than ping interval + pong timeout (5 + 4 s) with slack, so a
    // ping is always sent inside the window even when the browser fires its
    // timer late under load.
    Session::run("withheld_pongs", |s: Arc<Session>| async move {
        recovers_from_fault(
            s,
            "/api/admin/withhold-pongs",
            json!({"seconds": 12}),
            "a dead link noticed and a reconnect",
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn refused_sockets_show_the_attempt_and_a_countdown() {
    Session::run("refused_sockets", |s: Arc<Session>| async move {
        let username = s.signed_in_user().await?;
        // Remember every attempt number and countdown the panel shows.
        s.js("(() => {
                const seen = window.__retries = [];
                const read = () => {
                    const q = id => document.querySelector(`[data-testid=${id}]`)?.textContent ?? '';
                    const entry = q('connection-attempt') + '|' + q('connection-retry');
                    if (seen[seen.length - 1] !== entry) seen.push(entry);
                };
                new MutationObserver(read).observe(document.body,
                    { subtree: true, childList: true, characterData: true });
                return true;
            })()")
            .await?;
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
            "an attempt number with a countdown",
            "window.__retries.some(e => /^[1-9][0-9]*\\|next try in [0-9]+\\.[0-9] s$/.test(e))",
            RECOVERY,
        )
        .await?;
        s.wait_state("CONNECTED", RECOVERY).await?;
        s.wait_for(
            "the attempt back to 0 without a countdown",
            &format!("{} === '0' && {} === ''", text_of("connection-attempt"), text_of("connection-retry")),
            TIMEOUT,
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn a_revoked_session_lands_on_login() {
    Session::run("revoked_session", |s: Arc<Session>| async move {
        s.signed_in_user().await?;
        let token = s.stored_token().await?;
        let (status, body) = s
            .server
            .post("/api/auth/logout", &json!({}), Some(&token))
            .await?;
        assert!((200..300).contains(&status), "logout: HTTP {status} {body}");
        s.wait_for(
            "the login page with no stored token",
            "location.pathname === '/login' \
             && !localStorage.getItem('tether.access_token') \
             && document.querySelector('[data-testid=login-submit]')",
            TIMEOUT,
        )
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn sign_out_button_ends_the_session() {
    Session::run("sign_out", |s: Arc<Session>| async move {
        s.signed_in_user().await?;
        s.click("sign-out").await?;
        s.wait_for(
            "the login page with no stored token",
            "location.pathname === '/login' \
             && !localStorage.getItem('tether.access_token') \
             && document.querySelector('[data-testid=login-submit]')",
            TIMEOUT,
        )
        .await?;
        // The dashboard is closed to us now.
        s.goto("/").await?;
        s.wait_for(
            "the redirect to /login",
            "location.pathname === '/login'",
            TIMEOUT,
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn offline_then_online_disconnects_and_reconnects() {
    Session::run("offline_online", |s: Arc<Session>| async move {
        s.signed_in_user().await?;
        s.network("offline").await?;
        s.wait_state("DISCONNECTED", TIMEOUT).await?;
        s.network("online").await?;
        s.wait_state("CONNECTED", TIMEOUT).await
    })
    .await;
}

#[tokio::test]
async fn a_message_sent_while_disconnected_is_acked_after_reconnect() {
    Session::run("queued_message", |s: Arc<Session>| async move {
        s.signed_in_user().await?;
        s.network("offline").await?;
        s.wait_state("DISCONNECTED", TIMEOUT).await?;
        s.type_into("send-input", "hello from offline").await?;
        s.click("send-submit").await?;
        s.wait_for(
            "the message queued",
            &format!("{} === 'queued'", text_of("send-status")),
            TIMEOUT,
        )
        .await?;
        s.network("online").await?;
        s.wait_for(
            "the message acked",
            &format!("{} === 'acked'", text_of("send-status")),
            TIMEOUT,
        )
        .await?;
        s.wait_state("CONNECTED", TIMEOUT).await
    })
    .await;
}

#[tokio::test]
async fn a_reload_keeps_the_session() {
    Session::run("reload", |s: Arc<Session>| async move {
        s.signed_in_user().await?;
        s.client.refresh().await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        assert_eq!(s.path().await?, "/");
        Ok(())
    })
    .await;
}

/// Also the picture in the README: a CONNECTED dashboard with a few
/// notifications and messages, saved to target/screenshots/.
#[tokio::test]
async fn dashboard_screenshot() {
    Session::run("screenshot", |s: Arc<Session>| async move {
        // The server is this test's alone, so the demo user is too.
        let username = "alice";
        s.sign_in(username, "wonderland").await?;
        let notes = [
            ("Build #128 passed", "All 214 tests green in 3 m 12 s."),
            ("Deploy to staging finished", "Version 0.4.1 is live on staging."),
            ("New comment on PR #42", "bob: “Looks good, ship it after the rebase.”"),
        ];
        for (title, body) in notes {
            s.server
                .admin(
                    "/api/admin/notify",
                    json!({"username": username, "title": title, "body": body}),
                )
                .await?;
        }
        s.wait_notifications(3).await?;
        for text in ["Hello from the dashboard", "Ship it!"] {
            s.type_into("send-input", text).await?;
            s.click("send-submit").await?;
        }
        s.wait_for(
            "both messages acked",
            "Array.from(document.querySelectorAll('[data-testid=send-status]')).filter(e => e.textContent === 'acked').length === 2",
            TIMEOUT,
        )
        .await?;
        s.wait_for(
            "a round-trip time",
            &format!("/ms$/.test({} ?? '')", text_of("connection-rtt")),
            TIMEOUT,
        )
        .await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        s.client.set_window_size(1360, 1000).await?;
        let name = match s.browser {
            Browser::Chromium => "dashboard.png",
            Browser::Firefox => "dashboard-firefox.png",
        };
        s.screenshot(&root().join("target/screenshots").join(name))
            .await
    })
    .await;
}

/// Tokens that really expire on the server (12 s lifetime): the SPA
/// refreshes ahead of expiry and re-authenticates in place, so the badge
/// never leaves CONNECTED, even past the first token's expiry.
#[tokio::test]
async fn expiring_tokens_are_refreshed_without_leaving_connected() {
    const TTL: &str = "12";
    Session::run_with(
        "token_expiry",
        &["--token-ttl", TTL],
        |s: Arc<Session>| async move {
            s.signed_in_user().await?;
            let first = s.stored_token().await?;
            s.record_states().await?;
            // Wait for the first token's expiry on the server (it refuses
            // the token from then on: 401 instead of 400 for the empty body).
            let mut expired = false;
            for _ in 0..300 {
                let (status, _) = s
                    .server
                    .post("/api/notifications", &json!({}), Some(&first))
                    .await?;
                if status == 401 {
                    expired = true;
                    break;
                }
                assert_eq!(status, 400, "the first token is still valid");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(expired, "the first token did not expire within 30 s");
            // A round trip on the socket after that expiry: had the server
            // closed it, the ack would come only after a reconnect, which
            // the recorded states would show.
            s.type_into("send-input", "after the expiry").await?;
            s.click("send-submit").await?;
            s.wait_for(
                "the message acked",
                &format!("{} === 'acked'", text_of("send-status")),
                TIMEOUT,
            )
            .await?;
            let states = s.recorded_states().await?;
            assert_eq!(
                states,
                ["CONNECTED"],
                "the badge left CONNECTED: {states:?}"
            );
            let newest = s.stored_token().await?;
            assert!(
                !newest.is_empty() && newest != first,
                "a refreshed token is stored"
            );
            let reauths = s
                .js("document.querySelectorAll('[data-kind=AuthSuccess]').length")
                .await?
                .as_u64()
                .unwrap_or_default();
            assert!(
                reauths >= 2,
                "sign-in plus at least one in-place re-authentication, saw {reauths}"
            );
            Ok(())
        },
    )
    .await;
}
