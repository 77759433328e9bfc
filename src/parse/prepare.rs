//! Before feed-rs sees a document: bound its nesting, read the polling hints
//! feed-rs does not expose (sy:*, skipHours, skipDays), and rewrite the legacy
//! formats feed-rs 3 gets wrong (versionless RSS, RSS 0.93/0.94, Atom 0.3).

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use quick_xml::events::Event;

use crate::model::FeedHints;

/// Deeper nesting than any real feed has; beyond it a document is refused
/// before a recursive parser could exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Atom 0.3's namespace; feed-rs reads such feeds as Atom 1.0 with no entries.
const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";
const RSS_090_NS: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RSS_10_NS: &str = "http://purl.org/rss/1.0/";

#[derive(Debug, thiserror::Error)]
#[error("XML nested deeper than {MAX_DEPTH} elements")]
pub struct TooDeep;

/// A document made ready for feed-rs.
#[derive(Debug)]
pub struct Prepared<'a> {
    pub text: Cow<'a, str>,
    pub hints: FeedHints,
    /// What was rewritten because it was wrong (feedparser's bozo).
    pub warnings: Vec<String>,
    /// RSS 1.0 items' `rdf:about`, keyed by the link feed-rs will report.
    pub abouts: Vec<(String, String)>,
}

/// Reads the hints, checks the depth, and rewrites what feed-rs would reject
/// or misread: legacy versions and namespaces (versionless RSS, RSS 0.9x,
/// RSS 0.90, Atom 0.3, CDF, the userland RSS 2 namespace), RSS items outside
/// a channel, RSS 1.0 items with only `rdf:about`, and Atom text constructs
/// with types or modes feed-rs refuses (one of them costs the whole
/// document). A document with nothing to rewrite is returned as it came.
pub fn prepare(text: &str) -> Result<Prepared<'_>, TooDeep> {
    if text.starts_with('{') {
        return Ok(Prepared {
            text: Cow::Borrowed(text),
            hints: FeedHints::default(),
            warnings: Vec::new(),
            abouts: Vec::new(),
        });
    }
    let scan = scan(text)?;
    let converted = match scan.root.as_ref().map(|r| r.name.as_str()) {
        Some("feed") if scan.root_tag(text).contains(ATOM_03_NS) => Some(atom_03_to_10(text)),
        Some("channel") => super::cdf::to_rss(text),
        Some("rss") => unprefixed_rss(text, scan.root_tag(text)),
        _ => None,
    };
    if let Some(converted) = converted {
        // Atom 1.0 or RSS 2.0 now: its own constructs are checked as any.
        let mut again = scan_owned(converted)?;
        if scan.root.as_ref().is_some_and(|r| r.name == "rss") {
            again
                .warnings
                .insert(0, "RSS elements in a namespace read as RSS 2.0".into());
        }
        return Ok(again);
    }
    if scan.rdf_linkless
        && let Some(converted) = rdf_as_rss(text, &scan)
    {
        let mut again = scan_owned(converted)?;
        again.abouts = scan.abouts;
        again.warnings.insert(
            0,
            "RSS 1.0 items without a link: the document read as RSS 2.0".into(),
        );
        return Ok(again);
    }
    let hints = scan.hints;
    let warnings = scan.warnings;
    let abouts = scan.abouts;
    let text = apply(text, scan.edits);
    Ok(Prepared {
        text,
        hints,
        warnings,
        abouts,
    })
}

fn scan_owned(text: String) -> Result<Prepared<'static>, TooDeep> {
    let scan = scan(&text)?;
    let text = apply(&text, scan.edits).into_owned();
    Ok(Prepared {
        text: Cow::Owned(text),
        hints: scan.hints,
        warnings: scan.warnings,
        abouts: scan.abouts,
    })
}

/// `<r:rss xmlns:r="…">` (RSS 2.0 in userland's namespace, under a prefix):
/// the same document without the prefix.
fn unprefixed_rss(text: &str, root_tag: &str) -> Option<String> {
    let prefix = root_tag
        .strip_prefix('<')?
        .strip_suffix(":rss")
        .or_else(|| {
            let name = root_tag.strip_prefix('<')?.split_whitespace().next()?;
            name.strip_suffix(":rss")
        })?;
    if prefix.is_empty() || prefix.contains(['<', '>', '/', '"']) {
        return None;
    }
    Some(
        text.replace(&format!("<{prefix}:"), "<")
            .replace(&format!("</{prefix}:"), "</"),
    )
}

