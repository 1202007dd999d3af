//! Socket URLs resolved the way the browser resolves links.

/// Why a socket URL could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not parse, even against the page's address.
    #[error("`{url}` is not a valid URL")]
    Invalid {
        /// The configured URL.
        url: String,
    },
    /// The URL's scheme is not `ws`, `wss`, `http` or `https`.
    #[error("`{url}` has the scheme `{scheme}`; a socket needs ws(s) or http(s)")]
    Scheme {
        /// The configured URL.
        url: String,
        /// Its scheme, without the colon.
        scheme: String,
    },
}

/// Resolves `url` against `base` (the page's address) as the browser's
/// `URL` constructor does, then maps `http:` to `ws:` and `https:` to
/// `wss:`; `ws:` and `wss:` stay. `//host/path`, `/path` and `relative/path`
/// take what they lack from `base`. A fragment is dropped (sockets refuse
/// one). Only in a browser (it uses `web_sys::Url`).
///
/// # Errors
/// [`UrlError`] when the URL does not parse or has another scheme.
pub fn resolve_socket_url(url: &str, base: &str) -> Result<String, UrlError> {
    let parsed = web_sys::Url::new_with_base(url, base).map_err(|_| UrlError::Invalid {
        url: url.to_owned(),
    })?;
    let scheme = match parsed.protocol().as_str() {
        "ws:" | "http:" => "ws:",
        "wss:" | "https:" => "wss:",
        other => {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
                scheme: other.trim_end_matches(':').to_owned(),
            });
        }
    };
    parsed.set_protocol(scheme);
    parsed.set_hash("");
    Ok(parsed.href())
}
