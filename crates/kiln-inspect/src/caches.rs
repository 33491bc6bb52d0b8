//! Package-manager caches and build leftovers: directories whose files a running container
//! never needs, found by path in the final filesystem.

use crate::tree::{NodeId, PathTree};

/// A kind of cache or leftover, named after the tool that leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CacheKind {
    /// `/var/lib/apt/lists`: apt's package indexes (`apt-get update`).
    AptLists,
    /// `/var/cache/apt`: downloaded `.deb`s and apt's package caches.
    AptCache,
    /// `/var/cache/apk`: Alpine's package cache.
    Apk,
    /// `/var/cache/dnf`, `/var/cache/yum`: Fedora's and RHEL's package caches.
    Dnf,
    /// `~/.cache/pip`: pip's wheel and HTTP cache.
    Pip,
    /// `~/.npm`: npm's cache.
    Npm,
    /// `~/.cache/yarn`, `/usr/local/share/.cache/yarn`: yarn's cache.
    Yarn,
    /// `~/.cache/go-build`, `~/go/pkg/mod/cache`: Go's build and download caches.
    Go,
    /// `~/.cargo/registry`: Cargo's downloaded crates.
    Cargo,
    /// `/tmp`, `/var/tmp`: temporary files a build left.
    Tmp,
}

impl CacheKind {
    /// A short name (`apt-lists`, `pip` ...), stable for JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::AptLists => "apt-lists",
            Self::AptCache => "apt-cache",
            Self::Apk => "apk-cache",
            Self::Dnf => "dnf-cache",
            Self::Pip => "pip-cache",
            Self::Npm => "npm-cache",
            Self::Yarn => "yarn-cache",
            Self::Go => "go-cache",
            Self::Cargo => "cargo-registry",
            Self::Tmp => "tmp",
        }
    }
}

/// Directories under `/`.
const SYSTEM: &[(&str, CacheKind)] = &[
    ("var/lib/apt/lists", CacheKind::AptLists),
    ("var/cache/apt", CacheKind::AptCache),
    ("var/cache/apk", CacheKind::Apk),
    ("var/cache/dnf", CacheKind::Dnf),
    ("var/cache/yum", CacheKind::Dnf),
    ("usr/local/share/.cache/yarn", CacheKind::Yarn),
    ("tmp", CacheKind::Tmp),
    ("var/tmp", CacheKind::Tmp),
];

/// Directories under a home directory (`/root`, `/home/*`).
const HOME: &[(&str, CacheKind)] = &[
    (".cache/pip", CacheKind::Pip),
    (".npm", CacheKind::Npm),
    (".cache/yarn", CacheKind::Yarn),
    (".cache/go-build", CacheKind::Go),
    ("go/pkg/mod/cache", CacheKind::Go),
    (".cargo/registry", CacheKind::Cargo),
];

/// The cache directories `tree` has, with their kind.
pub(crate) fn cache_dirs(tree: &PathTree) -> Vec<(NodeId, CacheKind)> {
    let mut out = Vec::new();
    for (path, kind) in SYSTEM {
        if let Some(n) = tree.lookup(path.as_bytes()) {
            out.push((n, *kind));
        }
    }
    let mut homes: Vec<NodeId> = tree.lookup(b"root").into_iter().collect();
    if let Some(home) = tree.lookup(b"home") {
        homes.extend(tree.children(home));
    }
    for home in homes {
        let base = tree.path(home);
        for (path, kind) in HOME {
            if let Some(n) = tree.lookup(format!("{base}/{path}").as_bytes()) {
                out.push((n, *kind));
            }
        }
    }
    out
}
