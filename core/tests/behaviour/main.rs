//! Native tests of the connection machine on a virtual clock, one module per concept.

#[path = "../common/mod.rs"]
mod common;

mod adapter;
mod auth;
mod bad_input;
mod cursor;
mod handlers;
mod hygiene;
mod keepalive;
mod lifecycle;
mod nack;
mod outbox;
mod pinned;
mod reconnect;
mod refresh;
mod sign_out;
mod topics;
mod topics_publish;
