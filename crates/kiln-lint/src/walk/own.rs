//! Step 7: kiln's own rules ([`crate::rules::KILN_RULES`]), over the stages as BuildKit's
//! checks left them: each checked stage's instructions expanded in its scope, the FROMs
//! resolved, the target known.
//!
//! A stage built on another starts from that stage's WORKDIR, ENV names, USER and the
//! directories it copied the whole context into, as its filesystem and config do. The rules
//! about what the image ships (`PackageCacheInLayer`, `BuildToolsInFinalStage`,
//! `FinalStageRunsAsRoot`, `CopyFromWholeTree`) look only at the target and the stages it is
//! built on; the others at every checked stage.

use kiln_frontend::instruction::{Command, CommandKind, MountType, is_git, is_url};
use kiln_syntax::{Instruction, TextRange};

use super::{Base, Resolved, StageSource};
use crate::rules::{
    add_instead_of_copy, build_tools_in_final_stage, copy_from_whole_tree,
    final_stage_runs_as_root, loose_apt_get_install, package_cache_in_layer, run_cd,
    secret_value_in_arg_or_env, unfiltered_context_copy, unpinned_base_image, unused_stage,
};
use crate::script;
use crate::sink::Sink;
use crate::{CheckConfig, Request};

/// The stages as the walk left them.
pub(super) struct Stages<'s, 'a> {
    pub(super) sources: &'s [StageSource<'a>],
    pub(super) resolved: &'s [Resolved],
    /// Whether each stage's instructions were checked (and so expanded).
    pub(super) checked: &'s [bool],
    /// Each checked stage's instructions, expanded (ARGs as written).
    pub(super) expanded: &'s [Vec<(&'a Instruction, Command)>],
    pub(super) target: usize,
}

/// What a stage's filesystem and config hold at its end, for the stages built on it.
#[derive(Clone, Default)]
struct Carried {
    workdir: String,
    env: Vec<String>,
    user: Option<(String, TextRange)>,
    context_dirs: Vec<String>,
}

pub(super) fn run(
    req: &Request<'_>,
    config: &CheckConfig,
    sink: &mut Sink,
    stages: &Stages<'_, '_>,
) {
    let n = stages.sources.len();
    let parent = |i: usize| match stages.resolved[i].base {
        Base::Stage(p) => Some(p),
        _ => None,
    };
    let mut chain = vec![false; n];
    let mut at = Some(stages.target);
    while let Some(i) = at {
        chain[i] = true;
        at = parent(i);
    }
    unused(config, sink, stages);
    let runs = runtime_programs(stages, &chain);
    let mut carried: Vec<Carried> = vec![Carried::default(); n];
    for i in 0..n {
        if !stages.checked[i] {
            continue;
        }
        let source = &stages.sources[i];
        if let Base::Image(image) = &stages.resolved[i].base {
            let cfg = config.with_comments(&source.inst.comments);
            unpinned_base_image::check(sink, &cfg, image, source.inst.span);
        }
        let mut state = parent(i).map(|p| carried[p].clone()).unwrap_or_default();
        for (inst, cmd) in &stages.expanded[i] {
            let cfg = config.with_comments(&inst.comments);
            instruction(
                req,
                &cfg,
                sink,
                stages,
                (i, chain[i]),
                &runs,
                &carried,
                &mut state,
                cmd,
            );
        }
        if i == stages.target {
            let image_user = root_image_user(req, stages, i);
            let user = state.user.as_ref().map(|(u, span)| (u.as_str(), *span));
            let cfg = config.with_comments(&source.inst.comments);
            final_stage_runs_as_root::check(
                sink,
                &cfg,
                user,
                image_user.as_deref(),
                source.inst.span,
            );
        }
        carried[i] = state;
    }
}

