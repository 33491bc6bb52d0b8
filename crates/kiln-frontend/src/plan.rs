//! From a parsed Dockerfile to a build plan: stages, their bases and dependencies, the
//! global ARGs, the target and the stages it needs, in build order.
//!
//! Stage rules (BuildKit `dockerfile2llb`):
//! - Only ARG may come before the first FROM; those are the global ARGs, evaluated in order
//!   against the automatic platform ARGs and the earlier global ARGs.
//! - `FROM` is expanded with the global ARGs only. A base naming an *earlier* stage
//!   (case-insensitively) is that stage; `scratch` is the empty image; anything else is an
//!   image reference.
//! - `COPY --from` takes a stage name, a stage index or an image; `RUN --mount from=` takes a
//!   stage name or an image. Both must refer to earlier stages.
//! - The target is `--target` or the last stage; only the stages it reaches through these
//!   edges are needed.
//!
//! kiln departs from BuildKit in one place, on purpose: two stages with the same name are an
//! error (BuildKit only warns, then silently uses the later one).

use std::collections::{BTreeMap, BTreeSet};

use kiln_syntax::{Diagnostic, Dockerfile, TextRange};

use crate::error::{ErrorKind, InstructionError};
use crate::expand::{ArgContext, expand_command};
use crate::instruction::{ArgDecl, Command, CommandKind, From, parse_instruction};
use crate::platform::{Platform, automatic_args};
use crate::scope::{ArgOrigin, ResolvedArg, Scope};

/// What the user asked for, as `docker build` flags.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// `--target`.
    pub target: Option<String>,
    /// `--build-arg K=V`, in order (the last of a name wins).
    pub build_args: Vec<(String, String)>,
    /// `--platform` (default: the host's).
    pub target_platform: Platform,
    /// The platform kiln runs on.
    pub build_platform: Platform,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            target: None,
            build_args: Vec::new(),
            target_platform: Platform::host(),
            build_platform: Platform::host(),
        }
    }
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image reference, after expansion.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// Why a stage depends on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    /// The stage's FROM.
    Base,
    /// `COPY --from`.
    CopyFrom,
    /// `RUN --mount from=`.
    MountFrom,
}

/// One edge of the stage graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    /// The stage depended on.
    pub stage: usize,
    /// How.
    pub kind: DepKind,
    /// The instruction that makes the edge.
    pub span: TextRange,
}

/// An image (not a stage) that `COPY --from` or `RUN --mount from=` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The reference as written.
    pub name: String,
    /// How it is read ([`DepKind::CopyFrom`] or [`DepKind::MountFrom`]).
    pub kind: DepKind,
    /// The flag that names it (for a base stage's ONBUILD trigger, this stage's FROM base).
    pub span: TextRange,
}

/// One stage.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Position in the file, from 0.
    pub index: usize,
    /// The lowercased name after `AS`.
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: From,
    /// The FROM instruction's location.
    pub from_command: Command,
    /// The base, resolved.
    pub base: Base,
    /// The base as expanded (the image reference, stage name or `scratch`).
    pub base_name: String,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// The instructions after FROM.
    pub commands: Vec<Command>,
    /// Stages this one depends on.
    pub deps: Vec<Dep>,
    /// Images referenced by `COPY --from` or `RUN --mount from=` (not stages), in order.
    pub image_refs: Vec<ImageRef>,
    /// The ARGs the stage uses, with their values: those its instructions (and, for a stage
    /// based on another, that stage's) expand, and the global ARGs its FROM references.
    pub used_args: Vec<ResolvedArg>,
    /// Whether the target needs this stage.
    pub needed: bool,
    /// The scope at the end of the stage, as far as the plan can know it.
    pub final_scope: Scope,
}

impl Stage {
    /// `name`, or `stage-N` as BuildKit calls unnamed stages, for messages.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// The build plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Suspicious but valid things, such as a `--from` one typo away from a stage name
    /// (rule `StageNameTypo`).
    pub warnings: Vec<Diagnostic>,
    /// The global ARGs (automatic ones first), resolved.
    pub global_args: Vec<ResolvedArg>,
    /// Every stage, in file order.
    pub stages: Vec<Stage>,
    /// The target stage's index.
    pub target: usize,
    /// The escape character of the file.
    pub escape: char,
}

