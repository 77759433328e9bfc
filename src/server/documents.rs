//! Published documents over HTTP: every view in every format, the front page and
//! `/status`, rendered once per change of the stored data and served with strong
//! ETags, Last-Modified and 304s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AppState, internal_error};
use crate::identity;
use crate::model::FeedId;
use crate::publish::{self, FeedDoc, Format, River};
use crate::status::{FeedFilter, FilterQuery};
use crate::store::{Cursor, PageStart, Store, StoreError, StoryFilter};

/// Not `public`: with `[access].read_token` set, a shared cache must not
/// store a response to a request that carried the token in its headers.
const OUTPUT_CACHE_CONTROL: &str = "max-age=60";

/// Documents kept at most; beyond that stale ones are dropped first.
const CACHE_CAPACITY: usize = 512;

/// How long a `data_version` reading is trusted while this process itself
/// wrote nothing: writes by another process (a cron `poll --once` on the same
/// file) show within this time.
const EXTERNAL_CHECK: Duration = Duration::from_secs(1);

/// Rendered documents, each tagged with the data version it was rendered from.
#[derive(Debug, Default)]
pub struct RenderCache {
    documents: Mutex<HashMap<String, Arc<Rendered>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// The last `data_version` read, and when.
    external: Mutex<Option<(Instant, i64)>>,
}

impl RenderCache {
    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn get(&self, key: &str) -> Option<Arc<Rendered>> {
        self.lock().get(key).cloned()
    }

    /// The document under `key` if it is certainly current: this process has
    /// written nothing since it was rendered, and the data version it was
    /// rendered from was confirmed less than [`EXTERNAL_CHECK`] ago. Costs a
    /// map lookup, no database call.
    fn fresh(&self, key: &str, local_writes: u64) -> Option<Arc<Rendered>> {
        let doc = self.get(key)?;
        let confirmed = *self
            .external
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = doc.local_writes == local_writes
            && confirmed.is_some_and(|(at, version)| {
                version == doc.version && at.elapsed() < EXTERNAL_CHECK
            });
        current.then_some(doc)
    }

    fn confirm(&self, version: i64) {
        *self
            .external
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), version));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Rendered>>> {
        self.documents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(&self, key: String, doc: Arc<Rendered>) {
        let mut documents = self.lock();
        if documents.len() >= CACHE_CAPACITY && !documents.contains_key(&key) {
            let version = doc.version;
            documents.retain(|_, d| d.version == version);
            if documents.len() >= CACHE_CAPACITY {
                documents.clear();
            }
        }
        documents.insert(key, doc);
    }
}

/// One rendered document.
#[derive(Debug)]
pub struct Rendered {
    version: i64,
    /// `Store::local_writes` when it was rendered.
    local_writes: u64,
    body: Bytes,
    /// Compressed once, on first request for each encoding.
    gzip: OnceLock<Bytes>,
    br: OnceLock<Bytes>,
    content_type: &'static str,
    /// Hex digest of the body; the ETag is this in quotes.
    digest: String,
    /// When this exact body was first rendered.
    last_modified: DateTime<Utc>,
}

/// What a request for a document can turn out to be.
enum Outcome {
    Document(Arc<Rendered>),
    NotFound,
}

/// `?before=` / `?after=` of a paged feed.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    after: Option<String>,
}

impl PageQuery {
    fn start(&self) -> Result<PageStart, &'static str> {
        match (&self.before, &self.after) {
            (None, None) => Ok(PageStart::Newest),
            (Some(b), None) => Cursor::decode(b)
                .map(PageStart::Before)
                .ok_or("invalid ?before= cursor\n"),
            (None, Some(a)) => Cursor::decode(a)
                .map(PageStart::After)
                .ok_or("invalid ?after= cursor\n"),
            (Some(_), Some(_)) => Err("use ?before= or ?after=, not both\n"),
        }
    }
}

/// `?q=` with `?before=` / `?after=` of a search.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

impl SearchQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            before: self.before.clone(),
            after: self.after.clone(),
        }
    }
}

