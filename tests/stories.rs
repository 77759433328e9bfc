//! One story, every source: fixture feeds served on loopback, polled, stored
//! and published; the merged Atom feed is checked for stories and credits.

mod common;

use atom_syndication::{Entry, Feed};
use common::{FixtureServer, Route};
use newsriver::publish::{River, atom};
use newsriver::scheduler::Summary;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures_dir().join("stories").join(name)).unwrap()
}

async fn outlets() -> FixtureServer {
    let server = FixtureServer::start().await;
    server.set(
        "/wire.xml",
        Route::feed(fixture("wire.xml"), "application/rss+xml"),
    );
    server.set(
        "/gazette.atom",
        Route::feed(fixture("gazette.atom"), "application/atom+xml"),
    );
    server.set(
        "/courier.json",
        Route::feed(fixture("courier.json"), "application/feed+json"),
    );
    server
}

/// A config with one `[[feed]]` per (path, extra lines).
fn config(
    dir: &std::path::Path,
    server: &FixtureServer,
    feeds: &[(&str, &str)],
    extra: &str,
) -> newsriver::Config {
    let mut toml = format!("{}{extra}\n", common::storage_toml(&dir.join("river.db")));
    for (path, lines) in feeds {
        toml.push_str(&format!(
            "[[feed]]\nurl = \"{}\"\n{lines}\n",
            server.url(path)
        ));
    }
    newsriver::Config::parse(&toml, std::path::Path::new("test.toml")).unwrap()
}

fn published(config: &newsriver::Config) -> Feed {
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let river = River {
        id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
        title: "River".into(),
        base_url: "http://127.0.0.1:1/".into(),
        attribution: config.output.attribution.as_ref().map(|t| t.0.clone()),
    };
    atom(&river, &store.stories(100).unwrap())
        .parse()
        .expect("well-formed Atom")
}

fn storm(feed: &Feed) -> Vec<&Entry> {
    feed.entries
        .iter()
        .filter(|e| {
            e.title
                .value
                .to_lowercase()
                .contains("120,000 homes without power")
        })
        .collect()
}