/// RSS 0.90/1.0 as the RSS 2.0 it amounts to, for documents with items
/// feed-rs's RSS 1.0 reader would drop: the items move into the channel,
/// the elements leave RSS 1.0's namespace (the other namespaces stay
/// declared), and the rewrites of the scan (links from `rdf:about`) apply.
fn rdf_as_rss(text: &str, scan: &Scan) -> Option<String> {
    let root = scan.root.as_ref()?;
    let (channel_end, end) = (scan.rdf_channel_end.clone()?, scan.rdf_end.clone()?);
    let tag = text.get(root.span.clone())?;
    let name = tag
        .strip_prefix('<')?
        .split_whitespace()
        .next()?
        .trim_end_matches('>');
    let mut rss = tag.replacen(name, "rss version=\"2.0\"", 1);
    if let Some(ns) = attribute(tag, "xmlns") {
        for quoted in [format!("\"{ns}\""), format!("'{ns}'")] {
            for sp in [" ", "\n", "\t", "\r"] {
                rss = rss.replace(&format!("{sp}xmlns={quoted}"), "");
            }
        }
    }
    let mut edits: Vec<(Range<usize>, String)> = scan
        .edits
        .iter()
        .filter(|(r, _)| *r != root.span)
        .cloned()
        .collect();
    edits.push((root.span.clone(), rss));
    edits.push((channel_end, String::new()));
    edits.push((end, "</channel></rss>".into()));
    Some(apply(text, edits).into_owned())
}

/// Replaces the byte ranges (in order, not overlapping) with their text.
fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Cow<'_, str> {
    if edits.is_empty() {
        return Cow::Borrowed(text);
    }
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, replacement) in edits {
        if range.start < at || range.end > text.len() {
            continue;
        }
        let (Some(before), true) = (text.get(at..range.start), text.is_char_boundary(range.end))
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    Cow::Owned(out)
}

struct Root {
    name: String,
    /// The start tag's bytes.
    span: Range<usize>,
}

#[derive(Default)]
struct Scan {
    root: Option<Root>,
    hints: FeedHints,
    edits: Vec<(Range<usize>, String)>,
    warnings: Vec<String>,
    abouts: Vec<(String, String)>,
    /// An RSS 0.90/1.0 item with neither `<link>` nor `rdf:about` (feed-rs
    /// drops such items), and where the channel and the document end.
    rdf_linkless: bool,
    rdf_channel_end: Option<Range<usize>>,
    rdf_end: Option<Range<usize>>,
}

impl Scan {
    fn root_tag<'t>(&self, text: &'t str) -> &'t str {
        self.root
            .as_ref()
            .and_then(|r| text.get(r.span.clone()))
            .unwrap_or_default()
    }

    /// An element starts: its lower-case local name. The first is the root;
    /// any element inside Atom content means the content is not empty.
    fn element(
        &mut self,
        e: &quick_xml::events::BytesStart<'_>,
        span: Range<usize>,
        atom_content: &mut Option<(usize, usize, bool)>,
    ) -> String {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
        if let Some(c) = atom_content.as_mut() {
            c.2 = true;
        }
        if self.root.is_none() {
            self.root = Some(Root {
                name: name.clone(),
                span,
            });
        }
        name
    }

    fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

/// An RSS 1.0 item being read: its `rdf:about` and `<link>`.
#[derive(Default)]
struct RdfItem {
    about: Option<String>,
    link: Option<String>,
}

/// The element names of Atom's text constructs and content.
const ATOM_TEXTS: [&str; 6] = ["title", "subtitle", "summary", "content", "rights", "info"];

