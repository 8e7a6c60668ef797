//! Threading rule: which conversation a mail joins, and the `+token` reply address.
//!
//! **The rule.** The conversation key is always the sender's address, lowercased: one
//! customer, one conversation. Headers a sender controls (In-Reply-To, References, the
//! `+token` in the address they wrote to) never move a mail into another conversation, so a
//! forged In-Reply-To pointing at someone else's thread lands in the forger's own
//! conversation.
//!
//! Our replies carry `Reply-To: support+<token>@domain`, where the token is an HMAC of the
//! conversation key. A mail arriving at a `+token` address is checked: when the token belongs
//! to the sender's own conversation it is recorded as `email.reply_token_valid = "true"`;
//! when it belongs to someone else (a forwarded mail answered by a colleague, or a guess) it
//! is recorded as `"false"`, logged, and the mail still goes to the sender's own
//! conversation. In-Reply-To and References are kept only to thread our answer in the
//! customer's mail client.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Hex characters of the HMAC kept in a token: 64 bits, short enough for an address.
const TOKEN_LEN: usize = 16;

/// The conversation key for a sender address.
pub fn conversation_key(sender: &str) -> String {
    sender.trim().to_lowercase()
}

/// The reply token for a conversation key.
pub fn reply_token(key: &[u8], conversation_key: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(conversation_key.as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(digest)[..TOKEN_LEN].to_owned()
}

/// `local+token@domain` for the support address `local@domain`.
pub fn reply_address(support_address: &str, token: &str) -> String {
    match support_address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => support_address.to_owned(),
    }
}

/// The token in a recipient `local+token@domain` that belongs to our support address.
pub fn token_in(recipient: &str, support_address: &str) -> Option<String> {
    let (local, domain) = recipient.trim().rsplit_once('@')?;
    let (own_local, own_domain) = support_address.rsplit_once('@')?;
    let (base, token) = local.split_once('+')?;
    (base.eq_ignore_ascii_case(own_local) && domain.eq_ignore_ascii_case(own_domain))
        .then(|| token.to_ascii_lowercase())
}

/// True when `token` is the reply token of the sender's own conversation.
pub fn token_matches(key: &[u8], token: &str, conversation_key: &str) -> bool {
    use subtle_eq::eq;
    eq(
        reply_token(key, conversation_key).as_bytes(),
        token.as_bytes(),
    )
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
mod subtle_eq {
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_foreign_sender() {
        let key = b"secret";
        let alice = conversation_key("Alice@Example.ORG");
        assert_eq!(alice, "alice@example.org");
        let token = reply_token(key, &alice);
        assert_eq!(token.len(), TOKEN_LEN);
        let address = reply_address("support@example.com", &token);
        assert_eq!(
            token_in(&address, "support@example.com"),
            Some(token.clone())
        );
        assert!(token_matches(key, &token, &alice));
        assert!(!token_matches(key, &token, "mallory@example.net"));
        assert_eq!(token_in("support@example.com", "support@example.com"), None);
        assert_eq!(token_in("other+x@example.com", "support@example.com"), None);
    }
}
