//! Garbage collection (`kiln prune`) and disk usage (`kiln du`).
//!
//! What a record holds on disk: its layer blob (`blobs/sha256/<hex>`) and the layer's
//! snapshot (`snapshots/<first 12 hex of diff_id>/`). Both may be shared: with other records
//! (two keys, the same layer) and with images in `index.json`. Pruning removes records first,
//! least recently used first, and then deletes exactly the blobs and snapshots that a removed
//! record held and that nothing still holds: no remaining record, no image of the store, and
//! nothing the caller's `in_use` names (the layers and snapshots of builds running in this
//! process). It never touches blobs or snapshots it did not find through a removed record.
//!
//! Concurrency: prune holds the store lock, so no transaction publishes an image meanwhile. A
//! record another process used after prune read it is not removed (its `last_used_ms` is
//! compared on delete). A record written by another process just as its blob is deleted heals
//! itself: [`Cache::get`] treats a record whose blob is missing as a miss and drops it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use kiln_layer::Digest;
use kiln_oci::Image;
use rusqlite::{TransactionBehavior, params};

use crate::error::{CacheError, io_err};
use crate::index::{Cache, CacheRecord, LayerRef, to_ms};
use crate::key::CacheKey;

/// What [`Cache::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed, least recently used first.
    pub removed: Vec<CacheKey>,
    /// Layer blobs deleted from the store.
    pub deleted_blobs: Vec<Digest>,
    /// Snapshots deleted, by the `diff_id` of their layer.
    pub deleted_snapshots: Vec<Digest>,
    /// Blobs and snapshots (`diff_id`s) a removed record held that were kept only because
    /// `in_use` named them.
    pub kept_in_use: Vec<Digest>,
    /// Bytes freed: deleted blobs' sizes plus deleted snapshots' disk usage.
    pub freed: u64,
    /// Stat cache rows removed (only with `all`).
    pub stat_rows_removed: u64,
}

/// One record as `kiln du` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordUsage {
    /// The record's key.
    pub key: CacheKey,
    /// Its layer, if the step made one.
    pub layer: Option<LayerRef>,
    /// Disk usage of the layer's snapshot, when it has one.
    pub snapshot_size: Option<u64>,
    /// Whether an image of the store holds the layer too (so pruning would not free it).
    pub in_image: bool,
    /// When the record was made.
    pub created: SystemTime,
    /// Its last use.
    pub last_used: SystemTime,
}

/// What [`Cache::du`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuReport {
    /// Every record, least recently used first.
    pub records: Vec<RecordUsage>,
    /// Sum of the sizes of the distinct layer blobs the records hold.
    pub blob_bytes: u64,
    /// Sum of the disk usage of their distinct snapshots.
    pub snapshot_bytes: u64,
    /// Of `blob_bytes + snapshot_bytes`, what images hold too (pruning does not free it).
    pub shared_bytes: u64,
    /// Rows of the context stat cache.
    pub stat_rows: u64,
}

impl DuReport {
    /// What pruning every record could free at most.
    pub fn reclaimable(&self) -> u64 {
        (self.blob_bytes + self.snapshot_bytes).saturating_sub(self.shared_bytes)
    }
}

/// Blobs and snapshot `diff_id`s the store's images hold.
struct ImageRefs {
    blobs: BTreeSet<Digest>,
    diff_ids: BTreeSet<Digest>,
}

