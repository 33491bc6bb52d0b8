//! One stage, from its FROM to its last instruction: the base's config and layers, the
//! base's ONBUILD triggers, then each instruction expanded in the stage's scope and turned
//! into a config change (with a history entry) or a new layer.

use std::fmt::Write as _;
use std::ops::ControlFlow::Continue;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kiln_fileop::{ChownSpec, DirView, OpKind};
use kiln_frontend::{
    ArgContext, Base, Command, CommandKind, DepKind, Platform, Scope, expand_command, is_proxy_arg,
};
use kiln_layer::{Digest, Entry, EntryKind, LayerWriter};
use kiln_oci::ImageConfig;

use kiln_cache::Parent;

use crate::cache_step::KeyParts;
use crate::copy_step::{CopyInput, CopySource, copy_step};
use crate::error::{BuildError, StepError};
use crate::executor::{Shared, StageResult};
use crate::explain::{ExplainedStep, Verdict, WhyRun};
use crate::image_config::{
    MetaState, apply_metadata, empty_image, ensure_path, history_entry, normalize_workdir,
    run_created_by, with_shell,
};
use crate::layers::Layer;
use crate::progress::Event;
use crate::run_mount;
use crate::run_step::{RunInput, run_args, run_step};

mod keys;
mod sources;

use keys::{checked_urls_parts, copy_parts, run_parts, through_cache};
use sources::{context_root, from_source, image_layers, wait_for_sources};

/// The stage being built.
struct State {
    config: ImageConfig,
    layers: Vec<Layer>,
    scope: Scope,
    meta: MetaState,
    created: Option<String>,
    /// What the next layer step's key builds on.
    chain: Parent,
    /// The keys of the steps that made `layers`, with their layers' indexes.
    keys: Vec<(kiln_cache::CacheKey, Option<usize>)>,
    /// The stage's label, and the position of the current instruction (for explanations).
    label: String,
    step: usize,
    /// Under [`crate::explain`], what the cache said about the current step (`None` for a
    /// step that makes no layer).
    verdict: Option<Verdict>,
    /// For a step that missed, the snapshot of the layer the same step made last time (this
    /// Dockerfile, stage and position), when the store still has it: a COPY of the context
    /// links the files that did not change from it.
    previous: Option<std::path::PathBuf>,
}

impl State {
    fn lowers(&self) -> Vec<std::path::PathBuf> {
        crate::layers::stack(&self.layers)
    }

    fn history(&mut self, created_by: String, layer: Option<Layer>) {
        let empty = layer.is_none();
        if let Some(l) = layer {
            self.config.rootfs.diff_ids.push(l.diff_id.to_string());
            self.layers.push(l);
        }
        self.config
            .history
            .push(history_entry(created_by, empty, self.created.as_deref()));
    }

    fn container(&self) -> kiln_oci::ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }
}

