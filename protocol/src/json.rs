//! A small, strict JSON reader and writer: just what the wire contract needs.
//!
//! The frames are tiny and few, and the browser client pays for every byte
//! of code it ships, so this crate parses and writes its frames by hand
//! instead of through `serde_json` (which would add ~25 KiB gzip to the
//! client's wasm). The reader is strict RFC 8259: it rejects what
//! `JSON.parse` rejects, and the test suite checks it against `serde_json`
//! on generated input. Numbers are checked against the grammar and kept as
//! text, so nothing is lost or rounded; read them with [`Value::as_u64`].
//!
//! ```
//! use tether_protocol::json::{self, Value};
//!
//! let value = json::parse(r#"{"seq": 7, "title": "caf\u00e9", "tags": [true, null]}"#).unwrap();
//! assert_eq!(value.get("seq").and_then(Value::as_u64), Some(7));
//! assert_eq!(value.get("title").and_then(Value::as_str), Some("café"));
//! assert_eq!(json::parse("[1,]").unwrap_err().to_string(), "invalid JSON at byte 3: expected a value");
//!
//! let mut out = String::new();
//! json::write(&mut out, &value);
//! assert_eq!(out, r#"{"seq":7,"title":"café","tags":[true,null]}"#);
//! ```

use std::borrow::Cow;

/// Objects and arrays nested deeper than this are refused, so that a hostile
/// frame cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value, borrowing from the text where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written (it matched the JSON number grammar).
    Number(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Value<'a>>),
    /// An object's members in document order; duplicates are kept, and
    /// [`Value::get`] returns the last, like `JSON.parse`.
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The member `key` of an object (the last one if repeated); `None` for
    /// other values.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Self::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number that is a non-negative integer fitting in a `u64`, written
    /// without fraction or exponent.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Number(n) => decimal(n.as_bytes()),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }
}

/// The value of a non-empty run of ASCII digits, if it fits in a `u64`.
/// (`str::parse` would do, at the price of ~0.7 KB of wasm per integer type.)
///
/// ```
/// use tether_protocol::json::decimal;
/// assert_eq!(decimal(b"042"), Some(42));
/// assert_eq!(decimal(b""), None);
/// assert_eq!(decimal(b"4x"), None);
/// assert_eq!(decimal(b"18446744073709551616"), None);
/// ```
pub fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits
        .iter()
        .try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(digit(c)?))
}

/// The value of an ASCII digit.
pub(crate) fn digit(c: u8) -> Option<u64> {
    c.is_ascii_digit().then(|| u64::from(c - b'0'))
}

/// Why a text is not JSON. Deliberately without any of the text's content:
/// the text may hold a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {what}")]
pub struct Error {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was expected or wrong there.
    pub what: &'static str,
}

/// Parses `text` as exactly one JSON value (surrounding whitespace allowed).
///
/// # Errors
/// [`Error`] at the first byte that does not fit the grammar, or when
/// nesting exceeds [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Value<'_>, Error> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value(0)?;
    reader.space();
    if reader.at < text.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &'static str) -> Error {
        Error {
            offset: self.at,
            what,
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    #[inline(always)]
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace and consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Error> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.space();
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let keyword = |reader: &mut Self, word: &str, value| {
            if reader.text[reader.at..].starts_with(word) {
                reader.at += word.len();
                Ok(value)
            } else {
                Err(reader.error("expected a value"))
            }
        };
        match self.peek() {
            Some(b'n') => keyword(self, "null", Value::Null),
            Some(b't') => keyword(self, "true", Value::Bool(true)),
            Some(b'f') => keyword(self, "false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if !self.eat(b',') {
                            break;
                        }
                    }
                    self.expect(b']', "expected `,` or `]`")?;
                }
                Ok(Value::Array(items))
            }
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::with_capacity(8);
                if !self.eat(b'}') {
                    loop {
                        self.space();
                        if self.peek() != Some(b'"') {
                            return Err(self.error("expected a string key"));
                        }
                        let key = self.string()?;
                        self.expect(b':', "expected `:`")?;
                        members.push((key, self.value(depth + 1)?));
                        if !self.eat(b',') {
                            break;
                        }
                    }
                    self.expect(b'}', "expected `,` or `}`")?;
                }
                Ok(Value::Object(members))
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<Value<'a>, Error> {
        let start = self.at;
        self.at += usize::from(self.peek() == Some(b'-'));
        let leading_zero = self.peek() == Some(b'0');
        let integer = self.digits();
        if integer == 0 || (leading_zero && integer > 1) {
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(Value::Number(&self.text[start..self.at]))
    }

    /// A string starting at the opening quote. Borrowed from the text
    /// unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        self.at += 1;
        let bytes = self.text.as_bytes();
        let mut unescaped: Option<String> = None;
        loop {
            // One scan to the next byte that needs a look.
            let run = self.at;
            self.at += bytes[run..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(bytes.len() - run);
            let text = &self.text[run..self.at];
            match bytes.get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(match unescaped {
                        None => Cow::Borrowed(text),
                        Some(mut out) => {
                            out.push_str(text);
                            Cow::Owned(out)
                        }
                    });
                }
                Some(b'\\') => {
                    let out = unescaped.get_or_insert_with(String::new);
                    out.push_str(text);
                    self.at += 1;
                    let escaped = bytes.get(self.at).copied();
                    self.at += 1;
                    out.push(match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => {
                            self.at -= 1;
                            return Err(self.error("invalid escape"));
                        }
                    });
                }
                Some(_) => return Err(self.error("control character in string")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (after the `u`), joining
    /// surrogate pairs; lone surrogates are an error, as in `serde_json`.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let high = self.hex4()?;
        let code = match high {
            0xd800..=0xdbff => {
                if !self.text[self.at..].starts_with("\\u") {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("lone surrogate in \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + digit;
            self.at += 1;
        }
        Ok(code)
    }
}

/// Appends `value` as compact JSON.
pub fn write(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write(out, item);
            }
            out.push('}');
        }
    }
}

