//! Documents that Python feedparser reads and feed-rs alone rejects or
//! misreads (issue 19), each through the whole parse stage: the entries
//! recovered, with their titles, links and text, and the warnings that say
//! what was wrong.

mod common;

use common::{FixtureServer, Route, config_for};
use newsriver::model::{ParsedEntry, ParsedFeed};
use newsriver::parse::parse;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tolerance")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(name: &str, url: &str) -> ParsedFeed {
    parse(&fixture(name), None, url).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn titles(feed: &ParsedFeed) -> Vec<&str> {
    feed.entries.iter().map(|e| e.title.as_str()).collect()
}

fn text(entry: &ParsedEntry) -> &str {
    entry
        .content
        .as_deref()
        .or(entry.summary.as_deref())
        .unwrap_or("")
}

#[test]
fn atom_text_of_every_type_and_mode_becomes_entry_text() {
    let feed = read("atom_types.xml", "http://types.example/atom");
    assert_eq!(feed.meta.title.as_deref(), Some("Types & modes"));
    assert_eq!(
        titles(&feed),
        [
            "Inline markup",
            "Plain text",
            "Base64",
            "Escaped",
            "Elsewhere",
            "An image inline",
            "Empty content"
        ]
    );
    let e = &feed.entries;
    // application/xhtml+xml: the markup, sanitised.
    assert!(text(&e[0]).contains("<em>one</em>"), "{}", text(&e[0]));
    // text/plain: escaped text, not markup.
    assert!(
        text(&e[1]).contains("1 &lt; 2 and &lt;b&gt; is not bold"),
        "{}",
        text(&e[1])
    );
    assert!(!text(&e[1]).contains("<b>"));
    // base64 text/html, decoded.
    assert!(
        text(&e[2]).contains("Decoded <b>bold</b>"),
        "{}",
        text(&e[2])
    );
    // Atom 0.3's mode="escaped".
    assert!(text(&e[3]).contains("<i>html</i>"), "{}", text(&e[3]));
    // Content elsewhere, inline image, empty content: the entry keeps its
    // title, link and date without text.
    for entry in &e[4..] {
        assert!(
            entry.content.is_none(),
            "{}: {:?}",
            entry.title,
            entry.content
        );
        assert!(
            entry.link.is_some() && entry.updated.is_some(),
            "{}",
            entry.title
        );
    }
    assert_eq!(e[4].link.as_deref(), Some("http://types.example/5"));
    // The title of a MIME type is outside Atom 1.0: said so.
    assert!(
        feed.warnings.iter().any(|w| w.contains("<title>")),
        "{:?}",
        feed.warnings
    );
}

