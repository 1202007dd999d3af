//! Every row of shared/PROTOCOL.md against an in-process server on real
//! sockets (127.0.0.1, port 0). Each test starts its own server.

mod cli;
mod common;
mod hardening;
mod http;
mod rooms;
mod socket_auth;
mod socket_frames;
mod topics;
mod untested;
