//! What every app that talks JSON has already: one serde struct read from
//! JSON and written back with serde_json. All three size apps call it, so the
//! manager's cost is measured on top of serde_json, not charged with it.

/// The app's message, the usual way with serde.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// A field.
    pub hi: u32,
}

/// Reads `text` as a [`Hello`] and writes it back; empty when it is not one.
pub fn round_trip(text: &str) -> String {
    serde_json::from_str::<Hello>(std::hint::black_box(text))
        .ok()
        .and_then(|hello| serde_json::to_string(&hello).ok())
        .unwrap_or_default()
}
