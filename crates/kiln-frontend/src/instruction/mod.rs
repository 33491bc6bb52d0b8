//! Typed instructions: what each of the 18 Dockerfile instructions says, with its flags
//! checked, as BuildKit's `instructions.ParseInstruction` does.
//!
//! Parsing here is purely syntactic: variables are not expanded yet (that happens per stage,
//! in `scope`, once ARG and ENV values are known).

mod chmod;
pub(crate) mod copy;
mod healthcheck;
mod run;
pub mod run_mount;

use kiln_syntax::{Heredoc, Instruction, TextRange, Word};

pub use chmod::Chmod;
pub use copy::{Add, Copy, CopyFlags, HeredocSource, SourcesAndDest, is_git, is_url};
pub use healthcheck::{Healthcheck, parse_go_duration};
pub use run::{NetworkMode, Run, SecurityMode};
pub use run_mount::{Mount, MountType, Sharing};

use crate::error::{ErrorKind, InstructionError};
use crate::flags::{FlagKind, Flags};

/// One typed instruction with its location.
#[derive(Clone, Debug)]
pub struct Command {
    /// What it says.
    pub kind: CommandKind,
    /// The keyword as written.
    pub keyword: Word,
    /// The whole instruction in the source.
    pub span: TextRange,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// The logical line as written (for history and messages).
    pub original: String,
    /// The flags that were given (BuildKit's `FlagsUsed`).
    pub flags_used: Vec<&'static str>,
}

impl Command {
    /// The instruction name in upper case (`RUN`, `COPY` ...).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// A key and value of ENV or LABEL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (not yet expanded).
    pub key: Word,
    /// The value (not yet expanded; quotes still in place).
    pub value: Word,
    /// Written in the legacy `KEY value` form (no `=`).
    pub legacy: bool,
}

/// One name of an ARG instruction, with its optional default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name (not yet expanded).
    pub key: Word,
    /// The default (not yet expanded), if `=` was written.
    pub default: Option<Word>,
    /// The `# NAME description` comment directly above, BuildKit's `DocComment`.
    pub doc: Option<String>,
}

/// A command line of RUN, CMD, ENTRYPOINT, or HEALTHCHECK CMD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the words; shell form: one string.
    pub args: Vec<String>,
    /// Shell form: run through the image's SHELL.
    pub prepend_shell: bool,
    /// Heredoc bodies attached to the instruction (RUN only).
    pub files: Vec<Heredoc>,
}

impl CommandLine {
    /// Whether the command is a lone heredoc (`RUN <<EOF` with nothing else on the line): its
    /// body is then the script itself, as BuildKit runs it.
    pub fn is_heredoc_script(&self) -> bool {
        self.prepend_shell
            && !self.files.is_empty()
            && self.args.len() == 1
            && matches!(kiln_syntax::parse_heredoc_word(&self.args[0]), Ok(Some(_)))
    }
}

/// Why an ONBUILD trigger of a base image cannot fire.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// It is not Dockerfile text.
    #[error("invalid ONBUILD trigger `{text}` of the base image")]
    Syntax {
        /// The trigger as the image config stores it.
        text: String,
        /// Why.
        #[source]
        source: kiln_syntax::ParseError,
    },
    /// Its instruction is not valid.
    #[error("invalid ONBUILD trigger `{text}` of the base image")]
    Instruction {
        /// The trigger as the image config stores it.
        text: String,
        /// Why.
        #[source]
        source: Box<InstructionError>,
    },
}

/// An ONBUILD trigger as an image config stores it (`COPY a b`, or `RUN <<EOF` with its
/// body and terminator on the lines after), parsed into the instructions it fires.
pub fn parse_trigger(text: &str) -> Result<Vec<Command>, TriggerError> {
    let parsed = kiln_syntax::parse(text).map_err(|source| TriggerError::Syntax {
        text: text.to_owned(),
        source,
    })?;
    parsed
        .instructions
        .iter()
        .map(|inst| {
            parse_instruction(inst).map_err(|source| TriggerError::Instruction {
                text: text.to_owned(),
                source: Box::new(source),
            })
        })
        .collect()
}

