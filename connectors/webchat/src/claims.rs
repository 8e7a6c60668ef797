//! Signed user claims: what a site vouches for about its logged-in user.
//!
//! The threat: anything on the script tag that is not signed is the visitor's own word. A
//! signed-in user who edits `data-attributes` to `{"tier":"vip"}` must not skip the AI queue,
//! and a claim the site made for user A must not make anyone user B.
//!
//! The form (documented in the README's "Web chat" section, with examples):
//!
//! - `data-user-claims` = base64url (padding optional) of a JSON object with `user_id` (string),
//!   `exp` (Unix seconds, required) and any scalar claims the site vouches for (`tier`, `email`,
//!   `name`, `locale`, `plan`, ...);
//! - `data-user-sig` = hex HMAC-SHA256(secret, the `data-user-claims` string, byte for byte).
//!
//! Signing the transmitted bytes, not a re-serialised JSON, means no canonical form to agree
//! on: the server checks the MAC over exactly what it received, then parses it.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest `user_claims` accepted, in bytes: a few claims, not a document.
pub const MAX_CLAIMS_LEN: usize = 4096;

/// What a valid claims blob says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    /// The site's user id.
    pub user_id: String,
    /// Unix seconds after which the claims are refused.
    pub exp: u64,
    /// Every other scalar claim, as text (`tier`, `email`, `name`, `plan`, ...).
    pub vouched: BTreeMap<String, String>,
}

/// Why a claims blob was refused; each says what the site must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Too long, or not base64url.
    #[error("user_claims must be base64url text of at most {MAX_CLAIMS_LEN} bytes")]
    Malformed,
    /// The signature is not the HMAC of the blob under the secret.
    #[error("user_sig does not match user_claims")]
    BadSignature,
    /// The blob decodes but is not a JSON object with a string `user_id` and an integer `exp`.
    #[error("user_claims must be a JSON object with a string user_id and an integer exp: {0}")]
    BadShape(&'static str),
    /// `exp` has passed.
    #[error("the signed-in session expired; reload the page")]
    Expired,
}

/// The hex HMAC-SHA256 of `message` under `secret`.
pub(crate) fn mac_hex(secret: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// True when `signature` (hex, either case) is the HMAC of `message`; compared in constant time.
pub(crate) fn mac_matches(secret: &[u8], message: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(&expected).is_ok()
}

/// Encodes and signs `claims` as a site's server would: returns (`data-user-claims`,
/// `data-user-sig`). For tests, the demo page and Rust sites.
pub fn sign_user_claims(secret: &[u8], claims: &serde_json::Value) -> (String, String) {
    let blob = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = mac_hex(secret, blob.as_bytes());
    (blob, sig)
}

/// True when `signature` signs `blob` under `secret` (nothing about its content is checked).
pub(crate) fn signed_by(secret: &[u8], blob: &str, signature: &str) -> bool {
    mac_matches(secret, blob.as_bytes(), signature)
}

/// Decodes a blob whose signature was already checked, and checks its shape and expiry.
pub(crate) fn open(blob: &str, now_secs: u64) -> Result<UserClaims, ClaimsError> {
    let object = decode(blob)?;
    let user_id = match object.get("user_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(ClaimsError::BadShape("user_id is missing or not a string")),
    };
    let exp = object
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or(ClaimsError::BadShape("exp is missing or not Unix seconds"))?;
    if now_secs > exp {
        return Err(ClaimsError::Expired);
    }
    let vouched = object
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "user_id" | "exp"))
        .filter_map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.trim().to_owned(),
                serde_json::Value::Number(number) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some((key.clone(), text))
        })
        .collect();
    Ok(UserClaims {
        user_id,
        exp,
        vouched,
    })
}

/// True when `text` decodes as a claims object: such a string is never accepted as a plain
/// user id, so a claims signature cannot be replayed as an id signature.
pub(crate) fn looks_like_claims(text: &str) -> bool {
    decode(text).is_ok_and(|object| object.contains_key("user_id"))
}

