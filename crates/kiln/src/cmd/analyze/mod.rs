//! `kiln analyze IMAGE`: why an image is as big as it is. Per layer, its size, what it adds,
//! changes and removes, and the instruction that made it (its Dockerfile line with `-f`);
//! the bytes it wastes, by the instruction responsible, with the fix; dive's efficiency
//! numbers, and with `--ci` dive's CI rules (`.dive-ci`, dive's flags) plus `--max-size`,
//! whose failure makes the status 1. `--format json` is dive's `--json` export with kiln's
//! own findings under `kiln`. `--format html` is one self-contained page (`html`): the stage
//! graph (with `-f`), the layers, a treemap of the final image and the wasted files with
//! their fixes. `-i` browses the layers and their files in the terminal (`browse`).
//! `kiln build --analyze` prints the same after a build, with what each stage
//! gave the final image; `kiln build --report FILE` writes the page, with each stage's time.

mod browse;
mod html;
mod render;
pub(crate) mod source;
mod treemap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_inspect::Analysis;
use kiln_inspect::ci::{RuleName, RuleResult, Rules, Status, parse_dive_ci};
use kiln_oci::{Image, Store};

use crate::Globals;
use crate::cmd::outline::DockerfileSource;
use crate::graph::{GraphDoc, StageRun};
use source::SourceInstruction;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image, by name or id.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The Dockerfile the image was built from: each layer is shown with its line.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// The stage the image was built as (with `-f`; default: the last).
    #[arg(long, value_name = "STAGE", requires = "dockerfile")]
    pub target: Option<String>,
    /// Output format: `text`, `json` (dive's `--json` export, plus kiln's findings) or
    /// `html` (one self-contained page: stage graph with `-f`, layers, treemap, waste).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Browse the layers and their files in the terminal: layers on the left, the selected
    /// layer's added, changed and removed files on the right, wasted files marked. Keys:
    /// up/down select, tab switches pane, enter opens a directory, q quits.
    #[arg(short = 'i', long, conflicts_with_all = ["output", "ci"])]
    pub interactive: bool,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// How many files to list per layer and per finding in text.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
}

/// How `kiln analyze` writes its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// dive's JSON export, plus kiln's findings under `kiln`.
    Json,
    /// One self-contained HTML page (no network, no external scripts).
    Html,
}

/// dive's CI flags (same names), and kiln's `--max-size`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RuleArgs {
    /// Check the image against the CI rules; a failed rule makes the status 1. The rules
    /// come from dive's defaults, then `--ci-config`, then the flags below.
    #[arg(long)]
    pub ci: bool,
    /// dive's CI rules file (YAML with `rules:`). Default: `.dive-ci` when it exists.
    #[arg(long, value_name = "FILE")]
    pub ci_config: Option<PathBuf>,
    /// Fail when the efficiency is below this ratio (0-1; dive's default 0.9).
    #[arg(long = "lowestEfficiency", value_name = "RATIO")]
    pub lowest_efficiency: Option<String>,
    /// Fail when more bytes than this are wasted (`20MB`, `1GiB`; default disabled).
    #[arg(long = "highestWastedBytes", value_name = "SIZE")]
    pub highest_wasted_bytes: Option<String>,
    /// Fail when the wasted bytes exceed this ratio of the bytes over the first layer (0-1;
    /// dive's default 0.1).
    #[arg(long = "highestUserWastedPercent", value_name = "RATIO")]
    pub highest_user_wasted_percent: Option<String>,
    /// Fail when the image (its layers' content) is bigger than this (`200MB`); kiln's own.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
}

impl RuleArgs {
    /// The rules to check, when any are asked for: `--ci`, or any rule flag.
    pub(crate) fn rules(&self) -> anyhow::Result<Option<Rules>> {
        let flags = [
            (RuleName::LowestEfficiency, &self.lowest_efficiency),
            (RuleName::HighestWastedBytes, &self.highest_wasted_bytes),
            (
                RuleName::HighestUserWastedPercent,
                &self.highest_user_wasted_percent,
            ),
            (RuleName::MaxSize, &self.max_size),
        ];
        let any_flag = flags.iter().any(|(_, v)| v.is_some());
        if !self.ci && !any_flag && self.ci_config.is_none() {
            return Ok(None);
        }
        let mut rules = Rules::default();
        let config = match &self.ci_config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(".dive-ci")).filter(|p| p.is_file()),
        };
        if let Some(path) = config {
            read_ci_config(&path, &mut rules)?;
        }
        for (rule, value) in flags {
            if let Some(v) = value {
                let flag = match rule {
                    RuleName::MaxSize => "--max-size".to_owned(),
                    r => format!("--{}", r.key()),
                };
                rules
                    .set(rule, v)
                    .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            }
        }
        Ok(Some(rules))
    }
}