impl Plan {
    /// Marks stage `index` and everything it depends on as needed: for stages the plan could
    /// not see a reference to (an ONBUILD trigger of a base image from the store reads them,
    /// known only once that image's config is read).
    pub fn schedule(&mut self, index: usize) {
        mark_needed(&mut self.stages, index);
    }

    /// The stages `COPY --from` and `RUN --mount from=` of an ONBUILD trigger (as stored in an
    /// image config) read, when they name stages of this plan; a trigger that does not parse
    /// reads none (the stage that fires it reports the error).
    pub fn trigger_stages(&self, trigger: &str) -> Vec<usize> {
        let names: BTreeMap<String, usize> = self
            .stages
            .iter()
            .filter_map(|s| s.name.clone().map(|n| (n, s.index)))
            .collect();
        let Ok(commands) = crate::instruction::parse_trigger(trigger) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for cmd in &commands {
            for (reference, kind, span) in stage_refs(cmd).unwrap_or_default() {
                if let Ok(Some(i)) = resolve_ref(&reference, kind, &names, self.stages.len(), span)
                {
                    out.push(i);
                }
            }
        }
        out
    }

    /// The needed stages in an order where every stage comes after those it depends on
    /// (file order: dependencies always point to earlier stages).
    pub fn build_order(&self) -> Vec<usize> {
        self.stages
            .iter()
            .filter(|s| s.needed)
            .map(|s| s.index)
            .collect()
    }
}

