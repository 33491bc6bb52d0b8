//! The stage graph as people and tools read it: one document ([`GraphDoc`], also the JSON
//! shape) made from a plan's [`StageGraph`](kiln_frontend::StageGraph), with lines instead
//! of spans and, after a build, what each stage's steps did and how long they took; and its
//! renderings as text, Graphviz DOT and a Mermaid `flowchart`. `kiln graph` draws a plan,
//! `kiln build --graph FILE` the build that ran.
//!
//! The JSON shape (version 1; fields are only ever added):
//!
//! ```text
//! { "version": 1, "dockerfile": PATH, "target": STAGE-NAME,
//!   "nodes": [ { "id": "stage0" | "image0", "kind": "stage" | "image", "name": NAME,
//!                "index": N | null, "line": N | null, "base": REF | null,
//!                "platform": P | null, "target": BOOL, "needed": BOOL,
//!                "args": [ { "name", "value", "origin" } ],
//!                "run": null | { "seconds": F, "failed": BOOL,
//!                                "steps": [ { "index", "name", "status": "done" | "cached" | "failed", "seconds" } ] } } ],
//!   "edges": [ { "from": ID, "to": ID, "kind": "base" | "copy-from" | "mount-from",
//!                "line": N, "needed": BOOL } ] }
//! ```
//!
//! Stage nodes come first, in file order (node `stageN` is stage N); then the images the
//! stages read, in the order they are first named. `needed` is false for what the target
//! does not need (pruned: drawn dashed and grey). `run` is there only in `kiln build --graph`
//! and only for the stages whose steps started.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use kiln_frontend::{DepKind, NodeKind, Plan, ResolvedArg};
use kiln_syntax::LineIndex;

use crate::cmd::outline::DockerfileSource;

mod svg;

pub(crate) use svg::StageSize;

/// The document every rendering draws.
#[derive(Debug, serde::Serialize)]
pub(crate) struct GraphDoc {
    version: u32,
    dockerfile: String,
    target: String,
    nodes: Vec<NodeDoc>,
    edges: Vec<EdgeDoc>,
}

#[derive(Debug, serde::Serialize)]
struct NodeDoc {
    id: String,
    kind: &'static str,
    name: String,
    index: Option<usize>,
    line: Option<usize>,
    base: Option<String>,
    platform: Option<String>,
    target: bool,
    needed: bool,
    args: Vec<ResolvedArg>,
    run: Option<StageRun>,
}

#[derive(Debug, serde::Serialize)]
struct EdgeDoc {
    from: String,
    to: String,
    kind: DepKind,
    line: usize,
    needed: bool,
}

/// What a stage's steps did in a build, from its progress events.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct StageRun {
    /// The time its steps took, together (the steps of a stage run one after another).
    pub seconds: f64,
    /// Whether one of its steps failed.
    pub failed: bool,
    /// Its steps, in order.
    pub steps: Vec<StepRun>,
}

/// One step of a [`StageRun`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct StepRun {
    /// Its position in the stage, from 1 (the FROM is 1).
    pub index: usize,
    /// The instruction as the progress shows it.
    pub name: String,
    /// `done`, `cached`, `failed`, or `started` (cancelled when another stage failed).
    pub status: &'static str,
    /// How long it took.
    pub seconds: f64,
}

impl StageRun {
    fn summary(&self) -> String {
        let cached = self.steps.iter().filter(|s| s.status == "cached").count();
        let mut out = format!("{:.2}s, {} steps", self.seconds, self.steps.len());
        if cached > 0 {
            let _ = write!(out, " ({cached} cached)");
        }
        if self.failed {
            out.push_str(", failed");
        }
        out
    }
}

/// Node ids: `stageN` for stage N, `imageK` for the K-th image.
fn node_id(graph: &kiln_frontend::StageGraph, node: usize) -> String {
    match &graph.nodes[node].kind {
        NodeKind::Stage(i) => format!("stage{i}"),
        NodeKind::Image(_) => {
            let first_image = graph
                .nodes
                .iter()
                .position(|n| matches!(n.kind, NodeKind::Image(_)))
                .unwrap_or(node);
            format!("image{}", node - first_image)
        }
    }
}

