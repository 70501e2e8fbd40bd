//! Checks of the source tree's shape: dependencies between the top-level
//! modules run the one way that the crate documentation's "Layers" list
//! gives, and no line of code is too wide for rustfmt to have formatted it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Each module's line in the list of layers in `src/lib.rs`, counted from
/// the bottom layer's line, 0.
fn layers(lib: &str) -> HashMap<String, usize> {
    let doc: Vec<&str> = lib
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let start = doc
        .iter()
        .position(|l| *l == "# Layers")
        .expect("src/lib.rs documents its layers");
    let block: Vec<&str> = doc[start..]
        .iter()
        .skip_while(|l| **l != "```text")
        .skip(1)
        .take_while(|l| **l != "```")
        .copied()
        .collect();
    assert!(
        !block.is_empty(),
        "the layers are listed in a ```text block"
    );
    block
        .iter()
        .enumerate()
        .flat_map(|(line, modules)| {
            modules
                .split_whitespace()
                .map(move |m| (m.to_owned(), line))
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ is readable").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's top-level modules that `code` names through `crate::`,
/// leaving out comments and everything from the first `#[cfg(test)]`.
fn uses(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b};`: each item's first segment.
                let group = group.split('}').next().unwrap_or_default();
                found.extend(group.split(',').map(|item| first_segment(item.trim())));
            } else {
                found.push(first_segment(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The violations of `layers` in the file at `path` (relative to `src/`),
/// whose code is `code`.
fn violations(layers: &HashMap<String, usize>, path: &str, code: &str) -> Vec<String> {
    let module = first_segment(path.trim_end_matches(".rs"));
    let Some(&own) = layers.get(&module) else {
        return if matches!(module.as_str(), "lib" | "main" | "conventions") {
            Vec::new()
        } else {
            vec![format!(
                "{path}: module {module} is not in the list of layers"
            )]
        };
    };
    let mut found = Vec::new();
    for used in uses(code) {
        if used == module {
            continue;
        }
        match layers.get(&used) {
            Some(&theirs) if theirs < own => {}
            Some(_) => found.push(format!(
                "{path}: {module} uses {used}, which is not on a line above it"
            )),
            None => found.push(format!("{path}: {module} uses {used}, which is not listed")),
        }
    }
    found.sort();
    found.dedup();
    found
}

/// rustfmt's line width.
const MAX_WIDTH: usize = 100;

/// How much code may share an over-wide line with a string literal: room
/// for `let name = ` or `const NAME: &str = `, which rustfmt cannot break.
const BESIDE_A_LITERAL: usize = 40;

/// The numbers of the lines of `code` wider than [`MAX_WIDTH`] that are not
/// string literals. rustfmt leaves a statement it cannot fit unformatted, so
/// such a line usually hides a badly formatted statement around it.
fn too_wide(code: &str) -> Vec<usize> {
    let mut in_string = false;
    let mut wide = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let began_in_string = in_string;
        let mut outside = 0;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_string {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '/' if chars.peek() == Some(&'/') => break,
                '"' => in_string = true,
                '\'' => {
                    // A char literal such as '"' or '\\': skip it whole.
                    let rest: String = chars.clone().take(3).collect();
                    if rest.starts_with('\\') {
                        chars.nth(2);
                    } else if rest.chars().nth(1) == Some('\'') {
                        chars.nth(1);
                    }
                    outside += 1;
                }
                c if !c.is_whitespace() => outside += 1,
                _ => {}
            }
        }
        let wider = line.chars().count() > MAX_WIDTH;
        if wider && !began_in_string && outside > BESIDE_A_LITERAL {
            wide.push(number + 1);
        }
    }
    wide
}

/// Every source file under `src/`, by its path relative to `src/`.
fn source_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    files
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap();
            let code = std::fs::read_to_string(file).unwrap();
            (relative.to_string_lossy().into_owned(), code)
        })
        .collect()
}

#[test]
fn every_module_uses_only_the_layers_beneath_its_own() {
    let files = source_files();
    let lib = &files.iter().find(|(path, _)| path == "lib.rs").unwrap().1;
    let layers = layers(lib);
    let problems: Vec<String> = files
        .iter()
        .flat_map(|(path, code)| violations(&layers, path, code))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_line_of_code_is_wider_than_rustfmt_allows() {
    let problems: Vec<String> = source_files()
        .iter()
        .flat_map(|(path, code)| {
            too_wide(code)
                .into_iter()
                .map(move |n| format!("{path}:{n}"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "lines over {MAX_WIDTH} columns: {}",
        problems.join(", ")
    );
}

#[test]
fn only_string_literals_may_run_over_the_width() {
    let long = "x".repeat(120);
    let code = format!(
        "const SQL: &str = \"{long}\";\n\
         let sql = \"\n{long}\n\";\n\
         // {long}\n\
         tracing::info!(error = %e, answer = 42, other = 1, more = 2, \"{long}\");\n\
         let x = call(argument_one, argument_two, '\"', '\\\\', {long});\n"
    );
    assert_eq!(too_wide(&code), vec![6, 7]);
}

#[test]
fn the_check_finds_an_upward_use_however_it_is_spelled() {
    let layers =
        layers("//! # Layers\n//! ```text\n//! error\n//! config\n//! store web\n//! ```\n");
    for code in [
        "use crate::store::Store;",
        "use crate::{error::StoreError, store};",
        "fn f() { crate::store::connect(); }",
        "let x = crate::web::App::new();",
    ] {
        assert!(!violations(&layers, "config.rs", code).is_empty(), "{code}");
    }
    assert!(!violations(&layers, "store/mod.rs", "use crate::web::X;").is_empty());
    assert!(
        !violations(&layers, "config.rs", "use crate::elsewhere::X;").is_empty(),
        "an unlisted module is a violation"
    );
}

#[test]
fn downward_uses_comments_and_tests_are_allowed() {
    let layers =
        layers("//! # Layers\n//! ```text\n//! error\n//! config\n//! store web\n//! ```\n");
    let code = "use crate::error::StoreError;\n\
                // see crate::web for the pages\n\
                /// [`crate::web`] shows it.\n\
                #[cfg(test)]\n\
                mod tests { use crate::web::X; }\n";
    assert_eq!(
        violations(&layers, "store/sqlite.rs", code),
        Vec::<String>::new()
    );
    assert_eq!(
        violations(&layers, "store/mod.rs", "use crate::config::Backend;"),
        Vec::<String>::new()
    );
}