fn via(entry: &Entry) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = entry
        .links
        .iter()
        .filter(|l| l.rel == "via")
        .map(|l| (l.title.clone().unwrap_or_default(), l.href.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn one_wire_story_in_three_outlets_is_one_entry_crediting_all_three() {
    let server = outlets().await;
    let dir = tempfile::tempdir().unwrap();
    // The wire is seen first; a poll later the other two outlets arrive.
    let wire_only = config(dir.path(), &server, &[("/wire.xml", "")], "");
    newsriver::poll_once(&wire_only).await.unwrap();
    let all = [
        ("/wire.xml", ""),
        ("/gazette.atom", ""),
        ("/courier.json", ""),
    ];
    let config = config(
        dir.path(),
        &server,
        &all,
        "[output]\nattribution = \"Originally published by {source} on {published}: {link}. Copyright belongs to the original author.\"",
    );
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    // The wire's document is byte for byte the one already stored: its body
    // hash marks it unchanged (no parse); the two new outlets bring 3 entries.
    assert_eq!(
        (summary.ok, summary.not_modified, summary.new),
        (2, 1, 3),
        "{summary:?}"
    );

    let feed = published(&config);
    // Five entries, three of them one story: the rates story, the storm
    // report, and the different (third-day) storm story with a similar title.
    assert_eq!(feed.entries.len(), 3, "{:#?}", feed.entries);
    assert!(
        feed.entries
            .iter()
            .any(|e| e.title.value.contains("for a third day"))
    );
    let story = storm(&feed);
    assert_eq!(story.len(), 1);
    let story = story[0];
    // The primary is the wire, seen first.
    let source = story.source.as_ref().unwrap();
    assert_eq!(source.title.value, "Northern Wire");
    assert_eq!(
        source.rights.as_ref().unwrap().value,
        "Copyright 2026 Northern Wire"
    );
    assert_eq!(story.authors[0].name, "Ivar Mohn");
    assert_eq!(
        via(story),
        vec![
            (
                "Harbour Gazette".to_string(),
                "https://gazette.example/2026/11/11/storm-irwen-power?fbclid=IwAR0xyz&utm_campaign=social#comments".to_string()
            ),
            (
                "Valley Courier".to_string(),
                "https://courier.example/weather/storm-irwen-120000-homes-without-power?gclid=Cj0KCQ&ref=home".to_string()
            ),
        ]
    );
    // The wire gives a description only: provenance follows the summary.
    assert!(story.content.is_none());
    let content = story.summary.as_ref().unwrap().value.clone();
    assert!(content.contains("Also reported by <a"), "{content}");
    assert!(content.contains(">Harbour Gazette</a>") && content.contains(">Valley Courier</a>"));
    assert!(
        content.ends_with("<p class=\"newsriver-attribution\">Originally published by Northern Wire on 2026-11-11 07:30 UTC: https://wire.example/news/2026/11/11/storm-irwen-power-cuts?utm_source=rss&amp;utm_medium=feed. Copyright belongs to the original author.</p>"),
        "{content}"
    );
    let uid = story.id.clone();

    // Ranking the courier first makes it the primary; the published id stays.
    let ranked = self::config(
        dir.path(),
        &server,
        &[
            ("/wire.xml", ""),
            ("/gazette.atom", ""),
            ("/courier.json", "priority = 10"),
        ],
        "",
    );
    let summary = Summary::of(&newsriver::poll_once(&ranked).await.unwrap());
    assert_eq!((summary.new, summary.updated), (0, 0));
    let feed = published(&ranked);
    let story = storm(&feed)[0];
    assert_eq!(story.id, uid, "a story's id never changes");
    assert_eq!(story.source.as_ref().unwrap().title.value, "Valley Courier");
    // The courier's copy has no author; its byline names the wire.
    assert_eq!(story.authors[0].name, "Northern Wire");
    let names: Vec<String> = via(story).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, ["Harbour Gazette", "Northern Wire"]);

    // An original publisher outranks any priority.
    let original = self::config(
        dir.path(),
        &server,
        &[
            ("/wire.xml", ""),
            ("/gazette.atom", "original = true"),
            ("/courier.json", "priority = 10"),
        ],
        "",
    );
    newsriver::poll_once(&original).await.unwrap();
    let feed = published(&original);
    let story = storm(&feed)[0];
    assert_eq!(story.id, uid);
    assert_eq!(
        story.source.as_ref().unwrap().title.value,
        "Harbour Gazette"
    );
    // No entry author: the feed-level author.
    assert_eq!(story.authors[0].name, "Harbour Gazette Desk");
}

#[tokio::test]
async fn with_matching_off_only_the_same_canonical_link_merges() {
    let server = outlets().await;
    // A fourth outlet carries the wire's own link, with other tracking.
    let mirror = String::from_utf8(fixture("wire.xml"))
        .unwrap()
        .replace("<title>Northern Wire</title>", "<title>Wire Mirror</title>")
        .replace("nw-2026-", "mirror-")
        .replace("utm_source=rss&amp;utm_medium=feed", "fbclid=zz#top");
    server.set("/mirror.xml", Route::feed(mirror, "application/rss+xml"));
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &server,
        &[
            ("/wire.xml", ""),
            ("/gazette.atom", ""),
            ("/courier.json", ""),
            ("/mirror.xml", ""),
        ],
        "[dedup]\nenabled = false",
    );
    newsriver::poll_once(&config).await.unwrap();
    let feed = published(&config);
    let copies = storm(&feed);
    assert_eq!(copies.len(), 3, "gazette and courier stay apart");
    let merged: Vec<_> = copies.iter().filter(|e| !via(e).is_empty()).collect();
    assert_eq!(merged.len(), 1);
    let names: Vec<String> = via(merged[0]).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names.len(), 1);
    assert!(names[0] == "Wire Mirror" || names[0] == "Northern Wire");
}

fn rss(items: &str) -> Route {
    Route::feed(
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Local</title><link>https://local.example/</link>{items}</channel></rss>"
        ),
        "application/rss+xml",
    )
}

fn item(guid: &str, link: &str, title: &str, body: &str) -> String {
    format!(
        "<item><guid isPermaLink=\"false\">{guid}</guid><link>{link}</link><title>{title}</title><description>{body}</description><pubDate>Wed, 11 Nov 2026 07:30:00 +0000</pubDate></item>"
    )
}

