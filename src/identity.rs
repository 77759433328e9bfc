//! Which entry is which: keys within a feed (the guid → link → hash ladder),
//! canonical URLs, change hashes, permanent ids; `fingerprint` decides which
//! entries of different feeds are one story.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use url::Url;

use crate::model::{IdentifiedEntry, ParsedEntry};

pub mod byline;
pub mod fingerprint;

/// The rung of the identity ladder a feed's entries are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rung {
    /// The entry's guid / id.
    Guid,
    /// The entry's canonical link.
    Link,
    /// A hash of title and content.
    Hash,
}

impl Rung {
    pub fn as_str(self) -> &'static str {
        match self {
            Rung::Guid => "guid",
            Rung::Link => "link",
            Rung::Hash => "hash",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "link" => Rung::Link,
            "hash" => Rung::Hash,
            _ => Rung::Guid,
        }
    }
}

/// Share of a document's entries whose guid (or link) may be missing or
/// repeated before the whole feed moves down the ladder.
pub const DEFAULT_TOLERANCE: f64 = 0.05;

/// Everything that decides which entry and which story is which.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DedupSettings {
    /// Cross-feed story matching.
    pub matching: fingerprint::MatchSettings,
    /// Share of a feed's entries with missing, repeated or unstable guids
    /// (or links) beyond which the feed moves down the identity ladder.
    pub guid_tolerance: f64,
    /// An entry whose only change is in digits (a clock baked into the item)
    /// counts as updated at most once per this long.
    pub churn_cooldown: chrono::Duration,
    /// A date further before an entry's first-seen time than this is clamped
    /// to it for ordering (a date after first-seen is always clamped).
    pub max_date_skew: chrono::Duration,
}

impl Default for DedupSettings {
    fn default() -> Self {
        Self {
            matching: fingerprint::MatchSettings::default(),
            guid_tolerance: DEFAULT_TOLERANCE,
            churn_cooldown: chrono::Duration::hours(6),
            max_date_skew: chrono::Duration::days(30),
        }
    }
}

/// Gives each parsed entry its identity within the feed, starting from the
/// guid rung (see [`identify_at`]).
pub fn identify(entries: Vec<ParsedEntry>) -> Vec<IdentifiedEntry> {
    identify_at(entries, Rung::Guid, DEFAULT_TOLERANCE).1
}

/// An entry with its canonical link, as the ladder looks at it.
type View<'a> = (&'a ParsedEntry, Option<&'a str>);

/// How often each value (a guid, a canonical link, or none) occurs in a
/// document.
type Counts<'a> = HashMap<Option<&'a str>, usize>;

/// The rung a document of `total` entries needs, given how often each guid and
/// each link occurs in it: the lowest of `floor` and the first rung whose
/// values are missing or repeated for no more than `tolerance` of the entries.
fn needed_rung_of(
    total: usize,
    guids: &Counts<'_>,
    links: &Counts<'_>,
    floor: Rung,
    tolerance: f64,
) -> Rung {
    let allowed = (total as f64 * tolerance).floor() as usize;
    let bad = |values: &Counts<'_>| -> usize {
        values
            .iter()
            .filter(|(v, n)| v.is_none() || **n > 1)
            .map(|(_, n)| n)
            .sum()
    };
    let needed = if bad(guids) <= allowed {
        Rung::Guid
    } else if bad(links) <= allowed {
        Rung::Link
    } else {
        Rung::Hash
    };
    needed.max(floor)
}

fn counts<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Counts<'a> {
    let mut map = HashMap::new();
    for v in values {
        *map.entry(v).or_insert(0) += 1;
    }
    map
}

/// The canonical form of an entry's link (see [`canonical_url`]).
pub fn canonical_link(entry: &ParsedEntry) -> Option<String> {
    entry.link.as_deref().map(canonical_url)
}

