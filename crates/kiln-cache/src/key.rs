//! Cache keys: what enters a step's key, and exactly how it is encoded.
//!
//! # Format (version 2)
//!
//! A key is the SHA-256 of the byte string
//!
//! ```text
//! KEY_VERSION (u8 = 2)  field*
//! field   = tag (u8)  length (u32, big-endian)  payload (length bytes)
//! bytes   = length (u32, big-endian)  the bytes
//! ```
//!
//! with the fields in this order, whatever order the [`KeyBuilder`] was fed in:
//!
//! | tag | field | payload | how many |
//! |---|---|---|---|
//! | 1 | parent | kind `u8` (0 scratch, 1 previous step's key, 2 base image manifest digest), then the 32 raw bytes of the digest (none for scratch) | exactly one |
//! | 2 | instruction | the instruction in canonical form after variable expansion ([`crate::canon`]: named fields, self-delimiting values, never `Debug`), UTF-8 | exactly one |
//! | 3 | platform | `os/architecture[/variant]`, UTF-8 | exactly one |
//! | 4 | build arg | `bytes` name, then `u8` 0 (declared, no value) or 1 followed by `bytes` value | one per visible ARG, sorted by name bytes |
//! | 5 | env | `bytes` name, `bytes` value | one per variable, sorted by name bytes |
//! | 6 | files | the 32 raw bytes of the Merkle root of the files the step copies (kiln-fileop's `merkle` format) | at most one (COPY/ADD) |
//! | 7 | input | `bytes` name, then the 32 raw bytes of its digest: anything else the step reads (a `--mount=from=` stage's key, a checksum) | one per input, sorted by name bytes |
//!
//! Integers are big-endian. Every variable-length value carries its length, so no two
//! different sets of components encode to the same bytes (`A=bc` and `Ab=c` differ). Names
//! are unique per tag: giving a name twice keeps the last value. mtimes never enter a key:
//! the files field covers path, mode, owner, size, content and link target only.
//!
//! The hash of each field's own encoding (tag, length, payload) is kept in the
//! [`KeyExplanation`], so that a miss can name the component that changed without storing
//! the values themselves. Changing anything in this table bumps [`KEY_VERSION`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use kiln_fileop::MerkleHash;
use kiln_layer::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::explain::{FilesExplanation, KeyExplanation};

/// The version byte that opens every key's encoding.
///
/// History: 2 writes instructions in [`crate::canon`]'s form (1 embedded Rust `Debug` output
/// of the frontend's types), and leaves behind the records of builds that could hold wrong
/// layers (a RUN that rewrote a file at the same size and mtime lost the change; WORKDIR's
/// layer left out the directories above the one it made). kiln-build's `golden_keys` test
/// pins the keys of a set of instructions.
pub const KEY_VERSION: u8 = 2;

const TAG_PARENT: u8 = 1;
const TAG_INSTRUCTION: u8 = 2;
const TAG_PLATFORM: u8 = 3;
const TAG_ARG: u8 = 4;
const TAG_ENV: u8 = 5;
const TAG_FILES: u8 = 6;
const TAG_INPUT: u8 = 7;

/// A step's cache key: a SHA-256, shown as `sha256:<hex>`.
///
/// It is a distinct type from a blob [`Digest`] so the two are never confused, although both
/// print the same way.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CacheKey(Digest);

impl CacheKey {
    /// The key as a digest (for example to use it as a parent or an input).
    pub fn as_digest(&self) -> &Digest {
        &self.0
    }

    /// Wraps a digest that is known to be a cache key (read back from the index).
    pub fn from_digest(digest: Digest) -> Self {
        Self(digest)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

impl FromStr for CacheKey {
    type Err = kiln_layer::DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl From<CacheKey> for String {
    fn from(k: CacheKey) -> Self {
        k.to_string()
    }
}

impl TryFrom<String> for CacheKey {
    type Error = kiln_layer::DigestParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What a step builds on: the first component of its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "digest")]
pub enum Parent {
    /// `FROM scratch`: nothing.
    Scratch,
    /// The previous step of the stage, by its key.
    Step(CacheKey),
    /// The stage's base image, by its manifest digest (a changed base changes every key of the
    /// stage).
    #[serde(with = "kiln_oci::model::digest_serde")]
    BaseImage(Digest),
}

impl Parent {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Scratch => out.push(0),
            Self::Step(k) => {
                out.push(1);
                out.extend_from_slice(&raw(k.as_digest()));
            }
            Self::BaseImage(d) => {
                out.push(2);
                out.extend_from_slice(&raw(d));
            }
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scratch => f.write_str("scratch"),
            Self::Step(k) => write!(f, "step `{k}`"),
            Self::BaseImage(d) => write!(f, "base image `{d}`"),
        }
    }
}

