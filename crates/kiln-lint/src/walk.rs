//! The checks in the order BuildKit's `dockerfile2llb.toDispatchState` runs them, each with
//! the check options BuildKit gives it:
//!
//! 1. the parser's warnings (`NoEmptyContinuation`), with the file's options;
//! 2. each instruction as it is parsed (`MaintainerDeprecated`, `StageNameCasing`,
//!    `FromAsCasing`, `InvalidDefinitionDescription`), with the options plus the `# check=`
//!    comment above it; an instruction that does not parse ends the checks here;
//! 3. file-wide: `ReservedStageName`, `DuplicateStageName`, `ConsistentInstructionCasing`,
//!    and `InvalidDefaultArgInFrom` (every FROM expanded with the ARG defaults alone);
//! 4. each FROM against the global ARGs (`UndefinedArgInFrom`, `RedundantTargetPlatform`,
//!    `FromPlatformFlagConstDisallowed`), with the options plus the FROM's comment;
//! 5. the base images the build resolved (`InvalidBaseImagePlatform`), for the stages that
//!    are checked: every stage, or those the target needs;
//! 6. each instruction of those stages in its stage's scope, after variable expansion
//!    (`UndefinedVar`, `LegacyKeyValueFormat`, `SecretsUsedInArgOrEnv`,
//!    `JSONArgsRecommended`, `MultipleInstructionsDisallowed`, `WorkdirRelativePath`,
//!    `ExposeProtoCasing`, `ExposeInvalidFormat`, `CopyIgnoredFile`), with the options plus
//!    the instruction's comment. A stage built on another starts from that stage's final
//!    scope, SHELL and WORKDIR state (not its CMD and ENTRYPOINT counts);
//! 7. when the request asks for them, kiln's own rules over the same expanded instructions
//!    ([`own`]).

use std::collections::BTreeSet;

use kiln_frontend::instruction::{ArgDecl, Command, CommandKind, From, is_git, is_url};
use kiln_frontend::{
    ArgContext, ArgOrigin, ErrorKind, InstructionError, Platform, ResolvedArg, Scope,
    automatic_args, expand_command, parse_instruction,
};
use kiln_syntax::shell::Lexer;
use kiln_syntax::{Dockerfile, Instruction, TextRange};

use crate::rules::multiple_instructions_disallowed::Tracker;
use crate::rules::{
    consistent_instruction_casing, copy_ignored_file, duplicate_stage_name, expose_invalid_format,
    expose_proto_casing, from_as_casing, from_platform_flag_const_disallowed,
    invalid_base_image_platform, invalid_default_arg_in_from, invalid_definition_description,
    json_args_recommended, legacy_key_value_format, maintainer_deprecated,
    multiple_instructions_disallowed, no_empty_continuation, redundant_target_platform,
    reserved_stage_name, secrets_used_in_arg_or_env, stage_name_casing, undefined_arg_in_from,
    undefined_var, workdir_relative_path,
};
use crate::sink::Sink;
use crate::{CheckConfig, Request};

mod own;

/// The `PATH` BuildKit gives a stage whose image sets none (`system.DefaultPathEnv` on
/// Unix); Windows stages get none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The ARGs before the first FROM, each with its instruction's range.
type GlobalArgs = Vec<(ArgDecl, TextRange)>;

/// A stage as parsed: its FROM and the instructions after it.
struct StageSource<'a> {
    inst: &'a Instruction,
    from: From,
    commands: Vec<(&'a Instruction, Command)>,
}

/// What a stage starts from, once its FROM is expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    Scratch,
    Image(String),
    Stage(usize),
}

/// A stage's FROM, expanded.
struct Resolved {
    base: Base,
    platform: Option<Platform>,
}

/// The variables, SHELL and WORKDIR state of a stage while its instructions are checked.
#[derive(Clone)]
struct StageState {
    scope: Scope,
    /// The ARG names declared in the stage (and the stages it is built on).
    declared: Vec<String>,
    shell: Vec<String>,
    workdir_set: bool,
    os: String,
    /// The base image whose environment the build could not tell, if any.
    unknown_image: Option<String>,
}

