//! A small round-robin TCP proxy: a stand-in for the load balancer in front
//! of several `tether-server` instances (no sticky sessions).
//!
//! It accepts on 127.0.0.1 and pipes each connection, bytes both ways, to
//! the next backend in turn, skipping backends that refuse the connection
//! (a killed instance). When either side closes or fails, both sides of
//! that connection are closed, as a load balancer does when a backend dies.
//!
//! Used in-process by the failover tests (server/tests/failover.rs, the
//! browser test in tests/e2e) and as `examples/tether-proxy.rs` by
//! `scripts/dev --redis`. Only tokio and std.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Longest wait for one backend to accept before trying the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the proxy shares between its accept loop and its handle.
#[derive(Debug)]
struct Routes {
    backends: Vec<SocketAddr>,
    /// The backend the next connection tries first.
    next: AtomicUsize,
    /// For each connection accepted, in order: the index of the backend it
    /// was piped to, or `None` when every backend refused.
    history: Mutex<Vec<Option<usize>>>,
}

impl Routes {
    /// Connects to the next backend that accepts, starting at the
    /// round-robin position; returns it and its index.
    async fn connect(&self) -> Option<(usize, TcpStream)> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.backends.len() {
            let index = (start + i) % self.backends.len();
            let attempt =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.backends[index]))
                    .await;
            if let Ok(Ok(stream)) = attempt {
                return Some((index, stream));
            }
        }
        None
    }
}

/// A running proxy; dropping it stops it and closes every connection it
/// holds.
#[derive(Debug)]
pub struct Proxy {
    /// The address clients connect to (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    routes: Arc<Routes>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `backends` (in this
    /// order: the first connection goes to `backends[0]`).
    pub async fn start(backends: Vec<SocketAddr>) -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0".parse().expect("a socket address"), backends).await
    }

    /// Starts a proxy on `listen` in front of `backends`.
    pub async fn bind(listen: SocketAddr, backends: Vec<SocketAddr>) -> std::io::Result<Self> {
        assert!(!backends.is_empty(), "a proxy needs at least one backend");
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let routes = Arc::new(Routes {
            backends,
            next: AtomicUsize::new(0),
            history: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, routes.clone()));
        Ok(Self {
            addr,
            routes,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// For every connection accepted so far, in order, the index of the
    /// backend it went to (`None`: every backend refused it).
    pub fn history(&self) -> Vec<Option<usize>> {
        self.routes.history.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task (and closes both of its sockets).
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, routes: Arc<Routes>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((client, _)) => {
                        connections.spawn(pipe(client, routes.clone()));
                    }
                    // Out of file descriptors, say: back off a little
                    // rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn pipe(mut client: TcpStream, routes: Arc<Routes>) {
    let _ = client.set_nodelay(true);
    let Some((index, mut backend)) = routes.connect().await else {
        routes.history.lock().expect("lock").push(None);
        // Every backend refused: close the client's connection.
        return;
    };
    routes.history.lock().expect("lock").push(Some(index));
    let _ = backend.set_nodelay(true);
    // Ends when either side closes or fails (a killed backend resets its
    // sockets); both streams are dropped, which closes the other side too.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
}