#[tokio::test]
async fn an_edited_entry_is_updated_not_duplicated_and_clock_churn_is_limited() {
    let server = FixtureServer::start().await;
    let body = "Engineers closed the Kelby Bridge to all traffic on Thursday after finding a crack in one of its steel girders during a routine inspection.";
    let v1 = item(
        "b1",
        "https://local.example/bridge",
        "Kelby Bridge closed",
        body,
    );
    server.set("/local.xml", rss(&v1));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, &[("/local.xml", "")], "");
    newsriver::poll_once(&config).await.unwrap();
    let before = published(&config);
    assert_eq!(before.entries.len(), 1);

    let v2 = item(
        "b1",
        "https://local.example/bridge",
        "Kelby Bridge closed after inspectors find crack",
        &format!("{body} It will stay shut for at least a week. Last checked 10:09."),
    );
    server.set("/local.xml", rss(&v2));
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((summary.new, summary.updated), (0, 1));
    let after = published(&config);
    assert_eq!(after.entries.len(), 1);
    assert_eq!(after.entries[0].id, before.entries[0].id);
    assert_eq!(
        after.entries[0].title.value,
        "Kelby Bridge closed after inspectors find crack"
    );
    assert!(after.entries[0].updated > before.entries[0].updated);

    // A clock baked into the item changes on every poll: stored, but it does
    // not make the entry look updated again and again.
    for minute in 10..13 {
        let churn = item(
            "b1",
            "https://local.example/bridge",
            "Kelby Bridge closed after inspectors find crack",
            &format!("{body} It will stay shut for at least a week. Last checked 10:{minute}."),
        );
        server.set("/local.xml", rss(&churn));
        let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
        assert_eq!((summary.new, summary.updated), (0, 0), "minute {minute}");
    }
    let churned = published(&config);
    assert_eq!(churned.entries[0].updated, after.entries[0].updated);
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    assert!(
        store.stories(1).unwrap()[0]
            .summary
            .as_deref()
            .unwrap()
            .contains("Last checked 10:12"),
        "the newest text is kept"
    );
}

#[tokio::test]
async fn a_feed_with_repeated_guids_loses_no_entry() {
    let server = FixtureServer::start().await;
    let items: String = (1..=5)
        .map(|i| {
            item(
                "post",
                &format!("https://local.example/{i}"),
                &format!("Item number {i}"),
                &format!("Body of item {i}."),
            )
        })
        .collect();
    server.set("/local.xml", rss(&items));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, &[("/local.xml", "")], "");
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!(summary.new, 5);
    let again = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((again.new, again.updated), (0, 0));
    let feed = published(&config);
    let mut titles: Vec<String> = feed.entries.iter().map(|e| e.title.value.clone()).collect();
    titles.sort();
    assert_eq!(
        titles,
        (1..=5)
            .map(|i| format!("Item number {i}"))
            .collect::<Vec<_>>()
    );
}

/// Walks a JSON Feed view from `path` through its `next_url`s.
async fn json_pages(base: &str, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut url = format!("{base}{path}");
    for _ in 0..20 {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let page: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_url"].as_str() {
            Some(next) => url = next.to_string(),
            None => return items,
        }
    }
    panic!("more than 20 pages");
}

/// Walks an RSS view through its `atom:link rel="next"`.
async fn rss_pages(base: &str) -> Vec<rss::Item> {
    let mut items = Vec::new();
    let mut url = format!("{base}/feed.rss");
    for _ in 0..20 {
        let xml = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert_eq!(
            xml.matches("<source ").count(),
            xml.matches("<item>").count(),
            "one <source> per item: {xml}"
        );
        let channel: rss::Channel = xml.parse().expect("well-formed RSS");
        items.extend(channel.items.iter().cloned());
        let next = channel
            .atom_ext
            .as_ref()
            .and_then(|a| a.links.iter().find(|l| l.rel == "next"))
            .map(|l| l.href.clone());
        match next {
            Some(next) => url = next,
            None => return items,
        }
    }
    panic!("more than 20 pages");
}

