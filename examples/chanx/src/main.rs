//! A Leptos app (client-side rendered) whose server is a Chanx app: the
//! consumer at `/ws/notifications/` of `tests/chanx`, which takes a DRF token
//! in `?token=`, answers `ping` and `echo`, and pushes `notification`s.
use leptos::prelude::*;
use serde::Deserialize;
use tether::prelude::*;
use tether::{ChanxAuth, Secret};

/// The server's `notification` message, as its pydantic model declares it.
#[derive(Debug, Clone, Deserialize)]
struct Notice {
    id: u64,
    title: String,
    body: String,
}

/// The answer to an `echo`.
#[derive(Debug, Clone, Deserialize)]
struct EchoReply {
    text: String,
}

#[component]
fn App() -> impl IntoView {
    let conn = provide_connection_manager(
        ConnectionOptions::default()
            // Chanx: token in the query, ping/pong with a ref, the app's own
            // {"action","payload"} frames, no acks, 4401/4403 final, no refresh.
            .adapter(ChanxAuth::query())
            .url("ws://127.0.0.1:8000/ws/notifications/"),
    );
    let notices = RwSignal::new(Vec::<Notice>::new());
    let echoed = RwSignal::new(String::new());
    // Every Chanx frame that is not the adapter's own reaches the app as
    // Event::Message; decode its payload into the app's type.
    use_connection_event(EventKind::Message, move |event| {
        if let Event::Message { kind, payload } = event {
            match kind.as_str() {
                "notification" => {
                    if let Ok(notice) = serde_json::from_str::<Notice>(payload.as_str()) {
                        notices.update(|list| list.push(notice));
                    }
                }
                "echo_reply" => {
                    if let Ok(reply) = serde_json::from_str::<EchoReply>(payload.as_str()) {
                        echoed.set(reply.text);
                    }
                }
                _ => {}
            }
        }
    });
    let token = RwSignal::new(String::new());
    let sign_in = move |_| {
        // The DRF token your login view returned.
        conn.sign_in(Secret::new(token.get_untracked()), None);
        conn.connect();
    };
    let echo = move |_| {
        // The frame as the Chanx consumer expects it; sent once, never acked.
        let _ = conn.send(&serde_json::json!({"action": "echo", "payload": {"text": "hello"}}));
    };
    view! {
        <p>"state: " {move || conn.state().get().to_string()}</p>
        <input prop:value=token on:input=move |e| token.set(event_target_value(&e)) />
        <button on:click=sign_in>"connect"</button>
        <button on:click=echo>"echo"</button>
        <p>"echoed: " {echoed}</p>
        <ul>
            {move || {
                notices
                    .get()
                    .into_iter()
                    .map(|n| view! { <li>{n.id} ": " {n.title} " (" {n.body} ")"</li> })
                    .collect_view()
            }}
        </ul>
    }
}

fn main() {
    mount_to_body(App);
}
