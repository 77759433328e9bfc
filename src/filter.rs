//! Include/exclude rules applied at ingest, between parse and store, so that an
//! excluded entry is never stored and reaches no output. Rules come from the
//! TOML's `[filters]` (every feed) and a feed's own `filters` (that feed only).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde::de::Deserializer;
use toml::Spanned;

use crate::config::{Config, HumanDuration};
use crate::model::{ParsedEntry, ParsedFeed};
use crate::sanitize;

/// `[filters]`, or a feed's `filters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// When any include rule is given, an entry must match at least one.
    #[serde(default)]
    pub include: Rules,
    /// An entry matching any exclude rule is dropped.
    #[serde(default)]
    pub exclude: Rules,
    /// Entries dated (published, else updated) longer ago than this are dropped.
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
}

/// Keyword lists (case-insensitive, whole words) and regular expressions per field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub title: Vec<Keyword>,
    #[serde(default)]
    pub title_regex: Vec<Pattern>,
    /// Matches the text of the summary and the content, markup removed.
    #[serde(default)]
    pub content: Vec<Keyword>,
    #[serde(default)]
    pub content_regex: Vec<Pattern>,
    #[serde(default)]
    pub author: Vec<Keyword>,
    #[serde(default)]
    pub author_regex: Vec<Pattern>,
    #[serde(default)]
    pub link: Vec<Keyword>,
    #[serde(default)]
    pub link_regex: Vec<Pattern>,
    /// Matches the entry's own categories and the feed's tags from this file.
    #[serde(default)]
    pub tags: Vec<Keyword>,
    #[serde(default)]
    pub tags_regex: Vec<Pattern>,
}

/// A keyword, matched case-insensitively as a whole word (or phrase).
#[derive(Debug, Clone)]
pub struct Keyword(Compiled);

/// A regular expression (Rust `regex` syntax; `(?i)` for case-insensitive).
#[derive(Debug, Clone)]
pub struct Pattern(Compiled);

/// A rule as written, with where it was written, compiled. An invalid rule is
/// kept with its error so that `Config::parse` can report it at its own
/// line and column (serde errors would point at the enclosing array).
#[derive(Debug, Clone)]
struct Compiled {
    span: std::ops::Range<usize>,
    regex: Result<Regex, String>,
}

impl Compiled {
    fn is_match(&self, text: &str) -> bool {
        self.regex.as_ref().is_ok_and(|r| r.is_match(text))
    }
}

impl<'de> Deserialize<'de> for Keyword {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<String>::deserialize(d)?;
        let word = spanned.get_ref().trim();
        let regex = if word.is_empty() {
            Err("an empty keyword would match everything".to_string())
        } else {
            // \b only where the keyword itself starts or ends with a word
            // character, so "[ad]" and "c++" still match.
            let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let start = if is_word(word.chars().next()) {
                r"\b"
            } else {
                ""
            };
            let end = if is_word(word.chars().last()) {
                r"\b"
            } else {
                ""
            };
            RegexBuilder::new(&format!("{start}{}{end}", regex::escape(word)))
                .case_insensitive(true)
                .build()
                .map_err(|e| format!("keyword {word:?}: {e}"))
        };
        Ok(Keyword(Compiled {
            span: spanned.span(),
            regex,
        }))
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<String>::deserialize(d)?;
        let text = spanned.get_ref();
        let regex = RegexBuilder::new(text)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                // regex errors span several lines; a config error is one line.
                let reason = e.to_string();
                let reason = reason
                    .lines()
                    .rev()
                    .find(|l| l.trim_start().starts_with("error:"))
                    .map_or(reason.as_str(), |l| {
                        l.trim_start().trim_start_matches("error:").trim()
                    })
                    .to_string();
                format!("invalid regular expression {text:?}: {reason}")
            });
        Ok(Pattern(Compiled {
            span: spanned.span(),
            regex,
        }))
    }
}

/// The first invalid rule in a configuration: its span and what is wrong.
pub fn first_error(config: &Config) -> Option<(std::ops::Range<usize>, String)> {
    std::iter::once(&config.filters)
        .chain(config.feeds.iter().filter_map(|f| f.filters.as_ref()))
        .flat_map(|c| [&c.include, &c.exclude])
        .flat_map(Rules::compiled)
        .find_map(|c| c.regex.as_ref().err().map(|e| (c.span.clone(), e.clone())))
}

