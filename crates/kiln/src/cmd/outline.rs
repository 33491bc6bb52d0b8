//! `kiln outline`: the stages of a Dockerfile in build order, what each is based on and
//! depends on, the ARGs it uses with their values, and whether the target needs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_frontend::{Base, BuildOptions, Plan, Platform, ResolvedArg};
use kiln_syntax::Diagnostic;

use crate::Globals;
use crate::diagnostics::{self, SourceError};

/// What the commands that read a Dockerfile without building it (`outline`, `graph`) take
/// to plan it as `kiln build` would.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// The stage to build (default: the last); what it does not need is pruned.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Set a build-time variable; `K` alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_arg: Vec<String>,
    /// The target platform (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// The build context (where the Dockerfile is looked for).
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

impl PlanArgs {
    /// The Dockerfile read, and the build options these arguments give.
    pub(crate) fn read(&self) -> anyhow::Result<(DockerfileSource, BuildOptions)> {
        let src = read_dockerfile(self.dockerfile.as_deref(), &self.context)?;
        let opts = build_options(
            self.target.as_ref(),
            &self.build_arg,
            self.platform.as_ref(),
        )?;
        Ok((src, opts))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How `outline` and `build --explain` print.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// One JSON document.
    Json,
}

/// A Dockerfile read from disk, kept for error rendering.
pub(crate) struct DockerfileSource {
    /// The path as the user gave it (or CONTEXT/Dockerfile).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl DockerfileSource {
    /// `diagnostic` about this file, as an error for `anyhow`.
    pub(crate) fn error(&self, diagnostic: Diagnostic) -> SourceError {
        SourceError::new(&self.path, &self.text, diagnostic)
    }

    /// `diagnostic` about this file as a JSON object.
    pub(crate) fn json(&self, diagnostic: &Diagnostic) -> serde_json::Value {
        diagnostics::to_json(&self.path, &self.text, diagnostic)
    }
}

/// The Dockerfile of a context without `-f`: `Dockerfile`, or when only a lowercase
/// `dockerfile` is there, that one (as BuildKit falls back to it).
pub(crate) fn default_dockerfile(context: &Path) -> PathBuf {
    let upper = context.join("Dockerfile");
    let lower = context.join("dockerfile");
    if std::fs::symlink_metadata(&upper).is_err() && std::fs::symlink_metadata(&lower).is_ok() {
        lower
    } else {
        upper
    }
}

/// Read the Dockerfile: `-f FILE` or the context's ([`default_dockerfile`]).
pub(crate) fn read_dockerfile(
    file: Option<&Path>,
    context: &Path,
) -> anyhow::Result<DockerfileSource> {
    let path = file.map_or_else(|| default_dockerfile(context), Path::to_path_buf);
    let bytes = std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the Dockerfile `{}`: {e}\nhint: pass `-f FILE`, or give the context folder that holds the `Dockerfile`",
            path.display()
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        anyhow::anyhow!("`{}`: not valid UTF-8 at byte {at}", path.display())
    })?;
    Ok(DockerfileSource { path, text })
}

