//! `/status`, `/status.json` and `/status/feeds/{id}`: a summary, then one
//! compact row per feed of the page asked for, and everything about one feed
//! on its own page. Server-rendered, no script; every stored text is escaped.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::html::{discovery_links, esc, path_segment, time};
use super::{Format, River};
use crate::feed_list::FeedRow;
use crate::model::{FeedState, FeedStatus};
use crate::status::{FeedDetail, FeedFilter, FeedPage, PAGE_SIZE, StateFilter, Summary};

/// Characters of an error shown in the table; the feed's page has it whole.
const ERROR_CLIP: usize = 90;

/// Tags listed (with a link each) under the table, at most.
const TAGS_LISTED: usize = 200;

const STYLE: &str = "body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 0 auto; padding: 1rem; line-height: 1.4; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; overflow-wrap: anywhere; }
td.n { text-align: right; }
tr.failing td:nth-child(2), .error { color: #b00020; }
.warning { color: #8a5a00; }
tr.failing td:first-child { border-left: .3rem solid #b00020; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; font-size: .95rem; }
dt { color: #555; }
dd { margin: 0; overflow-wrap: anywhere; }
form { margin: .8rem 0; display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
label { font-size: .85rem; color: #555; display: flex; flex-direction: column; }
nav.pages { margin: .8rem 0; }
a { color: #0645ad; }";

/// A short form of `text` on one line.
fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// "12.3 MB".
fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} bytes"),
        n if n < 1024 * 1024 => format!("{:.1} kB", n as f64 / 1024.0),
        n if n < 1024 * 1024 * 1024 => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
        n => format!("{:.2} GB", n as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// The state a person reads: removed feeds are retired.
fn state_of(feed: &FeedStatus) -> &'static str {
    if !feed.active {
        "retired"
    } else {
        match feed.state {
            FeedState::Gone => "retired",
            s => s.as_str(),
        }
    }
}

fn name_of(feed: &FeedStatus) -> &str {
    feed.title.as_deref().unwrap_or(&feed.url)
}

fn page_head(title: &str, river: &River) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n{discovery}<style>\n{STYLE}\n</style>\n</head>\n<body>\n",
        discovery = discovery_links(river)
    )
}

/// `/status`: the summary, the filter form, one page of the table, paging links
/// and the tags.
pub fn status_page(
    river: &River,
    summary: &Summary,
    page: &FeedPage,
    filter: &FeedFilter,
    tags: &[String],
) -> String {
    let base = esc(&river.base_url);
    let status_url = format!("{base}status");
    let title = esc(&river.title);
    let mut html = page_head(&format!("Status · {title}"), river);
    html.push_str(&format!(
        "<header>\n<h1>Status · {title}</h1>\n<p>Back to <a href=\"{base}\">the river</a> · \
         this page as <a href=\"{base}status.json{}\">JSON</a>.</p>\n</header>\n<main>\n",
        esc(&filter.query_string(filter.page))
    ));
    html.push_str(&summary_html(&status_url, summary));
    html.push_str(&filter_form(&status_url, filter));
    html.push_str(&table_html(&base, page, filter));
    html.push_str(&paging_html(&status_url, page, filter));
    html.push_str(&tags_html(river, &status_url, tags));
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn summary_html(status_url: &str, s: &Summary) -> String {
    let f = &s.feeds;
    let link = |state: StateFilter, n: u64, words: &str| {
        format!(
            "<a href=\"{status_url}?state={}\">{n} {words}</a>",
            state.as_str()
        )
    };
    let mut states = vec![
        link(StateFilter::Ok, f.ok, "ok"),
        link(StateFilter::Failing, f.failing, "failing"),
    ];
    if f.throttled > 0 {
        states.push(link(StateFilter::Throttled, f.throttled, "throttled"));
    }
    states.push(link(StateFilter::New, f.new, "not polled yet"));
    states.push(link(StateFilter::Retired, f.retired, "retired"));
    let failures = if s.failures.is_empty() {
        "none".to_string()
    } else {
        s.failures
            .iter()
            .map(|k| format!("{}: {}", esc(&k.kind), k.feeds))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let next = match &s.next_poll {
        Some(n) => format!(
            "{} — <a href=\"{status_url}/feeds/{}\">{}</a>",
            time(Some(n.at)),
            n.feed_id,
            esc(&n.title)
        ),
        None => "none scheduled".to_string(),
    };
    format!(
        "<section class=\"summary\">\n<p class=\"counts\">{total} feeds: {states}.</p>\n<dl>\n\
         <dt>Entries</dt><dd>{entries}</dd>\n\
         <dt>Polls in the last hour</dt><dd>{polls}</dd>\n\
         <dt>Failing, by kind</dt><dd>{failures}</dd>\n\
         <dt>Next poll</dt><dd>{next}</dd>\n\
         <dt>Database</dt><dd>{db}</dd>\n</dl>\n</section>\n",
        total = f.total,
        states = states.join(", "),
        entries = s.entries,
        polls = s.polls_last_hour,
        db = bytes(s.database_bytes),
    )
}

fn filter_form(status_url: &str, filter: &FeedFilter) -> String {
    let mut options = String::from("<option value=\"\">any</option>");
    for state in StateFilter::ALL {
        let selected = if filter.state == Some(state) {
            " selected"
        } else {
            ""
        };
        options.push_str(&format!(
            "<option value=\"{0}\"{selected}>{0}</option>",
            state.as_str()
        ));
    }
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    format!(
        "<form method=\"get\" action=\"{status_url}\">\n\
         <label>State <select name=\"state\">{options}</select></label>\n\
         <label>Tag <input name=\"tag\" value=\"{tag}\"></label>\n\
         <label>Host <input name=\"host\" value=\"{host}\"></label>\n\
         <label>Title or URL contains <input name=\"q\" value=\"{q}\"></label>\n\
         <button type=\"submit\">Show</button> <a href=\"{status_url}\">all feeds</a>\n</form>\n",
        tag = value(&filter.tag),
        host = value(&filter.host),
        q = value(&filter.text),
    )
}

fn table_html(base: &str, page: &FeedPage, filter: &FeedFilter) -> String {
    if page.feeds.is_empty() {
        return if page.matching == 0 && filter == &FeedFilter::default() {
            "<p>No feeds are configured.</p>\n".to_string()
        } else if page.matching == 0 {
            "<p>No feed matches.</p>\n".to_string()
        } else {
            format!(
                "<p>No feeds on page {} (there are {}).</p>\n",
                page.page, page.pages
            )
        };
    }
    let first = (page.page - 1) * PAGE_SIZE + 1;
    let mut html = format!(
        "<p class=\"shown\">Feeds {first}–{last} of {matching}, failing first, then by title.</p>\n\
         <table>\n<thead><tr><th>Feed</th><th>State</th><th>Last success</th><th>Last error</th>\
         <th>Entries</th><th>Next poll</th></tr></thead>\n<tbody>\n",
        last = first + page.feeds.len() - 1,
        matching = page.matching
    );
    for feed in &page.feeds {
        let state = state_of(feed);
        let error = match (&feed.last_error, feed.parse_warnings.first()) {
            (Some(e), _) => format!("<span class=\"error\">{}</span>", esc(&clip(e, ERROR_CLIP))),
            // Read, but only after recovering from something: its page lists all.
            (None, Some(w)) => format!(
                "<span class=\"warning\">{}</span>",
                esc(&clip(&format!("read after recovery: {w}"), ERROR_CLIP))
            ),
            (None, None) => String::new(),
        };
        let failures = if feed.failures > 1 && state == "failing" {
            format!(" ×{}", feed.failures)
        } else {
            String::new()
        };
        let next = if state == "retired" {
            "-".to_string()
        } else {
            time(Some(feed.next_poll_at))
        };
        html.push_str(&format!(
            "<tr class=\"{state}\"><td><a href=\"{base}status/feeds/{id}\">{name}</a></td>\
             <td>{state}{failures}</td><td>{success}</td><td>{error}</td>\
             <td class=\"n\">{entries}</td><td>{next}</td></tr>\n",
            id = feed.id,
            name = esc(name_of(feed)),
            success = time(feed.last_success_at),
            entries = feed.entries,
        ));
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

fn paging_html(status_url: &str, page: &FeedPage, filter: &FeedFilter) -> String {
    if page.pages <= 1 {
        return String::new();
    }
    let link = |n: usize, words: &str, rel: &str| {
        format!(
            "<a rel=\"{rel}\" href=\"{status_url}{}\">{words}</a>",
            esc(&filter.query_string(n))
        )
    };
    let mut parts = Vec::new();
    if page.page > 1 {
        parts.push(link(1, "first", "first"));
        parts.push(link(page.page - 1, "‹ previous", "prev"));
    }
    parts.push(format!("page {} of {}", page.page, page.pages));
    if page.page < page.pages {
        parts.push(link(page.page + 1, "next ›", "next"));
        parts.push(link(page.pages, "last", "last"));
    }
    format!("<nav class=\"pages\">{}</nav>\n", parts.join(" · "))
}

fn view_links(base: &str, prefix: &str) -> String {
    Format::ALL
        .iter()
        .map(|f| {
            format!(
                "<a href=\"{base}{prefix}{}\">{}</a>",
                f.file_name(),
                f.label()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn tags_html(river: &River, status_url: &str, tags: &[String]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let base = esc(&river.base_url);
    let mut html = String::from("<h2>Feeds by tag</h2>\n<ul>\n");
    for tag in tags.iter().take(TAGS_LISTED) {
        let query = FeedFilter {
            tag: Some(tag.clone()),
            ..FeedFilter::default()
        }
        .query_string(1);
        html.push_str(&format!(
            "<li><a href=\"{status_url}{}\">{}</a>: {}</li>\n",
            esc(&query),
            esc(tag),
            view_links(&base, &format!("tags/{}/", esc(&path_segment(tag))))
        ));
    }
    if tags.len() > TAGS_LISTED {
        html.push_str(&format!(
            "<li>and {} more (filter by ?tag=)</li>\n",
            tags.len() - TAGS_LISTED
        ));
    }
    html.push_str("</ul>\n");
    html
}

/// `/status/feeds/{id}`: everything known about one feed.
pub fn feed_page(river: &River, d: &FeedDetail) -> String {
    let base = esc(&river.base_url);
    let f = &d.status;
    let name = esc(name_of(f));
    let mut html = page_head(&format!("{name} · Status · {}", esc(&river.title)), river);
    let state = state_of(f);
    let mut rows: Vec<(&str, String)> = vec![
        ("URL", format!("<a href=\"{0}\">{0}</a>", esc(&f.url))),
        ("State", {
            let mut s = state.to_string();
            if f.failures > 0 {
                s.push_str(&format!(" ({} consecutive failures)", f.failures));
            }
            s
        }),
    ];
    if let Some(u) = &f.fetch_url {
        rows.push(("Moved to", format!("<a href=\"{0}\">{0}</a>", esc(u))));
    }
    if let Some(m) = &d.moving {
        rows.push((
            "Redirect being confirmed",
            format!(
                "<a href=\"{0}\">{0}</a>: a permanent redirect seen {1} time{2} in a row since {3}",
                esc(&m.to),
                m.seen,
                if m.seen == 1 { "" } else { "s" },
                time(Some(m.since))
            ),
        ));
    }
    rows.push((
        "Last error",
        match &f.last_error {
            Some(e) => format!("<span class=\"error\">{}</span>", esc(e)),
            None => "none".to_string(),
        },
    ));
    rows.push((
        "Last HTTP status",
        f.last_status
            .map_or_else(|| "none".to_string(), |s| s.to_string()),
    ));
    rows.push(("Last poll", time(f.last_polled_at)));
    rows.push(("Last success", time(f.last_success_at)));
    rows.push((
        "Next poll",
        if state == "retired" {
            "not polled".to_string()
        } else {
            time(Some(f.next_poll_at))
        },
    ));
    rows.push(("Entries", f.entries.to_string()));
    let mut schedule = format!(
        "every {}",
        humantime::format_duration(secs(d.interval_secs))
    );
    if d.fixed_interval {
        schedule.push_str(" (fixed in the configuration)");
    } else if let Some(adaptive) = d.poll_interval_secs.filter(|s| *s != d.interval_secs) {
        schedule.push_str(&format!(
            "; adapted to every {} from the feed's publishing rate",
            humantime::format_duration(secs(adaptive))
        ));
    }
    if d.skip_hours != 0 {
        let hours: Vec<String> = (0..24)
            .filter(|h| d.skip_hours & (1 << h) != 0)
            .map(|h| h.to_string())
            .collect();
        schedule.push_str(&format!("; skips hours {} (UTC)", hours.join(", ")));
    }
    if d.skip_days != 0 {
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let days: Vec<&str> = (0..7)
            .filter(|i| d.skip_days & (1 << i) != 0)
            .map(|i| names[i])
            .collect();
        schedule.push_str(&format!("; skips {}", days.join(", ")));
    }
    rows.push(("Schedule", schedule));
    rows.push((
        "Validators",
        format!(
            "ETag {} · Last-Modified {}",
            f.validators.etag.as_deref().map_or_else(
                || "none".to_string(),
                |e| format!("<code>{}</code>", esc(e))
            ),
            f.validators.last_modified.as_deref().map_or_else(
                || "none".to_string(),
                |e| format!("<code>{}</code>", esc(e))
            ),
        ),
    ));
    if let Some(site) = &d.site_url {
        rows.push(("Site", format!("<a href=\"{0}\">{0}</a>", esc(site))));
    }
    rows.push((
        "Tags",
        if d.tags.is_empty() {
            "none".to_string()
        } else {
            d.tags.iter().map(|t| esc(t)).collect::<Vec<_>>().join(", ")
        },
    ));
    rows.push(("Entries keyed by", esc(&d.identity)));
    rows.push(("Added", time(Some(d.created_at))));
    rows.push((
        "This source alone",
        view_links(&base, &format!("feeds/{}/", f.id)),
    ));
    html.push_str(&format!(
        "<header>\n<h1>{name}</h1>\n<p><a href=\"{base}status\">All feeds</a> · \
         <a href=\"{base}\">the river</a></p>\n</header>\n<main>\n<dl>\n"
    ));
    for (term, value) in rows {
        html.push_str(&format!("<dt>{term}</dt><dd>{value}</dd>\n"));
    }
    html.push_str("</dl>\n<h2>Warnings of the last parse</h2>\n");
    if d.parse_warnings.is_empty() {
        html.push_str("<p>None: the last parse was clean.</p>\n");
    } else {
        html.push_str("<ul class=\"warnings\">\n");
        for w in &d.parse_warnings {
            html.push_str(&format!("<li>{}</li>\n", esc(w)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<h2>Recent polls</h2>\n");
    if d.history.is_empty() {
        html.push_str("<p>Not polled yet.</p>\n");
    } else {
        html.push_str(
            "<table>\n<thead><tr><th>Started</th><th>Outcome</th><th>HTTP</th><th>Fetch</th>\
             <th>New</th><th>Updated</th><th>Error</th></tr></thead>\n<tbody>\n",
        );
        for p in &d.history {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{} ms</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"error\">{}</td></tr>\n",
                time(Some(p.started_at)),
                esc(&p.outcome),
                p.http_status.map_or_else(String::new, |s| s.to_string()),
                p.duration_ms,
                p.new_entries,
                p.updated_entries,
                esc(p.error.as_deref().unwrap_or("")),
            ));
        }
        html.push_str("</tbody>\n</table>\n");
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

/// `/status.json`.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    summary: &'a Summary,
    feed_list: &'a FeedList,
    filter: FilterJson<'a>,
    page: usize,
    pages: usize,
    page_size: usize,
    matching: u64,
    /// The next page's address, while there is one.
    next: Option<String>,
    feeds: Vec<FeedRow>,
    generated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct FilterJson<'a> {
    state: Option<StateFilter>,
    tag: Option<&'a str>,
    host: Option<&'a str>,
    q: Option<&'a str>,
}

/// `/status.json`: the summary and one page, as `/status` shows them.
pub fn status_json(
    river: &River,
    summary: &Summary,
    feed_list: &FeedList,
    page: &FeedPage,
    filter: &FeedFilter,
    now: DateTime<Utc>,
) -> String {
    let doc = StatusJson {
        summary,
        feed_list,
        filter: FilterJson {
            state: filter.state,
            tag: filter.tag.as_deref(),
            host: filter.host.as_deref(),
            q: filter.text.as_deref(),
        },
        page: page.page,
        pages: page.pages,
        page_size: PAGE_SIZE,
        matching: page.matching,
        next: (page.page < page.pages).then(|| {
            format!(
                "{}status.json{}",
                river.base_url,
                filter.query_string(page.page + 1)
            )
        }),
        feeds: page.feeds.iter().map(FeedRow::from).collect(),
        generated_at: now,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

/// Whether the feed list in force is the one this daemon's file gives
/// (daemons sharing a database share the list the last of them applied).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedList {
    pub agrees: bool,
    pub feeds_in_this_file: usize,
    /// The list in force, when it is another's.
    pub in_force: Option<FeedListInForce>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedListInForce {
    pub feeds: usize,
    pub applied_by: String,
    pub applied_at: DateTime<Utc>,
}

/// `/status`'s notice when the list in force is not this daemon's; empty
/// when it is.
pub fn feed_list_html(list: &FeedList) -> String {
    match &list.in_force {
        Some(other) if !list.agrees => format!(
            "<p class=\"warning\" id=\"feed-list\"><strong>This daemon's configuration lists \
             other feeds than the list in force</strong> ({} feeds in its file; {} in the list \
             {} applied at {}). It polls the list in force; reload this daemon to apply its \
             own file, or give every daemon the same file.</p>\n",
            list.feeds_in_this_file,
            other.feeds,
            esc(&other.applied_by),
            time(Some(other.applied_at)),
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Validators;
    use crate::publish::fixtures::river;

    fn hostile() -> FeedStatus {
        let t = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc();
        FeedStatus {
            id: 7,
            url: "https://x.example/feed?a=1&b=<2>".into(),
            title: Some("<b>Bad</b> title".into()),
            active: true,
            state: FeedState::Failing,
            last_status: Some(500),
            last_error: Some(format!(
                "HTTP 500 <script>alert(1)</script> {}",
                "x".repeat(200)
            )),
            failures: 3,
            last_polled_at: Some(t),
            last_success_at: None,
            next_poll_at: t,
            entries: 12,
            validators: Validators {
                etag: Some("\"<e>\"".into()),
                last_modified: None,
            },
            fetch_url: Some("https://new.example/feed?<x>".into()),
            parse_warnings: vec!["<w> recovered".into()],
        }
    }

    #[test]
    fn status_table_escapes_titles_and_clips_errors() {
        let page = FeedPage {
            matching: 250,
            page: 2,
            pages: 3,
            feeds: vec![hostile()],
        };
        let filter = FeedFilter::new(None, Some("<t>"), None, Some("\"q"), Some("2")).unwrap();
        let html = status_page(
            &river(),
            &Summary::default(),
            &page,
            &filter,
            &["a<b".into()],
        );
        assert!(
            !html.contains("<script>") && !html.contains("<b>Bad"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;Bad&lt;/b&gt; title"));
        assert!(html.contains("HTTP 500 &lt;script&gt;alert(1)&lt;/script&gt; xxx"));
        assert!(
            html.contains('…') && !html.contains(&"x".repeat(100)),
            "error clipped"
        );
        assert!(html.contains(r#"<a href="http://127.0.0.1:1/status/feeds/7">"#));
        assert!(html.contains("failing ×3"));
        let mut clean = hostile();
        clean.last_error = None;
        let page = FeedPage {
            feeds: vec![clean],
            ..page.clone()
        };
        let recovered = status_page(&river(), &Summary::default(), &page, &filter, &[]);
        assert!(
            recovered.contains("read after recovery: &lt;w&gt; recovered"),
            "{recovered}"
        );
        assert!(html.contains("Feeds 101–101 of 250"));
        assert!(html.contains("page 2 of 3"));
        assert!(
            html.contains(
                r#"rel="next" href="http://127.0.0.1:1/status?tag=%3Ct%3E&amp;q=%22q&amp;page=3""#
            ),
            "{html}"
        );
        assert!(html.contains(r#"value="&quot;q""#));
        assert!(html.contains("a&lt;b"));
    }

    #[test]
    fn feed_page_shows_everything_escaped() {
        let detail = FeedDetail {
            status: hostile(),
            tags: vec!["<tag>".into()],
            site_url: None,
            interval_secs: 1800,
            poll_interval_secs: Some(3600),
            fixed_interval: false,
            skip_hours: 1 << 3,
            skip_days: 1 << 6,
            moving: None,
            identity: "guid".into(),
            parse_warnings: vec!["unescaped & in <title>".into()],
            created_at: hostile().next_poll_at,
            history: vec![crate::status::PollEntry {
                started_at: hostile().next_poll_at,
                duration_ms: 42,
                outcome: "failed".into(),
                http_status: Some(500),
                error: Some("<i>boom</i>".into()),
                new_entries: 0,
                updated_entries: 0,
            }],
        };
        let html = feed_page(&river(), &detail);
        assert!(!html.contains("<script>") && !html.contains("<i>boom") && !html.contains("<tag>"));
        assert!(html.contains("unescaped &amp; in &lt;title&gt;"));
        assert!(html.contains("&lt;i&gt;boom&lt;/i&gt;"));
        assert!(html.contains("42 ms"));
        assert!(html.contains("every 30m; adapted to every 1h"));
        assert!(html.contains("skips hours 3 (UTC); skips Sun"));
        assert!(html.contains("<code>&quot;&lt;e&gt;&quot;</code>"));
        assert!(html.contains(r#"href="https://new.example/feed?&lt;x&gt;""#));
        assert!(html.contains("(3 consecutive failures)"));
        assert!(html.contains(r#"href="http://127.0.0.1:1/feeds/7/feed.atom""#));
    }
}
