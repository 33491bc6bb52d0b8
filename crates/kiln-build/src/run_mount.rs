//! `RUN --mount`: each parsed mount turned into what the sandbox mounts (BuildKit's
//! `convert_runmount.go` and `convert_secrets.go`).
//!
//! * `bind`: a path of the context (the default; `.dockerignore` applies), a stage or an image,
//!   read-only unless `rw`. Writes to a `rw` bind land in a throw-away overlay upper dir (or
//!   copy, without overlayfs), never in the context or a snapshot.
//! * `cache`: a directory of the store that outlives builds (layout below), shared, locked or
//!   private, optionally seeded from a stage; `source=` mounts a path inside it.
//! * `tmpfs`: an empty tmpfs, `size` bytes at most.
//! * `secret`: a `--secret` given to the build, as a file on the step's private tmpfs (and/or
//!   an environment variable of the step); missing is an error only when `required`.
//! * `ssh`: not supported yet (an error that says so).
//!
//! None of them changes the step's layer: the sandbox removes every mount point it had to
//! create, and nothing mounted is ever in the upper dir.
//!
//! # Cache mounts in the store
//! ```text
//! ROOT/cache-mounts/<key>/
//!     id      the cache id, for people (`kiln` never reads it)
//!     lock    flock(2): shared while a `sharing=shared` step uses it, exclusive for `locked`
//!             and `private`
//!     data/   the directory mounted at the target; created whole (by rename), then persisted
//! ```
//! `<key>` is the sha256 (hex) of: a version byte (1), then the cache id, then, for a cache
//! seeded with `from`, the source path and each snapshot directory of the seed (topmost
//! first), each item as its length (u64, little endian) and its bytes. A seeded cache is thus
//! a different cache for each seed, as in BuildKit. `id` is rewritten at each use: its mtime
//! says when the cache was last used, for [`cache_mounts`] and [`remove_cache_mount`]
//! (`kiln du` and `kiln prune`).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use kiln_context::IgnoreRules;
use kiln_frontend::instruction::{Mount, MountType, Sharing};
use kiln_oci::Layout;
use kiln_sandbox::{FileContent, MountKind, MountSpec};

use crate::error::StepError;
use crate::snapshotter::Snapshotter;

/// A cache mount of the store, as `kiln du` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheMountUsage {
    /// Its directory's name under `cache-mounts/` (see the module docs).
    pub key: String,
    /// The cache id (`id=`, or the target when none was given).
    pub id: String,
    /// Bytes its files take (regular files' sizes).
    pub size: u64,
    /// When a step last used it.
    pub last_used: std::time::SystemTime,
}

/// Every cache mount of the store laid out as `layout`, least recently used first.
pub fn cache_mounts(layout: &Layout) -> Result<Vec<CacheMountUsage>, MountError> {
    let root = layout.cache_mounts();
    let entries = match fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", &root)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let name = e.map_err(io_err("read", &root))?.file_name();
        let Some(key) = name.to_str() else { continue };
        let dir = layout.cache_mount(key);
        let id_file = dir.id();
        let (Ok(id), Ok(meta)) = (fs::read_to_string(&id_file), fs::metadata(&id_file)) else {
            continue; // being made, or not a cache
        };
        out.push(CacheMountUsage {
            key: key.to_owned(),
            id,
            size: tree_size(&dir.data()),
            last_used: meta.modified().map_err(io_err("stat", &id_file))?,
        });
    }
    out.sort_by_key(|c| c.last_used);
    Ok(out)
}

/// The sizes of the regular files under `dir` (hard links once).
fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// Removes the cache mount `key` of the store laid out as `layout`, unless a step is using
/// it now (its lock is held): `Ok(false)` then. The directory is renamed away first, so no
/// step ever mounts a half-removed cache.
pub fn remove_cache_mount(layout: &Layout, key: &str) -> Result<bool, MountError> {
    let mount = layout.cache_mount(key);
    let (dir, lock_path) = (mount.dir(), mount.lock());
    let lock = match fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("open", &lock_path)(e)),
    };
    if let Some(l) = &lock
        && l.try_lock().is_err()
    {
        return Ok(false);
    }
    let gone = layout
        .cache_mounts()
        .join(format!("removing-{key}-{}", std::process::id()));
    match fs::rename(dir, &gone) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_err("remove", dir)(e)),
    }
    drop(lock);
    fs::remove_dir_all(&gone).map_err(io_err("remove", &gone))?;
    Ok(true)
}

