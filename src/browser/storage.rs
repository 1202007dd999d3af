//! The access token in `localStorage`, stored as the raw token string under a
//! configurable key. Storage that is unavailable (sandboxed iframes, some
//! private modes) degrades to "no stored token" instead of panicking.

use tether_protocol::Secret;

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Reads the stored token, if any.
pub fn load_token(key: &str) -> Option<Secret> {
    let token = local_storage()?.get_item(key).ok().flatten()?;
    (!token.is_empty()).then(|| Secret::new(token))
}

/// Stores `token`; returns false when storage is unavailable or full.
pub fn store_token(key: &str, token: &Secret) -> bool {
    local_storage().is_some_and(|s| s.set_item(key, token.expose()).is_ok())
}

/// Removes the stored token.
pub fn clear_token(key: &str) {
    if let Some(storage) = local_storage() {
        let _ = storage.remove_item(key);
    }
}