/// Which stories a feed document shows, as named in its URL.
#[derive(Debug, Clone)]
enum ViewSpec {
    All,
    Tag(String),
    Feed(FeedId),
    /// `?q=`, parsed.
    Search(crate::search::Query),
    /// A `[[search]]` by name.
    Named(String),
}

/// 400 with what is wrong with a query (never a backend's own error).
fn bad_query(e: &crate::search::QueryError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("bad query: {e}\n"),
    )
        .into_response()
}

async fn search_feed(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
    format: Format,
) -> Response {
    let Some(q) = query.q.as_deref() else {
        return (StatusCode::BAD_REQUEST, "a search needs ?q=QUERY\n").into_response();
    };
    match crate::search::Query::parse(q) {
        Ok(parsed) => {
            feed(
                state,
                headers,
                Query(query.page()),
                ViewSpec::Search(parsed),
                format,
            )
            .await
        }
        Err(e) => bad_query(&e),
    }
}

pub async fn search_atom(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<SearchQuery>,
) -> Response {
    search_feed(state, headers, query, Format::Atom).await
}

pub async fn search_rss(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<SearchQuery>,
) -> Response {
    search_feed(state, headers, query, Format::Rss).await
}

pub async fn search_json(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<SearchQuery>,
) -> Response {
    search_feed(state, headers, query, Format::Json).await
}

pub async fn named_search_feed(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    Path((name, file)): Path<(String, String)>,
    query: Query<PageQuery>,
) -> Response {
    match Format::from_file_name(&file) {
        Some(format) => feed(state, headers, query, ViewSpec::Named(name), format).await,
        None => not_found(),
    }
}

/// `/search?q=`: the HTML river of a query, newest first, with the search
/// box; no query shows the box alone, a bad one is a 400 that says why.
pub async fn search_html(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let river = state.river(&headers);
    let text = query.q.clone().unwrap_or_default();
    if text.trim().is_empty() {
        let html = publish::search_page(&river, "", &[], None, None);
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    }
    let parsed = match crate::search::Query::parse(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let html = publish::search_page(&river, &text, &[], None, Some(&e.to_string()));
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
        }
    };
    let start = match query.page().start() {
        Ok(start @ (PageStart::Newest | PageStart::Before(_))) => start,
        Ok(PageStart::After(_)) => PageStart::Newest,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let q = url::form_urlencoded::byte_serialize(parsed.to_string().as_bytes()).collect::<String>();
    let first = format!("{}search?q={q}", river.base_url);
    let key = match start {
        PageStart::Before(c) => format!("{first}&before={}", c.encode()),
        _ => first.clone(),
    };
    let limit = state.entries.min(50);
    let filter = StoryFilter::Search(crate::store::SearchView {
        query: parsed,
        tags: Vec::new(),
    });
    let response = cached(&state, key, move |s| {
        let page = s.story_page(&filter, start, limit)?;
        let older = page.older.map(|c| format!("{first}&before={}", c.encode()));
        Ok(Ok((
            "text/html; charset=utf-8",
            publish::search_page(&river, &text, &page.stories, older.as_deref(), None),
        )))
    })
    .await;
    respond(&headers, response, OUTPUT_CACHE_CONTROL)
}

/// The named searches as the pages list them.
fn search_links(state: &AppState) -> Vec<publish::SearchLink> {
    state
        .searches
        .all()
        .iter()
        .map(|s| publish::SearchLink {
            name: s.name.clone(),
            query: s.text.clone(),
        })
        .collect()
}

