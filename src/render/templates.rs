//! The Tera templates: compiled into the binary, overridable from a folder,
//! and checked when they load so that a mistake is reported before any send.

use std::path::{Path, PathBuf};

use tera::Tera;

/// The built-in templates, by the name they are loaded under.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "email/layout.html.tera",
        include_str!("../../templates/email/layout.html.tera"),
    ),
    (
        "email/report.html.tera",
        include_str!("../../templates/email/report.html.tera"),
    ),
    (
        "email/report.txt.tera",
        include_str!("../../templates/email/report.txt.tera"),
    ),
    (
        "email/report.subject.tera",
        include_str!("../../templates/email/report.subject.tera"),
    ),
    (
        "email/confirm.subject.tera",
        include_str!("../../templates/email/confirm.subject.tera"),
    ),
    (
        "email/confirm.txt.tera",
        include_str!("../../templates/email/confirm.txt.tera"),
    ),
    (
        "email/confirm.html.tera",
        include_str!("../../templates/email/confirm.html.tera"),
    ),
    (
        "email/preferences.subject.tera",
        include_str!("../../templates/email/preferences.subject.tera"),
    ),
    (
        "email/preferences.txt.tera",
        include_str!("../../templates/email/preferences.txt.tera"),
    ),
    (
        "email/preferences.html.tera",
        include_str!("../../templates/email/preferences.html.tera"),
    ),
    (
        "pages/layout.html.tera",
        include_str!("../../templates/pages/layout.html.tera"),
    ),
    (
        "pages/subscribe.html.tera",
        include_str!("../../templates/pages/subscribe.html.tera"),
    ),
    (
        "pages/notice.html.tera",
        include_str!("../../templates/pages/notice.html.tera"),
    ),
    (
        "pages/confirm.html.tera",
        include_str!("../../templates/pages/confirm.html.tera"),
    ),
    (
        "pages/unsubscribe.html.tera",
        include_str!("../../templates/pages/unsubscribe.html.tera"),
    ),
    (
        "pages/preferences.html.tera",
        include_str!("../../templates/pages/preferences.html.tera"),
    ),
    (
        "pages/erase.html.tera",
        include_str!("../../templates/pages/erase.html.tera"),
    ),
    (
        "pages/archive.html.tera",
        include_str!("../../templates/pages/archive.html.tera"),
    ),
    (
        "pages/error.html.tera",
        include_str!("../../templates/pages/error.html.tera"),
    ),
    (
        "admin/layout.html.tera",
        include_str!("../../templates/admin/layout.html.tera"),
    ),
    (
        "admin/login.html.tera",
        include_str!("../../templates/admin/login.html.tera"),
    ),
    (
        "admin/set_password.html.tera",
        include_str!("../../templates/admin/set_password.html.tera"),
    ),
    (
        "admin/notice.html.tera",
        include_str!("../../templates/admin/notice.html.tera"),
    ),
    (
        "admin/error.html.tera",
        include_str!("../../templates/admin/error.html.tera"),
    ),
    (
        "admin/dashboard.html.tera",
        include_str!("../../templates/admin/dashboard.html.tera"),
    ),
    (
        "admin/account.html.tera",
        include_str!("../../templates/admin/account.html.tera"),
    ),
    (
        "admin/accounts.html.tera",
        include_str!("../../templates/admin/accounts.html.tera"),
    ),
    (
        "admin/audit.html.tera",
        include_str!("../../templates/admin/audit.html.tera"),
    ),
    (
        "admin/reports.html.tera",
        include_str!("../../templates/admin/reports.html.tera"),
    ),
    (
        "admin/report_new.html.tera",
        include_str!("../../templates/admin/report_new.html.tera"),
    ),
    (
        "admin/sources.html.tera",
        include_str!("../../templates/admin/sources.html.tera"),
    ),
    (
        "admin/meetings.html.tera",
        include_str!("../../templates/admin/meetings.html.tera"),
    ),
    (
        "admin/report_edit.html.tera",
        include_str!("../../templates/admin/report_edit.html.tera"),
    ),
    (
        "admin/subscribers.html.tera",
        include_str!("../../templates/admin/subscribers.html.tera"),
    ),
    (
        "admin/subscriber.html.tera",
        include_str!("../../templates/admin/subscriber.html.tera"),
    ),
    (
        "admin/subscriber_confirm.html.tera",
        include_str!("../../templates/admin/subscriber_confirm.html.tera"),
    ),
    (
        "admin/subscriber_import.html.tera",
        include_str!("../../templates/admin/subscriber_import.html.tera"),
    ),
    (
        "admin/lists.html.tera",
        include_str!("../../templates/admin/lists.html.tera"),
    ),
    (
        "admin/suppressions.html.tera",
        include_str!("../../templates/admin/suppressions.html.tera"),
    ),
    (
        "admin/events.html.tera",
        include_str!("../../templates/admin/events.html.tera"),
    ),
    (
        "admin/campaigns.html.tera",
        include_str!("../../templates/admin/campaigns.html.tera"),
    ),
    (
        "admin/campaign_new.html.tera",
        include_str!("../../templates/admin/campaign_new.html.tera"),
    ),
    (
        "admin/campaign.html.tera",
        include_str!("../../templates/admin/campaign.html.tera"),
    ),
    (
        "admin/campaign_confirm.html.tera",
        include_str!("../../templates/admin/campaign_confirm.html.tera"),
    ),
    (
        "email/overdue.subject.tera",
        include_str!("../../templates/email/overdue.subject.tera"),
    ),
    (
        "email/overdue.txt.tera",
        include_str!("../../templates/email/overdue.txt.tera"),
    ),
    (
        "email/left.subject.tera",
        include_str!("../../templates/email/left.subject.tera"),
    ),
    (
        "email/left.txt.tera",
        include_str!("../../templates/email/left.txt.tera"),
    ),
    (
        "email/help.subject.tera",
        include_str!("../../templates/email/help.subject.tera"),
    ),
    (
        "email/help.txt.tera",
        include_str!("../../templates/email/help.txt.tera"),
    ),
];

