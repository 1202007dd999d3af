//! Passkeys in the built SPA: ceremonies with Chromium's virtual
//! authenticator (WebDriver `webauthn/authenticator`; geckodriver's is
//! broken, so the ceremonies run in Chromium only and pass trivially in
//! Firefox, saying so), the support check and "Sign out everywhere" in both
//! browsers. The ceremony pages are on `localhost`: browsers refuse
//! WebAuthn on an IP address.

use std::sync::Arc;
use tether_e2e::{Browser, Result, Session, TIMEOUT, text_of};

/// Whether the ceremonies can run here; prints why not.
fn ceremonies_run(s: &Session) -> bool {
    if s.browser == Browser::Chromium {
        return true;
    }
    eprintln!(
        "[{}] passkey ceremonies skipped: geckodriver's virtual authenticator is broken",
        s.browser.name()
    );
    false
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("pk{}x{nanos:x}", std::process::id())
}

async fn wait_path(s: &Session, path: &str) -> Result {
    s.wait_for(
        &format!("the page {path}"),
        &format!("location.pathname === '{path}'"),
        TIMEOUT,
    )
    .await
}

async fn sign_out(s: &Session) -> Result {
    s.click("sign-out").await?;
    wait_path(s, "/login").await?;
    s.wait_for(
        "the passkey sign-in button",
        "document.querySelector('[data-testid=passkey-sign-in]')",
        TIMEOUT,
    )
    .await
}

/// Opens /login on `localhost` and waits for the app to render it.
async fn login_page(s: &Session) -> Result {
    s.goto_localhost("/login").await?;
    s.wait_for(
        "the passkey sign-up form",
        "document.querySelector('[data-testid=passkey-username]')",
        TIMEOUT,
    )
    .await
}

async fn passkey_sign_in(s: &Session) -> Result {
    s.wait_for(
        "an enabled passkey sign-in button",
        "document.querySelector('[data-testid=passkey-sign-in]')?.disabled === false",
        TIMEOUT,
    )
    .await?;
    s.click("passkey-sign-in").await
}

