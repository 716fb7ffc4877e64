//! `vigie scan`: classifies a file or standard input with the detection engine. The input is
//! read in 64 KiB chunks through a `StreamScanner`, and each finding is printed as soon as it is
//! settled, so a file of any size is scanned in bounded memory. Values are printed masked,
//! never raw. The risk score is the engine's, on an unvetted platform (there is none here).
use crate::cli::ScanArgs;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use vigie_firewall::model::RiskLevel;
use vigie_pii::risk::{RiskInput, score};
use vigie_pii::stream::{Location, StreamScanner};
use vigie_pii::{Finding, Scanner};

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;
/// Findings of one type that count in the risk score: the n-th most confident weighs ½ⁿ of the
/// first, so those beyond weigh nothing measurable, and keeping only these bounds the memory.
const KEPT_PER_TYPE: usize = 32;

/// Runs `vigie scan`: exit code 0 when nothing was found, 1 when something was.
pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let (input, name): (Box<dyn Read>, String) = match args.file.as_deref() {
        None => (Box::new(std::io::stdin().lock()), "standard input".into()),
        Some(p) if p == Path::new("-") => (Box::new(std::io::stdin().lock()), "standard input".into()),
        Some(p) => {
            let file = std::fs::File::open(p).map_err(|e| {
                anyhow::anyhow!("cannot read {}: {e}; check the path and your permissions, or pass - to read standard input", p.display())
            })?;
            (Box::new(file), p.display().to_string())
        }
    };
    let mut report = Report::new(std::io::stdout().lock(), args.json);
    match scan(input, &name, &mut report) {
        Ok(()) => {}
        // The reader went away (`vigie scan big.txt | head`): stop quietly, as grep does.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {}
        Err(e) => return Err(e),
    }
    Ok(if report.count > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Streams `input` through the engine into `report`, then writes the summary.
fn scan(mut input: Box<dyn Read>, name: &str, report: &mut Report<impl Write>) -> anyhow::Result<()> {
    let scanner = Scanner::default();
    let mut stream = StreamScanner::new(&scanner);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => anyhow::bail!("cannot read {name}: {e}; check that it is a readable file, not a directory"),
        };
        for (f, at) in stream.feed_located(&buf[..n]) {
            report.finding(&f, at)?;
        }
    }
    let bytes = stream.bytes_read();
    for (f, at) in stream.finish_located() {
        report.finding(&f, at)?;
    }
    report.end(bytes)
}

/// A finding as `--json` prints it.
#[derive(Serialize)]
struct JsonFinding<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    score: f64,
    /// Code points, from 0, end exclusive.
    start: usize,
    end: usize,
    /// Byte offsets, from 0, end exclusive: in the input when it is valid UTF-8; otherwise in
    /// the text as read (each invalid sequence replaced by U+FFFD, three bytes).
    byte_start: usize,
    byte_end: usize,
    line: usize,
    column: usize,
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// The output, written as findings arrive: a table, or one JSON document.
struct Report<W: Write> {
    out: W,
    json: bool,
    count: u64,
    /// The most confident scores of each type, highest first.
    top: BTreeMap<&'static str, Vec<f64>>,
}

impl<W: Write> Report<W> {
    fn new(out: W, json: bool) -> Report<W> {
        Report { out, json, count: 0, top: BTreeMap::new() }
    }

    fn finding(&mut self, f: &Finding, at: Location) -> anyhow::Result<()> {
        let scores = self.top.entry(f.kind.code()).or_default();
        let i = scores.partition_point(|s| *s >= f.score);
        if i < KEPT_PER_TYPE {
            scores.insert(i, f.score);
            scores.truncate(KEPT_PER_TYPE);
        }
        let written = if self.json {
            let lead = if self.count == 0 { "{\"findings\":[" } else { "," };
            let line = JsonFinding {
                kind: f.kind.code(),
                score: f.score,
                start: f.start,
                end: f.end,
                byte_start: f.byte_start,
                byte_end: f.byte_end,
                line: at.line,
                column: at.column,
                value: &f.masked,
                detail: f.detail,
            };
            write!(self.out, "{lead}").and_then(|()| serde_json::to_writer(&mut self.out, &line).map_err(std::io::Error::from))
        } else {
            let header = if self.count == 0 { format!("{:<12} {:<20} {:>5}  VALUE\n", "LINE:COL", "TYPE", "SCORE") } else { String::new() };
            let at = format!("{}:{}", at.line, at.column);
            writeln!(self.out, "{header}{at:<12} {:<20} {:>5.2}  {}", f.kind.code(), f.score, f.masked)
        };
        written.context("cannot write the output")?;
        self.count += 1;
        Ok(())
    }

    /// Writes the summary.
    fn end(&mut self, bytes: u64) -> anyhow::Result<()> {
        let inputs = self.top.iter().flat_map(|(code, scores)| scores.iter().map(|s| RiskInput { code, confidence: *s, count: 1 }));
        let risk = (score(inputs, false) * 10_000.0).round() / 10_000.0;
        let written = if self.json {
            let lead = if self.count == 0 { "{\"findings\":[" } else { "" };
            let risk = serde_json::to_string(&risk).unwrap_or_else(|_| "0".into());
            writeln!(self.out, "{lead}],\"risk_score\":{risk},\"classification_count\":{},\"bytes\":{bytes}}}", self.count)
        } else if self.count == 0 {
            writeln!(self.out, "No sensitive data found ({bytes} bytes scanned).")
        } else {
            let s = if self.count == 1 { "" } else { "s" };
            let level = RiskLevel::of(risk).as_str();
            writeln!(self.out, "\n{} finding{s}, risk {risk:.2} ({level}, as on an unvetted platform), {bytes} bytes scanned.", self.count)
        };
        written.and_then(|()| self.out.flush()).context("cannot write the output")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_pii::PiiType;

    fn card(score: f64, start: usize) -> Finding {
        Finding {
            kind: PiiType::CreditCard,
            score,
            start,
            end: start + 19,
            byte_start: start,
            byte_end: start + 19,
            masked: "****0366".into(),
            detail: Some("visa"),
        }
    }

    #[test]
    fn the_table_shows_line_column_type_score_and_the_masked_value() {
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, false);
        r.finding(&card(0.97, 8), Location { line: 2, column: 9 }).expect("write");
        r.end(120).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("LINE:COL"), "{text}");
        assert_eq!(lines[1], "2:9          CREDIT_CARD           0.97  ****0366");
        assert!(lines[3].starts_with("1 finding, risk 0.9") && lines[3].contains("critical") && lines[3].contains("120 bytes"), "{text}");
    }

    #[test]
    fn the_json_document_parses_with_and_without_findings() {
        for n in [0, 1, 40] {
            let mut out = Vec::new();
            let mut r = Report::new(&mut out, true);
            for i in 0..n {
                r.finding(&card(0.9, i * 30), Location { line: 1, column: i * 30 + 1 }).expect("write");
            }
            r.end(7).expect("write");
            assert_eq!(r.count, n as u64);
            let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
            assert_eq!(v["findings"].as_array().map(Vec::len), Some(n));
            assert_eq!((v["classification_count"].as_u64(), v["bytes"].as_u64()), (Some(n as u64), Some(7)));
            if n > 0 {
                assert_eq!(v["findings"][0]["value"], "****0366");
                assert_eq!(v["findings"][0]["detail"], "visa");
                assert!(v["risk_score"].as_f64().is_some_and(|r| r > 0.9), "{v}");
            } else {
                assert_eq!(v["risk_score"].as_f64(), Some(0.0));
            }
        }
    }
}
