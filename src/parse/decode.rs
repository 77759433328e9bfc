//! Bytes → UTF-8 text, before any XML parser sees them.
//!
//! feed-rs (through quick-xml) trusts only the XML declaration and panics on
//! some UTF-16 input, so every document is decoded here and its declaration
//! rewritten to say UTF-8. The order is XML 1.0's Appendix F, then the labels:
//! a byte-order mark; the first bytes of `<?xml` in UTF-32, UTF-16 or EBCDIC;
//! valid UTF-8 (whatever the labels say); the HTTP charset; the declaration;
//! windows-1252, which maps every byte.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// A decoded document, and what was odd about its encoding.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// One line per oddity (an unknown label read as windows-1252, …).
    pub warnings: Vec<String>,
    /// A declared encoding newsriver cannot decode, for the error message
    /// should the document then fail to parse.
    pub unsupported: Option<String>,
}

impl<'a> Decoded<'a> {
    fn clean(text: Cow<'a, str>) -> Self {
        Decoded {
            text,
            warnings: Vec::new(),
            unsupported: None,
        }
    }
}

/// Decodes a body to UTF-8 text.
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    if let Some((big_endian, skip)) = utf32_start(body) {
        return Decoded::clean(Cow::Owned(decode_utf32(&body[skip..], big_endian)));
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        let (text, _) = encoding.decode_without_bom_handling(&body[bom_len..]);
        return Decoded::clean(text);
    }
    // UTF-16 without a byte-order mark: `<?` as 16-bit units.
    if body.starts_with(&[0x3C, 0x00, 0x3F, 0x00]) {
        return Decoded::clean(UTF_16LE.decode_without_bom_handling(body).0);
    }
    if body.starts_with(&[0x00, 0x3C, 0x00, 0x3F]) {
        return Decoded::clean(UTF_16BE.decode_without_bom_handling(body).0);
    }
    // `<?xm` or `<!--` in EBCDIC: the declaration says which code page.
    if body.starts_with(&[0x4C, 0x6F, 0xA7, 0x94]) || body.starts_with(&[0x4C, 0x5A, 0x60, 0x60]) {
        return decode_ebcdic(body);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        return Decoded::clean(Cow::Borrowed(text));
    }
    let http = content_type.and_then(charset_of_content_type);
    let declared = xml_declared_encoding(body);
    let mut warnings = Vec::new();
    let mut unsupported = None;
    let mut choice = None;
    for label in [http.as_deref(), declared.as_deref()].into_iter().flatten() {
        match Encoding::for_label(label.trim().as_bytes()) {
            Some(e) => {
                choice = Some(e);
                break;
            }
            None => {
                warnings.push(format!(
                    "unknown character encoding {label:?}; read as windows-1252"
                ));
                unsupported.get_or_insert_with(|| label.to_string());
            }
        }
    }
    // A UTF-8 label on bytes that are not UTF-8 is the classic mislabel.
    let encoding = match choice {
        Some(e) if e != UTF_8 => e,
        _ => WINDOWS_1252,
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    Decoded {
        text,
        warnings,
        unsupported,
    }
}

/// UTF-32 by its byte-order mark or by `<` as a 32-bit unit: (big endian, bytes to skip).
fn utf32_start(body: &[u8]) -> Option<(bool, usize)> {
    match body.get(..4)? {
        [0x00, 0x00, 0xFE, 0xFF] => Some((true, 4)),
        [0xFF, 0xFE, 0x00, 0x00] => Some((false, 4)),
        [0x00, 0x00, 0x00, 0x3C] => Some((true, 0)),
        [0x3C, 0x00, 0x00, 0x00] => Some((false, 0)),
        _ => None,
    }
}

/// UTF-32 (which encoding_rs, following the WHATWG standard, leaves out):
/// anything that is not a scalar value becomes U+FFFD.
fn decode_utf32(body: &[u8], big_endian: bool) -> String {
    body.chunks(4)
        .map(|unit| {
            let bytes: [u8; 4] = unit.try_into().unwrap_or([0, 0, 0xFF, 0xFD]);
            let value = if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            };
            char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
        })
        .collect()
}

/// EBCDIC: read the declaration in code page 037 (its letters, digits and
/// punctuation are the same in every EBCDIC code page), then decode the
/// whole document in the page it names.
fn decode_ebcdic(body: &[u8]) -> Decoded<'_> {
    let head = body.get(..body.len().min(400)).unwrap_or(body);
    let head = decode_with("IBM037", head).unwrap_or_default();
    let label = xml_declared_encoding(head.as_bytes()).unwrap_or_else(|| "cp037".into());
    let (name, euro) = ebcdic_name(&label);
    match name.and_then(|n| decode_with(n, body)) {
        Some(mut text) => {
            if euro {
                // The 114x pages are their 0xx page with the euro sign at 0x9F.
                text = text.replace('\u{A4}', "\u{20AC}");
            }
            Decoded::clean(Cow::Owned(text))
        }
        // Not decoded at all rather than decoded wrong.
        None => Decoded {
            text: Cow::Borrowed(""),
            warnings: vec![format!("unsupported character encoding {label:?}")],
            unsupported: Some(label),
        },
    }
}

