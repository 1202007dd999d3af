//! The socket URL, with the token in its query and out of every log line.

use std::fmt;

/// The URL of a socket to open. It may carry the access token in its
/// `token` query parameter, so [`Debug`](fmt::Debug) and
/// [`Display`](fmt::Display) print that value as `***`; the driver reads the
/// real URL with [`SocketUrl::expose`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SocketUrl(String);

impl SocketUrl {
    /// Builds the URL: `base`, plus `?token=` (or `&token=` when `base`
    /// already has a query) and the percent-encoded token when given.
    ///
    /// ```
    /// use tether_core::SocketUrl;
    /// let url = SocketUrl::new("ws://h/ws?v=1", Some("a b"));
    /// assert_eq!(url.expose(), "ws://h/ws?v=1&token=a%20b");
    /// assert_eq!(url.to_string(), "ws://h/ws?v=1&token=***");
    /// ```
    pub fn new(base: &str, token: Option<&str>) -> Self {
        let Some(token) = token else {
            return Self(base.to_owned());
        };
        let mut url = String::with_capacity(base.len() + token.len() + 8);
        url.push_str(base);
        url.push(if base.contains('?') { '&' } else { '?' });
        url.push_str("token=");
        for byte in token.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                url.push(char::from(byte));
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
        Self(url)
    }

    /// The real URL, token included: pass it to `new WebSocket(..)` and
    /// nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn write_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((path, query)) = self.0.split_once('?') else {
            return f.write_str(&self.0);
        };
        f.write_str(path)?;
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some(("token" | "access_token", _)) => {
                    f.write_str(pair.split('=').next().unwrap_or_default())?;
                    f.write_str("=***")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for SocketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_redacted(f)
    }
}

impl fmt::Debug for SocketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SocketUrl(\"")?;
        self.write_redacted(f)?;
        f.write_str("\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_no_query() {
        assert_eq!(SocketUrl::new("/api/ws", None).expose(), "/api/ws");
    }

    #[test]
    fn redacts_in_debug() {
        let url = SocketUrl::new("/api/ws", Some("eyJ.x/y+z="));
        assert_eq!(url.expose(), "/api/ws?token=eyJ.x%2Fy%2Bz%3D");
        assert_eq!(format!("{url:?}"), "SocketUrl(\"/api/ws?token=***\")");
        assert!(!url.to_string().contains("eyJ"));
    }

    #[test]
    fn display_keeps_every_other_parameter_and_hides_only_the_token() {
        let url = SocketUrl::new("/api/ws?v=2&room=a", Some("secret"));
        assert!(url.expose().contains("token=secret"), "{}", url.expose());
        assert_eq!(url.to_string(), url.expose().replace("secret", "***"));
        assert!(url.to_string().starts_with("/api/ws?v=2&room=a&"));
    }
}