/// One instruction of stage `stage.0` (`stage.1`: whether the image is built on it).
#[allow(clippy::too_many_arguments)]
fn instruction(
    req: &Request<'_>,
    cfg: &CheckConfig,
    sink: &mut Sink,
    stages: &Stages<'_, '_>,
    (index, in_image): (usize, bool),
    runs: &[String],
    carried: &[Carried],
    state: &mut Carried,
    cmd: &Command,
) {
    let span = cmd.span;
    match &cmd.kind {
        CommandKind::Run(r) => {
            let commands = script::commands(&r.command);
            run_cd::check(sink, cfg, &commands, span);
            loose_apt_get_install::check(sink, cfg, &commands, span);
            if in_image {
                let caches: Vec<String> = r
                    .mounts
                    .iter()
                    .filter(|m| m.typ == MountType::Cache)
                    .filter_map(|m| m.target.clone())
                    .collect();
                package_cache_in_layer::check(sink, cfg, &commands, &caches, &state.env, span);
                build_tools_in_final_stage::check(sink, cfg, &commands, runs, span);
            }
        }
        CommandKind::Env(pairs) => {
            for kv in pairs {
                secret_value_in_arg_or_env::check(
                    sink,
                    cfg,
                    "ENV",
                    &kv.key.text,
                    &kv.value.text,
                    span,
                );
                state.env.push(kv.key.text.clone());
            }
        }
        CommandKind::Arg(decls) => {
            for d in decls {
                if let Some(default) = &d.default {
                    secret_value_in_arg_or_env::check(
                        sink,
                        cfg,
                        "ARG",
                        &d.key.text,
                        &default.text,
                        span,
                    );
                }
            }
        }
        CommandKind::Workdir(w) => state.workdir = resolve(&state.workdir, &w.text),
        CommandKind::User(u) => state.user = Some((u.text.clone(), span)),
        CommandKind::Add(a) => {
            let sources: Vec<&str> = a.paths.sources.iter().map(|w| w.text.as_str()).collect();
            if sources.iter().all(|s| !is_url(s) && !is_git(s)) {
                add_instead_of_copy::check(sink, cfg, &sources, a.paths.heredocs.len(), span);
                whole_context(
                    req,
                    cfg,
                    sink,
                    state,
                    "ADD",
                    &sources,
                    &a.paths.dest.text,
                    span,
                );
            }
        }
        CommandKind::Copy(c) => {
            let sources: Vec<&str> = c.paths.sources.iter().map(|w| w.text.as_str()).collect();
            match &c.from {
                None => whole_context(
                    req,
                    cfg,
                    sink,
                    state,
                    "COPY",
                    &sources,
                    &c.paths.dest.text,
                    span,
                ),
                Some(from) if index == stages.target => {
                    let Some(source_stage) = stage_ref(stages.sources, &from.text) else {
                        return;
                    };
                    for src in sources {
                        copy_from_whole_tree::check(
                            sink,
                            cfg,
                            &from.text,
                            src,
                            &carried[source_stage].context_dirs,
                            span,
                        );
                    }
                }
                Some(_) => {}
            }
        }
        _ => {}
    }
}

/// A COPY or ADD from the context: when a source is the whole context, check what it takes in
/// and remember where it went.
#[allow(clippy::too_many_arguments)]
fn whole_context(
    req: &Request<'_>,
    cfg: &CheckConfig,
    sink: &mut Sink,
    state: &mut Carried,
    keyword: &str,
    sources: &[&str],
    dest: &str,
    span: TextRange,
) {
    let whole = sources
        .iter()
        .any(|s| matches!(kiln_context::clean_path(s).as_str(), "." | "/" | "*" | "/*"));
    if !whole {
        return;
    }
    if let Some(context) = req.context {
        unfiltered_context_copy::check(sink, cfg, context, req.ignore, keyword, span);
    }
    state.context_dirs.push(resolve(&state.workdir, dest));
}

/// `path` against the directory `workdir` (empty for `/`), cleaned.
fn resolve(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        kiln_context::clean_path(path)
    } else {
        kiln_context::clean_path(&format!("/{workdir}/{path}"))
    }
}