pub async fn home(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let start = match query.start() {
        Ok(start @ (PageStart::Newest | PageStart::Before(_))) => start,
        Ok(PageStart::After(_)) => PageStart::Newest,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let river = state.river(&headers);
    let key = match start {
        PageStart::Before(c) => format!("{}|home|{}", river.base_url, c.encode()),
        _ => format!("{}|home", river.base_url),
    };
    let limit = state.entries.min(50);
    let searches = search_links(&state);
    // A reload that changes the named searches changes the page.
    let key = format!("{key}|{}", searches_key(&searches));
    let response = cached(&state, key, move |s| {
        let page = s.story_page(&StoryFilter::All, start, limit)?;
        let older = page
            .older
            .map(|c| format!("{}?before={}", river.base_url, c.encode()));
        Ok(Ok((
            "text/html; charset=utf-8",
            publish::home_page_with_searches(&river, &page.stories, older.as_deref(), &searches),
        )))
    })
    .await;
    respond(&headers, response, OUTPUT_CACHE_CONTROL)
}

/// Whether this daemon's feed list is the one in force, checked now (a
/// database that cannot answer leaves the last check's answer).
async fn feed_list(state: &AppState) -> publish::status::FeedList {
    let differs = match state.agreement.check(&state.store).await {
        Ok(differs) => differs,
        Err(_) => state.agreement.differs(),
    };
    publish::status::FeedList {
        agrees: differs.is_none(),
        feeds_in_this_file: state.agreement.own_feeds(),
        in_force: differs.map(|a| publish::status::FeedListInForce {
            feeds: a.feeds,
            applied_by: a.by,
            applied_at: a.at,
        }),
    }
}

/// The part of a status page's cache key the feed-list notice decides.
fn feed_list_key(list: &publish::status::FeedList) -> String {
    match &list.in_force {
        Some(other) => format!(
            "differs:{}:{}",
            other.applied_by,
            other.applied_at.timestamp()
        ),
        None => "agrees".into(),
    }
}

/// `/status`: the summary and one page of feeds, as `?state=&tag=&host=&q=&page=` ask.
pub async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<FilterQuery>,
) -> Response {
    let filter = match FeedFilter::from_query(&query) {
        Ok(f) => f,
        Err(e) => return bad_filter(&e),
    };
    let river = state.river(&headers);
    let searches = search_links(&state);
    let list = feed_list(&state).await;
    let key = format!(
        "{}|status|{}|{}|{}",
        river.base_url,
        filter.query_string(filter.page),
        searches_key(&searches),
        feed_list_key(&list)
    );
    let response = cached(&state, key, move |s| {
        let summary = s.status_summary(Utc::now())?;
        let page = s.feed_page(&filter)?;
        let tags = s.tags()?;
        // WebSub rows of this page's feeds only, so the page stays one
        // page's size however many feeds are pushed.
        let on_page: std::collections::HashSet<_> = page.feeds.iter().map(|f| f.id).collect();
        let websub: Vec<_> = s
            .websub_statuses(Utc::now())?
            .into_iter()
            .filter(|w| on_page.contains(&w.feed_id))
            .collect();
        let html = publish::status::status_page(&river, &summary, &page, &filter, &tags);
        // A notice first when this daemon's feed list is not the one in force.
        let notice = publish::status::feed_list_html(&list);
        let html = match html.find("<main>\n") {
            Some(at) if !notice.is_empty() => {
                let at = at + "<main>\n".len();
                format!("{}{notice}{}", &html[..at], &html[at..])
            }
            _ => html,
        };
        // The named searches and WebSub, as sections of their own before the end.
        let section =
            publish::html::searches_list(&river, &searches) + &publish::html::websub_list(&websub);
        let html = match html.rfind("</main>") {
            Some(at) if !section.is_empty() => {
                format!("{}{section}{}", &html[..at], &html[at..])
            }
            _ => html,
        };
        Ok(Ok(("text/html; charset=utf-8", html)))
    })
    .await;
    // Feed states change with every poll: always revalidate.
    respond(&headers, response, "no-cache")
}

/// `/status.json`: what `/status` shows, for scripts.
pub async fn status_json(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<FilterQuery>,
) -> Response {
    let filter = match FeedFilter::from_query(&query) {
        Ok(f) => f,
        Err(e) => return bad_filter(&e),
    };
    let river = state.river(&headers);
    let list = feed_list(&state).await;
    let key = format!(
        "{}|status.json|{}|{}",
        river.base_url,
        filter.query_string(filter.page),
        feed_list_key(&list)
    );
    let response = cached(&state, key, move |s| {
        let now = Utc::now();
        let summary = s.status_summary(now)?;
        let page = s.feed_page(&filter)?;
        let json = publish::status::status_json(&river, &summary, &list, &page, &filter, now);
        Ok(Ok(("application/json", json)))
    })
    .await;
    respond(&headers, response, "no-cache")
}