#[test]
fn xml_base_resolves_links_and_content_urls() {
    let feed = read("xml_base.xml", "http://feeds.example/bases.xml");
    assert_eq!(
        feed.meta.site_url.as_deref(),
        Some("http://base.example/blog/")
    );
    let (one, two) = (&feed.entries[0], &feed.entries[1]);
    assert_eq!(
        one.link.as_deref(),
        Some("http://base.example/blog/posts/one.html")
    );
    let content = text(one);
    assert!(
        content.contains(r#"src="http://media.example/img/a.png""#),
        "{content}"
    );
    assert!(
        content.contains(r#"href="http://media.example/about""#),
        "{content}"
    );
    assert_eq!(
        two.link.as_deref(),
        Some("http://base.example/blog/two.html")
    );
    assert!(
        text(two).contains(r#"src="http://base.example/blog/b.png""#),
        "{}",
        text(two)
    );
    assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
}

#[test]
fn one_unreadable_entry_costs_only_itself() {
    let feed = read("one_bad_entry.xml", "http://apple.example/atom");
    assert_eq!(feed.meta.title.as_deref(), Some("One bad apple"));
    assert_eq!(titles(&feed), ["Good one", "Good two"]);
    assert_eq!(
        feed.entries[1].link.as_deref(),
        Some("http://apple.example/3")
    );
    assert!(text(&feed.entries[0]).contains("fine"));
    assert!(
        feed.warnings
            .iter()
            .any(|w| w.starts_with("entry 2 of 3 dropped")),
        "{:?}",
        feed.warnings
    );
}

#[test]
fn rdf_about_is_an_rss_1_0_items_identity() {
    let feed = read("rdf_about.rdf", "http://rdf.example/index.rdf");
    assert_eq!(titles(&feed), ["With a link", "Only rdf:about"]);
    assert_eq!(
        feed.entries[0].guid.as_deref(),
        Some("http://rdf.example/story/1")
    );
    assert_eq!(
        feed.entries[0].link.as_deref(),
        Some("http://rdf.example/story/1?utm=x")
    );
    assert_eq!(
        feed.entries[1].guid.as_deref(),
        Some("http://rdf.example/story/2")
    );
    assert_eq!(
        feed.entries[1].link.as_deref(),
        Some("http://rdf.example/story/2")
    );
    assert!(feed.warnings.is_empty(), "{:?}", feed.warnings);
}

#[test]
fn the_demo_rss_1_0_sample_keys_on_rdf_about() {
    // The offline demo's RSS 1.0 sample: every item has an identity now, so
    // identity does not drop down its ladder (and warn) on a first run.
    for path in ["src/demo/science.rdf", "tests/fixtures/core/rss1.rdf"] {
        let body =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        let feed = parse(&body, None, "http://demo.example/science.rdf").unwrap();
        assert!(!feed.entries.is_empty(), "{path}");
        assert!(
            feed.entries.iter().all(|e| e.guid.is_some()),
            "{path}: {:?}",
            feed.entries.iter().map(|e| &e.guid).collect::<Vec<_>>()
        );
    }
}

#[test]
fn legacy_and_odd_rss_shapes_are_read() {
    let cases = [
        ("rss_no_channel.xml", "Loose item", "http://loose.example/1"),
        (
            "rss_userland_ns.xml",
            "Prefixed item",
            "http://userland.example/1",
        ),
        (
            "rss_default_ns.xml",
            "Namespaced item",
            "http://userland.example/2",
        ),
        ("rss090.rdf", "First 0.90 item", "http://netscape.example/1"),
        ("cdf.xml", "CDF item", "http://cdf.example/news/1"),
    ];
    for (name, title, link) in cases {
        let feed = read(name, "http://feeds.example/f.xml");
        assert_eq!(titles(&feed), [title], "{name}");
        assert_eq!(feed.entries[0].link.as_deref(), Some(link), "{name}");
    }
    let loose = read("rss_no_channel.xml", "http://loose.example/");
    assert_eq!(loose.meta.title.as_deref(), Some("Loose"));
    assert!(text(&loose.entries[0]).contains("i.png"));
    assert_eq!(loose.warnings, ["RSS items outside a <channel>"]);
    let cdf = read("cdf.xml", "http://cdf.example/cdf.xml");
    assert_eq!(cdf.meta.title.as_deref(), Some("Channel Definition Format"));
    assert_eq!(text(&cdf.entries[0]), "Pushed to your desktop");
    assert_eq!(
        cdf.entries[0].published.map(|d| d.to_rfc3339()),
        Some("2026-12-01T09:00:00+00:00".into())
    );
    // RSS 0.90/1.0 items with neither link nor rdf:about (feed-rs's RSS 1.0
    // reader drops them): read as RSS 2.0, every item kept.
    let linkless = read("rdf_no_link.rdf", "http://linkless.example/index.rdf");
    assert_eq!(
        linkless.meta.title.as_deref(),
        Some("Links are optional here")
    );
    assert_eq!(titles(&linkless), ["No link, no about", "About only"]);
    assert_eq!(linkless.entries[0].author.as_deref(), Some("Ann Author"));
    assert_eq!(linkless.entries[0].link, None);
    assert_eq!(
        linkless.entries[1].guid.as_deref(),
        Some("http://linkless.example/2")
    );
    assert_eq!(
        linkless.entries[1].link.as_deref(),
        Some("http://linkless.example/2")
    );
    assert!(!linkless.warnings.is_empty());
    let prefixed = read("rss_userland_ns.xml", "http://userland.example/");
    assert_eq!(prefixed.entries[0].guid.as_deref(), Some("userland-1"));
    assert!(!prefixed.warnings.is_empty());
}

fn encoded(label: &str, encode: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
    let source = String::from_utf8(fixture("utf8_source.xml")).unwrap();
    encode(&source.replace("ENCODING", label))
}

fn assert_unicode_survives(body: &[u8], what: &str) {
    let feed =
        parse(body, None, "http://enc.example/rss").unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(feed.meta.title.as_deref(), Some("Café — ünïcödé"), "{what}");
    assert_eq!(titles(&feed), ["Ελληνικά and 日本語"], "{what}");
    assert_eq!(text(&feed.entries[0]), "€ 5", "{what}");
}

#[test]
fn utf16_and_utf32_documents_with_and_without_a_bom_are_read() {
    let utf16 = |big: bool, bom: bool| {
        move |s: &str| {
            let mut out = Vec::new();
            if bom {
                out.extend(if big { [0xFE, 0xFF] } else { [0xFF, 0xFE] });
            }
            for u in s.encode_utf16() {
                out.extend(if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                });
            }
            out
        }
    };
    let utf32 = |big: bool, bom: bool| {
        move |s: &str| {
            let mut out = Vec::new();
            for c in bom.then_some('\u{feff}').into_iter().chain(s.chars()) {
                let c = c as u32;
                out.extend(if big {
                    c.to_be_bytes()
                } else {
                    c.to_le_bytes()
                });
            }
            out
        }
    };
    for big in [false, true] {
        for bom in [false, true] {
            // The declaration says what it is, as such documents do.
            let body = encoded("utf-16", utf16(big, bom));
            assert_unicode_survives(&body, &format!("utf-16 big={big} bom={bom}"));
            let body = encoded("utf-32", utf32(big, bom));
            assert_unicode_survives(&body, &format!("utf-32 big={big} bom={bom}"));
        }
    }
}

#[test]
fn ebcdic_documents_are_read_and_an_unsupported_page_is_named() {
    let ebcdic = |s: &str| {
        // Code page 037 has no Greek, Japanese or euro: keep to what it has.
        let s = s
            .replace("Ελληνικά and 日本語", "Greek and Japanese")
            .replace('€', "EUR")
            .replace('—', "-");
        let mut encoder = anyxml_encoding::find_encoder("IBM037").unwrap();
        let mut out = vec![0u8; s.len() * 4];
        let (_, written) = encoder.encode(&s, &mut out, true).unwrap();
        out.truncate(written);
        out
    };
    for label in ["cp037", "ibm039", "ebcdic-cp-us", "csIBM037", "cp1140"] {
        let feed = parse(&encoded(label, ebcdic), None, "http://enc.example/")
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            feed.meta.title.as_deref(),
            Some("Café - ünïcödé"),
            "{label}"
        );
        assert_eq!(titles(&feed), ["Greek and Japanese"], "{label}");
    }
    let err = parse(&encoded("cp875", ebcdic), None, "http://enc.example/").unwrap_err();
    assert!(
        err.to_string().contains("\"cp875\" is not supported"),
        "{err}"
    );
}

#[test]
fn an_unknown_encoding_label_is_read_as_windows_1252_and_said() {
    let mut body = b"<?xml version=\"1.0\" encoding=\"x-mac-klingon\"?><rss version=\"2.0\"><channel><title>Caf".to_vec();
    body.push(0xE9);
    body.extend_from_slice(b"</title><item><title>t</title><guid>1</guid></item></channel></rss>");
    let feed = parse(&body, None, "http://enc.example/").unwrap();
    assert_eq!(feed.meta.title.as_deref(), Some("Café"));
    assert_eq!(feed.entries.len(), 1);
    assert!(
        feed.warnings[0].contains("x-mac-klingon"),
        "{:?}",
        feed.warnings
    );
}

#[test]
fn a_clean_document_has_no_warnings() {
    for name in ["atom.xml", "rss2.xml", "rss1.rdf", "feed.json"] {
        let body = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/core")
                .join(name),
        )
        .unwrap();
        let feed = parse(&body, None, "http://clean.example/").unwrap();
        assert!(feed.warnings.is_empty(), "{name}: {:?}", feed.warnings);
        assert!(!feed.entries.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_feed_read_after_recovery_is_ok_with_its_warnings_shown_and_cleared_when_clean() {
    let server = FixtureServer::start().await;
    server.set(
        "/apple.xml",
        Route::feed(fixture("one_bad_entry.xml"), "application/atom+xml"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &[server.url("/apple.xml")], "");
    newsriver::poll_once(&config).await.unwrap();
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let statuses = store.feed_statuses().unwrap();
    let feed = &statuses[0];
    assert_eq!(feed.state.as_str(), "ok");
    assert_eq!(feed.last_error, None);
    assert_eq!(feed.entries, 2, "the two readable entries are stored");
    assert!(
        feed.parse_warnings
            .iter()
            .any(|w| w.starts_with("entry 2 of 3 dropped")),
        "{:?}",
        feed.parse_warnings
    );
    // `newsriver feeds` (table and JSON) says so.
    let rows = newsriver::feed_list::rows(&statuses);
    let table = newsriver::feed_list::table(&rows, chrono::Utc::now());
    assert!(table.contains("read after recovery"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&newsriver::feed_list::json(&rows)).unwrap();
    let listed = json[0]["parse_warnings"].as_array().unwrap();
    assert!(
        listed[0]
            .as_str()
            .unwrap()
            .starts_with("read entry by entry"),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|w| w.as_str().unwrap().contains("dropped")),
        "{listed:?}"
    );
    // The outlet fixes its feed: the warnings go with the next parse.
    server.set(
        "/apple.xml",
        Route::feed(fixture("xml_base.xml"), "application/atom+xml"),
    );
    newsriver::poll_once(&config).await.unwrap();
    let statuses = store.feed_statuses().unwrap();
    assert!(
        statuses[0].parse_warnings.is_empty(),
        "{:?}",
        statuses[0].parse_warnings
    );
}