/// The stage a `--from` or `from=` names: a stage name (the last of that name) or an index.
fn stage_ref(sources: &[StageSource<'_>], name: &str) -> Option<usize> {
    if let Ok(i) = name.parse::<usize>() {
        return (i < sources.len()).then_some(i);
    }
    let lower = name.to_ascii_lowercase();
    sources
        .iter()
        .rposition(|s| s.from.name.as_ref().is_some_and(|n| n.text == lower))
}

/// `UnusedStage`: every stage but the last that no stage builds on, copies from or mounts.
fn unused(config: &CheckConfig, sink: &mut Sink, stages: &Stages<'_, '_>) {
    let n = stages.sources.len();
    let mut used = vec![false; n];
    let mark = |cmd: &Command, used: &mut Vec<bool>| {
        for name in uses(cmd) {
            if let Some(i) = stage_ref(stages.sources, name) {
                used[i] = true;
            }
        }
    };
    for i in 0..n {
        if let Base::Stage(p) = stages.resolved[i].base {
            used[p] = true;
        }
        if stages.checked[i] {
            for (_, cmd) in &stages.expanded[i] {
                mark(cmd, &mut used);
            }
        } else {
            for (_, cmd) in &stages.sources[i].commands {
                mark(cmd, &mut used);
            }
        }
    }
    for (i, source) in stages.sources.iter().enumerate().take(n.saturating_sub(1)) {
        if used[i] {
            continue;
        }
        let cfg = config.with_comments(&source.inst.comments);
        let name = source.from.name.as_ref().map(|w| w.text.as_str());
        unused_stage::check(sink, &cfg, i, name, source.inst.span);
    }
}

/// The stages or images an instruction (or its ONBUILD trigger) reads: `COPY --from`,
/// `RUN --mount=from=`.
fn uses(cmd: &Command) -> Vec<&str> {
    let mut names = Vec::new();
    for c in std::iter::once(cmd).chain(match &cmd.kind {
        CommandKind::Onbuild(o) => Some(&*o.trigger),
        _ => None,
    }) {
        match &c.kind {
            CommandKind::Copy(copy) => names.extend(copy.from.as_ref().map(|f| f.text.as_str())),
            CommandKind::Run(r) => names.extend(r.mounts.iter().filter_map(|m| m.from.as_deref())),
            _ => {}
        }
    }
    names
}

/// The programs the image starts: those of its last ENTRYPOINT and last CMD (in the target
/// or the stages it is built on), without their directories.
fn runtime_programs(stages: &Stages<'_, '_>, chain: &[bool]) -> Vec<String> {
    let mut entrypoint = None;
    let mut cmd = None;
    for (i, in_chain) in chain.iter().enumerate() {
        if !in_chain {
            continue;
        }
        for (_, c) in &stages.expanded[i] {
            match &c.kind {
                CommandKind::Entrypoint(line) => entrypoint = Some(line),
                CommandKind::Cmd(line) => cmd = Some(line),
                _ => {}
            }
        }
    }
    [entrypoint, cmd]
        .into_iter()
        .flatten()
        .filter_map(|line| {
            script::commands(line)
                .first()
                .map(|c| c.program().to_owned())
        })
        .collect()
}

/// The `User` of the image the stage `i` is built on in the end, when the build knows it.
fn root_image_user(req: &Request<'_>, stages: &Stages<'_, '_>, mut i: usize) -> Option<String> {
    loop {
        match &stages.resolved[i].base {
            Base::Stage(p) => i = *p,
            Base::Scratch => return None,
            Base::Image(name) => {
                let platform = stages.resolved[i]
                    .platform
                    .clone()
                    .unwrap_or_else(|| req.options.target_platform.clone());
                return req.images?.base_image(name, &platform)?.user;
            }
        }
    }
}