/// Keys every entry of one document at `floor` or the rung the document needs,
/// whichever is lower on the ladder. An entry whose own value at that rung is
/// missing or shared with another entry of the document steps down for itself
/// alone, so a repeated guid never makes one item overwrite another; only
/// entries identical in title and content collapse into one.
pub fn identify_at(
    entries: Vec<ParsedEntry>,
    floor: Rung,
    tolerance: f64,
) -> (Rung, Vec<IdentifiedEntry>) {
    let canonical: Vec<Option<String>> = entries.iter().map(canonical_link).collect();
    let views: Vec<View<'_>> = entries
        .iter()
        .zip(&canonical)
        .map(|(e, c)| (e, c.as_deref()))
        .collect();
    let (rung, keys) = keys_of(&views, floor, tolerance);
    let identified = entries
        .into_iter()
        .zip(canonical)
        .zip(keys)
        .filter_map(|((entry, canonical), key)| {
            Some(IdentifiedEntry::with_canonical(key?, entry, canonical))
        })
        .collect();
    (rung, identified)
}

/// [`identify_at`] for entries identified before (at another rung): only the
/// keys change; hashes and fingerprints are kept.
pub fn rekey_at(
    items: Vec<IdentifiedEntry>,
    floor: Rung,
    tolerance: f64,
) -> (Rung, Vec<IdentifiedEntry>) {
    let views: Vec<View<'_>> = items
        .iter()
        .map(|i| (&i.entry, i.canonical.as_deref()))
        .collect();
    let (rung, keys) = keys_of(&views, floor, tolerance);
    let rekeyed = items
        .into_iter()
        .zip(keys)
        .filter_map(|(item, key)| Some(IdentifiedEntry { key: key?, ..item }))
        .collect();
    (rung, rekeyed)
}

/// Each entry's key at the rung the document needs; `None` for an entry whose
/// key an earlier entry of the document already has.
fn keys_of(entries: &[View<'_>], floor: Rung, tolerance: f64) -> (Rung, Vec<Option<String>>) {
    let guids = counts(entries.iter().map(|(e, _)| e.guid.as_deref()));
    let links = counts(entries.iter().map(|(_, link)| *link));
    let rung = needed_rung_of(entries.len(), &guids, &links, floor, tolerance);
    let unique = |counts: &Counts<'_>, v: Option<&str>| v.is_some() && counts.get(&v) == Some(&1);
    let mut seen = std::collections::HashSet::new();
    let keys = entries
        .iter()
        .map(|&(entry, link)| {
            let guid = entry.guid.as_deref();
            let key = match rung {
                Rung::Guid if unique(&guids, guid) => format!("guid:{}", guid.unwrap_or_default()),
                Rung::Guid | Rung::Link if unique(&links, link) => {
                    format!("link:{}", link.unwrap_or_default())
                }
                _ => hash_key(entry),
            };
            seen.insert(key.clone()).then_some(key)
        })
        .collect();
    (rung, keys)
}

impl IdentifiedEntry {
    /// An entry with its key, change hashes and fingerprint worked out.
    pub fn new(key: String, entry: ParsedEntry) -> Self {
        let canonical = canonical_link(&entry);
        Self::with_canonical(key, entry, canonical)
    }

    /// [`IdentifiedEntry::new`] with the canonical link already worked out.
    /// The text of title, summary and content is normalised once, for the
    /// change hashes and the fingerprint alike.
    fn with_canonical(key: String, entry: ParsedEntry, canonical: Option<String>) -> Self {
        let text = Normalised::of(&entry);
        let (hash, churn) = text.hashes(canonical.as_deref(), entry.author.as_deref());
        let body = if entry.content.is_some() {
            &text.content
        } else {
            &text.summary
        };
        Self {
            key,
            hash,
            churn,
            fingerprint: fingerprint::Fingerprint::of_normalised(&text.title, body),
            article_link: canonical.as_deref().is_some_and(is_article_link),
            canonical,
            entry,
        }
    }
}

/// Whether a link names one article rather than a site's front page: a path
/// other than `/`, or a query.
pub fn is_article_link(link: &str) -> bool {
    Url::parse(link).is_ok_and(|u| u.path() != "/" || u.query().is_some())
}

/// The text a fingerprint is taken of: the content, else the summary.
pub fn body_of(e: &ParsedEntry) -> &str {
    e.content.as_deref().or(e.summary.as_deref()).unwrap_or("")
}

/// `hash:…` of title and content: the last rung of the ladder.
pub fn hash_key(entry: &ParsedEntry) -> String {
    let body = entry
        .content
        .as_deref()
        .or(entry.summary.as_deref())
        .unwrap_or("");
    // SHA-256, like every key and uid: keys must never change.
    format!("hash:{}", hex(&digest(&[&entry.title, body])))
}

/// Query parameters that only track the reader: dropped from canonical URLs.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "ttclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "_openstat",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "srsltid",
    "ref",
    "ref_src",
    "ref_url",
    "cmpid",
    "ocid",
    "s_cid",
    "spm",
    "at_medium",
    "at_campaign",
    "__twitter_impression",
];

