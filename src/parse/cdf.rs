//! Microsoft's Channel Definition Format (CDF, 1997), which feedparser still
//! reads: a `<CHANNEL HREF=… LASTMOD=…>` of `<ITEM HREF=… LASTMOD=…>` with
//! `<TITLE>` and `<ABSTRACT>`. Rewritten as the RSS 2.0 it amounts to, so it
//! goes through the same parse as any feed.

use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use url::Url;

#[derive(Default)]
struct Node {
    title: Option<String>,
    abstract_: Option<String>,
    href: Option<String>,
    lastmod: Option<String>,
}

impl Node {
    fn of(e: &BytesStart<'_>, base: Option<&Url>) -> Node {
        Node {
            href: attr(e, "href").map(|h| resolve(&h, base)),
            lastmod: attr(e, "lastmod").and_then(|d| rfc2822(&d)),
            ..Node::default()
        }
    }

    fn write(&self, out: &mut String, date_tag: &str) {
        let mut field = |tag: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!("<{tag}>{}</{tag}>", escape(v.as_str())));
            }
        };
        field("title", &self.title);
        field("link", &self.href);
        field("description", &self.abstract_);
        field(date_tag, &self.lastmod);
    }
}

/// The RSS 2.0 text of a CDF document, or `None` if it is not one.
pub fn to_rss(text: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut channel: Option<Node> = None;
    let mut base: Option<Url> = None;
    let mut items: Vec<Node> = Vec::new();
    let mut in_item = false;
    let mut field: Option<String> = None;
    let mut buffer = String::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let name = local(&e);
                match name.as_str() {
                    "channel" if channel.is_none() => {
                        base = attr(&e, "base").and_then(|b| Url::parse(&b).ok());
                        channel = Some(Node::of(&e, base.as_ref()));
                    }
                    "item" => {
                        items.push(Node::of(&e, base.as_ref()));
                        in_item = true;
                    }
                    "title" | "abstract" => {
                        buffer.clear();
                        field = Some(name);
                    }
                    _ => {}
                }
            }
            Ok(Event::Empty(e)) => {
                if local(&e) == "item" {
                    items.push(Node::of(&e, base.as_ref()));
                }
            }
            Ok(Event::Text(t)) => {
                if field.is_some() {
                    buffer.push_str(&t.xml10_content().unwrap_or_default());
                }
            }
            Ok(Event::CData(t)) => {
                if field.is_some() {
                    buffer.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if field.is_some() {
                    let name = r.decode().unwrap_or_default();
                    buffer.push_str(&super::prepare::unescape(&format!("&{name};")));
                }
            }
            Ok(Event::End(e)) => {
                depth = depth.saturating_sub(1);
                match String::from_utf8_lossy(e.local_name().as_ref())
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "item" => in_item = false,
                    "title" | "abstract" => {
                        let node = if in_item {
                            items.last_mut()
                        } else {
                            channel.as_mut()
                        };
                        let value = buffer.trim().to_string();
                        if let (Some(f), Some(node), false) = (field.take(), node, value.is_empty())
                        {
                            let slot = if f == "title" {
                                &mut node.title
                            } else {
                                &mut node.abstract_
                            };
                            slot.get_or_insert(value);
                        }
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let channel = channel?;
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>");
    channel.write(&mut out, "lastBuildDate");
    for item in &items {
        out.push_str("<item>");
        item.write(&mut out, "pubDate");
        out.push_str("</item>");
    }
    out.push_str("</channel></rss>");
    Some(out)
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase()
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let mut attrs = e.attributes();
    attrs.with_checks(false);
    attrs.flatten().find_map(|a| {
        a.key
            .as_ref()
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| {
                super::prepare::unescape(&String::from_utf8_lossy(&a.value))
                    .trim()
                    .to_string()
            })
    })
}

fn resolve(href: &str, base: Option<&Url>) -> String {
    base.and_then(|b| b.join(href).ok())
        .map(String::from)
        .unwrap_or_else(|| href.to_string())
}

/// CDF dates are ISO 8601; RSS wants RFC 822's.
fn rfc2822(date: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(date)
        .ok()
        .map(|d| d.to_rfc2822())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdf_channel_becomes_rss() {
        let cdf = r#"<CHANNEL BASE="http://base.example/" HREF="http://www.example/" LASTMOD="2004-04-06T23:05:43-05:00">
            <TITLE>Channel &amp; co</TITLE><ABSTRACT>About it</ABSTRACT>
            <ITEM HREF="/item/1" LASTMOD="2004-04-07T10:00:00Z"><TITLE>One</TITLE><ABSTRACT>First</ABSTRACT></ITEM>
            <ITEM HREF="http://other.example/2"/>
        </CHANNEL>"#;
        let rss = to_rss(cdf).unwrap();
        assert!(rss.contains("<title>Channel &amp; co</title><link>http://www.example/</link><description>About it</description>"), "{rss}");
        assert!(rss.contains("<item><title>One</title><link>http://base.example/item/1</link><description>First</description><pubDate>Wed, 7 Apr 2004 10:00:00 +0000</pubDate></item>"), "{rss}");
        assert!(
            rss.contains("<item><link>http://other.example/2</link></item>"),
            "{rss}"
        );
    }
}