fn scan(text: &str) -> Result<Scan, TooDeep> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut out = Scan::default();
    let mut path: Vec<String> = Vec::new();
    let mut frequency: Option<u32> = None;
    let mut period: Option<u64> = None;
    let mut rss_has_channel = false;
    let mut rss_loose_items = false;
    let mut rdf_item: Option<RdfItem> = None;
    // An Atom content element being read: where it starts, and whether it has anything in it.
    let mut atom_content: Option<(usize, usize, bool)> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event();
        let after = reader.buffer_position() as usize;
        match event {
            Ok(Event::Start(e)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep);
                }
                let name = out.element(&e, before..after, &mut atom_content);
                let root = out.root.as_ref().map(|r| r.name.as_str());
                match (root, depth, name.as_str()) {
                    (Some("rss"), 2, "channel") => rss_has_channel = true,
                    (Some("rss"), 2, "item") => rss_loose_items = true,
                    (Some("rdf"), 2, "item") => {
                        rdf_item = Some(RdfItem {
                            about: attr(&e, "about"),
                            link: None,
                        });
                    }
                    (Some("feed"), 2, "item") if e.name().as_ref() == b"item" => {
                        // feedparser reads an Atom `item` as an `entry`.
                        out.edits.push((before..before + 5, "<entry".into()));
                        out.warn("Atom <item> read as <entry>".into());
                    }
                    (Some("feed"), 2.., t) if ATOM_TEXTS.contains(&t) && is_atom_name(&e) => {
                        let kind = text_kind(&e);
                        if kind != TextKind::Standard {
                            // Rewritten whole: what is inside is read to its end here.
                            let qname = e.name().as_ref().to_vec();
                            let Ok(inner) = reader.read_to_end(quick_xml::name::QName(&qname))
                            else {
                                break;
                            };
                            depth -= 1;
                            let end = reader.buffer_position() as usize;
                            let inner = text
                                .get(inner.start as usize..inner.end as usize)
                                .unwrap_or_default();
                            let tag = String::from_utf8_lossy(&qname).into_owned();
                            let (replacement, warning) = rewrite_text(&tag, &e, kind, inner);
                            out.edits.push((before..end, replacement));
                            if let Some(w) = warning {
                                out.warn(w);
                            }
                            continue;
                        }
                        if t == "content" && depth >= 3 {
                            atom_content = Some((before, depth, false));
                        }
                    }
                    _ => {}
                }
                path.push(name);
            }
            Ok(Event::Empty(e)) => {
                let name = out.element(&e, before..after, &mut atom_content);
                let root = out.root.as_ref().map(|r| r.name.as_str());
                if root == Some("feed")
                    && depth >= 1
                    && ATOM_TEXTS.contains(&name.as_str())
                    && is_atom_name(&e)
                {
                    let kind = text_kind(&e);
                    // Empty content says nothing: feed-rs would refuse the
                    // document for it, unless it points elsewhere with src.
                    let src = attr(&e, "src").is_some();
                    if !src && (name == "content" || kind != TextKind::Standard) {
                        out.edits.push((before..after, String::new()));
                    } else if let TextKind::Src = kind {
                        let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                        out.edits.push((before..after, content_src(&tag, &e)));
                    }
                }
            }
            Ok(Event::End(e)) => {
                if let Some((start, d, has_data)) = atom_content
                    && d == depth
                {
                    if !has_data {
                        out.edits.push((start..after, String::new()));
                    }
                    atom_content = None;
                }
                let root = out.root.as_ref().map(|r| r.name.as_str());
                match (root, depth) {
                    (Some("rss"), 1) if rss_loose_items && !rss_has_channel => {
                        // Items straight under <rss>: put them in a channel.
                        if let Some(r) = &out.root {
                            out.edits.push((r.span.end..r.span.end, "<channel>".into()));
                        }
                        out.edits.push((before..before, "</channel>".into()));
                        out.warn("RSS items outside a <channel>".into());
                    }
                    (Some("rdf"), 1) => out.rdf_end = Some(before..after),
                    (Some("rdf"), 2) if e.local_name().as_ref() == b"channel" => {
                        out.rdf_channel_end = Some(before..after);
                    }
                    (Some("rdf"), 2) => {
                        if let Some(item) = rdf_item.as_ref()
                            && item.about.is_none()
                            && item.link.is_none()
                        {
                            out.rdf_linkless = true;
                        }
                        if let Some(item) = rdf_item.take()
                            && let Some(about) = item.about
                        {
                            match item.link {
                                Some(link) => out.abouts.push((link, about)),
                                None => {
                                    out.edits.push((
                                        before..before,
                                        format!(
                                            "<link>{}</link>",
                                            quick_xml::escape::escape(&about)
                                        ),
                                    ));
                                    out.abouts.push((about.clone(), about));
                                }
                            }
                        }
                    }
                    (Some("feed"), 2) if e.name().as_ref() == b"item" => {
                        out.edits.push((before..after, "</entry>".into()));
                    }
                    _ => {}
                }
                depth = depth.saturating_sub(1);
                path.pop();
            }
            Ok(Event::CData(_)) => {
                if let Some(c) = atom_content.as_mut() {
                    c.2 = true;
                }
            }
            Ok(Event::GeneralRef(_)) => {
                if let Some(c) = atom_content.as_mut() {
                    c.2 = true;
                }
            }
            Ok(Event::Text(t)) => {
                let value = t.xml10_content().unwrap_or_default();
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                if let Some(c) = atom_content.as_mut() {
                    c.2 = true;
                }
                let last = path.last().map(String::as_str);
                if let (Some(item), Some("link"), 3) = (rdf_item.as_mut(), last, depth) {
                    item.link = Some(value.to_string());
                }
                let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
                // Only channel-level elements count, not an item's.
                let in_item = path.iter().any(|p| p == "item" || p == "entry");
                if in_item {
                    continue;
                }
                match (parent, last) {
                    (_, Some("ttl")) => {
                        out.hints.ttl = value
                            .parse::<u64>()
                            .ok()
                            .filter(|m| *m > 0)
                            .map(|m| Duration::from_secs(m.min(60 * 24 * 365) * 60));
                    }
                    (_, Some("updateperiod")) => {
                        period = match value.to_ascii_lowercase().as_str() {
                            "hourly" => Some(3600),
                            "daily" => Some(86400),
                            "weekly" => Some(7 * 86400),
                            "monthly" => Some(30 * 86400),
                            "yearly" => Some(365 * 86400),
                            _ => None,
                        };
                    }
                    (_, Some("updatefrequency")) => {
                        frequency = value.parse().ok().filter(|f| *f > 0);
                    }
                    (Some("skiphours"), Some("hour")) => {
                        // RSS says 0–23; some write 24 for midnight.
                        if let Ok(h) = value.parse::<u32>()
                            && h <= 24
                        {
                            out.hints.skip.hours |= 1 << (h % 24);
                        }
                    }
                    (Some("skipdays"), Some("day")) => {
                        if let Some(d) = day_index(value) {
                            out.hints.skip.days |= 1 << d;
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if let Some(p) = period {
        let per = u64::from(frequency.unwrap_or(1));
        out.hints.update_period = Some(Duration::from_secs(p / per));
    }
    if out.hints.skip.hours == (1 << 24) - 1 {
        // Skipping every hour would mean never polling: ignore it.
        out.hints.skip.hours = 0;
    }
    if out.hints.skip.days == 0x7f {
        out.hints.skip.days = 0;
    }
    if let Some(root) = &out.root
        && let Some(tag) = text.get(root.span.clone())
        && let Some((edit, warning)) = rewrite_root(tag, &root.name)
    {
        out.edits.push((root.span.clone(), edit));
        if let Some(w) = warning {
            out.warn(w);
        }
    }
    Ok(out)
}

/// How an Atom text construct says what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// `text`, `html`, `xhtml` (or `text/html`), which feed-rs reads.
    Standard,
    /// Content elsewhere (`src=`) with a type that is not a MIME type.
    Src,
    /// Plain text under another name (`text/plain`, any `text/*`).
    Plain,
    /// HTML escaped into the text (Atom 0.3's `mode="escaped"`).
    Escaped,
    /// Markup inline (`application/xhtml+xml`, any `+xml`, `mode="xml"`).
    Markup,
    /// Base64 (`mode="base64"`, or a non-text MIME type) of the given type.
    Base64 { text: bool, html: bool },
}

fn text_kind(e: &quick_xml::events::BytesStart<'_>) -> TextKind {
    let ty = attr(e, "type")
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let mode = attr(e, "mode").map(|m| m.trim().to_ascii_lowercase());
    let src = attr(e, "src").is_some();
    let html_type = matches!(ty.as_str(), "html" | "text/html");
    let xml_type = ty == "xhtml" || ty.ends_with("+xml") || ty.ends_with("/xml");
    let text_type = ty.is_empty() || ty == "text" || ty.starts_with("text/");
    match mode.as_deref() {
        Some("base64") => {
            return TextKind::Base64 {
                text: text_type || html_type || xml_type,
                html: html_type || xml_type,
            };
        }
        Some("escaped") => {
            return if ty == "text/plain" || ty == "text" {
                TextKind::Plain
            } else {
                TextKind::Escaped
            };
        }
        Some("xml") => return TextKind::Markup,
        _ => {}
    }
    if src {
        return if ty.is_empty() || ty.contains('/') {
            TextKind::Standard
        } else {
            TextKind::Src
        };
    }
    match ty.as_str() {
        "" | "text" | "html" | "xhtml" | "text/html" => TextKind::Standard,
        _ if xml_type => TextKind::Markup,
        _ if text_type => TextKind::Plain,
        _ => TextKind::Base64 {
            text: false,
            html: false,
        },
    }
}

/// The element rewritten as a text construct feed-rs reads, and a warning
/// when what it had was outside the Atom 1.0 specification.
fn rewrite_text(
    tag: &str,
    e: &quick_xml::events::BytesStart<'_>,
    kind: TextKind,
    inner: &str,
) -> (String, Option<String>) {
    let keep = kept_attributes(e);
    let element = |ty: &str, body: &str| format!("<{tag}{keep} type=\"{ty}\">{body}</{tag}>");
    let local = tag.rsplit(':').next().unwrap_or(tag);
    let empty = inner.trim().is_empty();
    match kind {
        TextKind::Standard => (format!("<{tag}{keep}>{inner}</{tag}>"), None),
        TextKind::Src => (content_src(tag, e), None),
        _ if empty => (String::new(), None),
        TextKind::Plain => (
            element("text", inner),
            (local != "content").then(|| format!("Atom <{local}> of a MIME type read as text")),
        ),
        TextKind::Escaped => (element("html", inner), None),
        TextKind::Markup => (
            element("html", &quick_xml::escape::escape(inner)),
            (local != "content").then(|| format!("Atom <{local}> of an XML type read as XHTML")),
        ),
        TextKind::Base64 { text, html } => {
            use base64::Engine as _;
            let raw = unescape(inner);
            let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(compact.trim_end_matches('='))
                });
            match decoded {
                Ok(bytes) if text => {
                    let body = String::from_utf8_lossy(&bytes);
                    let ty = if html { "html" } else { "text" };
                    (element(ty, &quick_xml::escape::escape(body.as_ref())), None)
                }
                // Binary content (an image inline, say) is not entry text.
                Ok(_) => (String::new(), None),
                Err(_) => (
                    String::new(),
                    Some(format!("Atom <{local}> with undecodable base64 dropped")),
                ),
            }
        }
    }
}

