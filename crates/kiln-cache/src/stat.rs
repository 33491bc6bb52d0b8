//! The context stat cache: a file's content hash is reused while its stat is unchanged.
//!
//! Each row of `stat_cache` (see [`crate::db`]) maps (context root id, path relative to the
//! root) to the file's inode, size, mtime and ctime (ns) when it was hashed, the wall-clock
//! time just before it was read, and the SHA-256 of its content. A lookup checks the file's
//! [`Stamp`] (the `lstat` the COPY planner already took, or a `stat` of its own when it has
//! none) and reuses the hash only when all four fields are equal. ctime counts because a write
//! followed by resetting the mtime (`touch -d`, `cp -p`, `rsync -t`, `tar x`) keeps size and
//! mtime but always moves ctime, which no user call can set.
//!
//! *Racily clean* entries are not trusted (git's rule): a file whose mtime or ctime lies within
//! the racy window (default [`DEFAULT_RACY_WINDOW`]) before the moment it was hashed may have
//! been written again within the same timestamp tick, unseen. Such a file is re-read, and the
//! new row, hashed later, is trusted next time. The window must be at least the filesystem's
//! timestamp granularity (a jiffy on Linux filesystems, 2 s on FAT).
//!
//! A file whose stat changes while it is read is hashed but not recorded.

use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_fileop::{ContentHasher, Stamp, sha256_reader};
use rusqlite::{TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use crate::error::{CacheError, io_err};
use crate::index::Cache;

/// How old a file's mtime and ctime must be, relative to when it was hashed, for its row to be
/// trusted: 2 s, enough for every filesystem's timestamp granularity.
pub const DEFAULT_RACY_WINDOW: Duration = Duration::from_secs(2);

/// The version byte of [`context_root_id`]'s encoding.
const ROOT_ID_VERSION: u8 = 1;

/// The id under which a context root's rows are kept: SHA-256 (hex) of the version byte `1`,
/// the canonical absolute path (`u32` length, then its bytes), the root directory's device
/// and inode (`u64` each, big-endian). A context recreated at the same path gets a new id;
/// its old rows are then dead weight that `prune --all` removes.
pub fn context_root_id(root: &Path) -> Result<String, CacheError> {
    let canonical = root.canonicalize().map_err(io_err("resolve", root))?;
    let meta = std::fs::metadata(&canonical).map_err(io_err("stat", &canonical))?;
    let mut h = Sha256::new();
    h.update([ROOT_ID_VERSION]);
    let bytes = canonical.as_os_str().as_bytes();
    h.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(bytes);
    h.update(meta.dev().to_be_bytes());
    h.update(meta.ino().to_be_bytes());
    Ok(kiln_layer::Digest::from_sha256(&h.finalize().into())
        .hex()
        .to_owned())
}

#[derive(Debug, Clone, Copy)]
struct Row {
    stat: Stamp,
    hashed_ns: i64,
    sha256: [u8; 32],
}

/// A [`ContentHasher`] over the stat cache, for one context root: a file is read only when
/// its stat changed (or is racily clean) since it was last hashed.
///
/// The root's rows are read on a thread of their own, over a read-only connection, started
/// when the hasher is made: a build plans its first COPY meanwhile, and the first file hashed
/// waits for them. A failed read only costs hits; [`StatCachedHasher::flush`] reports it.
/// New hashes are written by `flush` (and on drop, ignoring errors), in one transaction.
/// Paths outside the root (downloads, scratch files) are hashed by reading, and not recorded.
#[derive(Debug)]
pub struct StatCachedHasher<'c> {
    cache: &'c Cache,
    root: PathBuf,
    root_id: String,
    loader: Mutex<Option<std::thread::JoinHandle<Result<Known, CacheError>>>>,
    known: OnceLock<Known>,
    load_error: Mutex<Option<CacheError>>,
    pending: Mutex<Vec<(Vec<u8>, Row)>>,
    racy_window_ns: i64,
    hits: AtomicU64,
    misses: AtomicU64,
}

type Known = HashMap<Vec<u8>, Row, foldhash::fast::RandomState>;