#[tokio::test]
async fn create_an_account_with_a_passkey_sign_out_and_sign_in_again() {
    Session::run("passkey_account", |s: Arc<Session>| async move {
        if !ceremonies_run(&s) {
            return Ok(());
        }
        login_page(&s).await?;
        s.add_virtual_authenticator().await?;
        let username = unique_name();
        s.type_into("passkey-username", &username).await?;
        s.click("passkey-register").await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        s.wait_for(
            "the new user on the dashboard",
            &format!("{} === '{username}'", text_of("connection-user")),
            TIMEOUT,
        )
        .await?;
        s.wait_for(
            "one passkey in the panel",
            "document.querySelectorAll('[data-testid=passkey-item]').length === 1",
            TIMEOUT,
        )
        .await?;
        sign_out(&s).await?;
        assert!(s.stored_token().await?.is_empty());
        passkey_sign_in(&s).await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        assert_eq!(s.path().await?, "/");
        assert!(!s.stored_token().await?.is_empty());
        // The sign-in is recorded.
        s.wait_for(
            "the passkey marked used",
            "(document.querySelector('[data-testid=passkey-item]')?.textContent ?? '').includes('last used')",
            TIMEOUT,
        )
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn failed_user_verification_shows_an_error_and_signs_nothing_in() {
    Session::run("passkey_uv_fails", |s: Arc<Session>| async move {
        if !ceremonies_run(&s) {
            return Ok(());
        }
        login_page(&s).await?;
        let authenticator = s.add_virtual_authenticator().await?;
        s.type_into("passkey-username", &unique_name()).await?;
        s.click("passkey-register").await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        sign_out(&s).await?;
        s.set_user_verified(&authenticator, false).await?;
        passkey_sign_in(&s).await?;
        s.wait_for(
            "the passkey error",
            &format!("({} ?? '').length > 0", text_of("passkey-error")),
            TIMEOUT,
        )
        .await?;
        let message = s.find("passkey-error").await?.text().await?;
        assert!(
            message.contains("cancelled") || message.contains("not accepted"),
            "{message}"
        );
        assert_eq!(s.path().await?, "/login");
        assert!(s.stored_token().await?.is_empty(), "nothing is signed in");
        // Verification works again: so does the sign-in.
        s.set_user_verified(&authenticator, true).await?;
        passkey_sign_in(&s).await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_password_account_adds_a_passkey_signs_in_with_it_and_deletes_it() {
    Session::run("passkey_added", |s: Arc<Session>| async move {
        if !ceremonies_run(&s) {
            return Ok(());
        }
        let (username, password) = s.server.new_user().await?;
        s.sign_in_localhost(&username, &password).await?;
        s.add_virtual_authenticator().await?;
        s.wait_for(
            "the empty passkey list",
            "document.querySelectorAll('[data-testid=passkey-item]').length === 0 \
             && document.querySelector('[data-testid=passkey-add]')?.disabled === false",
            TIMEOUT,
        )
        .await?;
        s.click("passkey-add").await?;
        s.wait_for(
            "the added passkey",
            "document.querySelectorAll('[data-testid=passkey-item]').length === 1",
            TIMEOUT,
        )
        .await?;
        sign_out(&s).await?;
        passkey_sign_in(&s).await?;
        s.wait_state("CONNECTED", TIMEOUT).await?;
        // Delete it: it no longer signs in.
        s.wait_for(
            "the passkey in the panel",
            "document.querySelectorAll('[data-testid=passkey-item]').length === 1",
            TIMEOUT,
        )
        .await?;
        s.click("passkey-delete").await?;
        s.wait_for(
            "the passkey gone",
            "document.querySelectorAll('[data-testid=passkey-item]').length === 0",
            TIMEOUT,
        )
        .await?;
        sign_out(&s).await?;
        passkey_sign_in(&s).await?;
        s.wait_for(
            "the passkey error",
            &format!("({} ?? '').length > 0", text_of("passkey-error")),
            TIMEOUT,
        )
        .await?;
        assert_eq!(s.path().await?, "/login");
        assert!(s.stored_token().await?.is_empty());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn sign_out_everywhere_sends_another_session_to_login() {
    Session::run("sign_out_everywhere", |s: Arc<Session>| async move {
        let (username, password) = s.server.new_user().await?;
        s.sign_in(&username, &password).await?;
        let other = s.other_browser("sign_out_everywhere").await?;
        other.sign_in(&username, &password).await?;
        s.click("sign-out-everywhere").await?;
        wait_path(&s, "/login").await?;
        other
            .wait_for(
                "the other session on /login",
                "location.pathname === '/login'",
                TIMEOUT,
            )
            .await?;
        assert_eq!(other.path().await?, "/login");
        assert_eq!(
            other
                .js("localStorage.getItem('tether.access_token') || ''")
                .await?
                .as_str(),
            Some(""),
            "the other browser's token is cleared"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn without_webauthn_the_passkey_buttons_are_disabled() {
    Session::run("passkey_unsupported", |s: Arc<Session>| async move {
        s.goto("/login").await?;
        let enabled = "document.querySelector('[data-testid=passkey-sign-in]')?.disabled === false \
             && document.querySelector('[data-testid=passkey-register]')?.disabled === false \
             && !document.querySelector('[data-testid=passkey-unsupported]')";
        s.wait_for("enabled passkey buttons", enabled, TIMEOUT)
            .await?;
        // Remove WebAuthn, then render the login page anew through the
        // router (/ redirects a signed-out visitor to /login): the support
        // check runs again and finds none.
        s.js("(() => { delete window.PublicKeyCredential; \
              history.pushState(null, '', '/'); \
              window.dispatchEvent(new PopStateEvent('popstate', { state: null })); \
              return typeof window.PublicKeyCredential; })()")
            .await?;
        s.wait_for(
            "the unsupported notice",
            "document.querySelector('[data-testid=passkey-unsupported]') \
             && location.pathname === '/login'",
            TIMEOUT,
        )
        .await?;
        let disabled = s
            .js("['passkey-sign-in', 'passkey-register'].map(id => \
                 document.querySelector(`[data-testid=${id}]`).disabled)")
            .await?;
        assert_eq!(disabled, serde_json::json!([true, true]));
        let notice = s.find("passkey-unsupported").await?.text().await?;
        assert!(notice.contains("does not support passkeys"), "{notice}");
        // The password form still works.
        assert_eq!(
            s.js("document.querySelector('[data-testid=login-submit]').disabled")
                .await?,
            serde_json::json!(false)
        );
        Ok(())
    })
    .await;
}
