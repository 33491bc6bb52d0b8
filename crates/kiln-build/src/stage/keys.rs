//! A stage's layer steps through the step cache: each step's key parts (the canonical
//! instruction and its inputs) and the lookup, run or record around it.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use kiln_cache::{Canonical, Parent, StepIdentity};
use kiln_fileop::ContentHasher;
use kiln_frontend::DepKind;
use kiln_layer::Digest;

use super::State;
use super::sources::{context_root, from_source};
use crate::cache_step::{self, KeyParts, LazyLeaves, LeavesSource, Lookup};
use crate::copy_step::{CopyInput, CopySource, copy_merkle};
use crate::error::StepError;
use crate::executor::Shared;
use crate::explain::{Verdict, WhyRun};
use crate::layers::Layer;
use crate::progress::Event;
use crate::run_step::RunInput;

/// What a step made: its layer and, for a COPY/ADD, the Merkle root of the files as it
/// wrote them.
pub(super) struct Made {
    pub(super) layer: Option<Layer>,
    pub(super) files: Option<Digest>,
}

impl From<Option<Layer>> for Made {
    fn from(layer: Option<Layer>) -> Self {
        Self { layer, files: None }
    }
}

/// What [`crate::copy_step::copy_step`] returns: the layer and the files as written.
impl From<(Layer, Digest)> for Made {
    fn from((layer, files): (Layer, Digest)) -> Self {
        Self {
            layer: Some(layer),
            files: Some(files),
        }
    }
}

/// Run a layer step through the cache. `parts` is `None` for a step whose inputs are not all
/// hashed: it always runs, and the chain goes on with its output's digest, so the steps after
/// it hit only when it made the same layer again. The same goes for a COPY/ADD whose files
/// changed between hashing them for the key and writing them: its layer is not what its key
/// says, so it is not recorded under it.
///
/// Under [`crate::explain`] nothing runs: the verdict goes to `state.verdict`, and a step that
/// would run breaks (the stage stops there); a hit continues with its recorded layer.
pub(super) fn through_cache<R: Into<Made>>(
    sh: &Shared<'_>,
    state: &mut State,
    parts: Option<KeyParts>,
    id: usize,
    run: impl FnOnce(&mut State) -> Result<R, (StepError, Vec<String>)>,
) -> Result<ControlFlow<(), Option<Layer>>, (StepError, Vec<String>)> {
    let mut platform = sh.req.platform.to_string();
    if let Some(epoch) = sh.req.source_date_epoch {
        let _ = write!(platform, "\nSOURCE_DATE_EPOCH={epoch}");
    }
    let identity = StepIdentity {
        dockerfile: sh
            .cache
            .as_ref()
            .map(|c| c.dockerfile.clone())
            .unwrap_or_default(),
        stage: state.label.clone(),
        step: u32::try_from(state.step).unwrap_or(u32::MAX),
    };
    let would_run = |state: &mut State, why: WhyRun| {
        sh.req.reporter.event(Event::CacheMiss {
            id,
            reason: why.to_string(),
        });
        state.verdict = Some(Verdict::WouldRun(why));
        ControlFlow::Break(())
    };
    let Some(parts) = parts else {
        if sh.explaining() {
            return Ok(would_run(state, WhyRun::NotHashed));
        }
        let layer = run(state)?.into().layer;
        chain_on_output(state, &platform, identity, layer.as_ref());
        return Ok(ControlFlow::Continue(layer));
    };
    let mut keyed = cache_step::key(&state.chain, &platform, parts, identity);
    let Some(cache) = sh.cache.as_ref() else {
        if sh.explaining() {
            return Ok(would_run(state, WhyRun::NoCacheStore));
        }
        let layer = run(state)?.into().layer;
        state.chain = Parent::Step(keyed.key);
        return Ok(ControlFlow::Continue(layer));
    };
    let found = cache_step::lookup(
        cache,
        &state.label.to_ascii_lowercase(),
        &mut keyed,
        sh.sink.snapshots(),
    )
    .map_err(|e| (e, Vec::new()))?;
    let layer = match found {
        Lookup::Hit(layer) => {
            sh.req.reporter.event(Event::StepCached { id });
            if sh.explaining() {
                state.verdict = Some(Verdict::Cached);
            }
            layer.map(|l| *l)
        }
        Lookup::Miss(why) if sh.explaining() => return Ok(would_run(state, why)),
        Lookup::Miss(why) => {
            sh.req.reporter.event(Event::CacheMiss {
                id,
                reason: why.to_string(),
            });
            state.previous = cache_step::previous_snapshot(
                cache,
                &keyed.identity,
                &keyed.key,
                sh.sink.snapshots(),
            );
            let made = run(state)?.into();
            state.previous = None;
            let keyed_files = keyed.explanation.files.as_ref().map(|f| &f.root);
            if let (Some(written), Some(keyed_files)) = (&made.files, keyed_files)
                && written != keyed_files
            {
                sh.req.reporter.event(Event::Log {
                    id,
                    stream: 2,
                    line: b"kiln: files changed while this step copied them: its layer is used but not cached\n".to_vec(),
                });
                chain_on_output(state, &platform, keyed.identity, made.layer.as_ref());
                return Ok(ControlFlow::Continue(made.layer));
            }
            made.layer
        }
    };
    state.chain = Parent::Step(keyed.key.clone());
    // The caller adds the layer to the stage next: it will be at this index.
    let index = layer.as_ref().map(|_| state.layers.len());
    state.keys.push((keyed.key.clone(), index));
    sh.pending.push(keyed, layer.clone());
    Ok(ControlFlow::Continue(layer))
}

