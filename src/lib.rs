//! necmail: a self-hosted newsletter service that mails each NEC report to
//! party members and councillors.
//!
//! The crate is split by domain: [`lists`] and [`subscribers`] hold the
//! audience, [`reports`] the reports and [`campaigns`] their sending;
//! [`store`] keeps everything on SQLite or PostgreSQL, [`delivery`] sends,
//! and [`serve`] and [`cli`] are the daemon and the admin's command line.
//!
//! # Layers
//! Dependencies run one way, down this list: a module uses only modules on
//! the lines above its own, never one on its own line or below. At the
//! bottom are the error every store trait returns and helpers for text;
//! then the domain modules, which declare the store traits they need;
//! configuration, which parses values into domain types; the storage layer,
//! which implements the domain's traits; and the parts that wire it all
//! together on top. Tests are exempt: they may exercise the layers together.
//! A test (in `conventions.rs`) reads this list and checks every `crate::` path in
//! `src/` against it.
//!
//! ```text
//! error text
//! lists tokens schedule meetings health
//! subscribers
//! config
//! telemetry reports admin feedback
//! render campaigns
//! store
//! delivery
//! scheduler
//! web
//! inbound
//! serve
//! cli
//! ```

/// An enum stored and shown as fixed strings: `ALL`, `as_str`, `FromStr`,
/// `Display` and `Serialize` from one list of `Variant = "text"` pairs.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::error::UnknownName {
                        given: other.to_owned(),
                        expected: concat!($($text, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod admin;
pub mod campaigns;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod error;
pub mod feedback;
pub mod health;
pub mod inbound;
pub mod lists;
pub mod meetings;
pub mod render;
pub mod reports;
pub mod schedule;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod subscribers;
pub mod telemetry;
pub mod text;
pub mod tokens;
pub mod web;

#[cfg(test)]
mod conventions;