/// Plan a parsed Dockerfile.
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<Plan, InstructionError> {
    let (meta, raw_stages) = split_stages(df)?;
    check_names(&raw_stages)?;
    let target = find_target(&raw_stages, opts.target.as_deref())?;
    let target_stage = raw_stages[target]
        .1
        .name
        .as_ref()
        .map_or_else(|| "default".to_owned(), |n| n.text.clone());
    let (global_args, meta_deps) = global_args(df.escape, &meta, opts, &target_stage)?;
    let global_env: Vec<(String, String)> = global_args
        .iter()
        .filter_map(|a| a.value.clone().map(|v| (a.name.clone(), v)))
        .collect();

    let stage_count = raw_stages.len();
    let mut stages: Vec<Stage> = Vec::with_capacity(stage_count);
    let mut warnings = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (_, from, _)) in raw_stages.iter().enumerate() {
        if let Some(n) = &from.name {
            names.insert(n.text.clone(), i);
        }
    }
    // References to this stage or a later one: a cycle, or an error of their own.
    let mut forward: Vec<(usize, usize, DepKind, String, TextRange)> = Vec::new();
    for (index, (from_command, from, commands)) in raw_stages.into_iter().enumerate() {
        let global_scope = Scope::new(df.escape, global_env.clone());
        let base_name = global_scope.expand(&from.base)?;
        if base_name.trim().is_empty() {
            return Err(InstructionError::new(
                ErrorKind::BlankBase(from.base.text.clone()),
                from.base.span,
            ));
        }
        let platform = match &from.platform {
            Some(p) => {
                let v = global_scope.expand(p)?;
                Platform::parse(&v).map_err(|e| {
                    InstructionError::new(
                        ErrorKind::InvalidPlatform(v.clone(), e.to_string()),
                        p.span,
                    )
                })?;
                Some(v)
            }
            None => None,
        };
        let base = match names.get(&base_name.to_ascii_lowercase()) {
            Some(&s) if s < index => Base::Stage(s),
            _ if base_name == "scratch" => Base::Scratch,
            _ => Base::Image(base_name.clone()),
        };
        let mut deps = Vec::new();
        let (mut scope, mut used): (Scope, BTreeSet<String>) = match base {
            Base::Stage(s) => {
                deps.push(Dep {
                    stage: s,
                    kind: DepKind::Base,
                    span: from.base.span,
                });
                let parent = &stages[s];
                (
                    parent.final_scope.clone(),
                    parent.used_args.iter().map(|a| a.name.clone()).collect(),
                )
            }
            _ => (Scope::new(df.escape, Vec::new()), BTreeSet::new()),
        };
        // Global ARGs referenced by FROM count as used, with what their defaults reference.
        for name in global_scope.referenced() {
            mark_used(&name, &meta_deps, &mut used);
        }
        let mut image_refs = Vec::new();
        let this_name = from.name.as_ref().map(|n| n.text.clone());
        // The parent stage's ONBUILD triggers run first in this stage: the stages they read
        // are this stage's dependencies too, or nothing would schedule them.
        if let Base::Stage(s) = base {
            for cmd in &stages[s].commands {
                let CommandKind::Onbuild(o) = &cmd.kind else {
                    continue;
                };
                // A `--from` with a variable is expanded when the trigger fires; the build
                // then reports a stage it has not scheduled instead of waiting for it.
                for (reference, kind, _) in stage_refs(&o.trigger).unwrap_or_default() {
                    let span = from.base.span;
                    match resolve_ref(&reference, kind, &names, stage_count, span)? {
                        Some(stage) if stage >= index => {
                            forward.push((index, stage, kind, reference, span));
                        }
                        Some(stage) => deps.push(Dep { stage, kind, span }),
                        None => image_refs.push(ImageRef {
                            name: reference,
                            kind,
                            span,
                        }),
                    }
                }
            }
        }
        for cmd in &commands {
            walk_command(cmd, &mut scope, opts, &global_args, &mut used)?;
            for (reference, kind, span) in stage_refs(cmd)? {
                let found = resolve_ref(&reference, kind, &names, stage_count, span)?;
                if let Some(stage) = found {
                    if stage >= index {
                        forward.push((index, stage, kind, reference, span));
                        continue;
                    }
                    deps.push(Dep { stage, kind, span });
                    continue;
                }
                let known: Vec<&str> = names.keys().map(String::as_str).collect();
                if let Some(close) = crate::flags::suggest(&reference.to_ascii_lowercase(), &known)
                {
                    warnings.push(
                        Diagnostic::warning(
                            "StageNameTypo",
                            span,
                            format!(
                                "`{reference}` is not a stage of this Dockerfile, so it is used as an image"
                            ),
                        )
                        .with_hint(format!("did you mean the stage `{close}`?")),
                    );
                }
                image_refs.push(ImageRef {
                    name: reference,
                    kind,
                    span,
                });
            }
        }
        let used_args = scope
            .args()
            .iter()
            .filter(|a| used.contains(&a.name))
            .cloned()
            .chain(
                global_args
                    .iter()
                    .filter(|g| {
                        used.contains(&g.name) && !scope.args().iter().any(|a| a.name == g.name)
                    })
                    .cloned(),
            )
            .collect();
        stages.push(Stage {
            index,
            name: this_name,
            from_command,
            base,
            base_name,
            platform,
            commands,
            deps,
            image_refs,
            used_args,
            needed: false,
            final_scope: scope,
            from,
        });
    }
    check_forward(&stages, &forward)?;
    mark_needed(&mut stages, target);
    Ok(Plan {
        warnings,
        global_args,
        stages,
        target,
        escape: df.escape,
    })
}

type RawStage = (Command, From, Vec<Command>);
/// Global ARG declarations with their instruction's span.
type MetaArgs = Vec<(ArgDecl, TextRange)>;
/// For each global ARG, the names its default references.
type MetaDeps = BTreeMap<String, BTreeSet<String>>;

fn split_stages(df: &Dockerfile) -> Result<(MetaArgs, Vec<RawStage>), InstructionError> {
    let mut meta = Vec::new();
    let mut stages: Vec<RawStage> = Vec::new();
    for inst in &df.instructions {
        let cmd = parse_instruction(inst)?;
        match (&cmd.kind, stages.last_mut()) {
            (CommandKind::From(from), _) => {
                let from = from.clone();
                stages.push((cmd, from, Vec::new()));
            }
            (CommandKind::Arg(decls), None) => {
                meta.extend(decls.iter().cloned().map(|d| (d, cmd.span)));
            }
            (_, None) => {
                return Err(InstructionError::new(
                    ErrorKind::BeforeFrom(cmd.name().to_owned()),
                    cmd.keyword.span,
                ));
            }
            (_, Some(stage)) => stage.2.push(cmd),
        }
    }
    if stages.is_empty() {
        let span = df
            .instructions
            .first()
            .map_or_else(TextRange::default, |i| i.span);
        return Err(InstructionError::new(ErrorKind::NoStage, span));
    }
    Ok((meta, stages))
}