/// Appends `text` as a quoted JSON string, escaping `"`, `\` and control
/// characters (the same escapes `serde_json` and `JSON.stringify` produce).
pub fn write_str(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push('"');
    let mut run = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[run..i]);
        run = i + 1;
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&text[run..]);
    out.push('"');
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// A JSON text that is known to be valid: the body of a `send` frame. Make
/// one with [`RawJson::new`] (which checks it); it is written into frames
/// verbatim.
///
/// ```
/// use tether_protocol::RawJson;
/// assert_eq!(RawJson::new(r#"{"hi": 1}"#).unwrap().as_str(), r#"{"hi": 1}"#);
/// assert!(RawJson::new("{hi: 1}").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawJson(String);

impl RawJson {
    /// Checks that `text` is one JSON value and keeps it as it is.
    ///
    /// # Errors
    /// [`Error`] when `text` is not JSON.
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        parse(&text)?;
        Ok(Self(text))
    }

    /// Text this crate wrote itself with [`write`].
    pub(crate) fn trusted(text: String) -> Self {
        Self(text)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_integers_are_u64() {
        let n = |text: &str| parse(text).unwrap().as_u64();
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("42"), Some(42));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        for text in ["18446744073709551616", "-1", "1.0", "1e3", "\"7\"", "null"] {
            assert_eq!(n(text), None, "{text}");
        }
    }

    fn err(text: &str) -> Error {
        parse(text).unwrap_err()
    }

    #[test]
    fn parses_every_kind_of_value() {
        let v = parse(r#" {"a": [1, -2.5e+3, 0], "b": {"c": null}, "d": false, "e": "x\"\u00e9\ud83d\ude00"} "#)
            .unwrap();
        assert_eq!(
            v.get("a"),
            Some(&Value::Array(vec![
                Value::Number("1"),
                Value::Number("-2.5e+3"),
                Value::Number("0")
            ]))
        );
        assert!(v.get("b").and_then(|b| b.get("c")).unwrap().is_null());
        assert_eq!(v.get("d"), Some(&Value::Bool(false)));
        assert_eq!(v.get("e").and_then(Value::as_str), Some("x\"é😀"));
        assert_eq!(v.get("zz"), None);
    }

    #[test]
    fn last_duplicate_key_wins() {
        let v = parse(r#"{"k":1,"k":2}"#).unwrap();
        assert_eq!(v.get("k").and_then(Value::as_u64), Some(2));
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for bad in [
            "",
            " ",
            "nul",
            "tru",
            "[1,]",
            "{,}",
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            "[1 2]",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "{1:2}",
            "[]]",
            "'x'",
            "NaN",
            "Infinity",
            "[1] x",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn errors_point_at_the_byte_and_never_quote_the_text() {
        assert_eq!(
            err(r#"{"token":"eyJsecret" x}"#),
            Error {
                offset: 21,
                what: "expected `,` or `}`"
            }
        );
        assert!(!err(r#"{"token":"eyJsecret"#).to_string().contains("eyJ"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(err(&deep).what, "nested too deeply");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn u64_reads_only_plain_integers() {
        for (text, expected) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-1", None),
            ("1.0", None),
            ("1e3", None),
            ("\"1\"", None),
        ] {
            assert_eq!(parse(text).unwrap().as_u64(), expected, "{text}");
        }
    }

    #[test]
    fn writes_escapes_like_serde_json() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\n\t\u{1}\u{7f}é/");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001\u{7f}é/\"");
        let mut n = String::new();
        for x in [0, 7, 10, u64::MAX] {
            n.clear();
            write_u64(&mut n, x);
            assert_eq!(n, x.to_string());
        }
    }
}
