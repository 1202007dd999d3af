//! Sessions, accounts, rooms and de-duplication: the same test bodies on
//! the memory store and on a real Redis (`stores`), and two instances
//! sharing one Redis (`instances`).

#[path = "../contract/common.rs"]
#[allow(dead_code)]
mod common;
mod instances;
#[path = "../support/redis.rs"]
mod redis_server;
mod stores;

use redis_server::RedisServer;
use tether_server::redis::{Redis, RedisConfig};

/// A Redis of its own for one test, with a random prefix.
#[derive(Debug)]
pub struct TestRedis {
    pub server: RedisServer,
    pub config: RedisConfig,
}

impl TestRedis {
    pub fn start() -> Self {
        let server = RedisServer::start();
        let config = RedisConfig {
            url: server.url.clone(),
            prefix: format!("t{}:", uuid::Uuid::new_v4().simple()),
        };
        Self { server, config }
    }

    pub async fn connect(&self) -> Redis {
        Redis::connect(&self.config).await.expect("redis answers")
    }
}