fn check_names(stages: &[RawStage]) -> Result<(), InstructionError> {
    let mut seen = std::collections::BTreeSet::new();
    for (_, from, _) in stages {
        if let Some(n) = &from.name
            && !seen.insert(n.text.as_str())
        {
            return Err(InstructionError::new(ErrorKind::DuplicateStage(n.text.clone()), n.span)
                    .with_hint("give each stage its own name after `AS`; kiln refuses duplicates where BuildKit silently uses the last"));
        }
    }
    Ok(())
}

fn find_target(stages: &[RawStage], target: Option<&str>) -> Result<usize, InstructionError> {
    let Some(t) = target else {
        return Ok(stages.len() - 1);
    };
    let lower = t.to_ascii_lowercase();
    if let Some(i) = stages
        .iter()
        .position(|(_, f, _)| f.name.as_ref().is_some_and(|n| n.text == lower))
    {
        return Ok(i);
    }
    let names: Vec<&str> = stages
        .iter()
        .filter_map(|(_, f, _)| f.name.as_ref().map(|n| n.text.as_str()))
        .collect();
    let mut err =
        InstructionError::new(ErrorKind::UnknownTarget(t.to_owned()), TextRange::default());
    err.hint = Some(match crate::flags::suggest(&lower, &names) {
        Some(s) => format!("did you mean `{s}`?"),
        None if names.is_empty() => {
            "the Dockerfile names no stage; add `AS <name>` to a FROM".into()
        }
        None => format!("the stages are: {}", names.join(", ")),
    });
    Err(err)
}

/// Evaluate the global ARGs. Returns them (automatic ones first) and, for each global ARG,
/// the names its default referenced.
fn global_args(
    escape: char,
    meta: &[(ArgDecl, TextRange)],
    opts: &BuildOptions,
    target_stage: &str,
) -> Result<(Vec<ResolvedArg>, MetaDeps), InstructionError> {
    let mut args: Vec<ResolvedArg> =
        automatic_args(&opts.build_platform, &opts.target_platform, target_stage)
            .into_iter()
            .map(|(name, value)| {
                let given = opts.build_args.iter().rev().find(|(k, _)| *k == name);
                ResolvedArg {
                    origin: if given.is_some() {
                        ArgOrigin::BuildArg
                    } else {
                        ArgOrigin::Automatic
                    },
                    value: Some(given.map_or(value, |(_, v)| v.clone())),
                    name,
                    span: TextRange::default(),
                }
            })
            .collect();
    let mut deps = BTreeMap::new();
    for (decl, _) in meta {
        let env: Vec<(String, String)> = args
            .iter()
            .filter_map(|a| a.value.clone().map(|v| (a.name.clone(), v)))
            .collect();
        let scope = Scope::new(escape, env);
        let name = decl.key.text.clone();
        let (value, origin) =
            if let Some((_, v)) = opts.build_args.iter().rev().find(|(k, _)| *k == name) {
                (Some(v.clone()), ArgOrigin::BuildArg)
            } else if let Some(d) = &decl.default {
                (Some(scope.expand(d)?), ArgOrigin::Default)
            } else {
                (None, ArgOrigin::Unset)
            };
        deps.insert(name.clone(), scope.referenced().clone());
        args.retain(|a| a.name != name);
        args.push(ResolvedArg {
            name,
            value,
            origin,
            span: decl.key.span,
        });
    }
    Ok((args, deps))
}

fn mark_used(name: &str, deps: &BTreeMap<String, BTreeSet<String>>, used: &mut BTreeSet<String>) {
    if !used.insert(name.to_owned()) {
        return;
    }
    if let Some(d) = deps.get(name) {
        for n in d {
            mark_used(n, deps, used);
        }
    }
}

