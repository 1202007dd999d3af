//! Store conformance: the same test bodies against the in-memory stores and
//! the Redis stores (a real `redis-server` per test).

#[path = "support/redis.rs"]
mod redis_server;

use redis_server::RedisServer;
use std::io::{Read as _, Write as _};

/// Sends one inline command and returns the raw reply.
fn raw(port: u16, command: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .unwrap();
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).unwrap();
    String::from_utf8_lossy(&reply[..n]).into_owned()
}

#[test]
fn the_redis_helper_starts_restarts_empty_and_stops() {
    let mut server = RedisServer::start();
    assert_eq!(raw(server.port, "SET k v"), "+OK\r\n");
    assert_eq!(raw(server.port, "GET k"), "$1\r\nv\r\n");
    let pid = server.pid().unwrap();
    server.restart_empty();
    assert_ne!(server.pid(), Some(pid));
    assert_eq!(raw(server.port, "GET k"), "$-1\r\n");
    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}
