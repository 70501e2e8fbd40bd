//! necmail's integration tests: one binary, one module per domain.

mod support;

mod cli;
mod import;
mod lists;
mod subscribers;