/// FROM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    /// The base as written (`alpine:${V}`, `scratch`, a stage name).
    pub base: Word,
    /// The stage name after `AS`, lowercased.
    pub name: Option<Word>,
    /// `--platform`, as written.
    pub platform: Option<Word>,
}

/// ONBUILD: a trigger instruction stored in the image for later builds.
#[derive(Clone, Debug)]
pub struct Onbuild {
    /// The trigger as text (without `ONBUILD `), as it goes into the image config.
    pub expression: String,
    /// The trigger, parsed.
    pub trigger: Box<Command>,
}

/// What an instruction says.
#[derive(Clone, Debug)]
pub enum CommandKind {
    /// `ADD`.
    Add(Add),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `CMD`.
    Cmd(CommandLine),
    /// `COPY`.
    Copy(Copy),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `EXPOSE`.
    Expose(Vec<Word>),
    /// `FROM`.
    From(From),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER` (deprecated; becomes the `author` field).
    Maintainer(Word),
    /// `ONBUILD`.
    Onbuild(Onbuild),
    /// `RUN`.
    Run(Run),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(Word),
    /// `USER`.
    User(Word),
    /// `VOLUME`.
    Volume(Vec<Word>),
    /// `WORKDIR`.
    Workdir(Word),
}

impl CommandKind {
    /// The instruction name in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Add(_) => "ADD",
            Self::Arg(_) => "ARG",
            Self::Cmd(_) => "CMD",
            Self::Copy(_) => "COPY",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Env(_) => "ENV",
            Self::Expose(_) => "EXPOSE",
            Self::From(_) => "FROM",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Label(_) => "LABEL",
            Self::Maintainer(_) => "MAINTAINER",
            Self::Onbuild(_) => "ONBUILD",
            Self::Run(_) => "RUN",
            Self::Shell(_) => "SHELL",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::User(_) => "USER",
            Self::Volume(_) => "VOLUME",
            Self::Workdir(_) => "WORKDIR",
        }
    }
}

/// What one parse function sees (BuildKit's `parseRequest`).
pub(crate) struct Request<'a> {
    pub inst: &'a Instruction,
    pub args: &'a [Word],
}

impl Request<'_> {
    fn err(&self, kind: ErrorKind) -> InstructionError {
        InstructionError::new(kind, self.inst.span)
    }

    /// The span of all arguments, or of the keyword when there are none.
    fn args_span(&self) -> TextRange {
        match (self.args.first(), self.args.last()) {
            (Some(a), Some(b)) => a.span.cover(b.span),
            _ => self.inst.keyword.span,
        }
    }

    fn flags(&self, declared: &[(&'static str, FlagKind)]) -> Result<Flags, InstructionError> {
        Flags::parse(&self.inst.flags, declared).map_err(|e| {
            if !matches!(e.kind, ErrorKind::UnknownFlag { .. }) {
                return e;
            }
            let name = self.inst.keyword.text.to_ascii_uppercase();
            if declared.is_empty() {
                return e.with_hint(format!("`{name}` takes no flags"));
            }
            let list: Vec<String> = declared.iter().map(|(n, _)| format!("--{n}")).collect();
            e.with_hint(format!("`{name}` takes {}", list.join(", ")))
        })
    }

    fn exactly_one(&self, name: &'static str) -> Result<Word, InstructionError> {
        match self.args {
            [one] => Ok(one.clone()),
            _ => Err(self.err(ErrorKind::ExactlyOneArgument(name))),
        }
    }

    fn at_least_one(&self, name: &'static str) -> Result<(), InstructionError> {
        if self.args.is_empty() {
            return Err(self.err(ErrorKind::AtLeastOneArgument(name)));
        }
        Ok(())
    }

    /// BuildKit's `handleJSONArgs`: exec form keeps the words, shell form joins them.
    fn command_line(&self) -> CommandLine {
        let texts: Vec<String> = self.args.iter().map(|w| w.text.clone()).collect();
        let args = if self.inst.json || texts.is_empty() {
            texts
        } else {
            vec![texts.join(" ")]
        };
        CommandLine {
            args,
            prepend_shell: !self.inst.json,
            files: self.inst.heredocs.clone(),
        }
    }
}

/// Parse one instruction from the syntax tree.
pub fn parse_instruction(inst: &Instruction) -> Result<Command, InstructionError> {
    let req = Request {
        inst,
        args: &inst.args,
    };
    let name = inst.name();
    let mut used = Vec::new();
    let kind = match name.as_str() {
        "env" => {
            used = req.flags(&[])?.used();
            CommandKind::Env(key_values(&req, "ENV")?)
        }
        "label" => {
            used = req.flags(&[])?.used();
            CommandKind::Label(key_values(&req, "LABEL")?)
        }
        "maintainer" => {
            used = req.flags(&[])?.used();
            CommandKind::Maintainer(req.exactly_one("MAINTAINER")?)
        }
        "add" => {
            let (add, u) = copy::parse_add(&req)?;
            used = u;
            CommandKind::Add(add)
        }
        "copy" => {
            let (copy, u) = copy::parse_copy(&req)?;
            used = u;
            CommandKind::Copy(copy)
        }
        "from" => {
            let flags = req.flags(&[("platform", FlagKind::String)])?;
            used = flags.used();
            CommandKind::From(parse_from(&req, &flags)?)
        }
        "onbuild" => CommandKind::Onbuild(parse_onbuild(&req)?),
        "workdir" => {
            used = req.flags(&[])?.used();
            CommandKind::Workdir(req.exactly_one("WORKDIR")?)
        }
        "run" => {
            let (run, u) = run::parse_run(&req)?;
            used = u;
            CommandKind::Run(run)
        }
        "cmd" => {
            used = req.flags(&[])?.used();
            CommandKind::Cmd(req.command_line())
        }
        "entrypoint" => {
            used = req.flags(&[])?.used();
            CommandKind::Entrypoint(req.command_line())
        }
        "healthcheck" => {
            let (h, u) = healthcheck::parse(&req)?;
            used = u;
            CommandKind::Healthcheck(h)
        }
        "expose" => {
            used = req.flags(&[])?.used();
            req.at_least_one("EXPOSE")?;
            CommandKind::Expose(req.args.to_vec())
        }
        "user" => {
            used = req.flags(&[])?.used();
            CommandKind::User(req.exactly_one("USER")?)
        }
        "volume" => {
            used = req.flags(&[])?.used();
            req.at_least_one("VOLUME")?;
            let mut vols = Vec::new();
            for w in req.args {
                let t = w.text.trim();
                if t.is_empty() {
                    return Err(InstructionError::new(ErrorKind::EmptyVolume, w.span));
                }
                vols.push(Word::new(t, w.span));
            }
            CommandKind::Volume(vols)
        }
        "stopsignal" => {
            used = req.flags(&[])?.used();
            CommandKind::StopSignal(req.exactly_one("STOPSIGNAL")?)
        }
        "arg" => {
            used = req.flags(&[])?.used();
            CommandKind::Arg(parse_arg(&req)?)
        }
        "shell" => {
            used = req.flags(&[])?.used();
            let line = req.command_line();
            if line.args.is_empty() {
                return Err(req.err(ErrorKind::AtLeastOneArgument("SHELL")));
            }
            if !inst.json {
                return Err(InstructionError::new(
                    ErrorKind::ShellNotJson,
                    req.args_span(),
                ));
            }
            CommandKind::Shell(line.args)
        }
        _ => {
            return Err(InstructionError::new(
                ErrorKind::UnknownInstruction {
                    word: inst.keyword.text.clone(),
                    suggestion: crate::flags::suggest_as_buildkit(
                        &inst.keyword.text,
                        &[
                            "add",
                            "arg",
                            "cmd",
                            "copy",
                            "entrypoint",
                            "env",
                            "expose",
                            "from",
                            "healthcheck",
                            "label",
                            "maintainer",
                            "onbuild",
                            "run",
                            "shell",
                            "stopsignal",
                            "user",
                            "volume",
                            "workdir",
                        ],
                    ),
                },
                inst.keyword.span,
            ));
        }
    };
    Ok(Command {
        kind,
        keyword: inst.keyword.clone(),
        span: inst.span,
        start_line: inst.start_line,
        end_line: inst.end_line,
        original: inst.original.clone(),
        flags_used: used,
    })
}

fn key_values(req: &Request<'_>, name: &'static str) -> Result<Vec<KeyValue>, InstructionError> {
    req.at_least_one(name)?;
    if !req.args.len().is_multiple_of(3) {
        return Err(req.err(ErrorKind::TooManyArguments(name)));
    }
    req.args
        .chunks(3)
        .map(|t| {
            if t[0].text.is_empty() {
                return Err(InstructionError::new(
                    ErrorKind::BlankNames(name),
                    t[0].span,
                ));
            }
            Ok(KeyValue {
                key: t[0].clone(),
                value: t[1].clone(),
                legacy: t[2].text.is_empty(),
            })
        })
        .collect()
}

fn parse_from(req: &Request<'_>, flags: &Flags) -> Result<From, InstructionError> {
    let args = req.args;
    let ok = args.len() == 1 || (args.len() == 3 && args[1].text.eq_ignore_ascii_case("AS"));
    if !ok {
        return Err(InstructionError::new(
            ErrorKind::FromArguments,
            req.args_span(),
        ));
    }
    let name = if args.len() == 3 {
        let n = args[2].text.to_ascii_lowercase();
        if !valid_stage_name(&n) {
            return Err(InstructionError::new(
                ErrorKind::InvalidStageName(args[2].text.clone()),
                args[2].span,
            ));
        }
        Some(Word::new(n, args[2].span))
    } else {
        None
    };
    Ok(From {
        base: args[0].clone(),
        name,
        platform: flags.string("platform").map(|(v, s)| Word::new(v, s)),
    })
}

/// BuildKit's stage name rule: `^[a-z][a-z0-9-_\.]*$` (after lowercasing).
pub fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_onbuild(req: &Request<'_>) -> Result<Onbuild, InstructionError> {
    req.flags(&[])?;
    let Some(trigger) = req.inst.trigger.as_deref() else {
        return Err(req.err(ErrorKind::AtLeastOneArgument("ONBUILD")));
    };
    let upper = trigger.keyword.text.to_ascii_uppercase();
    match upper.as_str() {
        "ONBUILD" => {
            return Err(InstructionError::new(
                ErrorKind::OnbuildChaining,
                trigger.keyword.span,
            ));
        }
        "MAINTAINER" | "FROM" => {
            return Err(InstructionError::new(
                ErrorKind::OnbuildTrigger(upper),
                trigger.keyword.span,
            ));
        }
        _ => {}
    }
    let parsed = parse_instruction(trigger)?;
    // BuildKit's trigger text: the line after `ONBUILD`, then each heredoc's body and
    // terminator on lines of their own, so that the trigger parses whole when it fires.
    let mut expression = strip_onbuild(&req.inst.original);
    for h in req.inst.heredocs.iter().chain(&trigger.heredocs) {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild {
        expression,
        trigger: Box::new(parsed),
    })
}

/// Remove `(?i)^\s*ONBUILD\s*` from the original line.
fn strip_onbuild(original: &str) -> String {
    let t = original.trim_start();
    let rest = t
        .get(7..)
        .filter(|_| t[..7].eq_ignore_ascii_case("onbuild"))
        .unwrap_or(t);
    rest.trim_start().to_owned()
}

fn parse_arg(req: &Request<'_>) -> Result<Vec<ArgDecl>, InstructionError> {
    req.at_least_one("ARG")?;
    Ok(req
        .args
        .iter()
        .map(|w| {
            let (key, default) = match w.text.split_once('=') {
                Some((k, v)) => {
                    let eq = w.span.start + k.len();
                    (
                        Word::new(k, TextRange::new(w.span.start, eq.min(w.span.end))),
                        Some(Word::new(
                            v,
                            TextRange::new((eq + 1).min(w.span.end), w.span.end),
                        )),
                    )
                }
                None => (w.clone(), None),
            };
            let doc = doc_comment(&req.inst.comments, &key.text);
            ArgDecl { key, default, doc }
        })
        .collect())
}

/// BuildKit's doc comments: the last comment line whose first word is `name`.
pub(crate) fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    comments
        .iter()
        .rev()
        .find(|c| c.split_whitespace().next() == Some(name))
        .map(|c| c[name.len()..].trim().to_owned())
}
