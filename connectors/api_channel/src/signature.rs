//! Signing both ways: `v1=` + hex HMAC-SHA256 of `{timestamp}.{raw body}`, keyed with the
//! integration's secret. Requests in are checked with it (or with a bearer token); webhook
//! events out carry it, so the receiver checks them the same way.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signature, in both directions.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";
/// The header carrying the request's Unix time in seconds, in both directions.
pub const TIMESTAMP_HEADER: &str = "x-switchboard-timestamp";

/// Why a request's proof was refused; the text goes back to the caller in the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Neither a bearer token nor a signature was sent.
    Missing,
    /// A signature came without a readable timestamp.
    BadTimestamp,
    /// The timestamp is outside the replay window.
    Stale {
        /// Seconds between the request's timestamp and now (negative: in the future).
        age_secs: i64,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// No integration's secret matches.
    Mismatch,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Missing => write!(
                f,
                "send Authorization: Bearer <token>, or {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
            ),
            AuthError::BadTimestamp => {
                write!(f, "{TIMESTAMP_HEADER} must be the Unix time in seconds")
            }
            AuthError::Stale {
                age_secs,
                window_secs,
            } => write!(
                f,
                "{TIMESTAMP_HEADER} is {age_secs}s away from the gateway's clock (allowed: {window_secs}s)"
            ),
            AuthError::Mismatch => f.write_str("no integration matches this token or signature"),
        }
    }
}

/// The `v1=<hex>` signature of `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks that `timestamp` is within `window_secs` of `now` (Unix seconds).
pub fn check_timestamp(timestamp: &str, now: i64, window_secs: u64) -> Result<(), AuthError> {
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| AuthError::BadTimestamp)?;
    let age_secs = now.saturating_sub(at);
    if age_secs.unsigned_abs() > window_secs {
        return Err(AuthError::Stale {
            age_secs,
            window_secs,
        });
    }
    Ok(())
}

/// True when `signature` is `secret`'s signature of `body` at `timestamp`, compared in
/// constant time.
pub fn signature_matches(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let expected = sign(secret, timestamp.trim(), body);
    bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
}

/// True when `presented` is `secret`, compared in constant time.
pub fn token_matches(secret: &str, presented: &str) -> bool {
    bool::from(secret.as_bytes().ct_eq(presented.as_bytes()))
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-0123456789abcdef";

    #[test]
    fn the_signature_matches_an_independent_computation() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec-0123456789abcdef
        let signature = sign(SECRET, "1700000000", br#"{"a":1}"#);
        assert_eq!(
            signature,
            "v1=d77c78ac4da074c56908b55eac30358b2a7bfc573be4c76819af5102e8dcf939"
        );
        assert!(signature_matches(
            SECRET,
            "1700000000",
            br#"{"a":1}"#,
            &signature
        ));
    }

    #[test]
    fn any_change_to_body_time_or_key_breaks_the_signature() {
        let signature = sign(SECRET, "1700000000", b"hello");
        assert!(!signature_matches(
            SECRET,
            "1700000000",
            b"hellO",
            &signature
        ));
        assert!(!signature_matches(
            SECRET,
            "1700000001",
            b"hello",
            &signature
        ));
        assert!(!signature_matches(
            "another-secret-123",
            "1700000000",
            b"hello",
            &signature
        ));
        assert!(!signature_matches(SECRET, "1700000000", b"hello", ""));
    }

    #[test]
    fn timestamps_outside_the_window_are_stale() {
        assert_eq!(check_timestamp("1000", 1000 + 300, 300), Ok(()));
        assert_eq!(check_timestamp("1000", 1000 - 300, 300), Ok(()));
        assert_eq!(
            check_timestamp("1000", 1301, 300),
            Err(AuthError::Stale {
                age_secs: 301,
                window_secs: 300
            })
        );
        assert!(matches!(
            check_timestamp("1000", 600, 300),
            Err(AuthError::Stale { age_secs: -400, .. })
        ));
        assert_eq!(
            check_timestamp("yesterday", 1000, 300),
            Err(AuthError::BadTimestamp)
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(SECRET, SECRET));
        assert!(!token_matches(SECRET, &SECRET[..10]));
        assert!(!token_matches(SECRET, ""));
    }
}
