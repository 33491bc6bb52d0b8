//! Frontend errors: BuildKit's messages, each with the source range it is about and a hint.

use kiln_syntax::{Diagnostic, TextRange};

/// What is wrong with an instruction or the stage structure. Messages follow BuildKit's
/// wording (`instructions/parse.go`, `bflag.go`, `runmount.go`, `dockerfile2llb`) so that
/// users searching for them find the same answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // --- flags (bflag.go)
    /// A flag word without the leading `--`.
    #[error("arg should start with -- : {0}")]
    FlagNoDashes(String),
    /// A flag the instruction does not take.
    #[error("unknown flag: --{flag}{}", suggestion.as_ref().map(|s| format!(" (did you mean --{s}?)")).unwrap_or_default())]
    UnknownFlag {
        /// The flag as written, without `--`.
        flag: String,
        /// A declared flag with a close name.
        suggestion: Option<String>,
    },
    /// A non-repeatable flag given twice.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// `--flag` without `=value`, or a bool flag with an empty value.
    #[error("missing a value on flag: --{0}")]
    FlagMissingValue(String),
    /// A bool flag with a value other than true/false.
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    FlagNotBool {
        /// The flag.
        flag: String,
        /// What was given.
        value: String,
    },

    // --- argument counts (parse.go)
    /// Keyword-only instructions that need exactly one argument.
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    /// Instructions that need at least one argument.
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    /// COPY/ADD with a single argument.
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    /// ENV/LABEL with an argument list that is not made of triples.
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(&'static str),
    /// ENV/LABEL with an empty name (`ENV =x`).
    #[error("{0} names can not be blank")]
    BlankNames(&'static str),
    /// FROM with two or more than three words, or three without `AS`.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// A stage name with characters BuildKit rejects.
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    /// A keyword kiln does not know, and the instruction it is closest to.
    #[error("unknown instruction: {word}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        /// The keyword as written.
        word: String,
        /// A close instruction, in the keyword's case (BuildKit's `suggest.Search`).
        suggestion: Option<String>,
    },
    /// `ONBUILD ONBUILD ...`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChaining,
    /// `ONBUILD FROM` / `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    /// SHELL in shell form.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `HEALTHCHECK NONE something`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    /// `HEALTHCHECK CMD` with nothing after it.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// `HEALTHCHECK FOO`.
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// A HEALTHCHECK duration below the minimum.
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(String),
    /// A negative HEALTHCHECK duration.
    #[error("Interval {0:?} cannot be negative")]
    IntervalNegative(String),
    /// A HEALTHCHECK duration that is not a Go duration.
    #[error("time: invalid duration {0:?}")]
    InvalidDuration(String),
    /// `--retries` that is not a number.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    InvalidRetries(String),
    /// `--retries=-1`.
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    /// COPY/ADD with a heredoc as destination.
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    /// `COPY http://...`.
    #[error("source can't be a URL for COPY")]
    CopyFromUrl,
    /// `--chmod` that is neither an octal mode up to 07777 nor a symbolic mode.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    InvalidChmod(String),
    /// `--checksum` on a local source.
    #[error("checksum requires HTTP(S) or Git sources")]
    ChecksumSource,
    /// `--checksum` that is not a digest kiln can check, in go-digest's words (`invalid
    /// checksum digest format`, `unsupported digest algorithm`, `invalid checksum digest
    /// length`), which BuildKit prints.
    #[error("{reason}: `{value}`")]
    ChecksumDigest {
        /// go-digest's reason.
        reason: &'static str,
        /// The value, expanded.
        value: String,
    },
    /// A `$` in `--from`.
    #[error(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    FromExpansion,
    /// `RUN --network=x`.
    #[error("invalid network mode {0:?}")]
    InvalidNetwork(String),
    /// `RUN --security=x`.
    #[error("security {0:?} is not valid")]
    InvalidSecurity(String),
    /// `RUN --device` naming two devices.
    #[error("device name already set to {0}")]
    DeviceNameSet(String),

    // --- RUN --mount (runmount.go)
    /// The mount spec is not valid CSV.
    #[error("failed to parse csv mounts: {0}")]
    MountCsv(String),
    /// A field without `=` other than the bare booleans.
    #[error("invalid field '{0}' must be a key=value pair")]
    MountField(String),
    /// A key that does not apply to this mount type.
    #[error("unexpected key '{key}' for mount type '{typ}'")]
    MountKeyForType {
        /// The key.
        key: String,
        /// The mount type.
        typ: String,
    },
    /// A key no mount type knows.
    #[error("unexpected key '{key}' in '{field}'{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    MountUnknownKey {
        /// The key.
        key: String,
        /// The whole field.
        field: String,
        /// A close known key.
        suggestion: Option<String>,
    },
    /// `from=$X` in a mount.
    #[error("'{0}' doesn't support variable expansion, define alias stage instead")]
    MountFromExpansion(String),
    /// `type=x`.
    #[error("unsupported mount type {typ:?}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    MountType {
        /// What was given.
        typ: String,
        /// A close valid type.
        suggestion: Option<String>,
    },
    /// A value that does not parse for its key.
    #[error("invalid value for {key}: {value}")]
    MountValue {
        /// The key.
        key: String,
        /// What was given.
        value: String,
    },
    /// `sharing=x`.
    #[error("unsupported sharing value {0:?}")]
    MountSharing(String),
    /// mode/uid/gid that do not parse.
    #[error("invalid value {value} for {key}")]
    MountNumber {
        /// `mode`, `uid` or `gid`.
        key: &'static str,
        /// What was given.
        value: String,
    },
    /// mode/uid/gid on a bind or tmpfs mount.
    #[error("{key} not allowed for {typ:?} type mounts")]
    MountFileInfo {
        /// `mode`, `uid` or `gid`.
        key: &'static str,
        /// The mount type.
        typ: String,
    },
    /// `sharing=` on a mount that is not a cache.
    #[error("invalid cache sharing set for {0} mount")]
    MountSharingType(String),
    /// A secret mount with `from=`.
    #[error("secret mount should not have a from")]
    SecretFrom,
    /// A secret mount with `sharing=`.
    #[error("secret mount should not define sharing")]
    SecretSharing,
    /// A secret mount with neither id nor target.
    #[error("invalid secret mount. one of source, target required")]
    SecretNoTarget,
    /// A secret mount with both source and id.
    #[error("both source and id can't be set")]
    SecretSourceAndId,

    // --- shell expansion
    /// A word whose variables could not be expanded.
    #[error("{0}")]
    Expansion(String),

    // --- stages (dockerfile2llb)
    /// No FROM before the first build instruction.
    #[error("no build stage in current context")]
    NoStage,
    /// Only ARG may come before the first FROM.
    #[error("{0} is not allowed before the first FROM; only ARG is")]
    BeforeFrom(String),
    /// Two stages share a name.
    #[error("duplicate stage name {0:?}")]
    DuplicateStage(String),
    /// `--target` names no stage.
    #[error("target stage {0:?} could not be found")]
    UnknownTarget(String),
    /// A stage depends on itself through FROM, `COPY --from` or a mount.
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
    /// `COPY --from=N` with N not a stage.
    #[error("invalid stage index {0}")]
    StageIndex(String),
    /// `COPY --from` or `RUN --mount from=` naming a stage defined later.
    #[error("{}", if *mount { format!("cannot mount from stage {from:?} to {current:?}, stage needs to be defined before current command") } else { format!("cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}") })]
    LaterStage {
        /// The reference.
        from: String,
        /// The current stage.
        current: String,
        /// Whether it is a mount (else a copy).
        mount: bool,
    },
    /// FROM with an empty base after expansion.
    #[error("base name ({0}) should not be blank")]
    BlankBase(String),
    /// A base image reference that is not valid.
    #[error("invalid reference format: {0:?}")]
    InvalidReference(String),
    /// `--platform` that does not parse.
    #[error("failed to parse platform {0}: {1}")]
    InvalidPlatform(String, String),
}

