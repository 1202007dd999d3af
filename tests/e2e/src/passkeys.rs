//! Passkey helpers: the SPA on `localhost` (browsers refuse WebAuthn on an
//! IP address; the server's default `--rp-origin` is
//! `http://localhost:<its port>`), chromedriver's virtual authenticator
//! (WebDriver's `POST /session/{id}/webauthn/authenticator`, a custom
//! fantoccini command), and a second browser for the same user.
//!
//! geckodriver's virtual authenticator is broken (it forwards snake_case
//! keys that Firefox rejects): ceremonies run in Chromium only.

use super::{Browser, Driver, Result, Session, TIMEOUT};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `POST /session/{id}/webauthn/<path>` with a JSON body.
#[derive(Debug)]
struct WebAuthn {
    path: String,
    body: Value,
}

impl WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

impl Session {
    /// The absolute URL of an SPA path on `localhost`.
    pub fn localhost_url(&self, path: &str) -> String {
        self.url(path).replacen("127.0.0.1", "localhost", 1)
    }

    /// Opens an SPA path on `localhost`.
    pub async fn goto_localhost(&self, path: &str) -> Result {
        self.client.goto(&self.localhost_url(path)).await?;
        Ok(())
    }

    /// Signs in with a password on `localhost` and waits for CONNECTED.
    pub async fn sign_in_localhost(&self, username: &str, password: &str) -> Result {
        self.goto_localhost("/login").await?;
        self.submit_login(username, password).await?;
        self.wait_state("CONNECTED", TIMEOUT).await
    }

    /// Adds a virtual platform authenticator (CTAP2, internal transport,
    /// resident keys, user verification that succeeds); its id. Chromium
    /// only.
    pub async fn add_virtual_authenticator(&self) -> Result<String> {
        if self.browser != Browser::Chromium {
            return Err("virtual authenticators are driven in Chromium only".into());
        }
        let answer = self
            .client
            .issue_cmd(WebAuthn {
                path: "authenticator".into(),
                body: json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true,
                }),
            })
            .await?;
        answer
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no authenticator id in {answer}").into())
    }

    /// Makes the authenticator's user verification succeed or fail.
    pub async fn set_user_verified(&self, authenticator: &str, verified: bool) -> Result {
        self.client
            .issue_cmd(WebAuthn {
                path: format!("authenticator/{authenticator}/uv"),
                body: json!({ "isUserVerified": verified }),
            })
            .await?;
        Ok(())
    }

    /// Starts a second browser (own driver and profile: nothing shared
    /// with the first but the server), stopped when dropped.
    pub async fn other_browser(&self, name: &str) -> Result<OtherBrowser> {
        let log_name = format!("{name}.other.{}", self.browser.name());
        let driver = Driver::start(self.browser, &log_name).await?;
        Ok(OtherBrowser {
            client: driver.client.clone(),
            base: self.server.url.clone(),
            _driver: driver,
        })
    }
}

/// A second browser on the same server.
#[derive(Debug)]
pub struct OtherBrowser {
    /// Its WebDriver session.
    pub client: Client,
    base: String,
    _driver: Driver,
}

impl OtherBrowser {
    /// Evaluates a JavaScript expression in its page.
    pub async fn js(&self, expression: &str) -> Result<Value> {
        Ok(self
            .client
            .execute(&format!("return ({expression});"), vec![])
            .await?)
    }

    /// Polls `expression` until it is truthy, at most `timeout`.
    pub async fn wait_for(&self, what: &str, expression: &str, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.js(&format!("!!({expression})")).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(value) => value.to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "other browser: timed out after {timeout:?} waiting for {what} (last {last})"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in with a password and waits for CONNECTED.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result {
        self.client.goto(&format!("{}/login", self.base)).await?;
        self.wait_for(
            "the login form",
            "document.querySelector('[data-testid=login-submit]')",
            TIMEOUT,
        )
        .await?;
        for (id, text) in [("login-username", username), ("login-password", password)] {
            let input = self
                .client
                .find(Locator::Css(&format!("[data-testid=\"{id}\"]")))
                .await?;
            input.send_keys(text).await?;
        }
        self.client
            .find(Locator::Css("[data-testid=\"login-submit\"]"))
            .await?
            .click()
            .await?;
        self.wait_for(
            "CONNECTED",
            &format!("{} === 'CONNECTED'", super::text_of("connection-state")),
            TIMEOUT,
        )
        .await
    }

    /// The page's path.
    pub async fn path(&self) -> Result<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }
}
