//! Harness of the end-to-end tests: each [`Session`] starts its own
//! reference server (serving the built SPA with `--static-dir`), its own
//! WebDriver (chromedriver or geckodriver, on a free port) and one headless
//! browser, and stops all of them by PID when it is dropped, also when a test
//! fails.
//!
//! Which browser: `TETHER_E2E_BROWSER=chromium|firefox` (default chromium).
//! Paths, all optional: `TETHER_E2E_DIST` (the built SPA, default `dist/`),
//! `TETHER_E2E_SERVER` (default `target/debug/tether-server`),
//! `CHROMEDRIVER`, `GECKODRIVER`, `TETHER_E2E_CHROMIUM`, `TETHER_E2E_FIREFOX`;
//! extra Chromium flags in `TETHER_E2E_CHROMIUM_ARGS`.
//! `tests/e2e/run` builds the SPA and the server, then runs the tests in both
//! browsers.
//!
//! Conditions are awaited by polling the page with a bounded timeout
//! ([`Session::wait_for`]), never with fixed sleeps.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a test returns; any error fails it.
pub type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The default bound of [`Session::wait_for`].
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The headless browser the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// Chromium through chromedriver.
    Chromium,
    /// Firefox (ESR) through geckodriver.
    Firefox,
}

impl Browser {
    /// From `TETHER_E2E_BROWSER` (default chromium).
    pub fn from_env() -> Self {
        match std::env::var("TETHER_E2E_BROWSER").as_deref() {
            Ok("firefox") => Self::Firefox,
            Ok("chromium") | Ok("chrome") | Ok("") | Err(_) => Self::Chromium,
            Ok(other) => panic!("TETHER_E2E_BROWSER={other}: expected chromium or firefox"),
        }
    }

    /// `chromium` or `firefox`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chromium => "chromium",
            Self::Firefox => "firefox",
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_path(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

/// The first of `names` found on PATH (or in ~/.cargo/bin).
fn which(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A unique name for this process and call.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{}x{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free TCP port on 127.0.0.1 (free when asked; the driver binds it next).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Part of the error of a driver that exited before it listened.
const PORT_TAKEN: &str = "was its port taken";

/// `target/e2e-logs/<name>.log`.
fn log_path(name: &str) -> PathBuf {
    root().join("target/e2e-logs").join(format!("{name}.log"))
}

/// Where servers and drivers write their logs: `target/e2e-logs/`.
fn log_file(name: &str) -> std::io::Result<File> {
    let path = log_path(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path)
}

/// A child process in its own process group, killed with the whole group
/// (the driver and the browser it started) when dropped.
#[derive(Debug)]
struct Process {
    child: Child,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({command:?}): {e}"))?;
        Ok(Self { child })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.child.id();
        // The group's id is the child's pid (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The reference server, serving the SPA and `/api` on one origin (or,
/// with [`Cluster`], the proxy in front of several).
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server's process; `None` for a front whose processes something
    /// else owns ([`Cluster`]).
    _process: Option<Process>,
}

impl Server {
    /// What the browser talks to at `url` (a proxy), without a process.
    fn front(url: String) -> Self {
        Self {
            url,
            _process: None,
        }
    }

    /// Starts `tether-server --addr 127.0.0.1:0 --dev --static-dir <dist>`
    /// and waits for its `listening on` line.
    pub fn start(log_name: &str) -> Result<Self> {
        Self::start_with(log_name, &[])
    }

    /// [`start`](Self::start) with extra flags, e.g. `["--token-ttl", "12"]`.
    pub fn start_with(log_name: &str, extra: &[&str]) -> Result<Self> {
        let binary = env_path("TETHER_E2E_SERVER", || {
            root().join("target/debug/tether-server")
        });
        let dist = env_path("TETHER_E2E_DIST", || root().join("dist"));
        if !binary.is_file() {
            return Err(format!(
                "no server binary at {}: run tests/e2e/run (or cargo build -p tether-server)",
                binary.display()
            )
            .into());
        }
        if !dist.join("index.html").is_file() {
            return Err(format!(
                "no built SPA at {}: run tests/e2e/run (or trunk build --release)",
                dist.display()
            )
            .into());
        }
        let mut process = Process::spawn(
            "tether-server",
            Command::new(&binary)
                .args(["--addr", "127.0.0.1:0", "--dev", "--static-dir"])
                .arg(&dist)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file(&format!("{log_name}.server"))?),
        )?;
        let stdout = process.child.stdout.take().ok_or("no server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the address, then keeps draining stdout until the server exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the server did not print `listening on` within 30 s")?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            _process: Some(process),
        })
    }

    /// `GET <path>`: the status and the body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        self.request("GET", path, None, None).await
    }