/// `/status/feeds/{id}`: everything known about one feed.
pub async fn status_feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<FeedId>() else {
        return not_found();
    };
    let river = state.river(&headers);
    let key = format!("{}|status/feeds|{id}", river.base_url);
    let response = cached(&state, key, move |s| {
        Ok(match s.feed_detail(id)? {
            Some(detail) => Ok((
                "text/html; charset=utf-8",
                publish::status::feed_page(&river, &detail),
            )),
            None => Err(Outcome::NotFound),
        })
    })
    .await;
    respond(&headers, response, "no-cache")
}

fn bad_filter(e: &crate::status::FilterError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{e}\n"),
    )
        .into_response()
}

pub async fn river_atom(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<PageQuery>,
) -> Response {
    feed(state, headers, query, ViewSpec::All, Format::Atom).await
}

pub async fn river_rss(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<PageQuery>,
) -> Response {
    feed(state, headers, query, ViewSpec::All, Format::Rss).await
}

pub async fn river_json(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    query: Query<PageQuery>,
) -> Response {
    feed(state, headers, query, ViewSpec::All, Format::Json).await
}

pub async fn tag_feed(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    Path((tag, file)): Path<(String, String)>,
    query: Query<PageQuery>,
) -> Response {
    match Format::from_file_name(&file) {
        Some(format) => feed(state, headers, query, ViewSpec::Tag(tag), format).await,
        None => not_found(),
    }
}

pub async fn source_feed(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
    query: Query<PageQuery>,
) -> Response {
    match (Format::from_file_name(&file), id.parse::<FeedId>()) {
        (Some(format), Ok(id)) => feed(state, headers, query, ViewSpec::Feed(id), format).await,
        _ => not_found(),
    }
}