/// `<content src=…>` whose type is not a MIME type: the type goes (feed-rs
/// would refuse it), and so does any text (the content is elsewhere).
fn content_src(tag: &str, e: &quick_xml::events::BytesStart<'_>) -> String {
    let keep = kept_attributes(e);
    let src = attr(e, "src").unwrap_or_default();
    format!(
        "<{tag}{keep} src=\"{}\"/>",
        quick_xml::escape::escape(src.as_str())
    )
}

/// The attributes of a start tag other than `type`, `mode` and `src`, as written.
fn kept_attributes(e: &quick_xml::events::BytesStart<'_>) -> String {
    let mut out = String::new();
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    for a in attrs.flatten() {
        let key = String::from_utf8_lossy(a.key.as_ref());
        if matches!(key.as_ref(), "type" | "mode" | "src") {
            continue;
        }
        let value = String::from_utf8_lossy(&a.value);
        out.push_str(&format!(" {key}=\"{}\"", value.replace('"', "&quot;")));
    }
    out
}

/// Whether an element is (most likely) Atom's own: unprefixed, or `atom:`.
fn is_atom_name(e: &quick_xml::events::BytesStart<'_>) -> bool {
    match e.name().prefix() {
        None => true,
        Some(p) => p.as_ref() == b"atom",
    }
}

