//! Accuracy of the engine on generated data: recall, precision and exact spans for every type.
//!
//! Scans `corpus::labelled(1, 300)`, `corpus::broken(2, 150)` and `corpus::negatives(3, 3000)`
//! with `Scanner::default()`, prints a markdown table with examples of what went wrong
//! (`cargo test -p vigie-pii --test accuracy -- --nocapture`), then asserts the targets, all of
//! them at once so one run shows every gap.
//!
//! A finding is a true positive when its type equals a label's and its code-point span overlaps
//! the label's (each label counts once); any other finding is a false positive of its type, and
//! every label left unmatched a false negative of its type.

use vigie_pii::corpus::{self, Label, Sample};
use vigie_pii::{Finding, PiiType, Scanner};

/// Types whose values carry a checksum: a validated value is nearly certain.
const CHECKSUMMED: [PiiType; 12] = corpus::CHECKSUM_TYPES;
/// Targets for checksummed types (recall, precision).
const CHECKSUMMED_TARGET: (f64, f64) = (0.99, 0.99);
/// Targets for the types recognised by shape, metadata or context (recall, precision).
const SHAPED_TARGET: (f64, f64) = (0.97, 0.95);
/// Share of true positives whose span is exactly the labelled one, for every type.
const EXACT_SPAN_TARGET: f64 = 0.95;
/// Examples kept per type and per kind of mistake (false positives: per source).
const EXAMPLES: usize = 5;

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Labelled,
    Broken,
    Negative,
}

#[derive(Default)]
struct Tally {
    support: usize,
    true_positives: usize,
    exact: usize,
    false_negatives: usize,
    /// False positives in labelled, broken and negative texts.
    false_positives: [usize; 3],
    misses: Vec<String>,
    /// Up to [`EXAMPLES`] false positives from each source.
    wrong: Vec<String>,
    inexact: Vec<String>,
}

impl Tally {
    fn fp(&self) -> usize {
        self.false_positives.iter().sum()
    }

    fn precision(&self) -> Option<f64> {
        let reported = self.true_positives + self.fp();
        (reported > 0).then(|| self.true_positives as f64 / reported as f64)
    }

    fn recall(&self) -> Option<f64> {
        (self.support > 0).then(|| self.true_positives as f64 / self.support as f64)
    }

    fn exact_share(&self) -> Option<f64> {
        (self.true_positives > 0).then(|| self.exact as f64 / self.true_positives as f64)
    }
}

struct Report {
    tallies: Vec<Tally>,
    /// Findings whose byte offsets do not cover the same text as their code-point offsets.
    offset_mismatches: Vec<String>,
}

impl Report {
    fn tally(&mut self, kind: PiiType) -> &mut Tally {
        let i = PiiType::ALL.iter().position(|&k| k == kind).expect("ALL holds every type");
        &mut self.tallies[i]
    }

    fn score(&mut self, text: &str, labels: &[Label], findings: &[Finding], source: Source) {
        let chars: Vec<char> = text.chars().collect();
        for label in labels {
            self.tally(label.kind).support += 1;
        }
        let mut matched = vec![false; labels.len()];
        for f in findings {
            if !offsets_agree(text, &chars, f) {
                self.offset_mismatches.push(format!(
                    "{} code points {}..{} = {:?}, bytes {}..{} = {:?}",
                    f.kind,
                    f.start,
                    f.end,
                    slice(&chars, f.start, f.end),
                    f.byte_start,
                    f.byte_end,
                    text.get(f.byte_start..f.byte_end)
                ));
            }
            let hit = labels.iter().enumerate().find(|&(i, l)| !matched[i] && l.kind == f.kind && f.start < l.end && l.start < f.end);
            let tally = self.tally(f.kind);
            match hit {
                Some((i, label)) => {
                    matched[i] = true;
                    tally.true_positives += 1;
                    if (f.start, f.end) == (label.start, label.end) {
                        tally.exact += 1;
                    } else if tally.inexact.len() < EXAMPLES {
                        tally.inexact.push(format!(
                            "found {}, labelled {}",
                            excerpt(&chars, f.start, f.end),
                            excerpt(&chars, label.start, label.end)
                        ));
                    }
                }
                None => {
                    tally.false_positives[source as usize] += 1;
                    if tally.false_positives[source as usize] <= EXAMPLES {
                        let what = match source {
                            Source::Labelled => "labelled",
                            Source::Broken => "broken",
                            Source::Negative => "negative",
                        };
                        tally.wrong.push(format!("({what}, score {:.2}) {}", f.score, excerpt(&chars, f.start, f.end)));
                    }
                }
            }
        }
        for (label, _) in labels.iter().zip(&matched).filter(|(_, m)| !**m) {
            let other: Vec<&str> = findings.iter().filter(|f| f.start < label.end && label.start < f.end).map(|f| f.kind.code()).collect();
            let tally = self.tally(label.kind);
            tally.false_negatives += 1;
            if tally.misses.len() < EXAMPLES {
                let note = if other.is_empty() { String::new() } else { format!(" (reported as {})", other.join(", ")) };
                tally.misses.push(format!("{}{note}", excerpt(&chars, label.start, label.end)));
            }
        }
    }