async fn feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
    view: ViewSpec,
    format: Format,
) -> Response {
    let start = match query.start() {
        Ok(start) => start,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let river = state.river(&headers);
    let named = match &view {
        ViewSpec::Named(name) => match state.searches.get(name) {
            Some(search) => Some(search),
            None => return not_found(),
        },
        _ => None,
    };
    let first_url = match &view {
        ViewSpec::All => format!("{}{}", river.base_url, format.file_name()),
        ViewSpec::Tag(tag) => format!(
            "{}tags/{}/{}",
            river.base_url,
            publish::html::path_segment(tag),
            format.file_name()
        ),
        ViewSpec::Feed(id) => format!("{}feeds/{id}/{}", river.base_url, format.file_name()),
        // The query in its normal form: equivalent queries share one document.
        ViewSpec::Search(query) => format!(
            "{}search.{}?q={}",
            river.base_url,
            format.file_name().rsplit('.').next().unwrap_or("atom"),
            url::form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect::<String>()
        ),
        ViewSpec::Named(name) => format!(
            "{}searches/{}/{}",
            river.base_url,
            publish::html::path_segment(name),
            format.file_name()
        ),
    };
    let sep = if first_url.contains('?') { '&' } else { '?' };
    let self_url = match start {
        PageStart::Newest => first_url.clone(),
        PageStart::Before(c) => format!("{first_url}{sep}before={}", c.encode()),
        PageStart::After(c) => format!("{first_url}{sep}after={}", c.encode()),
    };
    // A named search's key holds its query and tags: a reload that changes
    // them renders it again.
    let key = match &named {
        Some(search) => format!("{self_url}|{}|{}", search.query, search.tags.join(",")),
        None => self_url.clone(),
    };
    let limit = state.entries;
    let hub = state.hub.clone();
    let topic = first_url.clone();
    let response = cached(&state, key, move |s| {
        let resolved = match named {
            Some(search) => Some((
                search.filter(),
                identity::entry_uid(&river.id, &format!("view:searches:{}", search.name)),
                format!("{} — {}", river.title, search.name),
            )),
            None => resolve(s, &river, &view)?,
        };
        let Some((filter, id, title)) = resolved else {
            return Ok(Err(Outcome::NotFound));
        };
        let page = s.story_page(&filter, start, limit)?;
        let doc = FeedDoc {
            id,
            title,
            description: publish::river_description(),
            self_url,
            next_url: page
                .older
                .map(|c| format!("{first_url}{sep}before={}", c.encode())),
            previous_url: page
                .newer
                .map(|c| format!("{first_url}{sep}after={}", c.encode())),
            first_url,
            html_url: river.base_url.clone(),
            attribution: river.attribution.clone(),
            hub: hub.clone(),
        };
        let body = match format {
            Format::Atom => publish::atom_page(&doc, &page.stories),
            Format::Rss => publish::rss(&doc, &page.stories),
            Format::Json => publish::json_feed(&doc, &page.stories),
        };
        Ok(Ok((format.content_type(), body)))
    })
    .await;
    let mut response = respond(&headers, response, OUTPUT_CACHE_CONTROL);
    // WebSub discovery: the hub, and the topic a subscriber names (the
    // view's first page), on every page and 304 of the view.
    if let Some(hub) = &state.hub
        && response.status() != StatusCode::NOT_FOUND
        && let Ok(value) = HeaderValue::from_str(&crate::websub::link_header(hub, &topic))
    {
        response.headers_mut().append(header::LINK, value);
    }
    response
}

/// The stories, permanent id and title of a view; `None` when it does not exist.
fn resolve(
    store: &Store,
    river: &River,
    view: &ViewSpec,
) -> Result<Option<(StoryFilter, String, String)>, StoreError> {
    Ok(match view {
        ViewSpec::All => Some((StoryFilter::All, river.id.clone(), river.title.clone())),
        ViewSpec::Tag(tag) => store.tag_exists(tag)?.then(|| {
            (
                StoryFilter::Tag(tag.clone()),
                identity::entry_uid(&river.id, &format!("view:tag:{tag}")),
                format!("{} — {tag}", river.title),
            )
        }),
        ViewSpec::Search(query) => Some((
            StoryFilter::Search(crate::store::SearchView {
                query: query.clone(),
                tags: Vec::new(),
            }),
            identity::entry_uid(&river.id, &format!("view:search:{query}")),
            format!("{} — search: {query}", river.title),
        )),
        // Resolved by the caller, from the searches in force.
        ViewSpec::Named(_) => None,
        ViewSpec::Feed(id) => store.feed_view(*id)?.map(|feed| {
            (
                StoryFilter::Feed(feed.id),
                identity::entry_uid(&river.id, &format!("view:feed:{}", feed.uid)),
                format!("{} — via {}", feed.title, river.title),
            )
        }),
    })
}

/// The named searches in a cache key.
fn searches_key(searches: &[publish::SearchLink]) -> String {
    searches
        .iter()
        .map(|s| format!("{}={}", s.name, s.query))
        .collect::<Vec<_>>()
        .join("&")
}

type RenderResult = Result<(&'static str, String), Outcome>;

/// The document under `key`: from the cache when the data has not changed
/// since it was rendered, else rendered now (off the async runtime).
async fn cached(
    state: &Arc<AppState>,
    key: String,
    render: impl FnOnce(&Store) -> Result<RenderResult, StoreError> + Send + 'static,
) -> Result<Outcome, StoreError> {
    let local_writes = state.store.local_writes();
    if let Some(doc) = state.cache.fresh(&key, local_writes) {
        state.cache.hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Outcome::Document(doc));
    }
    let state = state.clone();
    state
        .store
        .clone()
        .call(move |store| {
            // Read the versions first: a write that lands while rendering makes
            // the next request render again, never serves stale data as fresh.
            let version = match store.data_version() {
                Ok(version) => version,
                // The database is down: what was rendered last is still the
                // best answer (it was current when the database went away).
                Err(e) => match state.cache.get(&key) {
                    Some(doc) => {
                        tracing::warn!(error = %e, "database unavailable; serving the document rendered last");
                        return Ok(Outcome::Document(doc));
                    }
                    None => return Err(e),
                },
            };
            state.cache.confirm(version);
            let previous = state.cache.get(&key);
            if let Some(doc) = previous
                .as_ref()
                .filter(|d| d.version == version && d.local_writes == local_writes)
            {
                state.cache.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Outcome::Document(doc.clone()));
            }
            state.cache.misses.fetch_add(1, Ordering::Relaxed);
            let (content_type, body) = match render(store)? {
                Ok(rendered) => rendered,
                Err(outcome) => return Ok(outcome),
            };
            let digest = Sha256::digest(body.as_bytes());
            let digest = crate::identity::hex(&digest[..16]);
            // Last-Modified moves only when the bytes do.
            let last_modified = previous
                .filter(|p| p.digest == digest)
                .map_or_else(|| Utc::now().trunc_subsecs(0), |p| p.last_modified);
            let doc = Arc::new(Rendered {
                version,
                local_writes,
                body: Bytes::from(body),
                gzip: OnceLock::new(),
                br: OnceLock::new(),
                content_type,
                digest,
                last_modified,
            });
            state.cache.put(key, doc.clone());
            Ok(Outcome::Document(doc))
        })
        .await
}

