//! Near-duplicate detection: shingled MinHash fingerprints of an entry's title
//! and text, compared by estimated containment within a time window.
//!
//! The text is normalised (tags dropped, entities decoded, lower-cased, every
//! run of non-alphanumeric characters a word break, so typography, markup and
//! punctuation do not matter), cut into overlapping [`SHINGLE_WORDS`]-word
//! shingles, and summarised by a MinHash signature of [`SIGNATURE_LEN`] values
//! made with one hash per shingle (one permutation hashing: the hash picks a
//! bin, each bin keeps its least value, empty bins are densified). The share of
//! equal values estimates the Jaccard similarity J of the two shingle sets; with the set sizes kept beside the
//! signature, that gives the intersection `J·(|A|+|B|)/(1+J)` and so the
//! containment of the smaller set in the larger. Containment, not Jaccard, is
//! compared with the threshold: a repost that drops its last paragraph or adds
//! a disclaimer and a newsletter plug is still mostly *contained* in the
//! original, while two reports written from one template share only a few
//! shingles because every sentence carries different names and figures.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

/// Words per shingle. Part of the stored format: changing it (or the hashing)
/// means bumping [`FORMAT`]; the store then works out the fingerprints of
/// recent entries again (`store::story_index::upgrade_fingerprints`).
pub const SHINGLE_WORDS: usize = 4;
/// Hash functions in a signature.
pub const SIGNATURE_LEN: usize = 128;
/// Version byte of the stored fingerprint.
pub const FORMAT: u8 = 3;
/// log₂ [`SIGNATURE_LEN`]: the hash bits that pick a shingle's bin.
const BIN_BITS: u32 = 7;
/// A bin no shingle fell into (before densification).
const EMPTY: u16 = u16::MAX;
/// Seeds the one hash of each shingle.
const OPH_SEED: u64 = 0x5851_f42d_4c95_7f2d;
const _: () = assert!(1 << BIN_BITS == SIGNATURE_LEN);

/// How entries are matched into stories.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchSettings {
    /// Near-duplicate matching on or off (same canonical link always merges).
    pub enabled: bool,
    /// Estimated containment at or above which two entries are one story.
    pub threshold: f64,
    /// Entries further apart in time than this are never one story.
    pub window: chrono::Duration,
    /// Texts with fewer shingles than this are too short to judge.
    pub min_shingles: u32,
}

impl Default for MatchSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0.5,
            window: chrono::Duration::hours(48),
            min_shingles: 8,
        }
    }
}

/// A MinHash signature with the size of the shingle set it summarises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub shingles: u32,
    /// One 16-bit value per bin: two different shingles' values are equal
    /// by chance once in 65,536, too rarely to move an estimate.
    pub signature: Vec<u16>,
}

/// Below this many shingles (a paragraph or two) a text is short enough that
/// shared boilerplate alone ("Click here to read the full article on our
/// website.") could make two items look contained in each other; such short
/// items must also share most of their headline's words.
pub const SHORT_TEXT_SHINGLES: u32 = 40;
/// Share of the shorter headline's distinct words the other must contain,
/// for short texts.
pub const SHORT_TEXT_TITLE_OVERLAP: f64 = 0.5;

/// One entry as the matcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub fingerprint: Fingerprint,
    pub time: DateTime<Utc>,
    pub title: String,
}

/// The normalised words of a text or HTML fragment.
pub fn words(text: &str) -> Vec<String> {
    normalised_text(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The text of a text or HTML fragment: tags dropped, entities decoded.
/// Borrowed when there is neither markup nor an entity to take out.
pub(crate) fn visible_text(text: &str) -> Cow<'_, str> {
    let stripped = if text.contains('<') {
        // Each tag becomes one space; the text between tags is copied a run
        // at a time ('<' and '>' are ASCII, so every cut is on a character
        // boundary). An unclosed tag runs to the end.
        let mut plain = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            plain.push_str(&rest[..open]);
            plain.push(' ');
            rest = rest[open..]
                .find('>')
                .map_or("", |close| &rest[open + close + 1..]);
        }
        plain.push_str(rest);
        Cow::Owned(plain)
    } else {
        Cow::Borrowed(text)
    };
    if !stripped.contains('&') {
        return stripped;
    }
    match html_escape::decode_html_entities(&stripped) {
        Cow::Borrowed(_) => stripped,
        Cow::Owned(decoded) => Cow::Owned(decoded),
    }
}

