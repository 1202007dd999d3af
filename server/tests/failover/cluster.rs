//! Two real `tether-server` processes on one real `redis-server`, behind
//! the round-robin [`Proxy`]: what a deployment of several instances
//! looks like, on loopback. Every process is stopped by PID when its guard
//! drops, also when a test fails (panics unwind).

use crate::proxy::Proxy;
use crate::redis::RedisServer;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for one expected event (a frame, a reconnect, a process).
pub const WAIT: Duration = Duration::from_secs(10);

/// A `tether-server` process (`--dev`), killed and reaped when dropped.
#[derive(Debug)]
pub struct Instance {
    /// `A` or `B`: the name in logs and messages.
    pub name: &'static str,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its stderr (the logs), under the target dir's tmp.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    /// Starts `tether-server --dev --addr 127.0.0.1:0 --redis-url <url>
    /// --redis-prefix <prefix> --jwt-secret <secret>` and waits for its
    /// `listening on` line.
    fn start(name: &'static str, test: &str, redis_url: &str, prefix: &str, secret: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("failover-logs");
        std::fs::create_dir_all(&dir).expect("the log dir");
        let log = dir.join(format!("{test}.{name}.log"));
        let stderr = std::fs::File::create(&log).expect("the log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether-server"))
            .args(["--dev", "--addr", "127.0.0.1:0", "--redis-url", redis_url])
            .args(["--redis-prefix", prefix])
            .env("TETHER_JWT_SECRET", secret)
            .env("RUST_LOG", "info,tether_server=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("tether-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut instance = Self {
            name,
            addr: "127.0.0.1:0".parse().expect("an address"),
            log,
            child: Some(child),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the address, then drains stdout until the process exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(WAIT) {
            Ok(addr) => instance.addr = addr.parse().expect("a socket address"),
            Err(_) => panic!(
                "instance {name} printed no `listening on` within {WAIT:?}; its log:\n{}",
                instance.log_tail()
            ),
        }
        instance
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL (`Child::kill` on Unix), then reaps it: no shutdown, no
    /// close frames, sockets reset as when a machine dies.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has not been killed.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last lines of its log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- instance {} ({}), log {}:\n{}",
                self.name,
                self.addr,
                self.log.display(),
                self.log_tail()
            );
        }
        self.kill();
    }
}

/// A random hex string (a prefix, a secret, a name).
pub fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One Redis, two instances sharing a random prefix and JWT secret, and a
/// proxy in front of them (`a` first).
pub struct Cluster {
    /// The shared store.
    pub redis: RedisServer,
    /// Instance A (the proxy's first backend).
    pub a: Instance,
    /// Instance B.
    pub b: Instance,
    /// The round-robin proxy in front of A and B.
    pub proxy: Proxy,
    /// HTTP client that sends `Sec-Fetch-Site: same-origin` (as the SPA's
    /// page), without connection reuse, so each call picks its target.
    pub http: reqwest::Client,
}

impl Cluster {
    /// Starts Redis, A, B and the proxy; `test` names the log files.
    pub async fn start(test: &str) -> Self {
        let redis = RedisServer::start();
        let prefix = format!("failover-{}:", random_hex());
        let secret = random_hex();
        let a = Instance::start("A", test, &redis.url, &prefix, &secret);
        let b = Instance::start("B", test, &redis.url, &prefix, &secret);
        let proxy = Proxy::start(vec![a.addr, b.addr])
            .await
            .expect("the proxy starts");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "sec-fetch-site",
            reqwest::header::HeaderValue::from_static("same-origin"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(0)
            .timeout(WAIT)
            .build()
            .expect("an HTTP client");
        Self {
            redis,
            a,
            b,
            proxy,
            http,
        }
    }

    /// `ws://<proxy>/api/ws/notification`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/ws/notification", self.proxy.addr)
    }

    /// `POST <instance><path>` with a JSON body: the status and the body
    /// (`null` when it is not JSON).
    pub async fn post(
        &self,
        on: &Instance,
        path: &str,
        body: Value,
        bearer: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.post(on.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!("POST {path} on {}: {e}", on.name);
        });
        split(response).await
    }

    /// `DELETE <instance><path>` with a bearer token.
    pub async fn delete(&self, on: &Instance, path: &str, bearer: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(on.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {path} on {}: {e}", on.name));
        split(response).await
    }

    /// `GET <instance><path>`: status and JSON body.
    pub async fn get(&self, on: &Instance, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(on.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", on.name));
        split(response).await
    }

    /// Creates a user through `on`'s admin route; returns its name.
    pub async fn new_user(&self, on: &Instance) -> String {
        let name = format!("u-{}", random_hex());
        let (status, body) = self
            .post(
                on,
                "/api/admin/users",
                json!({"username": name, "password": "pw"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "create user on {}: {body}", on.name);
        name
    }

    /// Logs `username` (made by [`new_user`](Self::new_user)) in on `on`;
    /// returns the access token.
    pub async fn login(&self, on: &Instance, username: &str) -> String {
        self.login_with(on, username, "pw").await
    }

    /// Logs `username` in with `password` on `on`; returns the access token.
    pub async fn login_with(&self, on: &Instance, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                on,
                "/api/auth/login",
                json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, 200, "login on {}: {body}", on.name);
        body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }

    /// Creates a room owned by `token`'s user with `members`, through
    /// `on`; returns `(room id, topic)`.
    pub async fn room(&self, on: &Instance, token: &str, members: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                on,
                "/api/rooms",
                json!({"name": "failover", "members": members}),
                Some(token),
            )
            .await;
        assert_eq!(status, 201, "create room on {}: {body}", on.name);
        let id = body["id"].as_str().expect("a room id").to_owned();
        let topic = format!("room:{id}");
        (id, topic)
    }

    /// The usernames of the authenticated sockets on `on`.
    pub async fn sockets_on(&self, on: &Instance) -> Vec<String> {
        let (status, body) = self.get(on, "/api/admin/connections").await;
        assert_eq!(status, 200, "connections on {}: {body}", on.name);
        body.as_array()
            .expect("an array of connections")
            .iter()
            .filter_map(|c| c["username"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until `username` has an authenticated socket on `on`.
    pub async fn wait_socket_on(&self, on: &Instance, username: &str) {
        poll(&format!("{username}'s socket on {}", on.name), || async {
            self.sockets_on(on).await.iter().any(|u| u == username)
        })
        .await;
    }
}

async fn split(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `condition` every 20 ms until it holds, at most [`WAIT`]; panics
/// naming `what` otherwise.
pub async fn poll<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