fn respond(
    request: &HeaderMap,
    outcome: Result<Outcome, StoreError>,
    cache_control: &'static str,
) -> Response {
    match outcome {
        Ok(Outcome::Document(doc)) => conditional(request, &doc, cache_control),
        Ok(Outcome::NotFound) => not_found(),
        Err(e) => internal_error(e),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The ETag a client may send back: ours, or ours as the compression layer
/// marked it for an encoded representation.
fn etag_matches(doc: &Rendered, candidate: &str) -> bool {
    let candidate = candidate.trim();
    if candidate == "*" {
        return true;
    }
    let Some(inner) = candidate
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
    else {
        return false; // weak or malformed: a strong comparison never matches
    };
    inner == doc.digest
        || inner
            .strip_prefix(doc.digest.as_str())
            .is_some_and(|suffix| matches!(suffix, "-gzip" | "-br" | "-deflate" | "-zstd"))
}

/// `Last-Modified` / `If-Modified-Since` use the IMF-fixdate form.
fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|d| d.to_utc())
}

/// 200 with the document, or 304 when the client's copy is current
/// (If-None-Match wins over If-Modified-Since, as RFC 9110 says).
fn conditional(request: &HeaderMap, doc: &Rendered, cache_control: &'static str) -> Response {
    let if_none_match = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    // A 304 repeats the tag the client matched: for an encoded representation
    // that is the suffixed one it was given with the body.
    let mut matched: Option<&str> = None;
    let not_modified = if !if_none_match.is_empty() {
        matched = if_none_match
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|t| etag_matches(doc, t));
        matched.is_some()
    } else {
        request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
            .is_some_and(|since| doc.last_modified <= since)
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match preferred_encoding(request) {
            // Compressed here, once per document, rather than per response by
            // the compression layer (which leaves encoded responses alone;
            // `mark_encoded_etag` still suffixes the ETag).
            Some(encoding) => (
                [
                    (header::CONTENT_TYPE, doc.content_type),
                    (header::CONTENT_ENCODING, encoding.name()),
                ],
                encoding.of(doc),
            )
                .into_response(),
            None => ([(header::CONTENT_TYPE, doc.content_type)], doc.body.clone()).into_response(),
        }
    };
    let headers = response.headers_mut();
    let etag = match matched {
        Some(tag) if tag != "*" => tag.to_string(),
        _ => format!("\"{}\"", doc.digest),
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&http_date(doc.last_modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// A compressed representation this server keeps ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The document's body in this encoding (compressed on first use).
    fn of(self, doc: &Rendered) -> Bytes {
        let slot = match self {
            Encoding::Brotli => &doc.br,
            Encoding::Gzip => &doc.gzip,
        };
        slot.get_or_init(|| compress(self, &doc.body)).clone()
    }
}

fn compress(encoding: Encoding, body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut out = Vec::with_capacity(body.len() / 4 + 64);
    let written = match encoding {
        // Quality 5: nearly the ratio of 11 for a small fraction of the time.
        Encoding::Brotli => {
            let mut w = brotli::CompressorWriter::new(&mut out, 16 * 1024, 5, 22);
            w.write_all(body).and_then(|()| w.flush())
        }
        Encoding::Gzip => {
            let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(5));
            w.write_all(body).and_then(|()| w.finish().map(|_| ()))
        }
    };
    match written {
        Ok(()) => Bytes::from(out),
        // Writing to a Vec cannot fail; if it did, no encoding is better than a broken one.
        Err(_) => Bytes::new(),
    }
}

