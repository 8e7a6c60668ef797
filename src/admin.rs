//! The data-protection commands behind `switchboard contact ...` and `switchboard archive ...`:
//! config in, one line or JSON out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard_api::{BuildContext, Connector, Desk};

use crate::archive::{Archive, LocalDirStore, S3Store};
use crate::config::Config;
use crate::model::now_ms;
use crate::store::Store;

/// What `contact` does.
#[derive(Debug, Clone)]
pub enum ContactCommand {
    /// Writes everything held about the subject as JSON to `out` (stdout when `None`).
    Export {
        /// Email, `channel:key` or conversation id.
        subject: String,
        /// Where to write.
        out: Option<PathBuf>,
    },
    /// Erases the subject everywhere.
    Forget {
        /// Email, `channel:key` or conversation id.
        subject: String,
        /// Who runs it (default: the OS user).
        by: Option<String>,
        /// The request's reference, kept in the audit entry.
        ticket: Option<String>,
    },
    /// Prints the erasure audit log.
    Audit,
}

/// What `archive` does.
#[derive(Debug, Clone, Copy)]
pub enum ArchiveCommand {
    /// Archives what is due and removes it from Redis.
    Run,
    /// What the archive holds and what is due.
    Status,
}

async fn connect(config: &Config) -> Result<Store, String> {
    let timeout = std::time::Duration::from_millis(config.redis.command_timeout_ms);
    Store::connect(&config.redis.url, timeout)
        .await
        .map_err(|error| {
            let url = crate::app::redact_url(&config.redis.url);
            format!("cannot reach Redis at {url}: {error}")
        })
}

/// The archive `config` names, if it names one: a directory or an S3-compatible bucket.
/// Opens no connection; the error says which bucket could not be set up.
pub fn archive_of(config: &Config) -> Result<Option<Archive>, String> {
    let retention = &config.retention;
    if let Some(s3) = &retention.s3 {
        return Ok(Some(Archive::new(Arc::new(S3Store::new(s3)?))));
    }
    Ok((retention.archive_dir.as_ref())
        .map(|dir| Archive::new(Arc::new(LocalDirStore::new(config.base_dir.join(dir))))))
}

/// The configured desk, built to erase its posts (no connection is opened until it is asked).
fn desk_of(config: &mut Config, store: &Store) -> Result<Option<Arc<dyn Desk>>, String> {
    let Some(section) = config.desk.take_enabled() else {
        return Ok(None);
    };
    let cx = BuildContext {
        shared: Arc::new(crate::shared::RedisShared::new(store.clone())),
        ..BuildContext::single_instance("contact-forget", config.files.max_bytes)
    };
    (section.config.build(&cx))
        .map(Some)
        .map_err(|error| format!("desk.{}: {error}", section.name))
}

/// The enabled channels' connectors, built to delete the gateway's messages in customers'
/// chats (no connection is opened until they are asked).
fn channels_of(config: &mut Config, store: &Store) -> Result<Vec<Arc<dyn Connector>>, String> {
    let cx = BuildContext {
        shared: Arc::new(crate::shared::RedisShared::new(store.clone())),
        ..BuildContext::single_instance("contact-forget", config.files.max_bytes)
    };
    (std::mem::take(&mut config.connectors).build(&cx)).map_err(|error| error.to_string())
}

/// The OS user running the command, for the audit entry.
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|error| error.to_string())
}

/// Runs a `contact` command with the config at `path`.
pub async fn contact(path: &Path, command: ContactCommand) -> Result<(), String> {
    let mut config = Config::load(path).map_err(|error| error.to_string())?;
    let archive = archive_of(&config)?;
    let store = connect(&config).await?;
    match command {
        ContactCommand::Export { subject, out } => {
            let export = crate::contact::export(&store, archive.as_ref(), &subject)
                .await
                .map_err(|error| error.to_string())?;
            let text = json(&export)?;
            match out {
                Some(out) => std::fs::write(&out, text + "\n")
                    .map_err(|error| format!("cannot write {}: {error}", out.display()))?,
                None => println!("{text}"),
            }
            eprintln!(
                "{} conversation(s) in Redis, {} archived",
                export.conversations.len(),
                export.archived.len()
            );
        }
        ContactCommand::Forget {
            subject,
            by,
            ticket,
        } => {
            let desk = desk_of(&mut config, &store)?;
            let channels = channels_of(&mut config, &store)?;
            let by = by.unwrap_or_else(os_user);
            let forgotten = crate::contact::forget(
                &store,
                archive.as_ref(),
                desk.as_deref(),
                &channels,
                &subject,
                &by,
                ticket.as_deref(),
            )
            .await
            .map_err(|error| {
                format!("{error}; nothing was recorded as erased, run it again once fixed")
            })?;
            println!("{}", json(&forgotten)?);
            if forgotten.desk_threads_not_reached > 0 {
                eprintln!(
                    "warning: {} desk thread(s) not erased: no desk is enabled in this config",
                    forgotten.desk_threads_not_reached
                );
            }
            if forgotten.channel_messages_not_reached > 0 {
                eprintln!(
                    "warning: {} message(s) to the customer not erased: their channel is not \
                     enabled in this config",
                    forgotten.channel_messages_not_reached
                );
            }
            let sent = forgotten.channel_messages;
            if sent.left + sent.not_erasable > 0 {
                eprintln!(
                    "note: {} message(s) to the customer are still shown on their platform \
                     ({} refused by the platform, e.g. Telegram after 48 hours; {} cannot be \
                     taken back, e.g. email)",
                    sent.left + sent.not_erasable,
                    sent.left,
                    sent.not_erasable
                );
            }
        }
        ContactCommand::Audit => {
            for entry in crate::contact::audit_log(&store)
                .await
                .map_err(|error| error.to_string())?
            {
                println!(
                    "{}",
                    serde_json::to_string(&entry).map_err(|error| error.to_string())?
                );
            }
        }
    }
    Ok(())
}

/// Runs an `archive` command with the config at `path`.
pub async fn archive(path: &Path, command: ArchiveCommand) -> Result<(), String> {
    let config = Config::load(path).map_err(|error| error.to_string())?;
    let Some(archive) = archive_of(&config)? else {
        return Err(format!(
            "{}: neither retention.archive_dir nor [retention.s3] is set: there is no archive",
            path.display()
        ));
    };
    let store = connect(&config).await?;
    let after_ms = config.retention.archive_after_ms();
    match command {
        ArchiveCommand::Run => {
            let report = archive
                .run_after_ms(&store, now_ms(), after_ms)
                .await
                .map_err(|error| format!("{error}; run it again: nothing is lost or doubled"))?;
            println!("{}", json(&report)?);
        }
        ArchiveCommand::Status => {
            let status = archive.status().await.map_err(|error| error.to_string())?;
            let due = crate::archive::archivable_in_redis(&store, now_ms(), after_ms)
                .await
                .map_err(|error| error.to_string())?;
            println!(
                "{}",
                json(&serde_json::json!({"archive": status, "due_in_redis": due}))?
            );
        }
    }
    Ok(())
}
