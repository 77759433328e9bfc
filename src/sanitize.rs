//! Entry HTML from sources is untrusted: it is cleaned with ammonia against an
//! explicit allowlist before it is stored, so every output format is safe.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use ammonia::{Builder, UrlRelative};
use url::Url;

/// Elements kept; everything else is removed (its text kept, except for the
/// elements in [`DROPPED_WITH_CONTENT`]).
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "u",
    "ul",
    "var",
];

/// Elements removed together with everything inside them. Form controls are
/// not here: their tags go, but their text stays (some sites wrap whole
/// articles in a `<form>`), as the hostile corpus requires.
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
];

const URL_SCHEMES: &[&str] = &["http", "https", "mailto"];

fn builder() -> Builder<'static> {
    let mut tag_attributes: HashMap<&str, HashSet<&str>> = HashMap::new();
    tag_attributes.insert("a", ["href", "title"].into());
    tag_attributes.insert("img", ["src", "alt", "title", "width", "height"].into());
    tag_attributes.insert("blockquote", ["cite"].into());
    tag_attributes.insert("q", ["cite"].into());
    tag_attributes.insert("del", ["cite", "datetime"].into());
    tag_attributes.insert("ins", ["cite", "datetime"].into());
    tag_attributes.insert("time", ["datetime"].into());
    tag_attributes.insert("td", ["colspan", "rowspan"].into());
    tag_attributes.insert("th", ["colspan", "rowspan", "scope"].into());
    tag_attributes.insert("ol", ["start", "reversed"].into());
    let mut b = Builder::empty();
    b.tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(tag_attributes)
        .generic_attributes(["lang", "dir"].into())
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    b
}

thread_local! {
    // Building the allowlist's sets costs as much as cleaning a short entry,
    // so each thread builds it once and only the base URL changes per call.
    static CLEANER: RefCell<Builder<'static>> = RefCell::new(builder());
    static STRIPPER: Builder<'static> = {
        let mut b = Builder::empty();
        b.clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect());
        b
    };
}

/// Cleans untrusted HTML; relative URLs are made absolute against `base`
/// (or dropped when there is no base).
pub fn html(untrusted: &str, base: Option<&Url>) -> String {
    CLEANER.with(|cleaner| {
        let mut cleaner = cleaner.borrow_mut();
        cleaner.url_relative(match base {
            Some(base) => UrlRelative::RewriteWithBase(base.clone()),
            None => UrlRelative::Deny,
        });
        let mut out = cleaner.clean(untrusted).to_string();
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        match out.len() - out.trim_start().len() {
            0 => out,
            lead => out.split_off(lead),
        }
    })
}

/// Plain text as an HTML paragraph sequence.
pub fn text_to_html(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            format!(
                "<p>{}</p>",
                html_escape::encode_text(p).replace('\n', "<br>")
            )
        })
        .collect()
}

/// The text of an HTML fragment, still entity-encoded.
pub fn strip_tags(html: &str) -> String {
    STRIPPER.with(|b| b.clean(html).to_string())
}

/// Whether a "plain text" field actually carries markup (common in RSS).
pub fn looks_like_markup(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('<')
        || t.contains("</")
        || t.contains("<br")
        || t.contains("<p>")
        || t.contains("&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_bad_schemes_are_removed() {
        let out = html(
            r#"<p onclick="x()">Hi <a href="javascript:alert(1)">a</a><img src="data:image/png;base64,AA" onerror="y()"><script>z()</script><iframe src="https://e.example/"></iframe></p>"#,
            None,
        );
        for bad in [
            "onclick",
            "javascript",
            "data:",
            "onerror",
            "script",
            "z()",
            "iframe",
        ] {
            assert!(!out.contains(bad), "{bad} survived in {out}");
        }
        assert!(out.starts_with("<p>Hi <a"), "{out}");
    }

    #[test]
    fn relative_links_resolve_against_the_base() {
        let base = Url::parse("https://news.example/2026/story.html").unwrap();
        let out = html(
            r#"<a href="../about">x</a><img src="pic.jpg" alt="p">"#,
            Some(&base),
        );
        assert!(
            out.contains(r#"href="https://news.example/about""#),
            "{out}"
        );
        assert!(
            out.contains(r#"src="https://news.example/2026/pic.jpg""#),
            "{out}"
        );
    }

    #[test]
    fn text_becomes_escaped_paragraphs() {
        assert_eq!(
            text_to_html("a <b>\n c\n\nd"),
            "<p>a &lt;b&gt;<br> c</p><p>d</p>"
        );
    }
}