/// The encoding to answer with, from Accept-Encoding (brotli first, then
/// gzip; `q=0` refuses one).
fn preferred_encoding(request: &HeaderMap) -> Option<Encoding> {
    let accepted: Vec<(String, f32)> = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let name = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((name, q))
        })
        .collect();
    let q_of = |name: &str| {
        accepted
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| accepted.iter().find(|(n, _)| n == "*"))
            .map_or(0.0, |(_, q)| *q)
    };
    [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .find(|e| q_of(e.name()) > 0.0)
}

/// Runs outside the compression layer: a compressed body is a different
/// representation, so its strong ETag gets the encoding as a suffix.
pub async fn mark_encoded_etag(mut response: Response) -> Response {
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(encoding) = encoding
        && let Some(etag) = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|e| e.strip_suffix('"'))
            .map(|e| format!("{e}-{encoding}\""))
        && let Ok(value) = HeaderValue::from_str(&etag)
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Rendered {
        Rendered {
            version: 1,
            local_writes: 0,
            body: Bytes::from_static(b"x"),
            gzip: OnceLock::new(),
            br: OnceLock::new(),
            content_type: "text/plain",
            digest: "abc".into(),
            last_modified: DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
                .unwrap()
                .to_utc(),
        }
    }

    #[test]
    fn encodings_are_negotiated_and_compressed_once() {
        let mut h = HeaderMap::new();
        assert_eq!(preferred_encoding(&h), None);
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate"),
        );
        assert_eq!(preferred_encoding(&h), Some(Encoding::Gzip));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0.5, br"),
        );
        assert_eq!(preferred_encoding(&h), Some(Encoding::Brotli));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br;q=0, gzip;q=0"),
        );
        assert_eq!(preferred_encoding(&h), None);
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("*"));
        assert_eq!(preferred_encoding(&h), Some(Encoding::Brotli));

        let mut d = doc();
        d.body = Bytes::from("<feed>".repeat(1000));
        let gz = Encoding::Gzip.of(&d);
        assert!(gz.len() < d.body.len() / 10);
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &d.body[..]);
        // The same bytes, not compressed again.
        assert_eq!(Encoding::Gzip.of(&d).as_ptr(), gz.as_ptr());
        let br = Encoding::Brotli.of(&d);
        let mut plain = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut plain).unwrap();
        assert_eq!(plain, d.body);
    }

    #[test]
    fn etags_compare_strongly_and_accept_encoded_variants() {
        let d = doc();
        assert!(etag_matches(&d, "\"abc\""));
        assert!(etag_matches(&d, " \"abc-br\""));
        assert!(etag_matches(&d, "\"abc-gzip\""));
        assert!(etag_matches(&d, "*"));
        assert!(!etag_matches(&d, "W/\"abc\""));
        assert!(!etag_matches(&d, "\"abcd\""));
        assert!(!etag_matches(&d, "\"abc-evil\""));
    }

    #[test]
    fn if_modified_since_gives_304_only_when_not_newer() {
        let d = doc();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Fri, 20 Nov 2026 10:00:00 GMT"),
        );
        assert_eq!(conditional(&h, &d, "no-cache").status(), 304);
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Fri, 20 Nov 2026 09:59:59 GMT"),
        );
        assert_eq!(conditional(&h, &d, "no-cache").status(), 200);
        // If-None-Match wins even when the date would say "not modified".
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Fri, 20 Nov 2026 11:00:00 GMT"),
        );
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(conditional(&h, &d, "no-cache").status(), 200);
        assert_eq!(http_date(d.last_modified), "Fri, 20 Nov 2026 10:00:00 GMT");
    }
}