fn decode(blob: &str) -> Result<serde_json::Map<String, serde_json::Value>, ClaimsError> {
    if blob.len() > MAX_CLAIMS_LEN {
        return Err(ClaimsError::Malformed);
    }
    // Python's urlsafe_b64encode pads with `=`, Node's "base64url" does not: accept both.
    let bytes = URL_SAFE_NO_PAD
        .decode(blob.trim_end_matches('='))
        .map_err(|_| ClaimsError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        _ => Err(ClaimsError::BadShape("not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn signed_claims_open_with_their_vouched_attributes() {
        let (blob, sig) = sign_user_claims(
            b"secret",
            &json!({"user_id": "42", "exp": NOW + 60, "tier": "vip", "seats": 5, "beta": true, "nested": {"a": 1}}),
        );
        assert!(signed_by(b"secret", &blob, &sig));
        assert!(!signed_by(b"other", &blob, &sig));
        let claims = open(&blob, NOW).unwrap();
        assert_eq!(claims.user_id, "42");
        assert_eq!(claims.exp, NOW + 60);
        assert_eq!(
            claims.vouched,
            BTreeMap::from([
                ("beta".to_owned(), "true".to_owned()),
                ("seats".to_owned(), "5".to_owned()),
                ("tier".to_owned(), "vip".to_owned()),
            ])
        );
    }

    #[test]
    fn the_documented_python_example_verifies() {
        // What the README's Python snippet prints for secret "s3cret" (padded base64url).
        let blob = "eyJ1c2VyX2lkIjogIjQyIiwgInRpZXIiOiAidmlwIiwgImV4cCI6IDE4MDAwMDAwMDB9";
        let claims = open(blob, NOW - 1).unwrap();
        assert_eq!(claims.user_id, "42");
        assert_eq!(claims.vouched["tier"], "vip");
        let sig = "436ef03d60b09f14c228fbeba58cd6803ea6bdfb369c850a74b648f3de1e07ed";
        assert_eq!(mac_hex(b"s3cret", blob.as_bytes()), sig);
        assert!(signed_by(b"s3cret", blob, &sig.to_uppercase()));
        // The same claims with `=` padding are another text, so another signature.
        assert!(!signed_by(b"s3cret", &format!("{blob}=="), sig));
        assert!(open(&format!("{blob}=="), NOW - 1).is_ok());
    }

    #[test]
    fn expired_or_misshapen_claims_are_refused() {
        let (blob, _) = sign_user_claims(b"k", &json!({"user_id": "42", "exp": NOW}));
        assert!(open(&blob, NOW).is_ok());
        assert_eq!(open(&blob, NOW + 1), Err(ClaimsError::Expired));
        for claims in [
            json!({"exp": NOW}),
            json!({"user_id": 42, "exp": NOW}),
            json!({"user_id": "", "exp": NOW}),
            json!({"user_id": "42"}),
            json!({"user_id": "42", "exp": "tomorrow"}),
            json!(["user_id", "42"]),
        ] {
            let (blob, _) = sign_user_claims(b"k", &claims);
            assert!(
                matches!(open(&blob, NOW), Err(ClaimsError::BadShape(_))),
                "{claims}"
            );
        }
        assert_eq!(open("not base64!", NOW), Err(ClaimsError::Malformed));
        assert_eq!(
            open(&"A".repeat(MAX_CLAIMS_LEN + 1), NOW),
            Err(ClaimsError::Malformed)
        );
    }

    #[test]
    fn a_claims_blob_is_recognised_as_such() {
        let (blob, _) = sign_user_claims(b"k", &json!({"user_id": "42", "exp": NOW}));
        assert!(looks_like_claims(&blob));
        assert!(!looks_like_claims("42"));
        assert!(!looks_like_claims("alice@example.com"));
    }
}
