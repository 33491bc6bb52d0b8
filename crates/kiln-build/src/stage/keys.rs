//! A stage's layer steps through the step cache: each step's key parts (the canonical
//! instruction and its inputs) and the lookup, run or record around it.

use std::fmt::Write as _;

use kiln_cache::{Parent, StepIdentity};
use kiln_fileop::ContentHasher;
use kiln_frontend::DepKind;
use kiln_layer::Digest;

use super::State;
use super::sources::{context_root, image_layers, stage_ref};
use crate::cache_step::{self, KeyParts, Lookup};
use crate::copy_step::{CopyInput, CopySource, copy_merkle};
use crate::error::StepError;
use crate::executor::Shared;
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
pub(super) fn through_cache<R: Into<Made>>(
    sh: &Shared<'_>,
    state: &mut State,
    parts: Option<KeyParts>,
    id: usize,
    run: impl FnOnce(&mut State) -> Result<R, (StepError, Vec<String>)>,
) -> Result<Option<Layer>, (StepError, Vec<String>)> {
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
    let Some(parts) = parts else {
        if sh.req.explain {
            sh.req.reporter.event(Event::CacheMiss {
                id,
                reason: "not cached: its inputs are not hashed (a URL without --checksum, a context bind mount whose source is missing or has glob characters)".into(),
            });
            return Err((StepError::WouldRun, Vec::new()));
        }
        let layer = run(state)?.into().layer;
        chain_on_output(state, &platform, identity, layer.as_ref());
        return Ok(layer);
    };
    let keyed = cache_step::key(&state.chain, &platform, parts, identity);
    let Some(cache) = sh.cache.as_ref() else {
        let layer = run(state)?.into().layer;
        state.chain = Parent::Step(keyed.key);
        return Ok(layer);
    };
    let found = cache_step::lookup(
        cache,
        &state.label.to_ascii_lowercase(),
        &keyed,
        sh.sink.snapshots(),
    )
    .map_err(|e| (e, Vec::new()))?;
    let layer = match found {
        Lookup::Hit(layer) => {
            sh.req.reporter.event(Event::StepCached { id });
            layer.map(|l| *l)
        }
        Lookup::Miss(reason) => {
            sh.req.reporter.event(Event::CacheMiss { id, reason });
            if sh.req.explain {
                return Err((StepError::WouldRun, Vec::new()));
            }
            let made = run(state)?.into();
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
                return Ok(made.layer);
            }
            made.layer
        }
    };
    state.chain = Parent::Step(keyed.key.clone());
    sh.pending.push(keyed, layer.clone());
    Ok(layer)
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
    let files = match &input.source {
        CopySource::Context { .. } => copy_merkle(&sh.sink, input, context_hasher(sh))?,
        // A stage's or image's snapshots never change: the store keeps the selection's hash
        // beside them, so an unchanged source is read once, not on every build. The selector
        // is the whole instruction and the destination's stack, which the selection depends
        // on too.
        CopySource::Layers { lowers, .. } => sh.sink.snapshots().selection(
            lowers,
            &format!(
                "copy-merkle-v1\n{}\ntarget={:?}",
                copy_instruction(kw, input, from),
                input.target
            ),
            decode_merkle,
            || {
                copy_merkle(&sh.sink, input, &kiln_fileop::ReadingHasher)
                    .map(|m| (m.clone(), encode_merkle(&m)))
            },
        )?,
    };
    Ok(Some(KeyParts {
        instruction: copy_instruction(kw, input, from),
        files: Some(files),
        ..KeyParts::default()
    }))
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
    let f = input.flags;
    let heredocs: Vec<_> = input
        .paths
        .heredocs
        .iter()
        .map(|h| (&h.path, &h.data, h.expand))
        .collect();
    format!(
        "{kw}\nsources={:?}\nheredocs={heredocs:?}\ndest={}\nworkdir={}\nfrom={from:?}\nchown={:?}\nchmod={:?}\nparents={}\nlink={}\nexclude={:?}",
        input
            .paths
            .sources
            .iter()
            .map(|w| &w.text)
            .collect::<Vec<_>>(),
        input.paths.dest.text,
        input.workdir,
        f.chown.as_ref().map(|w| &w.text),
        f.chmod.as_ref().map(|w| &w.text),
        input.parents,
        f.link,
        f.exclude.iter().map(|w| &w.text).collect::<Vec<_>>(),
    )
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
                Some(root) => inputs.push((
                    format!("mount {}", m.target.as_deref().unwrap_or_default()),
                    root,
                )),
                None => return Ok(None),
            },
            _ => {}
        }
    }
    let files: Vec<(&String, &String)> = run
        .command
        .files
        .iter()
        .map(|h| (&h.name, &h.content))
        .collect();
    let instruction = format!(
        "RUN\nargv={:?}\nfiles={files:?}\nuser={}\ncwd={}\nnetwork={:?}/{:?}\nsecurity={:?}\nmounts={:?}",
        input.argv,
        input.user,
        input.cwd,
        run.network,
        input.default_network,
        run.security,
        run.mounts,
    );
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
) -> Result<Option<Digest>, StepError> {
    use kiln_frontend::instruction::{CopyFlags, SourcesAndDest};
    use kiln_syntax::Word;
    if sh.cache.is_none() {
        return Ok(None);
    }
    let (lowers, description) = match stage_ref(sh.req.plan, from, DepKind::MountFrom) {
        Some(i) => (sh.wait(i)?.lowers(), format!("stage `{from}`")),
        None => (
            kiln_layer::overlay::unique_stack(image_layers(sh, from)?.1),
            format!("image `{from}`"),
        ),
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
    let input = CopyInput {
        paths: &paths,
        flags: &flags,
        parents: false,
        kind: kiln_fileop::OpKind::Copy,
        workdir: "/".into(),
        source: CopySource::Layers {
            lowers,
            description,
        },
        target: Vec::new(),
        overlay: sh.overlay,
        fetcher: &sh.fetcher,
        source_date_epoch: None,
    };
    // Snapshots never change: the store keeps the answer beside them, so a rebuild does not
    // read the mounted files again.
    let lowers = match &input.source {
        CopySource::Layers { lowers, .. } => lowers.clone(),
        CopySource::Context { .. } => Vec::new(),
    };
    Ok(sh
        .sink
        .snapshots()
        .selection(
            &lowers,
            &format!("mount-merkle-v1 {}", paths.sources[0].text),
            decode_merkle,
            || {
                copy_merkle(&sh.sink, &input, &kiln_fileop::ReadingHasher).map(|m| {
                    let bytes = encode_merkle(&m);
                    (m, bytes)
                })
            },
        )
        .map(|m| m.root)
        .ok())
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
