//! A client that speaks the wire contract (shared/PROTOCOL.md) as a
//! browser's ConnectionManager does, with JSON frames read off the wire:
//! it authenticates with `last_seq`, subscribes with `since`, follows
//! `unsubscribed reset`, and reconnects (through the proxy) whenever its
//! socket ends. It records every frame it gets, so the tests can check
//! what arrived on the wire: nothing missing, nothing twice.

use crate::cluster::WAIT;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one read of a socket gave.
#[derive(Debug)]
pub enum Read {
    /// A text frame, as JSON.
    Frame(Value),
    /// A close frame (its code, if any), or the stream ended or failed
    /// (`None`): the connection is gone.
    Closed(Option<u16>),
}

/// Opens a socket at `url` (no `Origin`: not a browser), within [`WAIT`].
pub async fn connect(url: &str) -> Result<Ws, String> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("connect {url}: {e}")),
        Err(_) => Err(format!("connect {url}: no handshake within {WAIT:?}")),
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> Result<(), String> {
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// The next text frame or the end of the connection, waiting until
/// `deadline`; `None` when the deadline passed first.
pub async fn read(ws: &mut Ws, deadline: Instant) -> Option<Read> {
    let wait = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(wait, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("a server frame that is not JSON ({e}): {text}")
                    });
                    return Read::Frame(frame);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Read::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Read::Closed(None),
            }
        }
    })
    .await
    .ok()
}

/// The next frame within [`WAIT`], which must be a text frame.
pub async fn next_frame(ws: &mut Ws) -> Value {
    match read(ws, Instant::now() + WAIT).await {
        Some(Read::Frame(frame)) => frame,
        Some(Read::Closed(code)) => panic!("the socket closed ({code:?}) before a frame came"),
        None => panic!("no frame within {WAIT:?}"),
    }
}

/// The next frame, which must be of type `kind`; returns its payload.
pub async fn expect(ws: &mut Ws, kind: &str) -> Value {
    let frame = next_frame(ws).await;
    assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
    frame["payload"].clone()
}

/// Expects a close frame with `code` within [`WAIT`].
pub async fn expect_close(ws: &mut Ws, code: u16) {
    match read(ws, Instant::now() + WAIT).await {
        Some(Read::Closed(got)) => assert_eq!(got, Some(code), "the close code"),
        Some(Read::Frame(frame)) => panic!("expected close {code}, got {frame}"),
        None => panic!("no close {code} within {WAIT:?}"),
    }
}

/// Opens a socket at `url` and authenticates with `token`; returns the
/// socket and the `auth_success` payload.
pub async fn authed(url: &str, token: &str, last_seq: Option<u64>) -> (Ws, Value) {
    let mut ws = connect(url).await.unwrap_or_else(|e| panic!("{e}"));
    send(&mut ws, &auth_frame(token, last_seq))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let success = expect(&mut ws, "auth_success").await;
    (ws, success)
}

/// The `auth` frame.
pub fn auth_frame(token: &str, last_seq: Option<u64>) -> Value {
    json!({"type": "auth", "payload": {"token": token, "last_seq": last_seq}})
}

/// The `subscribe` frame (`since` = `{epoch, offset}` or none).
pub fn subscribe_frame(topic: &str, since: Option<&(String, u64)>) -> Value {
    let since = since.map(|(epoch, offset)| json!({"epoch": epoch, "offset": offset}));
    json!({"type": "subscribe", "payload": {"topic": topic, "since": since}})
}

