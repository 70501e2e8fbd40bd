//! Importing reports, ordinary and hostile: the limits that refuse a hostile
//! report must refuse it in about the time an ordinary one takes to import.
//!
//!   cargo bench --bench import

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use necmail::reports::import::{Format, MAX_REPORT_BYTES, parse, parse_html_fragment};

fn import(c: &mut Criterion) {
    let ordinary = include_bytes!("../tests/fixtures/render/three-thousand-words.md");
    c.bench_function("import a 3,000-word Markdown report", |b| {
        b.iter(|| black_box(parse(ordinary, Format::Markdown).expect("it parses")))
    });

    let quoted_lines = format!(
        "{}{}{}",
        "<blockquote>".repeat(60),
        "a<br>".repeat(200_000),
        "</blockquote>".repeat(60)
    );
    assert!(quoted_lines.len() <= MAX_REPORT_BYTES);
    c.bench_function(
        "refuse 1 MB of lines quoted 60 deep (Markdown too large)",
        |b| b.iter(|| black_box(parse_html_fragment(&quoted_lines, "T").expect_err("refused"))),
    );

    let nested_front_matter = format!(
        "---\ntitle: {}{}\n---\nText.\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    c.bench_function("refuse front matter nested 100,000 deep", |b| {
        b.iter(|| {
            black_box(parse(nested_front_matter.as_bytes(), Format::Markdown).expect_err("refused"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = import
}
criterion_main!(benches);
