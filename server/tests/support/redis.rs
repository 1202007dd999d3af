//! A real `redis-server` for one test: started on a free port of 127.0.0.1
//! with no persistence (`--save '' --appendonly no`, a fresh temporary
//! `--dir`), ready once it answers `PING`, and killed by PID when the guard
//! drops (also when the test panics: panics unwind).
//!
//! Include it from a test crate with
//! `#[path = "support/redis.rs"] mod redis_server;` (it uses only `std`).

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary (Debian's package installs it there; `TETHER_REDIS_SERVER`
/// overrides).
fn binary() -> String {
    std::env::var("TETHER_REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".to_owned())
}

/// Longest wait for a started server to answer `PING`.
const READY: Duration = Duration::from_secs(10);

/// A running `redis-server` owned by the test.
#[derive(Debug)]
pub struct RedisServer {
    /// `redis://127.0.0.1:<port>/`.
    pub url: String,
    /// Its TCP port.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then closed).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Whether a server answers `PING` with `+PONG` on `port`.
fn pong(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` cannot be started (after a few ports were tried).
    pub fn start() -> Self {
        let mut nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for _ in 0..5 {
            let port = free_port();
            nanos += 1;
            let dir = std::env::temp_dir().join(format!(
                "tether-redis-{}-{port}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let mut server = Self {
                url: format!("redis://127.0.0.1:{port}/"),
                port,
                child: None,
                dir,
            };
            if server.spawn() {
                return server;
            }
            // Another process took the port between the probe and the
            // start: try another one (Drop cleans this attempt up).
        }
        panic!("redis-server ({}) did not start on any port", binary());
    }

    /// Starts the process on `self.port`; `true` once it answers `PING`,
    /// `false` if it exited (the port was taken).
    fn spawn(&mut self) -> bool {
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary()));
        self.child = Some(child);
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if pong(self.port) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and starts a new, empty one on the same
    /// port: what clients see when Redis restarts without its data.
    ///
    /// # Panics
    /// If it cannot start again.
    pub fn restart_empty(&mut self) {
        self.stop();
        let deadline = Instant::now() + READY;
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
