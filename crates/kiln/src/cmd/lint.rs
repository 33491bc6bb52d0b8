//! `kiln lint` (and `kiln build --check`): BuildKit's build checks and kiln's own rules
//! (`KL001`...) on a Dockerfile, as text, JSON or SARIF, building nothing.
//!
//! Every stage is checked unless `--target` names one (then the stages it needs), as
//! `docker build --check` does. The context's `.dockerignore` feeds `CopyIgnoredFile`, its
//! top-level entries (listed here; kiln-lint reads no file) `UnfilteredContextCopy`, and
//! the images of the store (when there is one) tell base images' platforms and environments.
//! An error in the Dockerfile (one that ends the checks, or one the planner finds after them)
//! is reported with the warnings found before it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_frontend::{BuildOptions, ErrorKind, InstructionError, Platform};
use kiln_lint::{BaseImage, BaseImages, ConfigError, ContextName, ContextSummary, Report, Request};
use kiln_oci::Store;
use kiln_syntax::Diagnostic;

use crate::Globals;
use crate::cmd::outline::{DockerfileSource, build_options, read_dockerfile};
use crate::diagnostics;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// How the findings are printed: on stdout (in text, an error goes to stderr).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// Exit with status 1 when there is a warning, not only on errors.
    #[arg(long)]
    pub strict: bool,
    /// Set a build-time variable; `K` alone takes the value from the environment.
    /// `BUILDKIT_DOCKERFILE_CHECK` replaces the Dockerfile's `# check=` directive.
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_arg: Vec<String>,
    /// Check only the stages this stage needs (default: every stage).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The build context (for its `.dockerignore`).
    #[arg(value_name = "CONTEXT", default_value = ".")]
    pub context: PathBuf,
}

/// `kiln lint --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LintFormat {
    /// Snippets with a caret, as errors are shown, and a summary line.
    Text,
    /// One JSON document: `warnings` and `error` as `diagnostics::to_json` shapes them.
    Json,
    /// SARIF 2.1.0, for code scanning tools.
    Sarif,
}