impl GraphDoc {
    /// The graph of `plan` (from `src`), with the stages' `runs` by stage label.
    pub(crate) fn new(
        plan: &Plan,
        src: &DockerfileSource,
        runs: &BTreeMap<String, StageRun>,
    ) -> Self {
        let graph = plan.graph();
        let lines = LineIndex::new(&src.text);
        let line = |offset: usize| lines.line_col(&src.text, offset).line;
        let nodes = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| match &n.kind {
                NodeKind::Stage(s) => {
                    let stage = &plan.stages[*s];
                    NodeDoc {
                        id: node_id(&graph, i),
                        kind: "stage",
                        name: stage.label(),
                        index: Some(stage.index),
                        line: Some(stage.from_command.start_line),
                        base: Some(stage.base_name.clone()),
                        platform: stage.platform.clone(),
                        target: *s == graph.target,
                        needed: n.needed,
                        args: stage.used_args.clone(),
                        run: runs.get(&stage.label()).cloned(),
                    }
                }
                NodeKind::Image(name) => NodeDoc {
                    id: node_id(&graph, i),
                    kind: "image",
                    name: name.clone(),
                    index: None,
                    line: None,
                    base: None,
                    platform: None,
                    target: false,
                    needed: n.needed,
                    args: Vec::new(),
                    run: None,
                },
            })
            .collect();
        let edges = graph
            .edges
            .iter()
            .map(|e| EdgeDoc {
                from: node_id(&graph, e.from),
                to: node_id(&graph, e.to),
                kind: e.kind,
                line: line(e.span.start),
                needed: e.needed,
            })
            .collect();
        Self {
            version: 1,
            dockerfile: src.path.display().to_string(),
            target: plan.stages[plan.target].label(),
            nodes,
            edges,
        }
    }

    /// The stages whose steps ran, in file order, with what their steps did.
    pub(crate) fn stage_runs(&self) -> impl Iterator<Item = (&str, &StageRun)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.name.as_str(), n.run.as_ref()?)))
    }

    fn node(&self, id: &str) -> &NodeDoc {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or(&self.nodes[0])
    }

    /// For people: each stage with what it reads, then the images.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "dockerfile: {}", self.dockerfile);
        let _ = writeln!(out, "target: {}", self.target);
        for n in self.nodes.iter().filter(|n| n.kind == "stage") {
            let _ = writeln!(
                out,
                "\nstage {} {} (line {}){}: {}",
                n.index.unwrap_or_default(),
                n.name,
                n.line.unwrap_or_default(),
                if n.target { " [target]" } else { "" },
                if n.needed {
                    "needed"
                } else {
                    "pruned (the target does not need it)"
                }
            );
            for e in self.edges.iter().filter(|e| e.to == n.id) {
                let from = self.node(&e.from);
                let _ = writeln!(
                    out,
                    "  <- {} ({}): {}, line {}",
                    from.name,
                    from.kind,
                    kind_text(e.kind),
                    e.line
                );
            }
            if n.base.as_deref() == Some("scratch") {
                let _ = writeln!(out, "  from scratch");
            }
            if !n.args.is_empty() {
                let _ = writeln!(out, "  args: {}", args_text(&n.args).join(", "));
            }
            if let Some(run) = &n.run {
                let _ = writeln!(out, "  ran: {}", run.summary());
            }
        }
        let images: Vec<&NodeDoc> = self.nodes.iter().filter(|n| n.kind == "image").collect();
        if !images.is_empty() {
            let _ = writeln!(out);
        }
        for n in images {
            let _ = writeln!(
                out,
                "image {}: {}",
                n.name,
                if n.needed { "needed" } else { "pruned" }
            );
        }
        out
    }

    /// Graphviz DOT: stages as boxes (the target bold), images as ellipses, the pruned
    /// dashed and grey, a failed stage red; edges labelled with their instruction and line.
    pub(crate) fn dot(&self) -> String {
        let mut out = String::from("digraph kiln {\n");
        out.push_str("  graph [rankdir=LR, fontname=\"Helvetica\"];\n");
        out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
        out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
        for n in &self.nodes {
            let label = dot_label(&node_lines(n));
            let mut attrs = vec![format!("label=\"{label}\"")];
            let mut style = Vec::new();
            if n.kind == "stage" {
                attrs.push("shape=box".into());
                style.push("rounded");
            } else {
                attrs.push("shape=ellipse".into());
            }
            if n.target {
                style.push("bold");
            }
            if !n.needed {
                style.push("dashed");
                attrs.push("color=grey".into());
                attrs.push("fontcolor=grey".into());
            } else if n.run.as_ref().is_some_and(|r| r.failed) {
                attrs.push("color=red".into());
                attrs.push("fontcolor=red".into());
            } else if n.run.is_some() {
                style.push("filled");
                attrs.push("fillcolor=\"#e6f2e6\"".into());
            }
            if !style.is_empty() {
                attrs.push(format!("style=\"{}\"", style.join(",")));
            }
            let _ = writeln!(out, "  {} [{}];", n.id, attrs.join(", "));
        }
        for e in &self.edges {
            let label = dot_label(&[kind_text(e.kind).to_owned(), format!("line {}", e.line)]);
            let mut attrs = vec![format!("label=\"{label}\"")];
            if e.kind == DepKind::MountFrom {
                attrs.push("arrowhead=odot".into());
            }
            if !e.needed {
                attrs.push("style=dashed".into());
                attrs.push("color=grey".into());
                attrs.push("fontcolor=grey".into());
            }
            let _ = writeln!(out, "  {} -> {} [{}];", e.from, e.to, attrs.join(", "));
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid `flowchart`: stages as rounded boxes, images as stadiums, pruned nodes in
    /// the `pruned` class (dashed, grey) with dotted edges, the target in `target`.
    pub(crate) fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for n in &self.nodes {
            let label = node_lines(n)
                .iter()
                .map(|l| mermaid_escape(l))
                .collect::<Vec<_>>()
                .join("<br/>");
            let (open, close) = if n.kind == "stage" {
                ("(\"", "\")")
            } else {
                ("([\"", "\"])")
            };
            let _ = writeln!(out, "  {}{open}{label}{close}", n.id);
        }
        for e in &self.edges {
            let arrow = if e.needed { "-->" } else { "-.->" };
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}, line {}\"| {}",
                e.from,
                kind_text(e.kind),
                e.line,
                e.to
            );
        }
        out.push_str("  classDef pruned stroke-dasharray:5 5,stroke:#999999,color:#999999\n");
        out.push_str("  classDef target stroke-width:3px\n");
        out.push_str("  classDef ran fill:#e6f2e6\n");
        out.push_str("  classDef failed stroke:#cc0000,color:#cc0000\n");
        let class = |name: &str, pick: &dyn Fn(&NodeDoc) -> bool| {
            let ids: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| pick(n))
                .map(|n| n.id.as_str())
                .collect();
            (!ids.is_empty()).then(|| format!("  class {} {name}\n", ids.join(",")))
        };
        let failed = |n: &NodeDoc| n.run.as_ref().is_some_and(|r| r.failed);
        for line in [
            class("pruned", &|n| !n.needed),
            class("target", &|n| n.target),
            class("ran", &|n| n.run.is_some() && !failed(n)),
            class("failed", &failed),
        ]
        .into_iter()
        .flatten()
        {
            out.push_str(&line);
        }
        out
    }

    /// The JSON document (see the module's documentation).
    pub(crate) fn json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Renders in `format`.
    pub(crate) fn render(&self, format: GraphFormat) -> anyhow::Result<String> {
        Ok(match format {
            GraphFormat::Text => self.text(),
            GraphFormat::Dot => self.dot(),
            GraphFormat::Mermaid => self.mermaid(),
            GraphFormat::Json => self.json()? + "\n",
        })
    }
}

