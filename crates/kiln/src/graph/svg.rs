//! The stage graph as inline SVG, for the HTML report (`kiln build --report`,
//! `kiln analyze --format html -f`): stages and images in columns by depth (a node sits one
//! column right of the deepest node it reads), edges as curves labelled with their
//! instruction and line, each stage with its time (after a build) and its size (when the
//! caller knows it). The layout is computed here, so the same graph always draws the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kiln_frontend::DepKind;

use super::{GraphDoc, NodeDoc, kind_text};
use crate::markup::escape;

const WIDTH: u32 = 230;
const LINE: u32 = 16;
const PAD: u32 = 8;
const COLUMN_GAP: u32 = 130;
const ROW_GAP: u32 = 24;

/// A stage's size: its content, and what it adds over its base.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StageSize {
    pub size: u64,
    pub own: u64,
}

struct Placed {
    x: u32,
    y: u32,
    height: u32,
    lines: Vec<String>,
}

impl GraphDoc {
    /// The graph as one `<svg>` element; `sizes` by stage label.
    pub(crate) fn svg(&self, sizes: &BTreeMap<String, StageSize>) -> String {
        let index = |id: &str| self.nodes.iter().position(|n| n.id == id);
        // Depth: one more than the deepest node an edge comes from (edges never form a cycle;
        // the loop is bounded anyway).
        let mut depth = vec![0u32; self.nodes.len()];
        for _ in 0..self.nodes.len() {
            let mut moved = false;
            for e in &self.edges {
                if let (Some(f), Some(t)) = (index(&e.from), index(&e.to))
                    && depth[t] < depth[f] + 1
                {
                    depth[t] = depth[f] + 1;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        let mut next_y: BTreeMap<u32, u32> = BTreeMap::new();
        let placed: Vec<Placed> = self
            .nodes
            .iter()
            .zip(&depth)
            .map(|(n, &d)| {
                let lines = lines(n, sizes.get(&n.name).copied());
                let height = PAD * 2 + LINE * u32::try_from(lines.len()).unwrap_or(1);
                let y = next_y.entry(d).or_insert(PAD);
                let at = *y;
                *y += height + ROW_GAP;
                Placed {
                    x: PAD + d * (WIDTH + COLUMN_GAP),
                    y: at,
                    height,
                    lines,
                }
            })
            .collect();
        let columns = depth.iter().max().map_or(1, |d| d + 1);
        let width = PAD * 2 + columns * WIDTH + (columns - 1) * COLUMN_GAP;
        let height = next_y.values().max().copied().unwrap_or(PAD) + PAD;
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg class="stage-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="stage graph">"#
        );
        out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##);
        for e in &self.edges {
            let (Some(f), Some(t)) = (index(&e.from), index(&e.to)) else {
                continue;
            };
            let (a, b) = (&placed[f], &placed[t]);
            let (x1, y1) = (a.x + WIDTH, a.y + a.height / 2);
            let (x2, y2) = (b.x, b.y + b.height / 2);
            let mid = u32::midpoint(x1, x2);
            let label = format!("{}, line {}", kind_text(e.kind), e.line);
            let mut class = String::from("edge");
            if e.kind == DepKind::MountFrom {
                class.push_str(" mount");
            }
            if !e.needed {
                class.push_str(" pruned");
            }
            let _ = write!(
                out,
                r#"<g class="{class}"><title>{title}</title><path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"/><text x="{mid}" y="{ly}" text-anchor="middle">{label}</text></g>"#,
                title = escape(&format!(
                    "{} -> {}: {label}",
                    self.nodes[f].name, self.nodes[t].name
                )),
                ly = u32::midpoint(y1, y2).saturating_sub(4),
                label = escape(&label),
            );
        }
        for (n, p) in self.nodes.iter().zip(&placed) {
            let mut class = format!("node {}", n.kind);
            if n.target {
                class.push_str(" target");
            }
            if !n.needed {
                class.push_str(" pruned");
            }
            match &n.run {
                Some(r) if r.failed => class.push_str(" failed"),
                Some(_) => class.push_str(" ran"),
                None => {}
            }
            let rx = if n.kind == "stage" { 6 } else { 18 };
            let _ = write!(
                out,
                r#"<g class="{class}" data-stage="{name}"><title>{title}</title><rect x="{x}" y="{y}" width="{WIDTH}" height="{h}" rx="{rx}"/>"#,
                name = escape(&n.name),
                title = escape(&p.lines.join("\n")),
                x = p.x,
                y = p.y,
                h = p.height,
            );
            for (i, line) in p.lines.iter().enumerate() {
                let _ = write!(
                    out,
                    r#"<text x="{x}" y="{y}"{bold}>{text}</text>"#,
                    x = p.x + PAD,
                    y = p.y + PAD + LINE * (u32::try_from(i).unwrap_or(0) + 1) - 4,
                    bold = if i == 0 { r#" class="name""# } else { "" },
                    text = escape(&clip(line, 34)),
                );
            }
            out.push_str("</g>");
        }
        out.push_str("</svg>");
        out
    }
}

/// A node's lines: its name, what it is, its run and its size.
fn lines(n: &NodeDoc, size: Option<StageSize>) -> Vec<String> {
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
        if let Some(run) = &n.run {
            lines.push(run.summary());
        } else if n.needed {
            lines.push("no steps ran here".into());
        }
        if let Some(s) = size {
            lines.push(format!(
                "{} ({} over its base)",
                crate::cmd::images::human_size(s.size),
                crate::cmd::images::human_size(s.own)
            ));
        }
    } else {
        lines.push("image".into());
    }
    if !n.needed {
        lines.push("(pruned)".into());
    }
    lines
}

/// `s` cut to `max` characters with an ellipsis (the full text is in the node's title).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::StageSize;
    use crate::cmd::outline::DockerfileSource;
    use crate::graph::{GraphDoc, StageRun, StepRun};

    #[test]
    fn stages_sit_right_of_what_they_read_with_times_and_sizes() {
        let src = DockerfileSource {
            path: PathBuf::from("Dockerfile"),
            text: "FROM busybox AS build\nRUN make\nFROM scratch AS final\nCOPY --from=build /out /out\n"
                .into(),
        };
        let df = kiln_syntax::parse(&src.text).unwrap();
        let plan = kiln_frontend::plan(&df, &kiln_frontend::BuildOptions::default()).unwrap();
        let mut runs = BTreeMap::new();
        runs.insert(
            "build".to_owned(),
            StageRun {
                seconds: 1.5,
                failed: false,
                steps: vec![StepRun {
                    index: 2,
                    name: "RUN make".into(),
                    status: "done",
                    seconds: 1.5,
                }],
            },
        );
        let doc = GraphDoc::new(&plan, &src, &runs);
        let mut sizes = BTreeMap::new();
        sizes.insert(
            "final".to_owned(),
            StageSize {
                size: 2_000_000,
                own: 2_000_000,
            },
        );
        let svg = doc.svg(&sizes);
        assert_eq!(svg, doc.svg(&sizes), "deterministic");
        let x_of = |stage: &str| -> u32 {
            let at = svg.find(&format!("data-stage=\"{stage}\"")).unwrap();
            let rest = &svg[at..];
            let x = rest.find("<rect x=\"").unwrap() + 9;
            rest[x..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(x_of("busybox") < x_of("build"));
        assert!(x_of("build") < x_of("final"), "{svg}");
        assert!(svg.contains("COPY --from, line 4"), "{svg}");
        assert!(svg.contains("1.50s, 1 steps"), "{svg}");
        assert!(svg.contains("2MB (2MB over its base)"), "{svg}");
        assert!(svg.contains("class=\"node stage ran\""), "{svg}");
    }
}
