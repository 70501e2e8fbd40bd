//! The shared fuzz driver: seed corpus, mutation, time budget, and what to
//! do when an input panics or is slow. Every fuzz target is a test that
//! builds a [`Fuzz`] and calls [`Fuzz::run`] with its target function.
//!
//! Environment:
//! - `NECMAIL_FUZZ_SECS`: how long each target runs (default 3, a smoke run).
//! - `NECMAIL_FUZZ_SEED`: the random seed (default: from the clock); every
//!   run prints its seed, so a failure can be replayed.
//! - `NECMAIL_FUZZ_INPUT_MS`: the most one input may take (default 1000 in
//!   a release build, the long runs; 10000 in the debug build of the test
//!   suite's smoke run, which shares a busy machine with every other test).
//!
//! Each input runs on a thread with a 2 MiB stack, as the daemon's workers
//! have. Before it runs, it is written to `target/fuzz/NAME/current`, so an
//! input that aborts the process (a stack overflow) is still on disk; an
//! input that panics or takes too long is saved as
//! `target/fuzz/NAME/crash-SEED-N` and fails the test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fuzz target's configuration.
pub struct Fuzz {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<&'static [u8]>,
    max_len: usize,
}

/// Why an input failed.
enum Failure {
    Panicked(String),
    Slow(Duration),
}

impl Fuzz {
    /// A target named `name` (its folder under `target/fuzz/`).
    pub fn new(name: &'static str) -> Self {
        Fuzz {
            name,
            seeds: Vec::new(),
            dictionary: Vec::new(),
            max_len: 2 * 1024 * 1024,
        }
    }

    /// Adds every file under each folder (relative to the crate root) to the seeds.
    pub fn seed_dirs(mut self, dirs: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .unwrap_or_else(|e| panic!("seed folder {dir}: {e}"))
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|path| path.is_file())
                .collect();
            files.sort();
            for file in files {
                self.seeds.push(std::fs::read(&file).unwrap());
            }
        }
        self
    }

    /// Adds one seed.
    pub fn seed(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.seeds.push(input.into());
        self
    }

    /// Tokens the mutator inserts and repeats (tags, markers, delimiters).
    pub fn dictionary(mut self, tokens: &[&'static str]) -> Self {
        self.dictionary.extend(tokens.iter().map(|t| t.as_bytes()));
        self
    }

    /// Runs `target` on the seeds, then on mutated inputs until the time
    /// budget is spent. Fails the test, naming the saved input, if one
    /// panics or takes longer than allowed.
    pub fn run(self, target: impl Fn(&[u8]) + Send + Sync + 'static) {
        let budget = Duration::from_secs(env_number("NECMAIL_FUZZ_SECS", 3));
        let default_ms = if cfg!(debug_assertions) { 10_000 } else { 1000 };
        let per_input = Duration::from_millis(env_number("NECMAIL_FUZZ_INPUT_MS", default_ms));
        let seed = env_number("NECMAIL_FUZZ_SEED", clock_seed());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/fuzz")
            .join(self.name);
        std::fs::create_dir_all(&dir).unwrap();
        eprintln!(
            "fuzz {}: seed {seed}, {} s, {} seeds",
            self.name,
            budget.as_secs(),
            self.seeds.len()
        );
        assert!(!self.seeds.is_empty(), "fuzz {}: no seeds", self.name);
        let started_input: Arc<Mutex<Option<Instant>>> = Arc::default();
        let watched = Arc::clone(&started_input);
        let name = self.name;
        let current = dir.join("current");
        let worker = std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let mut rng = Rng(seed | 1);
                let deadline = Instant::now() + budget;
                let mut runs: u64 = 0;
                let mut queue = self.seeds.clone().into_iter();
                loop {
                    let input = match queue.next() {
                        Some(seed_input) => seed_input,
                        None if Instant::now() >= deadline => break,
                        None => self.mutant(&mut rng),
                    };
                    std::fs::write(&current, &input).unwrap();
                    *watched.lock().unwrap() = Some(Instant::now());
                    let started = Instant::now();
                    let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
                    let took = started.elapsed();
                    *watched.lock().unwrap() = None;
                    runs += 1;
                    let failure = match outcome {
                        Err(panic) => Some(Failure::Panicked(panic_message(&panic))),
                        Ok(()) if took > per_input => Some(Failure::Slow(took)),
                        Ok(()) => None,
                    };
                    if let Some(failure) = failure {
                        let saved = dir.join(format!("crash-{seed}-{runs}"));
                        std::fs::write(&saved, &input).unwrap();
                        return Err(match failure {
                            Failure::Panicked(message) => format!(
                                "fuzz {name}: input {} panicked: {message}",
                                saved.display()
                            ),
                            Failure::Slow(took) => format!(
                                "fuzz {name}: input {} ({} bytes) took {took:?}, over {per_input:?}",
                                saved.display(),
                                input.len()
                            ),
                        });
                    }
                }
                Ok(runs)
            })
            .unwrap();
        let hung = per_input * 10 + Duration::from_secs(5);
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            let since = *started_input.lock().unwrap();
            if let Some(since) = since {
                assert!(
                    since.elapsed() < hung,
                    "fuzz {name}: the input in {}/current has run for over {hung:?} (seed {seed})",
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("target/fuzz")
                        .join(name)
                        .display()
                );
            }
        }
        match worker.join().expect("the fuzz worker") {
            Ok(runs) => eprintln!("fuzz {name}: {runs} inputs, no failure (seed {seed})"),
            Err(message) => panic!("{message} (seed {seed})"),
        }
    }

    /// A new input: a seed, mutated a few times.
    fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let mut input = self.seeds[rng.below(self.seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            self.mutate(&mut input, rng);
        }
        input.truncate(self.max_len);
        input
    }

    fn mutate(&self, input: &mut Vec<u8>, rng: &mut Rng) {
        let at = rng.below(input.len() + 1);
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => input.insert(at, rng.byte()),
            2 if !input.is_empty() => {
                let start = rng.below(input.len());
                let end = (start + rng.below(64) + 1).min(input.len());
                input.drain(start..end);
            }
            3 if !self.dictionary.is_empty() => {
                let token = self.dictionary[rng.below(self.dictionary.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 if !self.dictionary.is_empty() => {
                // A token repeated, up to thousands of times: nesting.
                let token = self.dictionary[rng.below(self.dictionary.len())];
                let times = 1 << rng.below(14);
                let run: Vec<u8> = token.repeat(times);
                input.splice(at..at, run);
            }
            5 if !input.is_empty() => {
                // A slice of the input repeated: long tables and lists.
                let start = rng.below(input.len());
                let len = (rng.below(256) + 1).min(input.len() - start);
                let chunk = input[start..start + len].to_vec();
                let times = 1 << rng.below(10);
                input.splice(at..at, chunk.repeat(times));
            }
            6 => {
                // Spliced with another seed.
                let other = &self.seeds[rng.below(self.seeds.len())];
                let from = rng.below(other.len() + 1);
                input.splice(at..at, other[from..].iter().copied());
            }
            _ => input.truncate(at),
        }
    }
}

/// A small xorshift generator: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn byte(&mut self) -> u8 {
        const BYTES: &[u8] = b"<>/[]()*_`#|-=:!&;\"' \n\t\r\\\x00\xff\xc3\xa9";
        if self.next().is_multiple_of(2) {
            BYTES[self.below(BYTES.len())]
        } else {
            self.next() as u8
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