impl Cache {
    /// A stat-cached hasher for the context at `root`. Pass the same path the
    /// `kiln_fileop::SourceRoot` was made with: the hasher strips it from the paths it gets.
    pub fn stat_hasher(&self, root: &Path) -> Result<StatCachedHasher<'_>, CacheError> {
        let root_id = context_root_id(root)?;
        let (db, id) = (self.path().to_owned(), root_id.clone());
        // Without a thread, the rows are read when first needed (see `known`).
        let loader = std::thread::Builder::new()
            .name("kiln-stat-cache".into())
            .spawn(move || load_rows(&db, &id))
            .ok();
        Ok(StatCachedHasher {
            cache: self,
            root: root.to_owned(),
            root_id,
            loader: Mutex::new(loader),
            known: OnceLock::new(),
            load_error: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            racy_window_ns: duration_ns(DEFAULT_RACY_WINDOW),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }
}

/// Every row of context root `root_id`, read over a connection of its own.
fn load_rows(db: &Path, root_id: &str) -> Result<Known, CacheError> {
    let err = |action: &str| {
        let action = format!("{action} (the stat cache)");
        let path = db.to_owned();
        move |source| CacheError::Db {
            action,
            path,
            source,
        }
    };
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err("open"))?;
    conn.busy_timeout(crate::BUSY_TIMEOUT)
        .map_err(err("set the busy timeout"))?;
    // Pages mapped rather than copied in: tens of thousands of rows are read at once.
    conn.pragma_update(None, "mmap_size", 1_i64 << 30)
        .map_err(err("map the database"))?;
    let mut query = conn
        .prepare(
            "SELECT path, ino, size, mtime_ns, ctime_ns, hashed_ns, sha256
             FROM stat_cache WHERE root = ?1",
        )
        .map_err(err("read"))?;
    let mut rows = query.query([root_id]).map_err(err("read"))?;
    let mut known = Known::default();
    while let Some(r) = rows.next().map_err(err("read"))? {
        // A damaged row is only a miss.
        let Ok(sha256) = <[u8; 32]>::try_from(
            r.get_ref(6)
                .map_err(err("read"))?
                .as_bytes()
                .unwrap_or_default(),
        ) else {
            continue;
        };
        let stat = Stamp {
            ino: r.get::<_, i64>(1).map_err(err("read"))?.cast_unsigned(),
            size: r.get::<_, i64>(2).map_err(err("read"))?.cast_unsigned(),
            mtime_ns: r.get(3).map_err(err("read"))?,
            ctime_ns: r.get(4).map_err(err("read"))?,
        };
        known.insert(
            r.get::<_, Vec<u8>>(0).map_err(err("read"))?,
            Row {
                stat,
                hashed_ns: r.get(5).map_err(err("read"))?,
                sha256,
            },
        );
    }
    Ok(known)
}

impl StatCachedHasher<'_> {
    /// Sets the racy window (see the module docs); zero trusts every row whose stat
    /// matches, which is right only on filesystems with exact timestamps (and in tests).
    #[must_use]
    pub fn with_racy_window(mut self, window: Duration) -> Self {
        self.racy_window_ns = duration_ns(window);
        self
    }

    /// The context root's id.
    pub fn root_id(&self) -> &str {
        &self.root_id
    }

    /// How many files were answered from the cache without reading them.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// How many files were read.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The rows read when the hasher was made (waiting for them the first time; read here
    /// when no thread could be had).
    fn known(&self) -> &Known {
        self.known.get_or_init(|| {
            let loaded = match lock(&self.loader).take() {
                Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                None => load_rows(self.cache.path(), &self.root_id),
            };
            loaded.unwrap_or_else(|e| {
                *lock(&self.load_error) = Some(e);
                Known::default()
            })
        })
    }

    /// Writes the hashes computed so far to the index, in one transaction; how many rows.
    /// Fails also when the rows could not be read (every file was then read in full).
    pub fn flush(&self) -> Result<usize, CacheError> {
        let pending = std::mem::take(&mut *lock(&self.pending));
        let written = self.write(&pending)?;
        match lock(&self.load_error).take() {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    fn write(&self, pending: &[(Vec<u8>, Row)]) -> Result<usize, CacheError> {
        if pending.is_empty() {
            return Ok(0);
        }
        let mut conn = self.cache.conn();
        let err = || self.cache.db_err("write the stat cache");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err())?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO stat_cache
                     (root, path, ino, size, mtime_ns, ctime_ns, hashed_ns, sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err())?;
            for (path, row) in pending {
                stmt.execute(params![
                    self.root_id,
                    path,
                    row.stat.ino.cast_signed(),
                    row.stat.size.cast_signed(),
                    row.stat.mtime_ns,
                    row.stat.ctime_ns,
                    row.hashed_ns,
                    row.sha256.as_slice(),
                ])
                .map_err(err())?;
            }
        }
        tx.commit().map_err(err())?;
        Ok(pending.len())
    }

    fn trusted(&self, row: &Row, stat: &Stamp) -> bool {
        row.stat == *stat
            && stat
                .mtime_ns
                .max(stat.ctime_ns)
                .saturating_add(self.racy_window_ns)
                < row.hashed_ns
    }
}

impl ContentHasher for StatCachedHasher<'_> {
    fn sha256(&self, path: &Path, stamp: Option<&Stamp>) -> io::Result<[u8; 32]> {
        let rel = path.strip_prefix(&self.root).ok();
        let before = match stamp {
            Some(s) => *s,
            None if rel.is_some() => Stamp::of(&std::fs::symlink_metadata(path)?),
            None => Stamp::default(),
        };
        if let Some(row) = rel.and_then(|r| self.known().get(r.as_os_str().as_bytes()))
            && self.trusted(row, &before)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(row.sha256);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let hashed_ns = duration_ns(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let mut file = std::fs::File::open(path)?;
        let sha256 = sha256_reader(&mut file)?;
        // Paths outside the root (downloads, scratch files) are not recorded.
        let Some(rel) = rel else {
            return Ok(sha256);
        };
        // Recorded only when the open file is the one planned and did not change meanwhile.
        if Stamp::of(&file.metadata()?) == before {
            lock(&self.pending).push((
                rel.as_os_str().as_bytes().to_vec(),
                Row {
                    stat: before,
                    hashed_ns,
                    sha256,
                },
            ));
        }
        Ok(sha256)
    }
}

impl Drop for StatCachedHasher<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