/// The fields rules look at, prepared once per entry.
struct Fields<'a> {
    title: &'a str,
    content: String,
    author: &'a str,
    link: &'a str,
    tags: Vec<&'a str>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.title.is_empty()
            && self.title_regex.is_empty()
            && self.content.is_empty()
            && self.content_regex.is_empty()
            && self.author.is_empty()
            && self.author_regex.is_empty()
            && self.link.is_empty()
            && self.link_regex.is_empty()
            && self.tags.is_empty()
            && self.tags_regex.is_empty()
    }

    fn compiled(&self) -> impl Iterator<Item = &Compiled> {
        [
            &self.title,
            &self.content,
            &self.author,
            &self.link,
            &self.tags,
        ]
        .into_iter()
        .flatten()
        .map(|k| &k.0)
        .chain(
            [
                &self.title_regex,
                &self.content_regex,
                &self.author_regex,
                &self.link_regex,
                &self.tags_regex,
            ]
            .into_iter()
            .flatten()
            .map(|p| &p.0),
        )
    }

    fn matches(&self, f: &Fields<'_>) -> bool {
        let on = |keywords: &[Keyword], patterns: &[Pattern], text: &str| {
            keywords.iter().any(|k| k.0.is_match(text))
                || patterns.iter().any(|p| p.0.is_match(text))
        };
        on(&self.title, &self.title_regex, f.title)
            || on(&self.content, &self.content_regex, &f.content)
            || on(&self.author, &self.author_regex, f.author)
            || on(&self.link, &self.link_regex, f.link)
            || f.tags.iter().any(|t| on(&self.tags, &self.tags_regex, t))
    }
}

impl FilterConfig {
    fn keeps(&self, f: &Fields<'_>, date: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        if self.exclude.matches(f) {
            return false;
        }
        if !self.include.is_empty() && !self.include.matches(f) {
            return false;
        }
        match (self.max_age, date) {
            (Some(max_age), Some(date)) => {
                chrono::Duration::from_std(max_age.0).map_or(true, |age| date >= now - age)
            }
            _ => true,
        }
    }
}

/// The rules in force; a configuration reload swaps them.
#[derive(Debug, Default)]
pub struct Filters {
    current: RwLock<Arc<FilterSet>>,
}

impl Filters {
    pub fn from_config(config: &Config) -> Self {
        Self {
            current: RwLock::new(Arc::new(FilterSet::from_config(config))),
        }
    }

    /// Puts the rules of a newly loaded configuration in force.
    pub fn set(&self, config: &Config) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(FilterSet::from_config(config));
    }

    /// Drops the entries of `doc` (polled from `feed_url`) that the rules exclude.
    pub fn apply(&self, feed_url: &str, doc: ParsedFeed, now: DateTime<Utc>) -> ParsedFeed {
        let set = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        set.apply(feed_url, doc, now)
    }
}

/// Every rule of a configuration, by feed URL.
#[derive(Debug, Default)]
struct FilterSet {
    global: FilterConfig,
    feeds: HashMap<String, FeedFilter>,
}

#[derive(Debug, Default)]
struct FeedFilter {
    rules: Option<FilterConfig>,
    tags: Vec<String>,
}

impl FilterSet {
    fn from_config(config: &Config) -> Self {
        Self {
            global: config.filters.clone(),
            feeds: config
                .feeds
                .iter()
                .map(|f| {
                    let filter = FeedFilter {
                        rules: f.filters.clone(),
                        tags: f.tags.clone(),
                    };
                    (f.url().to_string(), filter)
                })
                .collect(),
        }
    }

    /// Whether a rule would ever drop anything.
    fn is_empty(&self) -> bool {
        let empty =
            |c: &FilterConfig| c.include.is_empty() && c.exclude.is_empty() && c.max_age.is_none();
        empty(&self.global)
            && self
                .feeds
                .values()
                .all(|f| f.rules.as_ref().is_none_or(empty))
    }

    fn apply(&self, feed_url: &str, mut doc: ParsedFeed, now: DateTime<Utc>) -> ParsedFeed {
        if self.is_empty() {
            return doc;
        }
        let feed = self.feeds.get(feed_url);
        let before = doc.entries.len();
        doc.entries.retain(|entry| self.keeps(feed, entry, now));
        let dropped = before - doc.entries.len();
        if dropped > 0 {
            tracing::debug!(feed = feed_url, dropped, "entries excluded by filters");
        }
        doc
    }

