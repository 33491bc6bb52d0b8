//! BuildKit's Dockerfile build checks: all 22 rules of its linter, under BuildKit's rule
//! names, messages, URLs and line ranges, reported as [`Diagnostic`]s.
//!
//! [`check`] walks a parsed Dockerfile the way BuildKit's `dockerfile2llb` does when it lints:
//! the parser's warnings, each instruction as it is parsed, the stage names and keyword
//! casing, the FROM lines against the global ARGs, then every stage's instructions with
//! variables expanded in the stage's scope. The check options come from the `# check=`
//! directive or the `BUILDKIT_DOCKERFILE_CHECK` build arg, which replaces it; a `# check=`
//! comment right above an instruction adds to them for that instruction ([`CheckConfig`]).
//! With `error=true`, [`Report::violation`] says which rules make the build fail.
//!
//! What the checks need from outside comes from the caller, and is optional: the
//! `.dockerignore` patterns (as `kiln-context`'s matcher, for `CopyIgnoredFile`) and what the
//! build resolved of each base image (through [`BaseImages`]: its platform for
//! `InvalidBaseImagePlatform`, its environment and shell for `UndefinedVar` and
//! `JSONArgsRecommended`). This crate reads no file, resolves no image and runs nothing; it
//! knows image references only as text (`kiln-oci`'s reference grammar). Rendering the
//! diagnostics (text, JSON, SARIF) is the binary's job.
//!
//! Each rule is one module of [`rules`], whose doc comment is the rule's documentation
//! ([`Rule::documentation`]).
//!
//! Besides BuildKit's rules the crate has kiln's own ([`rules::KILN_RULES`], codes `KL001` to
//! `KL011`: unpinned base images, build tools and package caches left in the image, unfiltered
//! whole-context copies, credentials in ARG/ENV values, ADD for plain files, unused stages,
//! loose `apt-get install`, `RUN cd`, a root final user, a final `COPY --from` of a whole
//! tree). They run only when [`Request::own_rules`] says so, after BuildKit's checks and
//! over the same expanded instructions, and they answer to the same `# check=skip=` lists,
//! plus hadolint-style `# hadolint ignore=DL3006` and `# kiln ignore=KL001` comments.

#![forbid(unsafe_code)]

mod config;
mod rule;
pub mod rules;
mod script;
mod sink;
mod walk;

use std::collections::BTreeSet;

use kiln_context::PatternMatcher;
use kiln_frontend::{BuildOptions, InstructionError, Platform};
use kiln_syntax::{Diagnostic, Dockerfile};

pub use config::{CHECK_BUILD_ARG, CheckConfig, CheckOptionError, ConfigError};
pub use rule::Rule;
pub use rules::{KILN_RULES, RULES, all_rules, rule};

/// What a check runs on.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The Dockerfile's text (for line positions).
    pub source: &'a str,
    /// The Dockerfile, parsed from `source`.
    pub dockerfile: &'a Dockerfile,
    /// The build's target, build args (`BUILDKIT_DOCKERFILE_CHECK` among them) and platforms.
    pub options: &'a BuildOptions,
    /// Check every stage, as `docker build --check` does without `--target`; otherwise only
    /// the stages the target needs get their instructions checked, as during a build (the
    /// file-wide checks, such as stage names and casing, always cover every stage).
    pub all_stages: bool,
    /// The build context's `.dockerignore` patterns; `None` when there are none.
    pub ignore: Option<&'a PatternMatcher>,
    /// What the build knows of base images; `None` when it knows nothing.
    pub images: Option<&'a dyn BaseImages>,
    /// Run kiln's own rules ([`rules::KILN_RULES`]) after BuildKit's. `kiln lint` and
    /// `kiln build --check` do; a build, and the BuildKit conformance cases, do not.
    pub own_rules: bool,
    /// What the caller saw of the build context, for `UnfilteredContextCopy`; `None` when it
    /// did not look (the rule is then silent).
    pub context: Option<&'a ContextSummary>,
}

