//! The console's Markdown renderer over any text (a case description holds event data): it
//! never panics, and what it writes is the renderer's own tags around escaped text — no tag,
//! attribute or entity of the input survives.
#![no_main]
use libfuzzer_sys::fuzz_target;

const TAGS: &[&str] = &[
    "<p>",
    "</p>",
    "<br>",
    "<h3>",
    "</h3>",
    "<h4>",
    "</h4>",
    "<ul>",
    "</ul>",
    "<ol>",
    "</ol>",
    "<li>",
    "</li>",
    "<pre><code>",
    "</code></pre>",
    "<code>",
    "</code>",
    "<strong>",
    "</strong>",
    "<div class=\"table-wrap\"><table>",
    "</table></div>",
    "<thead>",
    "</thead>",
    "<tbody>",
    "</tbody>",
    "<tr>",
    "</tr>",
    "<th scope=\"col\">",
    "</th>",
    "<td>",
    "</td>",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let html = vigie_web::markdown::markdown(text).0;
    let mut rest = html.as_str();
    while let Some(i) = rest.find('<') {
        let tail = &rest[i..];
        let Some(tag) = TAGS.iter().find(|t| tail.starts_with(**t)) else {
            panic!("a tag the renderer does not write: {:?}", &tail[..tail.len().min(40)]);
        };
        rest = &tail[tag.len()..];
    }
    // Outside the tags, every '&' starts one of escape()'s entities and no quote is bare.
    let text_only = TAGS.iter().fold(html.clone(), |acc, t| acc.replace(t, ""));
    assert!(!text_only.contains('>') && !text_only.contains('"'), "unescaped markup outside the tags");
    for (i, _) in text_only.match_indices('&') {
        let t = &text_only[i..];
        assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| t.starts_with(e)), "a bare '&'");
    }
});