/// Builds one step's key from its components; see the [module docs](self) for the encoding.
///
/// ```
/// use kiln_cache::{KeyBuilder, Parent};
/// let (key, explanation) = KeyBuilder::new(Parent::Scratch, "RUN make", "linux/amd64")
///     .arg("VERSION", Some("1.2"))
///     .env("PATH", "/usr/bin:/bin")
///     .finish();
/// assert_eq!(explanation.key, key);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyBuilder {
    parent: Parent,
    instruction: String,
    platform: String,
    args: BTreeMap<String, Option<String>>,
    env: BTreeMap<String, String>,
    files: Option<FilesExplanation>,
    inputs: BTreeMap<String, Digest>,
}

impl KeyBuilder {
    /// Starts a key with the three components every step has. `instruction` is the canonical
    /// form after variable expansion (the caller decides it; the same instruction must always
    /// give the same text). `platform` is `os/architecture[/variant]`.
    pub fn new(
        parent: Parent,
        instruction: impl Into<String>,
        platform: impl Into<String>,
    ) -> Self {
        Self {
            parent,
            instruction: instruction.into(),
            platform: platform.into(),
            args: BTreeMap::new(),
            env: BTreeMap::new(),
            files: None,
            inputs: BTreeMap::new(),
        }
    }

    /// Adds a build arg the step can see. Following BuildKit, only ARGs declared in the stage
    /// (or the predefined proxy args) are visible; `None` is a declared ARG without a value,
    /// which differs from an empty value.
    pub fn arg(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.args.insert(name.into(), value.map(str::to_owned));
        self
    }

    /// Adds an environment variable the step sees (from ENV or the base image's config).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the files a COPY/ADD copies, with every leaf, so a miss can name the changed file.
    pub fn files(mut self, merkle: MerkleHash) -> Self {
        self.files = Some(FilesExplanation {
            root: merkle.root,
            leaves: Some(merkle.leaves),
        });
        self
    }

    /// Sets the files' Merkle root alone (the per-file hashes are not known or too many to
    /// keep); a miss then says only that the copied files changed.
    pub fn files_root(mut self, root: Digest) -> Self {
        self.files = Some(FilesExplanation { root, leaves: None });
        self
    }

    /// Adds another input the step reads, by name (for example `mount:/src` with the key of
    /// the stage a `RUN --mount=from=` reads).
    pub fn input(mut self, name: impl Into<String>, digest: Digest) -> Self {
        self.inputs.insert(name.into(), digest);
        self
    }