/// The normalised words of a text or HTML fragment (tags dropped, entities
/// decoded, lower-cased, every run of non-alphanumeric characters one word
/// break) joined by single spaces. Change hashes and fingerprints are both
/// worked out from this one pass over the text.
pub fn normalised_text(text: &str) -> String {
    normalise(&visible_text(text))
}

/// An ASCII byte's lower-case form if it is a letter or a digit, else 0 (a
/// word break).
const ASCII_WORD: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// The one normalising pass over visible text. Runs of ASCII go through
/// [`ASCII_WORD`] without a branch per byte (each byte is written, as its
/// lower-case form or as a space, and the write position moves on unless it
/// was a second break in a row): word lengths are too irregular for branches
/// to predict (this took half the time of a loop that copied a word at a
/// time). Other characters are taken one at a time.
fn normalise(visible: &str) -> String {
    let bytes = visible.as_bytes();
    // Each word is followed by one space (the last one is cut off at the
    // end). An ASCII byte writes at most one byte; `room` keeps space for
    // what is left of the input, and more is made before a wider character.
    let mut out = vec![0u8; bytes.len() + 1];
    let mut at = 0;
    let mut in_word = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            let lower = ASCII_WORD[usize::from(b)];
            let is_word = lower != 0;
            out[at] = if is_word { lower } else { b' ' };
            at += usize::from(is_word | in_word);
            in_word = is_word;
            i += 1;
            continue;
        }
        // `i` only ever moves by whole characters, so it is on a boundary.
        let c = visible[i..]
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        i += c.len_utf8();
        let room = at + 16 + (bytes.len() - i);
        if out.len() < room {
            out.resize(room, 0);
        }
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                at += lower.encode_utf8(&mut out[at..]).len();
            }
            in_word = true;
        } else if in_word {
            out[at] = b' ';
            at += 1;
            in_word = false;
        }
    }
    // The space after the last word.
    if at > 0 && !in_word {
        at -= 1;
    }
    out.truncate(at);
    // Only ASCII bytes and whole characters were written, so this is UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// FNV-1a hashes of the words of texts already normalised by
/// [`normalised_text`], appended to `out`.
fn word_hashes(normalised: &str, out: &mut Vec<u64>) {
    let mut h: Option<u64> = None;
    for b in normalised.bytes() {
        if b == b' ' {
            out.extend(h.take());
        } else {
            let acc = h.unwrap_or(FNV_OFFSET);
            h = Some((acc ^ u64::from(b)).wrapping_mul(FNV_PRIME));
        }
    }
    out.extend(h);
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Fingerprint {
    /// The fingerprint of a title and a body (text or HTML); `None` when they
    /// hold no words at all.
    pub fn of(title: &str, body: &str) -> Option<Self> {
        Self::of_normalised(&normalised_text(title), &normalised_text(body))
    }

    /// [`Fingerprint::of`] for a title and body already normalised by
    /// [`normalised_text`].
    pub fn of_normalised(title: &str, body: &str) -> Option<Self> {
        let mut all = Vec::new();
        word_hashes(title, &mut all);
        word_hashes(body, &mut all);
        Self::of_words(&all)
    }

    /// The fingerprint of a text given as its words' hashes, in order.
    fn of_words(all: &[u64]) -> Option<Self> {
        if all.is_empty() {
            return None;
        }
        let mut shingles: Vec<u64> = all
            .windows(SHINGLE_WORDS.min(all.len()))
            .map(|w| w.iter().fold(FNV_OFFSET, |acc, &x| mix(acc ^ x)))
            .collect();
        shingles.sort_unstable();
        shingles.dedup();
        // One permutation hashing: each shingle is hashed once; the top bits
        // pick one of SIGNATURE_LEN bins and the bin keeps the least of the
        // low bits that fall into it. Format 2 took the minimum of 128 hash
        // functions over every shingle, 128 times the work.
        let mut bins = [EMPTY; SIGNATURE_LEN];
        for &s in &shingles {
            let h = mix(s ^ OPH_SEED);
            let bin = (h >> (64 - BIN_BITS)) as usize;
            let value = (h as u16).min(EMPTY - 1);
            bins[bin] = bins[bin].min(value);
        }
        let signature = densified(&bins);
        Some(Self {
            shingles: shingles.len() as u32,
            signature,
        })
    }

    /// Estimated Jaccard similarity of the two shingle sets.
    pub fn jaccard(&self, other: &Self) -> f64 {
        let n = self.signature.len().min(other.signature.len());
        if n == 0 {
            return 0.0;
        }
        let equal = self
            .signature
            .iter()
            .zip(&other.signature)
            .filter(|(a, b)| a == b)
            .count();
        equal as f64 / n as f64
    }

    /// Estimated share of the smaller shingle set found in the larger.
    pub fn containment(&self, other: &Self) -> f64 {
        let j = self.jaccard(other);
        let smaller = self.shingles.min(other.shingles);
        if smaller == 0 {
            return 0.0;
        }
        let intersection = j * f64::from(self.shingles + other.shingles) / (1.0 + j);
        (intersection / f64::from(smaller)).min(1.0)
    }

    /// The stored form: a format byte, the set size, then the signature, all
    /// little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 2 * self.signature.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.shingles.to_le_bytes());
        for v in &self.signature {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads the stored form; `None` for another format or a damaged value.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&format, rest) = bytes.split_first()?;
        if format != FORMAT || rest.len() != 4 + 2 * SIGNATURE_LEN {
            return None;
        }
        let (count, values) = rest.split_at(4);
        Some(Self {
            shingles: u32::from_le_bytes([count[0], count[1], count[2], count[3]]),
            signature: values
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        })
    }
}

