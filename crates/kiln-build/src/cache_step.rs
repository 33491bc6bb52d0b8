//! The step cache in the executor: keys for the steps that make layers, lookups, miss
//! explanations, and records written once the build's blobs are in the store.
//!
//! What enters a key (see `kiln_cache::KeyBuilder` for the encoding):
//! - the parent: the previous layer step of the stage, else the stage's base (the base image's
//!   manifest digest, the base stage's last key, or scratch). Metadata steps (ENV, LABEL,
//!   ARG ...) are not in the chain: they change no layer, and what they change that a layer
//!   step depends on is in that step's own key;
//! - the instruction, expanded, in a canonical text without source positions: RUN's full argv
//!   (shell included), user, working directory, network, security and mounts (secret *ids*,
//!   never their values); COPY/ADD's sources, destination, working directory and flags;
//!   WORKDIR's path and user;
//! - the platform, and `SOURCE_DATE_EPOCH` when set (it changes file times);
//! - RUN: the declared ARGs and the environment the command sees (BuildKit's rule: a build
//!   arg invalidates the steps that can see it);
//! - COPY/ADD: the Merkle hash of exactly the files copied (path, type, mode, owner, size,
//!   content, link target; never mtimes), after `.dockerignore` and `--exclude`;
//! - inputs a step reads from elsewhere: the key (or manifest digest) of a stage or image a
//!   `RUN --mount from=` binds.
//!
//! Not cached (always run): RUN with a bind mount of the context, ADD of a URL without
//! `--checksum` (their inputs are not hashed yet).

use std::sync::Mutex;

use kiln_cache::{Cache, CacheKey, KeyBuilder, KeyExplanation, Parent, StepIdentity, StepOutput};
use kiln_fileop::MerkleHash;
use kiln_layer::Digest;
use kiln_oci::snapshot::Snapshots;

use crate::error::StepError;
use crate::explain::WhyRun;
use crate::layers::Layer;

/// How a build uses the cache.
pub struct CacheUse<'a> {
    /// The store's cache.
    pub cache: &'a Cache,
    /// `--no-cache`: look nothing up (results are still recorded).
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (lowercased names) that look nothing up.
    pub no_cache_stages: Vec<String>,
    /// The Dockerfile's absolute path (or `-`), to recognise the same step next time.
    pub dockerfile: String,
    /// Remote caches (`--cache-from`), imported lazily: a step that misses locally and hits
    /// one of their records has that record's layer fetched then, and only then.
    pub remote: Option<&'a kiln_cache::LazyImport>,
    /// `--cache-to type=inline`: the target's records go into its image config
    /// ([`kiln_cache::transfer::inline`]).
    pub inline: bool,
}

impl CacheUse<'_> {
    /// Whether the steps of `stage` (its name or label, any case) look nothing up.
    pub fn ignores(&self, stage: &str) -> bool {
        let stage = stage.to_ascii_lowercase();
        self.no_cache || self.no_cache_stages.contains(&stage)
    }
}

/// The parts of a step's key besides its parent.
#[derive(Debug, Default)]
pub(crate) struct KeyParts {
    /// The canonical instruction text.
    pub instruction: String,
    /// Declared ARGs the step sees.
    pub args: Vec<(String, Option<String>)>,
    /// Environment the step sees.
    pub env: Vec<(String, String)>,
    /// COPY/ADD: the files.
    pub files: Option<MerkleHash>,
    /// COPY/ADD from a stage or image: the files' Merkle root, with their leaves still
    /// encoded (a snapshot's memo): decoded only when a miss is explained or the step's
    /// explanation is remembered anew, so a hit never pays for a large tree's leaves (none
    /// load when the root came from a [`kiln_cache::selection`] memo without the files).
    pub files_memo: Option<(Digest, LazyLeaves)>,
    /// Other inputs by name.
    pub inputs: Vec<(String, Digest)>,
    /// The selection memos of the roots in `files_memo` and `inputs`, recorded with the
    /// step's key (and exported with its record).
    pub selections: Vec<kiln_cache::Selection>,
}

/// The leaves of a Merkle hash, read and decoded on demand.
#[derive(Debug)]
pub(crate) struct LazyLeaves {
    source: LeavesSource,
    decode: fn(&[u8]) -> Option<MerkleHash>,
}

/// Where [`LazyLeaves`] come from.
#[derive(Debug)]
pub(crate) enum LeavesSource {
    /// Encoded bytes at hand.
    Bytes(Vec<u8>),
    /// A file holding them (a snapshot's memo).
    File(std::path::PathBuf),
}

impl LazyLeaves {
    /// Leaves that `decode` makes of `source`'s bytes.
    pub(crate) fn new(source: LeavesSource, decode: fn(&[u8]) -> Option<MerkleHash>) -> Self {
        Self { source, decode }
    }

    fn load(self) -> Option<Vec<(String, Digest)>> {
        let bytes = match self.source {
            LeavesSource::Bytes(b) => b,
            LeavesSource::File(path) => std::fs::read(path).ok()?,
        };
        (self.decode)(&bytes).map(|m| m.leaves)
    }
}

/// A step's key, with what is needed to explain and record it.
pub(crate) struct Keyed {
    /// The key.
    pub key: CacheKey,
    /// Its components.
    pub explanation: KeyExplanation,
    /// Which step it is.
    pub identity: StepIdentity,
    /// The files' leaves not yet in `explanation` ([`KeyParts::files_memo`]).
    leaves: Option<LazyLeaves>,
    /// [`KeyParts::selections`].
    selections: Vec<kiln_cache::Selection>,
}