/// Continues the stage's chain with the digest of what a step made (for a step whose result
/// is not recorded under a key of its inputs).
fn chain_on_output(
    state: &mut State,
    platform: &str,
    identity: StepIdentity,
    layer: Option<&Layer>,
) {
    let output = layer.map_or_else(|| Digest::of(b""), |l| l.diff_id.clone());
    let parts = KeyParts {
        instruction: "output of a step that is not cached".into(),
        inputs: vec![("output".into(), output)],
        ..KeyParts::default()
    };
    state.chain = Parent::Step(cache_step::key(&state.chain, platform, parts, identity).key);
}

/// The key parts of a COPY/ADD: the canonical instruction and the Merkle hash of the files
/// it selects (context files hashed through the stat cache).
pub(super) fn copy_parts(
    sh: &Shared<'_>,
    kw: &str,
    input: &CopyInput<'_>,
    from: Option<&str>,
) -> Result<Option<KeyParts>, StepError> {
    if sh.cache.is_none() {
        return Ok(Some(KeyParts::default()));
    }
    let instruction = copy_instruction(kw, input, from);
    match &input.source {
        CopySource::Context { .. } => {
            let files = copy_merkle(&sh.sink, input, context_hasher(sh))?;
            Ok(Some(KeyParts {
                instruction,
                files: Some(files),
                ..KeyParts::default()
            }))
        }
        // The selection depends on the instruction and on the destination's stack too: the
        // store's memo names that stack by its snapshots, the portable one by its diff_ids.
        CopySource::Layers { lowers, .. } => {
            let selector = Canonical::extend(instruction.clone())
                .list(
                    "merkle-v1-target",
                    input.target.iter().filter_map(|p| p.to_str()),
                )
                .finish();
            let portable = sh
                .sink
                .snapshots()
                .stack_diff_ids(&input.target)
                .map(|target| {
                    let target: Vec<String> = target.iter().map(ToString::to_string).collect();
                    Canonical::extend(instruction.clone())
                        .list(
                            "merkle-v1-target-diff-ids",
                            target.iter().map(String::as_str),
                        )
                        .finish()
                });
            let selected = layers_merkle(sh, input, lowers, &selector, portable.as_deref())?;
            Ok(Some(KeyParts {
                instruction,
                files_memo: Some((selected.root, selected.leaves)),
                selections: selected.memo.into_iter().collect(),
                ..KeyParts::default()
            }))
        }
    }
}

