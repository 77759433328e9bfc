//! A view as JSON Feed 1.1, with the source of each item in a `_newsriver`
//! extension object (JSON Feed has no field for it).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::FeedDoc;
use crate::model::Story;

fn date(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One page of a view as a JSON Feed 1.1 document.
pub fn json_feed(doc: &FeedDoc, stories: &[Story]) -> String {
    let mut feed = Map::new();
    feed.insert("version".into(), "https://jsonfeed.org/version/1.1".into());
    feed.insert("title".into(), doc.title.clone().into());
    feed.insert("home_page_url".into(), doc.html_url.clone().into());
    // feed_url identifies the feed, so it is the view's first page, not this one.
    feed.insert("feed_url".into(), doc.first_url.clone().into());
    feed.insert("description".into(), doc.description.clone().into());
    if let Some(next) = &doc.next_url {
        feed.insert("next_url".into(), next.clone().into());
    }
    if let Some(hub) = &doc.hub {
        feed.insert(
            "hubs".into(),
            serde_json::json!([{ "type": "WebSub", "url": hub }]),
        );
    }
    let mut ext = Map::new();
    ext.insert("id".into(), doc.id.clone().into());
    ext.insert("self_url".into(), doc.self_url.clone().into());
    if let Some(previous) = &doc.previous_url {
        ext.insert("previous_url".into(), previous.clone().into());
    }
    feed.insert("_newsriver".into(), Value::Object(ext));
    feed.insert(
        "items".into(),
        Value::Array(
            stories
                .iter()
                .map(|s| json_item(s, doc.attribution.as_deref()))
                .collect(),
        ),
    );
    // Serialising a Value built from strings cannot fail.
    serde_json::to_string_pretty(&Value::Object(feed)).unwrap_or_default()
}

fn json_item(story: &Story, attribution: Option<&str>) -> Value {
    let source = &story.source;
    let mut item = Map::new();
    item.insert("id".into(), story.uid.clone().into());
    if let Some(link) = &story.link {
        item.insert("url".into(), link.clone().into());
    }
    item.insert("title".into(), story.title.clone().into());
    // The other outlets and the notice, for people: after the HTML content.
    let extra = super::attribution::attribution_html(story, attribution);
    match (&story.content, &story.summary, extra) {
        (Some(content), summary, extra) => {
            let html = format!("{content}{}", extra.unwrap_or_default());
            item.insert("content_html".into(), html.into());
            if let Some(summary) = summary {
                item.insert("summary".into(), summary.clone().into());
            }
        }
        (None, Some(summary), extra) => {
            let html = format!("{summary}{}", extra.unwrap_or_default());
            item.insert("content_html".into(), html.into());
        }
        (None, None, Some(extra)) => {
            item.insert("content_html".into(), extra.into());
        }
        // JSON Feed requires content of some kind.
        (None, None, None) => {
            item.insert("content_text".into(), story.title.clone().into());
        }
    }
    if let Some(published) = story.published {
        item.insert("date_published".into(), date(published).into());
    }
    item.insert("date_modified".into(), date(story.updated).into());
    item.insert("authors".into(), json!([{ "name": story.author }]));
    item.insert(
        "_newsriver".into(),
        json!({
            "source": {
                "id": source.id,
                "title": source.title,
                "feed_url": source.feed_url,
                "home_page_url": source.site_url,
                "rights": source.rights,
                "updated": date(source.updated),
            },
            "rights": story.rights,
            // The other outlets that carried the story, for machines.
            "also": story.also.iter().map(|o| json!({
                "url": o.link,
                "title": o.title,
                "author": o.author,
                "date_published": o.published.map(date),
                "source": {
                    "id": o.source.id,
                    "title": o.source.title,
                    "feed_url": o.source.feed_url,
                    "home_page_url": o.source.site_url,
                },
            })).collect::<Vec<_>>(),
        }),
    );
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{outlet, story};

    #[test]
    fn json_feed_has_authors_source_extension_and_paging() {
        let doc = FeedDoc {
            id: "urn:uuid:v".into(),
            title: "River \"quoted\"".into(),
            description: "d".into(),
            self_url: "http://h/feed.json?before=9.9".into(),
            first_url: "http://h/feed.json".into(),
            html_url: "http://h/".into(),
            next_url: Some("http://h/feed.json?before=1.1".into()),
            previous_url: None,
            attribution: None,
            hub: None,
        };
        let text = json_feed(&doc, &[story("A </script> title")]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(v["title"], "River \"quoted\"");
        assert_eq!(v["feed_url"], "http://h/feed.json");
        assert_eq!(v["next_url"], "http://h/feed.json?before=1.1");
        let item = &v["items"][0];
        assert_eq!(item["id"], "urn:uuid:00000000-0000-8000-8000-000000000001");
        assert_eq!(item["title"], "A </script> title");
        assert_eq!(item["url"], "https://news.example/a?x=1&y=2");
        assert_eq!(item["content_html"], "<p>Sum</p>");
        assert_eq!(item["authors"][0]["name"], "Ann Writer");
        assert_eq!(item["date_published"], "2026-11-20T10:00:00Z");
        let source = &item["_newsriver"]["source"];
        assert_eq!(source["title"], "News & Co");
        assert_eq!(source["feed_url"], "https://news.example/feed");
        assert_eq!(source["home_page_url"], "https://news.example/");
        assert_eq!(item["_newsriver"]["also"], json!([]));
    }

    #[test]
    fn other_outlets_are_listed_in_the_extension_and_the_content() {
        let mut s = story("Port strike ends");
        let mut other = outlet(
            &s,
            "Harbour Gazette",
            Some("https://harbour.example/port"),
            "Port strike ends | HG",
            "Meridian Wire",
        );
        other.source.feed_url = "https://harbour.example/feed".into();
        s.also.push(other);
        let doc = FeedDoc {
            id: "urn:uuid:v".into(),
            title: "River".into(),
            description: "d".into(),
            self_url: "http://h/feed.json".into(),
            first_url: "http://h/feed.json".into(),
            html_url: "http://h/".into(),
            next_url: None,
            previous_url: None,
            attribution: Some("From {source}".into()),
            hub: None,
        };
        let v: Value = serde_json::from_str(&json_feed(&doc, &[s])).unwrap();
        let item = &v["items"][0];
        let also = &item["_newsriver"]["also"];
        assert_eq!(also.as_array().unwrap().len(), 1);
        assert_eq!(also[0]["url"], "https://harbour.example/port");
        assert_eq!(also[0]["title"], "Port strike ends | HG");
        assert_eq!(also[0]["author"], "Meridian Wire");
        assert_eq!(also[0]["date_published"], "2026-11-20T10:00:00Z");
        assert_eq!(also[0]["source"]["title"], "Harbour Gazette");
        assert_eq!(
            also[0]["source"]["feed_url"],
            "https://harbour.example/feed"
        );
        assert_eq!(item["_newsriver"]["source"]["title"], "News & Co");
        assert_eq!(
            item["content_html"],
            "<p>Sum</p><p class=\"newsriver-also\">Also reported by <a href=\"https://harbour.example/port\">Harbour Gazette</a>.</p><p class=\"newsriver-attribution\">From News &amp; Co</p>"
        );
    }
}
