//! Progress of long jobs: a bar on a terminal, plain lines when piped.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Cloning shares the bar; a clone prints its own plain lines.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    last_line: Cell<Instant>,
}

impl Progress {
    /// `total` is the job's size in `unit`s, when known.
    pub fn new(label: &'static str, total: Option<u64>, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(&format!(
                        "{{prefix}} [{{bar:30}}] {{percent:>3}}% {{pos}}/{{len}} {unit} ({{eta}} left) {{msg}}"
                    ))
                    .expect("the progress template is valid")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner(),
            };
            bar.set_prefix(label);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            label,
            last_line: Cell::new(Instant::now()),
        }
    }

    pub fn update(&self, position: u64, message: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(message.to_string());
            }
            None if self.last_line.get().elapsed() >= LINE_EVERY => {
                eprintln!("{}: {message}", self.label);
                self.last_line.set(Instant::now());
            }
            None => {}
        }
    }

    /// Prints a line above the bar (or plainly when piped).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(line.as_ref()),
            None => eprintln!("{}", line.as_ref()),
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