/// What [`layers_merkle`] found.
struct Selected {
    /// The Merkle root.
    root: Digest,
    /// Its leaves, loaded on demand (none when the root came from a selection memo and the
    /// store has not hashed the files).
    leaves: LazyLeaves,
    /// The root's portable memo, to record with the step.
    memo: Option<kiln_cache::Selection>,
}

/// The Merkle root of what `input` selects from `lowers`, a stage's or image's snapshots,
/// and its leaves, loaded on demand. Snapshots never change, so the store keeps the hash
/// beside them under `selector` ([`kiln_oci::Snapshots::selection`]), and its root alone
/// under a selector of its own: an unchanged source is read once, not on every build, and a
/// build that hits the cache reads 64 bytes, however many files the source has.
///
/// `portable` is the selector again with every stack it names given by `diff_id`s: the root
/// is also kept in the step cache under a [`kiln_cache::selection_key`] of it and of the
/// stack's `diff_id`s, and exported with the step's record. A store without its own memo (a
/// runner that imported a remote cache) takes the root from there, and neither fetches nor
/// unpacks the source's layers to key the step.
fn layers_merkle(
    sh: &Shared<'_>,
    input: &CopyInput<'_>,
    lowers: &[std::path::PathBuf],
    selector: &str,
    portable: Option<&str>,
) -> Result<Selected, StepError> {
    let snapshots = sh.sink.snapshots();
    let key = portable.and_then(|p| {
        let stack = snapshots.stack_diff_ids(lowers)?;
        Some(kiln_cache::selection_key(&stack, p))
    });
    let memo = |root: &Digest| {
        key.clone().map(|key| kiln_cache::Selection {
            key,
            root: root.clone(),
        })
    };
    let full = || {
        snapshots.selection(lowers, selector, decode_merkle, || {
            copy_merkle(&sh.sink, input, &kiln_fileop::ReadingHasher).map(|m| {
                let bytes = encode_merkle(&m);
                (m, bytes)
            })
        })
    };
    // A stack the store keeps memos for: the leaves are read back from the full memo when
    // needed. Any other stack is hashed every time, leaves and all.
    let Some(path) = snapshots.selection_path(lowers, selector) else {
        let m = full()?;
        return Ok(Selected {
            memo: memo(&m.root),
            root: m.root.clone(),
            leaves: LazyLeaves::new(LeavesSource::Bytes(encode_merkle(&m)), decode_merkle),
        });
    };
    let root_selector = format!("{selector}\nroot-only");
    // The store's own memo of the root, else one another machine kept (no file of the source
    // is read: its leaves are then those of the store's memo, if any), else the files hashed.
    let kept = snapshots
        .selection_path(lowers, &root_selector)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| merkle_root(&b))
        .or_else(|| key.as_ref().and_then(|k| cached_selection(sh, k)));
    let root = match kept {
        Some(root) => root,
        None => snapshots.selection(lowers, &root_selector, merkle_root, || {
            let root = full()?.root;
            Ok::<_, StepError>((root.clone(), root.hex().as_bytes().to_vec()))
        })?,
    };
    Ok(Selected {
        memo: memo(&root),
        root,
        leaves: LazyLeaves::new(LeavesSource::File(path), decode_merkle),
    })
}

/// A root the step cache or an imported remote cache keeps under the selection memo `key`.
fn cached_selection(sh: &Shared<'_>, key: &Digest) -> Option<Digest> {
    let cache = sh.cache?;
    cache
        .cache
        .selection(key)
        .ok()
        .flatten()
        .or_else(|| cache.remote.and_then(|r| r.selection(key)))
}

/// The root of an [`encode_merkle`] encoding, without its leaves.
fn merkle_root(b: &[u8]) -> Option<Digest> {
    Digest::from_hex(std::str::from_utf8(b.get(..64)?).ok()?).ok()
}

/// How context files are hashed: through the stat cache when the build has one.
fn context_hasher<'s>(sh: &'s Shared<'_>) -> &'s (dyn ContentHasher + Sync) {
    match &sh.stat {
        Some(stat) => stat,
        None => &kiln_fileop::ReadingHasher,
    }
}

