//! OPML: the subscription list feed readers exchange. Import adds outlines to
//! the TOML without disturbing its comments or layout (toml_edit); export
//! writes OPML 2.0 from the configuration or the database.
//!
//! Folders map to tags: an imported outline takes the names of the folders
//! it sits in (and of its `category` attribute) as tags; on export a feed sits
//! in the folder of its first tag and lists all its tags in `category`.

use std::collections::HashSet;
use std::path::Path;

use quick_xml::events::{BytesStart, BytesText, Event};
use url::Url;

use crate::config::Config;
use crate::store::Subscription;

/// An OPML file or an import that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    /// The OPML is not well-formed XML.
    #[error("not a readable OPML file: {0}")]
    Xml(String),
    /// The OPML holds no outline with an `xmlUrl`.
    #[error("the OPML file lists no feeds (no outline has an xmlUrl)")]
    Empty,
    /// The TOML to import into could not be read or edited.
    #[error("{0}")]
    Toml(String),
}

/// Reads the feeds listed in an OPML document.
pub fn parse(text: &str) -> Result<Vec<Subscription>, OpmlError> {
    let mut reader = quick_xml::Reader::from_str(text);
    // One entry per open <outline>: Some(folder name) or None for a feed
    // outline that has children of its own.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut found = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| OpmlError::Xml(format!("at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == b"outline" => {
                let outline = Outline::read(&e, reader.decoder())?;
                match outline.xml_url {
                    Some(_) => {
                        found.push(outline.into_subscription(&stack));
                        stack.push(None);
                    }
                    None => stack.push(outline.text),
                }
            }
            Event::Empty(e) if e.local_name().as_ref() == b"outline" => {
                let outline = Outline::read(&e, reader.decoder())?;
                if outline.xml_url.is_some() {
                    found.push(outline.into_subscription(&stack));
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"outline" => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if found.is_empty() {
        return Err(OpmlError::Empty);
    }
    Ok(found)
}

#[derive(Debug, Default)]
struct Outline {
    text: Option<String>,
    xml_url: Option<String>,
    html_url: Option<String>,
    categories: Vec<String>,
}

impl Outline {
    fn read(e: &BytesStart<'_>, decoder: quick_xml::encoding::Decoder) -> Result<Self, OpmlError> {
        let mut outline = Outline::default();
        let mut title = None;
        for attr in e.attributes().with_checks(false) {
            let attr = attr.map_err(|e| OpmlError::Xml(e.to_string()))?;
            let value = attr
                .decoded_and_normalized_value(quick_xml::XmlVersion::default(), decoder)
                .map_err(|e| OpmlError::Xml(e.to_string()))?
                .trim()
                .to_string();
            if value.is_empty() {
                continue;
            }
            match attr.key.local_name().as_ref() {
                b"text" => outline.text = Some(value),
                b"title" => title = Some(value),
                b"xmlUrl" | b"xmlurl" => outline.xml_url = Some(value),
                b"htmlUrl" | b"htmlurl" => outline.html_url = Some(value),
                b"category" => {
                    outline.categories = value
                        .split(',')
                        .flat_map(|path| path.split('/'))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                _ => {}
            }
        }
        // `text` is required by OPML 2.0, but some exporters only write `title`.
        if outline.text.is_none() {
            outline.text = title;
        }
        Ok(outline)
    }

    fn into_subscription(self, folders: &[Option<String>]) -> Subscription {
        let mut tags: Vec<String> = Vec::new();
        let candidates = folders.iter().flatten().chain(self.categories.iter());
        for tag in candidates {
            let tag = tag.replace('/', "-").trim().to_string();
            if !tag.is_empty() && !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Subscription {
            url: self.xml_url.unwrap_or_default(),
            title: self.text,
            site_url: self.html_url,
            tags,
        }
    }
}

/// The configured feeds, for export.
pub fn from_config(config: &Config) -> Vec<Subscription> {
    config
        .feeds
        .iter()
        .map(|f| Subscription {
            url: f.url().to_string(),
            title: f.title.clone(),
            site_url: None,
            tags: f.tags.clone(),
        })
        .collect()
}

/// Writes OPML 2.0. Only URLs, titles, site links and tags are written:
/// never credentials or headers.
pub fn write(title: &str, subscriptions: &[Subscription]) -> String {
    let mut out = Vec::new();
    let mut writer = quick_xml::Writer::new_with_indent(&mut out, b' ', 2);
    let date = chrono::Utc::now().to_rfc2822();
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(quick_xml::events::BytesDecl::new(
        "1.0",
        Some("UTF-8"),
        None,
    )));
    let _ = writer
        .create_element("opml")
        .with_attribute(("version", "2.0"))
        .write_inner_content(|w| {
            w.create_element("head").write_inner_content(|w| {
                w.create_element("title")
                    .write_text_content(BytesText::new(title))?;
                w.create_element("dateCreated")
                    .write_text_content(BytesText::new(&date))?;
                w.create_element("docs")
                    .write_text_content(BytesText::new("https://opml.org/spec2.opml"))?;
                Ok(())
            })?;
            w.create_element("body").write_inner_content(|w| {
                // Untagged feeds at the top level, then one folder per first tag.
                for s in subscriptions.iter().filter(|s| s.tags.is_empty()) {
                    feed_outline(w, s)?;
                }
                let mut folders: Vec<&str> = Vec::new();
                for s in subscriptions {
                    if let Some(first) = s.tags.first()
                        && !folders.contains(&first.as_str())
                    {
                        folders.push(first);
                    }
                }
                for folder in folders {
                    w.create_element("outline")
                        .with_attributes([("text", folder), ("title", folder)])
                        .write_inner_content(|w| {
                            for s in subscriptions
                                .iter()
                                .filter(|s| s.tags.first().map(String::as_str) == Some(folder))
                            {
                                feed_outline(w, s)?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            Ok(())
        });
    let mut text = String::from_utf8(out).unwrap_or_default();
    text.push('\n');
    text
}

fn feed_outline<W: std::io::Write>(
    w: &mut quick_xml::Writer<W>,
    s: &Subscription,
) -> std::io::Result<()> {
    let text = s.title.as_deref().unwrap_or(&s.url);
    let category = s
        .tags
        .iter()
        .map(|t| format!("/{t}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut element = w.create_element("outline").with_attributes([
        ("type", "rss"),
        ("text", text),
        ("title", text),
        ("xmlUrl", s.url.as_str()),
    ]);
    if let Some(site) = &s.site_url {
        element = element.with_attribute(("htmlUrl", site.as_str()));
    }
    if !category.is_empty() {
        element = element.with_attribute(("category", category.as_str()));
    }
    element.write_empty()?;
    Ok(())
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Feeds added to the TOML.
    pub added: Vec<String>,
    /// Feeds left out, with why.
    pub skipped: Vec<(String, String)>,
}

/// Adds `subscriptions` as `[[feed]]` tables at the end of `toml_text`,
/// leaving everything already there (comments included) as it was. Feeds
/// already configured, listed twice, or with unusable URLs are skipped and
/// reported. The result is validated as a whole before it is returned.
pub fn import_into_toml(
    toml_text: &str,
    config_path: &Path,
    subscriptions: &[Subscription],
    source: &str,
) -> Result<(String, ImportReport), OpmlError> {
    let config =
        Config::parse(toml_text, config_path).map_err(|e| OpmlError::Toml(e.to_string()))?;
    let mut doc: toml_edit::DocumentMut = toml_text
        .parse()
        .map_err(|e: toml_edit::TomlError| OpmlError::Toml(e.to_string()))?;
    let mut known: HashSet<Url> = config.feeds.iter().map(|f| f.url().clone()).collect();
    let mut report = ImportReport::default();
    let mut new_tables = Vec::new();
    for s in subscriptions {
        let url = match Url::parse(s.url.trim()) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
                    && u.username().is_empty()
                    && u.password().is_none() =>
            {
                u
            }
            _ => {
                report
                    .skipped
                    .push((s.url.clone(), "not a usable http(s) feed URL".to_string()));
                continue;
            }
        };
        if !known.insert(url.clone()) {
            let why = if config.feeds.iter().any(|f| *f.url() == url) {
                "already configured"
            } else {
                "listed twice in the OPML file"
            };
            report.skipped.push((url.to_string(), why.to_string()));
            continue;
        }
        let mut table = toml_edit::Table::new();
        table.insert("url", toml_edit::value(url.as_str()));
        if let Some(title) = &s.title
            && title != url.as_str()
        {
            table.insert("title", toml_edit::value(title.as_str()));
        }
        if !s.tags.is_empty() {
            let tags: toml_edit::Array = s.tags.iter().map(String::as_str).collect();
            table.insert("tags", toml_edit::value(tags));
        }
        new_tables.push(table);
        report.added.push(url.to_string());
    }
    if !new_tables.is_empty() {
        let feeds = doc
            .entry("feed")
            .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
        match feeds {
            toml_edit::Item::ArrayOfTables(array) => {
                for (i, mut table) in new_tables.into_iter().enumerate() {
                    if i == 0 {
                        table.decor_mut().set_prefix(format!(
                            "\n# Imported from {source} on {}.\n",
                            chrono::Utc::now().format("%Y-%m-%d")
                        ));
                    }
                    array.push(table);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::Array(array)) => {
                for table in new_tables {
                    array.push(table.into_inline_table());
                }
            }
            _ => {
                return Err(OpmlError::Toml(
                    "`feed` in the configuration is neither [[feed]] tables nor an array".into(),
                ));
            }
        }
    }
    let text = doc.to_string();
    Config::parse(&text, config_path).map_err(|e| {
        OpmlError::Toml(format!(
            "the imported configuration would not be valid: {e}"
        ))
    })?;
    Ok((text, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Loose" xmlUrl="https://loose.example/feed" htmlUrl="https://loose.example/"/>
    <outline text="News" title="News">
      <outline text="World">
        <outline type="rss" text="Wire &amp; Co" xmlUrl="https://wire.example/rss"/>
      </outline>
      <outline type="rss" title="Only a title" xmlUrl="https://b.example/atom" category="/tech,/a/b"/>
    </outline>
    <outline text="Broken" xmlUrl="ftp://nope.example/"/>
  </body>
</opml>"#;

    #[test]
    fn folders_and_categories_become_tags() {
        let subs = parse(OPML).unwrap();
        assert_eq!(subs.len(), 4);
        assert_eq!(subs[0].tags, Vec::<String>::new());
        assert_eq!(subs[0].site_url.as_deref(), Some("https://loose.example/"));
        assert_eq!(subs[1].title.as_deref(), Some("Wire & Co"));
        assert_eq!(subs[1].tags, ["News", "World"]);
        assert_eq!(subs[2].title.as_deref(), Some("Only a title"));
        assert_eq!(subs[2].tags, ["News", "tech", "a", "b"]);
    }

    #[test]
    fn import_keeps_comments_and_skips_known_and_bad_feeds() {
        let toml = "# my river\n[fetch]\ninterval = \"1h\" # hourly\n\n[[feed]]\n# the wire\nurl = \"https://wire.example/rss\"\n";
        let subs = parse(OPML).unwrap();
        let (text, report) =
            import_into_toml(toml, Path::new("c.toml"), &subs, "feeds.opml").unwrap();
        assert!(text.starts_with(toml), "{text}");
        assert_eq!(
            report.added,
            ["https://loose.example/feed", "https://b.example/atom"]
        );
        assert_eq!(report.skipped.len(), 2);
        assert_eq!(report.skipped[0].1, "already configured");
        let config = Config::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(config.feeds.len(), 3);
        assert_eq!(config.feeds[2].tags, ["News", "tech", "a", "b"]);
    }

    #[test]
    fn export_then_parse_gives_the_same_feeds_and_tags() {
        let subs = vec![
            Subscription {
                url: "https://a.example/f".into(),
                title: Some("A <&> \"quoted\"".into()),
                site_url: None,
                tags: vec!["x".into(), "y".into()],
            },
            Subscription {
                url: "https://b.example/f?x=1&y=2".into(),
                title: None,
                site_url: Some("https://b.example/".into()),
                tags: vec![],
            },
        ];
        let text = write("River", &subs);
        let mut back = parse(&text).unwrap();
        back.sort_by(|a, b| a.url.cmp(&b.url));
        assert_eq!(back[0].url, subs[0].url);
        assert_eq!(back[0].title, subs[0].title);
        assert_eq!(back[0].tags, subs[0].tags);
        assert_eq!(back[1].url, subs[1].url);
        assert_eq!(back[1].site_url, subs[1].site_url);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("<opml><body><outline text='x'></body>").is_err());
        assert!(matches!(parse("<opml/>"), Err(OpmlError::Empty)));
    }
}
