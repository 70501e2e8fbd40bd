//! Rendering: a report becomes an HTML email and a plain-text email through
//! Tera templates, rendered once per campaign and personalised per recipient.

pub(crate) mod encoding;
mod inline;
mod markdown;
mod personal;
mod templates;
#[cfg(test)]
mod tests;

pub use markdown::{TEXT_WIDTH, to_html, to_text, wrap};
pub use personal::{
    ListInfo, MessageMeta, Prepared, Recipient, RenderError, Rendered, Site, Splice, TestLinks,
};
pub use templates::{BUILT_IN, TemplateError, Templates};