/// Build stage `index`. `Ok(None)` only under [`crate::explain`]: the stage stopped at its
/// first step that would run (or that reads a stage that would be rebuilt), after noting the
/// steps from there on as would-run.
pub(crate) fn run_stage(sh: &Shared<'_>, index: usize) -> Result<Option<StageResult>, BuildError> {
    let plan = sh.req.plan;
    let stage = &plan.stages[index];
    let label = stage.label();
    let fail = |cmd: &Command, error: StepError, tail: Vec<String>| BuildError {
        stage: label.clone(),
        instruction: cmd.original.lines().next().unwrap_or_default().to_owned(),
        span: cmd.span,
        error: Box::new(error),
        output_tail: tail,
    };
    let would_run = |rest: &[Command], first: usize, total: usize, why: &WhyRun| {
        would_run_rest(sh, index, rest, first, total, why);
    };
    let from = &stage.from_command;
    let total = stage.commands.len() + 1;
    let id = sh.next_step.fetch_add(1, Ordering::SeqCst);
    sh.req.reporter.event(Event::StepStarted {
        id,
        stage: label.clone(),
        index: 1,
        total,
        name: format!("FROM {}", stage.base_name),
    });
    let from_started = Instant::now();
    let mut current = match base(sh, index) {
        Ok(started) => started,
        Err(StepError::DependencyFailed(other)) if sh.explaining() => {
            // The base stage would be rebuilt: this FROM is fine, its steps would run.
            sh.req.reporter.event(Event::StepDone {
                id,
                elapsed: from_started.elapsed(),
            });
            would_run(&stage.commands, 2, total, &WhyRun::StageRebuilt(other));
            return Ok(None);
        }
        Err(e) => {
            sh.req.reporter.event(Event::StepFailed {
                id,
                message: crate::error::one_line(&e),
            });
            return Err(fail(from, e, Vec::new()));
        }
    };
    sh.req.reporter.event(Event::StepDone {
        id,
        elapsed: from_started.elapsed(),
    });

    let base_layers = current.layers.len();
    // The base's ONBUILD triggers run first, then leave the config.
    let triggers = current
        .config
        .config
        .as_mut()
        .and_then(|c| c.on_build.take())
        .unwrap_or_default();
    let mut commands: Vec<Command> = Vec::new();
    for t in &triggers {
        let fired = kiln_frontend::parse_trigger(t)
            .map_err(|e| fail(from, StepError::Trigger(Box::new(e)), Vec::new()))?;
        for mut cmd in fired {
            cmd.span = from.span;
            commands.push(cmd);
        }
    }
    commands.extend(stage.commands.iter().cloned());
    let total = commands.len() + 1;
    for (k, cmd) in commands.iter().enumerate() {
        if sh.failed.load(Ordering::SeqCst) {
            return Err(fail(cmd, StepError::Cancelled, Vec::new()));
        }
        // A step is shown once it can run: after the stages it reads from are done.
        match wait_for_sources(sh, cmd) {
            Ok(()) => {}
            Err(StepError::DependencyFailed(other)) if sh.explaining() => {
                would_run(&commands[k..], k + 2, total, &WhyRun::StageRebuilt(other));
                return Ok(None);
            }
            Err(e) => return Err(fail(cmd, e, Vec::new())),
        }
        let id = sh.next_step.fetch_add(1, Ordering::SeqCst);
        sh.req.reporter.event(Event::StepStarted {
            id,
            stage: label.clone(),
            index: k + 2,
            total,
            name: display(cmd),
        });
        let started = Instant::now();
        current.step = k;
        current.verdict = None;
        if let Err((e, tail)) = step(sh, &mut current, cmd, id) {
            sh.req.reporter.event(Event::StepFailed {
                id,
                message: crate::error::one_line(&e),
            });
            return Err(fail(cmd, e, tail));
        }
        match current.verdict.take() {
            Some(Verdict::WouldRun(why)) => {
                sh.note(explained(
                    index,
                    &label,
                    cmd,
                    k + 2,
                    total,
                    Verdict::WouldRun(why),
                ));
                would_run(&commands[k + 1..], k + 3, total, &WhyRun::EarlierStep);
                return Ok(None);
            }
            Some(Verdict::Cached) => {
                sh.note(explained(index, &label, cmd, k + 2, total, Verdict::Cached));
            }
            None => {}
        }
        sh.req.reporter.event(Event::StepDone {
            id,
            elapsed: started.elapsed(),
        });
    }
    let size = current.layers.iter().map(|l| l.descriptor.size).sum();
    sh.req
        .reporter
        .event(Event::StageDone { stage: label, size });
    Ok(Some(StageResult {
        config: current.config,
        layers: current.layers,
        scope: current.scope,
        base_layers,
        chain: current.chain,
        keys: current.keys,
    }))
}

/// A step of stage `stage` (labelled `label`) at position `index` of `total`, for
/// [`crate::explain`].
fn explained(
    stage: usize,
    label: &str,
    cmd: &Command,
    index: usize,
    total: usize,
    verdict: Verdict,
) -> ExplainedStep {
    ExplainedStep {
        stage: label.to_owned(),
        stage_index: stage,
        index,
        total,
        instruction: display(cmd),
        span: cmd.span,
        verdict,
    }
}