/// A template that cannot be used: which file, which line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

/// The loaded templates, and where each came from.
pub struct Templates {
    pub(crate) tera: Tera,
    sources: Vec<(String, String, String)>,
}

impl Templates {
    /// Loads the built-in templates, each replaced by the file of the same
    /// relative path under `dir` when there is one; other `.tera` files under
    /// `dir` are loaded too, for `{% include %}` and `{% import %}`.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sources: Vec<(String, String, String)> = Vec::new();
        for (name, text) in BUILT_IN {
            sources.push((
                (*name).to_owned(),
                format!("built-in {name}"),
                (*text).to_owned(),
            ));
        }
        if let Some(dir) = dir {
            let files = tera_files(dir).map_err(|e| TemplateError {
                file: dir.display().to_string(),
                line: None,
                reason: format!("cannot read the templates folder: {e}"),
            })?;
            for path in files {
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                    file: path.display().to_string(),
                    line: None,
                    reason: format!("cannot read it: {e}"),
                })?;
                let origin = path.display().to_string();
                match sources.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(entry) => *entry = (name, origin, text),
                    None => sources.push((name, origin, text)),
                }
            }
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html.tera", ".html"]);
        tera.set_escape_fn(super::encoding::escape_html);
        tera.register_filter("wrap", wrap_filter);
        let raw: Vec<(&str, &str)> = sources
            .iter()
            .map(|(n, _, t)| (n.as_str(), t.as_str()))
            .collect();
        let templates = Templates {
            tera: Tera::default(),
            sources: sources.clone(),
        };
        tera.add_raw_templates(raw)
            .map_err(|e| templates.explain(&e))?;
        Ok(Templates { tera, sources })
    }

    /// Renders `name` with `context`; errors name the file and line.
    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, TemplateError> {
        self.tera
            .render(name, context)
            .map_err(|e| self.explain(&e))
    }

    /// Turns a Tera error into a [`TemplateError`] naming the template's file
    /// (the override's path, or the built-in name) and the line at fault.
    fn explain(&self, err: &tera::Error) -> TemplateError {
        let mut chain = vec![err.to_string()];
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        let text = chain.join("\n");
        let name = quoted(&text, '\'').filter(|n| self.sources.iter().any(|(s, _, _)| s == n));
        let entry = name.and_then(|n| self.sources.iter().find(|(s, _, _)| *s == n));
        let file = entry.map_or_else(|| "templates".to_owned(), |(_, origin, _)| origin.clone());
        // Syntax errors carry " --> LINE:COL"; render errors name a variable
        // in backticks, which we look for in the template's text.
        let line = text
            .split("--> ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|l| l.trim().parse().ok())
            .or_else(|| {
                let variable = quoted(&text, '`')?;
                let (_, _, source) = entry?;
                source
                    .lines()
                    .position(|l| l.contains(variable))
                    .map(|i| i + 1)
            });
        let reason = chain
            .iter()
            .rev()
            .find(|m| !m.starts_with("Failed to"))
            .unwrap_or(&chain[0])
            .lines()
            .filter(|l| {
                let l = l.trim();
                !l.is_empty()
                    && !l.starts_with("-->")
                    && !l.starts_with('|')
                    && !l.chars().next().is_some_and(|c| c.is_ascii_digit())
            })
            .map(|l| l.trim().trim_start_matches("= ").to_owned())
            .collect::<Vec<_>>()
            .join("; ");
        TemplateError { file, line, reason }
    }
}

/// `{{ text | wrap }}` or `{{ text | wrap(width=60) }}`: wraps plain text the
/// way report bodies are wrapped (76 columns, figures kept whole).
fn wrap_filter(
    value: &tera::Value,
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = tera::try_get_value!("wrap", "value", String, value);
    let width = match args.get("width") {
        Some(w) => tera::try_get_value!("wrap", "width", usize, w),
        None => super::TEXT_WIDTH,
    };
    let lines: Vec<String> = text
        .lines()
        .flat_map(|line| super::wrap(line, width.max(20)))
        .collect();
    Ok(tera::Value::String(lines.join("\n")))
}

/// The first `q`-quoted word in `text`.
fn quoted(text: &str, q: char) -> Option<&str> {
    let start = text.find(q)? + 1;
    let len = text[start..].find(q)?;
    Some(&text[start..start + len])
}

fn tera_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tera") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
