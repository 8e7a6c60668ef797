//! Storing customer messages: one script per message, and the contact links that join a
//! customer's channels into one conversation.

use std::time::Duration;

use redis::AsyncCommands;
use switchboard_api::{ChannelKind, FileRef, Inbound};

use super::{keys, NewFile, Store, StoreError, Work};
use crate::model::{conversation_id, now_ms, Status};

/// The outcome of storing one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The transcript entry id.
    pub message_id: String,
    /// False when the channel message id had been stored before.
    pub is_new: bool,
    /// The conversation's status after ingest.
    pub status: Status,
    /// True when this message started the conversation.
    pub created: bool,
}

impl Store {
    /// Stores one inbound message: dedupe, find-or-create, append, enqueue for triage.
    ///
    /// A customer whose identity carries a linkable email address (see [`linkable_email`]) has
    /// one conversation whatever the channel: the first channel's conversation is recorded for
    /// the address, and later channels are aliased into it (one extra round trip for them).
    pub async fn ingest(&self, inbound: &Inbound) -> Result<Ingested, StoreError> {
        self.ingest_with_files(inbound, &[], Duration::ZERO).await
    }

    /// [`Store::ingest`] with files: their bytes are stored (expiring after `retention`) under
    /// the conversation first, then the message records their refs. File ids derive from the
    /// channel message id, so a platform's retry rewrites the same keys instead of adding any.
    pub async fn ingest_with_files(
        &self,
        inbound: &Inbound,
        files: &[NewFile],
        retention: Duration,
    ) -> Result<Ingested, StoreError> {
        let own_id = conversation_id(inbound.channel, &inbound.conversation_key);
        let id = match linkable_email(inbound) {
            Some(email) => self.link_contact(&email, inbound, &own_id).await?,
            None => own_id,
        };
        let contact = serde_json::to_string(&inbound.author)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let context = if inbound.context == Default::default() {
            String::new()
        } else {
            serde_json::to_string(&inbound.context)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?
        };
        let file_refs = if files.is_empty() {
            String::new()
        } else {
            self.put_files(&id, files, retention).await?;
            let refs: Vec<&FileRef> = files.iter().map(|file| &file.file).collect();
            serde_json::to_string(&refs).map_err(|error| StoreError::Corrupt(error.to_string()))?
        };
        let mut conn = self.conn.clone();
        let partition = keys::partition(&id);
        let mut invocation = self.scripts.ingest.prepare_invoke();
        invocation
            .key(keys::conversation(&id))
            .key(keys::messages(&id))
            .key(keys::seen(&id))
            .key(keys::inbound(partition))
            .key(keys::conversation_index(partition))
            .arg(&inbound.message_id)
            .arg(inbound.channel.as_str())
            .arg(&inbound.conversation_key)
            .arg(&id)
            .arg(now_ms())
            .arg(inbound.kind.as_str())
            .arg(&inbound.text)
            .arg(contact)
            .arg(context)
            .arg(file_refs);
        let (is_new, message_id, status, created): (i64, String, String, i64) = self
            .bounded(Duration::ZERO, invocation.invoke_async(&mut conn))
            .await?;
        if is_new == 1 {
            self.new_work.arrived(Work::Inbound);
        }
        Ok(Ingested {
            conversation_id: id,
            message_id,
            is_new: is_new == 1,
            status: Status::parse(&status),
            created: created == 1,
        })
    }

    /// Finds (or records) the conversation of a linked contact; aliases this channel key to it.
    async fn link_contact(
        &self,
        email: &str,
        inbound: &Inbound,
        own_id: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let existing: Option<String> = self
            .bounded(
                Duration::ZERO,
                redis::cmd("SET")
                    .arg(keys::contact(email))
                    .arg(own_id)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut conn),
            )
            .await?;
        match existing {
            Some(linked) if linked != own_id => {
                let alias = keys::alias(inbound.channel.as_str(), &inbound.conversation_key);
                self.bounded(Duration::ZERO, conn.set::<_, _, ()>(alias, &linked))
                    .await?;
                Ok(linked)
            }
            _ => Ok(own_id.to_owned()),
        }
    }

    /// The conversation id a channel key maps to, following a contact link if there is one.
    pub async fn resolve_conversation(
        &self,
        channel: ChannelKind,
        conversation_key: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let alias: Option<String> = self
            .bounded(
                Duration::ZERO,
                conn.get(keys::alias(channel.as_str(), conversation_key)),
            )
            .await?;
        Ok(alias.unwrap_or_else(|| conversation_id(channel, conversation_key)))
    }
}

/// The email address that links a customer across channels, if their identity has one.
///
/// The rule: an address links channels when the channel vouches for it. An email's sender is
/// its address; a Slack account's profile email is verified by the workspace; a web chat
/// site's signed `email` claim is the site's word (the connector sets a web chat author's email
/// only from signed claims); any other channel links only a verified identity whose id *is*
/// the address. An unverified claim (a widget attribute) never joins someone else's
/// conversation.
pub fn linkable_email(inbound: &Inbound) -> Option<String> {
    let identity = &inbound.author;
    let address = if inbound.channel == ChannelKind::Email {
        identity.email.as_deref().or(Some(identity.id.as_str()))?
    } else if identity.verified && identity.id.contains('@') {
        identity.id.as_str()
    } else if identity.verified
        && matches!(inbound.channel, ChannelKind::Slack | ChannelKind::Webchat)
    {
        // Slack's users.info email is the workspace's verified account address.
        identity.email.as_deref()?
    } else {
        return None;
    };
    let address = address.trim().to_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::linkable_email;
    use switchboard_api::{ChannelKind, Identity, Inbound, InboundKind};

    fn inbound(channel: ChannelKind, id: &str, email: Option<&str>, verified: bool) -> Inbound {
        Inbound {
            channel,
            conversation_key: "k".into(),
            message_id: "m".into(),
            kind: InboundKind::Text,
            author: Identity {
                id: id.into(),
                display_name: None,
                email: email.map(Into::into),
                verified,
            },
            text: "hi".into(),
            context: Default::default(),
            files: Vec::new(),
        }
    }

    #[test]
    fn only_addresses_a_channel_vouches_for_link_contacts() {
        let mail = inbound(
            ChannelKind::Email,
            "Alice@Example.org",
            Some("Alice@Example.org"),
            false,
        );
        assert_eq!(linkable_email(&mail).as_deref(), Some("alice@example.org"));
        let signed = inbound(ChannelKind::Webchat, "alice@example.org", None, true);
        assert_eq!(
            linkable_email(&signed).as_deref(),
            Some("alice@example.org")
        );
        let claimed = inbound(
            ChannelKind::Webchat,
            "visitor-1",
            Some("alice@example.org"),
            false,
        );
        assert_eq!(
            linkable_email(&claimed),
            None,
            "a widget attribute is only a claim"
        );
        // The web chat connector sets a verified user's email only from the site's signed claims.
        let signed_claim = inbound(ChannelKind::Webchat, "42", Some("alice@example.org"), true);
        assert_eq!(
            linkable_email(&signed_claim).as_deref(),
            Some("alice@example.org")
        );
        let signed_id_only = inbound(ChannelKind::Webchat, "42", None, true);
        assert_eq!(linkable_email(&signed_id_only), None);
        let telegram = inbound(ChannelKind::Telegram, "12345", None, true);
        assert_eq!(linkable_email(&telegram), None);
    }
}