/// An error with the source range it is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct InstructionError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The bytes it is about.
    pub span: TextRange,
    /// What would be valid instead.
    pub hint: Option<String>,
}

impl InstructionError {
    /// An error at `span`, with the default hint for its kind.
    pub fn new(kind: ErrorKind, span: TextRange) -> Self {
        let hint = default_hint(&kind);
        Self { kind, span, hint }
    }

    /// Replace the hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// This error as a [`Diagnostic`] (rule `InstructionError`), for rendering.
    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::error("InstructionError", self.span, self.kind.to_string())
            .with_hint(self.hint.clone())
    }
}

impl From<&InstructionError> for Diagnostic {
    fn from(e: &InstructionError) -> Self {
        e.to_diagnostic()
    }
}

/// The usage line of an instruction, for hints.
pub(crate) fn usage(name: &str) -> Option<&'static str> {
    Some(match name {
        "ADD" => "ADD [--chown=<user>] [--chmod=<mode>] <src>... <dest>",
        "ARG" => "ARG <name>[=<default>] ...",
        "COPY" => "COPY [--from=<stage>] [--chown=<user>] [--chmod=<mode>] <src>... <dest>",
        "ENV" => "ENV <key>=<value> ...",
        "EXPOSE" => "EXPOSE <port>[/<protocol>] ...",
        "HEALTHCHECK" => "HEALTHCHECK [options] CMD <command>` or `HEALTHCHECK NONE",
        "LABEL" => "LABEL <key>=<value> ...",
        "MAINTAINER" => "MAINTAINER <name>` (deprecated: use `LABEL maintainer=<name>",
        "ONBUILD" => "ONBUILD <instruction>",
        "STOPSIGNAL" => "STOPSIGNAL <signal>",
        "USER" => "USER <user>[:<group>]",
        "VOLUME" => "VOLUME <path> ...",
        "WORKDIR" => "WORKDIR <path>",
        "SHELL" => "SHELL [\"executable\", \"parameters\"]",
        _ => return None,
    })
}

