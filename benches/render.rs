//! The per-recipient step of a campaign on a 3,000-word report: render the
//! templates for one recipient and write the whole MIME message.
//!
//!   cargo bench --bench render

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use necmail::config::Config;
use necmail::delivery::Addressing;
use necmail::render::{Prepared, Site, Templates};
use necmail::subscribers::Attributes;

mod support;
use support::{members, report};

fn per_recipient(c: &mut Criterion) {
    let config = Config::from_lookup(|_| None).expect("the default configuration is valid");
    let signer = config.signer();
    let templates = Arc::new(Templates::load(None).expect("the built-in templates load"));
    let report = report();
    let prepared = Prepared::new(Arc::clone(&templates), &report, &Site::from_config(&config))
        .expect("it renders");
    let list = members();
    let mut councillor = Attributes::new();
    councillor.set("role".into(), "councillor".into());
    let member = Attributes::new();
    let mut out = String::new();
    let mut i: i64 = 0;

    c.bench_function(
        "per recipient: addressing, templates and MIME (3,000 words)",
        |b| {
            b.iter(|| {
                i += 1;
                let email = format!("member{i}@example.org");
                let attributes = if i % 10 == 0 { &councillor } else { &member };
                let addressing = Addressing::new(&config, &signer, i, &list, 1, i);
                out.clear();
                prepared
                    .write_message(
                        &addressing.recipient(&email, Some("Jo Bloggs"), attributes, &list),
                        &addressing.meta(),
                        &mut out,
                    )
                    .expect("it renders");
                black_box(out.len())
            })
        },
    );

    c.bench_function("per campaign: prepare a 3,000-word report", |b| {
        b.iter(|| {
            black_box(
                Prepared::new(Arc::clone(&templates), &report, &Site::from_config(&config))
                    .expect("it renders"),
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = per_recipient
}
criterion_main!(benches);