/// A secret given to the build with `--secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The id `RUN --mount=type=secret,id=` refers to.
    pub id: String,
    /// Where its bytes are read, when a step mounts it (never earlier, never copied to disk).
    pub source: SecretSource,
}

/// Where a [`Secret`]'s bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A file (absolute path).
    File(PathBuf),
    /// An environment variable of the kiln process, by name.
    Env(String),
}

/// Why a `--secret` value does not parse.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A field without `=`.
    #[error("invalid field `{0}`: expected `key=value`")]
    Field(String),
    /// A key `docker build` does not know.
    #[error("unexpected key `{0}`")]
    Key(String),
    /// No `id=`, or an empty one.
    #[error("missing `id=`")]
    MissingId,
    /// The file's path cannot be made absolute.
    #[error("invalid file `{file}`")]
    File {
        /// The path as given.
        file: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Neither `file` nor `env`.
    #[error("unsupported secret type `{0}` (file or env)")]
    Type(String),
    /// `src=` and `env=` at once.
    #[error("both `src` and `env` are set")]
    Both,
    /// Neither `src=` nor `env=`.
    #[error("missing `src=FILE` or `env=VAR`")]
    MissingSource,
}

/// Parses `--secret id=X,src=FILE`, `id=X,env=VAR` (also `source=`, and `type=file|env`
/// with `src` naming the file or variable), as `docker build` does. A relative file is taken
/// from the current directory.
pub fn parse_secret(spec: &str) -> Result<Secret, SecretError> {
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| SecretError::Field(field.to_owned()))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => src = Some(v.to_owned()),
            "env" => env = Some(v.to_owned()),
            "type" => typ = Some(v.to_owned()),
            other => return Err(SecretError::Key(other.to_owned())),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or(SecretError::MissingId)?;
    let source = match (typ.as_deref(), src, env) {
        (Some("env"), Some(name), None) | (None | Some("env"), None, Some(name)) => {
            SecretSource::Env(name)
        }
        (None | Some("file"), Some(file), None) => SecretSource::File(
            std::path::absolute(&file).map_err(|source| SecretError::File {
                file: file.clone(),
                source,
            })?,
        ),
        (Some(t), _, _) if t != "file" && t != "env" => {
            return Err(SecretError::Type(t.to_owned()));
        }
        (_, Some(_), Some(_)) => return Err(SecretError::Both),
        _ => return Err(SecretError::MissingSource),
    };
    Ok(Secret { id, source })
}

/// Why a mount could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The target is the root, or empty at `/`.
    #[error("invalid mount target `{0}`")]
    Target(String),
    /// A required secret was not given to the build.
    #[error("secret `{0}` not found")]
    SecretMissing(String),
    /// `type=ssh`.
    #[error("RUN --mount=type=ssh is not supported yet")]
    Ssh,
    /// A bind source is not in the context.
    #[error("bind mount source `{0}` not found in the build context")]
    SourceNotFound(String),
    /// A cache mount's seed path is not in its stage.
    #[error("cache mount source `{source_path}` not found in `{from}`")]
    SeedNotFound {
        /// The `source=` path.
        source_path: String,
        /// The `from=` stage or image.
        from: String,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] kiln_io::IoError),
}

impl MountError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::SecretMissing(id) => Some(format!(
                "give it to the build: `--secret id={id},src=FILE` or `--secret id={id},env=VAR`"
            )),
            Self::Ssh => Some("copy what the step needs, or fetch it over https".into()),
            _ => None,
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MountError + 'a {
    let err = kiln_io::io_err(action, path);
    move |source| MountError::Io(err(source))
}