    /// `POST <path>` with a JSON body (and an optional bearer token); the
    /// status and the body.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
    ) -> Result<(u16, String)> {
        self.request("POST", path, Some(body), bearer).await
    }

    /// One HTTP/1.1 request on a fresh connection.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<(u16, String)> {
        let authority = self
            .url
            .strip_prefix("http://")
            .ok_or("the server URL is not http://")?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let content_type = if method == "POST" {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{content_type}\
             Sec-Fetch-Site: same-origin\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(authority).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(Duration::from_secs(15), exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within 15 s"))??;
        let response = String::from_utf8_lossy(&response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: bad response {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// `POST <path>` that must answer 2xx.
    pub async fn admin(&self, path: &str, body: Value) -> Result<String> {
        let (status, text) = self.post(path, &body, None).await?;
        if !(200..300).contains(&status) {
            return Err(format!("POST {path} {body}: HTTP {status} {text}").into());
        }
        Ok(text)
    }

    /// Creates a fresh user; returns its name and password.
    pub async fn new_user(&self) -> Result<(String, String)> {
        let username = unique("e2e");
        let password = "correct horse battery".to_owned();
        self.admin(
            "/api/admin/users",
            json!({"username": username, "password": password}),
        )
        .await?;
        Ok((username, password))
    }

    /// Sends a notification to `username`.
    pub async fn notify(&self, username: &str, title: &str) -> Result {
        self.admin(
            "/api/admin/notify",
            json!({"username": username, "title": title, "body": format!("body of {title}")}),
        )
        .await?;
        Ok(())
    }
}

/// A WebDriver process and a browser session on it.
#[derive(Debug)]
struct Driver {
    client: Client,
    _process: Process,
    _profile: Option<TempDir>,
}

impl Driver {
    /// Starts the driver on a free port. A port picked free can be taken
    /// by another process before the driver binds it (tests run in
    /// parallel): then the driver exits and is started again on another.
    async fn start(browser: Browser, log_name: &str) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(browser, log_name).await {
                Err(e) if attempt < 3 && e.to_string().contains(PORT_TAKEN) => attempt += 1,
                other => return other,
            }
        }
    }

    async fn start_once(browser: Browser, log_name: &str) -> Result<Self> {
        let port = free_port()?;
        let log_name = format!("{log_name}.{}", browser.name());
        let log = log_file(&log_name)?;
        let (binary, profile, caps) = match browser {
            Browser::Chromium => {
                let driver = env_path("CHROMEDRIVER", || {
                    which(&["chromedriver"]).unwrap_or_else(|| "/usr/bin/chromedriver".into())
                });
                let profile = TempDir::new("tether-e2e-chromium-")?;
                let binary = env_path("TETHER_E2E_CHROMIUM", || {
                    "/usr/lib/chromium/chromium".into()
                });
                let mut args = vec![
                    "--headless=new".to_owned(),
                    "--no-sandbox".into(),
                    "--disable-dev-shm-usage".into(),
                    "--disable-gpu".into(),
                    "--disable-quic".into(),
                    "--no-first-run".into(),
                    "--disable-background-networking".into(),
                    "--disable-component-update".into(),
                    "--disable-sync".into(),
                    "--window-size=1280,900".into(),
                    format!("--user-data-dir={}", profile.0.display()),
                ];
                // Extra flags, e.g. `--force-dark-mode` to look at the dark theme.
                if let Ok(extra) = std::env::var("TETHER_E2E_CHROMIUM_ARGS") {
                    args.extend(extra.split_whitespace().map(str::to_owned));
                }
                let caps = json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": binary,
                        "args": args,
                    },
                });
                (driver, Some(profile), caps)
            }
            Browser::Firefox => {
                let driver = env_path("GECKODRIVER", || {
                    which(&["geckodriver"]).unwrap_or_else(|| "geckodriver".into())
                });
                let binary = env_path("TETHER_E2E_FIREFOX", || {
                    which(&["firefox-esr", "firefox"]).unwrap_or_else(|| "firefox".into())
                });
                let caps = json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {
                        "binary": binary,
                        "args": ["-headless", "-width=1280", "-height=900"],
                        "prefs": {
                            "network.proxy.type": 0,
                            "app.update.enabled": false,
                            "browser.shell.checkDefaultBrowser": false,
                            "datareporting.policy.dataSubmissionEnabled": false,
                            "toolkit.telemetry.enabled": false,
                        },
                    },
                });
                (driver, None, caps)
            }
        };
        let mut command = Command::new(&binary);
        command.arg(format!("--port={port}"));
        if browser == Browser::Firefox {
            // Keep geckodriver's own profile dirs under a directory we remove.
            command.env("TMPDIR", std::env::temp_dir());
        }
        let mut process = Process::spawn(
            browser.name(),
            command
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        // Ready when the driver's own log names the port (chromedriver: "...
        // started successfully on port P", geckodriver: "Listening on
        // 127.0.0.1:P") and the port answers: a connect alone could reach
        // another process that took the port first.
        let deadline = Instant::now() + Duration::from_secs(30);
        let says_port = || {
            std::fs::read_to_string(log_path(&log_name))
                .is_ok_and(|text| text.contains(&format!("{port}")))
        };
        while !says_port() || TcpStream::connect(("127.0.0.1", port)).is_err() {
            if process.child.try_wait()?.is_some() {
                return Err(format!("{} exited: {PORT_TAKEN} {port}?", binary.display()).into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on port {port} within 30 s",
                    binary.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| format!("cannot start a {} session: {e}", browser.name()))?;
        Ok(Self {
            client,
            _process: process,
            _profile: profile,
        })
    }
}

/// One test's world: a server, a browser, and helpers to drive the SPA.
#[derive(Debug)]
pub struct Session {
    /// The reference server (also serving the SPA); shared by the two
    /// sessions of [`run_pair`](Self::run_pair).
    pub server: Arc<Server>,
    /// The browser.
    pub client: Client,
    /// Which browser.
    pub browser: Browser,
    driver: Option<Driver>,
}

impl Session {
    /// Runs `test` in a fresh session named after the test, then ends the
    /// browser session and stops every process, whether the test passed,
    /// failed or panicked.
    pub async fn run<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result> + Send + 'static,
    {
        Self::run_with(name, &[], test).await;
    }

    /// [`run`](Self::run) against a server started with extra flags.
    pub async fn run_with<F, Fut>(name: &str, server_flags: &[&str], test: F)
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result> + Send + 'static,
    {
        let browser = Browser::from_env();
        let log_name = format!("{name}.{}", browser.name());
        let session = match Self::start(browser, &log_name, server_flags).await {
            Ok(session) => session,
            Err(e) => panic!("[{}] {name}: setup failed: {e}", browser.name()),
        };
        let session = Arc::new(session);
        let outcome = tokio::spawn(test(session.clone())).await;
        // Close the browser session first so the driver can tidy up; the
        // processes are killed when `session` is dropped, right after.
        let _ = tokio::time::timeout(Duration::from_secs(10), session.client.clone().close()).await;
        drop(session);
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("[{}] {name}: {e}", browser.name()),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => panic!("[{}] {name}: {join}", browser.name()),
        }
    }

    /// Runs `test` with two browser sessions (two users, say) on one
    /// server, then ends both and stops every process, as [`run`](Self::run).
    pub async fn run_pair<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(Arc<Session>, Arc<Session>) -> Fut,
        Fut: std::future::Future<Output = Result> + Send + 'static,
    {
        let browser = Browser::from_env();
        let log_name = format!("{name}.{}", browser.name());
        let start = async {
            let server = Arc::new(Server::start(&log_name)?);
            let first = Self::on(server.clone(), browser, &format!("{log_name}.1")).await?;
            let second = Self::on(server, browser, &format!("{log_name}.2")).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((first, second))
        };
        let (first, second) = match start.await {
            Ok(pair) => pair,
            Err(e) => panic!("[{}] {name}: setup failed: {e}", browser.name()),
        };
        let (first, second) = (Arc::new(first), Arc::new(second));
        let outcome = tokio::spawn(test(first.clone(), second.clone())).await;
        for session in [&first, &second] {
            let _ =
                tokio::time::timeout(Duration::from_secs(10), session.client.clone().close()).await;
        }
        drop((first, second));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("[{}] {name}: {e}", browser.name()),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => panic!("[{}] {name}: {join}", browser.name()),
        }
    }

    /// Runs `test` in a browser session on a [`Cluster`]: the SPA and
    /// `/api` through the proxy in front of two instances on one Redis.
    /// Stops everything afterwards, as [`run`](Self::run).
    pub async fn run_cluster<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(Arc<Session>, Arc<Cluster>) -> Fut,
        Fut: std::future::Future<Output = Result> + Send + 'static,
    {
        let browser = Browser::from_env();
        let log_name = format!("{name}.{}", browser.name());
        let start = async {
            let cluster = Cluster::start(&log_name).await?;
            let session = Self::on(Arc::new(cluster.front()), browser, &log_name).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((session, cluster))
        };
        let (session, cluster) = match start.await {
            Ok(started) => started,
            Err(e) => panic!("[{}] {name}: setup failed: {e}", browser.name()),
        };
        let (session, cluster) = (Arc::new(session), Arc::new(cluster));
        let outcome = tokio::spawn(test(session.clone(), cluster.clone())).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), session.client.clone().close()).await;
        drop(session);
        drop(cluster);
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("[{}] {name}: {e}", browser.name()),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => panic!("[{}] {name}: {join}", browser.name()),
        }
    }

    async fn start(browser: Browser, log_name: &str, server_flags: &[&str]) -> Result<Self> {
        let server = Arc::new(Server::start_with(log_name, server_flags)?);
        Self::on(server, browser, log_name).await
    }

    /// A browser session on `server`.
    async fn on(server: Arc<Server>, browser: Browser, log_name: &str) -> Result<Self> {
        let driver = Driver::start(browser, log_name).await?;
        Ok(Self {
            server,
            client: driver.client.clone(),
            browser,
            driver: Some(driver),
        })
    }

    /// The absolute URL of an SPA path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    /// Opens an SPA path.
    pub async fn goto(&self, path: &str) -> Result {
        self.client.goto(&self.url(path)).await?;
        Ok(())
    }

    /// Evaluates a JavaScript expression in the page.
    pub async fn js(&self, expression: &str) -> Result<Value> {
        Ok(self
            .client
            .execute(&format!("return ({expression});"), vec![])
            .await?)
    }

    /// Polls the JavaScript `expression` until it is truthy, at most
    /// `timeout`; the error names `what` and the last value seen.
    pub async fn wait_for(&self, what: &str, expression: &str, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.js(&format!("!!({expression})")).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(value) => value,
                // A navigation in progress can make a script fail: retry.
                Err(e) => Value::String(e.to_string()),
            };
            if Instant::now() > deadline {
                let state = self.state().await.unwrap_or_else(|e| format!("<{e}>"));
                let path = self.path().await.unwrap_or_else(|e| format!("<{e}>"));
                // The dashboard's newest events say what the manager was doing.
                let events = self
                    .js("Array.from(document.querySelectorAll('[data-testid=event]')).slice(0, 8).map(e => e.textContent.trim()).join(' | ')")
                    .await
                    .unwrap_or_default();
                let errors = self
                    .js("(window.__tetherErrors || []).join(' | ') + ' [visibility ' + document.visibilityState + ', focus ' + document.hasFocus() + ']'")
                    .await
                    .unwrap_or_default();
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what} (last value {last}; \
                     page {path}, connection state {state:?}; newest events: {events}; \
                     page errors: {errors})"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the connection badge ("" when not on the dashboard).
    pub async fn state(&self) -> Result<String> {
        Ok(self
            .js(&format!("{} ?? ''", text_of("connection-state")))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Waits until the badge reads `state`.
    pub async fn wait_state(&self, state: &str, timeout: Duration) -> Result {
        self.wait_for(
            &format!("the connection state {state}"),
            &format!("{} === '{state}'", text_of("connection-state")),
            timeout,
        )
        .await
    }

    /// The first element with this `data-testid`.
    pub async fn find(&self, id: &str) -> Result<Element> {
        let css = format!("[data-testid=\"{id}\"]");
        Ok(self.client.find(Locator::Css(&css)).await?)
    }

    /// Types `text` into the element with this `data-testid`.
    pub async fn type_into(&self, id: &str, text: &str) -> Result {
        let element = self.find(id).await?;
        element.clear().await?;
        element.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element with this `data-testid`.
    pub async fn click(&self, id: &str) -> Result {
        self.find(id).await?.click().await?;
        Ok(())
    }

    /// The page's path.
    pub async fn path(&self) -> Result<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// Types into and submits the login form (the page must be /login).
    pub async fn submit_login(&self, username: &str, password: &str) -> Result {
        self.wait_for(
            "the login form",
            "document.querySelector('[data-testid=login-submit]')",
            TIMEOUT,
        )
        .await?;
        self.type_into("login-username", username).await?;
        self.type_into("login-password", password).await?;
        self.click("login-submit").await
    }

    /// Signs in as `username` through the form and waits for CONNECTED.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result {
        self.goto("/login").await?;
        self.submit_login(username, password).await?;
        self.wait_state("CONNECTED", TIMEOUT).await
    }

    /// A fresh user, signed in, on a CONNECTED dashboard.
    pub async fn signed_in_user(&self) -> Result<String> {
        let (username, password) = self.server.new_user().await?;
        self.sign_in(&username, &password).await?;
        Ok(username)
    }

    /// Notifications on the page, as their `seq`s, in page order.
    pub async fn notification_seqs(&self) -> Result<Vec<u64>> {
        let value = self
            .js("Array.from(document.querySelectorAll('[data-testid=notification]')).map(e => Number(e.dataset.seq))")
            .await?;
        Ok(value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default())
    }

    /// Waits until `count` notifications are shown.
    pub async fn wait_notifications(&self, count: usize) -> Result {
        self.wait_for(
            &format!("{count} notifications"),
            &format!("document.querySelectorAll('[data-testid=notification]').length === {count}"),
            TIMEOUT,
        )
        .await
    }

    /// The page shows exactly `expected` (by seq, newest first), and each
    /// was delivered once (the page counts raw deliveries in `data-received`).
    pub async fn assert_notifications_once(&self, expected: &[u64]) -> Result {
        assert_eq!(
            self.notification_seqs().await?,
            expected,
            "notifications on the page (by seq)"
        );
        let received = self
            .js("document.querySelector('.notes')?.dataset.received")
            .await?;
        assert_eq!(
            received.as_str(),
            Some(expected.len().to_string().as_str()),
            "notification events delivered to the page"
        );
        Ok(())
    }

    /// Fires the window's `offline` or `online` event.
    pub async fn network(&self, event: &str) -> Result {
        self.js(&format!(
            "window.dispatchEvent(new Event('{event}')) || true"
        ))
        .await?;
        Ok(())
    }

    /// Starts recording every text the connection badge shows, from now
    /// on, into `window.__tetherStates` (until the page reloads).
    pub async fn record_states(&self) -> Result {
        self.js("(() => {
                // Also keep page errors and console.error (a Rust panic
                // reports there), for the timeout message.
                if (!window.__tetherErrors) {
                    const errors = window.__tetherErrors = [];
                    window.addEventListener('error', e => errors.push(String(e.message)));
                    window.addEventListener('unhandledrejection', e => errors.push(String(e.reason)));
                    const original = console.error;
                    console.error = (...args) => { errors.push(args.join(' ')); original(...args); };
                }
                const seen = window.__tetherStates = [];
                const read = () => {
                    const el = document.querySelector('[data-testid=connection-state]');
                    const text = el ? el.textContent : '';
                    if (seen[seen.length - 1] !== text) seen.push(text);
                };
                read();
                if (window.__tetherObserver) window.__tetherObserver.disconnect();
                window.__tetherObserver = new MutationObserver(read);
                window.__tetherObserver.observe(document.body,
                    { subtree: true, childList: true, characterData: true });
                return true;
            })()")
            .await?;
        Ok(())
    }

    /// The badge texts recorded since [`record_states`](Self::record_states).
    pub async fn recorded_states(&self) -> Result<Vec<String>> {
        let value = self.js("window.__tetherStates || []").await?;
        Ok(value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The stored access token ("" when none).
    pub async fn stored_token(&self) -> Result<String> {
        Ok(self
            .js("localStorage.getItem('tether.access_token') || ''")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &Path) -> Result {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Kills the driver's process group (driver and browser), then the
        // server (field order), then removes the browser profile.
        drop(self.driver.take());
    }
}

/// JavaScript for the text of the first element with this `data-testid`
/// (`undefined` when there is none).
pub fn text_of(id: &str) -> String {
    format!("document.querySelector('[data-testid=\"{id}\"]')?.textContent")
}

pub mod cluster;
pub mod passkeys;

pub use cluster::Cluster;