/// Whether a query parameter is a tracking parameter (`utm_*`, `fbclid`, …).
pub fn is_tracking_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// The canonical form of a link, for comparing: lower-case scheme and host
/// (the `url` crate's parsing does that), no default port, no fragment, no
/// tracking parameters, remaining parameters sorted. Something that is not an
/// absolute URL comes back trimmed and otherwise unchanged.
pub fn canonical_url(link: &str) -> String {
    let trimmed = link.trim();
    let Ok(mut url) = Url::parse(trimmed) else {
        return trimmed.to_string();
    };
    url.set_fragment(None);
    if url.query().is_some() {
        let mut params: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        params.sort();
        if params.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(params);
        }
    }
    url.to_string()
}

/// `guid:…`, `link:…` or `hash:…`.
pub fn entry_key(entry: &ParsedEntry) -> String {
    if let Some(guid) = &entry.guid {
        format!("guid:{guid}")
    } else if let Some(link) = &entry.link {
        format!("link:{}", canonical_url(link))
    } else {
        hash_key(entry)
    }
}

/// Hash of what the reader sees: title, canonical link, author and the text
/// of summary and content (markup and whitespace aside). Dates are left out:
/// a feed that restamps every item on every poll has not changed them.
pub fn change_hash(entry: &ParsedEntry) -> String {
    change_and_churn_hashes(entry).0
}

/// [`change_hash`] with every run of digits masked. When only this one stays
/// the same, the change is in numbers alone — a clock or counter baked into the
/// item, or a corrected figure — and is subject to the churn limit.
pub fn churn_hash(entry: &ParsedEntry) -> String {
    change_and_churn_hashes(entry).1
}