/// What a step's mounts need from the build.
pub(crate) struct MountInput<'a> {
    /// The mounts, expanded.
    pub mounts: &'a [Mount],
    /// The step's working directory (relative targets are under it).
    pub workdir: &'a str,
    /// The context directory and its ignore rules.
    pub context: &'a Path,
    /// `.dockerignore`.
    pub ignore: &'a IgnoreRules,
    /// `--secret`s.
    pub secrets: &'a [Secret],
    /// The store's paths (for its cache mounts).
    pub layout: &'a Layout,
    /// How layers are mounted (overlays, or throw-away copies).
    pub snapshotter: Snapshotter,
    /// A fresh directory for this step's throw-away parts; removed when the mounts are.
    pub scratch: PathBuf,
    /// The snapshots of a stage or image named by `from=` (topmost first).
    pub layers_of: &'a dyn Fn(&str) -> Result<Vec<PathBuf>, StepError>,
    /// Under `--no-cache` (or `--no-cache-filter` of this stage): the caches this build has
    /// emptied already. A cache is emptied the first time a step of the build mounts it, so
    /// it starts empty as in BuildKit (moby/buildkit#5305) and later steps of the same build
    /// see what earlier ones left. `None` keeps caches as they are.
    pub empty_caches: Option<&'a std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// A step's mounts, ready for the sandbox; holds the cache locks until dropped, and removes
/// the throw-away directories then.
pub(crate) struct PreparedMounts {
    /// For [`kiln_sandbox::Spec::mounts`].
    pub mounts: Vec<MountSpec>,
    /// `KEY=VALUE` entries to add to the step's environment (secrets with `env=`).
    pub env: Vec<String>,
    /// The targets of the secret mounts among `mounts`.
    pub secret_mounts: Vec<String>,
    /// The variables of `env` that hold secrets (all of them, today).
    pub secret_env: Vec<String>,
    scratch: PathBuf,
    /// Held for the step's duration: dropping them releases the cache locks.
    locks: Vec<fs::File>,
}

impl Drop for PreparedMounts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

/// The absolute, clean target of a mount: relative ones are under `workdir`.
fn target_of(m: &Mount, workdir: &str) -> Result<String, MountError> {
    let raw = m.target.clone().unwrap_or_default();
    let joined = if raw.starts_with('/') {
        raw.clone()
    } else {
        format!("{workdir}/{raw}")
    };
    let clean = crate::image_config::clean_path(&joined);
    if clean == "/" {
        return Err(MountError::Target(if raw.is_empty() { clean } else { raw }));
    }
    Ok(clean)
}

/// Resolves `rel` inside `root` on the host with symlinks kept inside `root` (as the sandbox
/// does); `None` when something is missing.
fn resolve_scoped(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut todo: std::collections::VecDeque<String> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect();
    let mut inside: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            inside.pop();
            continue;
        }
        let mut host = root.to_owned();
        host.extend(&inside);
        host.push(&name);
        let meta = fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = fs::read_link(&host).ok()?;
            if target.is_absolute() {
                inside.clear();
            }
            for c in target.components().rev() {
                if let Component::Normal(n) = c {
                    todo.push_front(n.to_string_lossy().into_owned());
                } else if c == Component::ParentDir {
                    todo.push_front("..".into());
                }
            }
        } else {
            inside.push(name);
        }
    }
    let mut host = root.to_owned();
    host.extend(&inside);
    Some(host)
}