fn read_ci_config(path: &Path, rules: &mut Rules) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the CI rules `{}`: {e}\nhint: `--ci-config FILE` names a dive CI file (YAML with `rules:`)",
            path.display()
        )
    })?;
    let settings = parse_dive_ci(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}: {}\nhint: a dive CI file looks like `rules:` then indented lines such as `  lowestEfficiency: 0.95`",
            path.display(),
            e.line,
            e.message
        )
    })?;
    for (rule, value, line) in settings {
        rules
            .set(rule, &value)
            .map_err(|e| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
    }
    Ok(())
}

/// A stage of the build, for `kiln build --analyze`.
pub(crate) struct StageRow {
    /// Its name or index.
    pub name: String,
    /// Its layers.
    pub layers: usize,
    /// Its content size.
    pub size: u64,
    /// What it adds over its base.
    pub own: u64,
}

/// Everything a report shows.
pub(crate) struct Report<'a> {
    pub name: &'a str,
    pub image: &'a Image,
    pub analysis: &'a Analysis,
    /// The Dockerfile's path and, per layer, the instruction that made it.
    pub sources: Option<(String, Vec<Option<SourceInstruction>>)>,
    pub stages: Vec<StageRow>,
    pub results: Option<Vec<RuleResult>>,
    pub top: usize,
    /// The stage graph (HTML only): from `-f`, or the build's with its steps' times.
    pub graph: Option<GraphDoc>,
}

impl Report<'_> {
    /// Whether every rule checked passed.
    fn passed(&self) -> bool {
        self.results
            .iter()
            .flatten()
            .all(|r| r.status != Status::Fail)
    }

    /// The image's size as `kiln images` shows it.
    pub(crate) fn image_size(analysis: &Analysis) -> u64 {
        analysis.layers.iter().map(|l| l.size).sum()
    }
}

/// Per layer of `image`, the instruction of `src` that made it.
pub(crate) fn sources(
    image: &Image,
    analysis: &Analysis,
    src: &DockerfileSource,
    target: Option<&str>,
) -> anyhow::Result<(String, Vec<Option<SourceInstruction>>)> {
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    let chain = source::chain(&df, target);
    let texts: Vec<&str> = image
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_deref().unwrap_or(""))
        .collect();
    let matched = source::match_history(&chain, &texts);
    let per_layer = analysis
        .layers
        .iter()
        .map(|l| {
            l.info
                .history
                .as_ref()
                .and_then(|(i, _)| matched.get(*i).copied().flatten())
                .map(|i| chain[i].clone())
        })
        .collect();
    Ok((src.path.display().to_string(), per_layer))
}