/// The change and churn hashes as versions before XXH3 stored them (SHA-256,
/// 64 hex digits), worked out only for an entry whose stored hash is still of
/// that format, so that an edit made across the upgrade still counts.
pub fn legacy_hashes(entry: &ParsedEntry, canonical: Option<&str>) -> (String, String) {
    let text = Normalised::of(entry);
    let parts = text.parts(canonical, entry.author.as_deref());
    let masked = parts
        .iter()
        .zip(MASKED)
        .map(|(part, mask)| {
            if mask {
                mask_digit_runs(part)
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>();
    let masked: Vec<&str> = masked.iter().map(String::as_str).collect();
    (hex(&digest(&parts)), hex(&digest(&masked)))
}

/// Every run of ASCII digits as one '#' (what the churn hash hashes).
fn mask_digit_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

/// Both hashes from one pass over the entry's text.
fn change_and_churn_hashes(entry: &ParsedEntry) -> (String, String) {
    let canonical = canonical_link(entry);
    Normalised::of(entry).hashes(canonical.as_deref(), entry.author.as_deref())
}

/// The normalised text of an entry's title, summary and content
/// (`fingerprint::normalised_text`).
struct Normalised {
    title: String,
    summary: String,
    content: String,
}

impl Normalised {
    fn of(entry: &ParsedEntry) -> Self {
        let text = |s: Option<&str>| fingerprint::normalised_text(s.unwrap_or(""));
        Self {
            title: text(Some(&entry.title)),
            summary: text(entry.summary.as_deref()),
            content: text(entry.content.as_deref()),
        }
    }

    /// What the change hash covers: title, canonical link, author, summary,
    /// content.
    fn parts<'a>(&'a self, canonical: Option<&'a str>, author: Option<&'a str>) -> [&'a str; 5] {
        [
            self.title.as_str(),
            canonical.unwrap_or(""),
            author.unwrap_or(""),
            self.summary.as_str(),
            self.content.as_str(),
        ]
    }

    /// The change hash of [`Normalised::parts`] and the churn hash (the same
    /// with every run of digits in the text parts masked).
    fn hashes(&self, canonical: Option<&str>, author: Option<&str>) -> (String, String) {
        let parts = self.parts(canonical, author);
        (hex_digest(&parts), hex_digest_masked(&parts, MASKED))
    }
}

/// Which of [`Normalised::parts`] the churn hash masks digit runs in: the
/// text (title, summary, content), not the link or the author.
const MASKED: [bool; 5] = [true, false, false, true, true];

/// A permanent, globally unique id for a published entry, derived from the
/// feed's permanent id and the entry's key, as a name-based UUID URN.
pub fn entry_uid(feed_uid: &str, key: &str) -> String {
    uuid_urn(&[feed_uid, key])
}

/// The permanent id of an entry stored for the first time at `first_seen`: a
/// time-ordered UUID (RFC 9562 version 7) whose first 48 bits are that time in
/// milliseconds and whose other bits come from the feed's id and the entry's
/// key. Stored once and never recomputed, so it stays the entry's id; being
/// time-ordered, the ids of new entries land at the end of the unique indexes
/// on `entries.uid` and `stories.uid` instead of at random pages of them,
/// which keeps ingest cost flat as the database grows.
pub fn new_entry_uid(
    feed_uid: &str,
    key: &str,
    first_seen: chrono::DateTime<chrono::Utc>,
) -> String {
    let digest = digest(&[feed_uid, key]);
    let millis = first_seen.timestamp_millis().clamp(0, (1 << 48) - 1) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&digest[..10]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

/// A permanent id for a newly configured feed.
pub fn feed_uid(url: &str) -> String {
    uuid_urn(&["feed", url])
}

fn uuid_urn(parts: &[&str]) -> String {
    let digest = digest(parts);
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    // RFC 9562 version 8 (custom), RFC 4122 variant.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// What change and churn hashes start with: XXH3-128 (format "x3"). They
/// were SHA-256 (64 hex digits, no prefix) before; such a stored hash is of
/// another format and is never compared (see [`is_current_hash`]).
const CHANGE_HASH_PREFIX: &str = "x3:";

/// Whether a stored change or churn hash is of the format worked out now.
pub fn is_current_hash(stored: &str) -> bool {
    stored.starts_with(CHANGE_HASH_PREFIX)
}

/// An XXH3-128 digest as stored: `x3:` and 32 hex digits. Change and churn
/// hashes, and feeds' body hashes (`fetch::body_hash`), are written this way.
pub(crate) fn x3_text(digest: u128) -> String {
    let mut out = String::with_capacity(CHANGE_HASH_PREFIX.len() + 32);
    out.push_str(CHANGE_HASH_PREFIX);
    out.push_str(&hex(&digest.to_be_bytes()));
    out
}

/// The change hash of some parts, each preceded by its length.
fn hex_digest(parts: &[&str]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    x3_text(hasher.digest128())
}

/// Lower-case hexadecimal of some bytes (digests, ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `hex_digest` of the parts with every run of ASCII digits in those marked
/// replaced by one '#', streamed into the hash without building the masked copies.
fn hex_digest_masked<const N: usize>(parts: &[&str; N], masked: [bool; N]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (part, mask) in parts.iter().zip(masked) {
        if !mask {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
            continue;
        }
        let bytes = part.as_bytes();
        // Every run of ASCII digits becomes one '#': the masked length counts
        // each other byte and each run's first digit.
        let masked_len = bytes
            .iter()
            .enumerate()
            .filter(|&(i, b)| !b.is_ascii_digit() || i == 0 || !bytes[i - 1].is_ascii_digit())
            .count();
        hasher.update(&(masked_len as u64).to_le_bytes());
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                hasher.update(&bytes[start..i]);
                hasher.update(b"#");
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                start = i;
            } else {
                i += 1;
            }
        }
        hasher.update(&bytes[start..]);
    }
    x3_text(hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_links_have_a_path_or_a_query() {
        assert!(is_article_link("https://a.example/2026/11/strike"));
        assert!(is_article_link("https://a.example/?p=123"));
        assert!(!is_article_link("https://a.example/"));
        assert!(!is_article_link("not a link"));
        let e = ParsedEntry {
            link: Some("https://a.example/strike".into()),
            ..entry(None, None, "t")
        };
        assert!(IdentifiedEntry::new(entry_key(&e), e).article_link);
        let front = entry(None, Some("https://a.example/"), "t");
        assert!(!IdentifiedEntry::new(entry_key(&front), front).article_link);
    }

    #[test]
    fn legacy_hashes_are_the_sha256_ones_older_versions_stored() {
        // Worked out independently (Python hashlib) from the old definition:
        // SHA-256 over each part's length (u64, little-endian) and bytes.
        let e = entry(None, None, "Port strike ends after 9 days");
        let (change, churn) = legacy_hashes(&e, None);
        assert_eq!(
            change,
            "0033bbb129207ad787f19c8e4fb2f5a05339e01c44e3e121a7c3d467a4f986d6"
        );
        assert_eq!(
            churn,
            "ec48226f714259ccec568f84efe4d40c9f2eb200d3c50139a6bc3b69833ad5fc"
        );
    }

    #[test]
    fn hex_writes_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn change_hashes_are_xxh3_and_keys_stay_sha256() {
        let e = entry(None, None, "Port strike ends");
        let change = change_hash(&e);
        assert!(is_current_hash(&change), "{change}");
        assert_eq!(change.len(), 3 + 32);
        assert!(is_current_hash(&churn_hash(&e)));
        // A SHA-256 change hash stored by an older version is another format.
        assert!(!is_current_hash(&hex(&digest(&["Port strike ends"]))));
        // The hash key is the same SHA-256 it always was (keys never change).
        assert_eq!(
            hash_key(&e),
            "hash:0dfe99342e1ddcbc8c9579f24165cb4dac0bfe6747a4b077360f7af73c1eca3f"
        );
    }

    #[test]
    fn the_streamed_churn_hash_is_the_hash_of_the_masked_text() {
        for text in [
            "",
            "no digits",
            "9",
            "at 12:05, 3 ships; 2026",
            "x1y22z333",
            "ünï 4 ü5",
        ] {
            let parts = [text, "https://a.example/7", "Reporter 3", text, ""];
            let masked = mask_digit_runs(text);
            let expected = hex_digest(&[&masked, parts[1], parts[2], &masked, ""]);
            assert_eq!(
                hex_digest_masked(&parts, [true, false, false, true, true]),
                expected,
                "{text}"
            );
        }
    }

    fn entry(guid: Option<&str>, link: Option<&str>, title: &str) -> ParsedEntry {
        ParsedEntry {
            guid: guid.map(String::from),
            link: link.map(String::from),
            title: title.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn key_prefers_guid_then_link_then_hash() {
        assert_eq!(
            entry_key(&entry(Some("g1"), Some("http://a/"), "t")),
            "guid:g1"
        );
        assert_eq!(
            entry_key(&entry(None, Some("http://a/"), "t")),
            "link:http://a/"
        );
        let hashed = entry_key(&entry(None, None, "t"));
        assert!(hashed.starts_with("hash:"));
        assert_eq!(
            hashed,
            entry_key(&entry(None, None, "t")),
            "stable across polls"
        );
        assert_ne!(hashed, entry_key(&entry(None, None, "u")));
    }

    #[test]
    fn repeated_guids_lose_no_entry() {
        // One repeated guid among many: only those entries step down a rung.
        let mut entries: Vec<ParsedEntry> = (0..40)
            .map(|i| entry(Some(&format!("g{i}")), Some(&format!("http://a/{i}")), "t"))
            .collect();
        entries.push(entry(Some("g0"), Some("http://a/other"), "other"));
        let (rung, got) = identify_at(entries, Rung::Guid, DEFAULT_TOLERANCE);
        assert_eq!(rung, Rung::Guid);
        assert_eq!(got.len(), 41);
        assert_eq!(got[1].key, "guid:g1");
        assert_eq!(got[0].key, "link:http://a/0");
        assert_eq!(got[40].key, "link:http://a/other");
        // A feed that gives every item the same guid moves to links entirely.
        let same: Vec<ParsedEntry> = (0..5)
            .map(|i| entry(Some("same"), Some(&format!("http://a/{i}")), "t"))
            .collect();
        let (rung, got) = identify_at(same, Rung::Guid, DEFAULT_TOLERANCE);
        assert_eq!(rung, Rung::Link);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|e| e.key.starts_with("link:")));
        // No guid, no link: distinct titles stay distinct; identical items collapse.
        let bare = vec![
            entry(None, None, "a"),
            entry(None, None, "b"),
            entry(None, None, "a"),
        ];
        let (rung, got) = identify_at(bare, Rung::Guid, DEFAULT_TOLERANCE);
        assert_eq!(rung, Rung::Hash);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_feed_keeps_the_rung_it_was_moved_to() {
        let entries = vec![entry(Some("g"), Some("http://a/1"), "t")];
        let (rung, got) = identify_at(entries, Rung::Link, DEFAULT_TOLERANCE);
        assert_eq!(rung, Rung::Link);
        assert_eq!(got[0].key, "link:http://a/1");
    }

    #[test]
    fn canonical_urls_drop_tracking_fragments_and_default_ports() {
        assert_eq!(
            canonical_url(
                " HTTPS://News.Example:443/a/b?z=1&utm_source=x&fbclid=abc&a=2&gclid=q&UTM_Medium=m#top "
            ),
            "https://news.example/a/b?a=2&z=1"
        );
        assert_eq!(
            canonical_url("http://news.example:80/a?utm_campaign=c&mc_cid=1"),
            "http://news.example/a"
        );
        assert_eq!(
            canonical_url("http://news.example:8080/a?b=2&a=1"),
            "http://news.example:8080/a?a=1&b=2"
        );
        assert_eq!(canonical_url("not a url"), "not a url");
    }

    #[test]
    fn change_hash_ignores_dates_and_markup_but_churn_hash_ignores_digits() {
        let mut a = entry(Some("g"), None, "Storm");
        a.content = Some("<p>Updated 10:15. Roads closed.</p>".into());
        let mut b = a.clone();
        b.published = Some(chrono::Utc::now());
        b.content = Some("<div>Updated 10:15.  Roads <b>closed</b>.</div>".into());
        assert_eq!(change_hash(&a), change_hash(&b));
        b.content = Some("<p>Updated 10:45. Roads closed.</p>".into());
        assert_ne!(change_hash(&a), change_hash(&b));
        assert_eq!(churn_hash(&a), churn_hash(&b));
        b.content = Some("<p>Updated 10:45. Roads open.</p>".into());
        assert_ne!(churn_hash(&a), churn_hash(&b));
    }

    #[test]
    fn uids_are_stable_uuid_urns() {
        let t = |ms| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap();
        let n = new_entry_uid("urn:uuid:f", "guid:1", t(1_764_000_000_000));
        assert_eq!(
            n,
            new_entry_uid("urn:uuid:f", "guid:1", t(1_764_000_000_000))
        );
        assert_ne!(
            n,
            new_entry_uid("urn:uuid:f", "guid:2", t(1_764_000_000_000))
        );
        assert_eq!(n.len(), "urn:uuid:".len() + 36);
        assert_eq!(&n[9 + 14..9 + 15], "7", "version 7: {n}");
        assert!(
            matches!(&n[9 + 19..9 + 20], "8" | "9" | "a" | "b"),
            "variant: {n}"
        );
        // Later entries sort after earlier ones, whatever their keys.
        let later = new_entry_uid("urn:uuid:a", "guid:0", t(1_764_000_000_001));
        assert!(later > n, "{later} > {n}");
        let a = entry_uid("urn:uuid:f", "guid:1");
        assert_eq!(a, entry_uid("urn:uuid:f", "guid:1"));
        assert_ne!(a, entry_uid("urn:uuid:f", "guid:2"));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[9 + 14..9 + 15], "8");
    }

    #[test]
    fn change_hash_sees_title_and_content_edits() {
        let a = entry(Some("g"), None, "t");
        let mut b = a.clone();
        assert_eq!(change_hash(&a), change_hash(&b));
        b.content = Some("<p>new</p>".into());
        assert_ne!(change_hash(&a), change_hash(&b));
    }
}