/// Prepares every mount of a step.
pub(crate) fn prepare(input: &MountInput<'_>) -> Result<PreparedMounts, StepError> {
    let mut out = PreparedMounts {
        mounts: Vec::new(),
        env: Vec::new(),
        secret_mounts: Vec::new(),
        secret_env: Vec::new(),
        scratch: input.scratch.clone(),
        locks: Vec::new(),
    };
    let mut context_root: Option<PathBuf> = None;
    for (n, m) in input.mounts.iter().enumerate() {
        let scratch = input.scratch.join(n.to_string());
        match m.typ {
            MountType::Ssh => return Err(MountError::Ssh.into()),
            MountType::Secret => secret(input, m, &mut out)?,
            MountType::Tmpfs => out.mounts.push(MountSpec {
                target: target_of(m, input.workdir)?,
                kind: MountKind::Tmpfs { size: m.size },
            }),
            MountType::Bind => {
                let target = target_of(m, input.workdir)?;
                // Cleaned lexically first, as BuildKit cleans a mount's selector: `a/../b` is
                // `b` even when `a` is a symlink.
                let source = m.source.as_deref().unwrap_or_default();
                let path = kiln_context::clean_path(&format!("/{source}"))
                    .trim_start_matches('/')
                    .to_owned();
                let kind = match &m.from {
                    None => {
                        if context_root.is_none() {
                            context_root = Some(filtered_context(input)?);
                        }
                        let root = context_root.clone().unwrap_or_default();
                        let Some(found) = resolve_scoped(&root, &path) else {
                            return Err(MountError::SourceNotFound(path).into());
                        };
                        if m.read_only {
                            MountKind::Bind {
                                root,
                                path,
                                read_only: true,
                            }
                        } else {
                            input
                                .snapshotter
                                .mount(&[root], &found, &path, false, &scratch)?
                        }
                    }
                    Some(from) => {
                        let lowers = (input.layers_of)(from)?;
                        input.snapshotter.mount(
                            &lowers,
                            &PathBuf::new(),
                            &path,
                            m.read_only,
                            &scratch,
                        )?
                    }
                };
                out.mounts.push(MountSpec { target, kind });
            }
            MountType::Cache => {
                let target = target_of(m, input.workdir)?;
                let (root, lock) = cache_dir(input, m, &target, &scratch)?;
                out.locks.extend(lock);
                // Without `from`, `source=` is a path inside the cache (BuildKit's selector,
                // cleaned as `path.Join("/", source)`); the sandbox resolves it with symlinks
                // kept inside the cache, and a missing one fails the step. With `from`, it
                // named the seed's path instead.
                let path = match (&m.from, &m.source) {
                    (None, Some(source)) => kiln_context::clean_path(&format!("/{source}"))
                        .trim_start_matches('/')
                        .to_owned(),
                    _ => String::new(),
                };
                out.mounts.push(MountSpec {
                    target,
                    kind: MountKind::Bind {
                        root,
                        path,
                        read_only: m.read_only,
                    },
                });
            }
        }
    }
    Ok(out)
}

/// The context as a bind source: itself when nothing is ignored, else a copy (hard links
/// where the filesystem allows) of what `.dockerignore` keeps, as BuildKit sends only that.
fn filtered_context(input: &MountInput<'_>) -> Result<PathBuf, StepError> {
    if input.ignore.lines().is_empty() {
        return Ok(input.context.to_owned());
    }
    let root = input.scratch.join("context");
    fs::create_dir_all(&root).map_err(|e| StepError::io("create", &root, e))?;
    let entries = kiln_context::walk(input.context, input.ignore)
        .map_err(|e| StepError::Context(std::sync::Arc::new(e)))?;
    for e in entries {
        let from = input.context.join(&e.relative);
        let to = root.join(&e.relative);
        let ft = e.file_type;
        let r = if ft.is_dir() {
            fs::create_dir_all(&to)
                .and_then(|()| fs::set_permissions(&to, e.metadata.permissions()))
        } else if ft.is_symlink() {
            fs::read_link(&from).and_then(|t| std::os::unix::fs::symlink(t, &to))
        } else if ft.is_file() {
            fs::hard_link(&from, &to).or_else(|_| fs::copy(&from, &to).map(drop))
        } else {
            Ok(())
        };
        r.map_err(|err| StepError::io("copy the context file", &from, err))?;
    }
    Ok(root)
}