/// What the checks found in one Dockerfile.
pub(crate) struct Findings {
    /// The warnings, in file order.
    pub warnings: Vec<Diagnostic>,
    /// The error that ended the checks or the planning, if any.
    pub error: Option<Diagnostic>,
    /// `lint violation found for rules: ...` when `error=true` and there are warnings.
    pub violation: Option<String>,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let src = read_dockerfile(args.dockerfile.as_deref(), &args.context)?;
    let opts = build_options(args.target.as_ref(), &args.build_arg, None)?;
    let store = existing_store(&globals.root);
    let images = store.as_ref().map(StoreImages);
    let ignore = kiln_context::IgnoreRules::for_build(&args.context, &src.path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let context = context_summary(&args.context, &ignore);
    let findings = check_dockerfile(
        &src,
        &opts,
        &ignore,
        context.as_ref(),
        images.as_ref().map(|i| i as &dyn BaseImages),
    )?;
    print(&src, &findings, args.format)?;
    let failed = findings.error.is_some()
        || findings.violation.is_some()
        || (args.strict && !findings.warnings.is_empty());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What kiln's `UnfilteredContextCopy` needs of the context directory `dir`: whether it has an
/// ignore file and its top-level entries; `None` when it cannot be listed (the rule is then
/// silent, and the build reports the problem where it reads the context).
pub(crate) fn context_summary(
    dir: &Path,
    ignore: &kiln_context::IgnoreRules,
) -> Option<ContextSummary> {
    let mut entries: Vec<ContextName> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| ContextName {
            name: e.file_name().to_string_lossy().into_owned(),
            dir: e.file_type().is_ok_and(|t| t.is_dir()),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Some(ContextSummary {
        ignore_file: matches!(ignore.source(), kiln_context::IgnoreSource::File(_)),
        entries,
    })
}

/// Parse, check and plan `src` as `docker build --check` would, with kiln's own rules: every
/// stage unless `opts.target` is set; `ignore` holds the context's `.dockerignore` rules and
/// `context` its top-level entries.
pub(crate) fn check_dockerfile(
    src: &DockerfileSource,
    opts: &BuildOptions,
    ignore: &kiln_context::IgnoreRules,
    context: Option<&ContextSummary>,
    images: Option<&dyn BaseImages>,
) -> anyhow::Result<Findings> {
    let df = match kiln_syntax::parse(&src.text) {
        Ok(df) => df,
        Err(e) => {
            return Ok(Findings {
                warnings: Vec::new(),
                error: Some(e.to_diagnostic()),
                violation: None,
            });
        }
    };
    let own = OwnRules {
        enabled: true,
        context,
    };
    let mut report = match run_checks(
        src,
        &df,
        opts,
        Some(ignore),
        images,
        opts.target.is_none(),
        own,
    ) {
        Ok(r) => r,
        Err(e) => match e.to_diagnostic() {
            Some(d) => {
                return Ok(Findings {
                    warnings: Vec::new(),
                    error: Some(d),
                    violation: None,
                });
            }
            None => return Err(config_error(&e)),
        },
    };
    // The planner finds what the checks do not look for (kiln's own rules, and the errors
    // kiln refuses where BuildKit only warns); its first error is the build's.
    if report.error.is_none() {
        match kiln_frontend::plan(&df, opts) {
            Ok(plan) => report.add(plan.warnings),
            Err(e) => report.error = Some(e),
        }
    }
    let error = match report.error.take() {
        Some(e) => Some(file_error(e)?),
        None => None,
    };
    Ok(Findings {
        violation: report.violation(),
        warnings: report.warnings,
        error,
    })
}

/// Whether kiln's own rules run, and what they know of the context.
#[derive(Clone, Copy, Default)]
pub(crate) struct OwnRules<'a> {
    /// Run them (`kiln lint`, `kiln build --check`); a build runs BuildKit's checks only.
    pub enabled: bool,
    /// The context's top level, for `UnfilteredContextCopy`.
    pub context: Option<&'a ContextSummary>,
}

/// The checks of `df`, for `kiln lint` (`all_stages`) or a build (the stages it needs).
pub(crate) fn run_checks(
    src: &DockerfileSource,
    df: &kiln_syntax::Dockerfile,
    opts: &BuildOptions,
    ignore: Option<&kiln_context::IgnoreRules>,
    images: Option<&dyn BaseImages>,
    all_stages: bool,
    own: OwnRules<'_>,
) -> Result<Report, ConfigError> {
    kiln_lint::check(&Request {
        source: &src.text,
        dockerfile: df,
        options: opts,
        all_stages,
        ignore: ignore
            .map(kiln_context::IgnoreRules::matcher)
            .filter(|m| !m.is_empty()),
        images,
        own_rules: own.enabled,
        context: own.context,
    })
}

/// Bad check options from the build arg, as a command-line error (those of the directive are
/// errors of the file).
pub(crate) fn config_error(e: &ConfigError) -> anyhow::Error {
    match e {
        ConfigError::BuildArg { source, .. } => {
            anyhow::anyhow!("{e}: {source}\nhint: {}", e.hint())
        }
        ConfigError::Directive { source, .. } => anyhow::anyhow!("{e}: {source}"),
    }
}

/// An error of the Dockerfile as a diagnostic; `--target` naming no stage is an error of the
/// command line.
fn file_error(e: InstructionError) -> anyhow::Result<Diagnostic> {
    if let ErrorKind::UnknownTarget(_) = e.kind {
        let hint = e.hint.map(|h| format!("\nhint: {h}")).unwrap_or_default();
        anyhow::bail!("`--target`: {}{hint}", e.kind);
    }
    Ok(e.to_diagnostic())
}

/// Print the findings on stdout in `format`.
pub(crate) fn print(
    src: &DockerfileSource,
    findings: &Findings,
    format: LintFormat,
) -> anyhow::Result<()> {
    match format {
        LintFormat::Text => {
            for d in &findings.warnings {
                out!("{}", diagnostics::render_text(&src.path, &src.text, d))?;
            }
            // An error is shown as every command shows one: on stderr.
            if let Some(e) = &findings.error {
                eprint!("{}", diagnostics::render_text(&src.path, &src.text, e));
            }
            let n = findings.warnings.len();
            let summary = match (n, findings.error.is_some()) {
                (0, false) => "no warnings".to_owned(),
                (0, true) => "1 error".to_owned(),
                (n, error) => format!(
                    "{n} warning{}{}",
                    if n == 1 { "" } else { "s" },
                    if error { " and 1 error" } else { "" }
                ),
            };
            outln!("{}: {summary}", src.path.display())?;
            if let Some(v) = &findings.violation {
                outln!("error: {v}")?;
            }
        }
        LintFormat::Json => {
            let doc = serde_json::json!({
                "file": src.path.display().to_string(),
                "warnings": findings.warnings.iter().map(|w| src.json(w)).collect::<Vec<_>>(),
                "error": findings.error.as_ref().map(|e| src.json(e)),
                "violation": findings.violation,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        }
        LintFormat::Sarif => {
            let all: Vec<&Diagnostic> = findings.warnings.iter().chain(&findings.error).collect();
            let doc = diagnostics::to_sarif(&src.path, &src.text, &all);
            outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        }
    }
    Ok(())
}

/// The store at `root` when there is one (never created by a command that only reads).
pub(crate) fn existing_store(root: &Path) -> Option<Store> {
    root.join("oci-layout")
        .is_file()
        .then(|| Store::open(root).ok())
        .flatten()
}

/// Base images as the store holds them (for this machine's platform, which is the only one
/// kiln builds for).
pub(crate) struct StoreImages<'a>(pub &'a Store);

impl BaseImages for StoreImages<'_> {
    fn base_image(&self, name: &str, _platform: &Platform) -> Option<BaseImage> {
        let image = self.0.resolve(name).ok()?;
        let config = &image.config;
        let platform = match config.variant.as_deref() {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", config.os, config.architecture),
            _ => format!("{}/{}", config.os, config.architecture),
        };
        let platform = Platform::parse(&platform).ok();
        let container = config.config.as_ref();
        let env = container
            .and_then(|c| c.env.as_ref())
            .into_iter()
            .flatten()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let shell = container.and_then(|c| c.shell.clone()).unwrap_or_default();
        let user = container
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty());
        Some(BaseImage {
            platform,
            env,
            shell,
            user,
        })
    }
}
