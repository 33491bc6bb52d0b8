//! Explaining misses: the hash of every key component, and what differs between two keys.
//!
//! A [`KeyExplanation`] is what [`KeyBuilder::finish`](crate::KeyBuilder::finish) returns
//! beside the key. The index keeps the last one of each step (by
//! [`StepIdentity`](crate::StepIdentity)) as JSON, so that the next build can say which
//! component changed. It holds hashes only, never the values of args, env or files, so keeping
//! it adds nothing a reader of the cache could not learn from the step's result.

use std::collections::BTreeMap;
use std::fmt;

use kiln_layer::Digest;
use serde::{Deserialize, Serialize};

use crate::key::{CacheKey, Parent};

/// The components of one key, each by its own hash (see [`crate::key`] for the encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExplanation {
    /// The key format version.
    pub version: u8,
    /// The key these components make.
    pub key: CacheKey,
    /// The parent, in full (it is itself a hash).
    pub parent: Parent,
    /// Hash of the instruction field.
    #[serde(with = "kiln_oci::model::digest_serde")]
    pub instruction: Digest,
    /// Hash of the platform field.
    #[serde(with = "kiln_oci::model::digest_serde")]
    pub platform: Digest,
    /// Hash of each visible build arg's field, by name.
    #[serde(with = "digest_map")]
    pub args: BTreeMap<String, Digest>,
    /// Hash of each environment variable's field, by name.
    #[serde(with = "digest_map")]
    pub env: BTreeMap<String, Digest>,
    /// The copied files, for COPY/ADD.
    pub files: Option<FilesExplanation>,
    /// Hash of each extra input's field, by name.
    #[serde(with = "digest_map")]
    pub inputs: BTreeMap<String, Digest>,
}

/// The files of a COPY/ADD: the Merkle root, and the leaves when they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesExplanation {
    /// The Merkle root (what enters the key).
    #[serde(with = "kiln_oci::model::digest_serde")]
    pub root: Digest,
    /// `(path, leaf digest)` in selection order, when known.
    #[serde(with = "leaf_list")]
    pub leaves: Option<Vec<(String, Digest)>>,
}

/// How one named component differs between two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delta {
    /// Only the new key has it.
    Added,
    /// Only the old key has it.
    Removed,
    /// Both have it, with different values.
    Changed,
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        })
    }
}

/// One reason two keys differ. The `Display` form is a lowercase phrase for progress output:
/// `build arg `VERSION` changed`, `file `/src/main.rs` added`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The keys were made by different key format versions.
    Format {
        /// The old version.
        old: u8,
        /// The new version.
        new: u8,
    },
    /// The parent (previous step or base image) differs.
    Parent {
        /// What the old key built on.
        old: Parent,
        /// What the new key builds on.
        new: Parent,
    },
    /// The instruction text after expansion differs.
    Instruction,
    /// The platform differs.
    Platform,
    /// A build arg the step sees differs.
    Arg {
        /// Its name.
        name: String,
        /// How.
        delta: Delta,
    },
    /// An environment variable differs.
    Env {
        /// Its name.
        name: String,
        /// How.
        delta: Delta,
    },
    /// The step copies files now and did not before, or the other way round.
    FilesPresence {
        /// Whether the new step copies files.
        now: bool,
    },
    /// One copied file differs (only when both keys kept their leaves).
    File {
        /// Its path as the Merkle leaf names it.
        path: String,
        /// How.
        delta: Delta,
    },
    /// The copied files differ, and the leaves to say which were not kept.
    Files,
    /// An extra input differs.
    Input {
        /// Its name.
        name: String,
        /// How.
        delta: Delta,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format { old, new } => {
                write!(f, "cache key format changed (version {old} to {new})")
            }
            Self::Parent { old, new } => match (old, new) {
                (Parent::BaseImage(_), Parent::BaseImage(_)) => {
                    write!(f, "base image changed ({old} to {new})")
                }
                (Parent::Step(_), Parent::Step(_)) => f.write_str("previous step changed"),
                _ => write!(f, "parent changed ({old} to {new})"),
            },
            Self::Instruction => f.write_str("instruction changed"),
            Self::Platform => f.write_str("platform changed"),
            Self::Arg { name, delta } => write!(f, "build arg `{name}` {delta}"),
            Self::Env { name, delta } => write!(f, "env `{name}` {delta}"),
            Self::FilesPresence { now: true } => f.write_str("step copies files now"),
            Self::FilesPresence { now: false } => f.write_str("step no longer copies files"),
            Self::File { path, delta } => write!(f, "file `{path}` {delta}"),
            Self::Files => f.write_str("copied files changed"),
            Self::Input { name, delta } => write!(f, "input `{name}` {delta}"),
        }
    }
}

