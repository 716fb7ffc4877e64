//! Best-effort line:column for a path like `steps[3].to[0]` in block-style YAML, so a problem
//! found after parsing still points at the text. Flow style (`[a, b]`) stops at the key.

struct Line<'a> {
    /// 0-based line number.
    no: usize,
    /// Indentation (spaces before the first character).
    indent: usize,
    /// Where the key starts (after `- ` for a list item).
    key_col: usize,
    dash: bool,
    rest: &'a str,
}

fn lines(yaml: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (no, raw) in yaml.lines().enumerate() {
        let text = raw.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let indent = raw.len() - text.len();
        let (dash, rest) = match text.strip_prefix('-') {
            Some(r) if r.is_empty() || r.starts_with(' ') => (true, r.trim_start_matches(' ')),
            _ => (false, text),
        };
        out.push(Line { no, indent, key_col: indent + (text.len() - rest.len()), dash, rest });
    }
    out
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(rest) = idx.strip_prefix('[') {
            let Some(end) = rest.find(']') else { break };
            if let Ok(i) = rest[..end].parse() {
                out.push(Seg::Index(i));
            }
            idx = &rest[end + 1..];
        }
    }
    out
}

fn is_key(rest: &str, key: &str) -> bool {
    let rest =
        rest.strip_prefix('"').and_then(|r| r.strip_prefix(key)).and_then(|r| r.strip_prefix('"')).or_else(|| rest.strip_prefix(key));
    rest.is_some_and(|r| r.starts_with(':'))
}

/// The 1-based line and column of `path`, when it can be found.
pub(crate) fn locate(yaml: &str, path: &str) -> Option<(usize, usize)> {
    let all = lines(yaml);
    let (mut from, mut to) = (0, all.len());
    let mut at: Option<(usize, usize)> = None;
    for seg in segments(path) {
        let region = &all[from..to];
        match seg {
            Seg::Key(key) => {
                // Not found (flow style, or a key serde named): the closest place found so far.
                let Some(col) = region.iter().filter(|l| is_key(l.rest, key)).map(|l| l.key_col).min() else { return at };
                let Some(i) = region.iter().position(|l| l.key_col == col && is_key(l.rest, key)) else { return at };
                let found = &region[i];
                // A list may sit at its key's indentation (`to:` then `- a` below it).
                let ends = |l: &Line<'_>| l.indent < col || (l.indent == col && !l.dash);
                let end = region[i + 1..].iter().position(ends).map_or(region.len(), |e| i + 1 + e);
                at = Some((found.no + 1, col + 1));
                (from, to) = (from + i + 1, from + end);
            }
            Seg::Index(n) => {
                let Some(col) = region.iter().filter(|l| l.dash).map(|l| l.indent).min() else { return at };
                let items: Vec<usize> = region.iter().enumerate().filter(|(_, l)| l.dash && l.indent == col).map(|(i, _)| i).collect();
                let Some(&i) = items.get(n) else { return at };
                let end = region[i + 1..].iter().position(|l| l.indent <= col).map_or(region.len(), |e| i + 1 + e);
                at = Some((region[i].no + 1, region[i].key_col + 1));
                (from, to) = (from + i, from + end);
            }
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::locate;

    const YAML: &str = "name: x\ntrigger:\n  type: manual\nsteps:\n  - id: facts\n    type: extract\n    set:\n      a: 1\n  - id: tell\n    type: notify\n    to:\n      - \"{{ x }}\"\n      - b@c\n";

    #[test]
    fn paths_are_found_at_their_line_and_column() {
        let cases = [
            ("name", Some((1, 1))),
            ("trigger.type", Some((3, 3))),
            ("steps[0]", Some((5, 5))),
            ("steps[0].id", Some((5, 5))),
            ("steps[0].set.a", Some((8, 7))),
            ("steps[1].type", Some((10, 5))),
            ("steps[1].to[1]", Some((13, 9))),
            ("steps[0].set.b", Some((7, 5))),
            ("nothing", None),
        ];
        for (path, want) in cases {
            assert_eq!(locate(YAML, path), want, "{path}");
        }
    }
}