    /// The key and its explanation (every component's own hash).
    pub fn finish(self) -> (CacheKey, KeyExplanation) {
        let mut all = vec![KEY_VERSION];
        let mut field = |tag: u8, payload: &[u8]| -> Digest {
            let start = all.len();
            all.push(tag);
            let len = u32::try_from(payload.len()).expect("a key field is under 4 GiB");
            all.extend_from_slice(&len.to_be_bytes());
            all.extend_from_slice(payload);
            Digest::of(&all[start..])
        };

        let mut payload = Vec::new();
        self.parent.encode(&mut payload);
        field(TAG_PARENT, &payload);
        let instruction = field(TAG_INSTRUCTION, self.instruction.as_bytes());
        let platform = field(TAG_PLATFORM, self.platform.as_bytes());
        let mut args = BTreeMap::new();
        for (name, value) in &self.args {
            let mut p = Vec::new();
            put_bytes(&mut p, name.as_bytes());
            match value {
                None => p.push(0),
                Some(v) => {
                    p.push(1);
                    put_bytes(&mut p, v.as_bytes());
                }
            }
            args.insert(name.clone(), field(TAG_ARG, &p));
        }
        let mut env = BTreeMap::new();
        for (name, value) in &self.env {
            let mut p = Vec::new();
            put_bytes(&mut p, name.as_bytes());
            put_bytes(&mut p, value.as_bytes());
            env.insert(name.clone(), field(TAG_ENV, &p));
        }
        let files = self.files.inspect(|f| {
            field(TAG_FILES, &raw(&f.root));
        });
        let mut inputs = BTreeMap::new();
        for (name, digest) in &self.inputs {
            let mut p = Vec::new();
            put_bytes(&mut p, name.as_bytes());
            p.extend_from_slice(&raw(digest));
            inputs.insert(name.clone(), field(TAG_INPUT, &p));
        }
        let key = CacheKey(Digest::from_sha256(&Sha256::digest(&all).into()));
        let explanation = KeyExplanation {
            version: KEY_VERSION,
            key: key.clone(),
            parent: self.parent,
            instruction,
            platform,
            args,
            env,
            files,
            inputs,
        };
        (key, explanation)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a key value is under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The 32 bytes a digest's hex stands for.
fn raw(d: &Digest) -> [u8; 32] {
    let hex = d.hex().as_bytes();
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]);
    }
    out
}

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> KeyBuilder {
        KeyBuilder::new(Parent::Scratch, "RUN make", "linux/amd64")
    }

    #[test]
    fn the_encoding_is_pinned() {
        // Recomputed by hand from the table in the module docs; if this fails, the format
        // changed and KEY_VERSION must be bumped.
        let mut bytes = vec![2u8];
        bytes.extend([1, 0, 0, 0, 1, 0]);
        bytes.extend([2, 0, 0, 0, 8]);
        bytes.extend(b"RUN make");
        bytes.extend([3, 0, 0, 0, 11]);
        bytes.extend(b"linux/amd64");
        bytes.extend([4, 0, 0, 0, 11, 0, 0, 0, 1, b'A', 1, 0, 0, 0, 1, b'x']);
        let (key, _) = base().arg("A", Some("x")).finish();
        assert_eq!(key.as_digest(), &Digest::of(&bytes));
    }

    #[test]
    fn order_of_calls_does_not_matter_but_values_do() {
        let (a, _) = base().env("A", "1").env("B", "2").finish();
        let (b, _) = base().env("B", "2").env("A", "1").finish();
        assert_eq!(a, b);
        let (c, _) = base().env("A", "1").env("B", "3").finish();
        assert_ne!(a, c);
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let (env_a, _) = base().env("A", "bc").finish();
        let (env_ab, _) = base().env("Ab", "c").finish();
        assert_ne!(env_a, env_ab);
        // An arg and an env of the same name and value are different components.
        let (arg_a, _) = base().arg("A", Some("bc")).finish();
        assert_ne!(env_a, arg_a);
        // A declared ARG without a value is not an empty one.
        let (unset, _) = base().arg("A", None).finish();
        let (empty, _) = base().arg("A", Some("")).finish();
        assert_ne!(unset, empty);
    }

    #[test]
    fn parent_kinds_differ_even_with_the_same_digest() {
        let d = Digest::of(b"x");
        let (a, _) = KeyBuilder::new(Parent::BaseImage(d.clone()), "RUN x", "linux/amd64").finish();
        let (b, _) = KeyBuilder::new(
            Parent::Step(CacheKey::from_digest(d)),
            "RUN x",
            "linux/amd64",
        )
        .finish();
        assert_ne!(a, b);
    }

    #[test]
    fn files_root_is_all_that_enters_the_key() {
        let root = Digest::of(b"tree");
        let merkle = MerkleHash {
            root: root.clone(),
            leaves: vec![("/a".into(), Digest::of(b"a"))],
        };
        let (a, ea) = base().files(merkle).finish();
        let (b, eb) = base().files_root(root).finish();
        assert_eq!(a, b);
        assert!(ea.files.unwrap().leaves.is_some());
        assert!(eb.files.unwrap().leaves.is_none());
    }

    #[test]
    fn key_round_trips_through_text() {
        let (k, _) = base().finish();
        assert_eq!(k.to_string().parse::<CacheKey>().unwrap(), k);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), k);
    }
}
