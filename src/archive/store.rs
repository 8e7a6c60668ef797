//! Where archive objects live: the small [`ArchiveStore`] interface (named objects, written
//! whole), shaped like an object store so an S3-compatible bucket can implement it, and
//! [`LocalDirStore`], a local directory (`super::s3` has the bucket).

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// Named objects written whole. A `put` that returned `Ok` is durable, and readers see an
/// object whole or not at all; names are `/`-separated paths of `[A-Za-z0-9._-]` parts.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Writes `bytes` as `name`, replacing any object of that name.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> io::Result<()>;
    /// Reads `name`; `None` when there is no such object.
    async fn get(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// The names under `prefix` (a folder, ending in `/`), sorted.
    async fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Deletes `name`; deleting what is not there is not an error.
    async fn delete(&self, name: &str) -> io::Result<()>;
}

/// Archive objects as files under a directory. A put writes a temporary file, fsyncs it,
/// renames it into place and fsyncs the folder, so a crash leaves the old object or the new
/// one, never half of one.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    root: PathBuf,
}

impl LocalDirStore {
    /// A store under `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalDirStore {
        LocalDirStore { root: root.into() }
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }
}

/// Whether `name` is `/`-separated parts of `[A-Za-z0-9._-]` (no `.` or `..`): the names every
/// store takes.
pub(super) fn check_name(name: &str) -> io::Result<()> {
    let valid = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
        });
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an archive object name: {name:?}"),
        ))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

#[async_trait]
impl ArchiveStore for LocalDirStore {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> io::Result<()> {
        use std::io::Write;
        let path = self.path(name)?;
        blocking(move || {
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            sync_dir(&dir)
        })
        .await
    }

    async fn get(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(name)?;
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let folder = prefix.trim_end_matches('/').to_owned();
        let dir = self.path(&folder)?;
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(error) => return Err(error),
            };
            let mut names = Vec::new();
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().into_owned();
                // A temporary file is a put that never finished.
                if !name.contains(".tmp-") {
                    names.push(format!("{folder}/{name}"));
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn delete(&self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_are_written_whole_listed_and_deleted() {
        let root = std::env::temp_dir().join(format!("sb-archive-store-{}", std::process::id()));
        let store = LocalDirStore::new(&root);
        assert_eq!(store.list("segments/").await.unwrap(), Vec::<String>::new());
        store.put("segments/a.gz", b"one".to_vec()).await.unwrap();
        store.put("segments/b.gz", b"two".to_vec()).await.unwrap();
        store.put("segments/a.gz", b"three".to_vec()).await.unwrap();
        assert_eq!(
            store.list("segments/").await.unwrap(),
            vec!["segments/a.gz", "segments/b.gz"]
        );
        assert_eq!(
            store.get("segments/a.gz").await.unwrap().as_deref(),
            Some(&b"three"[..])
        );
        store.delete("segments/a.gz").await.unwrap();
        store.delete("segments/a.gz").await.unwrap();
        assert_eq!(store.get("segments/a.gz").await.unwrap(), None);
        assert!(store.put("../escape", Vec::new()).await.is_err());
        std::fs::remove_dir_all(root).unwrap();
    }
}
