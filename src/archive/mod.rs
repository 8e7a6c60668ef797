//! Retention: conversations done with are moved out of Redis into an archive of gzip'd JSON
//! lines (one [`ArchivedConversation`] per line), so Redis memory is bounded by the open and
//! recent ones.
//!
//! Crash safety comes from the order of the steps. A run writes a segment (durably), then its
//! manifest (the segment's commit record: which conversations it holds, its checksum), then
//! removes those conversations from Redis. A segment without a manifest is a run that died
//! before committing: it is deleted and its conversations, still in Redis, are archived
//! again. A conversation named in a manifest but still in Redis is a run that died before
//! removing it: it is removed without being written again. So re-running after a crash at any
//! point loses nothing and duplicates nothing. A conversation a customer wrote to between the
//! read and the removal stays in Redis (the removal checks it is unchanged), to be archived
//! whole later.
//!
//! Each line carries the conversation's case events, and once a partition's due conversations
//! are committed its case stream is trimmed to the retention, so the report reads old case
//! figures from the archive (`crate::report`) and the stream stays bounded too.

mod s3;
mod scheduled;
mod store;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use s3::{S3Config, S3Store};
pub use scheduled::ScheduledArchive;
pub use store::{ArchiveStore, LocalDirStore};

use crate::model::{field, Status};
use crate::store::{keys, ConversationDump, Purged, Store, StoreError};

const SEGMENTS: &str = "segments/";
const MANIFESTS: &str = "manifests/";
/// Conversations per segment, and roughly the most bytes of them: bounds what a run holds in
/// memory and what a crash redoes.
const SEGMENT_CONVERSATIONS: usize = 500;
const SEGMENT_BYTES: usize = 64 << 20;
const DAY_MS: u64 = 86_400_000;

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Resolved conversations whose last activity is older than this many days are archived
    /// (fractions allowed).
    #[serde(default = "default_archive_after_days")]
    pub archive_after_days: f64,
    /// The archive's directory (relative to the config file); unset, and without `s3`,
    /// nothing is archived.
    #[serde(default)]
    pub archive_dir: Option<std::path::PathBuf>,
    /// With an archive, the running gateway archives what is due every this many minutes
    /// (one instance at a time); 0 leaves it to `switchboard archive run` (cron).
    #[serde(default = "default_run_every_minutes")]
    pub run_every_minutes: f64,
    /// `[retention.s3]`: the archive in an S3-compatible bucket instead of a directory.
    #[serde(default)]
    pub s3: Option<S3Config>,
}

fn default_archive_after_days() -> f64 {
    90.0
}

fn default_run_every_minutes() -> f64 {
    60.0
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            archive_after_days: default_archive_after_days(),
            archive_dir: None,
            run_every_minutes: default_run_every_minutes(),
            s3: None,
        }
    }
}

impl RetentionConfig {
    /// Adds `(key, problem)` pairs for what is wrong.
    pub fn validate(&self, problems: &mut Vec<(String, String)>) {
        let days = self.archive_after_days;
        if !(days.is_finite() && days > 0.0 && days <= 36_500.0) {
            problems.push((
                "retention.archive_after_days".into(),
                format!("must be more than 0 and at most 36500, got {days}"),
            ));
        }
        if let Some(s3) = &self.s3 {
            if self.archive_dir.is_some() {
                problems.push((
                    "retention.s3".into(),
                    "retention.archive_dir is set too: the archive lives in one place, keep one of them"
                        .into(),
                ));
            }
            s3.validate(problems);
        }
        let minutes = self.run_every_minutes;
        if !(minutes.is_finite() && (0.0..=525_600.0).contains(&minutes)) {
            problems.push((
                "retention.run_every_minutes".into(),
                format!("must be between 0 (off) and 525600 (a year), got {minutes}"),
            ));
        }
    }

    /// Reads the secrets the section names from the environment.
    pub fn resolve_secrets(&mut self, problems: &mut Vec<(String, String)>) {
        if let Some(s3) = &mut self.s3 {
            s3.resolve_secrets(problems);
        }
    }

    /// How long a resolved conversation stays in Redis after its last activity, ms.
    pub fn archive_after_ms(&self) -> u64 {
        (self.archive_after_days * DAY_MS as f64) as u64
    }

    /// How often the running gateway archives; `None` when it leaves that to the command,
    /// or when there is no archive.
    pub fn run_every(&self) -> Option<std::time::Duration> {
        let every = std::time::Duration::from_secs_f64(self.run_every_minutes * 60.0);
        ((self.archive_dir.is_some() || self.s3.is_some()) && !every.is_zero()).then_some(every)
    }
}

