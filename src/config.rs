//! Configuration from the environment (and an optional `.env` file).
//!
//! Every variable is listed in [`VARIABLES`] with its default; `.env.example`
//! documents the same list (a test keeps the two in step).

use std::fmt;
use std::time::Duration;

use crate::store::{Backend, PoolOptions};

/// A configuration variable: its name, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// `None` when unset has a meaning of its own, described in `help`.
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// Secrets are never printed or logged.
    pub secret: bool,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://necmail.db?mode=rwc";

pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "DATABASE_URL",
        default: Some(DEFAULT_DATABASE_URL),
        help: "Where necmail keeps its data: sqlite://FILE?mode=rwc or postgres://USER:PASS@HOST:PORT/DB.",
        secret: false,
    },
    Variable {
        name: "NECMAIL_DB_MAX_CONNECTIONS",
        default: Some("5"),
        help: "How many database connections each necmail process opens at most.",
        secret: false,
    },
    Variable {
        name: "NECMAIL_LOG",
        default: None,
        help: "Log filter, e.g. info or info,necmail=debug. Unset: info for serve, warn for other commands.",
        secret: false,
    },
    Variable {
        name: "NECMAIL_LOG_FORMAT",
        default: Some("text"),
        help: "Log format on stderr: text or json.",
        secret: false,
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub db_max_connections: u32,
    pub log_filter: Option<String>,
    pub log_format: LogFormat,
}

/// One variable that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: &'static str,
    pub reason: String,
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.variable, p.reason))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    Default,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if Backend::from_url(&database_url).is_none() {
            problems.push(Problem {
                variable: "DATABASE_URL",
                reason: format!(
                    "{} must start with sqlite:// or postgres://",
                    redact_url(&database_url)
                ),
            });
        }

        let db_max_connections = match get("NECMAIL_DB_MAX_CONNECTIONS") {
            None => 5,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    problems.push(Problem {
                        variable: "NECMAIL_DB_MAX_CONNECTIONS",
                        reason: format!("{v:?} is not a whole number from 1 to 1000"),
                    });
                    5
                }
            },
        };

        let log_filter = get("NECMAIL_LOG");
        if let Some(filter) = &log_filter {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(filter) {
                problems.push(Problem {
                    variable: "NECMAIL_LOG",
                    reason: format!("{filter:?} is not a log filter: {e}"),
                });
            }
        }

        let log_format = match get("NECMAIL_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problems.push(Problem {
                    variable: "NECMAIL_LOG_FORMAT",
                    reason: format!("{other:?} is not text or json"),
                });
                LogFormat::Text
            }
        };

        if problems.is_empty() {
            Ok(Config {
                database_url,
                db_max_connections,
                log_filter,
                log_format,
            })
        } else {
            Err(ConfigError(problems))
        }
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// Every variable with its effective value, secrets redacted.
    pub fn describe(&self, is_set: impl Fn(&str) -> bool) -> Vec<(&'static str, String, Source)> {
        VARIABLES
            .iter()
            .map(|var| {
                let value = match var.name {
                    "DATABASE_URL" => redact_url(&self.database_url),
                    "NECMAIL_DB_MAX_CONNECTIONS" => self.db_max_connections.to_string(),
                    "NECMAIL_LOG" => self.log_filter.clone().unwrap_or_else(|| "(unset)".into()),
                    "NECMAIL_LOG_FORMAT" => match self.log_format {
                        LogFormat::Text => "text".into(),
                        LogFormat::Json => "json".into(),
                    },
                    other => unreachable!("variable {other} is not described"),
                };
                let value = if var.secret {
                    "(redacted)".to_owned()
                } else {
                    value
                };
                let source = if is_set(var.name) {
                    Source::Environment
                } else {
                    Source::Default
                };
                (var.name, value, source)
            })
            .collect()
    }
}

/// A URL with its password replaced, safe to print and log.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => raw.split_once('@').map_or_else(
            || raw.to_owned(),
            |(_, host)| format!("(credentials redacted)@{host}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn with_nothing_set_the_defaults_work() {
        let c = load(&[]).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.db_max_connections, 5);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn every_bad_variable_is_named_with_its_reason() {
        let err = load(&[
            ("DATABASE_URL", "mysql://x"),
            ("NECMAIL_DB_MAX_CONNECTIONS", "lots"),
            ("NECMAIL_LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "DATABASE_URL",
                "NECMAIL_DB_MAX_CONNECTIONS",
                "NECMAIL_LOG_FORMAT"
            ]
        );
        assert!(err.to_string().contains("\"lots\" is not a whole number"));
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://necmail:hunter2@db:5432/necmail"),
            "postgres://necmail:REDACTED@db:5432/necmail"
        );
        assert_eq!(
            redact_url("sqlite://necmail.db?mode=rwc"),
            "sqlite://necmail.db?mode=rwc"
        );
        let c = load(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]).unwrap();
        let described = c.describe(|_| true);
        assert!(described.iter().all(|(_, v, _)| !v.contains("hunter2")));
    }

    #[test]
    fn the_env_example_documents_every_variable_with_its_default() {
        let example = include_str!("../.env.example");
        for var in VARIABLES {
            let line = match var.default {
                Some(default) => format!("{}={}", var.name, default),
                None => format!("# {}=", var.name),
            };
            assert!(
                example.lines().any(|l| l.trim() == line),
                ".env.example lacks the line {line:?}"
            );
        }
    }
}
