//! The server's logging setup, shared by `main` and the log test: `tracing`
//! to stderr, filtered by `RUST_LOG`, with frame-level logging of the
//! WebSocket and HTTP libraries kept off whatever `RUST_LOG` says.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// The filter when `RUST_LOG` is unset or invalid.
pub const DEFAULT_FILTER: &str = "info,tower_http=info";

/// Crates whose own logging never reaches the output: their trace lines
/// dump received frames (access tokens included, as text and as hex).
pub const SILENCED: [&str; 5] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
];

/// Whether events of `target` may be logged at all.
pub fn allowed_target(target: &str) -> bool {
    !SILENCED.iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Installs the global subscriber: `RUST_LOG` (or [`DEFAULT_FILTER`]),
/// minus [`SILENCED`], written to stderr.
///
/// The `log` crate is deliberately not bridged into `tracing` (no
/// `LogTracer`): tungstenite logs through `log`, and its trace lines carry
/// whole frames. Returns an error if a global subscriber is already set.
pub fn init() -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            allowed_target(meta.target())
        }))
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing::subscriber::set_global_default(subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silenced_targets() {
        assert!(!allowed_target("tungstenite::protocol"));
        assert!(!allowed_target("tungstenite"));
        assert!(!allowed_target("hyper::proto::h1::io"));
        assert!(allowed_target("tether_server::socket"));
        assert!(allowed_target("hyperion"));
        assert!(allowed_target("tower_http::trace"));
    }
}