/// An attribute's value by local name (`about` finds `rdf:about`), unescaped.
fn attr(e: &quick_xml::events::BytesStart<'_>, local: &str) -> Option<String> {
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    attrs.flatten().find_map(|a| {
        (a.key
            .local_name()
            .as_ref()
            .eq_ignore_ascii_case(local.as_bytes()))
        .then(|| unescape(&String::from_utf8_lossy(&a.value)))
    })
}

/// XML-unescaped text; HTML entities XML does not know are decoded as HTML's.
pub(super) fn unescape(raw: &str) -> String {
    match quick_xml::escape::unescape(raw) {
        Ok(text) => text.into_owned(),
        Err(_) => html_escape::decode_html_entities(raw).into_owned(),
    }
}

fn day_index(day: &str) -> Option<u8> {
    let days = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let day = day.to_ascii_lowercase();
    days.iter().position(|d| *d == day).map(|i| i as u8)
}

/// The root start tag rewritten where feed-rs would misread it, and a
/// warning when the document was wrong rather than old.
fn rewrite_root(tag: &str, root: &str) -> Option<(String, Option<String>)> {
    match root {
        "rss" => {
            let mut out = tag.to_string();
            let mut warning = None;
            // RSS has no namespace; some put it in userland's (or another).
            if let Some(ns) = attribute(tag, "xmlns") {
                for quoted in [format!("\"{ns}\""), format!("'{ns}'")] {
                    for sp in [" ", "\n", "\t", "\r"] {
                        out = out.replace(&format!("{sp}xmlns={quoted}"), "");
                    }
                }
                warning = Some(format!("RSS in the namespace {ns:?} read as RSS 2.0"));
            }
            let version = attribute(tag, "version");
            if version.as_deref() != Some("2.0") && version.as_deref() != Some("0.91") {
                // Versionless, 0.92, 0.93, 0.94: all RSS 2.0 subsets as far
                // as reading goes.
                out = match version {
                    Some(v) => out.replacen(&format!("\"{v}\""), "\"2.0\"", 1).replacen(
                        &format!("'{v}'"),
                        "'2.0'",
                        1,
                    ),
                    None => out.replacen("<rss", "<rss version=\"2.0\"", 1),
                };
            }
            (out != tag).then_some((out, warning))
        }
        // RSS 0.90 is RSS 1.0's elements in another namespace.
        "rdf" if tag.contains(RSS_090_NS) => Some((tag.replace(RSS_090_NS, RSS_10_NS), None)),
        _ => None,
    }
}