/// Apply one instruction to the scope (ARG and ENV change it) and expand its words, to
/// check them and to learn which variables it references.
fn walk_command(
    cmd: &Command,
    scope: &mut Scope,
    opts: &BuildOptions,
    global_args: &[ResolvedArg],
    used: &mut BTreeSet<String>,
) -> Result<(), InstructionError> {
    let ctx = ArgContext {
        build_args: &opts.build_args,
        global_args,
    };
    let expanded = expand_command(scope, cmd, ctx)?;
    used.extend(expanded.args.into_iter().map(|a| a.name));
    Ok(())
}

/// The stage references of an instruction: `COPY --from` and `RUN --mount from=`.
fn stage_refs(cmd: &Command) -> Result<Vec<(String, DepKind, TextRange)>, InstructionError> {
    let mut out = Vec::new();
    match &cmd.kind {
        CommandKind::Copy(c) => {
            if let Some(f) = &c.from {
                if f.text.contains('$') {
                    return Err(InstructionError::new(ErrorKind::FromExpansion, f.span));
                }
                out.push((f.text.clone(), DepKind::CopyFrom, f.span));
            }
        }
        CommandKind::Run(r) => {
            for (m, spec) in r.mounts.iter().zip(&r.mount_specs) {
                if let Some(f) = &m.from
                    && !f.is_empty()
                {
                    out.push((f.clone(), DepKind::MountFrom, spec.span));
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Resolve a `--from` reference to a stage index, or `None` for an image.
fn resolve_ref(
    reference: &str,
    kind: DepKind,
    names: &BTreeMap<String, usize>,
    stage_count: usize,
    span: TextRange,
) -> Result<Option<usize>, InstructionError> {
    if kind == DepKind::CopyFrom
        && let Ok(n) = reference.parse::<i64>()
    {
        return match usize::try_from(n) {
            Ok(i) if i < stage_count => Ok(Some(i)),
            _ => Err(InstructionError::new(
                ErrorKind::StageIndex(reference.to_owned()),
                span,
            )),
        };
    }
    Ok(names.get(&reference.to_ascii_lowercase()).copied())
}

/// References to the same or a later stage: BuildKit first looks for a cycle in the whole
/// stage graph (`circular dependency detected on stage: NAME`, naming the first stage in file
/// order from which one is reached, as its `validateCircularDependency` does), and only then
/// refuses a reference to a later stage.
fn check_forward(
    stages: &[Stage],
    forward: &[(usize, usize, DepKind, String, TextRange)],
) -> Result<(), InstructionError> {
    let Some(first) = forward.first() else {
        return Ok(());
    };
    let mut edges: Vec<Vec<(usize, TextRange)>> = stages
        .iter()
        .map(|s| s.deps.iter().map(|d| (d.stage, d.span)).collect())
        .collect();
    for (from, to, _, _, span) in forward {
        edges[*from].push((*to, *span));
    }
    let mut done = vec![false; stages.len()];
    let mut path = vec![false; stages.len()];
    for (i, stage) in stages.iter().enumerate() {
        if let Some(span) = cycle_from(i, &edges, &mut done, &mut path) {
            return Err(InstructionError::new(ErrorKind::Cycle(stage.label()), span));
        }
    }
    let (from, _, kind, reference, span) = first;
    Err(InstructionError::new(
        ErrorKind::LaterStage {
            from: reference.clone(),
            current: stages[*from].label(),
            mount: *kind == DepKind::MountFrom,
        },
        *span,
    ))
}

/// Depth-first from stage `i` over `edges`: the edge that closes a cycle (a stage on the
/// current path met again), if any.
fn cycle_from(
    i: usize,
    edges: &[Vec<(usize, TextRange)>],
    done: &mut [bool],
    path: &mut [bool],
) -> Option<TextRange> {
    if done[i] {
        return None;
    }
    done[i] = true;
    path[i] = true;
    for &(next, span) in &edges[i] {
        if path[next] {
            return Some(span);
        }
        if let Some(s) = cycle_from(next, edges, done, path) {
            return Some(s);
        }
    }
    path[i] = false;
    None
}

fn mark_needed(stages: &mut [Stage], target: usize) {
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if stages[i].needed {
            continue;
        }
        stages[i].needed = true;
        stack.extend(stages[i].deps.iter().map(|d| d.stage));
    }
}
