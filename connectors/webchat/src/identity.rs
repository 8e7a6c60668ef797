//! Who a web chat visitor is, and which conversation is theirs.
//!
//! Anonymous visitors are known by a random session token the widget keeps in
//! `localStorage`; it is a bearer secret, so it must be long and random. A site that knows
//! its user signs what it vouches for on its server (see `claims.rs`): the user id, an expiry
//! and attributes such as the tier. The older id-only form, `user_sig = hex(HMAC-SHA256(secret,
//! user_id))`, still proves the id but vouches for nothing else and never expires.
//! A claimed user without a valid signature is refused, never downgraded to anonymous,
//! so a forged claim can not read or write someone else's conversation.
//!
//! The demo page signs with its own random per-process key, never the site's secret, and its
//! users live under their own conversation keys (`d:`), so the demo can not make anyone a
//! real user.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use switchboard_api::Identity;

use crate::claims::{self, ClaimsError};

/// Shortest session token accepted: 16 characters of the widget's alphabet carry ~96 bits.
const MIN_SESSION_LEN: usize = 16;
/// Longest session token accepted; bounds the key stored per conversation.
const MAX_SESSION_LEN: usize = 128;
/// Longest user id accepted.
const MAX_USER_ID_LEN: usize = 256;

/// What the visitor's browser claims about itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claims<'a> {
    /// The widget's random session token.
    pub session: &'a str,
    /// A user id the site put on the script tag (`data-user-id`), if any.
    pub user_id: Option<&'a str>,
    /// The site's signed claims (`data-user-claims`), if any.
    pub user_claims: Option<&'a str>,
    /// The site's signature of the claims, or of the user id when there are no claims.
    pub user_sig: Option<&'a str>,
}

/// The keys a signature may be made with.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigningKeys<'a> {
    /// The site's `identity_secret`.
    pub site: Option<&'a [u8]>,
    /// The demo page's random key (only when the demo is on).
    pub demo: Option<&'a [u8]>,
}

/// A visitor whose claims checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// The conversation key: `s:<session>` for anonymous visitors, `u:<user id>` for verified
    /// users, `d:<user id>` for the demo page's users.
    pub conversation_key: String,
    /// The identity stored with their messages (display name and email filled in later).
    pub identity: Identity,
    /// What the site signed about the user besides the id (`tier`, `email`, `name`, ...);
    /// empty for anonymous visitors and id-only signatures.
    pub vouched: BTreeMap<String, String>,
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
    /// Signed claims that do not hold (bad signature, shape, expired).
    #[error(transparent)]
    Claims(#[from] ClaimsError),
}

/// The hex HMAC-SHA256 of `user_id` under `secret`: the id-only `data-user-sig`.
pub fn sign_user_id(secret: &[u8], user_id: &str) -> String {
    claims::mac_hex(secret, user_id.as_bytes())
}

/// True when `signature` (hex, either case) is the HMAC of `user_id`; compared in constant time.
pub fn verify_user_sig(secret: &[u8], user_id: &str, signature: &str) -> bool {
    claims::mac_matches(secret, user_id.as_bytes(), signature)
}