    fn print(&self) {
        println!("\n| type | support | TP | FP | FN | precision | recall | exact span | FP labelled/broken/negative |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (kind, t) in PiiType::ALL.iter().zip(&self.tallies) {
            let [l, b, n] = t.false_positives;
            println!(
                "| {kind} | {} | {} | {} | {} | {} | {} | {} | {l}/{b}/{n} |",
                t.support,
                t.true_positives,
                t.fp(),
                t.false_negatives,
                ratio(t.precision()),
                ratio(t.recall()),
                ratio(t.exact_share())
            );
        }
        for (kind, t) in PiiType::ALL.iter().zip(&self.tallies) {
            for (title, examples) in [("missed", &t.misses), ("false positives", &t.wrong), ("inexact spans", &t.inexact)] {
                if !examples.is_empty() {
                    println!("\n{kind} — {title}:");
                    for e in examples {
                        println!("  - {e}");
                    }
                }
            }
        }
        if !self.offset_mismatches.is_empty() {
            println!("\nOffsets that disagree ({}):", self.offset_mismatches.len());
            for m in self.offset_mismatches.iter().take(EXAMPLES) {
                println!("  - {m}");
            }
        }
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (&kind, t) in PiiType::ALL.iter().zip(&self.tallies) {
            let (min_recall, min_precision) = if CHECKSUMMED.contains(&kind) { CHECKSUMMED_TARGET } else { SHAPED_TARGET };
            let recall = t.recall().unwrap_or(0.0);
            if recall < min_recall {
                failures.push(format!("{kind}: recall {recall:.3} < {min_recall} ({} of {} found)", t.true_positives, t.support));
            }
            // No finding at all leaves precision undefined; the recall line already says it.
            if let Some(precision) = t.precision()
                && precision < min_precision
            {
                let [l, b, n] = t.false_positives;
                failures.push(format!(
                    "{kind}: precision {precision:.3} < {min_precision} ({} false positives: {l} in labelled, {b} in broken, {n} in negative texts)",
                    t.fp()
                ));
            }
            if let Some(exact) = t.exact_share()
                && exact < EXACT_SPAN_TARGET
            {
                failures.push(format!("{kind}: exact-span share {exact:.3} < {EXACT_SPAN_TARGET} ({} of {})", t.exact, t.true_positives));
            }
        }
        if !self.offset_mismatches.is_empty() {
            failures.push(format!("{} findings whose byte offsets do not match their code-point offsets", self.offset_mismatches.len()));
        }
        failures
    }
}

fn offsets_agree(text: &str, chars: &[char], f: &Finding) -> bool {
    f.start <= f.end && f.end <= chars.len() && text.get(f.byte_start..f.byte_end) == Some(slice(chars, f.start, f.end).as_str())
}

fn slice(chars: &[char], start: usize, end: usize) -> String {
    let end = end.min(chars.len());
    chars[start.min(end)..end].iter().collect()
}

/// The span in ⟦…⟧ with up to 40 code points either side, on one line.
fn excerpt(chars: &[char], start: usize, end: usize) -> String {
    let end = end.min(chars.len());
    let start = start.min(end);
    let from = start.saturating_sub(40);
    let to = (end + 40).min(chars.len());
    let s = format!("{}⟦{}⟧{}", slice(chars, from, start), slice(chars, start, end), slice(chars, end, to));
    s.replace('\n', "⏎")
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_string(), |r| format!("{r:.3}"))
}

#[test]
fn the_engine_meets_its_accuracy_targets_on_generated_data() {
    let scanner = Scanner::default();
    let mut report = Report { tallies: PiiType::ALL.iter().map(|_| Tally::default()).collect(), offset_mismatches: Vec::new() };

    let labelled = corpus::labelled(1, 300);
    let broken = corpus::broken(2, 150);
    let negatives: Vec<Sample> = corpus::negatives(3, 3000).into_iter().map(|text| Sample { text, labels: Vec::new() }).collect();
    let started = std::time::Instant::now();
    for (samples, source) in [(&labelled, Source::Labelled), (&broken, Source::Broken), (&negatives, Source::Negative)] {
        for sample in samples {
            let findings = scanner.scan(&sample.text);
            report.score(&sample.text, &sample.labels, &findings, source);
        }
    }
    println!(
        "\nScanned {} labelled, {} broken and {} negative texts in {:.2?}.",
        labelled.len(),
        broken.len(),
        negatives.len(),
        started.elapsed()
    );
    report.print();

    let failures = report.failures();
    assert!(failures.is_empty(), "{} accuracy targets missed:\n{}", failures.len(), failures.join("\n"));
}
