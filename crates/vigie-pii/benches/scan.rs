//! Scanner figures for BENCHMARKS.md: throughput on prose, prose with ~1 % sensitive data,
//! source code with logs, and hostile input (criterion), each beside a baseline in the same run — one regular
//! expression per recognizer, each run over the whole text, as a regex-per-entity detector
//! does; then per-prompt latency percentiles for 200 B, 2 KB and 64 KB prompts.
//!
//! Run: `cargo bench -p vigie-pii --bench scan` (add `-- --quick` for a short run).
use criterion::{Criterion, Throughput, black_box};
use regex::bytes::Regex;
use std::time::{Duration, Instant};
use vigie_pii::{Scanner, corpus};

const SIZE: usize = 1 << 20;

/// The obvious alternative design: one regex per recognizer, each a full pass.
fn regex_baseline() -> Vec<Regex> {
    [
        r"\b(?:\d[ -]?){13,19}\b",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        r"(?:\+|\b0)\d(?:[ .-]?\d){7,13}\b",
        r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
        r"\b\d{3}-\d{2}-\d{4}\b",
        r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b",
        r"\b\d{8}-?[A-Z]\b",
        r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b",
        r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|sk-[A-Za-z0-9_-]{32,}|xox[bpars]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*)",
    ]
    .iter()
    // ASCII word boundaries and classes (`(?-u)`), so the baseline keeps the regex crate's
    // fast engines on non-ASCII text: a fair comparison, not a strawman.
    .map(|p| Regex::new(&format!("(?-u){p}")).expect("baseline patterns are valid"))
    .collect()
}

fn throughput(c: &mut Criterion, scanner: &Scanner) {
    let baseline = regex_baseline();
    let corpora = [
        ("a_prose", corpus::prose(11, SIZE)),
        ("b_prose_1pct_pii", corpus::prose_with_pii(12, SIZE)),
        ("c_code_and_logs", corpus::code_and_logs(13, SIZE)),
        ("d_hostile", hostile(SIZE)),
    ];
    let mut g = c.benchmark_group("scan_throughput");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(20);
    for (name, text) in &corpora {
        g.bench_function(format!("{name}/vigie"), |b| b.iter(|| black_box(scanner.scan(black_box(text))).len()));
        g.bench_function(format!("{name}/regex_per_recognizer"), |b| {
            b.iter(|| baseline.iter().map(|r| r.find_iter(black_box(text.as_bytes())).count()).sum::<usize>())
        });
    }
    g.finish();
}

/// Input written to make a scanner work hard: key prefixes with no key after them, digit
/// groups that are almost numbers, `@` without addresses, half private-key headers.
fn hostile(size: usize) -> String {
    let units = ["sk-", "xoxb-", "0 6 1 2 3 4 5 ", "a@", "-----BEGIN ", "eyJ.", "4532 0151 1283 ", "::", "password: "];
    let mut s = String::with_capacity(size + 16);
    let mut i = 0;
    while s.len() < size {
        s.push_str(units[(i / 64) % units.len()]);
        i += 1;
    }
    s
}

/// Prompts of `size` bytes cut from the ~1 % PII corpus at char boundaries.
fn prompts(size: usize, count: usize) -> Vec<String> {
    let text = corpus::prose_with_pii(21, size * count + size);
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    while out.len() < count {
        let mut end = (at + size).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push(text[at..end].to_owned());
        at = end;
    }
    out
}

fn latency(scanner: &Scanner) {
    println!("\nper-prompt latency, one core (prompts cut from the ~1 % PII corpus)");
    println!("| prompt | prompts | p50 | p99 | p99.9 | findings/prompt |");
    println!("|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (label, size, count, rounds) in [("200 B", 200, 2000, 20), ("2 KB", 2048, 1000, 20), ("64 KB", 65536, 64, 10)] {
        let ps = prompts(size, count);
        let mut times: Vec<Duration> = Vec::with_capacity(count * rounds);
        let mut found = 0usize;
        for _ in 0..rounds {
            for p in &ps {
                let t = Instant::now();
                let f = scanner.scan(black_box(p));
                times.push(t.elapsed());
                found += f.len();
            }
        }
        times.sort();
        let pct = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
        println!(
            "| {label} | {count} × {rounds} | {:.1} µs | {:.1} µs | {:.1} µs | {:.2} |",
            pct(0.5).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            pct(0.999).as_secs_f64() * 1e6,
            found as f64 / (count * rounds) as f64
        );
        medians.push(pct(0.5).as_secs_f64());
    }
    println!("64 KB / 2 KB median ratio: {:.1} (linear cost: 32)\n", medians[2] / medians[1]);
}

fn main() {
    let scanner = Scanner::default();
    latency(&scanner);
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &scanner);
    c.final_summary();
}