/// True for a token the widget could have made: long enough to be unguessable, URL-safe.
pub fn is_valid_session(token: &str) -> bool {
    (MIN_SESSION_LEN..=MAX_SESSION_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the claims and derives the conversation key and identity; `now_secs` is the Unix
/// time signed claims must not have expired at.
pub fn resolve_visitor(
    claims: Claims<'_>,
    keys: SigningKeys<'_>,
    require_verified: bool,
    now_secs: u64,
) -> Result<Visitor, IdentityError> {
    if !is_valid_session(claims.session) {
        return Err(IdentityError::BadSession);
    }
    // The widget sends `""` for an attribute the host page does not have; that is no claim.
    let user_id = present(claims.user_id);
    let signature = present(claims.user_sig);
    if let Some(blob) = present(claims.user_claims) {
        return signed_claims(blob, user_id, signature, keys, now_secs);
    }
    let Some(user_id) = user_id else {
        if require_verified {
            return Err(IdentityError::Unauthorized(
                "this chat needs a signed-in user (user_claims and user_sig)",
            ));
        }
        return Ok(Visitor {
            conversation_key: format!("s:{}", claims.session),
            identity: Identity {
                id: anonymous_visitor_id(claims.session),
                ..Identity::default()
            },
            vouched: BTreeMap::new(),
        });
    };
    check_user_id(user_id)?;
    let Some(secret) = keys.site else {
        return Err(IdentityError::Unauthorized(
            "this gateway has no identity secret, so user ids can not be verified",
        ));
    };
    let Some(signature) = signature else {
        return Err(IdentityError::Unauthorized("user_id needs a user_sig"));
    };
    // A claims blob is signed the same way; as an id it would be a verified user that never expires.
    if claims::looks_like_claims(user_id) {
        return Err(IdentityError::Unauthorized(
            "signed claims go in user_claims, not user_id",
        ));
    }
    if !verify_user_sig(secret, user_id, signature) {
        return Err(IdentityError::Unauthorized(
            "user_sig does not match user_id",
        ));
    }
    Ok(verified(format!("u:{user_id}"), user_id, BTreeMap::new()))
}

/// The `user_claims` form: the id and every attribute come from the signed blob.
fn signed_claims(
    blob: &str,
    user_id: Option<&str>,
    signature: Option<&str>,
    keys: SigningKeys<'_>,
    now_secs: u64,
) -> Result<Visitor, IdentityError> {
    if keys.site.is_none() && keys.demo.is_none() {
        return Err(IdentityError::Unauthorized(
            "this gateway has no identity secret, so user claims can not be verified",
        ));
    }
    let Some(signature) = signature else {
        return Err(IdentityError::Unauthorized("user_claims needs a user_sig"));
    };
    let by_site = keys
        .site
        .is_some_and(|secret| claims::signed_by(secret, blob, signature));
    let by_demo = !by_site
        && keys
            .demo
            .is_some_and(|secret| claims::signed_by(secret, blob, signature));
    if !by_site && !by_demo {
        return Err(ClaimsError::BadSignature.into());
    }
    let opened = claims::open(blob, now_secs)?;
    check_user_id(&opened.user_id)?;
    // Claims made for one user, sent along with another user's id: a replay, not a sign-in.
    if user_id.is_some_and(|id| id != opened.user_id) {
        return Err(IdentityError::Unauthorized(
            "user_id is not the user the claims were signed for",
        ));
    }
    let prefix = if by_site { "u" } else { "d" };
    let key = format!("{prefix}:{}", opened.user_id);
    Ok(verified(key, &opened.user_id, opened.vouched))
}

/// `None` for a missing or empty value.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.is_empty())
}

fn check_user_id(user_id: &str) -> Result<(), IdentityError> {
    if user_id.len() > MAX_USER_ID_LEN || user_id.chars().any(char::is_control) {
        return Err(IdentityError::Unauthorized("user_id is not a valid id"));
    }
    Ok(())
}

fn verified(conversation_key: String, user_id: &str, vouched: BTreeMap<String, String>) -> Visitor {
    Visitor {
        conversation_key,
        identity: Identity {
            id: user_id.to_owned(),
            verified: true,
            ..Identity::default()
        },
        vouched,
    }
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
    use crate::claims::sign_user_claims;
    use serde_json::json;

    const SESSION: &str = "k3J9x2mQ7vB1nZ8wR4tY6uP0";
    const NOW: u64 = 1_800_000_000;
    const SITE: SigningKeys<'static> = SigningKeys {
        site: Some(b"secret"),
        demo: None,
    };

    fn claims<'a>(user_id: Option<&'a str>, user_sig: Option<&'a str>) -> Claims<'a> {
        Claims {
            session: SESSION,
            user_id,
            user_sig,
            user_claims: None,
        }
    }

    fn signed<'a>(blob: &'a str, sig: &'a str, user_id: Option<&'a str>) -> Claims<'a> {
        Claims {
            session: SESSION,
            user_id,
            user_sig: Some(sig),
            user_claims: Some(blob),
        }
    }

    fn resolve(claims: Claims<'_>, keys: SigningKeys<'_>) -> Result<Visitor, IdentityError> {
        resolve_visitor(claims, keys, false, NOW)
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
        let visitor = resolve(claims(None, None), SigningKeys::default()).unwrap();
        assert_eq!(visitor.conversation_key, format!("s:{SESSION}"));
        assert!(visitor.identity.id.starts_with("visitor-"));
        assert!(!visitor.identity.id.contains(SESSION));
        assert!(!visitor.identity.verified);
        assert!(visitor.vouched.is_empty());
        // An empty data-user-id is no claim at all.
        let same = resolve(claims(Some(""), Some("")), SigningKeys::default()).unwrap();
        assert_eq!(same, visitor);
    }

    #[test]
    fn signed_user_id_gets_user_key_and_vouches_for_nothing_else() {
        let sig = sign_user_id(b"secret", "user-42");
        let visitor =
            resolve_visitor(claims(Some("user-42"), Some(&sig)), SITE, true, NOW).unwrap();
        assert_eq!(visitor.conversation_key, "u:user-42");
        assert_eq!(visitor.identity.id, "user-42");
        assert!(visitor.identity.verified);
        assert!(visitor.vouched.is_empty());
    }

    #[test]
    fn signed_claims_give_the_user_and_what_the_site_vouches_for() {
        let (blob, sig) = sign_user_claims(
            b"secret",
            &json!({"user_id": "user-42", "exp": NOW + 600, "tier": "vip", "email": "dana@example.com"}),
        );
        let visitor = resolve_visitor(signed(&blob, &sig, None), SITE, true, NOW).unwrap();
        assert_eq!(visitor.conversation_key, "u:user-42");
        assert_eq!(visitor.identity.id, "user-42");
        assert!(visitor.identity.verified);
        assert_eq!(visitor.vouched["tier"], "vip");
        assert_eq!(visitor.vouched["email"], "dana@example.com");
        // The widget may also send the id it read from the claims: the same user is fine.
        let same = resolve(signed(&blob, &sig, Some("user-42")), SITE).unwrap();
        assert_eq!(same, visitor);
    }

    #[test]
    fn forged_altered_expired_or_replayed_claims_are_refused() {
        let claims_of = |user: &str, exp: u64| json!({"user_id": user, "exp": exp, "tier": "vip"});
        let (blob, sig) = sign_user_claims(b"secret", &claims_of("alice", NOW + 600));
        let (_, forged_sig) = sign_user_claims(b"guessed", &claims_of("alice", NOW + 600));
        let (altered, _) = sign_user_claims(b"secret", &claims_of("mallory", NOW + 600));
        let (expired, expired_sig) = sign_user_claims(b"secret", &claims_of("alice", NOW - 1));
        let refused = [
            // Signed with another secret.
            resolve(signed(&blob, &forged_sig, None), SITE),
            // Another user's claims under Alice's signature.
            resolve(signed(&altered, &sig, None), SITE),
            // Expired.
            resolve(signed(&expired, &expired_sig, None), SITE),
            // Alice's claims presented as Bob.
            resolve(signed(&blob, &sig, Some("bob")), SITE),
            // No signature at all.
            resolve(
                Claims {
                    user_sig: None,
                    ..signed(&blob, &sig, None)
                },
                SITE,
            ),
            // A gateway without any secret verifies nothing.
            resolve(signed(&blob, &sig, None), SigningKeys::default()),
            // The claims' signature replayed as an id-only signature.
            resolve(claims(Some(&blob), Some(&sig)), SITE),
        ];
        for (case, result) in refused.into_iter().enumerate() {
            assert!(
                matches!(
                    result,
                    Err(IdentityError::Unauthorized(_) | IdentityError::Claims(_))
                ),
                "case {case}: {result:?}"
            );
        }
    }

    #[test]
    fn demo_claims_are_kept_apart_from_real_users() {
        let keys = SigningKeys {
            site: Some(b"secret"),
            demo: Some(b"demo key"),
        };
        let (blob, sig) =
            sign_user_claims(b"demo key", &json!({"user_id": "user-42", "exp": NOW + 60}));
        let visitor = resolve(signed(&blob, &sig, None), keys).unwrap();
        assert_eq!(visitor.conversation_key, "d:user-42", "never u:user-42");
        // Without the demo, its key verifies nothing.
        assert!(resolve(signed(&blob, &sig, None), SITE).is_err());
        // And the demo key never signs a plain user id.
        let id_sig = sign_user_id(b"demo key", "user-42");
        assert!(resolve(claims(Some("user-42"), Some(&id_sig)), keys).is_err());
    }

    #[test]
    fn forged_or_unsigned_claims_are_refused() {
        let sig = sign_user_id(b"other secret", "user-42");
        for (user_sig, site) in [
            (Some(sig.as_str()), Some(&b"secret"[..])),
            (None, Some(&b"secret"[..])),
            (Some(sig.as_str()), None),
        ] {
            let keys = SigningKeys { site, demo: None };
            let result = resolve(claims(Some("user-42"), user_sig), keys);
            assert!(
                matches!(result, Err(IdentityError::Unauthorized(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn anonymous_is_refused_when_verification_is_required() {
        let result = resolve_visitor(claims(None, None), SITE, true, NOW);
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
            ..Claims::default()
        };
        assert_eq!(
            resolve(bad, SigningKeys::default()),
            Err(IdentityError::BadSession)
        );
    }
}