/// Sends `ping` and expects its `pong` as the next frame: the socket is
/// alive and nothing else was queued before it.
pub async fn assert_alive(ws: &mut Ws, seq: u64) {
    send(ws, &json!({"type": "ping", "payload": {"seq": seq}}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pong = expect(ws, "pong").await;
    assert_eq!(pong["seq"], seq);
}

/// One message of the followed topic, as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The epoch of the subscription it arrived on.
    pub epoch: String,
    /// Its `offset`.
    pub offset: u64,
    /// Its `data`.
    pub data: Value,
}

/// How far a [`Follower`] has got, readable from another task.
#[derive(Debug, Default)]
pub struct Progress {
    /// Notifications received.
    pub notifications: AtomicUsize,
    /// Topic messages received.
    pub messages: AtomicUsize,
}

/// A contract client following its user's notifications and (optionally)
/// one topic, reconnecting whenever its socket ends.
#[derive(Debug)]
pub struct Follower {
    /// Where it connects (the proxy).
    url: String,
    token: String,
    topic: Option<String>,
    ws: Option<Ws>,
    /// The highest `seq` received (sent as `last_seq`).
    pub last_seq: Option<u64>,
    /// The topic position `{epoch, offset}` (sent as `since`).
    pub position: Option<(String, u64)>,
    /// Every `notification` received, in order: `(seq, title)`.
    pub notifications: Vec<(u64, String)>,
    /// Every `message` of the topic received, in order.
    pub messages: Vec<Received>,
    /// Every `subscribed` payload, in order.
    pub subscribed: Vec<Value>,
    /// Every `unsubscribed` payload, in order.
    pub unsubscribed: Vec<Value>,
    /// Every other frame (ack, nack, pong, error...), in order.
    pub others: Vec<Value>,
    /// Sockets opened and authenticated so far.
    pub connections: usize,
    /// The `auth_error` (or final close code) that ended the session for
    /// good: the client stops, as a browser goes to its sign-in page.
    pub ended: Option<Value>,
    /// Shared counters of what arrived.
    pub progress: Arc<Progress>,
}

impl Follower {
    /// A follower of `token`'s user (and of `topic`), not connected yet.
    pub fn new(url: String, token: String, topic: Option<String>) -> Self {
        Self {
            url,
            token,
            topic,
            ws: None,
            last_seq: None,
            position: None,
            notifications: Vec::new(),
            messages: Vec::new(),
            subscribed: Vec::new(),
            unsubscribed: Vec::new(),
            others: Vec::new(),
            connections: 0,
            ended: None,
            progress: Arc::default(),
        }
    }

    /// Connects, authenticates with `last_seq` and subscribes with
    /// `since`, retrying (with a short backoff, as a client does) until it
    /// has `subscribed` (or `auth_success` without a topic), at most until
    /// `deadline`. Returns early when the session ended for good.
    pub async fn connect(&mut self, deadline: Instant) {
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.try_connect(deadline).await {
                Ok(()) => return,
                Err(_) if self.ended.is_some() => return,
                Err(e) => {
                    self.ws = None;
                    assert!(
                        Instant::now() < deadline,
                        "could not reconnect before the deadline: {e}"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    async fn try_connect(&mut self, deadline: Instant) -> Result<(), String> {
        let mut ws = connect(&self.url).await?;
        send(&mut ws, &auth_frame(&self.token, self.last_seq)).await?;
        match read(&mut ws, deadline).await {
            Some(Read::Frame(frame)) if frame["type"] == "auth_success" => {}
            Some(Read::Frame(frame)) if frame["type"] == "auth_error" => {
                self.ended = Some(frame);
                return Err("authentication refused for good".into());
            }
            other => return Err(format!("no auth_success: {other:?}")),
        }
        self.connections += 1;
        self.ws = Some(ws);
        if let Some(topic) = self.topic.clone() {
            self.send(&subscribe_frame(&topic, self.position.as_ref()))
                .await?;
            let before = self.subscribed.len();
            let others_before = self.others.len();
            while self.subscribed.len() == before {
                let refused = self.others[others_before..]
                    .iter()
                    .any(|f| f["type"] == "subscribe_error");
                if refused {
                    // Recorded in `others`; the socket itself is up.
                    return Ok(());
                }
                if !self.step(deadline).await? {
                    return Err("the socket ended before `subscribed`".into());
                }
            }
        }
        Ok(())
    }

    /// Sends a frame on the current socket.
    pub async fn send(&mut self, frame: &Value) -> Result<(), String> {
        match self.ws.as_mut() {
            Some(ws) => send(ws, frame).await,
            None => Err("not connected".into()),
        }
    }

    /// Reads and handles one frame: `Ok(true)` when one was handled,
    /// `Ok(false)` when the socket ended (it is dropped), `Err` when the
    /// deadline passed.
    async fn step(&mut self, deadline: Instant) -> Result<bool, String> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(false);
        };
        let frame = match read(ws, deadline).await {
            None => return Err("deadline passed".into()),
            Some(Read::Closed(code)) => {
                self.ws = None;
                if matches!(code, Some(4001 | 4003 | 1008)) && self.ended.is_none() {
                    self.ended = Some(json!({"close": code}));
                }
                return Ok(false);
            }
            Some(Read::Frame(frame)) => frame,
        };
        let payload = frame["payload"].clone();
        match frame["type"].as_str() {
            Some("notification") => {
                let seq = payload["seq"].as_u64().expect("a seq");
                self.last_seq = Some(self.last_seq.map_or(seq, |last| last.max(seq)));
                let title = payload["title"].as_str().unwrap_or_default().to_owned();
                self.notifications.push((seq, title));
                self.progress.notifications.fetch_add(1, Ordering::Relaxed);
            }
            Some("subscribed") => {
                let epoch = payload["epoch"].as_str().expect("an epoch").to_owned();
                let from = payload["from"].as_u64().expect("from");
                // The messages that follow start at `from`.
                self.position = Some((epoch, from.saturating_sub(1)));
                self.subscribed.push(payload);
            }
            Some("message") => {
                let offset = payload["offset"].as_u64().expect("an offset");
                let (epoch, last) = self.position.clone().expect("a message after subscribed");
                if offset > last {
                    self.position = Some((epoch.clone(), offset));
                }
                self.messages.push(Received {
                    epoch,
                    offset,
                    data: payload["data"].clone(),
                });
                self.progress.messages.fetch_add(1, Ordering::Relaxed);
            }
            Some("unsubscribed") => {
                self.unsubscribed.push(payload.clone());
                if payload["code"] == "reset" {
                    // The topic's history was lost: resubscribe at once
                    // from the start of the new epoch.
                    let epoch = payload["epoch"].as_str().expect("a new epoch").to_owned();
                    self.position = Some((epoch, 0));
                    let topic = self.topic.clone().expect("a followed topic");
                    self.send(&subscribe_frame(&topic, self.position.as_ref()))
                        .await?;
                }
            }
            Some("auth_error") => self.ended = Some(frame),
            _ => self.others.push(frame),
        }
        Ok(true)
    }

    /// Handles frames, reconnecting whenever the socket ends, until `done`
    /// holds or the session ended for good ([`ended`](Self::ended));
    /// panics with `what` and what it has when `deadline` passes.
    pub async fn until(&mut self, what: &str, deadline: Instant, done: impl Fn(&Self) -> bool) {
        while !done(self) && self.ended.is_none() {
            if self.ws.is_none() {
                self.connect(deadline).await;
                continue;
            }
            if let Err(e) = self.step(deadline).await {
                panic!(
                    "waiting for {what}: {e}; {} notifications (last seq {:?}), {} messages \
                     (position {:?}), {} connections, subscribed {:?}, unsubscribed {:?}, \
                     others {:?}",
                    self.notifications.len(),
                    self.last_seq,
                    self.messages.len(),
                    self.position,
                    self.connections,
                    self.subscribed,
                    self.unsubscribed,
                    self.others
                );
            }
        }
    }

    /// The payload of the frame of `kind` with `payload.id == id`, if one
    /// arrived.
    pub fn answer(&self, kind: &str, id: &str) -> Option<&Value> {
        self.others
            .iter()
            .find(|f| f["type"] == kind && f["payload"]["id"] == id)
            .map(|f| &f["payload"])
    }

    /// Whether the socket is open now.
    pub fn is_connected(&self) -> bool {
        self.ws.is_some()
    }
}