impl Cache {
    /// Removes records and what only they held. Which records go:
    /// - with `all`, every record (and every stat cache row);
    /// - with `older_than`, those not used for that long;
    /// - then, with `keep_storage`, least recently used ones until the blobs and snapshots
    ///   the remaining records alone hold fit in that many bytes.
    ///
    /// `in_use` is asked about each blob digest and each snapshot `diff_id` before it is
    /// deleted; `true` keeps it. The remembered step keys (for explaining misses) are kept.
    pub fn prune(
        &self,
        keep_storage: Option<u64>,
        older_than: Option<Duration>,
        all: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<PruneReport, CacheError> {
        let _lock = self.store().lock()?;
        let images = self.image_refs()?;
        let records = self.records()?;
        let cutoff = older_than.map(|d| {
            to_ms(
                SystemTime::now()
                    .checked_sub(d)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            )
        });
        let mut remove: Vec<&CacheRecord> = Vec::new();
        let mut keep: Vec<&CacheRecord> = Vec::new();
        for r in &records {
            if all || cutoff.is_some_and(|c| to_ms(r.last_used) < c) {
                remove.push(r);
            } else {
                keep.push(r);
            }
        }
        if let Some(budget) = keep_storage {
            // Bytes each distinct layer costs, and how many kept records hold it.
            let mut holders: BTreeMap<Digest, (u64, usize)> = BTreeMap::new();
            for r in &keep {
                if let Some(l) = &r.output.layer {
                    if images.blobs.contains(&l.descriptor.digest) {
                        continue;
                    }
                    let e = holders
                        .entry(l.descriptor.digest.clone())
                        .or_insert_with(|| {
                            let snap = if images.diff_ids.contains(&l.diff_id) {
                                0
                            } else {
                                self.snapshot_size(&l.diff_id).ok().flatten().unwrap_or(0)
                            };
                            (l.descriptor.size + snap, 0)
                        });
                    e.1 += 1;
                }
            }
            let mut total: u64 = holders.values().map(|(b, _)| b).sum();
            let mut k = 0;
            while total > budget && k < keep.len() {
                let r = keep[k];
                if let Some(l) = &r.output.layer
                    && let Some(e) = holders.get_mut(&l.descriptor.digest)
                {
                    e.1 -= 1;
                    if e.1 == 0 {
                        total -= e.0;
                    }
                }
                remove.push(r);
                k += 1;
            }
            keep.drain(..k);
        }

        let mut report = PruneReport::default();
        {
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(self.db_err("start pruning"))?;
            for r in &remove {
                // Not if another process used it since it was read.
                let n = tx
                    .execute(
                        "DELETE FROM records WHERE key = ?1 AND last_used_ms <= ?2",
                        params![r.key.to_string(), to_ms(r.last_used)],
                    )
                    .map_err(self.db_err(format!("remove record `{}`", r.key)))?;
                if n > 0 {
                    report.removed.push(r.key.clone());
                }
            }
            if all {
                report.stat_rows_removed =
                    tx.execute("DELETE FROM stat_cache", [])
                        .map_err(self.db_err("clear the stat cache"))? as u64;
            }
            tx.commit().map_err(self.db_err("commit pruning"))?;
        }
        self.drop_orphan_selections()?;

        // What still holds layers now (records other processes wrote meanwhile included).
        let mut held_blobs = images.blobs;
        let mut held_diff_ids = images.diff_ids;
        for r in self.records()? {
            if let Some(l) = r.output.layer {
                held_blobs.insert(l.descriptor.digest);
                held_diff_ids.insert(l.diff_id);
            }
        }
        let removed: BTreeSet<&CacheKey> = report.removed.iter().collect();
        // Apart: an uncompressed layer's blob digest is its diff_id.
        let (mut seen_blobs, mut seen_diff_ids) = (HashSet::new(), HashSet::new());
        for r in remove.iter().filter(|r| removed.contains(&r.key)) {
            let Some(l) = &r.output.layer else { continue };
            let blob = &l.descriptor.digest;
            if seen_blobs.insert(blob.clone()) && !held_blobs.contains(blob) {
                if in_use(blob) {
                    report.kept_in_use.push(blob.clone());
                } else if self.store().has_blob(blob) {
                    self.store().remove_blob(blob)?;
                    report.deleted_blobs.push(blob.clone());
                    report.freed += l.descriptor.size;
                }
            }
            if seen_diff_ids.insert(l.diff_id.clone()) && !held_diff_ids.contains(&l.diff_id) {
                if in_use(&l.diff_id) {
                    report.kept_in_use.push(l.diff_id.clone());
                } else if let Some(freed) = self.remove_snapshot(&l.diff_id)? {
                    report.deleted_snapshots.push(l.diff_id.clone());
                    report.freed += freed;
                }
            }
        }
        Ok(report)
    }

    /// Reports every record with the disk space it holds.
    pub fn du(&self) -> Result<DuReport, CacheError> {
        let images = self.image_refs()?;
        let mut report = DuReport::default();
        let mut blobs = BTreeSet::new();
        let mut snaps = BTreeSet::new();
        for r in self.records()? {
            let mut snapshot_size = None;
            let mut in_image = false;
            if let Some(l) = &r.output.layer {
                snapshot_size = self.snapshot_size(&l.diff_id)?;
                in_image = images.blobs.contains(&l.descriptor.digest);
                if blobs.insert(l.descriptor.digest.clone()) {
                    report.blob_bytes += l.descriptor.size;
                    if in_image {
                        report.shared_bytes += l.descriptor.size;
                    }
                }
                if let Some(s) = snapshot_size
                    && snaps.insert(l.diff_id.clone())
                {
                    report.snapshot_bytes += s;
                    if images.diff_ids.contains(&l.diff_id) {
                        report.shared_bytes += s;
                    }
                }
            }
            report.records.push(RecordUsage {
                key: r.key,
                layer: r.output.layer,
                snapshot_size,
                in_image,
                created: r.created,
                last_used: r.last_used,
            });
        }
        report.stat_rows = self
            .conn()
            .query_row("SELECT count(*) FROM stat_cache", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(self.db_err("count stat cache rows"))?
            .cast_unsigned();
        Ok(report)
    }

    /// The blobs and snapshot `diff_id`s of every image in `index.json`.
    fn image_refs(&self) -> Result<ImageRefs, CacheError> {
        let store = self.store();
        let mut refs = ImageRefs {
            blobs: BTreeSet::new(),
            diff_ids: BTreeSet::new(),
        };
        for entry in store.images()? {
            refs.blobs.extend(store.reachable(&entry.descriptor)?);
            // Only the host's manifest of a multi-platform image has snapshots.
            if let Ok(image) = Image::read(store, &entry.descriptor, Vec::new()) {
                for d in &image.config.rootfs.diff_ids {
                    if let Ok(d) = d.parse() {
                        refs.diff_ids.insert(d);
                    }
                }
            }
        }
        Ok(refs)
    }

    /// Disk usage of the snapshot of `diff_id`, `None` when there is none.
    fn snapshot_size(&self, diff_id: &Digest) -> Result<Option<u64>, CacheError> {
        let snapshot = self.store().layout().snapshot(diff_id);
        let dir = snapshot.dir();
        match snapshot.holds(diff_id) {
            Ok(Some(true)) => {
                let mut seen = HashSet::new();
                Ok(Some(
                    disk_usage(dir, &mut seen).map_err(io_err("measure", dir))?,
                ))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(io_err("read", snapshot.marker())(e)),
        }
    }

    /// Removes the snapshot of `diff_id` (renamed away first, so that it vanishes at once);
    /// its disk usage, `None` when there was none.
    fn remove_snapshot(&self, diff_id: &Digest) -> Result<Option<u64>, CacheError> {
        let snapshot = self.store().layout().snapshot(diff_id);
        // A promise of it (a hit never unpacked) goes with its record.
        let _ = fs::remove_file(snapshot.pending());
        let Some(size) = self.snapshot_size(diff_id)? else {
            return Ok(None);
        };
        let dir = snapshot.dir();
        let doomed = dir.with_file_name(format!(
            "gc-{}-{}",
            kiln_oci::Layout::snapshot_id(diff_id),
            std::process::id()
        ));
        fs::rename(dir, &doomed).map_err(io_err("rename away", dir))?;
        make_writable(&doomed);
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))?;
        Ok(Some(size))
    }
}

/// Disk usage (allocated blocks) of a tree, counting hard-linked files once.
fn disk_usage(path: &Path, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return Ok(0);
    }
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            total += disk_usage(&entry?.path(), seen)?;
        }
    }
    Ok(total)
}

/// Gives the owner write and search permission on every directory of a tree, so that a
/// snapshot holding read-only directories can be removed.
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700));
        }
        if let Ok(entries) = fs::read_dir(path) {
            for e in entries.flatten() {
                make_writable(&e.path());
            }
        }
    }
}
