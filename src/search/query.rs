//! The query grammar: words (all must match), `"quoted phrases"`, `OR`,
//! `-excluded` and the field prefixes `title:`, `author:` and `source:`,
//! parsed once into a [`Query`] that each store backend translates (FTS5
//! today, a tsvector query later). The tree holds no SQL and no backend
//! syntax: a term is text the backend tokenises with its own rules.
//!
//! ```text
//! query   = clause { clause }            clauses are ANDed
//! clause  = "-" term | term { "OR" term }  OR binds tighter than AND
//! term    = [ field ":" ] ( word | '"' text '"' )
//! field   = "title" | "author" | "source"
//! ```

use std::fmt;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// Most terms (words and phrases) in one query.
pub const MAX_TERMS: usize = 32;

/// Where a term must appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Title, text or author of a copy of the story (not the outlet's name).
    Any,
    Title,
    Author,
    /// The outlet's name.
    Source,
}

impl Field {
    /// The prefix as written in a query, `None` for [`Field::Any`].
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Field::Any => None,
            Field::Title => Some("title"),
            Field::Author => Some("author"),
            Field::Source => Some("source"),
        }
    }

    fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "title" => Some(Field::Title),
            "author" => Some(Field::Author),
            "source" => Some(Field::Source),
            _ => None,
        }
    }
}

/// One word or phrase, in one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term {
    pub field: Field,
    /// The words as the user wrote them (one word, or a phrase's words
    /// separated by single spaces): tokenised, folded and stemmed by the
    /// backend. Always holds at least one letter or digit.
    pub text: String,
    /// Written in quotes: the words must appear together, in this order.
    pub phrase: bool,
}

/// A parsed query: every clause must match, no excluded term may.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    /// Each clause matches when any of its terms does (`a OR b`).
    pub all: Vec<Vec<Term>>,
    /// Terms that must not match (`-word`).
    pub none: Vec<Term>,
}

/// Why a query was refused, and where (1-based character column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for QueryError {}

fn error(column: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        column,
        message: message.into(),
    }
}

/// A lexical piece of the query, with its 1-based column.
#[derive(Debug)]
enum Token {
    Or,
    Term {
        negated: bool,
        term: Option<Term>,
        text: String,
    },
}

/// Whether a word carries anything a backend would index: punctuation alone
/// (`&`, `—`) is dropped, as every tokeniser drops it.
fn significant(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

impl Query {
    /// Parses `text`; the error says what is wrong and at which column.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let length = text.chars().count();
        if length > MAX_QUERY_CHARS {
            return Err(error(
                MAX_QUERY_CHARS + 1,
                format!("the query is too long ({length} characters; at most {MAX_QUERY_CHARS})"),
            ));
        }
        let tokens = tokens(text)?;
        let mut all: Vec<Vec<Term>> = Vec::new();
        let mut none = Vec::new();
        let mut terms = 0usize;
        // Whether the previous token was OR (and its column), so the next
        // term joins the last clause.
        let mut pending_or: Option<usize> = None;
        // Whether the last clause may take an OR (it is a positive clause).
        let mut last_positive = false;
        for (column, token) in tokens {
            match token {
                Token::Or => {
                    if let Some(previous) = pending_or {
                        return Err(error(
                            column,
                            format!(
                                "OR follows another OR (column {previous}): put a word between them"
                            ),
                        ));
                    }
                    if !last_positive {
                        return Err(error(
                            column,
                            "OR needs a word or \"phrase\" before it (and cannot follow an -excluded term)",
                        ));
                    }
                    pending_or = Some(column);
                }
                Token::Term {
                    negated,
                    term,
                    text,
                } => {
                    if let (true, Some(or)) = (negated, pending_or) {
                        return Err(error(
                            column,
                            format!("an -excluded term cannot be one side of OR (column {or})"),
                        ));
                    }
                    let Some(term) = term else {
                        // Punctuation alone: nothing a backend would index.
                        if let Some(or) = pending_or {
                            return Err(error(
                                column,
                                format!(
                                    "{text:?} after OR (column {or}) holds no letter or digit to search for"
                                ),
                            ));
                        }
                        last_positive = false;
                        continue;
                    };
                    terms += 1;
                    if terms > MAX_TERMS {
                        return Err(error(
                            column,
                            format!("too many terms (at most {MAX_TERMS})"),
                        ));
                    }
                    if negated {
                        none.push(term);
                        last_positive = false;
                    } else if pending_or.take().is_some() {
                        if let Some(clause) = all.last_mut() {
                            clause.push(term);
                        }
                        last_positive = true;
                    } else {
                        all.push(vec![term]);
                        last_positive = true;
                    }
                }
            }
        }
        if let Some(or) = pending_or {
            return Err(error(or, "OR needs a word or \"phrase\" after it"));
        }
        if all.is_empty() {
            let message = if none.is_empty() {
                "the query has no word to search for"
            } else {
                "the query only excludes: add a word or \"phrase\" that must match"
            };
            return Err(error(1, message));
        }
        Ok(Self { all, none })
    }

    /// Every term, wanted or excluded.
    pub fn terms(&self) -> impl Iterator<Item = &Term> {
        self.all.iter().flatten().chain(&self.none)
    }
}

