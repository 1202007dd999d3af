//! Several instances of the reference server on one Redis, behind a
//! round-robin TCP proxy, serving the SPA: what the browser sees of a
//! deployment that scales out (README "Scaling out"). The browser only
//! ever talks to the proxy; an instance can be killed under it.

use crate::{Result, Server, unique};
use std::sync::Mutex;

#[allow(dead_code)] // `history` is for the server's tests
#[path = "../../../server/tests/support/proxy.rs"]
mod proxy;
#[path = "../../../server/tests/support/redis.rs"]
mod redis_server;

/// A `redis-server`, two instances on it (one prefix, one token key, both
/// serving the SPA) and the proxy in front of them. Dropping it stops
/// every process by PID.
#[derive(Debug)]
pub struct Cluster {
    instances: Vec<Mutex<Option<Server>>>,
    addrs: Vec<String>,
    proxy: proxy::Proxy,
    // Dropped last: the instances go before their store.
    _redis: redis_server::RedisServer,
}

impl Cluster {
    /// Starts Redis, two instances (logs `<log_name>.a` and `.b`) and the
    /// proxy, on loopback ports picked free.
    pub async fn start(log_name: &str) -> Result<Self> {
        let redis = redis_server::RedisServer::start();
        let prefix = format!("{}:", unique("e2e-cluster-"));
        let secret = unique("secret-");
        let flags = [
            "--redis-url",
            redis.url.as_str(),
            "--redis-prefix",
            prefix.as_str(),
            "--jwt-secret",
            secret.as_str(),
        ];
        let mut instances = Vec::new();
        let mut addrs = Vec::new();
        for name in ["a", "b"] {
            let server = Server::start_with(&format!("{log_name}.{name}"), &flags)?;
            addrs.push(
                server
                    .url
                    .strip_prefix("http://")
                    .ok_or("an http:// URL")?
                    .to_owned(),
            );
            instances.push(Mutex::new(Some(server)));
        }
        let backends = addrs
            .iter()
            .map(|a| a.parse())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let proxy = proxy::Proxy::start(backends).await?;
        Ok(Self {
            instances,
            addrs,
            proxy,
            _redis: redis,
        })
    }

    /// What the browser talks to: the proxy.
    pub(crate) fn front(&self) -> Server {
        Server::front(self.proxy.url())
    }

    /// How many instances are still running.
    pub fn running(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| i.lock().expect("lock").is_some())
            .count()
    }

    /// The index of the running instance `username` has an authenticated
    /// socket on, if any (asked of each instance directly).
    pub async fn instance_of(&self, username: &str) -> Result<Option<usize>> {
        for (index, addr) in self.addrs.iter().enumerate() {
            if self.instances[index].lock().expect("lock").is_none() {
                continue;
            }
            let direct = Server::front(format!("http://{addr}"));
            let (status, body) = direct.get("/api/admin/connections").await?;
            if status != 200 {
                return Err(
                    format!("GET /api/admin/connections on {addr}: {status} {body}").into(),
                );
            }
            let sockets: serde_json::Value = serde_json::from_str(&body)?;
            let holds = sockets
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["username"] == username));
            if holds {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// Kills instance `index` (SIGKILL to its process group): its sockets
    /// reset, as when a machine dies. The proxy skips it from then on.
    pub fn kill(&self, index: usize) {
        drop(self.instances[index].lock().expect("lock").take());
    }
}
