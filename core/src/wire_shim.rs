//! TEMPORARY stand-in for the topic types of `tether_protocol` (the lead's
//! `protocol: serde` commit); removed at the merge.
#![allow(missing_docs, dead_code)]

pub use tether_protocol::RawJson;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: String,
    pub username: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub topic: String,
    pub since: Option<Position>,
    pub last: Option<u32>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub topic: String,
    pub epoch: String,
    pub offset: u64,
    pub from: u64,
    pub recovered: Option<bool>,
    pub presence: Vec<User>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeError {
    pub topic: String,
    pub code: SubscribeErrorCode,
    pub message: String,
    pub retry: bool,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeErrorCode {
    Forbidden,
    NotFound,
    InvalidTopic,
    BadRequest,
    TooManyTopics,
    RateLimited,
    Unavailable,
    Other(String),
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub topic: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    pub topic: String,
    pub code: UnsubscribedCode,
    pub message: String,
    pub epoch: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsubscribedCode {
    Unsubscribed,
    Removed,
    TopicDeleted,
    Reset,
    UserChanged,
    Other(String),
}
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub id: String,
    pub topic: String,
    pub event: String,
    pub data: RawJson,
}
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMessage {
    pub topic: String,
    pub offset: u64,
    pub event: String,
    pub data: RawJson,
    pub from: Option<User>,
    pub id: String,
    pub created_at: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub topic: String,
    pub joined: Vec<User>,
    pub left: Vec<User>,
}
pub fn is_valid_topic(name: &str) -> bool {
    let Some((kind, id)) = name.split_once(':') else {
        return false;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    name.len() <= MAX_TOPIC_BYTES && ok(kind) && ok(id)
}
pub const MAX_TOPIC_BYTES: usize = 128;
pub const MAX_TOPICS_PER_SOCKET: usize = 100;
pub const MAX_LAST: u32 = 1000;
pub const TOPIC_RETENTION: usize = 1000;

fn esc(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
pub fn subscribe_frame(s: &Subscribe) -> String {
    let since = match &s.since {
        Some(p) => format!(
            r#","since":{{"epoch":{},"offset":{}}}"#,
            esc(&p.epoch),
            p.offset
        ),
        None => String::new(),
    };
    let last = s.last.map_or(String::new(), |l| format!(r#","last":{l}"#));
    format!(
        r#"{{"type":"subscribe","payload":{{"topic":{}{since}{last}}}}}"#,
        esc(&s.topic)
    )
}
pub fn unsubscribe_frame(u: &Unsubscribe) -> String {
    format!(
        r#"{{"type":"unsubscribe","payload":{{"topic":{}}}}}"#,
        esc(&u.topic)
    )
}
pub fn publish_frame(p: &Publish) -> String {
    format!(
        r#"{{"type":"publish","payload":{{"id":{},"topic":{},"event":{},"data":{}}}}}"#,
        esc(&p.id),
        esc(&p.topic),
        esc(&p.event),
        p.data.as_str()
    )
}

pub enum TopicFrame {
    Subscribed(Subscribed),
    SubscribeError(SubscribeError),
    Unsubscribed(Unsubscribed),
    Message(TopicMessage),
    Presence(Presence),
}

use tether_protocol::json::{self, Value};

fn users(v: Option<&Value<'_>>) -> Vec<User> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|u| {
                Some(User {
                    user_id: u.get("user_id")?.as_str()?.to_owned(),
                    username: u.get("username")?.as_str()?.to_owned(),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn decode_topic(frame: &str) -> Option<TopicFrame> {
    let v = json::parse(frame).ok()?;
    let kind = v.get("type")?.as_str()?;
    let p = v.get("payload")?;
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str| p.get(k).and_then(Value::as_u64);
    let topic = s("topic")?;
    Some(match kind {
        "subscribed" => TopicFrame::Subscribed(Subscribed {
            topic,
            epoch: s("epoch")?,
            offset: n("offset")?,
            from: n("from")?,
            recovered: match p.get("recovered") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
            presence: users(p.get("presence")),
        }),
        "subscribe_error" => TopicFrame::SubscribeError(SubscribeError {
            topic,
            code: match s("code")?.as_str() {
                "forbidden" => SubscribeErrorCode::Forbidden,
                "not_found" => SubscribeErrorCode::NotFound,
                "invalid_topic" => SubscribeErrorCode::InvalidTopic,
                "bad_request" => SubscribeErrorCode::BadRequest,
                "too_many_topics" => SubscribeErrorCode::TooManyTopics,
                "rate_limited" => SubscribeErrorCode::RateLimited,
                "unavailable" => SubscribeErrorCode::Unavailable,
                o => SubscribeErrorCode::Other(o.to_owned()),
            },
            message: s("message").unwrap_or_default(),
            retry: matches!(p.get("retry"), Some(Value::Bool(true))),
        }),
        "unsubscribed" => TopicFrame::Unsubscribed(Unsubscribed {
            topic,
            code: match s("code")?.as_str() {
                "unsubscribed" => UnsubscribedCode::Unsubscribed,
                "removed" => UnsubscribedCode::Removed,
                "topic_deleted" => UnsubscribedCode::TopicDeleted,
                "reset" => UnsubscribedCode::Reset,
                "user_changed" => UnsubscribedCode::UserChanged,
                o => UnsubscribedCode::Other(o.to_owned()),
            },
            message: s("message").unwrap_or_default(),
            epoch: s("epoch"),
        }),
        "message" => TopicFrame::Message(TopicMessage {
            topic,
            offset: n("offset")?,
            event: s("event")?,
            data: crate::adapter::member_json(p, "data"),
            from: users(Some(&Value::Array(
                p.get("from").into_iter().cloned().collect(),
            )))
            .into_iter()
            .next(),
            id: s("id")?,
            created_at: s("created_at")?,
        }),
        "presence" => TopicFrame::Presence(Presence {
            topic,
            joined: users(p.get("joined")),
            left: users(p.get("left")),
        }),
        _ => return None,
    })
}

pub fn ack_offset(frame: &str) -> Option<u64> {
    let v = json::parse(frame).ok()?;
    v.get("payload")?.get("offset")?.as_u64()
}