    fn keeps(&self, feed: Option<&FeedFilter>, e: &ParsedEntry, now: DateTime<Utc>) -> bool {
        let text = |html: &Option<String>| {
            html.as_deref()
                .map(|h| html_escape::decode_html_entities(&sanitize::strip_tags(h)).into_owned())
                .unwrap_or_default()
        };
        let mut tags: Vec<&str> = e.categories.iter().map(String::as_str).collect();
        if let Some(feed) = feed {
            tags.extend(feed.tags.iter().map(String::as_str));
        }
        let fields = Fields {
            title: &e.title,
            content: format!("{}\n{}", text(&e.summary), text(&e.content)),
            author: e.author.as_deref().unwrap_or(""),
            link: e.link.as_deref().unwrap_or(""),
            tags,
        };
        let date = e.published.or(e.updated);
        self.global.keeps(&fields, date, now)
            && feed
                .and_then(|f| f.rules.as_ref())
                .is_none_or(|rules| rules.keeps(&fields, date, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(toml: &str) -> Config {
        Config::parse(toml, Path::new("f.toml")).unwrap()
    }

    fn entry(title: &str) -> ParsedEntry {
        ParsedEntry {
            title: title.into(),
            link: Some("https://a.example/news/1".into()),
            ..Default::default()
        }
    }

    fn kept(filters: &Filters, url: &str, entries: Vec<ParsedEntry>) -> Vec<String> {
        let doc = ParsedFeed {
            entries,
            ..Default::default()
        };
        let now = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .to_utc();
        filters
            .apply(url, doc, now)
            .entries
            .into_iter()
            .map(|e| e.title)
            .collect()
    }

    const A: &str = "https://a.example/feed";
    const B: &str = "https://b.example/feed";

    #[test]
    fn keywords_match_whole_words_case_insensitively() {
        let c = config(
            "[filters.exclude]\ntitle = [\"ad\", \"[sponsored]\"]\n[[feed]]\nurl = \"https://a.example/feed\"\n",
        );
        let f = Filters::from_config(&c);
        let got = kept(
            &f,
            A,
            vec![
                entry("AD: buy now"),
                entry("Bread is read"),
                entry("[Sponsored] shoes"),
                entry("Reading list"),
            ],
        );
        assert_eq!(got, ["Bread is read", "Reading list"]);
    }

    #[test]
    fn global_and_per_feed_rules_both_apply() {
        let c = config(
            r#"
[filters.exclude]
author = ["Bot"]
[[feed]]
url = "https://a.example/feed"
tags = ["tech"]
[feed.filters.include]
title_regex = ['(?i)\brust\b']
content = ["sqlite"]
[[feed]]
url = "https://b.example/feed"
"#,
        );
        let f = Filters::from_config(&c);
        let mut by_bot = entry("Rust by a bot");
        by_bot.author = Some("News Bot".into());
        let mut in_content = entry("Databases");
        in_content.content = Some("<p>Why <b>SQLite</b> &amp; friends</p>".into());
        let entries = vec![entry("Rust 2.0"), entry("Go 2.0"), by_bot, in_content];
        assert_eq!(kept(&f, A, entries.clone()), ["Rust 2.0", "Databases"]);
        assert_eq!(
            kept(&f, B, entries),
            ["Rust 2.0", "Go 2.0", "Databases"],
            "feed B has only the global rule"
        );
    }

    #[test]
    fn links_tags_and_age_are_filtered() {
        let c = config(
            r#"
[filters]
max_age = "30days"
[filters.exclude]
link_regex = ['^https?://[^/]+/video/']
tags = ["podcast"]
[[feed]]
url = "https://a.example/feed"
tags = ["audio"]
[feed.filters.exclude]
tags_regex = ['^aud']
[[feed]]
url = "https://b.example/feed"
"#,
        );
        let f = Filters::from_config(&c);
        let mut video = entry("Video");
        video.link = Some("https://a.example/video/1".into());
        let mut podcast = entry("Podcast");
        podcast.categories = vec!["Podcast".into()];
        let mut old = entry("Old");
        old.published = Some(
            DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let mut recent = entry("Recent");
        recent.published = Some(
            DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .unwrap()
                .to_utc(),
        );
        let undated = entry("Undated");
        let entries = vec![video, podcast, old, recent, undated];
        assert_eq!(kept(&f, B, entries.clone()), ["Recent", "Undated"]);
        assert!(
            kept(&f, A, entries).is_empty(),
            "feed A's tag 'audio' is excluded"
        );
    }

    #[test]
    fn a_reload_puts_new_rules_in_force() {
        let f = Filters::from_config(&config("[[feed]]\nurl = \"https://a.example/feed\"\n"));
        assert_eq!(
            kept(&f, A, vec![entry("Sponsored post")]),
            ["Sponsored post"]
        );
        f.set(&config(
            "[filters.exclude]\ntitle = [\"sponsored\"]\n[[feed]]\nurl = \"https://a.example/feed\"\n",
        ));
        assert!(kept(&f, A, vec![entry("Sponsored post")]).is_empty());
    }

    #[test]
    fn invalid_regexes_are_config_errors_with_line_and_column() {
        let err = Config::parse(
            "[[feed]]\nurl = \"https://a.example/\"\n[feed.filters.exclude]\ntitle_regex = [\"ok\", \"(unclosed\"]\n",
            Path::new("f.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "f.toml:4:22: invalid regular expression \"(unclosed\": unclosed group"
            ),
            "{err}"
        );
        let err = Config::parse("[filters.include]\ncontent = [\"\"]\n", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.toml:2:12: an empty keyword"), "{err}");
        let err = Config::parse("[filters.exclude]\ntitel = [\"x\"]\n", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.toml:2:1: unknown field `titel`"),
            "{err}"
        );
    }
}