fn default_hint(kind: &ErrorKind) -> Option<String> {
    let s = match kind {
        ErrorKind::ExactlyOneArgument(kw)
        | ErrorKind::AtLeastOneArgument(kw)
        | ErrorKind::TooManyArguments(kw)
        | ErrorKind::BlankNames(kw) => format!("write `{}`", usage(kw)?),
        ErrorKind::FlagNoDashes(_) | ErrorKind::FlagMissingValue(_) => {
            "flags are written `--name=value` before the arguments".into()
        }
        ErrorKind::DuplicateFlag(_) => "give the flag once".into(),
        ErrorKind::FlagNotBool { .. } => "write `--flag`, `--flag=true` or `--flag=false`".into(),
        ErrorKind::OnbuildChaining | ErrorKind::OnbuildTrigger(_) => {
            "ONBUILD triggers may be any instruction but FROM, MAINTAINER and ONBUILD".into()
        }
        ErrorKind::EmptyVolume => "write `VOLUME /path`".into(),
        ErrorKind::HealthcheckNoneArgs | ErrorKind::HealthcheckMissingCommand => {
            format!("write `{}`", usage("HEALTHCHECK")?)
        }
        ErrorKind::IntervalTooShort(_)
        | ErrorKind::IntervalNegative(_)
        | ErrorKind::InvalidDuration(_) => {
            "durations are Go durations such as `30s`, `1m30s` or `500ms`, at least 1ms (0 means the default)".into()
        }
        ErrorKind::InvalidRetries(_) | ErrorKind::NegativeRetries(_) => {
            "write a whole number of retries, e.g. `--retries=3`".into()
        }
        ErrorKind::HeredocDestination(kw) => format!("the last argument of {kw} is the destination path; put heredocs before it"),
        ErrorKind::CopyFromUrl => "use `ADD` to download a URL".into(),
        ErrorKind::ChecksumDigest { .. } => "write `--checksum=sha256:` and the 64 lowercase hex digits of the file's SHA-256".into(),
        ErrorKind::ChecksumSource => "`--checksum` only applies to `http(s)://` or Git sources".into(),
        ErrorKind::DeviceNameSet(_) => "give one device per `--device` flag".into(),
        ErrorKind::MountCsv(_) | ErrorKind::MountField(_) | ErrorKind::MountUnknownKey { .. } => {
            "write `--mount=type=<type>,target=<path>[,key=value...]`".into()
        }
        ErrorKind::MountKeyForType { .. } | ErrorKind::MountFileInfo { .. } => {
            "`required` is for secret and ssh mounts, `size` for tmpfs, `mode`/`uid`/`gid` for cache, secret and ssh".into()
        }
        ErrorKind::MountValue { .. } | ErrorKind::MountNumber { .. } => {
            "booleans are `true`/`false`, `mode` is octal, `uid`/`gid` are numbers, `size` is like `64m`".into()
        }
        ErrorKind::MountSharingType(_) | ErrorKind::SecretSharing => "`sharing` only applies to `type=cache`".into(),
        ErrorKind::SecretFrom => "a secret comes from `--secret id=...`, not from a stage".into(),
        ErrorKind::SecretNoTarget | ErrorKind::SecretSourceAndId => "write `--mount=type=secret,id=<id>[,target=<path>]`".into(),
        ErrorKind::Expansion(_) => {
            "variables are `$NAME` or `${NAME}` (with `:-`, `:+`, `#`, `%`, `/` modifiers); write `\\$` for a literal `$`".into()
        }
        ErrorKind::StageIndex(_) => "stage indexes count FROM lines from 0".into(),
        ErrorKind::BlankBase(_) => "give the ARG a default, or pass `--build-arg NAME=VALUE`".into(),
        ErrorKind::InvalidReference(_) => "image references look like `name[:tag]` or `registry/name@sha256:...`".into(),
        ErrorKind::InvalidPlatform(..) => "write `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`".into(),
        ErrorKind::NoDestination(kw) => format!("write `{kw} <src>... <dest>`"),
        ErrorKind::FromArguments => "write `FROM <image> [AS <name>]`".into(),
        ErrorKind::InvalidStageName(_) => {
            "stage names start with a letter and hold only letters, digits, `-`, `_` and `.`".into()
        }
        ErrorKind::UnknownInstruction { .. } => "instructions are ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME and WORKDIR".into(),
        ErrorKind::ShellNotJson => "write `SHELL [\"/bin/sh\", \"-c\"]`".into(),
        ErrorKind::InvalidChmod(_) => {
            "write an octal mode such as `--chmod=0755`, or a symbolic one such as `--chmod=u+x,go=rx`".into()
        }
        ErrorKind::InvalidNetwork(_) => "valid modes are `default`, `none` and `host`".into(),
        ErrorKind::InvalidSecurity(_) => "valid values are `sandbox` and `insecure`".into(),
        ErrorKind::MountType { .. } => "mount types are `bind`, `cache`, `tmpfs`, `secret` and `ssh`".into(),
        ErrorKind::MountSharing(_) => "sharing is `shared`, `private` or `locked`".into(),
        ErrorKind::HealthcheckType(_) => "write `HEALTHCHECK [options] CMD <command>` or `HEALTHCHECK NONE`".into(),
        ErrorKind::BeforeFrom(_) | ErrorKind::NoStage => "start the stage with `FROM <image>`".into(),
        ErrorKind::DuplicateStage(_) => "give each stage its own name after `AS`".into(),
        ErrorKind::LaterStage { .. } | ErrorKind::Cycle(_) => {
            "move the stage it refers to above this one; stages can only use earlier stages".into()
        }
        ErrorKind::FromExpansion | ErrorKind::MountFromExpansion(_) => {
            "declare `ARG` before the first FROM and add a stage `FROM ${ARG} AS alias`, then use the alias".into()
        }
        _ => return None,
    };
    Some(s)
}