/// Run every check of `req` into `sink`; the error that ended them early, if any.
pub(crate) fn run(
    req: &Request<'_>,
    config: &CheckConfig,
    sink: &mut Sink,
) -> Result<(), InstructionError> {
    let df = req.dockerfile;
    let opts = req.options;
    no_empty_continuation::check(sink, config, req.source, df);
    let (meta, stages) = parse_all(df, config, sink)?;
    file_wide(&stages, config, sink);

    let lexer = Lexer::new(df.escape);
    let target_stage = opts
        .target
        .clone()
        .or_else(|| {
            stages
                .last()
                .and_then(|s| s.from.name.as_ref())
                .map(|n| n.text.clone())
        })
        .unwrap_or_else(|| "default".to_owned());
    let mut automatic = automatic_args(&opts.build_platform, &opts.target_platform, &target_stage);
    for (k, v) in &mut automatic {
        if let Some((_, given)) = opts.build_args.iter().rev().find(|(name, _)| name == k) {
            v.clone_from(given);
        }
    }
    if let Ok(defaults) = global_env(&lexer, automatic.clone(), &meta, None) {
        let bases: Vec<(&str, TextRange)> = stages
            .iter()
            .map(|s| (s.from.base.text.as_str(), s.inst.span))
            .collect();
        invalid_default_arg_in_from::check(sink, config, &lexer, &defaults, &bases);
    }
    let globals = global_env(&lexer, automatic, &meta, Some(&opts.build_args))?;
    let mut declared_globals: BTreeSet<String> = globals.iter().map(|(k, _)| k.clone()).collect();
    declared_globals.extend(meta.iter().map(|(d, _)| d.key.text.clone()));

    let mut resolved: Vec<Resolved> = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        let r = resolve_from(
            &lexer,
            &globals,
            &declared_globals,
            &stages[..i],
            stage,
            config,
            sink,
        )?;
        resolved.push(r);
    }

    let target = find_target(&stages, opts.target.as_deref())?;
    let checked: Vec<bool> = if req.all_stages {
        vec![true; stages.len()]
    } else {
        needed(&stages, &resolved, target)
    };

    let globals_resolved: Vec<ResolvedArg> = globals
        .iter()
        .map(|(name, value)| ResolvedArg {
            name: name.clone(),
            value: Some(value.clone()),
            origin: ArgOrigin::Global,
            span: TextRange::default(),
        })
        .collect();
    let mut finals: Vec<Option<StageState>> = vec![None; stages.len()];
    let mut expanded: Vec<Vec<(&Instruction, Command)>> = vec![Vec::new(); stages.len()];
    for (i, stage) in stages.iter().enumerate() {
        if !checked[i] {
            continue;
        }
        let start = match &resolved[i].base {
            Base::Stage(parent) => finals[*parent].clone(),
            _ => None,
        };
        let state = match start {
            Some(state) => state,
            None => fresh_state(req, df.escape, stage, &resolved[i], config, sink),
        };
        let ctx = ArgContext {
            build_args: &opts.build_args,
            global_args: &globals_resolved,
        };
        finals[i] = Some(dispatch(
            req,
            config,
            sink,
            stage,
            state,
            ctx,
            &mut expanded[i],
        )?);
    }
    if req.own_rules {
        own::run(
            req,
            config,
            sink,
            &own::Stages {
                sources: &stages,
                resolved: &resolved,
                checked: &checked,
                expanded: &expanded,
                target,
            },
        );
    }
    Ok(())
}

