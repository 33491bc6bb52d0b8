//! The step cache index: keys to results, and each step's last key for explaining misses.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_layer::Digest;
use kiln_oci::Store;
use kiln_oci::model::Descriptor;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::CacheError;
use crate::explain::{Change, KeyExplanation};
use crate::key::CacheKey;

/// The layer a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The layer blob (media type, digest, size); annotations are not kept.
    pub descriptor: Descriptor,
    /// Its uncompressed digest (names its snapshot).
    pub diff_id: Digest,
}

/// What a step produced: what a hit gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The new layer, or `None` for a step that changes only the config (ENV, LABEL ...).
    pub layer: Option<LayerRef>,
    /// The whole image config after the step, as canonical JSON (`kiln_oci::canonical`). The
    /// cache does not parse it; it stores it and checks it against its digest.
    pub config: Vec<u8>,
}

/// One record of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// The step's key.
    pub key: CacheKey,
    /// What the step produced.
    pub output: StepOutput,
    /// The digest of `output.config`.
    pub config_digest: Digest,
    /// When the record was made.
    pub created: SystemTime,
    /// Its last hit (or its creation).
    pub last_used: SystemTime,
}

/// Which step of which Dockerfile a key belongs to, so that the next build of the same step
/// can say why its key changed. The caller picks stable values: an absolute Dockerfile path,
/// the stage's name (or index), the instruction's index in the stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepIdentity {
    /// The Dockerfile, as an absolute path (or `-` for stdin, with the context path).
    pub dockerfile: String,
    /// The stage's name, or its index when it has none.
    pub stage: String,
    /// The instruction's index in the stage (0 is the first after FROM).
    pub step: u32,
}

/// Why a step missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The step was never built before (from this Dockerfile, stage and position).
    FirstBuild,
    /// Its key is the one it had last time, but the record is gone (pruned, or its layer was
    /// removed with an image).
    Evicted,
    /// These components of the key changed since last time.
    Changed(Vec<Change>),
}