/// Writes `report` in `format` to `output` (stdout when `None`); the status is 1 when a
/// rule failed.
pub(crate) fn print(
    report: &Report<'_>,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let write = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        match format {
            Format::Text => w.write_all(render::text(report).as_bytes())?,
            // Streamed: a layer's changes are written as they are serialized.
            Format::Json => {
                serde_json::to_writer_pretty(&mut *w, &render::json(report))
                    .map_err(std::io::Error::from)?;
                writeln!(w)?;
            }
            Format::Html => w.write_all(html::page(report).as_bytes())?,
        }
        w.flush()
    };
    match output {
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut w).map_err(crate::StdoutError)?;
        }
        Some(path) => {
            let err = |e: std::io::Error| {
                anyhow::anyhow!("cannot write the report `{}`: {e}", path.display())
            };
            let file = std::fs::File::create(path).map_err(err)?;
            write(&mut std::io::BufWriter::new(file)).map_err(err)?;
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let rules = args.rules.rules()?;
    let store = Store::open(&globals.root)?;
    let image = resolve(&store, &args.image)?;
    let src = args
        .dockerfile
        .as_deref()
        .map(|f| crate::cmd::outline::read_dockerfile(Some(f), Path::new(".")))
        .transpose()?;
    let analysis = kiln_inspect::analyze_image(&store, &image)?;
    let graph = match (&src, args.format) {
        (Some(src), Format::Html) => Some(plan_graph(src, args.target.as_ref())?),
        _ => None,
    };
    let sources = src
        .map(|src| sources(&image, &analysis, &src, args.target.as_deref()))
        .transpose()?;
    let results = rules.map(|r| r.evaluate(&analysis.dive, Report::image_size(&analysis)));
    let report = Report {
        name: &args.image,
        image: &image,
        analysis: &analysis,
        sources,
        stages: Vec::new(),
        results,
        top: args.top,
        graph,
    };
    if args.interactive {
        browse::run(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    print(&report, args.format, args.output.as_deref())
}

/// The stage graph of the Dockerfile `src` for `target`, without a build's times.
fn plan_graph(src: &DockerfileSource, target: Option<&String>) -> anyhow::Result<GraphDoc> {
    let opts = crate::cmd::outline::build_options(target, &[], None)?;
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    let plan = crate::cmd::outline::plan_parsed(src, &df, &opts)?;
    Ok(GraphDoc::new(&plan, src, &BTreeMap::new()))
}

/// What a report after a build draws from: the image, its analysis, its layers' lines and
/// its stages.
struct Built {
    image: Image,
    analysis: Analysis,
    sources: (String, Vec<Option<SourceInstruction>>),
    stages: Vec<StageRow>,
    name: String,
}

fn built(
    store: &Store,
    outcome: &kiln_build::BuildOutcome,
    src: &DockerfileSource,
    target: Option<&str>,
) -> anyhow::Result<Built> {
    let image = Image::read(store, &outcome.manifest, Vec::new())?;
    let analysis = kiln_inspect::analyze_image(store, &image)?;
    let sources = sources(&image, &analysis, src, target)?;
    let size = |layers: &[kiln_oci::Descriptor]| {
        layers
            .iter()
            .map(|l| store.layer_size(&l.digest))
            .sum::<Result<u64, _>>()
    };
    let stages = outcome
        .stages
        .iter()
        .map(|s| {
            Ok(StageRow {
                name: s.name.clone(),
                layers: s.layers.len(),
                size: size(&s.layers)?,
                own: size(&s.layers[s.base_layers..])?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Built {
        image,
        analysis,
        sources,
        stages,
        name: outcome.id.short().to_owned(),
    })
}

/// `kiln build --analyze`: the built image's report, with its layers' lines in the
/// Dockerfile and its stages.
pub(crate) fn after_build(
    store: &Store,
    outcome: &kiln_build::BuildOutcome,
    src: &DockerfileSource,
    target: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let b = built(store, outcome, src, target)?;
    let report = Report {
        name: &b.name,
        image: &b.image,
        analysis: &b.analysis,
        sources: Some(b.sources),
        stages: b.stages,
        results: None,
        top: 5,
        graph: None,
    };
    outln!()?;
    print(&report, Format::Text, None)
}

/// `kiln build --report FILE`: the built image's report as HTML, with the build's stage
/// graph and each stage's steps' times (`runs`, by stage label).
pub(crate) fn report_after_build(
    store: &Store,
    outcome: &kiln_build::BuildOutcome,
    src: &DockerfileSource,
    target: Option<&str>,
    plan: &kiln_frontend::Plan,
    runs: &BTreeMap<String, StageRun>,
    file: &Path,
) -> anyhow::Result<()> {
    let b = built(store, outcome, src, target)?;
    let report = Report {
        name: &b.name,
        image: &b.image,
        analysis: &b.analysis,
        sources: Some(b.sources),
        stages: b.stages,
        results: None,
        top: 5,
        graph: Some(GraphDoc::new(plan, src, runs)),
    };
    print(&report, Format::Html, Some(file))?;
    Ok(())
}

/// The image `name` names, or an error with a hint.
pub(crate) fn resolve(store: &Store, name: &str) -> anyhow::Result<Image> {
    store.resolve(name).map_err(|e| match e {
        kiln_oci::StoreError::NoSuchImage { .. } => anyhow::anyhow!(
            "{e}\nhint: `kiln images` lists the images of the store (`--root` or `KILN_ROOT` chooses it)"
        ),
        e => e.into(),
    })
}