impl fmt::Display for Query {
    /// The query in a normal form of the grammar (parses back to itself).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let term = |t: &Term| {
            let prefix = t
                .field
                .prefix()
                .map(|p| format!("{p}:"))
                .unwrap_or_default();
            // A quoted "OR" stays a word, not the keyword.
            if t.phrase || (t.field == Field::Any && t.text == "OR") {
                format!("{prefix}\"{}\"", t.text)
            } else {
                format!("{prefix}{}", t.text)
            }
        };
        let mut parts: Vec<String> = self
            .all
            .iter()
            .map(|c| c.iter().map(term).collect::<Vec<_>>().join(" OR "))
            .collect();
        parts.extend(self.none.iter().map(|t| format!("-{}", term(t))));
        f.write_str(&parts.join(" "))
    }
}

/// Splits the query into OR keywords and terms, each with its column.
fn tokens(text: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    if let Some(at) = chars
        .iter()
        .position(|c| c.is_control() && !c.is_whitespace())
    {
        let what = if chars[at] == '\0' {
            "a NUL byte".to_string()
        } else {
            format!("the control character U+{:04X}", chars[at] as u32)
        };
        return Err(error(at + 1, format!("the query contains {what}")));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let column = start + 1;
        let negated = chars[i] == '-';
        if negated {
            i += 1;
            if i >= chars.len() || chars[i].is_whitespace() {
                return Err(error(
                    column,
                    "'-' must be followed by the word or \"phrase\" to exclude (write -word)",
                ));
            }
        }
        // A field prefix: letters then ':' then something.
        let mut field = Field::Any;
        let word_start = i;
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j > i && j < chars.len() && chars[j] == ':' {
            let name: String = chars[i..j].iter().collect();
            match Field::named(&name) {
                Some(f) => {
                    field = f;
                    i = j + 1;
                    if i >= chars.len() || chars[i].is_whitespace() {
                        return Err(error(
                            word_start + 1,
                            format!(
                                "{name}: must be followed by a word or \"phrase\" (no space after the colon)"
                            ),
                        ));
                    }
                }
                None => {
                    return Err(error(
                        word_start + 1,
                        format!(
                            "unknown field {name:?}: the fields are title:, author: and source:"
                        ),
                    ));
                }
            }
        }
        let (words, phrase) = if chars[i] == '"' {
            let open = i;
            let close = chars[open + 1..]
                .iter()
                .position(|&c| c == '"')
                .map(|p| open + 1 + p)
                .ok_or_else(|| {
                    error(
                        open + 1,
                        "this quote is never closed: end the phrase with another \"",
                    )
                })?;
            i = close + 1;
            let inner: String = chars[open + 1..close].iter().collect();
            (inner, true)
        } else {
            let begin = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                i += 1;
            }
            (chars[begin..i].iter().collect::<String>(), false)
        };
        let raw: String = chars[start..i].iter().collect();
        if !negated && field == Field::Any && !phrase && words == "OR" {
            out.push((column, Token::Or));
            continue;
        }
        let text = words.split_whitespace().collect::<Vec<_>>().join(" ");
        let term = significant(&text).then(|| Term {
            field,
            // A phrase of one word is that word.
            phrase: phrase && text.contains(' '),
            text,
        });
        if term.is_none() && phrase {
            return Err(error(
                column,
                "this phrase holds no letter or digit to search for",
            ));
        }
        out.push((
            column,
            Token::Term {
                negated,
                term,
                text: raw,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(field: Field, text: &str) -> Term {
        Term {
            field,
            text: text.into(),
            phrase: false,
        }
    }

    fn phrase(field: Field, text: &str) -> Term {
        Term {
            field,
            text: text.into(),
            phrase: true,
        }
    }

    fn fails(text: &str) -> QueryError {
        Query::parse(text).expect_err(text)
    }

    #[test]
    fn words_are_all_required() {
        let q = Query::parse("port  strike").unwrap();
        assert_eq!(
            q.all,
            [[word(Field::Any, "port")], [word(Field::Any, "strike")]]
        );
        assert!(q.none.is_empty());
    }

    #[test]
    fn phrases_keep_their_words_together() {
        let q = Query::parse("\"nagorno   karabakh\" \"single\"").unwrap();
        assert_eq!(
            q.all,
            [
                [phrase(Field::Any, "nagorno karabakh")],
                // A one-word phrase is that word.
                [word(Field::Any, "single")],
            ]
        );
    }

    #[test]
    fn or_binds_tighter_than_the_implicit_and() {
        let q = Query::parse("karabakh OR \"nagorno karabakh\" -sport peace").unwrap();
        assert_eq!(
            q.all,
            [
                vec![
                    word(Field::Any, "karabakh"),
                    phrase(Field::Any, "nagorno karabakh")
                ],
                vec![word(Field::Any, "peace")],
            ]
        );
        assert_eq!(q.none, [word(Field::Any, "sport")]);
        // Lower-case "or" is a word like any other.
        let q = Query::parse("this or that").unwrap();
        assert_eq!(q.all.len(), 3);
    }

    #[test]
    fn excluded_terms_and_fields() {
        let q = Query::parse(
            "title:kremlin AUTHOR:\"Jane Doe\" source:reuters -source:\"daily mail\" -title:sport",
        )
        .unwrap();
        assert_eq!(
            q.all,
            [
                [word(Field::Title, "kremlin")],
                [phrase(Field::Author, "Jane Doe")],
                [word(Field::Source, "reuters")],
            ]
        );
        assert_eq!(
            q.none,
            [
                phrase(Field::Source, "daily mail"),
                word(Field::Title, "sport")
            ]
        );
    }

    #[test]
    fn the_normal_form_parses_back_to_the_same_query() {
        for text in [
            "a OR b c",
            "title:\"x y\" -author:z",
            "é OR \"ü ö\" -source:q",
            "\"OR\" title:OR",
        ] {
            let q = Query::parse(text).unwrap();
            assert_eq!(Query::parse(&q.to_string()).unwrap(), q, "{text}");
        }
    }

    #[test]
    fn punctuation_alone_is_dropped_and_digits_are_words() {
        let q = Query::parse("rates & 2026 — up").unwrap();
        assert_eq!(
            q.all,
            [
                [word(Field::Any, "rates")],
                [word(Field::Any, "2026")],
                [word(Field::Any, "up")]
            ]
        );
        // Not a field: "10:30" has digits before the colon.
        assert_eq!(Query::parse("10:30").unwrap().all[0][0].text, "10:30");
    }

    #[test]
    fn every_error_says_what_and_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "no word"),
            ("   ", 1, "no word"),
            ("&& || --x", 1, "only excludes"),
            ("-sport", 1, "only excludes"),
            ("OR", 1, "before it"),
            ("OR kremlin", 1, "before it"),
            ("kremlin OR", 9, "after it"),
            ("a OR OR b", 6, "follows another OR"),
            ("-a OR b", 4, "cannot follow an -excluded"),
            ("a OR -b", 6, "cannot be one side of OR"),
            ("a OR &", 6, "no letter or digit"),
            ("a - b", 3, "'-' must be followed"),
            ("a -", 3, "'-' must be followed"),
            ("say \"hello world", 5, "never closed"),
            ("\"\"", 1, "phrase holds no letter"),
            ("x \"  ,, \"", 3, "phrase holds no letter"),
            ("title: x", 1, "title: must be followed"),
            ("a -title:", 4, "title: must be followed"),
            ("body:x", 1, "unknown field \"body\""),
            ("x nul\0here", 6, "NUL byte"),
            ("bell\u{7}", 5, "U+0007"),
        ];
        for (text, column, message) in cases {
            let e = fails(text);
            assert_eq!(e.column, *column, "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn limits_on_length_and_terms() {
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        let e = fails(&long);
        assert!(e.message.contains("too long"), "{e}");
        assert!(Query::parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        // Measured in characters, not bytes.
        assert!(Query::parse(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        let e = fails(&many);
        assert!(e.message.contains("too many terms"), "{e}");
        assert_eq!(e.column, 2 * MAX_TERMS + 1);
        assert!(Query::parse(&vec!["w"; MAX_TERMS].join(" ")).is_ok());
    }

    #[test]
    fn sql_and_fts_syntax_are_plain_words() {
        let q = Query::parse("'; DROP TABLE entries; -- NEAR(a b) ^x AND NOT").unwrap();
        let texts: Vec<&str> = q.all.iter().map(|c| c[0].text.as_str()).collect();
        assert_eq!(
            texts,
            // "';" is punctuation alone, dropped like "--".
            [
                "DROP", "TABLE", "entries;", "NEAR(a", "b)", "^x", "AND", "NOT"
            ]
        );
        // FTS5's column filter is an unknown field here, and said so.
        assert!(fails("col:*").message.contains("unknown field"));
        assert!(q.none.is_empty());
    }

    #[test]
    fn tabs_and_newlines_are_spaces() {
        assert_eq!(Query::parse("a\tb\nc").unwrap().all.len(), 3);
    }
}