/// The key parts of an ADD whose sources are all URLs with `--checksum`: what it downloads
/// is known by that digest, so the key is made without downloading (as BuildKit's HTTP
/// source keys on the checksum). A URL's file name comes from its path, which the
/// instruction holds; only the mtime (`Last-Modified`) can differ, and mtimes are never
/// part of a key.
pub(super) fn checked_urls_parts(input: &CopyInput<'_>, checksum: &Digest) -> KeyParts {
    KeyParts {
        instruction: copy_instruction("ADD", input, None),
        inputs: vec![("checksum".into(), checksum.clone())],
        ..KeyParts::default()
    }
}

/// The canonical text of a COPY/ADD for its key.
fn copy_instruction(kw: &str, input: &CopyInput<'_>, from: Option<&str>) -> String {
    copy_text(
        kw,
        input.paths,
        input.flags,
        &input.workdir,
        input.parents,
        from,
    )
}

/// The canonical text of a COPY/ADD, expanded ([`kiln_cache::canon`]): the keyword, then
/// `sources` (list), `heredocs` (a list of name, body and `t`/`f` for expansion, three items
/// each), `dest`, `workdir`, `from`, `chown`, `chmod`, `parents`, `link`, `exclude` (list).
pub(crate) fn copy_text(
    kw: &str,
    paths: &kiln_frontend::instruction::SourcesAndDest,
    flags: &kiln_frontend::instruction::CopyFlags,
    workdir: &str,
    parents: bool,
    from: Option<&str>,
) -> String {
    let heredocs = paths.heredocs.iter().flat_map(|h| {
        [
            h.path.as_str(),
            h.data.as_str(),
            if h.expand { "t" } else { "f" },
        ]
    });
    Canonical::new(kw)
        .list("sources", paths.sources.iter().map(|w| w.text.as_str()))
        .list("heredocs", heredocs)
        .str("dest", &paths.dest.text)
        .str("workdir", workdir)
        .opt("from", from)
        .opt("chown", flags.chown.as_ref().map(|w| w.text.as_str()))
        .opt("chmod", flags.chmod.as_ref().map(|w| w.text.as_str()))
        .bool("parents", parents)
        .bool("link", flags.link)
        .list("exclude", flags.exclude.iter().map(|w| w.text.as_str()))
        .finish()
}

/// ADD's own fields after [`copy_text`]'s: `checksum` and `unpack` (`true`, `false`, absent).
pub(crate) fn add_text(text: String, add: &kiln_frontend::instruction::Add) -> String {
    let mut c = kiln_cache::Canonical::extend(text);
    c = c
        .opt("checksum", add.checksum.as_ref().map(|w| w.text.as_str()))
        .opt(
            "unpack",
            add.unpack.map(|u| if u { "true" } else { "false" }),
        );
    c.finish()
}

/// What a RUN's canonical text is made of.
pub(crate) struct RunText<'a> {
    /// The full argv (shell included).
    pub argv: &'a [String],
    /// Heredoc files: name and content.
    pub files: Vec<(&'a str, &'a str)>,
    /// USER.
    pub user: &'a str,
    /// The working directory.
    pub cwd: &'a str,
    /// `--network`.
    pub network: kiln_frontend::instruction::NetworkMode,
    /// The build's `--network`.
    pub default_network: kiln_sandbox::Network,
    /// `--security`.
    pub security: kiln_frontend::instruction::SecurityMode,
    /// The `--mount`s, expanded.
    pub mounts: &'a [kiln_frontend::instruction::Mount],
}

