//! The SSR example end to end: the reference server and the example's
//! server (both real, on free ports), the page in headless Chromium. The
//! server's HTML says INITIAL; after hydration the state reaches CONNECTED
//! against the reference server, and the page logged no error (a hydration
//! mismatch is logged, and panics).
//!
//! Needs the hydrate bundle in `target/ssr-site/pkg` (`examples/ssr/build`,
//! which `scripts/test` runs) and `target/debug/tether-server`.

use fantoccini::ClientBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child in its own process group, killed with its whole group on drop
/// (also when the test fails).
struct Process(Child);

impl Process {
    fn spawn(command: &mut Command) -> Result<Self> {
        let child = command
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        Ok(Self(child))
    }

    /// Starts a server that prints `listening on <url>`; returns it and the URL.
    fn server(command: &mut Command) -> Result<(Self, String)> {
        let mut process = Self::spawn(command.stdin(Stdio::null()).stdout(Stdio::piped()))?;
        let stdout = process.0.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let url = url.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.trim_end_matches('/').to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("{command:?} did not print `listening on` within 30 s"))?;
        Ok((process, url))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One plain HTTP/1.1 request; the status and the body. A request as the app's own page would send it: the reference server
/// refuses cookie and dev requests that are not JSON or not same-origin.
async fn http(method: &str, url: &str, body: Option<&Value>) -> Result<(u16, String)> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URL")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Sec-Fetch-Site: same-origin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
        .map_err(|_| format!("{method} {url}: no answer within 15 s"))??;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {url}: bad response {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::test]
async fn the_server_renders_initial_and_the_hydrated_page_connects() -> Result {
    let site = root().join("target/ssr-site");
    if !site.join("pkg/tether_example_ssr.js").is_file() {
        return Err("no hydrate bundle in target/ssr-site/pkg: run examples/ssr/build".into());
    }
    let reference = root().join("target/debug/tether-server");
    let (_reference, api) =
        Process::server(Command::new(&reference).args(["--addr", "127.0.0.1:0", "--dev"]))?;
    let socket = format!("{}/api/ws/notification", api.replacen("http", "ws", 1));
    let (_ssr, page) = Process::server(
        Command::new(env!("CARGO_BIN_EXE_tether-example-ssr"))
            .args(["--addr", "127.0.0.1:0", "--site"])
            .arg(&site)
            .args(["--socket", &socket]),
    )?;

    // The server's HTML: INITIAL, not signed in, and the hydrate script.
    let (status, html) = http("GET", &format!("{page}/"), None).await?;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"<strong id="state">INITIAL</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span id="signed-in">false</span>"#),
        "{html}"
    );
    assert!(
        html.contains("tether_example_ssr"),
        "no hydrate script: {html}"
    );

    // A user of the reference server and its token.
    let user = format!("ssr{}", std::process::id());
    let credentials = json!({"username": user, "password": "correct horse battery"});
    let (status, body) = http(
        "POST",
        &format!("{api}/api/admin/users"),
        Some(&credentials),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = http("POST", &format!("{api}/api/auth/login"), Some(&credentials)).await?;
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body)?;
    let token = token["access_token"].as_str().ok_or("no access_token")?;

    // Headless Chromium through chromedriver, on a free port.
    let port = free_port()?;
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
    let _driver = Process::spawn(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("chromedriver did not listen within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = std::env::temp_dir().join(format!("tether-ssr-{}", std::process::id()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": std::env::var("TETHER_E2E_CHROMIUM").unwrap_or("/usr/lib/chromium/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display())],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await?;
    let outcome = async {
        // The token in the fragment: the page signs in after hydration.
        client.goto(&format!("{page}/#token={token}")).await?;
        let js = |expr: String| {
            let client = client.clone();
            async move { client.execute(&format!("return ({expr});"), vec![]).await }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = js("document.getElementById('state').textContent".into()).await?;
            if state == "CONNECTED" {
                break;
            }
            if Instant::now() > deadline {
                let errors = js("window.__errors".into()).await?;
                return Err(format!("state {state} after 30 s; page errors {errors}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let errors = js("window.__errors".into()).await?;
        assert_eq!(errors, json!([]), "the page logged errors (hydration?)");
        let states = js("document.querySelectorAll('#state').length".into()).await?;
        assert_eq!(states, json!(1), "hydrated in place, not rendered twice");
        let signed_in = js("document.getElementById('signed-in').textContent".into()).await?;
        assert_eq!(signed_in, "true");
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    let _ = client.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
