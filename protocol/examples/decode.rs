//! How long one frame takes to decode and encode, natively: the notification
//! frame the browser bench floods, a topic message, and a ping. Prints ns per
//! frame, best of 5 rounds of 200,000. Run it with
//! `cargo run --release -p tether-protocol --example decode`.

use std::hint::black_box;
use std::time::Instant;
use tether_protocol::{ClientMessage, Ping, ServerMessage};

const ROUNDS: usize = 5;
const FRAMES: u32 = 200_000;

/// The best ns per call of `f` over [`ROUNDS`] rounds of [`FRAMES`] calls.
fn best(mut f: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..FRAMES {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(FRAMES)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let notification = r#"{"type":"notification","payload":{"seq":123456,"id":"0b6c4f1e-8a34-4c1f-9d2e-3f5a7b9c1d2e","title":"Build finished","body":"main is green again: 468 passed, 0 failed","created_at":"2026-12-02T02:13:05.123Z"}}"#;
    let message = r#"{"type":"message","payload":{"topic":"room:lobby","offset":42,"event":"chat.said","data":{"text":"hello there","n":[1,2,3]},"from":{"user_id":"0b6c4f1e-8a34-4c1f-9d2e-3f5a7b9c1d2e","username":"alice"},"id":"7d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6","created_at":"2026-12-02T02:13:05.123Z"}}"#;
    let decode = |text: &'static str| {
        move || {
            black_box(ServerMessage::decode(black_box(text)).ok());
        }
    };
    println!(
        "decode notification: {:.0} ns/frame",
        best(decode(notification))
    );
    // A topic message is only a frame type since issue 17: older trees
    // decode it as an error, which is not comparable.
    println!(
        "decode topic message: {:.0} ns/frame",
        best(decode(message))
    );
    let ping = ClientMessage::Ping(Ping { seq: 7 });
    println!(
        "encode ping: {:.0} ns/frame",
        best(|| {
            black_box(black_box(&ping).encode());
        })
    );
}
