//! `/rooms` and `/rooms/:id`: the rooms I belong to, a form to create one,
//! and the open room, live. The room talks to the server through the
//! library's public topic API only ([`use_topic_with_options`] with the
//! app's own [`RoomEvent`]), as any other app would.

use super::login::replace;
use crate::app::api::{self, Room};
use crate::app::clock;
use crate::app::store::SendStatus;
use crate::prelude::*;
use crate::{SubscribeErrorCode, TopicFailure, UnsubscribedCode};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

/// How many of a room's latest messages the room opens with.
const HISTORY: u32 = 50;

/// The messages of this app's rooms: the `event` + `data` of a topic
/// message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum RoomEvent {
    /// Someone said something.
    Said {
        /// What they said.
        text: String,
    },
}

/// The rooms page; the open room is the `:id` of the route, if any.
#[component]
pub fn Rooms() -> impl IntoView {
    let conn = use_connection_manager();
    if conn.token().is_none() {
        return view! { <Redirect path="/login" options=replace()/> }.into_any();
    }
    let params = use_params_map();
    let open = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let rooms = RwSignal::new(None::<Result<Vec<Room>, api::RoomsError>>);
    let reload = Callback::new(move |()| {
        let Some(token) = conn.token() else {
            rooms.set(Some(Err(api::RoomsError::SignedOut)));
            return;
        };
        spawn_local(async move {
            rooms.set(Some(api::rooms(&token).await));
        });
    });
    reload.run(());

    view! {
        <header class="topbar">
            <div class="brand">
                <img src="/favicon.svg" alt="" width="28" height="28"/>
                <span class="name">"tether"</span>
                <span class="muted tagline">"rooms"</span>
            </div>
            <nav class="nav">
                <A href="/">"Dashboard"</A>
                <A href="/rooms">"Rooms"</A>
            </nav>
        </header>
        <main class="rooms-page">
            <section class="card rooms" aria-labelledby="rooms-title">
                <h2 id="rooms-title">"My rooms"</h2>
                {move || match rooms.get() {
                    None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                    Some(Err(e)) => {
                        view! { <p class="form-error" role="alert">{e.message()}</p> }.into_any()
                    }
                    Some(Ok(list)) if list.is_empty() => {
                        view! { <p class="muted" data-testid="room-list">"No rooms yet: create one below."</p> }
                            .into_any()
                    }
                    Some(Ok(list)) => {
                        view! {
                            <ul class="room-list" data-testid="room-list">
                                {list
                                    .into_iter()
                                    .map(|room| {
                                        let href = format!("/rooms/{}", room.id);
                                        let id = room.id.clone();
                                        let current = move || open.get() == id;
                                        view! {
                                            <li class:current=current>
                                                <a href=href data-testid="room-link">{room.name}</a>
                                                <span class="muted small">
                                                    {match room.members.len() { 1 => "1 member".to_owned(), n => format!("{n} members") }}
                                                </span>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }
                }}
                <CreateRoom on_created=move |_| reload.run(())/>
            </section>
            {move || {
                let id = open.get();
                if id.is_empty() {
                    view! {
                        <section class="card room empty">
                            <p class="muted">"Open a room, or create one."</p>
                        </section>
                    }
                        .into_any()
                } else {
                    let room = Signal::derive(move || {
                        rooms
                            .get()
                            .and_then(Result::ok)
                            .and_then(|list| list.into_iter().find(|r| r.id == open.get()))
                    });
                    view! { <RoomView id=id room on_change=reload/> }.into_any()
                }
            }}
        </main>
    }
    .into_any()
}

/// The form that creates a room with me as owner.
#[component]
fn CreateRoom(on_created: impl Fn(Room) + Copy + 'static) -> impl IntoView {
    let conn = use_connection_manager();
    let navigate = leptos_router::hooks::use_navigate();
    let name = RwSignal::new(String::new());
    let members = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let room_name = name.get_untracked().trim().to_owned();
        if room_name.is_empty() {
            error.set(Some("Give the room a name.".into()));
            return;
        }
        let list: Vec<String> = members
            .get_untracked()
            .split([',', ' '])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect();
        let Some(token) = conn.token() else {
            error.set(Some(api::RoomsError::SignedOut.message()));
            return;
        };
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::create_room(&token, &room_name, &list).await {
                Ok(room) => {
                    name.set(String::new());
                    members.set(String::new());
                    navigate(&format!("/rooms/{}", room.id), Default::default());
                    on_created(room);
                }
                Err(e) => error.set(Some(e.message())),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="room-create" on:submit=submit novalidate>
            <h3>"New room"</h3>
            <label for="room-create-name">"Name"</label>
            <input
                id="room-create-name"
                data-testid="room-create-name"
                autocomplete="off"
                maxlength="100"
                prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev))
            />
            <label for="room-create-members">"Members (usernames, separated by commas)"</label>
            <input
                id="room-create-members"
                data-testid="room-create-members"
                autocomplete="off"
                autocapitalize="none"
                spellcheck="false"
                placeholder="bob, carol"
                prop:value=move || members.get()
                on:input=move |ev| members.set(event_target_value(&ev))
            />
            <p class="form-error" role="alert">{move || error.get()}</p>
            <button
                type="submit"
                class="primary"
                data-testid="room-create-submit"
                disabled=move || busy.get()
            >
                "Create room"
            </button>
        </form>
    }
}

/// One line of a room: a message from the topic, or one I am sending.
#[derive(Clone)]
struct Line {
    key: u64,
    /// Its offset in the topic, once known.
    offset: Option<u64>,
    author: String,
    text: String,
    at: f64,
    /// The publish id, for my own messages.
    id: Option<MessageId>,
    /// Where my own message stands (`None` for others' messages).
    status: Option<ArcRwSignal<SendStatus>>,
    error: ArcRwSignal<Option<String>>,
}

/// What the room's `room-error` line says for a failed topic.
fn failure_sentence(failure: &TopicFailure) -> String {
    match failure {
        TopicFailure::Refused {
            code: SubscribeErrorCode::Forbidden,
            ..
        } => "You are not a member of this room.".into(),
        TopicFailure::Refused {
            code: SubscribeErrorCode::NotFound,
            ..
        } => "There is no such room.".into(),
        TopicFailure::Refused { message, .. } => format!("The room cannot be opened: {message}"),
        TopicFailure::Ended {
            code: UnsubscribedCode::Removed,
            ..
        } => "You have been removed from this room.".into(),
        TopicFailure::Ended {
            code: UnsubscribedCode::TopicDeleted,
            ..
        } => "This room has been deleted.".into(),
        TopicFailure::Ended { message, .. } => format!("The room has closed: {message}"),
        #[allow(unreachable_patterns)]
        other => format!("The room is not available: {other:?}"),
    }
}

/// The topic state in words, for `room-state`.
fn state_words(state: &TopicState) -> &'static str {
    match state {
        TopicState::Unsubscribed => "not joined",
        TopicState::Subscribing => "joining…",
        TopicState::Subscribed => "live",
        TopicState::Failed(_) => "failed",
        #[allow(unreachable_patterns)]
        _ => "unknown",
    }
}

/// The open room: its last messages then live ones (newest last), who is
/// here, and a message box whose messages show queued / sent / acked /
/// failed.
#[component]
fn RoomView(id: String, room: Signal<Option<Room>>, on_change: Callback<()>) -> impl IntoView {
    let conn = use_connection_manager();
    let me = api::stored_username().unwrap_or_default();
    let topic = use_topic_with_options::<RoomEvent>(
        format!("room:{id}"),
        TopicOptions::default().last(HISTORY),
    );
    let lines = RwSignal::new(Vec::<Line>::new());
    let notice = RwSignal::new(None::<String>);
    let text = RwSignal::new(String::new());
    let input_error = RwSignal::new(None::<String>);
    let next_key = StoredValue::new(0u64);
    let key = move || {
        let k = next_key.get_value();
        next_key.set_value(k + 1);
        k
    };

    topic.on_message(move |m| {
        let known = lines.with_untracked(|l| l.iter().any(|x| x.offset == Some(m.offset)));
        if known {
            return; // my own message, already acked
        }
        let RoomEvent::Said { text } = m.event.clone();
        let line = Line {
            key: key(),
            offset: Some(m.offset),
            author: m
                .from
                .as_ref()
                .map_or_else(|| "server".to_owned(), |u| u.username.clone()),
            text,
            at: js_sys::Date::now(),
            id: None,
            status: None,
            error: ArcRwSignal::new(None),
        };
        lines.update(|l| l.push(line));
    });
    topic.on_published(move |id, offset| {
        lines.update(|l| {
            // The message itself may have come before its ack.
            l.retain(|x| x.id.is_some() || x.offset != Some(offset));
            if let Some(line) = l.iter_mut().find(|x| x.id.as_ref() == Some(id)) {
                line.offset = Some(offset);
                if let Some(status) = &line.status {
                    status.set(SendStatus::Acked);
                }
            }
        });
    });
    topic.on_error(move |error| match error {
        TopicError::PublishFailed { id, error } => lines.with_untracked(|l| {
            if let Some(line) = l.iter().find(|x| x.id.as_ref() == Some(id)) {
                if let Some(status) = &line.status {
                    status.set(SendStatus::Failed);
                }
                line.error.set(Some(error.to_string()));
            }
        }),
        TopicError::NotRecovered { .. } => {
            notice.set(Some(
                "Some earlier messages of this room may be missing.".into(),
            ));
        }
        TopicError::Undecodable { offset, event, .. } => {
            let line = Line {
                key: key(),
                offset: Some(*offset),
                author: "?".into(),
                text: format!("(a `{event}` message this app cannot show)"),
                at: js_sys::Date::now(),
                id: None,
                status: None,
                error: ArcRwSignal::new(None),
            };
            lines.update(|l| l.push(line));
        }
    });
    // Messages queued while the room was not live go out once it is.
    let state = topic.state();
    Effect::new(move |_| {
        if state.get() == TopicState::Subscribed {
            lines.with_untracked(|l| {
                for status in l.iter().filter_map(|x| x.status.as_ref()) {
                    if status.get_untracked() == SendStatus::Queued {
                        status.set(SendStatus::Sent);
                    }
                }
            });
        }
    });

    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked().trim().to_owned();
        if body.is_empty() {
            return;
        }
        let live = state.get_untracked() == TopicState::Subscribed
            && conn.state().get_untracked() == ConnectionState::Connected;
        let result = topic.publish("said", &serde_json::json!({ "text": body }));
        let (id, status, error) = match &result {
            Ok(id) => {
                let status = if live {
                    SendStatus::Sent
                } else {
                    SendStatus::Queued
                };
                (Some(id.clone()), status, None)
            }
            Err(e) => (None, SendStatus::Failed, Some(e.to_string())),
        };
        let line = Line {
            key: key(),
            offset: None,
            author: me.clone(),
            text: body,
            at: js_sys::Date::now(),
            id,
            status: Some(ArcRwSignal::new(status)),
            error: ArcRwSignal::new(error),
        };
        lines.update(|l| l.push(line));
        match result {
            Ok(_) => {
                text.set(String::new());
                input_error.set(None);
            }
            Err(e) => input_error.set(Some(format!("Not sent: {e}."))),
        }
    };

    let failure = move || match state.get() {
        TopicState::Failed(failure) => Some(failure_sentence(&failure)),
        _ => None,
    };
    let title = move || {
        room.get()
            .map_or_else(|| id_label(&topic.name()), |r| r.name)
    };

    view! {
        <section class="card room" aria-labelledby="room-title">
            <div class="room-head">
                <h2 id="room-title">{title}</h2>
                <span
                    class=move || {
                        format!("pill topic-{}", state_words(&state.get()).trim_end_matches('…').replace(' ', "-"))
                    }
                    data-testid="room-state"
                >
                    {move || state_words(&state.get())}
                </span>
            </div>
            {move || failure().map(|f| view! { <p class="form-error room-error" role="alert" data-testid="room-error">{f}</p> })}
            {move || notice.get().map(|n| view! { <p class="muted small" data-testid="room-notice">{n}</p> })}
            <div class="room-presence">
                <span class="muted small">"Here now: "</span>
                <ul class="presence" data-testid="room-presence">
                    {move || {
                        topic
                            .presence()
                            .get()
                            .into_iter()
                            .map(|u| view! { <li>{u.username}</li> })
                            .collect_view()
                    }}
                </ul>
            </div>
            <ol class="room-messages">
                <For
                    each=move || lines.get()
                    key=|l| l.key
                    children=move |l| {
                        let status = l.status.clone();
                        let error = l.error.clone();
                        view! {
                            <li class="message" data-testid="room-message">
                                <span class="author">{l.author}</span>
                                <span class="text">{l.text}</span>
                                <time class="muted mono">{clock(l.at)}</time>
                                {status.map(|status| {
                                    let class_status = status.clone();
                                    view! {
                                        <span
                                            class=move || format!("status status-{}", class_status.get().as_str())
                                            data-testid="room-message-status"
                                            title=move || error.get().unwrap_or_default()
                                        >
                                            {move || status.get().as_str()}
                                        </span>
                                    }
                                })}
                            </li>
                        }
                    }
                />
            </ol>
            <form class="send-form" on:submit=send>
                <label for="room-input" class="visually-hidden">"Message"</label>
                <input
                    id="room-input"
                    data-testid="room-input"
                    placeholder="Say something…"
                    autocomplete="off"
                    maxlength="2000"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                />
                <button type="submit" class="primary" data-testid="room-send">"Send"</button>
            </form>
            <p class="form-error" role="alert">{move || input_error.get()}</p>
            <Members room me=api::stored_username().unwrap_or_default() on_change/>
        </section>
    }
}

/// `room:abc` as a title when the room's details are not known.
fn id_label(topic: &str) -> String {
    topic.strip_prefix("room:").unwrap_or(topic).to_owned()
}

/// The room's members; the owner may remove them.
#[component]
fn Members(room: Signal<Option<Room>>, me: String, on_change: Callback<()>) -> impl IntoView {
    let conn = use_connection_manager();
    let error = RwSignal::new(None::<String>);
    view! {
        {move || {
            let me = me.clone();
            room.get().map(|room| {
                let owner = room.owner.username == me;
                let id = room.id.clone();
                view! {
                    <details class="members">
                        <summary>{format!("Members ({})", room.members.len())}</summary>
                        <ul>
                            {room
                                .members
                                .into_iter()
                                .map(|m| {
                                    let removable = owner && m.username != me;
                                    let id = id.clone();
                                    let name = m.username.clone();
                                    let remove = move |_| {
                                        let (id, name) = (id.clone(), name.clone());
                                        let Some(token) = conn.token() else { return };
                                        spawn_local(async move {
                                            match api::remove_member(&token, &id, &name).await {
                                                Ok(()) => {
                                                    error.set(None);
                                                    on_change.run(());
                                                }
                                                Err(e) => error.set(Some(e.message())),
                                            }
                                        });
                                    };
                                    view! {
                                        <li>
                                            <span>{m.username.clone()}</span>
                                            {removable.then(|| view! {
                                                <button
                                                    class="ghost small"
                                                    data-testid="room-remove-member"
                                                    data-username=m.username.clone()
                                                    on:click=remove
                                                >
                                                    "Remove"
                                                </button>
                                            })}
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                        <p class="form-error" role="alert">{move || error.get()}</p>
                    </details>
                }
            })
        }}
    }
}