/// The canonical text of a RUN ([`kiln_cache::canon`]): `argv` (list), `files` (name and
/// content, two items each), `user`, `cwd`, `network` (`default`, `none`, `host`),
/// `default-network` (`host`, `none`), `security` (`sandbox`, `insecure`), `mounts` (a
/// number), then for each mount, in order, `type`, `from`, `source`, `target`, `readonly`,
/// `id`, `sharing` (`shared`, `private`, `locked`, absent), `required`, `size`, `mode`, `uid`,
/// `gid`, `env`.
pub(crate) fn run_text(r: &RunText<'_>) -> String {
    use kiln_frontend::instruction::{NetworkMode, SecurityMode, Sharing};
    let mut c = Canonical::new("RUN")
        .list("argv", r.argv.iter().map(String::as_str))
        .list("files", r.files.iter().flat_map(|(n, c)| [*n, *c]))
        .str("user", r.user)
        .str("cwd", r.cwd)
        .str(
            "network",
            match r.network {
                NetworkMode::Default => "default",
                NetworkMode::None => "none",
                NetworkMode::Host => "host",
            },
        )
        .str(
            "default-network",
            match r.default_network {
                kiln_sandbox::Network::Host => "host",
                kiln_sandbox::Network::None => "none",
            },
        )
        .str(
            "security",
            match r.security {
                SecurityMode::Sandbox => "sandbox",
                SecurityMode::Insecure => "insecure",
            },
        )
        .num("mounts", Some(r.mounts.len() as u64));
    for m in r.mounts {
        c = c
            .str("type", m.typ.as_str())
            .opt("from", m.from.as_deref())
            .opt("source", m.source.as_deref())
            .opt("target", m.target.as_deref())
            .bool("readonly", m.read_only)
            .opt("id", m.id.as_deref())
            .opt(
                "sharing",
                m.sharing.map(|s| match s {
                    Sharing::Shared => "shared",
                    Sharing::Private => "private",
                    Sharing::Locked => "locked",
                }),
            )
            .bool("required", m.required)
            .num("size", m.size)
            .num("mode", m.mode.map(u64::from))
            .num("uid", m.uid.map(u64::from))
            .num("gid", m.gid.map(u64::from))
            .opt("env", m.env.as_deref());
    }
    c.finish()
}

/// The key parts of a RUN: what the process gets, and what its mounts read (the stages and
/// images by their keys and digests, the context by the files mounted); `None` (not cached)
/// when a context mount's files cannot be selected.
pub(super) fn run_parts(
    sh: &Shared<'_>,
    state: &State,
    run: &kiln_frontend::instruction::Run,
    input: &RunInput<'_>,
) -> Result<Option<KeyParts>, StepError> {
    use kiln_frontend::instruction::MountType;
    let mut inputs = Vec::new();
    let mut selections = Vec::new();
    for m in &run.mounts {
        match (&m.typ, &m.from) {
            (MountType::Bind, None) => match context_files(sh, m.source.as_deref()) {
                Some(root) => inputs.push((
                    format!("mount {}", m.target.as_deref().unwrap_or_default()),
                    root,
                )),
                None => return Ok(None),
            },
            (_, Some(from)) => match mount_files(sh, from, m.source.as_deref())? {
                Some(selected) => {
                    inputs.push((
                        format!("mount {}", m.target.as_deref().unwrap_or_default()),
                        selected.root,
                    ));
                    selections.extend(selected.memo);
                }
                None => return Ok(None),
            },
            _ => {}
        }
    }
    let instruction = run_text(&RunText {
        argv: &input.argv,
        files: run
            .command
            .files
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str()))
            .collect(),
        user: &input.user,
        cwd: &input.cwd,
        network: run.network,
        default_network: input.default_network,
        security: run.security,
        mounts: &run.mounts,
    });
    Ok(Some(KeyParts {
        instruction,
        args: state
            .scope
            .args()
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        env: state.scope.env().to_vec(),
        inputs,
        selections,
        ..KeyParts::default()
    }))
}

