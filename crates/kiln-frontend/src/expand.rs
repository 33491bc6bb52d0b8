//! Expansion of one typed instruction in its stage's scope, by BuildKit's rules: which
//! instructions and flags see `$VAR`, and what ARG and ENV change.
//!
//! Expanded (with the stage's environment: the base's env, then ENV and valued ARGs):
//! ADD and COPY sources, destination, `--chown`, `--chmod` (ADD also `--checksum`), heredoc
//! sources whose delimiter is unquoted (variables only; quotes kept); ENV and LABEL keys and
//! values; WORKDIR, USER, STOPSIGNAL and every VOLUME; EXPOSE (one word may become several);
//! the fields of `RUN --mount` except `from`; ARG defaults.
//!
//! Not expanded here: RUN, CMD, ENTRYPOINT and HEALTHCHECK commands (the shell does that at
//! run time), SHELL, MAINTAINER, ONBUILD triggers (expanded when they fire), `COPY --from`,
//! `--exclude`, `RUN --network` and `--security`, and ARG names.

use kiln_syntax::Word;

use crate::error::InstructionError;
use crate::instruction::run_mount::parse_mount;
use crate::instruction::{ArgDecl, Command, CommandKind, KeyValue};
use crate::scope::{ResolvedArg, Scope};

/// The ARG values a stage can draw on.
#[derive(Clone, Copy, Debug)]
pub struct ArgContext<'a> {
    /// `--build-arg` values.
    pub build_args: &'a [(String, String)],
    /// The resolved global ARGs (automatic ones included).
    pub global_args: &'a [ResolvedArg],
}

/// An instruction after expansion.
#[derive(Clone, Debug)]
pub struct Expanded {
    /// The instruction with every expanded word replaced by its value. ARG defaults hold the
    /// resolved values (`None` when the ARG has no value).
    pub command: Command,
    /// For ARG: the resolved ARGs, in order.
    pub args: Vec<ResolvedArg>,
}

/// Expand `cmd` in `scope`, applying its effect on the scope (ARG, ENV).
pub fn expand_command(
    scope: &mut Scope,
    cmd: &Command,
    ctx: ArgContext<'_>,
) -> Result<Expanded, InstructionError> {
    let mut out = cmd.clone();
    let mut resolved = Vec::new();
    let word = |scope: &Scope, w: &Word| -> Result<Word, InstructionError> {
        Ok(Word::new(scope.expand(w)?, w.span))
    };
    match &mut out.kind {
        CommandKind::Arg(decls) => {
            for d in decls.iter_mut() {
                let r = scope.declare_arg(d, ctx.build_args, ctx.global_args)?;
                *d = ArgDecl {
                    key: d.key.clone(),
                    default: r
                        .value
                        .clone()
                        .map(|v| Word::new(v, d.default.as_ref().map_or(d.key.span, |w| w.span))),
                    doc: d.doc.clone(),
                };
                resolved.push(r);
            }
        }
        CommandKind::Env(kvs) => {
            let pairs: Vec<(Word, Word)> = kvs
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect();
            let set = scope.apply_env(&pairs)?;
            for (kv, (k, v)) in kvs.iter_mut().zip(set) {
                *kv = KeyValue {
                    key: Word::new(k, kv.key.span),
                    value: Word::new(v, kv.value.span),
                    legacy: kv.legacy,
                };
            }
        }
        CommandKind::Label(kvs) => {
            for kv in kvs.iter_mut() {
                kv.key = word(scope, &kv.key)?;
                kv.value = word(scope, &kv.value)?;
            }
        }
        CommandKind::Copy(c) => {
            expand_paths(scope, &mut c.paths.sources, &mut c.paths.dest)?;
            expand_heredocs(scope, &mut c.paths.heredocs, cmd)?;
            expand_opt(scope, &mut c.flags.chown)?;
            expand_opt(scope, &mut c.flags.chmod)?;
        }
        CommandKind::Add(a) => {
            expand_paths(scope, &mut a.paths.sources, &mut a.paths.dest)?;
            expand_heredocs(scope, &mut a.paths.heredocs, cmd)?;
            expand_opt(scope, &mut a.flags.chown)?;
            expand_opt(scope, &mut a.flags.chmod)?;
            expand_opt(scope, &mut a.checksum)?;
            crate::instruction::copy::check_checksum_sources(
                a.checksum.as_ref(),
                &a.paths.sources,
            )?;
            if let Some(c) = &a.checksum {
                crate::instruction::copy::check_checksum_digest(c)?;
            }
        }
        CommandKind::Workdir(w) | CommandKind::User(w) | CommandKind::StopSignal(w) => {
            *w = word(scope, w)?;
        }
        CommandKind::Volume(ws) => {
            for w in ws.iter_mut() {
                *w = word(scope, w)?;
            }
        }
        CommandKind::Expose(ws) => {
            let mut ports = Vec::new();
            for w in ws.iter() {
                ports.extend(
                    scope
                        .expand_words(w)?
                        .into_iter()
                        .map(|p| Word::new(p, w.span)),
                );
            }
            *ws = ports;
        }
        CommandKind::Run(r) => {
            let expand = |v: &str| {
                scope
                    .expand(&Word::new(v, kiln_syntax::TextRange::default()))
                    .map_err(|e| e.kind)
            };
            for (m, spec) in r.mounts.iter_mut().zip(&r.mount_specs) {
                *m = parse_mount(&spec.text, Some(&expand))
                    .map_err(|k| InstructionError::new(k, spec.span))?;
            }
        }
        CommandKind::Cmd(_)
        | CommandKind::Entrypoint(_)
        | CommandKind::From(_)
        | CommandKind::Healthcheck(_)
        | CommandKind::Maintainer(_)
        | CommandKind::Onbuild(_)
        | CommandKind::Shell(_) => {}
    }
    Ok(Expanded {
        command: out,
        args: resolved,
    })
}

fn expand_paths(
    scope: &Scope,
    sources: &mut [Word],
    dest: &mut Word,
) -> Result<(), InstructionError> {
    for s in sources.iter_mut() {
        *s = Word::new(scope.expand(s)?, s.span);
    }
    *dest = Word::new(scope.expand(dest)?, dest.span);
    Ok(())
}

fn expand_opt(scope: &Scope, w: &mut Option<Word>) -> Result<(), InstructionError> {
    if let Some(w) = w {
        *w = Word::new(scope.expand(w)?, w.span);
    }
    Ok(())
}

fn expand_heredocs(
    scope: &Scope,
    docs: &mut [crate::instruction::HeredocSource],
    cmd: &Command,
) -> Result<(), InstructionError> {
    for d in docs.iter_mut().filter(|d| d.expand) {
        d.data = scope.expand_raw(&Word::new(d.data.clone(), cmd.span))?;
    }
    Ok(())
}