/// The anyxml-encoding name of an EBCDIC label, as Python names them (the
/// labels feeds use), and whether it is a euro variant.
fn ebcdic_name(label: &str) -> (Option<&'static str>, bool) {
    let l = label.trim().to_ascii_lowercase().replace('_', "-");
    let name = match l.as_str() {
        "cp037" | "ibm037" | "ibm039" | "csibm037" | "ebcdic-cp-us" | "ebcdic-cp-ca"
        | "ebcdic-cp-wt" | "ebcdic-cp-nl" | "037" => Some("IBM037"),
        "cp1140" | "ibm1140" | "1140" => return (Some("IBM037"), true),
        "cp500" | "ibm500" | "csibm500" | "ebcdic-cp-be" | "ebcdic-cp-ch" | "500" => Some("IBM500"),
        "cp273" | "ibm273" | "csibm273" => Some("IBM273"),
        "cp1026" | "ibm1026" | "csibm1026" => Some("IBM1026"),
        "cp424" | "ibm424" | "csibm424" | "ebcdic-cp-he" => Some("IBM424"),
        other => anyxml_encoding::resolve_encoding_alias(other)
            .filter(|n| n.starts_with("IBM"))
            .or_else(|| {
                let upper = other.to_ascii_uppercase();
                anyxml_encoding::DEFAULT_SUPPORTED_ENCODINGS
                    .iter()
                    .copied()
                    .find(|n| *n == upper)
            }),
    };
    (name, false)
}

/// The whole of `bytes` decoded with an anyxml-encoding decoder; bytes it
/// cannot map become U+FFFD.
fn decode_with(name: &str, mut bytes: &[u8]) -> Option<String> {
    let mut decoder = anyxml_encoding::find_decoder(name)?;
    let mut out = String::with_capacity(bytes.len() + 16);
    while !bytes.is_empty() {
        out.reserve(bytes.len() * 3 + 8);
        match decoder.decode(bytes, &mut out, true) {
            Ok((0, _)) => break,
            Ok((read, _)) => bytes = bytes.get(read..).unwrap_or_default(),
            Err(anyxml_encoding::DecodeError::Malformed { read, .. }) => {
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = bytes.get(read.max(1)..).unwrap_or_default();
            }
            Err(anyxml_encoding::DecodeError::OutputTooShort) => continue,
            Err(_) => break,
        }
    }
    Some(out)
}

fn charset_of_content_type(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// The `encoding="…"` of an XML declaration, read from ASCII-compatible bytes.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let head = body.get(..body.len().min(200))?;
    let head = String::from_utf8_lossy(head);
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// The text is UTF-8 now; make the declaration agree so nothing re-decodes it.
pub fn normalise_xml_declaration(text: &str) -> Cow<'_, str> {
    if let Some(rest) = text.strip_prefix("<?xml")
        && let Some(end) = rest.find("?>")
    {
        return Cow::Owned(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>{}",
            &rest[end + 2..]
        ));
    }
    Cow::Borrowed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"ENC\"?><rss version=\"2.0\"><channel><title>Caf\u{e9} \u{20ac}</title></channel></rss>";

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if big_endian {
                [0xFE, 0xFF]
            } else {
                [0xFF, 0xFE]
            });
        }
        for unit in text.encode_utf16() {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    fn utf32(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let chars = bom.then_some('\u{FEFF}').into_iter().chain(text.chars());
        for c in chars {
            let c = c as u32;
            out.extend(if big_endian {
                c.to_be_bytes()
            } else {
                c.to_le_bytes()
            });
        }
        out
    }

    #[test]
    fn utf16_and_utf32_decode_with_and_without_a_bom() {
        for big_endian in [false, true] {
            for bom in [false, true] {
                let label = if big_endian { "utf-16be" } else { "utf-16" };
                let doc = DOC.replace("ENC", label);
                let bytes = utf16(&doc, big_endian, bom);
                let text = decode(&bytes, None).text;
                assert_eq!(text, doc, "utf-16 be={big_endian} bom={bom}");
                let doc = DOC.replace("ENC", "utf-32");
                let bytes = utf32(&doc, big_endian, bom);
                let text = decode(&bytes, None).text;
                assert_eq!(text, doc, "utf-32 be={big_endian} bom={bom}");
            }
        }
    }

    fn ebcdic(text: &str) -> Vec<u8> {
        let mut encoder = anyxml_encoding::find_encoder("IBM037").unwrap();
        let mut bytes = vec![0u8; text.len() * 4 + 16];
        let (_, written) = encoder.encode(text, &mut bytes, true).unwrap();
        bytes.truncate(written);
        bytes
    }

    #[test]
    fn ebcdic_code_pages_named_in_the_declaration_decode() {
        let text = "<?xml version=\"1.0\" encoding=\"cp037\"?><a>Az09 \u{a2}</a>";
        let bytes = ebcdic(text);
        let decoded = decode(&bytes, None);
        assert_eq!(decoded.text, text);
        assert!(decoded.warnings.is_empty());
        // The euro pages: 0x9F is the euro sign where 037 has the currency sign.
        let mut bytes = ebcdic("<?xml version=\"1.0\" encoding=\"ibm1140\"?><a>");
        bytes.push(0x9F);
        bytes.extend(ebcdic("</a>"));
        assert!(decode(&bytes, None).text.ends_with("<a>\u{20AC}</a>"));
    }

    #[test]
    fn an_unsupported_ebcdic_page_is_named() {
        let bytes = ebcdic("<?xml version=\"1.0\" encoding=\"cp875\"?><a/>");
        let decoded = decode(&bytes, None);
        assert_eq!(decoded.unsupported.as_deref(), Some("cp875"));
    }

    #[test]
    fn an_unknown_label_reads_as_windows_1252_with_a_warning() {
        let mut body = b"<?xml version=\"1.0\" encoding=\"x-made-up\"?><a>".to_vec();
        body.push(0xE9);
        body.extend_from_slice(b"</a>");
        let decoded = decode(&body, None);
        assert!(decoded.text.contains("<a>\u{e9}</a>"));
        assert_eq!(decoded.unsupported.as_deref(), Some("x-made-up"));
        assert_eq!(decoded.warnings.len(), 1);
    }
}