/// Locality-sensitive hashing over the signature: [`BANDS`] bands of
/// [`BAND_ROWS`] values each. Two fingerprints with Jaccard similarity J share
/// at least one band with probability 1 − (1 − J³)^42: 0.68 at J = 0.3, 0.93 at
/// 0.4, 0.996 at 0.5, and 0.005 at 0.05. The store only compares an entry with
/// stories that share a band, instead of with every story in the window.
pub const BANDS: usize = 42;
/// Signature values per band.
pub const BAND_ROWS: usize = 3;

impl Fingerprint {
    /// One key per band (band number and its values, hashed).
    pub fn band_keys(&self) -> Vec<u64> {
        self.signature
            .chunks_exact(BAND_ROWS)
            .take(BANDS)
            .enumerate()
            .map(|(band, values)| {
                values
                    .iter()
                    .fold(seed(band + SIGNATURE_LEN), |h, v| mix(h ^ u64::from(*v)))
            })
            .collect()
    }

    /// Whether the two would be compared at all: they share a band.
    pub fn shares_a_band(&self, other: &Self) -> bool {
        let mine: std::collections::HashSet<u64> = self.band_keys().into_iter().collect();
        other.band_keys().iter().any(|k| mine.contains(k))
    }
}

/// Whether two entries are the same story by their text: both long enough to
/// judge, within the window of each other, and the smaller contained in the
/// larger at least up to the threshold; for short texts, with most of one
/// headline's words in the other.
pub fn same_story(a: &Candidate, b: &Candidate, settings: &MatchSettings) -> bool {
    let shorter = a.fingerprint.shingles.min(b.fingerprint.shingles);
    settings.enabled
        && shorter >= settings.min_shingles
        && (a.time - b.time).abs() <= settings.window
        && a.fingerprint.containment(&b.fingerprint) >= settings.threshold
        && (shorter >= SHORT_TEXT_SHINGLES
            || title_overlap(&a.title, &b.title) >= SHORT_TEXT_TITLE_OVERLAP)
}

/// Share of the shorter headline's distinct words found in the other.
pub fn title_overlap(a: &str, b: &str) -> f64 {
    let a: std::collections::HashSet<String> = words(a).into_iter().collect();
    let b: std::collections::HashSet<String> = words(b).into_iter().collect();
    let smaller = a.len().min(b.len());
    if smaller == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / smaller as f64
}