/// Parse `--build-arg` values (`K=V`, or `K` taken from the environment when set there).
pub(crate) fn parse_build_args(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some(("", _)) => anyhow::bail!(
                "invalid `--build-arg {a}`: the name is empty\nhint: write `--build-arg NAME=VALUE`"
            ),
            Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.push((a.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

/// A planned Dockerfile, with the warnings of the build checks and the planner.
pub(crate) struct Loaded {
    /// The plan.
    pub plan: Plan,
    /// The warnings; [`load_plan`] has printed them to stderr already.
    pub warnings: Vec<Diagnostic>,
}

/// What the build checks get besides the Dockerfile.
#[derive(Clone, Copy, Default)]
pub(crate) struct Checks<'a> {
    /// The context's ignore rules.
    pub ignore: Option<&'a kiln_context::IgnoreRules>,
    /// The base images the store knows.
    pub images: Option<&'a dyn kiln_lint::BaseImages>,
}

/// Parse, check and plan a Dockerfile, as a build does: the build checks of the stages the
/// target needs (BuildKit's, then kiln's own from the planner) are printed to stderr as they
/// come and returned (for a JSON document); errors become source diagnostics. With
/// `error=true` in the check options, a warning fails here, before anything is built.
pub(crate) fn load_plan(
    src: &DockerfileSource,
    opts: &BuildOptions,
    checks: Checks<'_>,
) -> anyhow::Result<Loaded> {
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    let mut report = crate::cmd::lint::run_checks(
        src,
        &df,
        opts,
        checks.ignore,
        checks.images,
        false,
        crate::cmd::lint::OwnRules::default(),
    )
    .map_err(|e| -> anyhow::Error {
        match e.to_diagnostic() {
            Some(d) => src.error(d).into(),
            None => crate::cmd::lint::config_error(&e),
        }
    })?;
    // Warnings before errors, as BuildKit prints them; the planner reports the error.
    diagnostics::print_warnings(&src.path, &src.text, &report.warnings);
    let plan = plan_parsed(src, &df, opts)?;
    let own: Vec<Diagnostic> = plan
        .warnings
        .iter()
        .filter(|w| report.config.allows(w.rule, false))
        .cloned()
        .collect();
    diagnostics::print_warnings(&src.path, &src.text, &own);
    report.add(own);
    if let Some(violation) = report.violation() {
        anyhow::bail!(
            "{violation}\nhint: the check options (`# check=` or `--build-arg BUILDKIT_DOCKERFILE_CHECK`) say `error=true`: fix the warnings above, or skip their rules with `skip=`"
        );
    }
    Ok(Loaded {
        plan,
        warnings: report.warnings,
    })
}

/// Plan a parsed Dockerfile: an unknown `--target` is the flag's error, any other a source
/// diagnostic.
pub(crate) fn plan_parsed(
    src: &DockerfileSource,
    df: &kiln_syntax::Dockerfile,
    opts: &BuildOptions,
) -> anyhow::Result<Plan> {
    kiln_frontend::plan(df, opts).map_err(|e| -> anyhow::Error {
        if let kiln_frontend::ErrorKind::UnknownTarget(_) = e.kind {
            let hint = e.hint.map(|h| format!("\nhint: {h}")).unwrap_or_default();
            return anyhow::anyhow!("`--target`: {}{hint}", e.kind);
        }
        src.error(e.to_diagnostic()).into()
    })
}

/// `BuildOptions` from the flags `build` and `outline` share.
pub(crate) fn build_options(
    target: Option<&String>,
    build_args: &[String],
    platform: Option<&String>,
) -> anyhow::Result<BuildOptions> {
    let mut opts = BuildOptions {
        target: target.cloned(),
        build_args: parse_build_args(build_args)?,
        ..BuildOptions::default()
    };
    if let Some(p) = platform {
        opts.target_platform = Platform::parse(p).map_err(|e| {
            anyhow::anyhow!(
                "invalid `--platform {p}`: {e}\nhint: write e.g. `--platform linux/amd64`"
            )
        })?;
    }
    Ok(opts)
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let (src, opts) = args.plan.read()?;
    let ignore = kiln_context::IgnoreRules::for_build(&args.plan.context, &src.path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = crate::cmd::lint::existing_store(&globals.root);
    let images = store.as_ref().map(crate::cmd::lint::StoreImages);
    let checks = Checks {
        ignore: Some(&ignore),
        images: images.as_ref().map(|i| i as &dyn kiln_lint::BaseImages),
    };
    let Loaded { plan, warnings } = load_plan(&src, &opts, checks)?;
    let mut outline = Outline::new(&plan, &src, ignore.source());
    outline.warnings = warnings.iter().map(|w| src.json(w)).collect();
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&outline)?)?,
        Format::Text => out!("{}", outline.text())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The outline as printed (and as JSON).
#[derive(Debug, serde::Serialize)]
struct Outline {
    dockerfile: String,
    ignore_file: Option<String>,
    target: String,
    build_order: Vec<String>,
    global_args: Vec<ResolvedArg>,
    stages: Vec<StageOutline>,
    /// The build checks' and planner's warnings, as `diagnostics::to_json` shapes them (also
    /// printed to stderr); not part of the text form.
    warnings: Vec<serde_json::Value>,
}

#[derive(Debug, serde::Serialize)]
struct StageOutline {
    index: usize,
    name: Option<String>,
    line: usize,
    base: String,
    base_kind: &'static str,
    platform: Option<String>,
    depends_on: Vec<String>,
    images: Vec<String>,
    args: Vec<ResolvedArg>,
    instructions: usize,
    needed: bool,
}

impl Outline {
    fn new(plan: &Plan, src: &DockerfileSource, ignore: &kiln_context::IgnoreSource) -> Self {
        let label = |i: usize| plan.stages[i].label();
        let stages = plan
            .stages
            .iter()
            .map(|s| {
                let mut deps: Vec<String> = s.deps.iter().map(|d| label(d.stage)).collect();
                let mut seen = std::collections::HashSet::new();
                deps.retain(|d| seen.insert(d.clone()));
                StageOutline {
                    index: s.index,
                    name: s.name.clone(),
                    line: s.from_command.start_line,
                    base: s.base_name.clone(),
                    base_kind: match s.base {
                        Base::Scratch => "scratch",
                        Base::Image(_) => "image",
                        Base::Stage(_) => "stage",
                    },
                    platform: s.platform.clone(),
                    depends_on: deps,
                    images: s.image_refs.iter().map(|r| r.name.clone()).collect(),
                    args: s.used_args.clone(),
                    instructions: s.commands.len() + 1,
                    needed: s.needed,
                }
            })
            .collect();
        Self {
            dockerfile: src.path.display().to_string(),
            ignore_file: match ignore {
                kiln_context::IgnoreSource::File(p) => Some(p.display().to_string()),
                _ => None,
            },
            target: label(plan.target),
            build_order: plan.build_order().into_iter().map(label).collect(),
            global_args: plan
                .global_args
                .iter()
                .filter(|a| a.origin != kiln_frontend::ArgOrigin::Automatic)
                .cloned()
                .collect(),
            stages,
            warnings: Vec::new(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "dockerfile: {}", self.dockerfile);
        if let Some(i) = &self.ignore_file {
            let _ = writeln!(out, "ignore file: {i}");
        }
        let _ = writeln!(out, "target: {}", self.target);
        let _ = writeln!(out, "build order: {}", self.build_order.join(" -> "));
        if !self.global_args.is_empty() {
            let _ = writeln!(out, "global args: {}", args_text(&self.global_args));
        }
        for s in &self.stages {
            let name = s
                .name
                .as_ref()
                .map_or_else(String::new, |n| format!(" {n}"));
            let needed = if s.needed {
                "needed"
            } else {
                "skipped: the target does not need it"
            };
            let _ = writeln!(
                out,
                "\nstage {}{name} (line {}): {}",
                s.index, s.line, needed
            );
            let platform = s
                .platform
                .as_ref()
                .map_or_else(String::new, |p| format!(" for {p}"));
            let _ = writeln!(out, "  from: {} ({}){platform}", s.base, s.base_kind);
            if !s.depends_on.is_empty() {
                let _ = writeln!(out, "  depends on: {}", s.depends_on.join(", "));
            }
            if !s.images.is_empty() {
                let _ = writeln!(out, "  images: {}", s.images.join(", "));
            }
            if !s.args.is_empty() {
                let _ = writeln!(out, "  args: {}", args_text(&s.args));
            }
            let _ = writeln!(out, "  instructions: {}", s.instructions);
        }
        out
    }
}

fn args_text(args: &[ResolvedArg]) -> String {
    args.iter()
        .map(|a| match &a.value {
            Some(v) => format!("{}={v:?} ({})", a.name, origin(a)),
            None => format!("{} (unset)", a.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn origin(a: &ResolvedArg) -> &'static str {
    match a.origin {
        kiln_frontend::ArgOrigin::BuildArg => "build-arg",
        kiln_frontend::ArgOrigin::Default => "default",
        kiln_frontend::ArgOrigin::Global => "global",
        kiln_frontend::ArgOrigin::Automatic => "automatic",
        kiln_frontend::ArgOrigin::Unset => "unset",
    }
}