impl KeyExplanation {
    /// Every component that differs from `old` to `new`, in encoding order (parent first).
    /// Empty exactly when the keys are equal.
    pub fn diff(old: &Self, new: &Self) -> Vec<Change> {
        let mut out = Vec::new();
        if old.version != new.version {
            out.push(Change::Format {
                old: old.version,
                new: new.version,
            });
        }
        if old.parent != new.parent {
            out.push(Change::Parent {
                old: old.parent.clone(),
                new: new.parent.clone(),
            });
        }
        if old.instruction != new.instruction {
            out.push(Change::Instruction);
        }
        if old.platform != new.platform {
            out.push(Change::Platform);
        }
        for (name, delta) in map_diff(&old.args, &new.args) {
            out.push(Change::Arg { name, delta });
        }
        for (name, delta) in map_diff(&old.env, &new.env) {
            out.push(Change::Env { name, delta });
        }
        match (&old.files, &new.files) {
            (None, Some(_)) => out.push(Change::FilesPresence { now: true }),
            (Some(_), None) => out.push(Change::FilesPresence { now: false }),
            (Some(o), Some(n)) if o.root != n.root => match (&o.leaves, &n.leaves) {
                (Some(ol), Some(nl)) => {
                    let files = leaf_diff(ol, nl);
                    if files.is_empty() {
                        // Same leaves in another order or count: the selection changed.
                        out.push(Change::Files);
                    }
                    out.extend(
                        files
                            .into_iter()
                            .map(|(path, delta)| Change::File { path, delta }),
                    );
                }
                _ => out.push(Change::Files),
            },
            _ => {}
        }
        for (name, delta) in map_diff(&old.inputs, &new.inputs) {
            out.push(Change::Input { name, delta });
        }
        if out.is_empty() && old.key != new.key {
            // Components kept by another kiln that hashes the same values differently.
            out.push(Change::Format {
                old: old.version,
                new: new.version,
            });
        }
        out
    }
}

fn map_diff(
    old: &BTreeMap<String, Digest>,
    new: &BTreeMap<String, Digest>,
) -> Vec<(String, Delta)> {
    let mut out = Vec::new();
    for (name, o) in old {
        match new.get(name) {
            None => out.push((name.clone(), Delta::Removed)),
            Some(n) if n != o => out.push((name.clone(), Delta::Changed)),
            Some(_) => {}
        }
    }
    for name in new.keys() {
        if !old.contains_key(name) {
            out.push((name.clone(), Delta::Added));
        }
    }
    out.sort();
    out
}

/// Leaves by path; a path may occur more than once (two sources selecting the same file).
fn leaf_diff(old: &[(String, Digest)], new: &[(String, Digest)]) -> Vec<(String, Delta)> {
    let group = |leaves: &[(String, Digest)]| {
        let mut m: BTreeMap<String, Vec<Digest>> = BTreeMap::new();
        for (p, d) in leaves {
            m.entry(p.clone()).or_default().push(d.clone());
        }
        m
    };
    let (o, n) = (group(old), group(new));
    let mut out = Vec::new();
    for (path, od) in &o {
        match n.get(path) {
            None => out.push((path.clone(), Delta::Removed)),
            Some(nd) if nd != od => out.push((path.clone(), Delta::Changed)),
            Some(_) => {}
        }
    }
    for path in n.keys() {
        if !o.contains_key(path) {
            out.push((path.clone(), Delta::Added));
        }
    }
    out.sort();
    out
}

mod digest_map {
    use std::collections::BTreeMap;

    use kiln_layer::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        m: &BTreeMap<String, Digest>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, v.to_string())))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Digest>, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| Ok((k, v.parse().map_err(serde::de::Error::custom)?)))
            .collect()
    }
}

mod leaf_list {
    use kiln_layer::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        leaves: &Option<Vec<(String, Digest)>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match leaves {
            None => s.serialize_none(),
            Some(l) => s.collect_seq(l.iter().map(|(p, d)| (p, d.to_string()))),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<(String, Digest)>>, D::Error> {
        let v = Option::<Vec<(String, String)>>::deserialize(d)?;
        v.map(|l| {
            l.into_iter()
                .map(|(p, d)| Ok((p, d.parse().map_err(serde::de::Error::custom)?)))
                .collect()
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyBuilder;

    #[test]
    fn equal_keys_have_no_changes_and_json_round_trips() {
        let (_, a) = KeyBuilder::new(Parent::Scratch, "RUN x", "linux/amd64")
            .env("A", "1")
            .files_root(Digest::of(b"r"))
            .finish();
        assert!(KeyExplanation::diff(&a, &a).is_empty());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<KeyExplanation>(&json).unwrap(), a);
    }

    #[test]
    fn messages_name_the_component() {
        let c = Change::Arg {
            name: "V".into(),
            delta: Delta::Changed,
        };
        assert_eq!(c.to_string(), "build arg `V` changed");
        let c = Change::File {
            path: "/a".into(),
            delta: Delta::Added,
        };
        assert_eq!(c.to_string(), "file `/a` added");
    }
}