/// How a graph is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    /// For people.
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid `flowchart`.
    Mermaid,
    /// One JSON document.
    Json,
}

impl GraphFormat {
    /// The format a file's name asks for: `.dot`/`.gv`, `.mmd`/`.mermaid`, `.json`, `.txt`.
    pub(crate) fn for_file(path: &Path) -> anyhow::Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("dot" | "gv") => Ok(Self::Dot),
            Some("mmd" | "mermaid") => Ok(Self::Mermaid),
            Some("json") => Ok(Self::Json),
            Some("txt") => Ok(Self::Text),
            _ => anyhow::bail!(
                "invalid `--graph {}`: the file name does not say which format to write\nhint: end it with `.dot` (Graphviz), `.mmd` (Mermaid), `.json` or `.txt`",
                path.display()
            ),
        }
    }
}

/// The lines of a node's label.
fn node_lines(n: &NodeDoc) -> Vec<String> {
    let mut lines = vec![n.name.clone()];
    if n.kind == "stage" {
        let mut what = format!(
            "stage {}, line {}",
            n.index.unwrap_or_default(),
            n.line.unwrap_or_default()
        );
        if n.target {
            what.push_str(", target");
        }
        lines.push(what);
        if n.base.as_deref() == Some("scratch") {
            lines.push("FROM scratch".into());
        }
        if let Some(p) = &n.platform {
            lines.push(format!("platform {p}"));
        }
        lines.extend(args_text(&n.args));
    }
    if !n.needed {
        lines.push("(pruned)".into());
    }
    if let Some(run) = &n.run {
        lines.push(run.summary());
    }
    lines
}

fn args_text(args: &[ResolvedArg]) -> Vec<String> {
    args.iter()
        .map(|a| match &a.value {
            Some(v) => format!("ARG {}={v}", a.name),
            None => format!("ARG {} (unset)", a.name),
        })
        .collect()
}

fn kind_text(kind: DepKind) -> &'static str {
    match kind {
        DepKind::Base => "FROM",
        DepKind::CopyFrom => "COPY --from",
        DepKind::MountFrom => "RUN --mount from",
    }
}

/// Label lines as the inside of one DOT string: backslashes and quotes escaped, lines
/// joined with `\n`.
fn dot_label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| {
            l.chars()
                .flat_map(|c| match c {
                    '\\' => vec!['\\', '\\'],
                    '"' => vec!['\\', '"'],
                    '\n' | '\r' => vec![' '],
                    c => vec![c],
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\\n")
}

/// Text for inside a quoted Mermaid label: Mermaid's entity codes for the characters its
/// parser or HTML would take.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{dot_label, mermaid_escape};

    #[test]
    fn labels_are_escaped_for_each_language() {
        assert_eq!(
            dot_label(&["a\"b\\c".into(), "x\ny".into()]),
            "a\\\"b\\\\c\\nx y"
        );
        assert_eq!(mermaid_escape("a\"<b>#&`"), "a#quot;#lt;b#gt;#35;#amp;#96;");
    }
}
