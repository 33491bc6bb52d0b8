//! Selection memos: the Merkle root of what a step selects from a stack of layers (`COPY
//! --from`), kept by a key of the layers' `diff_id`s and the selection, so that a machine
//! that has the layers' *records* but not their files can key the step.
//!
//! The root of a `COPY --from=deps /deps /opt/deps` is part of that step's key, and computing
//! it means reading every file the source stage selects. A store keeps it beside its
//! snapshots once computed (`kiln_oci::Snapshots::selection`), but a runner that starts empty
//! and imports a remote cache would have to fetch and unpack the source stage's layers only
//! to learn a digest the machine that exported the cache knew already. So the root is also
//! recorded here, under [`selection_key`] (which names layers by `diff_id`, not by where their
//! snapshots are), with the key of the step it went into; an export carries the memos of the
//! records it exports, and an import answers [`crate::LazyImport::selection`] from them.
//!
//! A layer's `diff_id` is the digest of its uncompressed tar, so the same stack of `diff_id`s
//! holds the same files on every machine, and the same selection of them has the same root.
//! A memo is trusted as much as the record it travels with (which names the layer a hit
//! uses).

use kiln_layer::Digest;
use rusqlite::{TransactionBehavior, params};

use crate::canon::Canonical;
use crate::error::CacheError;
use crate::index::Cache;
use crate::key::CacheKey;

/// The version of [`selection_key`]'s encoding.
const SELECTION_VERSION: &str = "selection-v1";

/// The key of the selection `selector` (a canonical text saying what is selected and how it is
/// hashed, with its own version; it must name other stacks it depends on by `diff_id` too)
/// from the stack of layers `diff_ids` (topmost first): the SHA-256 of [`Canonical`] text
/// `selection-v1` with the fields `stack` (the `diff_id`s, `sha256:<hex>`, as a list) and
/// `selector`.
pub fn selection_key(diff_ids: &[Digest], selector: &str) -> Digest {
    let stack: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
    let text = Canonical::new(SELECTION_VERSION)
        .list("stack", stack.iter().map(String::as_str))
        .str("selector", selector)
        .finish();
    Digest::of(text.as_bytes())
}

/// One selection memo: its [`selection_key`] and the Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The memo's key.
    pub key: Digest,
    /// The Merkle root of what it selects.
    pub root: Digest,
}

impl Cache {
    /// The root kept under `key` by any step, if any.
    pub fn selection(&self, key: &Digest) -> Result<Option<Digest>, CacheError> {
        let conn = self.conn();
        let root: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
            "SELECT root FROM selections WHERE key = ?1 LIMIT 1",
            [key.to_string()],
            |r| r.get(0),
        ))
        .map_err(self.db_err(format!("look up selection `{key}`")))?;
        root.map(|r| {
            r.parse()
                .map_err(|_| self.corrupt(format!("selection `{key}` has root `{r}`")))
        })
        .transpose()
    }

    /// Keeps `selections`, the memos the key of step `step` was made with.
    pub fn put_selections(
        &self,
        step: &CacheKey,
        selections: &[Selection],
    ) -> Result<(), CacheError> {
        if selections.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.db_err("start a write"))?;
        for s in selections {
            tx.execute(
                "INSERT INTO selections (step_key, key, root) VALUES (?1, ?2, ?3)
                 ON CONFLICT (step_key, key) DO UPDATE SET root = excluded.root",
                params![step.to_string(), s.key.to_string(), s.root.to_string()],
            )
            .map_err(self.db_err(format!("write selection `{}`", s.key)))?;
        }
        tx.commit()
            .map_err(self.db_err(format!("commit the selections of `{step}`")))?;
        Ok(())
    }

    /// The memos kept for step `step`, by key.
    pub fn selections_of(&self, step: &CacheKey) -> Result<Vec<Selection>, CacheError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, root FROM selections WHERE step_key = ?1 ORDER BY key")
            .map_err(self.db_err("list selections"))?;
        let rows = stmt
            .query_map([step.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(self.db_err(format!("list the selections of `{step}`")))?;
        rows.into_iter()
            .map(|(k, r)| match (k.parse(), r.parse()) {
                (Ok(key), Ok(root)) => Ok(Selection { key, root }),
                _ => Err(self.corrupt(format!("step `{step}` has selection `{k}` -> `{r}`"))),
            })
            .collect()
    }

    /// Removes the memos of steps that have no record any more; how many went.
    pub(crate) fn drop_orphan_selections(&self) -> Result<usize, CacheError> {
        self.conn()
            .execute(
                "DELETE FROM selections WHERE step_key NOT IN (SELECT key FROM records)",
                [],
            )
            .map_err(self.db_err("remove the selections of removed records"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::of(s.as_bytes())
    }

    #[test]
    fn the_key_depends_on_every_layer_their_order_and_the_selector() {
        let k = selection_key(&[d("a"), d("b")], "COPY /x");
        assert_eq!(k, selection_key(&[d("a"), d("b")], "COPY /x"));
        assert_ne!(k, selection_key(&[d("b"), d("a")], "COPY /x"));
        assert_ne!(k, selection_key(&[d("a")], "COPY /x"));
        assert_ne!(k, selection_key(&[d("a"), d("b")], "COPY /y"));
    }

    #[test]
    fn memos_are_kept_by_step_and_dropped_with_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = kiln_oci::Store::open(dir.path()).unwrap();
        let cache = Cache::open(&store).unwrap();
        let step = CacheKey::from_digest(d("step"));
        let sel = Selection {
            key: selection_key(&[d("layer")], "sel"),
            root: d("root"),
        };
        assert_eq!(cache.selection(&sel.key).unwrap(), None);
        cache
            .put_selections(&step, std::slice::from_ref(&sel))
            .unwrap();
        assert_eq!(cache.selection(&sel.key).unwrap(), Some(sel.root.clone()));
        assert_eq!(cache.selections_of(&step).unwrap(), vec![sel.clone()]);
        // No record of `step`: the memo is an orphan.
        assert_eq!(cache.drop_orphan_selections().unwrap(), 1);
        assert_eq!(cache.selection(&sel.key).unwrap(), None);
    }
}
