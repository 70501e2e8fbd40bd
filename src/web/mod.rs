//! The web pages `necmail serve` answers: subscribe, confirm, unsubscribe
//! (with RFC 8058 one-click), preferences, the archive, and operations.

pub(crate) mod store;

pub use store::SiteStore;
pub(crate) use store::impl_site_store;
