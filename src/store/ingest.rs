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
    /// The case it belongs to (its number in the conversation).
    pub case_number: u64,
    /// What the message did to the case.
    pub case_event: CaseEvent,
}

/// What a customer message did to the conversation's case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEvent {
    /// Nothing: it continues the open case (or was a replay).
    Continued,
    /// It opened a case.
    Opened,
    /// It opened a case within the repeat window of the previous one's close.
    RepeatContact,
    /// It reopened the case closed within the reopen window.
    Reopened,
    /// It rated the closed case, which stays closed.
    Rating,
}

impl CaseEvent {
    fn parse(name: &str) -> CaseEvent {
        match name {
            "opened" => CaseEvent::Opened,
            "repeat" => CaseEvent::RepeatContact,
            "reopened" => CaseEvent::Reopened,
            "rating" => CaseEvent::Rating,
            _ => CaseEvent::Continued,
        }
    }
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
        let rules = &self.case_rules;
        let is_rating = crate::pipeline::csat_rating(&inbound.text).is_some();
        let mut invocation = self.scripts.ingest.prepare_invoke();
        invocation
            .key(keys::conversation(&id))
            .key(keys::messages(&id))
            .key(keys::seen(&id))
            .key(keys::inbound(partition))
            .key(keys::conversation_index(partition))
            .key(keys::case_log(partition))
            .arg(&inbound.message_id)
            .arg(inbound.channel.as_str())
            .arg(&inbound.conversation_key)
            .arg(&id)
            .arg(now_ms())
            .arg(inbound.kind.as_str())
            .arg(&inbound.text)
            .arg(contact)
            .arg(context)
            .arg(file_refs)
            .arg(rules.reopen_window_ms)
            .arg(rules.repeat_window_ms)
            .arg(if is_rating { "1" } else { "" });
        type Reply = (i64, String, String, i64, u64, String);
        let (is_new, message_id, status, created, case_number, case_event): Reply = self
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
            case_number,
            case_event: CaseEvent::parse(&case_event),
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
                // Kept with the conversation (its own slot), so erasing it finds the alias.
                let link = format!("{}:{}", inbound.channel.as_str(), inbound.conversation_key);
                self.bounded(
                    Duration::ZERO,
                    conn.sadd::<_, _, ()>(keys::links(&linked), link),
                )
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
/// The rule: an address links channels when the channel vouches for it (`email_verified`, set
/// by the connector: a mail's sender, a workspace's verified profile address, a site's signed
/// claim), or when a verified identity's id *is* the address. An unverified claim (a widget
/// attribute) never joins someone else's conversation.
pub fn linkable_email(inbound: &Inbound) -> Option<String> {
    let identity = &inbound.author;
    let address = match &identity.email {
        Some(email) if identity.email_verified => email.as_str(),
        _ if identity.verified && identity.id.contains('@') => identity.id.as_str(),
        _ => return None,
    };
    let address = address.trim().to_lowercase();
    (address.contains('@') && !address.contains(char::is_whitespace)).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::linkable_email;
    use switchboard_api::{ChannelKind, Identity, Inbound, InboundKind};

    fn inbound(id: &str, email: Option<&str>, verified: bool, email_verified: bool) -> Inbound {
        Inbound {
            channel: ChannelKind::new("anychannel"),
            conversation_key: "k".into(),
            message_id: "m".into(),
            kind: InboundKind::Text,
            author: Identity {
                id: id.into(),
                display_name: None,
                email: email.map(Into::into),
                verified,
                email_verified,
            },
            text: "hi".into(),
            context: Default::default(),
            files: Vec::new(),
        }
    }

    #[test]
    fn only_addresses_a_channel_vouches_for_link_contacts() {
        let sender = inbound("Alice@Example.org", Some("Alice@Example.org"), false, true);
        assert_eq!(
            linkable_email(&sender).as_deref(),
            Some("alice@example.org")
        );
        let verified_id = inbound("alice@example.org", None, true, false);
        assert_eq!(
            linkable_email(&verified_id).as_deref(),
            Some("alice@example.org")
        );
        let claimed = inbound("visitor-1", Some("alice@example.org"), false, false);
        assert_eq!(
            linkable_email(&claimed),
            None,
            "an address the channel does not vouch for is only a claim"
        );
        let verified_user_claimed_email = inbound("42", Some("alice@example.org"), true, false);
        assert_eq!(linkable_email(&verified_user_claimed_email), None);
        let vouched = inbound("42", Some(" Alice@example.org "), true, true);
        assert_eq!(
            linkable_email(&vouched).as_deref(),
            Some("alice@example.org")
        );
        let unverified_id = inbound("bob@example.org", None, false, false);
        assert_eq!(linkable_email(&unverified_id), None);
        let not_an_address = inbound("12345", Some("no address"), true, true);
        assert_eq!(linkable_email(&not_an_address), None);
    }
}