/// Steps 1 and 2: parse every instruction, checking each as it is parsed, and sort them into
/// the global ARGs and the stages.
fn parse_all<'a>(
    df: &'a Dockerfile,
    config: &CheckConfig,
    sink: &mut Sink,
) -> Result<(GlobalArgs, Vec<StageSource<'a>>), InstructionError> {
    let mut meta = Vec::new();
    let mut stages: Vec<StageSource<'a>> = Vec::new();
    for inst in &df.instructions {
        let cfg = config.with_comments(&inst.comments);
        maintainer_deprecated::check(sink, &cfg, inst);
        if inst.name() == "from" {
            stage_name_casing::check(sink, &cfg, inst);
            from_as_casing::check(sink, &cfg, inst);
        }
        let cmd = parse_instruction(inst)?;
        match &cmd.kind {
            CommandKind::From(from) => {
                if let Some(name) = &from.name {
                    invalid_definition_description::check(
                        sink,
                        &cfg,
                        "FROM",
                        &[name.text.as_str()],
                        &inst.comments,
                        inst.span,
                    );
                }
            }
            CommandKind::Arg(decls) => {
                let keys: Vec<&str> = decls.iter().map(|d| d.key.text.as_str()).collect();
                invalid_definition_description::check(
                    sink,
                    &cfg,
                    "ARG",
                    &keys,
                    &inst.comments,
                    inst.span,
                );
            }
            _ => {}
        }
        match (&cmd.kind, stages.last_mut()) {
            (CommandKind::From(from), _) => stages.push(StageSource {
                inst,
                from: from.clone(),
                commands: Vec::new(),
            }),
            (CommandKind::Arg(decls), None) => {
                meta.extend(decls.iter().cloned().map(|d| (d, cmd.span)));
            }
            (_, None) => {
                return Err(InstructionError::new(
                    ErrorKind::BeforeFrom(cmd.name().to_owned()),
                    cmd.keyword.span,
                ));
            }
            (_, Some(stage)) => stage.commands.push((inst, cmd)),
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

/// Step 3's stage names and keyword casing, with the file's options.
fn file_wide(stages: &[StageSource<'_>], config: &CheckConfig, sink: &mut Sink) {
    let mut seen = BTreeSet::new();
    let mut keywords = Vec::new();
    for stage in stages {
        if let Some(name) = &stage.from.name {
            reserved_stage_name::check(sink, config, &name.text, stage.inst.span);
            duplicate_stage_name::check(sink, config, &mut seen, &name.text, stage.inst.span);
        }
        keywords.push((stage.inst.keyword.text.as_str(), stage.inst.span));
        keywords.extend(
            stage
                .commands
                .iter()
                .map(|(_, c)| (c.keyword.text.as_str(), c.span)),
        );
    }
    consistent_instruction_casing::check(sink, config, &keywords);
}

/// The global ARGs (BuildKit's `buildMetaArgs`): the automatic ones, then each ARG before
/// the first FROM with its build arg (when `build_args` is given) or its default expanded
/// against the ARGs before it; an ARG without either adds nothing.
fn global_env(
    lexer: &Lexer,
    mut env: Vec<(String, String)>,
    meta: &[(ArgDecl, TextRange)],
    build_args: Option<&[(String, String)]>,
) -> Result<Vec<(String, String)>, InstructionError> {
    for (decl, span) in meta {
        let key = &decl.key.text;
        let given = build_args.and_then(|b| b.iter().rev().find(|(k, _)| k == key));
        let value = match (given, &decl.default) {
            (Some((_, v)), _) => v.clone(),
            (None, Some(default)) => lexer
                .process_word(&default.text, &env)
                .map_err(|e| expansion_error(&default.text, &e.to_string(), *span))?,
            (None, None) => continue,
        };
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.clone(), value)),
        }
    }
    Ok(env)
}

fn expansion_error(word: &str, cause: &str, span: TextRange) -> InstructionError {
    InstructionError::new(
        ErrorKind::Expansion(format!("failed to process {word:?}: {cause}")),
        span,
    )
}

/// Step 4 for one stage: expand its FROM with the global ARGs and check it.
fn resolve_from(
    lexer: &Lexer,
    globals: &[(String, String)],
    declared: &BTreeSet<String>,
    earlier: &[StageSource<'_>],
    stage: &StageSource<'_>,
    config: &CheckConfig,
    sink: &mut Sink,
) -> Result<Resolved, InstructionError> {
    let cfg = config.with_comments(&stage.inst.comments);
    let span = stage.inst.span;
    let from = &stage.from;
    let name = lexer
        .process_word_with_matches(&from.base.text, &globals)
        .map_err(|e| expansion_error(&from.base.text, &e.to_string(), span))?;
    undefined_arg_in_from::check(sink, &cfg, &name.unmatched, declared, span);
    if name.result.is_empty() {
        return Err(InstructionError::new(
            ErrorKind::BlankBase(from.base.text.clone()),
            from.base.span,
        ));
    }
    let platform = match &from.platform {
        None => None,
        Some(word) => {
            let p = lexer
                .process_word_with_matches(&word.text, &globals)
                .map_err(|e| expansion_error(&word.text, &e.to_string(), span))?;
            undefined_arg_in_from::check(sink, &cfg, &p.unmatched, declared, span);
            let target = globals
                .iter()
                .rev()
                .find(|(k, _)| k == "TARGETPLATFORM")
                .map(|(_, v)| v.as_str());
            redundant_target_platform::check(sink, &cfg, &word.text, &p, target, span);
            let stage_name = from.name.as_ref().map_or("", |n| n.text.as_str());
            from_platform_flag_const_disallowed::check(sink, &cfg, stage_name, &p, span);
            let parsed = Platform::parse(&p.result).map_err(|e| {
                InstructionError::new(
                    ErrorKind::InvalidPlatform(p.result.clone(), e.to_string()),
                    word.span,
                )
            })?;
            Some(parsed)
        }
    };
    let lower = name.result.to_ascii_lowercase();
    let base = match earlier
        .iter()
        .rposition(|s| s.from.name.as_ref().is_some_and(|n| n.text == lower))
    {
        Some(i) => Base::Stage(i),
        None if name.result == "scratch" => Base::Scratch,
        None => Base::Image(name.result),
    };
    Ok(Resolved { base, platform })
}

/// The target stage: `--target` (the last stage of that name) or the last stage.
fn find_target(
    stages: &[StageSource<'_>],
    target: Option<&str>,
) -> Result<usize, InstructionError> {
    let Some(t) = target else {
        return Ok(stages.len() - 1);
    };
    let lower = t.to_ascii_lowercase();
    stages
        .iter()
        .rposition(|s| s.from.name.as_ref().is_some_and(|n| n.text == lower))
        .ok_or_else(|| {
            let names: Vec<&str> = stages
                .iter()
                .filter_map(|s| s.from.name.as_ref().map(|n| n.text.as_str()))
                .collect();
            let err =
                InstructionError::new(ErrorKind::UnknownTarget(t.to_owned()), TextRange::default());
            match kiln_frontend::suggest::search(t, &names, false) {
                Some(close) => err.with_hint(format!("did you mean `{close}`?")),
                None => err,
            }
        })
}

/// The stages `target` needs: its base stage, the stages its `COPY --from` and
/// `RUN --mount from=` name (also in the ONBUILD triggers of its base stage), recursively.
fn needed(stages: &[StageSource<'_>], resolved: &[Resolved], target: usize) -> Vec<bool> {
    let by_name = |name: &str| {
        let lower = name.to_ascii_lowercase();
        stages
            .iter()
            .rposition(|s| s.from.name.as_ref().is_some_and(|n| n.text == lower))
    };
    let refs = |cmd: &Command, out: &mut Vec<usize>| match &cmd.kind {
        CommandKind::Copy(c) => {
            if let Some(from) = &c.from {
                let index = from
                    .text
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| i < stages.len());
                out.extend(index.or_else(|| by_name(&from.text)));
            }
        }
        CommandKind::Run(r) => {
            out.extend(
                r.mounts
                    .iter()
                    .filter_map(|m| m.from.as_deref().and_then(by_name)),
            );
        }
        _ => {}
    };
    let mut needed = vec![false; stages.len()];
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        for (_, cmd) in &stages[i].commands {
            refs(cmd, &mut stack);
        }
        if let Base::Stage(parent) = resolved[i].base {
            stack.push(parent);
            for (_, cmd) in &stages[parent].commands {
                if let CommandKind::Onbuild(o) = &cmd.kind {
                    refs(&o.trigger, &mut stack);
                }
            }
        }
    }
    needed
}

/// Step 5: the state of a stage that starts from scratch or an image, checking the image's
/// platform when the build knows it.
fn fresh_state(
    req: &Request<'_>,
    escape: char,
    stage: &StageSource<'_>,
    resolved: &Resolved,
    config: &CheckConfig,
    sink: &mut Sink,
) -> StageState {
    let expected = resolved
        .platform
        .clone()
        .unwrap_or_else(|| req.options.target_platform.clone());
    let mut env = Vec::new();
    let mut shell = Vec::new();
    let mut unknown_image = None;
    if let Base::Image(name) = &resolved.base {
        match req.images.and_then(|i| i.base_image(name, &expected)) {
            Some(image) => {
                if let Some(actual) = &image.platform {
                    invalid_base_image_platform::check(
                        sink,
                        config,
                        name,
                        &expected,
                        actual,
                        stage.inst.span,
                    );
                }
                env = image.env;
                shell = image.shell;
            }
            None => unknown_image = Some(name.clone()),
        }
    }
    if expected.os != "windows" && !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    StageState {
        scope: Scope::new(escape, env),
        declared: Vec::new(),
        shell,
        workdir_set: false,
        os: expected.os,
        unknown_image,
    }
}

/// Step 6: check a stage's instructions in its scope, keeping each as expanded (an ARG as
/// written) in `expanded`; its state at the end.
fn dispatch<'a>(
    req: &Request<'_>,
    config: &CheckConfig,
    sink: &mut Sink,
    parsed: &StageSource<'a>,
    mut state: StageState,
    ctx: ArgContext<'_>,
    expanded: &mut Vec<(&'a Instruction, Command)>,
) -> Result<StageState, InstructionError> {
    let mut cmd_seen = Tracker::default();
    let mut entrypoint_seen = Tracker::default();
    let mut healthcheck_seen = Tracker::default();
    let hint = state.unknown_image.as_ref().map(|image| {
        format!("kiln could not read the environment of the base image `{image}`, which may set it")
    });
    for (inst, cmd) in &parsed.commands {
        let cfg = config.with_comments(&inst.comments);
        let span = cmd.span;
        let keyword = cmd.keyword.text.as_str();
        let env_names: Vec<String> = state.scope.env().iter().map(|(k, _)| k.clone()).collect();
        let undefined = |sink: &mut Sink, state: &StageState| {
            let unmatched = state.scope.take_unmatched();
            undefined_var::check(
                sink,
                &cfg,
                &unmatched,
                &state.declared,
                &env_names,
                span,
                hint.as_deref(),
            );
        };
        if let CommandKind::Arg(decls) = &cmd.kind {
            for decl in decls {
                secrets_used_in_arg_or_env::check(sink, &cfg, "ARG", &decl.key.text, span);
                state.scope.take_unmatched();
                state
                    .scope
                    .declare_arg(decl, ctx.build_args, ctx.global_args)?;
                undefined(sink, &state);
                state.declared.push(decl.key.text.clone());
            }
            expanded.push((*inst, cmd.clone()));
            continue;
        }
        state.scope.take_unmatched();
        let done = expand_command(&mut state.scope, cmd, ctx)?;
        if matches!(cmd.kind, CommandKind::Expose(_)) {
            // BuildKit expands EXPOSE words without reporting what is unset.
            state.scope.take_unmatched();
        } else {
            undefined(sink, &state);
        }
        match &done.command.kind {
            CommandKind::Env(pairs) => {
                legacy_key_value_format::check(sink, &cfg, keyword, pairs, span);
                for kv in pairs {
                    secrets_used_in_arg_or_env::check(sink, &cfg, "ENV", &kv.key.text, span);
                }
            }
            CommandKind::Label(pairs) => {
                legacy_key_value_format::check(sink, &cfg, keyword, pairs, span);
            }
            CommandKind::Cmd(line) | CommandKind::Entrypoint(line) => {
                let tracker = if matches!(cmd.kind, CommandKind::Cmd(_)) {
                    &mut cmd_seen
                } else {
                    &mut entrypoint_seen
                };
                multiple_instructions_disallowed::check(sink, &cfg, tracker, keyword, span);
                json_args_recommended::check(
                    sink,
                    &cfg,
                    keyword,
                    line.prepend_shell,
                    &state.shell,
                    span,
                );
            }
            CommandKind::Healthcheck(_) => {
                multiple_instructions_disallowed::check(
                    sink,
                    &cfg,
                    &mut healthcheck_seen,
                    keyword,
                    span,
                );
            }
            CommandKind::Workdir(path) => workdir_relative_path::check(
                sink,
                &cfg,
                &mut state.workdir_set,
                &path.text,
                &state.os,
                span,
            ),
            CommandKind::Expose(ports) => {
                for port in ports {
                    expose_proto_casing::check(sink, &cfg, &port.text, span);
                    expose_invalid_format::check(sink, &cfg, &port.text, span);
                }
            }
            CommandKind::Shell(shell) => state.shell.clone_from(shell),
            CommandKind::Copy(c) => {
                if let (None, Some(ignore)) = (&c.from, req.ignore) {
                    for src in local_sources(&c.paths.sources) {
                        copy_ignored_file::check(sink, &cfg, ignore, false, src, span);
                    }
                }
            }
            CommandKind::Add(a) => {
                if let Some(ignore) = req.ignore {
                    for src in local_sources(&a.paths.sources) {
                        copy_ignored_file::check(sink, &cfg, ignore, true, src, span);
                    }
                }
            }
            _ => {}
        }
        expanded.push((*inst, done.command));
    }
    Ok(state)
}

/// The sources that come from the build context (not URLs, not Git).
fn local_sources(sources: &[kiln_syntax::Word]) -> impl Iterator<Item = &str> {
    sources
        .iter()
        .map(|w| w.text.as_str())
        .filter(|s| !is_url(s) && !is_git(s))
}
