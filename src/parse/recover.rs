//! When feed-rs refuses a whole document: one odd element must not cost a
//! whole feed. The document is parsed again without its entries (the
//! skeleton: feed title, links, dates), then once per entry with only that
//! entry in the skeleton; the entries that parse are kept, and each that does
//! not is named in a warning.
//!
//! This runs only after a failure, so documents feed-rs reads cost nothing
//! more. Its cost is one parse of the skeleton per entry: for a 500-entry
//! document with a 2 kB skeleton, about 1 MB of extra parsing.

use std::ops::Range;

use quick_xml::events::Event;

/// At most this many entries are tried one by one (a document with more is
/// read up to here, and says so).
const MAX_ENTRIES: usize = 5_000;

/// The feed from the skeleton with every entry that parses alone, and a
/// warning per entry dropped; `None` if even the skeleton does not parse (or
/// the document has no entries to separate).
pub fn recover<F, E>(text: &str, parse: F) -> Option<(feed_rs::model::Feed, Vec<String>)>
where
    F: Fn(&str) -> Result<feed_rs::model::Feed, E>,
    E: std::fmt::Display,
{
    let spans = entry_spans(text);
    let first = spans.first()?.start;
    let mut skeleton = String::with_capacity(text.len());
    let mut at = 0;
    for span in &spans {
        skeleton.push_str(text.get(at..span.start)?);
        at = span.end;
    }
    skeleton.push_str(text.get(at..)?);
    let mut feed = parse(&skeleton).ok()?;
    feed.entries.clear();
    let mut warnings = Vec::new();
    let (head, tail) = skeleton.split_at(first);
    for (i, span) in spans.iter().take(MAX_ENTRIES).enumerate() {
        let Some(entry) = text.get(span.clone()) else {
            continue;
        };
        let alone = format!("{head}{entry}{tail}");
        match parse(&alone) {
            Ok(one) => feed.entries.extend(one.entries),
            Err(e) => warnings.push(format!(
                "entry {} of {} dropped: {}",
                i + 1,
                spans.len(),
                short(&e.to_string())
            )),
        }
    }
    if spans.len() > MAX_ENTRIES {
        warnings.push(format!(
            "only the first {MAX_ENTRIES} of {} entries were tried one by one",
            spans.len()
        ));
    }
    Some((feed, warnings))
}

/// The byte ranges of the document's entries (`<item>` and `<entry>`
/// elements not inside another), in order, up to the first XML error.
pub fn entry_spans(text: &str) -> Vec<Range<usize>> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut spans = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let local = e.local_name();
                if matches!(local.as_ref(), b"item" | b"entry" | b"ITEM") {
                    let name = e.name().as_ref().to_vec();
                    if reader.read_to_end(quick_xml::name::QName(&name)).is_err() {
                        break;
                    }
                    spans.push(before..reader.buffer_position() as usize);
                }
            }
            Ok(Event::Empty(e)) => {
                if matches!(e.local_name().as_ref(), b"item" | b"entry") {
                    spans.push(before..reader.buffer_position() as usize);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    spans
}

fn short(error: &str) -> String {
    match error.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_at_any_depth_but_not_inside_each_other() {
        let text = "<rss><channel><item><a><item/></a></item><x/><item>2</item></channel></rss>";
        let spans = entry_spans(text);
        let found: Vec<&str> = spans.iter().map(|s| &text[s.clone()]).collect();
        assert_eq!(found, ["<item><a><item/></a></item>", "<item>2</item>"]);
    }
}
