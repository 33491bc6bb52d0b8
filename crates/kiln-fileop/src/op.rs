//! What a COPY or ADD asks for, as the caller (kiln-build) hands it over after expansion.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::chown::ChownSpec;
use crate::fetch::Fetcher;
use crate::view::{LowerView, SourceRoot};

/// How `--chmod` changes a mode. kiln-build implements it for the frontend's `Chmod`, so this
/// crate does not depend on the Dockerfile layer.
pub trait ModeChange: fmt::Debug + Send + Sync {
    /// The new permission bits (with setuid, setgid, sticky) of an entry of mode `mode`.
    fn apply(&self, mode: u32, is_dir: bool) -> u32;
    /// The absolute mode when `--chmod` was octal, `None` when symbolic. BuildKit gives the
    /// directories it creates for the destination this mode (its `0o777` bits) instead of
    /// `0755`, and turns `--link` off when any `--chmod` is given.
    fn octal(&self) -> Option<u32>;
}

/// An octal `--chmod`: every copied entry gets exactly this mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OctalMode(pub u32);

impl ModeChange for OctalMode {
    fn apply(&self, _: u32, _: bool) -> u32 {
        self.0 & 0o7777
    }
    fn octal(&self) -> Option<u32> {
        Some(self.0)
    }
}

/// One source of a COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path in the source root, as written after expansion (may hold wildcards, `..`, a
    /// leading `/`, and for `--parents` a `/./` pivot).
    Path(String),
    /// An `http://` or `https://` URL (ADD only).
    Url(String),
    /// A heredoc (`COPY <<EOF /dst`): a file named `name` holding `data`, mode `0644`.
    Heredoc {
        /// The heredoc's name, the file name when the destination is a directory.
        name: String,
        /// The body, after expansion.
        data: Vec<u8>,
    },
}

/// COPY or ADD, with ADD's own flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OpKind {
    /// COPY: no archive extraction, no URLs.
    #[default]
    Copy,
    /// ADD.
    Add {
        /// `--unpack`: `None` extracts local archives and leaves URLs alone (BuildKit's
        /// default); `Some(true)` extracts URL archives too; `Some(false)` extracts nothing.
        unpack: Option<bool>,
        /// `--checksum=sha256:<hex>` for a URL source.
        checksum: Option<String>,
    },
}

/// A COPY or ADD with every value already expanded.
#[derive(Debug, Clone, Default)]
pub struct CopyOp {
    /// The sources, in instruction order (path sources first, then heredocs, as BuildKit's
    /// `dispatchCopy` orders them).
    pub sources: Vec<Source>,
    /// The destination as written; relative ones resolve against `workdir`. A trailing `/`
    /// means a directory.
    pub dest: String,
    /// The stage's WORKDIR (absolute); the default, empty, is `/`.
    pub workdir: String,
    /// `--chown`.
    pub chown: Option<ChownSpec>,
    /// `--chmod`.
    pub chmod: Option<Arc<dyn ModeChange>>,
    /// `--parents`: keep each source's path below the root or below a `/./` pivot.
    pub parents: bool,
    /// `--exclude` patterns, matched against paths relative to each copied source.
    pub exclude: Vec<String>,
    /// `--link`: the layer does not look at the parent's files. BuildKit ignores it when
    /// `--chmod` is given; so does kiln.
    pub link: bool,
    /// COPY or ADD.
    pub kind: OpKind,
    /// mtime of what kiln creates rather than copies: missing destination directories,
    /// heredoc files and downloads without `Last-Modified`. BuildKit uses the build time
    /// there (or `SOURCE_DATE_EPOCH`); kiln uses this fixed value so that builds are
    /// reproducible. The default is 0.
    pub created_mtime: i64,
}

impl CopyOp {
    /// Whether `--link` is in effect (BuildKit drops it when `--chmod` is set).
    pub fn effective_link(&self) -> bool {
        self.link && self.chmod.is_none()
    }
}

/// What a COPY or ADD reads besides its own values.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// Where path sources are read (the context or a stage's root). `None` when the op has
    /// no path sources.
    pub source: Option<&'a SourceRoot>,
    /// The parent's filesystem: destination lookups (unless `--link`) and `--chown` names.
    pub target: &'a dyn LowerView,
    /// Downloads URL sources.
    pub fetcher: Option<&'a dyn Fetcher>,
    /// Where downloads and extracted archives are kept until the layer is written; the
    /// default, `None`, is the system temporary directory.
    pub scratch_dir: Option<&'a Path>,
}