/// The Merkle root of what a `from=` mount shows (a bind's source, a cache's seed): `source`
/// (the root when empty) in the stage's or image's files, as BuildKit keys a mount input on
/// the content of its selector, so that a change elsewhere in that stage leaves the step
/// cached. `None` without a cache (nothing is looked up) or when the source is missing (the
/// step then runs, and its mount says what is wrong).
fn mount_files(
    sh: &Shared<'_>,
    from: &str,
    source: Option<&str>,
) -> Result<Option<Selected>, StepError> {
    use kiln_frontend::instruction::{CopyFlags, SourcesAndDest};
    use kiln_syntax::Word;
    if sh.cache.is_none() {
        return Ok(None);
    }
    let CopySource::Layers {
        lowers,
        description,
    } = from_source(sh, from, DepKind::MountFrom)?
    else {
        return Ok(None);
    };
    let source = kiln_context::clean_path(&format!("/{}", source.unwrap_or_default()));
    if source.contains(['*', '?', '[', '\\']) {
        return Ok(None);
    }
    let at = kiln_syntax::TextRange::default();
    let paths = SourcesAndDest {
        sources: vec![Word::new(source, at)],
        heredocs: Vec::new(),
        dest: Word::new("/", at),
    };
    let flags = CopyFlags {
        link: true,
        ..CopyFlags::default()
    };
    let selector = format!("mount-merkle-v1 {}", paths.sources[0].text);
    let input = CopyInput {
        paths: &paths,
        flags: &flags,
        parents: false,
        kind: kiln_fileop::OpKind::Copy,
        workdir: "/".into(),
        source: CopySource::Layers {
            lowers: lowers.clone(),
            description,
        },
        target: Vec::new(),
        snapshotter: sh.snapshotter,
        fetcher: sh.fetcher,
        source_date_epoch: None,
    };
    // The selector names no stack but the source's: it is portable as it is.
    Ok(layers_merkle(sh, &input, &lowers, &selector, Some(&selector)).ok())
}

