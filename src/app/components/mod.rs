//! The pieces of the dashboard.

mod connection_panel;
mod notifications;
mod passkeys_panel;
mod send_box;
mod timeline;

pub use connection_panel::ConnectionPanel;
pub use notifications::Notifications;
pub use passkeys_panel::PasskeysPanel;
pub use send_box::SendBox;
pub use timeline::Timeline;
