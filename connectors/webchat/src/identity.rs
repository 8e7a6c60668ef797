//! Who a web chat visitor is, and which conversation is theirs.
//!
//! Anonymous visitors are known by a random session token the widget keeps in
//! `localStorage`; it is a bearer secret, so it must be long and random. A site that knows
//! its user signs the user id on its server: `user_sig = hex(HMAC-SHA256(secret, user_id))`.
//! A claimed user id without a valid signature is refused, never downgraded to anonymous,
//! so a forged claim can not read or write someone else's conversation.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use switchboard_api::Identity;

type HmacSha256 = Hmac<Sha256>;

/// Shortest session token accepted: 16 characters of the widget's alphabet carry ~96 bits.
const MIN_SESSION_LEN: usize = 16;
/// Longest session token accepted; bounds the key stored per conversation.
const MAX_SESSION_LEN: usize = 128;
/// Longest user id accepted.
const MAX_USER_ID_LEN: usize = 256;

/// What the visitor's browser claims about itself.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// The widget's random session token.
    pub session: &'a str,
    /// A user id the site put on the script tag, if any.
    pub user_id: Option<&'a str>,
    /// The site's signature of that user id.
    pub user_sig: Option<&'a str>,
}

/// A visitor whose claims checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// The conversation key: `s:<session>` for anonymous visitors, `u:<user id>` for verified users.
    pub conversation_key: String,
    /// The identity stored with their messages (display name and email filled in later).
    pub identity: Identity,
}

/// Why a visitor's claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The session token is missing, too short, too long or has odd characters.
    #[error("session token must be {MIN_SESSION_LEN} to {MAX_SESSION_LEN} characters of A-Z a-z 0-9 - _")]
    BadSession,
    /// A user id was claimed but not proven, or anonymous chat is disabled.
    #[error("{0}")]
    Unauthorized(&'static str),
}

/// The hex HMAC-SHA256 of `user_id` under `secret`: what the site's server puts in `data-user-sig`.
pub fn sign_user_id(secret: &[u8], user_id: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// True when `signature` (hex, either case) is the HMAC of `user_id`; compared in constant time.
pub fn verify_user_sig(secret: &[u8], user_id: &str, signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(user_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// True for a token the widget could have made: long enough to be unguessable, URL-safe.
pub fn is_valid_session(token: &str) -> bool {
    (MIN_SESSION_LEN..=MAX_SESSION_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the claims and derives the conversation key and identity.
pub fn resolve_visitor(
    claims: Claims<'_>,
    secret: Option<&[u8]>,
    require_verified: bool,
) -> Result<Visitor, IdentityError> {
    if !is_valid_session(claims.session) {
        return Err(IdentityError::BadSession);
    }
    // The widget sends `""` when the host page has no data-user-id; that is no claim.
    let user_id = claims.user_id.filter(|id| !id.is_empty());
    let Some(user_id) = user_id else {
        if require_verified {
            return Err(IdentityError::Unauthorized(
                "this chat needs a signed-in user (user_id and user_sig)",
            ));
        }
        return Ok(Visitor {
            conversation_key: format!("s:{}", claims.session),
            identity: Identity {
                id: anonymous_visitor_id(claims.session),
                ..Identity::default()
            },
        });
    };
    if user_id.len() > MAX_USER_ID_LEN || user_id.chars().any(char::is_control) {
        return Err(IdentityError::Unauthorized("user_id is not a valid id"));
    }
    let Some(secret) = secret else {
        return Err(IdentityError::Unauthorized(
            "this gateway has no identity secret, so user ids can not be verified",
        ));
    };
    let Some(signature) = claims.user_sig.filter(|sig| !sig.is_empty()) else {
        return Err(IdentityError::Unauthorized("user_id needs a user_sig"));
    };
    if !verify_user_sig(secret, user_id, signature) {
        return Err(IdentityError::Unauthorized(
            "user_sig does not match user_id",
        ));
    }
    Ok(Visitor {
        conversation_key: format!("u:{user_id}"),
        identity: Identity {
            id: user_id.to_owned(),
            verified: true,
            ..Identity::default()
        },
    })
}

/// A stable, non-secret id for an anonymous visitor.
///
/// The session token is a bearer secret; agents see identity ids in the desk, so they get a
/// hash of it instead and can not use it to write into the visitor's chat.
fn anonymous_visitor_id(session: &str) -> String {
    let digest = Sha256::digest(session.as_bytes());
    format!("visitor-{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = "k3J9x2mQ7vB1nZ8wR4tY6uP0";

    fn claims<'a>(user_id: Option<&'a str>, user_sig: Option<&'a str>) -> Claims<'a> {
        Claims {
            session: SESSION,
            user_id,
            user_sig,
        }
    }

    #[test]
    fn signature_matches_rfc_4231_vector() {
        // RFC 4231, test case 2.
        let sig = sign_user_id(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_user_sig(
            b"Jefe",
            "what do ya want for nothing?",
            &sig.to_uppercase()
        ));
        assert!(!verify_user_sig(
            b"Jefe",
            "what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_user_sig(b"Jefe", "x", "not hex"));
        assert!(!verify_user_sig(b"Jefe", "x", ""));
    }

    #[test]
    fn anonymous_visitor_gets_session_key_and_hashed_id() {
        let visitor = resolve_visitor(claims(None, None), None, false).unwrap();
        assert_eq!(visitor.conversation_key, format!("s:{SESSION}"));
        assert!(visitor.identity.id.starts_with("visitor-"));
        assert!(!visitor.identity.id.contains(SESSION));
        assert!(!visitor.identity.verified);
        // An empty data-user-id is no claim at all.
        let same = resolve_visitor(claims(Some(""), Some("")), None, false).unwrap();
        assert_eq!(same, visitor);
    }

    #[test]
    fn signed_user_gets_user_key() {
        let sig = sign_user_id(b"secret", "user-42");
        let visitor =
            resolve_visitor(claims(Some("user-42"), Some(&sig)), Some(b"secret"), true).unwrap();
        assert_eq!(visitor.conversation_key, "u:user-42");
        assert_eq!(visitor.identity.id, "user-42");
        assert!(visitor.identity.verified);
    }

    #[test]
    fn forged_or_unsigned_claims_are_refused() {
        let sig = sign_user_id(b"other secret", "user-42");
        for (user_sig, secret) in [
            (Some(sig.as_str()), Some(&b"secret"[..])),
            (None, Some(&b"secret"[..])),
            (Some(sig.as_str()), None),
        ] {
            let result = resolve_visitor(claims(Some("user-42"), user_sig), secret, false);
            assert!(
                matches!(result, Err(IdentityError::Unauthorized(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn anonymous_is_refused_when_verification_is_required() {
        let result = resolve_visitor(claims(None, None), Some(b"secret"), true);
        assert!(matches!(result, Err(IdentityError::Unauthorized(_))));
    }

    #[test]
    fn session_tokens_must_be_long_and_plain() {
        assert!(is_valid_session(SESSION));
        assert!(is_valid_session("abcdefghijklmnop"));
        assert!(!is_valid_session("short"));
        assert!(!is_valid_session("abcdefghijklmno"));
        assert!(!is_valid_session("abcdefghijklmnop:x"));
        assert!(!is_valid_session("abcdefghijklmnop x"));
        assert!(!is_valid_session(&"a".repeat(129)));
        let bad = Claims {
            session: "../../etc/passwd-xx",
            user_id: None,
            user_sig: None,
        };
        assert_eq!(
            resolve_visitor(bad, None, false),
            Err(IdentityError::BadSession)
        );
    }
}