/// The step cache of one store: `ROOT/cache.db` and the store's blobs.
///
/// It is `Sync`: threads of one build share one connection behind a mutex, and processes
/// share the file through SQLite's WAL mode.
#[derive(Debug)]
pub struct Cache {
    store: Store,
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Cache {
    /// Opens the cache of `store` (`ROOT/cache.db`), creating or migrating it.
    pub fn open(store: &Store) -> Result<Self, CacheError> {
        let path = store.layout().cache_db();
        let conn = crate::db::open(&path)?;
        Ok(Self {
            store: store.clone(),
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The store whose blobs the records name.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn db_err(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(rusqlite::Error) -> CacheError {
        let action = action.into();
        let path = self.path.clone();
        move |source| CacheError::Db {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(&self, reason: String) -> CacheError {
        CacheError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// Looks `key` up for a build: on a hit, marks the record used now. A record whose layer
    /// blob has left the store (removed with an image) is deleted and counts as a miss.
    pub fn get(&self, key: &CacheKey) -> Result<Option<CacheRecord>, CacheError> {
        let Some(record) = self.peek(key)? else {
            return Ok(None);
        };
        let conn = self.conn();
        if let Some(layer) = &record.output.layer
            && !self.store.has_blob(&layer.descriptor.digest)
        {
            conn.execute("DELETE FROM records WHERE key = ?1", [key.to_string()])
                .map_err(self.db_err(format!("remove record `{key}`")))?;
            return Ok(None);
        }
        let now = now_ms();
        conn.execute(
            "UPDATE records SET last_used_ms = max(last_used_ms, ?2) WHERE key = ?1",
            params![key.to_string(), now],
        )
        .map_err(self.db_err(format!("mark record `{key}` used")))?;
        Ok(Some(CacheRecord {
            last_used: from_ms(now),
            ..record
        }))
    }

    /// Reads the record of `key` without marking it used or checking its blob (for
    /// `--explain` and tools).
    pub fn peek(&self, key: &CacheKey) -> Result<Option<CacheRecord>, CacheError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE key = ?1"),
                [key.to_string()],
                RawRecord::from_row,
            )
            .optional()
            .map_err(self.db_err(format!("look up key `{key}`")))?;
        row.map(|r| r.into_record(self)).transpose()
    }

    /// Records what the step with `key` produced. Its layer blob must already be in the store
    /// (commit the store transaction first), so that no record ever names a missing blob.
    /// Replacing an existing record keeps its creation time.
    pub fn put(&self, key: &CacheKey, output: &StepOutput) -> Result<(), CacheError> {
        if let Some(layer) = &output.layer
            && !self.store.has_blob(&layer.descriptor.digest)
        {
            return Err(CacheError::MissingLayer {
                key: key.to_string(),
                digest: layer.descriptor.digest.clone(),
            });
        }
        let now = now_ms();
        self.insert(key, output, now, now, true)
    }

    /// Inserts a record; with `replace`, an existing one gets the new output.
    pub(crate) fn insert(
        &self,
        key: &CacheKey,
        output: &StepOutput,
        created_ms: i64,
        used_ms: i64,
        replace: bool,
    ) -> Result<(), CacheError> {
        let layer = output.layer.as_ref();
        let conflict = if replace {
            "ON CONFLICT (key) DO UPDATE SET layer_digest = excluded.layer_digest,
                layer_size = excluded.layer_size, layer_media_type = excluded.layer_media_type,
                diff_id = excluded.diff_id, config_digest = excluded.config_digest,
                config = excluded.config, last_used_ms = excluded.last_used_ms"
        } else {
            "ON CONFLICT (key) DO NOTHING"
        };
        let size = layer.map(|l| i64::try_from(l.descriptor.size).unwrap_or(i64::MAX));
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.db_err("start a write"))?;
        tx.execute(
            &format!(
                "INSERT INTO records (key, layer_digest, layer_size, layer_media_type, diff_id,
                    config_digest, config, created_ms, last_used_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) {conflict}"
            ),
            params![
                key.to_string(),
                layer.map(|l| l.descriptor.digest.to_string()),
                size,
                layer.map(|l| l.descriptor.media_type.clone()),
                layer.map(|l| l.diff_id.to_string()),
                Digest::of(&output.config).to_string(),
                output.config,
                created_ms,
                used_ms,
            ],
        )
        .map_err(self.db_err(format!("write record `{key}`")))?;
        tx.commit()
            .map_err(self.db_err(format!("commit record `{key}`")))?;
        Ok(())
    }

    /// Removes the record of `key`; whether there was one.
    pub fn remove(&self, key: &CacheKey) -> Result<bool, CacheError> {
        let n = self
            .conn()
            .execute("DELETE FROM records WHERE key = ?1", [key.to_string()])
            .map_err(self.db_err(format!("remove record `{key}`")))?;
        self.conn()
            .execute(
                "DELETE FROM selections WHERE step_key = ?1",
                [key.to_string()],
            )
            .map_err(self.db_err(format!("remove the selections of `{key}`")))?;
        Ok(n > 0)
    }

    /// Every record, least recently used first.
    pub fn records(&self) -> Result<Vec<CacheRecord>, CacheError> {
        let raws = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {RECORD_COLUMNS} FROM records ORDER BY last_used_ms, key"
                ))
                .map_err(self.db_err("list records"))?;
            stmt.query_map([], RawRecord::from_row)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(self.db_err("list records"))?
        };
        raws.into_iter().map(|r| r.into_record(self)).collect()
    }

    /// Whether step `id` is remembered with `key` already (so [`Cache::remember_step`] with
    /// that key's explanation would change nothing).
    pub fn remembers(&self, id: &StepIdentity, key: &CacheKey) -> Result<bool, CacheError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT 1 FROM steps
             WHERE dockerfile = ?1 AND stage = ?2 AND step = ?3 AND key = ?4",
            params![id.dockerfile, id.stage, id.step, key.to_string()],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(self.db_err(format!(
            "look up step {} of stage `{}` of `{}`",
            id.step, id.stage, id.dockerfile
        )))
    }

    /// Remembers `explanation` as the last key of step `id`, for the next build's
    /// [`Cache::explain`].
    pub fn remember_step(
        &self,
        id: &StepIdentity,
        explanation: &KeyExplanation,
    ) -> Result<(), CacheError> {
        // The same key has the same explanation, already there: a rebuild does not serialize
        // and rewrite a large COPY's leaves again.
        if self.remembers(id, &explanation.key)? {
            return Ok(());
        }
        let conn = self.conn();
        let err = || {
            self.db_err(format!(
                "remember step {} of stage `{}` of `{}`",
                id.step, id.stage, id.dockerfile
            ))
        };
        let json = serde_json::to_string(explanation).expect("an explanation serializes");
        conn.execute(
            "INSERT INTO steps (dockerfile, stage, step, key, explanation, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (dockerfile, stage, step) DO UPDATE SET key = excluded.key,
                    explanation = excluded.explanation, updated_ms = excluded.updated_ms",
            params![
                id.dockerfile,
                id.stage,
                id.step,
                explanation.key.to_string(),
                json,
                now_ms()
            ],
        )
        .map_err(err())?;
        Ok(())
    }

