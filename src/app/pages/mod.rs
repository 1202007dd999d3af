//! One component per route.

mod dashboard;
mod login;
mod not_found;
mod rooms;

pub use dashboard::Dashboard;
pub use login::Login;
pub use not_found::NotFound;
pub use rooms::Rooms;
