//! `kiln graph`: the stage graph of a Dockerfile (stages, the images and stages each reads
//! through FROM, `COPY --from` and `RUN --mount from=`, what the target needs and what is
//! pruned, the ARGs that reach each stage) as text, Graphviz DOT, a Mermaid flowchart or
//! JSON. It reads only the Dockerfile: no store, no context files, no build.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::cmd::outline::{PlanArgs, plan_parsed};
use crate::diagnostics;
use crate::graph::{GraphDoc, GraphFormat};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format: `text`, `dot` (Graphviz), `mermaid` (a flowchart) or `json`.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (src, opts) = args.plan.read()?;
    let df = kiln_syntax::parse(&src.text).map_err(|e| src.error(e.to_diagnostic()))?;
    let plan = plan_parsed(&src, &df, &opts)?;
    diagnostics::print_warnings(&src.path, &src.text, &plan.warnings);
    let doc = GraphDoc::new(&plan, &src, &BTreeMap::new());
    out!("{}", doc.render(args.format)?)?;
    Ok(ExitCode::SUCCESS)
}