/// Walks the HTML river through its "Older stories" links.
async fn html_pages(base: &str) -> Vec<String> {
    let next = regex::Regex::new(r#"<a rel="next" href="([^"]+)">"#).unwrap();
    let mut pages = Vec::new();
    let mut url = format!("{base}/");
    for _ in 0..20 {
        let html = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let older = next
            .captures(&html)
            .map(|c| html_escape::decode_html_entities(&c[1]).into_owned());
        pages.push(html);
        match older {
            Some(older) => url = older,
            None => return pages,
        }
    }
    panic!("more than 20 pages");
}

fn is_storm(title: &str) -> bool {
    title.to_lowercase().contains("120,000 homes without power")
}

#[tokio::test]
async fn every_format_and_view_pages_one_item_per_story_and_a_reload_reranks_the_outlets() {
    let server = outlets().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newsriver.toml");
    let toml = |wire: &str, courier: &str| {
        format!(
            "[access]\nadmin_token = \"t\"\n[fetch]\njitter = 0.0\n{}\
             [output]\nentries = 1\nattribution = \"From {{source}}.\"\n\
             [[feed]]\nurl = \"{}\"\n{wire}\n[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n{courier}\n",
            common::storage_toml(&dir.path().join("river.db")),
            server.url("/wire.xml"),
            server.url("/gazette.atom"),
            server.url("/courier.json"),
        )
    };
    std::fs::write(&path, toml("original = true", "")).unwrap();
    let config = newsriver::Config::load(&path).unwrap();
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((summary.ok, summary.new), (3, 5), "{summary:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(newsriver::daemon::run_with(
        config,
        Some(path.clone()),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    // Five entries, three stories, one per page: every story exactly once.
    let items = json_pages(&base, "/feed.json").await;
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{items:#?}");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    let storm_json = items
        .iter()
        .find(|i| is_storm(i["title"].as_str().unwrap()))
        .unwrap();
    let storm_id = storm_json["id"].as_str().unwrap().to_string();
    assert_eq!(storm_json["_newsriver"]["source"]["title"], "Northern Wire");
    let mut also: Vec<&str> = storm_json["_newsriver"]["also"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["source"]["title"].as_str().unwrap())
        .collect();
    also.sort();
    assert_eq!(also, ["Harbour Gazette", "Valley Courier"]);
    let content = storm_json["content_html"].as_str().unwrap();
    assert!(content.contains("Also reported by"), "{content}");
    assert!(content.ends_with("From Northern Wire.</p>"), "{content}");

    // RSS: the same three stories, one <source> each, the others in the text.
    let items = rss_pages(&base).await;
    assert_eq!(items.len(), 3);
    let storm_rss: Vec<_> = items
        .iter()
        .filter(|i| is_storm(i.title.as_deref().unwrap()))
        .collect();
    assert_eq!(storm_rss.len(), 1);
    assert_eq!(storm_rss[0].guid.as_ref().unwrap().value, storm_id);
    assert_eq!(
        storm_rss[0].source.as_ref().unwrap().title.as_deref(),
        Some("Northern Wire")
    );
    let text = storm_rss[0].description.as_deref().unwrap();
    assert!(
        text.contains("Also reported by")
            && text.contains(">Harbour Gazette</a>")
            && text.contains(">Valley Courier</a>"),
        "{text}"
    );

    // The HTML river: one page per story, the storm story lists the others.
    let pages = html_pages(&base).await;
    assert_eq!(pages.len(), 3);
    let storm_html: Vec<_> = pages
        .iter()
        .filter(|p| p.contains("120,000 homes without power"))
        .collect();
    assert_eq!(storm_html.len(), 1);
    assert!(
        storm_html[0].contains("<p class=\"also\">Also reported by <a "),
        "{}",
        storm_html[0]
    );

    // The courier's own view shows its copy, crediting the other two.
    let store = common::open_store(&dir.path().join("river.db")).unwrap();
    let courier = store
        .feed_statuses()
        .unwrap()
        .into_iter()
        .find(|f| f.url.ends_with("/courier.json"))
        .unwrap();
    let items = json_pages(&base, &format!("/feeds/{}/feed.json", courier.id)).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], storm_id.as_str());
    assert_eq!(items[0]["_newsriver"]["source"]["title"], "Valley Courier");
    assert_eq!(items[0]["_newsriver"]["also"].as_array().unwrap().len(), 2);

    // A reload ranks the courier first: it becomes the primary everywhere, the id stays.
    std::fs::write(&path, toml("", "priority = 10")).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/reload"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let items = json_pages(&base, "/feed.json").await;
    assert_eq!(items.len(), 3);
    let storm_json = items
        .iter()
        .find(|i| is_storm(i["title"].as_str().unwrap()))
        .unwrap();
    assert_eq!(storm_json["id"], storm_id.as_str());
    assert_eq!(
        storm_json["_newsriver"]["source"]["title"],
        "Valley Courier"
    );
    assert!(
        storm_json["content_html"]
            .as_str()
            .unwrap()
            .ends_with("From Valley Courier.</p>")
    );

    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
}
