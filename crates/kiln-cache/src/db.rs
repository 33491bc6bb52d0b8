//! `ROOT/cache.db`: opening it for several processes at once, and its schema.
//!
//! # Schema (version 2, kept in `PRAGMA user_version`)
//!
//! ```sql
//! -- One row per cached step result.
//! CREATE TABLE records (
//!     key              TEXT PRIMARY KEY NOT NULL, -- the step's cache key, `sha256:<hex>`
//!     layer_digest     TEXT,    -- the layer blob in the store; NULL for a step without a layer
//!     layer_size       INTEGER, -- its size in bytes (NULL with no layer)
//!     layer_media_type TEXT,    -- its media type (NULL with no layer)
//!     diff_id          TEXT,    -- its uncompressed digest, `sha256:<hex>` (NULL with no layer)
//!     config_digest    TEXT NOT NULL, -- `sha256:<hex>` of `config`
//!     config           BLOB NOT NULL, -- the whole image config after the step, canonical JSON
//!     created_ms       INTEGER NOT NULL, -- when the record was made, ms since the Unix epoch
//!     last_used_ms     INTEGER NOT NULL  -- its last hit (or creation), ms since the Unix epoch
//! );
//! CREATE INDEX records_by_last_used ON records (last_used_ms);
//! CREATE INDEX records_by_layer ON records (layer_digest);
//!
//! -- The last key of each step of each Dockerfile, to explain the next miss.
//! CREATE TABLE steps (
//!     dockerfile  TEXT NOT NULL,    -- as StepIdentity gives it (an absolute path)
//!     stage       TEXT NOT NULL,    -- the stage's name, or its index when unnamed
//!     step        INTEGER NOT NULL, -- the instruction's index in the stage
//!     key         TEXT NOT NULL,    -- the key it had last time
//!     explanation TEXT NOT NULL,    -- that key's KeyExplanation as JSON
//!     updated_ms  INTEGER NOT NULL, -- when this key was remembered (not touched while it holds)
//!     PRIMARY KEY (dockerfile, stage, step)
//! ) WITHOUT ROWID;
//!
//! -- The context stat cache (see `stat.rs`).
//! CREATE TABLE stat_cache (
//!     root      TEXT NOT NULL,    -- the context root's id (ContextRoot::id)
//!     path      BLOB NOT NULL,    -- the file's path relative to the root, as OS bytes
//!     ino       INTEGER NOT NULL,
//!     size      INTEGER NOT NULL,
//!     mtime_ns  INTEGER NOT NULL, -- ns since the Unix epoch
//!     ctime_ns  INTEGER NOT NULL,
//!     hashed_ns INTEGER NOT NULL, -- wall clock just before the content was read
//!     sha256    BLOB NOT NULL,    -- 32 bytes
//!     PRIMARY KEY (root, path)
//! ) WITHOUT ROWID;
//!
//! -- Selection memos (version 2, see `selection.rs`): the Merkle root of what a step selects
//! -- from a stack of layers, by a key of the layers' diff_ids and the selection.
//! CREATE TABLE selections (
//!     step_key TEXT NOT NULL, -- the key of the step whose key the root went into
//!     key      TEXT NOT NULL, -- `sha256:<hex>` of the stack's diff_ids and the selection
//!     root     TEXT NOT NULL, -- the Merkle root, `sha256:<hex>`
//!     PRIMARY KEY (step_key, key)
//! ) WITHOUT ROWID;
//! CREATE INDEX selections_by_key ON selections (key);
//! ```
//!
//! Why the whole config and not a delta: a hit then needs nothing but the record (no replay of
//! the instruction's effect on the config), a record exported to another machine is complete,
//! and the config's digest checks it. Configs are small next to layers.
//!
//! The database runs in WAL mode (readers never wait for the writer) with a busy timeout, and
//! every write is a `BEGIN IMMEDIATE` transaction, so that several kiln processes share it
//! safely: a writer waits for another writer instead of failing on a lock upgrade.
//!
//! A database with `user_version` 0 is new and gets the schema; an older version is migrated
//! step by step in one transaction (version 1 lacks `selections`); a newer one is refused.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::CacheError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for another process's write before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_mins(1);

/// Migrations: `MIGRATIONS[v]` brings a database from version `v` to `v + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY NOT NULL,
    layer_digest TEXT,
    layer_size INTEGER,
    layer_media_type TEXT,
    diff_id TEXT,
    config_digest TEXT NOT NULL,
    config BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_last_used ON records (last_used_ms);
CREATE INDEX IF NOT EXISTS records_by_layer ON records (layer_digest);
CREATE TABLE IF NOT EXISTS steps (
    dockerfile TEXT NOT NULL,
    stage TEXT NOT NULL,
    step INTEGER NOT NULL,
    key TEXT NOT NULL,
    explanation TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (dockerfile, stage, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stat_cache (
    root TEXT NOT NULL,
    path BLOB NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    hashed_ns INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    PRIMARY KEY (root, path)
) WITHOUT ROWID;
",
    r"
CREATE TABLE IF NOT EXISTS selections (
    step_key TEXT NOT NULL,
    key TEXT NOT NULL,
    root TEXT NOT NULL,
    PRIMARY KEY (step_key, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS selections_by_key ON selections (key);
",
];

/// Opens (creating or migrating) the database at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, CacheError> {
    let err = |action: &str| {
        let action = action.to_owned();
        move |source| CacheError::Db {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("set the busy timeout"))?;
    // WAL is persistent in the file; setting it again is a no-op read. Switching needs the
    // database to itself, and SQLite answers `SQLITE_BUSY` at once (no busy handler) while
    // another process opening a new store holds it: wait for that, as the timeout says.
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => break r.map_err(err("switch to WAL mode"))?,
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err("set synchronous"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("lock for the schema check"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err("read the schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(CacheError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(version).unwrap_or(0);
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql)
            .map_err(err(&format!("migrate the schema to version {}", v + 1)))?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err("write the schema version"))?;
    }
    tx.commit().map_err(err("commit the schema"))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_reach_the_schema_version() {
        assert_eq!(MIGRATIONS.len(), usize::try_from(SCHEMA_VERSION).unwrap());
    }

    #[test]
    fn a_version_1_database_gains_the_selections_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO records (key, config_digest, config, created_ms, last_used_ms)
                 VALUES ('k', 'd', x'', 1, 1)",
                [],
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (records, selections): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM selections)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (records, selections),
            (1, 0),
            "records kept, selections added"
        );
    }

    #[test]
    fn newer_schema_is_refused_and_reopening_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let e = open(&path).unwrap_err();
        assert!(
            matches!(e, CacheError::SchemaTooNew { found: 3, .. }),
            "{e}"
        );
    }
}
