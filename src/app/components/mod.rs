//! The pieces of the dashboard.

mod connection_panel;
mod notifications;
mod send_box;
mod timeline;

pub use connection_panel::ConnectionPanel;
pub use notifications::Notifications;
pub use send_box::SendBox;
pub use timeline::Timeline;
