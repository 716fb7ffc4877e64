//! A small, safe Markdown renderer for texts the console shows (a case's description made from
//! a template with event data, tasks, comments): headings, paragraphs with their line breaks,
//! bullet and numbered lists, tables, fenced code, `code` and **bold**. Everything else is
//! text, escaped: no raw HTML, no links, no images. Linear in the text (fuzzed:
//! `fuzz/fuzz_targets/markdown.rs`).
use crate::{Html, escape};

/// A Markdown text (a case's description, a task's, a comment) as HTML, readably and safely:
/// headings, paragraphs with their line breaks, bullet and numbered lists, tables, fenced code,
/// `code` and **bold**. Everything else is text, escaped: no HTML, no links, no images.
pub fn markdown(text: &str) -> Html {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut para: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.is_empty() {
            paragraph(&mut para, &mut out);
            i += 1;
        } else if t.starts_with("```") {
            paragraph(&mut para, &mut out);
            i += 1;
            let mut code = Vec::new();
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            i += 1; // the closing fence (or the end)
            out.push_str("<pre><code>");
            out.push_str(&escape(&code.join("\n")));
            out.push_str("</code></pre>");
        } else if let Some((level, title)) = heading(t) {
            paragraph(&mut para, &mut out);
            let tag = if level <= 2 { "h3" } else { "h4" };
            out.push_str(&format!("<{tag}>"));
            inline(title, &mut out);
            out.push_str(&format!("</{tag}>"));
            i += 1;
        } else if t.starts_with('|') && lines.get(i + 1).is_some_and(|n| separator(n)) {
            paragraph(&mut para, &mut out);
            let header = cells(t);
            i += 2;
            out.push_str("<div class=\"table-wrap\"><table>");
            if header.iter().any(|c| !c.is_empty()) {
                out.push_str("<thead><tr>");
                for c in &header {
                    out.push_str("<th scope=\"col\">");
                    inline(c, &mut out);
                    out.push_str("</th>");
                }
                out.push_str("</tr></thead>");
            }
            out.push_str("<tbody>");
            while i < lines.len() && lines[i].trim().starts_with('|') {
                out.push_str("<tr>");
                for c in cells(lines[i].trim()) {
                    out.push_str("<td>");
                    inline(c, &mut out);
                    out.push_str("</td>");
                }
                out.push_str("</tr>");
                i += 1;
            }
            out.push_str("</tbody></table></div>");
        } else if let Some((tag, _)) = item(t) {
            paragraph(&mut para, &mut out);
            out.push_str(&format!("<{tag}>"));
            while i < lines.len() {
                let Some((this, first)) = item(lines[i].trim()) else { break };
                if this != tag {
                    break;
                }
                out.push_str("<li>");
                inline(first, &mut out);
                i += 1;
                // Indented lines carry on the item.
                while i < lines.len() && lines[i].starts_with([' ', '\t']) && !lines[i].trim().is_empty() && item(lines[i].trim()).is_none()
                {
                    out.push_str("<br>");
                    inline(lines[i].trim(), &mut out);
                    i += 1;
                }
                out.push_str("</li>");
            }
            out.push_str(&format!("</{tag}>"));
        } else {
            para.push(t);
            i += 1;
        }
    }
    paragraph(&mut para, &mut out);
    Html(out)
}

/// Writes the lines gathered as one paragraph, their line breaks kept.
fn paragraph(para: &mut Vec<&str>, out: &mut String) {
    if para.is_empty() {
        return;
    }
    out.push_str("<p>");
    for (n, l) in para.iter().enumerate() {
        if n > 0 {
            out.push_str("<br>");
        }
        inline(l, out);
    }
    out.push_str("</p>");
    para.clear();
}

/// `## Title` → (2, "Title").
fn heading(t: &str) -> Option<(usize, &str)> {
    let level = t.chars().take_while(|c| *c == '#').count();
    let rest = t.get(level..)?;
    ((1..=6).contains(&level) && rest.starts_with(' ')).then(|| (level, rest.trim()))
}

/// A table's separator row (`|---|:--:|`).
fn separator(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.contains('-') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// The cells of a table row.
fn cells(row: &str) -> Vec<&str> {
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

/// A list item: ("ul", text) for `- x`, `* x`, `+ x`; ("ol", text) for `1. x`.
fn item(t: &str) -> Option<(&'static str, &str)> {
    for mark in ["- ", "* ", "+ "] {
        if let Some(rest) = t.strip_prefix(mark) {
            return Some(("ul", rest));
        }
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 10 {
        return t[digits..].strip_prefix(". ").map(|rest| ("ol", rest));
    }
    None
}

/// Text with `code` and **bold**, escaped.
fn inline(s: &str, out: &mut String) {
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            out.push_str("<code>");
            out.push_str(&escape(&after[..end]));
            out.push_str("</code>");
            rest = &after[end + 1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("**")
            && let Some(end) = after.find("**")
            && end > 0
        {
            out.push_str("<strong>");
            inline(&after[..end], out);
            out.push_str("</strong>");
            rest = &after[end + 2..];
            continue;
        }
        let next = rest.char_indices().skip(1).find(|(_, c)| *c == '`' || *c == '*').map_or(rest.len(), |(i, _)| i);
        out.push_str(&escape(&rest[..next]));
        rest = &rest[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn markdown_keeps_line_breaks_and_escapes_html() {
        assert_eq!(markdown("a <b>\nc & d").0, "<p>a &lt;b&gt;<br>c &amp; d</p>");
        assert_eq!(markdown("<script>alert(1)</script>").0, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
        assert_eq!(markdown("one\n\ntwo").0, "<p>one</p><p>two</p>");
    }

    #[test]
    fn markdown_renders_headings_lists_tables_code_and_bold() {
        assert_eq!(markdown("## What happened\n\nx").0, "<h3>What happened</h3><p>x</p>");
        assert_eq!(
            markdown("- a\n- **b**\n\n1. c\n2. `d<`").0,
            "<ul><li>a</li><li><strong>b</strong></li></ul><ol><li>c</li><li><code>d&lt;</code></li></ol>"
        );
        assert_eq!(
            markdown("| | |\n|---|---|\n| Platform | x<y |").0,
            "<div class=\"table-wrap\"><table><tbody><tr><td>Platform</td><td>x&lt;y</td></tr></tbody></table></div>"
        );
        assert_eq!(markdown("```\n<a>\n```").0, "<pre><code>&lt;a&gt;</code></pre>");
        assert_eq!(markdown("a * b ** c `").0, "<p>a * b ** c `</p>");
        assert_eq!(markdown("#hashtag").0, "<p>#hashtag</p>");
    }
}