/// The top of the build context as the caller saw it: whether it has an ignore file and which
/// entries it has at its root (whatever the ignore file says of them; the rules match them
/// against [`Request::ignore`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextSummary {
    /// Whether the context has an ignore file (`.dockerignore`, or the Dockerfile's own
    /// `<Dockerfile>.dockerignore`), even an empty one.
    pub ignore_file: bool,
    /// The entries at the context's root.
    pub entries: Vec<ContextName>,
}

/// One entry at the root of the build context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextName {
    /// Its name (`.git`, `id_rsa`).
    pub name: String,
    /// Whether it is a directory.
    pub dir: bool,
}

/// What a build resolved of one base image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// The platform of the image the build uses; `None` when its config does not say.
    pub platform: Option<Platform>,
    /// Its environment (`Env` of its config), in order.
    pub env: Vec<(String, String)>,
    /// Its `Shell`, empty when it sets none.
    pub shell: Vec<String>,
    /// Its `User`; `None` when it sets none.
    pub user: Option<String>,
}

/// The build's view of base images, for the rules that depend on them.
///
/// Implemented by the binary over its image store. A lookup that finds nothing leaves
/// `InvalidBaseImagePlatform` silent for that stage, and `UndefinedVar` then knows only the
/// default `PATH` of the stage's environment (it says so in a hint).
pub trait BaseImages {
    /// The image `name` (a FROM's base after expansion: not a stage, not `scratch`) as the
    /// build would use it for `platform`.
    fn base_image(&self, name: &str, platform: &Platform) -> Option<BaseImage>;
}

/// The outcome of [`check`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The warnings, in file order (by where their range starts), each once.
    pub warnings: Vec<Diagnostic>,
    /// What stopped the checks, an error of the Dockerfile (the one the build would fail
    /// with): BuildKit reports the warnings found before an error (an unknown instruction, a
    /// FROM that does not expand) and then the error. `None` when every check ran.
    pub error: Option<InstructionError>,
    /// The check options in force.
    pub config: CheckConfig,
}

impl Report {
    /// With `error=true` and at least one warning: BuildKit's
    /// `lint violation found for rules: A, B` (each rule once, in file order).
    pub fn violation(&self) -> Option<String> {
        if !self.config.error || self.warnings.is_empty() {
            return None;
        }
        let mut seen = BTreeSet::new();
        let rules: Vec<&str> = self
            .warnings
            .iter()
            .map(|w| w.rule)
            .filter(|r| seen.insert(*r))
            .collect();
        Some(format!(
            "lint violation found for rules: {}",
            rules.join(", ")
        ))
    }

    /// Add warnings found elsewhere (kiln's own rules, such as the planner's `StageNameTypo`):
    /// those the check options skip are dropped (they count as not experimental), the rest
    /// join [`warnings`](Self::warnings) in file order.
    pub fn add(&mut self, warnings: impl IntoIterator<Item = Diagnostic>) {
        let config = &self.config;
        self.warnings.extend(
            warnings
                .into_iter()
                .filter(|w| config.allows(w.rule, false)),
        );
        tidy(&mut self.warnings);
    }
}

/// Run the checks on `req`.
///
/// Fails only when the check options do not parse (BuildKit fails the build then); an error
/// in the Dockerfile itself ends the checks and is reported in [`Report::error`].
pub fn check(req: &Request<'_>) -> Result<Report, ConfigError> {
    let mut config = CheckConfig::for_build(req.dockerfile, &req.options.build_args)?;
    config.add_global_ignores(req.source);
    let mut sink = sink::Sink::default();
    let error = walk::run(req, &config, &mut sink).err();
    let mut warnings = sink.warnings;
    tidy(&mut warnings);
    Ok(Report {
        warnings,
        error,
        config,
    })
}

/// Sort by position (stable: findings of one place keep their order) and drop repeats.
fn tidy(warnings: &mut Vec<Diagnostic>) {
    warnings.sort_by_key(|w| w.span.start);
    let mut seen = Vec::new();
    warnings.retain(|w| {
        if seen.contains(w) {
            return false;
        }
        seen.push(w.clone());
        true
    });
}