impl Keyed {
    /// The explanation with every leaf of the files in it.
    fn complete(&mut self) {
        if let (Some(lazy), Some(files)) = (self.leaves.take(), &mut self.explanation.files) {
            files.leaves = lazy.load();
        }
    }
}

/// A step result to record after the build's blobs are published.
pub(crate) struct Pending {
    keyed: Keyed,
    layer: Option<Layer>,
}

/// Results waiting for the build's commit.
#[derive(Default)]
pub(crate) struct PendingRecords(Mutex<Vec<Pending>>);

impl PendingRecords {
    /// Remember a step that ran.
    pub(crate) fn push(&self, keyed: Keyed, layer: Option<Layer>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Pending { keyed, layer });
    }

    /// Whether no step waits to be recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// Record them all (after the commit); steps that were hits only refresh their
    /// explanation. Errors here cost future hits, not this build: they are returned for a
    /// warning.
    pub(crate) fn record(self, cache: &Cache) -> (Vec<CacheKey>, Vec<String>) {
        let mut warnings = Vec::new();
        let mut keys = Vec::new();
        for p in self
            .0
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            let output = StepOutput {
                layer: p.layer.as_ref().map(|l| kiln_cache::LayerRef {
                    descriptor: l.descriptor.clone(),
                    diff_id: l.diff_id.clone(),
                }),
                // Hits rebuild the config from the instructions; the record's config is kept
                // for exports and inspection.
                config: Vec::new(),
            };
            if let Err(e) = cache.put(&p.keyed.key, &output) {
                warnings.push(format!("cannot record the cache of a step: {e}"));
            } else if let Err(e) = cache.put_selections(&p.keyed.key, &p.keyed.selections) {
                warnings.push(format!("cannot record what a step selected: {e}"));
            }
            let mut keyed = p.keyed;
            // A step remembered with this very key keeps its explanation; only a new one
            // needs its leaves.
            if !cache
                .remembers(&keyed.identity, &keyed.key)
                .unwrap_or(false)
            {
                keyed.complete();
                if let Err(e) = cache.remember_step(&keyed.identity, &keyed.explanation) {
                    warnings.push(format!("cannot remember a step for explanations: {e}"));
                }
            }
            keys.push(keyed.key);
        }
        (keys, warnings)
    }
}

/// Make the key of a step on `parent`.
pub(crate) fn key(
    parent: &Parent,
    platform: &str,
    parts: KeyParts,
    identity: StepIdentity,
) -> Keyed {
    let mut b = KeyBuilder::new(parent.clone(), parts.instruction, platform.to_owned());
    for (name, value) in parts.args {
        b = b.arg(name, value.as_deref());
    }
    for (name, value) in parts.env {
        b = b.env(name, value);
    }
    if let Some(files) = parts.files {
        b = b.files(files);
    }
    let mut leaves = None;
    if let Some((root, lazy)) = parts.files_memo {
        b = b.files_root(root);
        leaves = Some(lazy);
    }
    for (name, digest) in parts.inputs {
        b = b.input(name, digest);
    }
    let (key, explanation) = b.finish();
    Keyed {
        key,
        explanation,
        identity,
        leaves,
        selections: parts.selections,
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// The recorded result: its layer, when it made one.
    Hit(Option<Box<Layer>>),
    /// Not in the cache, and why.
    Miss(WhyRun),
}

/// Look a step up.
pub(crate) fn lookup(
    cache: &CacheUse<'_>,
    stage: &str,
    keyed: &mut Keyed,
    snapshots: &Snapshots,
) -> Result<Lookup, StepError> {
    let store_err = |e| StepError::Cache(Box::new(e));
    let skip = cache.ignores(stage);
    let found = if skip {
        None
    } else {
        match cache.cache.get(&keyed.key).map_err(store_err)? {
            Some(r) => Some(r),
            // The one point where a lazily imported record becomes local: its step hits, so
            // its layer is needed (for the image, and as the snapshot later steps run on).
            None => match cache.remote {
                Some(remote) => remote
                    .materialize(cache.cache, &keyed.key)
                    .map_err(store_err)?,
                None => None,
            },
        }
    };
    if let Some(record) = found {
        let layer = match record.output.layer {
            None => None,
            Some(l) => {
                // Unpacked when a stack that holds it is first used, if ever.
                let snapshot = snapshots
                    .promise(&l.descriptor, &l.diff_id)
                    .map_err(StepError::snapshot)?;
                Some(Box::new(Layer {
                    descriptor: l.descriptor,
                    diff_id: l.diff_id,
                    snapshot,
                }))
            }
        };
        return Ok(Lookup::Hit(layer));
    }
    if skip {
        return Ok(Lookup::Miss(if cache.no_cache {
            WhyRun::NoCache
        } else {
            WhyRun::NoCacheFilter(stage.to_owned())
        }));
    }
    keyed.complete();
    let miss = cache
        .cache
        .explain(&keyed.identity, &keyed.explanation)
        .map_err(store_err)?;
    Ok(Lookup::Miss(WhyRun::Miss(miss)))
}

/// The snapshot of the layer that step `id` made when it was last built with a key other
/// than `key`, when the store still has both the record and the snapshot; `None` otherwise
/// (a failure to look only costs the sharing).
pub(crate) fn previous_snapshot(
    cache: &CacheUse<'_>,
    id: &StepIdentity,
    key: &CacheKey,
    snapshots: &Snapshots,
) -> Option<std::path::PathBuf> {
    let last = cache
        .cache
        .last_key(id)
        .ok()
        .flatten()
        .filter(|k| k != key)?;
    let record = cache.cache.peek(&last).ok().flatten()?;
    snapshots.existing(&record.output.layer?.diff_id)
}