/// Under [`crate::explain`]: report and note the layer steps of `rest` (numbered from
/// `first`) of stage `stage` as steps that would run, for reason `why`.
fn would_run_rest(
    sh: &Shared<'_>,
    stage: usize,
    rest: &[Command],
    first: usize,
    total: usize,
    why: &WhyRun,
) {
    let label = sh.req.plan.stages[stage].label();
    for (i, cmd) in rest.iter().enumerate() {
        if !matches!(
            cmd.kind,
            CommandKind::Run(_)
                | CommandKind::Copy(_)
                | CommandKind::Add(_)
                | CommandKind::Workdir(_)
        ) {
            continue;
        }
        let id = sh.next_step.fetch_add(1, Ordering::SeqCst);
        sh.req.reporter.event(Event::StepStarted {
            id,
            stage: label.clone(),
            index: first + i,
            total,
            name: display(cmd),
        });
        sh.req.reporter.event(Event::CacheMiss {
            id,
            reason: why.to_string(),
        });
        let verdict = Verdict::WouldRun(why.clone());
        sh.note(explained(stage, &label, cmd, first + i, total, verdict));
    }
}

/// The instruction as shown in progress: its first line.
fn display(cmd: &Command) -> String {
    let line = cmd.original.lines().next().unwrap_or_default().trim();
    let (kw, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    format!("{} {}", kw.to_ascii_uppercase(), rest.trim_start())
        .trim_end()
        .to_owned()
}

/// The proxy variables a RUN gets from the build args, as BuildKit's `proxyEnvFromBuildArgs`
/// and its exec op make them: each of `http_proxy`, `https_proxy`, `ftp_proxy`, `no_proxy` and
/// `all_proxy` given in any case (the last in sorted order wins, so `http_proxy` over
/// `HTTP_PROXY`) reaches the step under both its upper- and lowercase names.
fn proxy_env(build_args: &[(String, String)]) -> Vec<(String, String)> {
    let mut sorted: Vec<&(String, String)> =
        build_args.iter().filter(|(k, _)| is_proxy_arg(k)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut chosen: std::collections::BTreeMap<String, &str> = std::collections::BTreeMap::new();
    for (k, v) in sorted {
        chosen.insert(k.to_ascii_lowercase(), v);
    }
    let mut out = Vec::new();
    for name in [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ] {
        if let Some(v) = chosen.get(name).filter(|v| !v.is_empty()) {
            out.push((name.to_ascii_uppercase(), (*v).to_owned()));
            out.push((name.to_owned(), (*v).to_owned()));
        }
    }
    out
}

/// The state at the start of the stage.
fn base(sh: &Shared<'_>, index: usize) -> Result<State, StepError> {
    let req = sh.req;
    let stage = &req.plan.stages[index];
    let created = req.source_date_epoch.map(kiln_oci::import::rfc3339);
    let platform = match &stage.platform {
        Some(p) => Platform::parse(p).map_err(|reason| StepError::Platform {
            value: p.clone(),
            reason,
        })?,
        None => req.platform.clone(),
    };
    let escape = req.plan.escape;
    let env_of = |cfg: &ImageConfig| -> Vec<(String, String)> {
        cfg.config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                e.split_once('=')
                    .map_or((e.clone(), String::new()), |(k, v)| {
                        (k.to_owned(), v.to_owned())
                    })
            })
            .collect()
    };
    let mut keys = Vec::new();
    let (mut config, layers, scope, chain) = match &stage.base {
        Base::Scratch => {
            let cfg = empty_image(&platform);
            let scope = Scope::new(escape, env_of(&cfg));
            (cfg, Vec::new(), scope, Parent::Scratch)
        }
        Base::Stage(s) => {
            let parent = sh.wait(*s)?;
            keys.clone_from(&parent.keys);
            (
                parent.config.clone(),
                parent.layers.clone(),
                parent.scope.clone(),
                parent.chain.clone(),
            )
        }
        Base::Image(name) => {
            let (image, lowers) = image_layers(sh, name)?;
            let chain = Parent::BaseImage(image.manifest_descriptor.digest.clone());
            let mut layers = Vec::new();
            for ((d, diff_id), snapshot) in image
                .manifest
                .layers
                .iter()
                .zip(&image.config.rootfs.diff_ids)
                .zip(lowers.iter().rev())
            {
                let diff_id = Digest::from_hex(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
                    .map_err(|source| StepError::BadDiffId {
                        image: name.clone(),
                        diff_id: diff_id.clone(),
                        source,
                    })?;
                layers.push(Layer {
                    descriptor: d.clone(),
                    diff_id,
                    snapshot: snapshot.clone(),
                });
            }
            let mut cfg = image.config.clone();
            cfg.created = None;
            let scope = Scope::new(escape, env_of(&cfg));
            (cfg, layers, scope, chain)
        }
    };
    ensure_path(&mut config);
    config.created.clone_from(&created);
    let mut scope = scope;
    if matches!(stage.base, Base::Image(_)) {
        // PATH may just have been added to the config; the scope sees what RUN will see.
        scope = Scope::new(escape, env_of(&config));
    }
    Ok(State {
        config,
        layers,
        scope,
        meta: MetaState::default(),
        created,
        chain,
        keys,
        label: stage.label(),
        step: 0,
        verdict: None,
        previous: None,
    })
}

/// `Ok` when the step is done, or under [`crate::explain`] when it would run (the verdict is
/// in `state.verdict`, and the step stops before changing the state further).
type StepResult = Result<(), (StepError, Vec<String>)>;

fn step(sh: &Shared<'_>, state: &mut State, cmd: &Command, id: usize) -> StepResult {
    let no_tail = |e: StepError| (e, Vec::new());
    let req = sh.req;
    let global = &req.plan.global_args;
    let ctx = ArgContext {
        build_args: req.build_args,
        global_args: global,
    };
    let expanded = expand_command(&mut state.scope, cmd, ctx).map_err(|e| no_tail(e.into()))?;
    let kind = &expanded.command.kind;
    let epoch = req.source_date_epoch;
    match kind {
        CommandKind::Copy(c) => {
            let source = match &c.from {
                None => CopySource::Context {
                    root: context_root(sh).map_err(no_tail)?,
                },
                Some(from) => from_source(sh, &from.text, DepKind::CopyFrom).map_err(no_tail)?,
            };
            let input = CopyInput {
                paths: &c.paths,
                flags: &c.flags,
                parents: c.parents,
                kind: OpKind::Copy,
                workdir: workdir(state),
                source,
                target: state.lowers(),
                snapshotter: sh.snapshotter,
                fetcher: sh.fetcher,
                source_date_epoch: epoch,
            };
            let parts = copy_parts(sh, "COPY", &input, c.from.as_ref().map(|w| w.text.as_str()))
                .map_err(no_tail)?;
            let Continue(layer) = through_cache(sh, state, parts, id, |state| {
                copy_step(&sh.sink, &input, state.previous.take().as_deref()).map_err(no_tail)
            })?
            else {
                return Ok(());
            };
            state.history(copy_history("COPY", c.parents, &c.flags, &c.paths), layer);
        }
        CommandKind::Add(a) => {
            let input = CopyInput {
                paths: &a.paths,
                flags: &a.flags,
                parents: false,
                kind: OpKind::Add {
                    unpack: a.unpack,
                    checksum: a.checksum.as_ref().map(|w| w.text.clone()),
                },
                workdir: workdir(state),
                source: CopySource::Context {
                    root: context_root(sh).map_err(no_tail)?,
                },
                target: state.lowers(),
                snapshotter: sh.snapshotter,
                fetcher: sh.fetcher,
                source_date_epoch: epoch,
            };
            let urls = a
                .paths
                .sources
                .iter()
                .filter(|w| kiln_frontend::instruction::is_url(&w.text))
                .count();
            // A URL without --checksum has content nothing hashed in advance: always fetched.
            let unchecked_url = a.checksum.is_none() && urls > 0;
            let checked = a
                .checksum
                .as_ref()
                .and_then(|c| c.text.parse::<kiln_layer::Digest>().ok())
                .filter(|_| a.paths.heredocs.is_empty() && urls == a.paths.sources.len());
            let parts = if unchecked_url {
                None
            } else {
                let mut p = match &checked {
                    Some(digest) => Some(checked_urls_parts(&input, digest)),
                    None => copy_parts(sh, "ADD", &input, None).map_err(no_tail)?,
                };
                if let Some(p) = p.as_mut() {
                    p.instruction = keys::add_text(std::mem::take(&mut p.instruction), a);
                }
                p
            };
            let Continue(layer) = through_cache(sh, state, parts, id, |state| {
                copy_step(&sh.sink, &input, state.previous.take().as_deref()).map_err(no_tail)
            })?
            else {
                return Ok(());
            };
            state.history(copy_history("ADD", false, &a.flags, &a.paths), layer);
        }
        CommandKind::Run(run) => {
            let (run_argv, script) = run_args(run);
            let argv = if run.command.prepend_shell {
                with_shell(&state.config, &run_argv)
            } else {
                run_argv
            };
            let mut env: Vec<String> = state
                .scope
                .env()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            for (k, v) in proxy_env(req.build_args) {
                if !state.scope.env().iter().any(|(n, _)| *n == k) {
                    env.push(format!("{k}={v}"));
                }
            }
            let wd = workdir(state);
            let label = state.label.clone();
            let mut input = RunInput {
                lowers: state.lowers(),
                argv: argv.clone(),
                env,
                cwd: wd.clone(),
                user: state.container().user.unwrap_or_default(),
                network: run.network,
                default_network: req.network,
                script,
                mounts: Vec::new(),
                id,
                reporter: req.reporter,
                sandbox: req.sandbox,
                snapshotter: sh.snapshotter,
                source_date_epoch: epoch,
                stage: &label,
                position: state.step + 2,
                secret_mounts: Vec::new(),
                secret_env: Vec::new(),
                on_failure: req.on_run_failure,
                keep_failed: req.keep_failed.then(|| crate::run_step::KeepTo {
                    dir: req
                        .store
                        .layout()
                        .failed_step(&format!("{}-step{id}", state.label)),
                    config: state.config.clone(),
                    layers: state.layers.clone(),
                }),
            };
            let parts = run_parts(sh, state, run, &input).map_err(no_tail)?;
            let fresh_caches = sh.cache.is_some_and(|c| c.ignores(&state.label));
            // The mounts are made only when the step runs: a cache hit or `--explain` needs
            // none of them (and `--explain` must leave the store alone).
            let Continue(layer) = through_cache(sh, state, parts, id, |_| {
                let layers_of = |from: &str| match from_source(sh, from, DepKind::MountFrom)? {
                    CopySource::Layers { lowers, .. } => Ok(lowers),
                    CopySource::Context { .. } => Ok(Vec::new()),
                };
                let scratch = sh.sink.scratch_dir("mounts").map_err(no_tail)?;
                let mut prepared = run_mount::prepare(&run_mount::MountInput {
                    mounts: &run.mounts,
                    workdir: &wd,
                    context: req.context,
                    ignore: req.ignore,
                    secrets: req.secrets,
                    layout: req.store.layout(),
                    snapshotter: sh.snapshotter,
                    scratch: scratch.to_path_buf(),
                    layers_of: &layers_of,
                    empty_caches: fresh_caches.then_some(&sh.emptied_caches),
                })
                .map_err(no_tail)?;
                // Secrets with `env=`: the process sees them, the history and config never do.
                input.env.extend(prepared.env.iter().cloned());
                input.secret_mounts.clone_from(&prepared.secret_mounts);
                input.secret_env.clone_from(&prepared.secret_env);
                // `prepared` lives on until the step is done: dropping it removes what it made.
                input.mounts = std::mem::take(&mut prepared.mounts);
                run_step(&sh.sink, &input)
            })?
            else {
                return Ok(());
            };
            let created_by = run_created_by(&argv, state.scope.args(), state.scope.env());
            state.history(created_by, layer);
        }
        CommandKind::Workdir(w) => {
            let wd = normalize_workdir(&workdir(state), &w.text);
            let layer = if wd == "/" {
                None
            } else {
                let parts = KeyParts {
                    instruction: kiln_cache::Canonical::new("WORKDIR")
                        .str("path", &wd)
                        .str("user", &state.container().user.unwrap_or_default())
                        .finish(),
                    ..KeyParts::default()
                };
                let Continue(layer) = through_cache(sh, state, Some(parts), id, |st| {
                    mkdir_layer(sh, st, &wd).map_err(no_tail)
                })?
                else {
                    return Ok(());
                };
                layer
            };
            apply_metadata(&mut state.config, kind, &mut state.meta).map_err(no_tail)?;
            state.history(format!("WORKDIR {wd}"), layer);
        }
        CommandKind::From(_) => {}
        _ => {
            if let Some(text) =
                apply_metadata(&mut state.config, kind, &mut state.meta).map_err(no_tail)?
            {
                state.history(text, None);
            }
        }
    }
    Ok(())
}

fn workdir(state: &State) -> String {
    state
        .config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// BuildKit's COPY/ADD history text: `COPY [--parents] [--chown=X] [--chmod=Y] SRC... DEST`
/// (heredoc sources as `<<NAME`), then ` # buildkit`.
fn copy_history(
    kw: &str,
    parents: bool,
    flags: &kiln_frontend::instruction::CopyFlags,
    paths: &kiln_frontend::instruction::SourcesAndDest,
) -> String {
    let mut s = kw.to_owned();
    if parents {
        s.push_str(" --parents");
    }
    if let Some(c) = &flags.chown {
        let _ = write!(s, " --chown={}", c.text);
    }
    if let Some(c) = &flags.chmod {
        let _ = write!(s, " --chmod={}", c.text);
    }
    for src in &paths.sources {
        s.push(' ');
        s.push_str(&src.text);
    }
    for h in &paths.heredocs {
        let _ = write!(s, " <<{}", h.path);
    }
    s.push(' ');
    s.push_str(&paths.dest.text);
    s.push_str(" # buildkit");
    s
}

/// A WORKDIR path's existing ancestors (as they are), its missing components, and the owner
/// those get.
type MissingDirs = (Vec<Entry>, Vec<String>, (u64, u64));

/// WORKDIR's directory: a layer with the missing components of `wd` (0755, owned by USER),
/// or `None` when it exists already. The layer also carries the existing directories above
/// them with their own metadata, as BuildKit's differ writes every parent of a change: a
/// snapshot unpacked from a layer without them would make them `0:0 0755` and, stacked over
/// the real ones, hide their owner and mode.
fn mkdir_layer(sh: &Shared<'_>, state: &State, wd: &str) -> Result<Option<Layer>, StepError> {
    let scratch = sh.sink.scratch_dir("workdir")?;
    let user = state.container().user.unwrap_or_default();
    let epoch = sh.req.source_date_epoch.unwrap_or(0);
    let missing: Result<Option<MissingDirs>, StepError> =
        sh.snapshotter.view(&state.lowers(), &scratch, |root| {
            let (mut existing, mut missing) = (Vec::new(), Vec::new());
            let mut path = String::new();
            for part in wd.split('/').filter(|p| !p.is_empty()) {
                path = format!("{path}/{part}");
                let rel = path.trim_start_matches('/');
                let host = root.join(rel);
                match std::fs::symlink_metadata(&host) {
                    Ok(meta) if missing.is_empty() => existing.push(
                        Entry::from_host(rel.into(), &host, &meta)
                            .map_err(|e| StepError::io("read", &host, e))?,
                    ),
                    Ok(_) => {}
                    Err(_) => missing.push(rel.to_owned()),
                }
            }
            if missing.is_empty() {
                return Ok(None);
            }
            let owner = if user.is_empty() {
                (0, 0)
            } else {
                ChownSpec::parse(&user).resolve(&DirView::new(root))?
            };
            Ok(Some((existing, missing, owner)))
        })?;
    let Some((existing, missing, (uid, gid))) = missing? else {
        return Ok(None);
    };
    let file = sh.sink.layer_path();
    let out = std::fs::File::create(&file).map_err(|e| StepError::io("create", &file, e))?;
    let pack_err = StepError::Pack;
    let mut w = LayerWriter::new(std::io::BufWriter::new(out), sh.sink.compression())
        .map_err(pack_err)?
        .source_date_epoch(sh.req.source_date_epoch);
    for e in &existing {
        w.append(e, None).map_err(pack_err)?;
    }
    for p in &missing {
        let mut e = Entry::new(p, EntryKind::Dir);
        e.uid = uid;
        e.gid = gid;
        e.mtime = epoch;
        w.append(&e, None).map_err(pack_err)?;
    }
    let (mut out, digests) = w.finish().map_err(pack_err)?;
    std::io::Write::flush(&mut out).map_err(|e| StepError::io("write", &file, e))?;
    drop(out);
    sh.sink
        .commit_layer(&file, &digests, None, &std::collections::BTreeSet::new())
        .map(Some)
}
