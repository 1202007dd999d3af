//! The access token in the [`TokenStorage`] the app chose, stored as the
//! raw token string. Storage that is unavailable (sandboxed iframes, some
//! private modes) degrades to "no stored token" instead of panicking.

use crate::token::TokenStorage;
use tether_protocol::Secret;

/// The Web Storage area and key of `storage`, if it has one.
fn area(storage: &TokenStorage) -> Option<(web_sys::Storage, &str)> {
    let window = web_sys::window()?;
    match storage {
        TokenStorage::Local(key) => Some((window.local_storage().ok()??, key)),
        TokenStorage::Session(key) => Some((window.session_storage().ok()??, key)),
        TokenStorage::Memory | TokenStorage::None => None,
    }
}

/// Reads the stored token, if any.
pub(crate) fn load_token(storage: &TokenStorage) -> Option<Secret> {
    let (area, key) = area(storage)?;
    let token = area.get_item(key).ok().flatten()?;
    (!token.is_empty()).then(|| Secret::new(token))
}

/// Stores `token`; returns false when storage is unavailable or full (or
/// the app chose not to store tokens).
pub(crate) fn store_token(storage: &TokenStorage, token: &Secret) -> bool {
    area(storage).is_some_and(|(area, key)| area.set_item(key, token.expose()).is_ok())
}

/// Removes the stored token.
pub(crate) fn clear_token(storage: &TokenStorage) {
    if let Some((area, key)) = area(storage) {
        let _ = area.remove_item(key);
    }
}

/// What a `storage` event (another tab changed the storage) means for the
/// token in `storage`.
pub(crate) enum Change {
    /// Another tab stored this token.
    Token(Secret),
    /// Another tab removed the token (signed out), or cleared the storage.
    Removed,
}

/// The change a `storage` event makes to the token, if it concerns it.
pub(crate) fn change(storage: &TokenStorage, event: &web_sys::StorageEvent) -> Option<Change> {
    let (ours, key) = area(storage)?;
    let same_area = event
        .storage_area()
        .is_some_and(|area| js_sys::Object::is(&area, &ours));
    if !same_area {
        return None;
    }
    match event.key() {
        // `clear()` in another tab: every key is gone.
        None => Some(Change::Removed),
        Some(changed) if changed == key => {
            Some(match event.new_value().filter(|token| !token.is_empty()) {
                Some(token) => Change::Token(Secret::new(token)),
                None => Change::Removed,
            })
        }
        Some(_) => None,
    }
}