/// A Merkle hash as kept in a snapshot's `selections/` ([`kiln_oci::Snapshots::selection`]):
/// the root's 64 hex digits, then for each leaf its digest's 64 hex digits, its path's length
/// (u32, little endian) and the path.
fn encode_merkle(m: &kiln_fileop::MerkleHash) -> Vec<u8> {
    let mut out = m.root.hex().as_bytes().to_vec();
    for (path, digest) in &m.leaves {
        out.extend_from_slice(digest.hex().as_bytes());
        out.extend_from_slice(&u32::try_from(path.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
    }
    out
}

/// The inverse of [`encode_merkle`]; `None` for bytes it did not write.
fn decode_merkle(mut b: &[u8]) -> Option<kiln_fileop::MerkleHash> {
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        b = rest;
        Some(head)
    };
    let hex = |bytes: &[u8]| Digest::from_hex(std::str::from_utf8(bytes).ok()?).ok();
    let root = hex(take(64)?)?;
    let mut leaves = Vec::new();
    while let Some(d) = take(64) {
        let digest = hex(d)?;
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path = String::from_utf8(take(len)?.to_vec()).ok()?;
        leaves.push((path, digest));
    }
    Some(kiln_fileop::MerkleHash { root, leaves })
}

/// The Merkle root of what a context bind mount shows: `source` (the whole context when
/// empty) as `COPY source /` would select it, after `.dockerignore`, hashed through the stat
/// cache, so the step reruns exactly when those files change (BuildKit keys such mounts on
/// their content too). `None` when the selection fails (a missing source) or the source has
/// glob characters: the step then runs uncached (and a missing source's mount says what is
/// wrong). Owners are not part of it: the context's files count as `0:0`, as BuildKit's
/// context transfer makes them.
fn context_files(sh: &Shared<'_>, source: Option<&str>) -> Option<Digest> {
    use kiln_fileop::{CopyOp, EmptyView, Inputs, Source};
    // Without a cache nothing is looked up: no need to read the files.
    sh.cache.as_ref()?;
    let source = source.filter(|s| !s.is_empty()).unwrap_or(".");
    // A mount takes its source literally; COPY would glob it (and select nothing when the
    // pattern matches nothing, keying the step on no files at all).
    if source.contains(['*', '?', '[', '\\']) {
        return None;
    }
    let root = context_root(sh).ok()?;
    let op = CopyOp {
        sources: vec![Source::Path(source.to_owned())],
        dest: "/".into(),
        workdir: "/".into(),
        link: true,
        ..CopyOp::default()
    };
    let inputs = Inputs {
        source: Some(root),
        target: &EmptyView,
        fetcher: None,
        scratch_dir: None,
    };
    let plan = kiln_fileop::plan(&op, inputs).ok()?;
    Some(plan.merkle(context_hasher(sh)).ok()?.root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_frontend::instruction::{
        Add, CopyFlags, HeredocSource, Mount, MountType, NetworkMode, SecurityMode, Sharing,
        SourcesAndDest,
    };
    use kiln_syntax::{TextRange, Word};

    fn word(s: &str) -> Word {
        Word::new(s, TextRange::default())
    }

    /// The key of `text` on scratch for linux/amd64, as stored.
    fn key(text: &str) -> String {
        kiln_cache::KeyBuilder::new(Parent::Scratch, text, "linux/amd64")
            .finish()
            .0
            .to_string()
    }

    /// Golden keys: the key bytes of a set of instructions are pinned. A change to how any
    /// instruction is encoded fails here; bump `kiln_cache::KEY_VERSION` with the new values,
    /// so that no store reuses a result under a key that now means something else.
    #[test]
    fn golden_keys() {
        let paths = SourcesAndDest {
            sources: vec![word("src/"), word("*.txt")],
            heredocs: vec![HeredocSource {
                path: "EOF".into(),
                data: "body\n".into(),
                expand: true,
            }],
            dest: word("/app/"),
        };
        let flags = CopyFlags {
            chown: Some(word("1:2")),
            chmod: Some(word("0644")),
            link: true,
            exclude: vec![word("*.o")],
        };
        let copy = copy_text("COPY", &paths, &flags, "/w", true, Some("build"));
        let add = add_text(
            copy_text("ADD", &paths, &CopyFlags::default(), "/", false, None),
            &Add {
                checksum: Some(word(&format!("sha256:{}", "0".repeat(64)))),
                keep_git_dir: false,
                unpack: Some(true),
                flags: CopyFlags::default(),
                paths: paths.clone(),
            },
        );
        let argv = ["/bin/sh".to_owned(), "-c".to_owned(), "make".to_owned()];
        let mounts = [
            Mount {
                typ: MountType::Cache,
                target: Some("/root/.cache".into()),
                id: Some("go".into()),
                sharing: Some(Sharing::Locked),
                mode: Some(0o755),
                ..Mount::default()
            },
            Mount {
                typ: MountType::Bind,
                from: Some("build".into()),
                source: Some("/out".into()),
                target: Some("/in".into()),
                read_only: true,
                ..Mount::default()
            },
        ];
        let run = run_text(&RunText {
            argv: &argv,
            files: vec![("EOF", "echo hi\n")],
            user: "app",
            cwd: "/src",
            network: NetworkMode::None,
            default_network: kiln_sandbox::Network::Host,
            security: SecurityMode::Sandbox,
            mounts: &mounts,
        });
        assert_eq!(
            copy,
            "s4:COPY\nsources=l2s4:src/s5:*.txt\nheredocs=l3s3:EOFs5:body\ns1:t\ndest=s5:/app/\n\
             workdir=s2:/w\nfrom=s5:build\nchown=s3:1:2\nchmod=s4:0644\nparents=t\nlink=t\n\
             exclude=l1s3:*.o\n"
        );
        let got = [key(&copy), key(&add), key(&run)];
        assert_eq!(
            got,
            [
                "sha256:36f6c746c7730e3820e3e01016830a078ea226d618d4282f23a053581fef5306",
                "sha256:0bb6893f1b458eab65b0bda7640b574d5fd283400b2483b53382f967bf2821eb",
                "sha256:241e1c1c166eddbf597494c2cbe368d6588f38ea9978fa38bef23c1ef9f61102",
            ],
            "key encoding changed: bump KEY_VERSION (now {})",
            kiln_cache::KEY_VERSION
        );
    }

    #[test]
    fn kept_merkle_hashes_read_back_whole() {
        let m = kiln_fileop::MerkleHash {
            root: Digest::of(b"root"),
            leaves: vec![
                ("a/b".into(), Digest::of(b"1")),
                ("with\nnewline and é".into(), Digest::of(b"2")),
                (String::new(), Digest::of(b"3")),
            ],
        };
        assert_eq!(decode_merkle(&encode_merkle(&m)), Some(m.clone()));
        let bytes = encode_merkle(&m);
        assert_eq!(decode_merkle(&bytes[..bytes.len() - 1]), None, "cut short");
        assert_eq!(decode_merkle(b"not a memo"), None);
    }
}