/// The value of attribute `name` in a start tag, either quote.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let preceded_by_space = rest[..at].chars().last().is_some_and(char::is_whitespace);
        let after = rest[at + name.len()..].trim_start();
        if preceded_by_space && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let inner = &value[1..];
                return Some(inner[..inner.find(quote)?].to_string());
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// Atom 0.3 → 1.0: the namespace, and the elements that were renamed.
/// `mode="escaped"` content is what Atom 1.0 calls `type="html"`.
fn atom_03_to_10(text: &str) -> String {
    let mut out = text.replace(ATOM_03_NS, ATOM_10_NS);
    for (old, new) in [
        ("issued", "published"),
        ("modified", "updated"),
        ("tagline", "subtitle"),
        ("copyright", "rights"),
    ] {
        out = out
            .replace(&format!("<{old}>"), &format!("<{new}>"))
            .replace(&format!("<{old} "), &format!("<{new} "))
            .replace(&format!("</{old}>"), &format!("</{new}>"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_read_from_the_channel_only() {
        let text = r#"<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>
            <ttl>90</ttl><sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
            <skipHours><hour>0</hour><hour>23</hour></skipHours><skipDays><day>Sunday</day></skipDays>
            <item><ttl>5</ttl></item></channel></rss>"#;
        let hints = prepare(text).unwrap().hints;
        assert_eq!(hints.ttl, Some(Duration::from_secs(90 * 60)));
        assert_eq!(hints.update_period, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(hints.skip.hours, 1 | 1 << 23);
        assert_eq!(hints.skip.days, 1 << 6);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            "<rss version=\"2.0\">{}{}</rss>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        assert!(prepare(&deep).is_err());
        let fine = format!("<rss>{}{}</rss>", "<a>".repeat(50), "</a>".repeat(50));
        assert!(prepare(&fine).is_ok());
    }

    #[test]
    fn rss_versions_feed_rs_refuses_are_rewritten() {
        let text = prepare("<rss><channel/></rss>").unwrap().text;
        assert_eq!(text, "<rss version=\"2.0\"><channel/></rss>");
        let text = prepare("<?xml version='1.0'?>\n<rss version='0.93' a=\"b\"><channel/></rss>")
            .unwrap()
            .text;
        assert!(text.contains("<rss version='2.0' a=\"b\">"), "{text}");
        let text = prepare("<rss version=\"2.0\"><channel/></rss>")
            .unwrap()
            .text;
        assert!(matches!(text, Cow::Borrowed(_)));
    }
}

#[cfg(test)]
mod format_gaps {
    //! The feed-rs 3 gaps listed in DESIGN.md, through the whole parse.
    use crate::identity;
    use crate::parse::parse;

    const ATOM_03: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#" xml:lang="en">
  <title>Old Atom</title>
  <link rel="alternate" type="text/html" href="http://old.example/"/>
  <tagline>still here</tagline>
  <modified>2026-11-20T10:00:00Z</modified>
  <entry>
    <title>First</title>
    <link rel="alternate" type="text/html" href="http://old.example/1"/>
    <id>tag:old.example,2026:1</id>
    <issued>2026-11-19T09:00:00Z</issued>
    <modified>2026-11-19T10:00:00Z</modified>
    <content type="text/html" mode="escaped">&lt;p&gt;Hello &lt;b&gt;there&lt;/b&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Second</title>
    <link rel="alternate" type="text/html" href="http://old.example/2"/>
    <id>tag:old.example,2026:2</id>
    <issued>2026-11-20T09:00:00Z</issued>
    <summary>Short</summary>
  </entry>
</feed>"#;

    #[test]
    fn atom_03_yields_its_entries_with_dates_and_content() {
        let feed = parse(ATOM_03.as_bytes(), None, "http://old.example/atom").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Old Atom"));
        assert_eq!(feed.entries.len(), 2);
        let first = &feed.entries[0];
        assert_eq!(first.title, "First");
        assert_eq!(first.guid.as_deref(), Some("tag:old.example,2026:1"));
        assert_eq!(first.link.as_deref(), Some("http://old.example/1"));
        assert_eq!(
            first.published.map(|d| d.to_rfc3339()),
            Some("2026-11-19T09:00:00+00:00".into())
        );
        assert_eq!(
            first.updated.map(|d| d.to_rfc3339()),
            Some("2026-11-19T10:00:00+00:00".into())
        );
        let content = first.content.as_deref().unwrap_or("");
        assert!(content.contains("<b>there</b>"), "{content:?}");
    }

    #[test]
    fn versionless_and_0_93_rss_parse() {
        for root in [
            "<rss>",
            "<rss version=\"0.93\">",
            "<rss version='0.94'>",
            "<rss version=\"0.92\">",
        ] {
            let body = format!(
                "<?xml version=\"1.0\"?>{root}<channel><title>T</title><item><title>A</title><link>http://a.example/1</link></item></channel></rss>"
            );
            let feed = parse(body.as_bytes(), None, "http://a.example/")
                .unwrap_or_else(|e| panic!("{root}: {e}"));
            assert_eq!(feed.entries.len(), 1, "{root}");
            assert_eq!(feed.entries[0].title, "A");
        }
    }

    #[test]
    fn entries_without_guid_or_link_keep_their_identity_across_polls() {
        let body = r#"<rss version="2.0"><channel><title>T</title>
            <item><title>No id</title><description>Body one</description></item>
            <item><title>No id either</title><description>Body two</description></item>
            </channel></rss>"#;
        let keys = || -> Vec<String> {
            let feed = parse(body.as_bytes(), None, "http://a.example/").unwrap();
            identity::identify(feed.entries)
                .into_iter()
                .map(|e| e.key)
                .collect()
        };
        let first = keys();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|k| k.starts_with("hash:")), "{first:?}");
        assert_eq!(first, keys());
    }

    #[test]
    fn billion_laughs_is_not_expanded() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]><rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title><guid>1</guid></item></channel></rss>"#;
        let feed = parse(laughs.as_bytes(), None, "http://a.example/").unwrap();
        assert!(
            feed.entries[0].title.len() < 20,
            "{:?}",
            feed.entries[0].title
        );
    }
}
