//! Rendering: a report becomes an HTML email and a plain-text email through
//! Tera templates, rendered once per campaign and personalised per recipient.

pub(crate) mod encoding;
mod markdown;
mod personal;
mod templates;
#[cfg(test)]
mod tests;

pub use markdown::{TEXT_WIDTH, inline_text, to_html, to_text, unique_anchor, wrap};
pub use personal::{ListInfo, MessageMeta, Prepared, Recipient, RenderError, Rendered, Site};
pub use templates::{BUILT_IN, TemplateError, Templates};
