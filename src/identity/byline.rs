//! Explicit bylines in an entry's text ("By Reuters", "Author: AP", "— AP"),
//! used to credit the original author of a reposted wire story.

/// The author an entry's text names explicitly, if any: a first paragraph
/// "By X" or "Author: X", a last paragraph "— X" / "- X", or "(Reporting by X".
/// Only short, name-like values count, so ordinary sentences that happen to
/// begin with "By" are not taken for bylines.
pub fn byline(html_or_text: &str) -> Option<String> {
    let paragraphs = paragraphs(html_or_text);
    let first = paragraphs.first()?;
    for prefix in ["by ", "author: ", "author:", "written by "] {
        if let Some(rest) = strip_prefix_ci(first, prefix)
            && let Some(name) = name_like(rest)
        {
            return Some(name);
        }
    }
    let last = paragraphs.last()?;
    for dash in ["— ", "– ", "-- ", "- "] {
        if let Some(rest) = last.strip_prefix(dash)
            && let Some(name) = name_like(rest)
        {
            return Some(name);
        }
    }
    for p in paragraphs.iter().rev().take(2) {
        if let Some(at) = p.to_lowercase().find("(reporting by ") {
            let rest = &p[at + "(reporting by ".len()..];
            let end = rest.find([';', ')']).unwrap_or(rest.len());
            if let Some(name) = name_like(&rest[..end]) {
                return Some(name);
            }
        }
    }
    None
}

/// Plain-text paragraphs: block tags and blank lines separate them.
fn paragraphs(text: &str) -> Vec<String> {
    let mut plain = String::with_capacity(text.len());
    let mut tag = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if matches!(
                    name.as_str(),
                    "p" | "div" | "br" | "li" | "blockquote" | "h1" | "h2" | "h3" | "h4"
                ) {
                    plain.push_str("\n\n");
                } else {
                    plain.push(' ');
                }
            }
            _ if in_tag => tag.push(c),
            _ => plain.push(c),
        }
    }
    let decoded = html_escape::decode_html_entities(&plain).replace('\u{a0}', " ");
    decoded
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s[prefix.len()..].trim_start())
}

/// A short run of capitalised words (a name, possibly ", Outlet"), trimmed of
/// trailing punctuation.
fn name_like(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches(['.', ':', ';']).trim();
    if s.is_empty() || s.chars().count() > 60 {
        return None;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let capitalised = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(|c| c.is_uppercase()))
        .count();
    let connectors = words
        .iter()
        .filter(|w| matches!(**w, "and" | "of" | "the" | "de" | "van" | "von" | "&"))
        .count();
    (words.len() <= 8 && capitalised >= 1 && capitalised + connectors == words.len())
        .then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wire_bylines_are_found() {
        assert_eq!(
            byline("<p>By Reuters</p><p>Prices rose.</p>").as_deref(),
            Some("Reuters")
        );
        assert_eq!(
            byline("Author: Associated Press\n\nPrices rose.").as_deref(),
            Some("Associated Press")
        );
        assert_eq!(
            byline("<p>Prices rose.</p><p>— AP</p>").as_deref(),
            Some("AP")
        );
        assert_eq!(
            byline("By Kirsti Dalen, Riverside Chronicle\n\nEASTHOLM - x").as_deref(),
            Some("Kirsti Dalen, Riverside Chronicle")
        );
        assert_eq!(
            byline("Text.\n\n(Reporting by Hedda Solum; Editing by Tomas Lier)").as_deref(),
            Some("Hedda Solum")
        );
    }

    #[test]
    fn sentences_are_not_bylines() {
        assert_eq!(
            byline("<p>By Tuesday the river had risen two metres.</p>"),
            None
        );
        assert_eq!(byline("<p>Prices rose - and fell again.</p>"), None);
        assert_eq!(byline(""), None);
    }
}
