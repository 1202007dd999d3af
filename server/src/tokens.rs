//! HS256 JSON Web Tokens, hand-rolled with `hmac` + `sha2` (the format is
//! tiny and this keeps the dependency tree small).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The fixed JOSE header of every token this server signs.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session (login) this token belongs to; logout revokes it.
    pub sid: Uuid,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue counter: `POST /api/admin/expire-tokens` expires every token
    /// whose `gen` is below a cut-off.
    pub generation: u64,
}

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts, wrong algorithm, bad signature or claims.
    #[error("the token is malformed or its signature is wrong")]
    Invalid,
    /// The signature is right but `exp` has passed.
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    /// A key from secret bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// A random 256-bit key.
    pub fn random() -> Self {
        Self::new(crate::random_bytes::<32>().to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// Encodes and signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut out = URL_SAFE_NO_PAD.encode(HEADER);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(out.as_bytes());
        let signature = mac.finalize().into_bytes();
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        out
    }

    /// Checks the signature and shape; `exp` against `now_ms` unless
    /// `allow_expired`.
    pub fn verify(
        &self,
        token: &str,
        now_ms: i64,
        allow_expired: bool,
    ) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        #[derive(Deserialize)]
        struct Header {
            alg: String,
        }
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Invalid)?;
        if header.alg != "HS256" {
            return Err(TokenError::Invalid);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Invalid)?;
        if !allow_expired && now_ms >= claims.exp.saturating_mul(1000) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            iat: 100,
            exp,
            generation: 1,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let key = TokenKey::new(b"k".to_vec());
        let c = claims(200);
        let token = key.sign(&c);
        assert_eq!(key.verify(&token, 199_999, false), Ok(c.clone()));
        assert_eq!(key.verify(&token, 200_000, false), Err(TokenError::Expired));
        assert_eq!(key.verify(&token, 200_000, true), Ok(c));
    }

    #[test]
    fn tampering_is_invalid() {
        let key = TokenKey::new(b"k".to_vec());
        let token = key.sign(&claims(200));
        let other = TokenKey::new(b"other".to_vec());
        assert_eq!(other.verify(&token, 0, false), Err(TokenError::Invalid));
        let (head, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            key.verify(&format!("{head}."), 0, false),
            Err(TokenError::Invalid)
        );
        assert_eq!(key.verify("a.b", 0, false), Err(TokenError::Invalid));
        assert_eq!(key.verify("", 0, false), Err(TokenError::Invalid));
        assert_eq!(key.verify("a.b.c.d", 0, false), Err(TokenError::Invalid));
        // alg=none with an empty signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(key.verify(&none, 0, false), Err(TokenError::Invalid));
    }
}
