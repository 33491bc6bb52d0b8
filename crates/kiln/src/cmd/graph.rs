//! `kiln graph`: the stage graph of a Dockerfile (stages, the images and stages each reads
//! through FROM, `COPY --from` and `RUN --mount from=`, what the target needs and what is
//! pruned, the ARGs that reach each stage) as text, Graphviz DOT, a Mermaid flowchart or
//! JSON. It reads only the Dockerfile: no store, no context files, no build.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cmd::outline::{build_options, plan_parsed, read_dockerfile};
use crate::diagnostics;
use crate::graph::{GraphDoc, GraphFormat};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// The stage to build (default: the last); what it does not need is drawn as pruned.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Set a build-time variable; `K` alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_arg: Vec<String>,
    /// The target platform (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Output format: `text`, `dot` (Graphviz), `mermaid` (a flowchart) or `json`.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
    /// The build context (where the Dockerfile is looked for).
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let src = read_dockerfile(args.dockerfile.as_deref(), &args.context)?;
    let opts = build_options(
        args.target.as_ref(),
        &args.build_arg,
        args.platform.as_ref(),
    )?;
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    let plan = plan_parsed(&src, &df, &opts)?;
    diagnostics::print_warnings(&src.path, &src.text, &plan.warnings);
    let doc = GraphDoc::new(&plan, &src, &BTreeMap::new());
    out!("{}", doc.render(args.format)?)?;
    Ok(ExitCode::SUCCESS)
}