/// A secret mount: a file on the step's tmpfs, and/or an environment variable.
fn secret(input: &MountInput<'_>, m: &Mount, out: &mut PreparedMounts) -> Result<(), StepError> {
    let id = match (&m.source, &m.id, &m.target) {
        (Some(s), _, _) | (None, Some(s), _) => s.clone(),
        (None, None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_owned(),
        (None, None, None) => return Err(MountError::Target(String::new()).into()),
    };
    let target = match (&m.target, &m.env) {
        (Some(_), _) => Some(target_of(m, input.workdir)?),
        (None, None) => Some(format!(
            "/run/secrets/{}",
            id.rsplit('/').next().unwrap_or_default()
        )),
        (None, Some(_)) => None,
    };
    let found = input.secrets.iter().find(|s| s.id == id);
    let content = match found.map(|s| &s.source) {
        Some(SecretSource::File(p)) if p.is_file() => Some(FileContent::Host(p.clone())),
        // `--secret id=X,env=VAR` names a variable of kiln's own environment, read only when
        // a step mounts it (never kept): the one setting read this deep, by design.
        #[allow(clippy::disallowed_methods)]
        Some(SecretSource::Env(var)) => std::env::var_os(var).map(|v| {
            FileContent::Inline(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
        }),
        _ => None,
    };
    let Some(content) = content else {
        if m.required {
            return Err(MountError::SecretMissing(id).into());
        }
        return Ok(());
    };
    if let Some(var) = &m.env {
        let bytes = match &content {
            FileContent::Inline(b) => b.clone(),
            FileContent::Host(p) => {
                fs::read(p).map_err(|e| StepError::io("read the secret", p, e))?
            }
        };
        out.env
            .push(format!("{var}={}", String::from_utf8_lossy(&bytes)));
        out.secret_env.push(var.clone());
    }
    if let Some(target) = target {
        out.secret_mounts.push(target.clone());
        out.mounts.push(MountSpec {
            target,
            kind: MountKind::File {
                content,
                mode: m.mode.unwrap_or(0o400),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            },
        });
    }
    Ok(())
}

/// The key of a cache directory (see the module docs).
fn cache_key(id: &str, seed: Option<(&str, &[PathBuf])>) -> String {
    let mut bytes = vec![1u8];
    let mut push = |b: &[u8]| {
        bytes.extend_from_slice(&(b.len() as u64).to_le_bytes());
        bytes.extend_from_slice(b);
    };
    push(id.as_bytes());
    if let Some((source, lowers)) = seed {
        push(source.as_bytes());
        for l in lowers {
            push(std::os::unix::ffi::OsStrExt::as_bytes(l.as_os_str()));
        }
    }
    kiln_layer::Digest::of(&bytes).hex().to_owned()
}

/// The directory of a cache mount, made when new, with its lock held as `sharing` says; a
/// private mount of a busy cache gets a fresh directory in `scratch` instead.
fn cache_dir(
    input: &MountInput<'_>,
    m: &Mount,
    target: &str,
    scratch: &Path,
) -> Result<(PathBuf, Option<fs::File>), StepError> {
    let id =
        m.id.clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| target.to_owned());
    let seed = match &m.from {
        Some(from) => Some((
            from.clone(),
            crate::image_config::clean_path(m.source.as_deref().unwrap_or("/")),
            (input.layers_of)(from)?,
        )),
        None => None,
    };
    let key = cache_key(
        &id,
        seed.as_ref().map(|(_, s, l)| (s.as_str(), l.as_slice())),
    );
    let mount = input.layout.cache_mount(&key);
    let dir = mount.dir();
    fs::create_dir_all(dir).map_err(|e| StepError::io("create", dir, e))?;
    let _ = fs::write(mount.id(), &id);
    let lock_path = mount.lock();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StepError::io("open", &lock_path, e))?;
    let data = mount.data();
    let empty_now = input.empty_caches.is_some_and(|done| {
        done.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone())
    });
    if empty_now && fs::symlink_metadata(&data).is_ok() {
        // Renamed away first, so that no step ever sees it half removed.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let old = dir.join(format!("old-{}-{n}", std::process::id()));
        fs::rename(&data, &old).map_err(|e| StepError::io("empty the cache", &data, e))?;
        fs::remove_dir_all(&old).map_err(|e| StepError::io("remove", &old, e))?;
    }
    let lock = match m.sharing.unwrap_or(Sharing::Shared) {
        Sharing::Shared => {
            // Shared users never wait: a private or locked user holding it does not stop them.
            let _ = lock.try_lock_shared();
            Some(lock)
        }
        Sharing::Locked => {
            lock.lock()
                .map_err(|e| StepError::io("lock", &lock_path, e))?;
            Some(lock)
        }
        Sharing::Private => {
            if lock.try_lock().is_err() {
                let fresh = scratch.join("private-cache");
                fs::create_dir_all(scratch).map_err(|e| StepError::io("create", scratch, e))?;
                make_cache(m, seed.as_ref(), &fresh)?;
                return Ok((fresh, None));
            }
            Some(lock)
        }
    };
    if fs::symlink_metadata(&data).is_err() {
        // Unique per step: parallel stages of one build may create the same cache at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("tmp-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        make_cache(m, seed.as_ref(), &tmp)?;
        if fs::rename(&tmp, &data).is_err() {
            // Another build made it first: use theirs.
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    Ok((data, lock))
}

/// Creates a cache directory at `dest`: a copy of the seed's path, or empty with `mode`,
/// `uid` and `gid` (0755, root).
fn make_cache(
    m: &Mount,
    seed: Option<&(String, String, Vec<PathBuf>)>,
    dest: &Path,
) -> Result<(), StepError> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some((from, source, lowers)) = seed {
        let full = dest.with_extension("seed");
        let _ = fs::remove_dir_all(&full);
        crate::snapshotter::merged_copy(lowers, &full, "to seed the cache mount")?;
        let found = resolve_scoped(&full, source)
            .filter(|p| p.is_dir())
            .ok_or_else(|| MountError::SeedNotFound {
                source_path: source.clone(),
                from: from.clone(),
            })?;
        fs::rename(&found, dest).map_err(|e| StepError::io("create", dest, e))?;
        let _ = fs::remove_dir_all(&full);
        return Ok(());
    }
    fs::create_dir(dest).map_err(|e| StepError::io("create", dest, e))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
        .map_err(|e| StepError::io("set the mode of", dest, e))?;
    std::os::unix::fs::chown(dest, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
        .map_err(|e| StepError::io("set the owner of", dest, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_like_docker_build() {
        let s = parse_secret("id=tok,src=/run/tok").unwrap();
        assert_eq!(s.source, SecretSource::File("/run/tok".into()));
        let s = parse_secret("id=tok,env=TOKEN").unwrap();
        assert_eq!(s.source, SecretSource::Env("TOKEN".into()));
        let s = parse_secret("type=env,id=tok,src=TOKEN").unwrap();
        assert_eq!(s.source, SecretSource::Env("TOKEN".into()));
        assert!(matches!(
            parse_secret("src=/x").unwrap_err(),
            SecretError::MissingId
        ));
        assert_eq!(
            parse_secret("id=a").unwrap_err().to_string(),
            "missing `src=FILE` or `env=VAR`"
        );
        assert_eq!(
            parse_secret("id=a,type=ssh,src=x").unwrap_err().to_string(),
            "unsupported secret type `ssh` (file or env)"
        );
    }

    #[test]
    fn targets_are_absolute_and_clean() {
        let m = |t: &str| Mount {
            target: Some(t.into()),
            ..Mount::default()
        };
        assert_eq!(target_of(&m("cache"), "/app").unwrap(), "/app/cache");
        assert_eq!(target_of(&m("/a/../b/"), "/").unwrap(), "/b");
        assert_eq!(
            target_of(&Mount::default(), "/").unwrap_err().to_string(),
            "invalid mount target `/`"
        );
        assert_eq!(target_of(&Mount::default(), "/w").unwrap(), "/w");
    }

    #[test]
    fn cache_keys_differ_by_id_and_seed() {
        let a = cache_key("/c", None);
        assert_eq!(a, cache_key("/c", None));
        assert_ne!(a, cache_key("/d", None));
        assert_ne!(a, cache_key("/c", Some(("/", &[PathBuf::from("/s/1")]))));
    }

    #[test]
    fn scoped_resolution_never_leaves_the_root() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(t.path().join("etc/passwd"), "").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("p")).unwrap();
        std::os::unix::fs::symlink("../../../etc", t.path().join("up")).unwrap();
        assert_eq!(
            resolve_scoped(t.path(), "p").unwrap(),
            t.path().join("etc/passwd")
        );
        assert_eq!(
            resolve_scoped(t.path(), "up/passwd").unwrap(),
            t.path().join("etc/passwd")
        );
        assert!(resolve_scoped(t.path(), "nope").is_none());
        assert_eq!(resolve_scoped(t.path(), "/").unwrap(), t.path());
    }
}