    /// The key step `id` had when it was last remembered, if any (its explanation unread).
    pub fn last_key(&self, id: &StepIdentity) -> Result<Option<CacheKey>, CacheError> {
        let key = self.step_column(id, "key")?;
        Ok(key.and_then(|k| k.parse().ok()))
    }

    /// One column (`key` or `explanation`) of what is remembered for step `id`.
    fn step_column(
        &self,
        id: &StepIdentity,
        column: &'static str,
    ) -> Result<Option<String>, CacheError> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {column} FROM steps WHERE dockerfile = ?1 AND stage = ?2 AND step = ?3"
                ),
                params![id.dockerfile, id.stage, id.step],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err(format!(
                "read step {} of stage `{}` of `{}`",
                id.step, id.stage, id.dockerfile
            )))
    }

    /// The explanation remembered for step `id`, if any.
    pub fn last_step(&self, id: &StepIdentity) -> Result<Option<KeyExplanation>, CacheError> {
        let json = self.step_column(id, "explanation")?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| {
                self.corrupt(format!(
                    "step {} of stage `{}` of `{}` has an unreadable explanation: {e}",
                    id.step, id.stage, id.dockerfile
                ))
            })
        })
        .transpose()
    }

    /// Why step `id` with the components `new` misses: compares them with what the step had
    /// last time. Call it on a miss, before [`Cache::remember_step`].
    pub fn explain(&self, id: &StepIdentity, new: &KeyExplanation) -> Result<Miss, CacheError> {
        Ok(match self.last_step(id)? {
            None => Miss::FirstBuild,
            Some(old) if old.key == new.key => Miss::Evicted,
            Some(old) => Miss::Changed(KeyExplanation::diff(&old, new)),
        })
    }
}

pub(crate) const RECORD_COLUMNS: &str = "key, layer_digest, layer_size, layer_media_type, diff_id, config_digest, config, created_ms, last_used_ms";

/// A row of `records` before its text is parsed.
pub(crate) struct RawRecord {
    key: String,
    layer_digest: Option<String>,
    layer_size: Option<i64>,
    layer_media_type: Option<String>,
    diff_id: Option<String>,
    config_digest: String,
    config: Vec<u8>,
    created_ms: i64,
    last_used_ms: i64,
}

impl RawRecord {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            key: r.get(0)?,
            layer_digest: r.get(1)?,
            layer_size: r.get(2)?,
            layer_media_type: r.get(3)?,
            diff_id: r.get(4)?,
            config_digest: r.get(5)?,
            config: r.get(6)?,
            created_ms: r.get(7)?,
            last_used_ms: r.get(8)?,
        })
    }

    pub(crate) fn into_record(self, cache: &Cache) -> Result<CacheRecord, CacheError> {
        let bad = |what: &str, value: &str| {
            cache.corrupt(format!(
                "record `{}` has an invalid {what} `{value}`",
                self.key
            ))
        };
        let digest = |what: &str, v: &str| v.parse::<Digest>().map_err(|_| bad(what, v));
        let key = CacheKey::from_digest(digest("key", &self.key)?);
        let layer = match (
            &self.layer_digest,
            self.layer_size,
            &self.layer_media_type,
            &self.diff_id,
        ) {
            (None, _, _, _) => None,
            (Some(d), Some(size), Some(mt), Some(diff_id)) => Some(LayerRef {
                descriptor: Descriptor::new(
                    mt.clone(),
                    digest("layer digest", d)?,
                    u64::try_from(size).map_err(|_| bad("layer size", &size.to_string()))?,
                ),
                diff_id: digest("diff_id", diff_id)?,
            }),
            (Some(d), ..) => return Err(bad("layer (incomplete columns)", d)),
        };
        let config_digest = digest("config digest", &self.config_digest)?;
        if Digest::of(&self.config) != config_digest {
            return Err(bad(
                "config (does not match its digest)",
                &self.config_digest,
            ));
        }
        Ok(CacheRecord {
            key,
            output: StepOutput {
                layer,
                config: self.config,
            },
            config_digest,
            created: from_ms(self.created_ms),
            last_used: from_ms(self.last_used_ms),
        })
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// A time as milliseconds since the Unix epoch (0 before it).
pub(crate) fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
