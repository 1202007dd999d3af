//! The one WebSocket: every callback forwards a [`SocketEvent`] into the
//! driver, and dropping the [`Socket`] removes the callbacks and closes it.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// Everything a socket can tell the driver, in one enum.
#[derive(Debug)]
pub(crate) enum SocketEvent {
    Open,
    Text(String),
    Binary { len: usize },
    Close { code: u16, reason: String },
}

type Handler<E> = Closure<dyn FnMut(E)>;

/// An open or opening WebSocket and its four listeners. The listeners live
/// exactly as long as this value: no `forget()`.
pub(crate) struct Socket {
    ws: WebSocket,
    _on_open: Handler<web_sys::Event>,
    _on_message: Handler<MessageEvent>,
    _on_close: Handler<CloseEvent>,
    _on_error: Handler<web_sys::Event>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries the token: never print it.
        f.debug_struct("Socket")
            .field("ready_state", &self.ws.ready_state())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Opens a socket. A URL the browser refuses outright (bad scheme, bad
    /// port) is reported like a failed connection: a 1006 close, so the core
    /// backs off instead of the app crashing.
    pub(crate) fn open(
        url: &str,
        protocols: &[String],
        on_event: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Option<Self> {
        let ws = if protocols.is_empty() {
            WebSocket::new(url)
        } else {
            let list: js_sys::Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
            WebSocket::new_with_str_sequence(url, &list)
        };
        let ws = match ws {
            Ok(ws) => ws,
            Err(_) => {
                on_event(SocketEvent::Close {
                    code: tether_protocol::close_code::ABNORMAL,
                    reason: "The browser refused to open the socket".into(),
                });
                return None;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);

        let open = on_event.clone();
        let on_open: Handler<web_sys::Event> = Closure::new(move |_| open(SocketEvent::Open));
        let message = on_event.clone();
        let on_message: Handler<MessageEvent> = Closure::new(move |e: MessageEvent| {
            let data = e.data();
            let event = match data.as_string() {
                Some(text) => SocketEvent::Text(text),
                None => SocketEvent::Binary {
                    len: data
                        .dyn_ref::<js_sys::ArrayBuffer>()
                        .map_or(0, |b| b.byte_length() as usize),
                },
            };
            message(event);
        });
        let close = on_event;
        let on_close: Handler<CloseEvent> = Closure::new(move |e: CloseEvent| {
            close(SocketEvent::Close {
                code: e.code(),
                reason: e.reason(),
            })
        });
        // An `error` is always followed by a `close` carrying the code; the
        // close is what the core needs, so errors are only swallowed here.
        let on_error: Handler<web_sys::Event> = Closure::new(|_| {});

        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }

    /// Sends a text frame. Returns false when the browser refused it (the
    /// socket is not open); the core resends unacked messages after the
    /// reconnect that follows, so nothing is lost.
    pub(crate) fn send(&self, text: &str) -> bool {
        self.ws.send_with_str(text).is_ok()
    }

    /// Starts a close handshake; the `close` event still reaches the driver.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        // Browsers only allow 1000 and 3000-4999 from scripts.
        let code = if code == 1000 || (3000..=4999).contains(&code) {
            code
        } else {
            1000
        };
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close_with_code_and_reason(1000, "Client closed");
        }
    }
}
