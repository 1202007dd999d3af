//! The `Origin` allow-list: exact origins and port wildcards.

use std::fmt;

/// One allowed origin: either exact (`http://localhost:8080`) or any port of
/// one scheme and host (`http://127.0.0.1:*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Matches this origin exactly (compared case-insensitively).
    Exact(String),
    /// Matches `<prefix><port>` for any decimal port; `prefix` ends in `:`.
    AnyPort(String),
}

/// Why an `--allowed-origin` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin pattern `{0}`: expected `scheme://host[:port]` or `scheme://host:*`")]
pub struct OriginPatternError(String);

impl OriginPattern {
    /// Parses `http://host:port`, `http://host` or `http://host:*`.
    pub fn parse(text: &str) -> Result<Self, OriginPatternError> {
        let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let err = || OriginPatternError(text.clone());
        let (scheme, rest) = text.split_once("://").ok_or_else(err)?;
        if scheme.is_empty() || rest.is_empty() || rest.contains('/') {
            return Err(err());
        }
        match rest.strip_suffix(":*") {
            Some(host) if !host.is_empty() => Ok(Self::AnyPort(format!("{scheme}://{host}:"))),
            Some(_) => Err(err()),
            None if rest.contains('*') => Err(err()),
            None => Ok(Self::Exact(text)),
        }
    }

    /// Whether `origin` (the `Origin` header value) matches this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            Self::Exact(exact) => exact.eq_ignore_ascii_case(origin),
            Self::AnyPort(prefix) => {
                origin.len() > prefix.len()
                    && origin.is_char_boundary(prefix.len())
                    && origin[..prefix.len()].eq_ignore_ascii_case(prefix)
                    && origin[prefix.len()..].bytes().all(|b| b.is_ascii_digit())
            }
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(exact) => f.write_str(exact),
            Self::AnyPort(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl std::str::FromStr for OriginPattern {
    type Err = OriginPatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The origins accepted by CORS and the socket handshake.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<OriginPattern>);

impl AllowedOrigins {
    /// An allow-list of these patterns (empty: no browser origin is allowed).
    pub fn new(patterns: Vec<OriginPattern>) -> Self {
        Self(patterns)
    }

    /// `http://127.0.0.1:*` and `http://localhost:*`, the `--dev` default.
    pub fn local_dev() -> Self {
        Self(vec![
            OriginPattern::AnyPort("http://127.0.0.1:".into()),
            OriginPattern::AnyPort("http://localhost:".into()),
        ])
    }

    /// Whether the `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|p| p.matches(origin))
    }

    /// The patterns.
    pub fn patterns(&self) -> &[OriginPattern] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard() {
        let exact = OriginPattern::parse("http://localhost:8080/").unwrap();
        assert!(exact.matches("http://localhost:8080"));
        assert!(exact.matches("http://LOCALHOST:8080"));
        assert!(!exact.matches("http://localhost:8081"));
        let any = OriginPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(any.matches("http://127.0.0.1:1"));
        assert!(any.matches("http://127.0.0.1:65535"));
        assert!(!any.matches("http://127.0.0.1:"));
        assert!(!any.matches("http://127.0.0.1:80.evil.com"));
        assert!(!any.matches("http://127.0.0.1.evil.com:80"));
        assert!(!any.matches("https://127.0.0.1:80"));
        assert_eq!(any.to_string(), "http://127.0.0.1:*");
        for bad in [
            "localhost",
            "http://",
            "http://a/b",
            "http://*:80",
            "http://:*",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
