//! The per-message work of a campaign worker on a 3,000-word report: fill
//! in the addressing, write the MIME message, and send it through the SMTP
//! relay to a sink on loopback (PIPELINING offered, as Postfix does). A
//! counting allocator reports the allocations per message of each step.
//! The DKIM group signs that message with each algorithm.
//!
//!   cargo bench --bench send

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use necmail::config::{Config, DkimSettings, SmtpUrl};
use necmail::delivery::dkim::{DkimSigner, SIGNATURE_ROOM, sign_with};
use necmail::delivery::{Addressing, Envelope, Outgoing, SmtpRelay, Transport};
use necmail::render::{Prepared, Site, Templates};
use necmail::subscribers::{Attributes, SubscriberEmail};

mod support;
use support::{members, report};

/// Counts the allocations (and reallocations) of the thread that asks.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as the caller promised.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as the caller promised.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let value = f();
    COUNTING.with(|c| c.set(false));
    (value, ALLOCATIONS.with(Cell::get))
}

/// The report, rendered for the campaign.
fn prepared(config: &Config) -> Prepared {
    let templates = Arc::new(Templates::load(None).expect("the built-in templates load"));
    Prepared::new(templates, &report(), &Site::from_config(config)).expect("it renders")
}

/// An SMTP server on loopback, on threads of its own, that accepts every
/// message and keeps nothing.
fn sink() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || converse(stream));
        }
    });
    addr
}

fn converse(stream: std::net::TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut write = stream.try_clone()?;
    let mut read = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::with_capacity(1024);
    write.write_all(b"220 sink\r\n")?;
    let mut in_data = false;
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if in_data {
            if line == b".\r\n" {
                in_data = false;
                write.write_all(b"250 2.0.0 Ok: queued\r\n")?;
            }
            continue;
        }
        let reply: &[u8] = match line.get(..4).map(<[u8]>::to_ascii_uppercase).as_deref() {
            Some(b"EHLO") => b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            Some(b"DATA") => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            Some(b"QUIT") => {
                write.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"250 2.0.0 Ok\r\n",
        };
        write.write_all(reply)?;
    }
}

fn per_message(c: &mut Criterion) {
    let addr = sink();
    let mut config = Config::from_lookup(|_| None).expect("the default configuration is valid");
    config.smtp = Some(SmtpUrl::parse(&format!("smtp://{addr}")).expect("a valid SMTP URL"));
    let signer = config.signer();
    let prepared = prepared(&config);
    let relay = SmtpRelay::new(&config).expect("the relay");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let list = members();
    let mut councillor = Attributes::new();
    councillor.set("role".into(), "councillor".into());
    let member = Attributes::new();
    let emails: Vec<SubscriberEmail> = (0..1000)
        .map(|i| SubscriberEmail::parse(&format!("member{i:07}@example.org")).expect("valid"))
        .collect();
    let mut addressing = Addressing::default();
    let mut out = String::new();
    let mut i: i64 = 0;
    let mut one = |counts: &mut [u64; 2]| {
        i += 1;
        let email = &emails[usize::try_from(i).unwrap_or_default() % emails.len()];
        let attributes = if i % 10 == 0 { &councillor } else { &member };
        let ((), prepare) = allocations(|| {
            addressing.fill(&config, &signer, i, &list, 1, i);
            out.clear();
            let recipient =
                addressing.recipient(email.as_str(), Some("Jo Bloggs"), attributes, &list);
            prepared
                .write_message(&recipient, &addressing.meta(), &mut out)
                .expect("it renders");
        });
        let envelope = Envelope {
            id: "d1",
            mail_from: &addressing.return_path,
            rcpt_to: email,
        };
        let (sent, send) =
            allocations(|| runtime.block_on(relay.send(&envelope, Outgoing::from(out.as_bytes()))));
        sent.expect("the sink takes it");
        counts[0] += prepare;
        counts[1] += send;
    };

    let mut counts = [0; 2];
    one(&mut counts);
    counts = [0; 2];
    let n = 1000;
    for _ in 0..n {
        one(&mut counts);
    }
    let per = |count: u64| count as f64 / f64::from(n);
    println!(
        "allocations per message: {:.1} (addressing and message {:.1}, SMTP {:.1})",
        per(counts[0] + counts[1]),
        per(counts[0]),
        per(counts[1]),
    );

    c.bench_function(
        "per message: addressing, MIME message and SMTP to a sink",
        |b| {
            b.iter(|| {
                let mut counts = [0; 2];
                one(&mut counts);
                black_box(counts)
            })
        },
    );
}

/// One member's message of the report, as a campaign worker writes it.
fn one_message(config: &Config) -> String {
    let list = members();
    let mut addressing = Addressing::default();
    addressing.fill(config, &config.signer(), 1, &list, 1, 1);
    let member = Attributes::new();
    let recipient = addressing.recipient(
        "member0000001@example.org",
        Some("Jo Bloggs"),
        &member,
        &list,
    );
    let mut out = String::new();
    prepared(config)
        .write_message(&recipient, &addressing.meta(), &mut out)
        .expect("it renders");
    out
}

fn dkim(c: &mut Criterion) {
    let config = Config::from_lookup(|_| None).expect("the default configuration is valid");
    let message = one_message(&config);
    let mut group = c.benchmark_group(format!("DKIM: sign a {} KB message", message.len() / 1024));
    for (algorithm, file) in [
        ("rsa-sha256", "rsa2048.pkcs1.pem"),
        ("ed25519", "ed25519.pem"),
    ] {
        let signer = DkimSigner::load(&DkimSettings {
            selector: "nec2025".into(),
            domain: "example.org".into(),
            key_file: format!("{}/tests/fixtures/dkim/{file}", env!("CARGO_MANIFEST_DIR")).into(),
        })
        .expect("the test key loads");
        let mut header = String::with_capacity(SIGNATURE_ROOM);
        group.bench_function(algorithm, |b| {
            b.iter(|| {
                header.clear();
                sign_with(
                    std::slice::from_ref(&signer),
                    message.as_bytes(),
                    1,
                    &mut header,
                )
                .expect("it signs");
                black_box(header.len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = per_message, dkim
}
criterion_main!(benches);