/// Whether a conversation is done with and old enough to leave Redis.
///
/// Resolved, with no activity for `after_days`; it is the one place that decides. Closing a
/// case (`crate::cases`) sets the conversation resolved, so this is "its last case closed at
/// least `after_days` ago"; a resolved record whose case close was interrupted is as done.
pub fn archivable(conversation: &ConversationDump, now_ms: u64, after_days: u32) -> bool {
    archivable_after_ms(conversation, now_ms, u64::from(after_days) * DAY_MS)
}

/// [`archivable`] with the retention in ms.
pub fn archivable_after_ms(conversation: &ConversationDump, now_ms: u64, after_ms: u64) -> bool {
    let resolved = (conversation.record.get(field::STATUS))
        .is_some_and(|status| Status::parse(status) == Status::Resolved);
    resolved && conversation.last_activity_ms() + after_ms <= now_ms
}

/// [`archivable`] from the record alone, before reading a conversation whole: its
/// `updated_ms` moves with every message and decision.
fn record_archivable(
    id: &str,
    record: std::collections::BTreeMap<String, String>,
    now_ms: u64,
    after_ms: u64,
) -> bool {
    let light = ConversationDump {
        id: id.to_owned(),
        record,
        ..ConversationDump::default()
    };
    archivable_after_ms(&light, now_ms, after_ms)
}

/// Roughly what a dump weighs in memory.
fn weight(dump: &ConversationDump) -> usize {
    let files: usize = dump.files.iter().map(|file| file.data_base64.len()).sum();
    files + 512 * (dump.transcript.len() + dump.escalations.len() + 1)
}

/// One line of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedConversation {
    /// When it was archived, ms since the epoch.
    pub archived_ms: u64,
    /// Everything Redis held about it.
    pub conversation: ConversationDump,
}

/// What tells one archived state of a conversation from another: its id, the life of that id
/// (`created_ms`) and how far it had got (last activity).
type Version = (String, u64, u64);

fn version_of(dump: &ConversationDump) -> Version {
    (dump.id.clone(), dump.created_ms(), dump.last_activity_ms())
}

/// A segment's commit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    segment: String,
    archived_ms: u64,
    /// `(id, created_ms, last activity ms)` of each line.
    conversations: Vec<Version>,
    sha256: String,
    bytes: u64,
}

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive store failed.
    #[error("archive: {0}")]
    Io(#[from] std::io::Error),
    /// An archive object is not what its manifest says.
    #[error("archive object {name}: {problem}")]
    Corrupt {
        /// The object.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Conversations written to the archive and removed from Redis.
    pub archived: u64,
    /// Conversations a crashed run had written already, now only removed from Redis.
    pub finished_from_earlier_run: u64,
    /// Conversations that changed while the run worked: kept in Redis for a later run.
    pub changed_meanwhile: u64,
    /// Segments written.
    pub segments: u64,
    /// Segments of a crashed run, never committed, deleted.
    pub uncommitted_segments_removed: u64,
    /// What was removed from Redis.
    pub purged: Purged,
    /// Case log entries older than the retention trimmed from Redis (`XTRIM MINID`).
    pub case_events_trimmed: u64,
}

/// What the archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveStatus {
    /// Committed segments.
    pub segments: u64,
    /// Conversations in them.
    pub conversations: u64,
    /// Their compressed size.
    pub bytes: u64,
    /// The first and last run's time, ms.
    pub oldest_ms: Option<u64>,
    /// See `oldest_ms`.
    pub newest_ms: Option<u64>,
}

/// The archive: segments of gzip'd JSON lines in an [`ArchiveStore`].
#[derive(Clone)]
pub struct Archive {
    objects: Arc<dyn ArchiveStore>,
}

impl Archive {
    /// An archive kept in `objects`.
    pub fn new(objects: Arc<dyn ArchiveStore>) -> Archive {
        Archive { objects }
    }

    async fn manifests(&self) -> Result<Vec<Manifest>, ArchiveError> {
        let mut manifests = Vec::new();
        for name in self.objects.list(MANIFESTS).await? {
            let Some(bytes) = self.objects.get(&name).await? else {
                continue;
            };
            manifests.push(serde_json::from_slice(&bytes).map_err(|error| {
                ArchiveError::Corrupt {
                    name: name.clone(),
                    problem: error.to_string(),
                }
            })?);
        }
        Ok(manifests)
    }

