use crate::app::{api, clock};
use crate::prelude::*;
use crate::{Detail, StopReason};
use gloo_timers::callback::Interval;
use leptos::prelude::*;

/// The connection at a glance: state badge, attempt and retry countdown,
/// RTT, queue, user, and the Connect / Disconnect buttons.
#[component]
pub fn ConnectionPanel() -> impl IntoView {
    let conn = use_connection_manager();
    // Each getter builds a memo: take them once, not inside closures.
    let state = conn.state();
    let detail = conn.detail();
    let authenticating = conn.authenticating();
    let attempt = conn.attempt();
    let next_retry_at = conn.next_retry_at();
    let rtt = conn.rtt();
    let pending = conn.pending();
    let user = conn.user();
    let last_close = conn.last_close();
    let last_error = conn.last_error();
    let username = api::stored_username();
    let has_name = username.is_some();

    // The countdown's clock. The interval is cancelled when the value holding
    // it is dropped, i.e. when this component is cleaned up.
    let now = RwSignal::new(js_sys::Date::now());
    let ticker = Interval::new(200, move || {
        now.try_set(js_sys::Date::now());
    });
    StoredValue::new_local(ticker);

    let countdown = move || {
        next_retry_at.get().map(|at| {
            let left = (at as f64 - now.get()).max(0.0) / 1000.0;
            format!("next try in {left:.1} s")
        })
    };
    let busy = move || {
        matches!(
            state.get(),
            ConnectionState::Connected | ConnectionState::Connecting
        )
    };
    let idle = move || {
        matches!(
            detail.get(),
            Detail::Idle | Detail::Closing | Detail::Stopped(_)
        )
    };

    view! {
        <section class="card panel" aria-labelledby="connection-title">
            <h2 id="connection-title">"Connection"</h2>
            <div class="state-line" role="status" aria-live="polite" aria-atomic="true">
                <span
                    class=move || format!("badge state-{}", state.get().as_str().to_lowercase())
                    data-testid="connection-state"
                >
                    {move || state.get().as_str()}
                </span>
                <Show when=move || authenticating.get()>
                    <span class="authenticating">"authenticating"</span>
                </Show>
            </div>
            <p class="detail">{move || describe(&detail.get())}</p>
            <dl class="facts">
                <div>
                    <dt>"User"</dt>
                    <dd>
                        <span data-testid="connection-user">
                            {move || {
                                username
                                    .clone()
                                    .or_else(|| user.get())
                                    .unwrap_or_else(|| "—".into())
                            }}
                        </span>
                        <Show when=move || has_name && user.with(Option::is_some)>
                            <span class="sub mono">{move || user.get().unwrap_or_default()}</span>
                        </Show>
                    </dd>
                </div>
                <div>
                    <dt>"Attempt"</dt>
                    <dd>
                        <span data-testid="connection-attempt">{move || attempt.get()}</span>
                        <span class="sub" data-testid="connection-retry">{countdown}</span>
                    </dd>
                </div>
                <div>
                    <dt>"Round trip"</dt>
                    <dd data-testid="connection-rtt">
                        {move || {
                            rtt.get()
                                .map(|d| format!("{} ms", d.as_millis()))
                                .unwrap_or_else(|| "—".into())
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Queued"</dt>
                    <dd data-testid="connection-pending">{move || pending.get()}</dd>
                </div>
                <div>
                    <dt>"Last close"</dt>
                    <dd>
                        {move || match last_close.get() {
                            Some(c) if c.reason.is_empty() => c.code.to_string(),
                            Some(c) => format!("{} · {}", c.code, c.reason),
                            None => "—".into(),
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Last error"</dt>
                    <dd class="wrap">
                        {move || last_error.get().map(|e| e.to_string()).unwrap_or_else(|| "—".into())}
                    </dd>
                </div>
            </dl>
            <div class="actions">
                <button
                    class="primary"
                    data-testid="connect"
                    on:click=move |_| conn.connect()
                    disabled=busy
                >
                    "Connect"
                </button>
                <button data-testid="disconnect" on:click=move |_| conn.disconnect() disabled=idle>
                    "Disconnect"
                </button>
            </div>
        </section>
    }
}

/// What the machine is doing, in words.
fn describe(detail: &Detail) -> String {
    match detail {
        Detail::Idle => "Not connected yet.".into(),
        Detail::Refreshing { .. } => "Refreshing the access token…".into(),
        Detail::Opening { attempt: 0 } => "Opening the socket…".into(),
        Detail::Opening { attempt } => format!("Opening the socket (attempt {attempt})…"),
        Detail::Authenticating { .. } => "Socket open, authenticating…".into(),
        Detail::Online { since } => format!("Online since {}.", clock(*since as f64)),
        Detail::RetryScheduled { attempt, .. } => format!("Waiting to retry (attempt {attempt})."),
        Detail::Closing => "Closing the socket…".into(),
        Detail::Stopped(reason) => match reason {
            StopReason::Manual => "Stopped: you disconnected.".into(),
            StopReason::Offline => "Stopped: the browser is offline.".into(),
            StopReason::AuthFailed(code) => format!("Stopped: authentication failed ({code})."),
            StopReason::GaveUp { attempts } => {
                format!("Stopped: gave up after {attempts} attempts.")
            }
            StopReason::SignedOut => "Stopped: signed out.".into(),
            StopReason::Destroyed => "Stopped.".into(),
            #[allow(unreachable_patterns)]
            _ => "Stopped.".into(),
        },
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}
