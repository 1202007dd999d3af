//! What the page's WebSockets really send, seen from JavaScript: the
//! server de-duplicates resent messages, so only the client side can show
//! how often a frame went out.

use serde_json::Value;

/// While alive, `WebSocket.prototype.send` records every frame with a
/// number for the socket that sent it. Dropping it restores `send`.
pub struct SendSpy(());

impl SendSpy {
    pub fn install() -> Self {
        js_sys::eval(
            r#"(() => {
                if (WebSocket.prototype.__tetherSend) return;
                const send = WebSocket.prototype.send;
                const ids = new WeakMap();
                let next = 0;
                window.__tetherSent = [];
                WebSocket.prototype.__tetherSend = send;
                WebSocket.prototype.send = function (data) {
                    if (!ids.has(this)) ids.set(this, ++next);
                    window.__tetherSent.push([ids.get(this), String(data)]);
                    return send.call(this, data);
                };
            })()"#,
        )
        .expect("the spy installs");
        SendSpy(())
    }

    /// Every frame sent so far: (socket number, parsed JSON).
    pub fn frames(&self) -> Vec<(u64, Value)> {
        let text = js_sys::eval("JSON.stringify(window.__tetherSent)")
            .expect("the spy's log")
            .as_string()
            .expect("JSON text");
        let log: Vec<(u64, String)> = serde_json::from_str(&text).expect("the spy's log");
        log.into_iter()
            .map(|(socket, frame)| (socket, serde_json::from_str(&frame).expect("JSON frames")))
            .collect()
    }

    /// The frames of one `type`.
    pub fn frames_of(&self, kind: &str) -> Vec<(u64, Value)> {
        self.frames()
            .into_iter()
            .filter(|(_, f)| f["type"] == kind)
            .collect()
    }
}

impl Drop for SendSpy {
    fn drop(&mut self) {
        let _ = js_sys::eval(
            r#"(() => {
                const send = WebSocket.prototype.__tetherSend;
                if (!send) return;
                WebSocket.prototype.send = send;
                delete WebSocket.prototype.__tetherSend;
                delete window.__tetherSent;
            })()"#,
        );
    }
}