    async fn read_segment(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<ArchivedConversation>, ArchiveError> {
        let name = format!("{SEGMENTS}{}", manifest.segment);
        let corrupt = |problem: String| ArchiveError::Corrupt {
            name: name.clone(),
            problem,
        };
        let bytes = (self.objects.get(&name).await?)
            .ok_or_else(|| corrupt("listed in its manifest but missing".into()))?;
        if hex::encode(Sha256::digest(&bytes)) != manifest.sha256 {
            return Err(corrupt("checksum differs from its manifest".into()));
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|error| corrupt(error.to_string()))?;
        text.lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).map_err(|error| corrupt(error.to_string())))
            .collect()
    }

    /// Every archived conversation, oldest segment first; each archived state once (a
    /// crash while rewriting a segment for `forget` can leave two copies for a moment).
    pub async fn read_all(&self) -> Result<Vec<ArchivedConversation>, ArchiveError> {
        let mut seen = BTreeSet::new();
        let mut all = Vec::new();
        for manifest in self.manifests().await? {
            for line in self.read_segment(&manifest).await? {
                if seen.insert(version_of(&line.conversation)) {
                    all.push(line);
                }
            }
        }
        Ok(all)
    }

    /// Writes `lines` as a new committed segment: the segment first, durably, then its
    /// manifest.
    async fn commit_segment(
        &self,
        archived_ms: u64,
        lines: &[ArchivedConversation],
    ) -> Result<(), ArchiveError> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for line in lines {
            let json = serde_json::to_string(line).map_err(std::io::Error::other)?;
            encoder.write_all(json.as_bytes())?;
            encoder.write_all(b"\n")?;
        }
        let bytes = encoder.finish()?;
        let segment = format!(
            "{archived_ms:015}-{}.jsonl.gz",
            hex::encode(rand::random::<[u8; 6]>())
        );
        let manifest = Manifest {
            segment: segment.clone(),
            archived_ms,
            conversations: lines
                .iter()
                .map(|line| version_of(&line.conversation))
                .collect(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes: bytes.len() as u64,
        };
        self.objects
            .put(&format!("{SEGMENTS}{segment}"), bytes)
            .await?;
        let manifest_json = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
        self.objects
            .put(&format!("{MANIFESTS}{segment}.json"), manifest_json)
            .await?;
        Ok(())
    }

    /// Deletes segments no manifest commits (a run that died before committing them).
    async fn remove_uncommitted(&self, manifests: &[Manifest]) -> Result<u64, ArchiveError> {
        let committed: BTreeSet<String> = (manifests.iter())
            .map(|manifest| format!("{SEGMENTS}{}", manifest.segment))
            .collect();
        let mut removed = 0;
        for name in self.objects.list(SEGMENTS).await? {
            if !committed.contains(&name) {
                self.objects.delete(&name).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Archives every conversation [`archivable`] at `now_ms`, then removes it from Redis.
    pub async fn run(
        &self,
        store: &Store,
        now_ms: u64,
        after_days: u32,
    ) -> Result<RunReport, ArchiveError> {
        self.run_after_ms(store, now_ms, u64::from(after_days) * DAY_MS)
            .await
    }

    /// [`Archive::run`] with the retention in ms.
    pub async fn run_after_ms(
        &self,
        store: &Store,
        now_ms: u64,
        after_ms: u64,
    ) -> Result<RunReport, ArchiveError> {
        let mut report = RunReport::default();
        let manifests = self.manifests().await?;
        report.uncommitted_segments_removed = self.remove_uncommitted(&manifests).await?;
        let committed: BTreeSet<Version> = (manifests.iter())
            .flat_map(|manifest| manifest.conversations.iter().cloned())
            .collect();
        let cutoff = now_ms.saturating_sub(after_ms);
        for partition in keys::partitions() {
            // Created after the cutoff means active after it: never archivable yet.
            let candidates = store.indexed_conversations(partition, cutoff + 1).await?;
            if !candidates.is_empty() {
                self.run_partition(
                    store,
                    partition,
                    candidates,
                    &committed,
                    now_ms,
                    after_ms,
                    &mut report,
                )
                .await?;
            }
            // Only once the partition's due conversations are committed (each archive line
            // carries its case events): a run that fails before leaves the log whole.
            report.case_events_trimmed += store.trim_case_log(partition, cutoff).await?;
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_partition(
        &self,
        store: &Store,
        partition: usize,
        candidates: Vec<String>,
        committed: &BTreeSet<Version>,
        now_ms: u64,
        after_ms: u64,
        report: &mut RunReport,
    ) -> Result<(), ArchiveError> {
        let mut escalations = store.escalations_by_conversation(partition).await?;
        let mut case_log = store.case_log_by_conversation(partition).await?;
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for id in candidates {
            let record = store.conversation_fields(&id).await?;
            if !record_archivable(&id, record, now_ms, after_ms) {
                continue;
            }
            let log = escalations.remove(&id).unwrap_or_default();
            let Some(mut dump) = store.dump_conversation(&id, log).await? else {
                continue;
            };
            dump.case_events = case_log.remove(&id).unwrap_or_default();
            if !archivable_after_ms(&dump, now_ms, after_ms) {
                continue;
            }
            if committed.contains(&version_of(&dump)) {
                self.purge(store, &[dump], report, true).await?;
                continue;
            }
            batch_bytes += weight(&dump);
            batch.push(dump);
            if batch.len() == SEGMENT_CONVERSATIONS || batch_bytes >= SEGMENT_BYTES {
                self.archive_batch(store, now_ms, std::mem::take(&mut batch), report)
                    .await?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            self.archive_batch(store, now_ms, batch, report).await?;
        }
        Ok(())
    }

    async fn archive_batch(
        &self,
        store: &Store,
        now_ms: u64,
        batch: Vec<ConversationDump>,
        report: &mut RunReport,
    ) -> Result<(), ArchiveError> {
        let lines: Vec<ArchivedConversation> = (batch.iter())
            .map(|dump| ArchivedConversation {
                archived_ms: now_ms,
                conversation: dump.clone(),
            })
            .collect();
        self.commit_segment(now_ms, &lines).await?;
        report.segments += 1;
        self.purge(store, &batch, report, false).await
    }

    async fn purge(
        &self,
        store: &Store,
        dumps: &[ConversationDump],
        report: &mut RunReport,
        from_earlier_run: bool,
    ) -> Result<(), ArchiveError> {
        for dump in dumps {
            match store.purge_conversation(dump, true).await? {
                Some(purged) => {
                    report.purged.add(purged);
                    if from_earlier_run {
                        report.finished_from_earlier_run += 1;
                    } else {
                        report.archived += 1;
                    }
                }
                None => report.changed_meanwhile += 1,
            }
        }
        Ok(())
    }

    /// Removes every archived conversation `forget` picks, rewriting the segments that held
    /// them (new segment committed first, then the old one deleted). Returns how many lines
    /// were removed and the removed conversations themselves (for their desk threads).
    pub async fn forget(
        &self,
        forget: impl Fn(&ConversationDump) -> bool,
    ) -> Result<Vec<ConversationDump>, ArchiveError> {
        let mut removed = Vec::new();
        for manifest in self.manifests().await? {
            let lines = self.read_segment(&manifest).await?;
            let (gone, kept): (Vec<_>, Vec<_>) = lines
                .into_iter()
                .partition(|line| forget(&line.conversation));
            if gone.is_empty() {
                continue;
            }
            if !kept.is_empty() {
                self.commit_segment(manifest.archived_ms, &kept).await?;
            }
            self.objects
                .delete(&format!("{MANIFESTS}{}.json", manifest.segment))
                .await?;
            self.objects
                .delete(&format!("{SEGMENTS}{}", manifest.segment))
                .await?;
            removed.extend(gone.into_iter().map(|line| line.conversation));
        }
        Ok(removed)
    }

    /// What the archive holds.
    pub async fn status(&self) -> Result<ArchiveStatus, ArchiveError> {
        let manifests = self.manifests().await?;
        let mut status = ArchiveStatus::default();
        for manifest in &manifests {
            status.segments += 1;
            status.conversations += manifest.conversations.len() as u64;
            status.bytes += manifest.bytes;
            status.oldest_ms = Some(
                status
                    .oldest_ms
                    .map_or(manifest.archived_ms, |ms| ms.min(manifest.archived_ms)),
            );
            status.newest_ms = Some(
                status
                    .newest_ms
                    .map_or(manifest.archived_ms, |ms| ms.max(manifest.archived_ms)),
            );
        }
        Ok(status)
    }
}

/// Conversations in Redis [`archivable`] at `now_ms`, by partition total.
pub async fn archivable_in_redis(
    store: &Store,
    now_ms: u64,
    after_ms: u64,
) -> Result<u64, StoreError> {
    let cutoff = now_ms.saturating_sub(after_ms);
    let mut count = 0;
    for partition in keys::partitions() {
        for id in store.indexed_conversations(partition, cutoff + 1).await? {
            let record = store.conversation_fields(&id).await?;
            count += u64::from(record_archivable(&id, record, now_ms, after_ms));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(status: &str, updated_ms: u64) -> ConversationDump {
        ConversationDump {
            id: "c1".into(),
            record: [
                (field::STATUS.to_owned(), status.to_owned()),
                (field::CREATED_MS.to_owned(), "1000".to_owned()),
                (field::UPDATED_MS.to_owned(), updated_ms.to_string()),
            ]
            .into(),
            ..ConversationDump::default()
        }
    }

    #[test]
    fn only_resolved_conversations_quiet_for_the_whole_retention_are_archivable() {
        let last = 50 * DAY_MS;
        let due = last + 90 * DAY_MS;
        assert!(archivable(&dump("resolved", last), due, 90));
        assert!(!archivable(&dump("resolved", last), due - 1, 90));
        assert!(!archivable(&dump("escalated", last), due, 90));
        assert!(!archivable(&dump("bot", last), due * 2, 90));
    }
}