/// splitmix64's finaliser: a fast, well-mixed 64-bit permutation.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills each empty bin from a non-empty one chosen by a fixed sequence of
/// bins for that empty bin ("optimal densification", Shrivastava 2017): two
/// texts that both lack shingles in bin i look in the same places, so equal
/// values still mean shared shingles with probability J, as in MinHash.
fn densified(bins: &[u16; SIGNATURE_LEN]) -> Vec<u16> {
    let mut out = bins.to_vec();
    if bins.iter().all(|&v| v == EMPTY) {
        return out;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let mut attempt: u64 = 0;
        while *slot == EMPTY {
            let probe = mix(seed(i) ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            *slot = bins[(probe >> (64 - BIN_BITS)) as usize];
            attempt += 1;
        }
    }
    out
}

fn seed(i: usize) -> u64 {
    mix((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words as fingerprint format 2 defined them: every alphanumeric
    /// run of the visible text, each character lower-cased, FNV-1a over its
    /// UTF-8 bytes (the definition before hashes and fingerprints shared one
    /// normalisation pass).
    fn format_2_word_hashes(text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        let mut current: Option<u64> = None;
        let mut buf = [0u8; 4];
        for c in visible_text(text).chars() {
            if c.is_alphanumeric() {
                let mut h = current.unwrap_or(FNV_OFFSET);
                for lower in c.to_lowercase() {
                    for b in lower.encode_utf8(&mut buf).as_bytes() {
                        h = (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
                    }
                }
                current = Some(h);
            } else if let Some(h) = current.take() {
                out.push(h);
            }
        }
        out.extend(current);
        out
    }

    /// Tags dropped a character at a time, as before runs were copied whole.
    fn visible_text_by_chars(text: &str) -> String {
        let mut plain = String::new();
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    plain.push(' ');
                }
                '>' if in_tag => in_tag = false,
                _ if !in_tag => plain.push(c),
                _ => {}
            }
        }
        plain
    }

    /// The plain definition: tags dropped a character at a time, entities
    /// decoded, every alphanumeric character lower-cased, every run of
    /// anything else one space.
    fn normalised_by_definition(text: &str) -> String {
        let visible = visible_text_by_chars(text);
        let decoded = html_escape::decode_html_entities(&visible);
        let mut out = String::new();
        let mut gap = false;
        for c in decoded.chars() {
            if c.is_alphanumeric() {
                if gap && !out.is_empty() {
                    out.push(' ');
                }
                gap = false;
                out.extend(c.to_lowercase());
            } else {
                gap = true;
            }
        }
        out
    }

    /// A fixed xorshift sequence: the same random inputs on every run.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn the_fast_normalisation_matches_the_plain_definition() {
        const PIECES: &[&str] = &[
            "<p>",
            "</p>",
            "<a href=\"x\">",
            "<br/>",
            "<",
            ">",
            "&amp;",
            "&lt;b&gt;",
            "&#233;",
            "&nbsp;",
            "&bogus",
            "Ü",
            "ß",
            "İ",
            "ǅ",
            "日本",
            "’",
            "—",
            " ",
            "\n",
            "-",
            "9",
            "42",
            "Word",
            "café",
            "NAÏVE",
            "x1y2",
            "..",
        ];
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            assert_eq!(
                normalised_text(&text),
                normalised_by_definition(&text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn fingerprints_of_normalised_text_match_the_definition() {
        // Few distinct words, so that texts repeat shingles, and a few
        // pieces that are not words at all.
        const WORDS: &[&str] = &[
            "port",
            "strike",
            "ends",
            "Port",
            "café",
            "İstanbul",
            "42",
            "<b>",
            "—",
            "&amp;",
        ];
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..3_000 {
            let mut text = |most: u64| -> String {
                let len = next() % most;
                (0..len)
                    .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (title, body) = (text(6), text(400));
            // The words as format 2 defined them, shingled the same way.
            let mut words = format_2_word_hashes(&title);
            words.extend(format_2_word_hashes(&body));
            assert_eq!(
                Fingerprint::of(&title, &body),
                Fingerprint::of_words(&words),
                "{title:?} / {body:?}"
            );
        }
    }

    #[test]
    fn tags_are_dropped_as_they_were_one_character_at_a_time() {
        for html in [
            "<p>Plain <b>bold</b> and <a href=\"x\">a link</a>.</p>",
            "Über <em>straße</em>—café <br/>naïve",
            "an <unclosed tag that runs to the end",
            "a <tag with <nested> angle> brackets",
            "stray > closing and <i>x</i>>",
            "<<>>twice<><>",
            "日本<span>語</span>のテキスト",
        ] {
            assert_eq!(
                normalised_text(html),
                normalised_text(&visible_text_by_chars(html)),
                "{html}"
            );
        }
    }

    #[test]
    fn word_hashes_of_the_normalised_text_keep_format_2() {
        let text = "<p>It&#8217;s <b>HERE</b>&nbsp;— now, Ünïcode ΑΒΓ 42x İstanbul Straße</p>";
        let mut hashes = Vec::new();
        word_hashes(&normalised_text(text), &mut hashes);
        assert_eq!(hashes.len(), 9);
        assert_eq!(hashes, format_2_word_hashes(text));
        assert_eq!(normalised_text("  <p>  </p> "), "");
        assert_eq!(normalised_text("a&amp;b <i>C</i>"), "a b c");
        assert_eq!(normalised_text("plain Words"), "plain words");
        // ASCII and other letters in one word; a non-ASCII separator.
        assert_eq!(normalised_text("CaféBar 12—x ÆON,b"), "cafébar 12 x æon b");
        let mixed = "CaféBar 12—x ÆON,b ü";
        let mut hashes = Vec::new();
        word_hashes(&normalised_text(mixed), &mut hashes);
        assert_eq!(hashes, format_2_word_hashes(mixed));
        // Lower-casing that widens a character ('İ' is two bytes, "i̇"
        // three) makes room as it goes.
        let wide = "İ".repeat(300);
        assert_eq!(normalised_text(&wide), normalised_by_definition(&wide));
    }

    const WIRE: &str = "<p>Dockworkers at the Port of Calder returned to work on Wednesday after union leaders and terminal operators agreed to a four-year contract, ending a nine-day strike that had stranded more than 40 container ships offshore.</p><p>The deal raises wages by 14 percent over the life of the contract and limits the introduction of automated cranes until 2029.</p>";

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::hours(hours)
    }

    #[test]
    fn words_ignore_markup_entities_case_and_typography() {
        assert_eq!(
            words("<p>It&#8217;s <b>HERE</b>&nbsp;— now</p>"),
            vec!["it", "s", "here", "now"]
        );
        assert_eq!(words("It’s here - now"), words("it's   HERE — now"));
    }

    #[test]
    fn a_repost_with_a_disclaimer_is_contained_in_the_original() {
        let a = Fingerprint::of("Port strike ends", WIRE).unwrap();
        let reposted = format!(
            "{WIRE}<p>This story was originally published by Meridian Wire. Copyright belongs to the original author.</p>"
        );
        let b = Fingerprint::of("Port strike ends | Harbour Gazette", &reposted).unwrap();
        assert!(a.containment(&b) > 0.7, "{}", a.containment(&b));
        let s = MatchSettings::default();
        let ca = Candidate {
            fingerprint: a,
            time: at(0),
            title: "Port strike ends".into(),
        };
        let cb = Candidate {
            fingerprint: b,
            time: at(3),
            title: "Port strike ends | Harbour Gazette".into(),
        };
        assert!(same_story(&ca, &cb, &s));
        // Outside the window, or with matching off, it is not.
        let late = Candidate {
            time: at(100),
            ..cb.clone()
        };
        assert!(!same_story(&ca, &late, &s));
        let off = MatchSettings {
            enabled: false,
            ..s
        };
        assert!(!same_story(&ca, &cb, &off));
    }

    #[test]
    fn a_different_story_on_the_same_topic_is_not_contained() {
        let a = Fingerprint::of("Port strike ends", WIRE).unwrap();
        let b = Fingerprint::of(
            "Port strike enters second week",
            "<p>Dockworkers at the Port of Calder stayed off work for a second week on Monday, and union leaders said talks with terminal operators had broken down over pay and automated cranes.</p>",
        )
        .unwrap();
        // Far below the 0.5 threshold (128 values estimate within about ±0.05).
        assert!(a.containment(&b) < 0.25, "{}", a.containment(&b));
    }

    #[test]
    fn short_items_sharing_only_boilerplate_need_a_shared_headline() {
        let generic = "<p>Click here to read the full article on our website.</p>";
        let item = |title: &str| Candidate {
            fingerprint: Fingerprint::of(title, generic).unwrap(),
            time: at(0),
            title: title.into(),
        };
        let (storm, budget) = (item("Storm hits coast"), item("Council approves budget"));
        let s = MatchSettings::default();
        assert!(storm.fingerprint.containment(&budget.fingerprint) >= s.threshold);
        assert!(!same_story(&storm, &budget, &s));
        assert!(same_story(&storm, &item("UPDATE: Storm hits coast"), &s));
        assert_eq!(
            title_overlap("Storm hits coast", "storm HITS the coast!"),
            1.0
        );
        assert_eq!(title_overlap("", "x"), 0.0);
    }

    #[test]
    fn fingerprints_round_trip_and_reject_other_formats() {
        let a = Fingerprint::of("t", WIRE).unwrap();
        assert_eq!(Fingerprint::from_bytes(&a.to_bytes()), Some(a.clone()));
        let mut bytes = a.to_bytes();
        bytes[0] = 99;
        assert_eq!(Fingerprint::from_bytes(&bytes), None);
        assert_eq!(Fingerprint::from_bytes(&bytes[..10]), None);
        assert_eq!(Fingerprint::of("", "<p> </p>"), None);
    }
}
