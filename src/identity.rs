//! Which entry is which: keys within a feed, change hashes and permanent ids.

use sha2::{Digest, Sha256};

use crate::model::{IdentifiedEntry, ParsedEntry};

/// Gives each parsed entry its identity within the feed: its guid, else its
/// link, else a hash of title and content. Entries whose key repeats within one
/// document keep the first occurrence only (a feed that repeats a guid would
/// otherwise overwrite one item with another in the same poll).
pub fn identify(entries: Vec<ParsedEntry>) -> Vec<IdentifiedEntry> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter_map(|entry| {
            let key = entry_key(&entry);
            if !seen.insert(key.clone()) {
                return None;
            }
            Some(IdentifiedEntry {
                hash: change_hash(&entry),
                key,
                entry,
            })
        })
        .collect()
}

/// `guid:…`, `link:…` or `hash:…`.
pub fn entry_key(entry: &ParsedEntry) -> String {
    if let Some(guid) = &entry.guid {
        format!("guid:{guid}")
    } else if let Some(link) = &entry.link {
        format!("link:{link}")
    } else {
        let body = entry
            .content
            .as_deref()
            .or(entry.summary.as_deref())
            .unwrap_or("");
        format!("hash:{}", hex_digest(&[&entry.title, body]))
    }
}

/// Hash of what the reader sees; when it changes the entry counts as updated.
pub fn change_hash(entry: &ParsedEntry) -> String {
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map(|d| d.timestamp().to_string()).unwrap_or_default()
    };
    hex_digest(&[
        &entry.title,
        entry.link.as_deref().unwrap_or(""),
        entry.author.as_deref().unwrap_or(""),
        entry.summary.as_deref().unwrap_or(""),
        entry.content.as_deref().unwrap_or(""),
        entry.rights.as_deref().unwrap_or(""),
        &date(entry.published),
    ])
}

/// A permanent, globally unique id for a published entry, derived from the
/// feed's permanent id and the entry's key, as a name-based UUID URN.
pub fn entry_uid(feed_uid: &str, key: &str) -> String {
    uuid_urn(&[feed_uid, key])
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
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
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

fn hex_digest(parts: &[&str]) -> String {
    digest(parts).iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn repeated_keys_keep_the_first_entry() {
        let got = identify(vec![
            entry(Some("g"), None, "first"),
            entry(Some("g"), None, "second"),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].entry.title, "first");
    }

    #[test]
    fn uids_are_stable_uuid_urns() {
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
