//! The stage graph of a plan as nodes and edges, for drawing (`kiln graph`, `kiln build
//! --graph`): every stage and every image a stage reads, and one edge per reading
//! instruction (a FROM, a `COPY --from`, a `RUN --mount from=`), each marked with whether
//! the target needs it.
//!
//! The plan already holds all of this (a stage's [`Dep`](crate::Dep)s and
//! [`ImageRef`](crate::ImageRef)s); this module only gives it one shape and one order, so
//! that every renderer draws the same graph: stages in file order, then images in the order
//! they are first named; the edges into a stage in the order of their instructions.

use kiln_syntax::TextRange;

use crate::plan::{Base, DepKind, Plan};

/// A node: a stage of the plan, or an image a stage reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The stage with this index in [`Plan::stages`].
    Stage(usize),
    /// An image reference, as written after expansion (a FROM base, or a `--from` that names
    /// no stage). `scratch` is no node: it is nothing to read.
    Image(String),
}

/// One node of a [`StageGraph`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Whether the target needs it: for a stage, [`Stage::needed`](crate::Stage::needed);
    /// for an image, whether a needed stage reads it.
    pub needed: bool,
}

/// One edge: stage `to` reads node `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The node read, an index into [`StageGraph::nodes`].
    pub from: usize,
    /// The stage that reads it (an index into [`Plan::stages`], which is also its node's
    /// index: stages come first).
    pub to: usize,
    /// How: its FROM, `COPY --from` or `RUN --mount from=`.
    pub kind: DepKind,
    /// The part of the instruction that names `from` (the FROM's base, the `--from` flag, the
    /// mount); a base stage's ONBUILD trigger has the FROM's base.
    pub span: TextRange,
    /// Whether the target needs the stage `to` (and so this edge).
    pub needed: bool,
}

/// The stage graph of a plan ([`Plan::graph`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageGraph {
    /// The stages (node `i` is stage `i`), then the images.
    pub nodes: Vec<Node>,
    /// The edges, grouped by the stage they lead to (in file order), each group in the order
    /// of the instructions.
    pub edges: Vec<Edge>,
    /// The target stage's index (and node).
    pub target: usize,
}

impl Plan {
    /// This plan's stage graph.
    pub fn graph(&self) -> StageGraph {
        let mut nodes: Vec<Node> = self
            .stages
            .iter()
            .map(|s| Node {
                kind: NodeKind::Stage(s.index),
                needed: s.needed,
            })
            .collect();
        let mut edges = Vec::new();
        for stage in &self.stages {
            let image = |name: &str, nodes: &mut Vec<Node>| {
                let found = nodes
                    .iter()
                    .position(|n| matches!(&n.kind, NodeKind::Image(i) if i == name));
                let i = found.unwrap_or_else(|| {
                    nodes.push(Node {
                        kind: NodeKind::Image(name.to_owned()),
                        needed: false,
                    });
                    nodes.len() - 1
                });
                nodes[i].needed |= stage.needed;
                i
            };
            let mut into: Vec<Edge> = Vec::new();
            let edge = |from: usize, kind: DepKind, span: TextRange| Edge {
                from,
                to: stage.index,
                kind,
                span,
                needed: stage.needed,
            };
            if let Base::Image(name) = &stage.base {
                into.push(edge(
                    image(name, &mut nodes),
                    DepKind::Base,
                    stage.from.base.span,
                ));
            }
            into.extend(stage.deps.iter().map(|d| edge(d.stage, d.kind, d.span)));
            for r in &stage.image_refs {
                into.push(edge(image(&r.name, &mut nodes), r.kind, r.span));
            }
            // The FROM first (its span comes first anyway), then by position; stable, so an
            // instruction naming two nodes keeps its order.
            into.sort_by_key(|e| (e.kind != DepKind::Base, e.span.start));
            edges.extend(into);
        }
        StageGraph {
            nodes,
            edges,
            target: self.target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{NodeKind, StageGraph};
    use crate::plan::{BuildOptions, DepKind, plan};

    fn graph(src: &str, target: Option<&str>) -> StageGraph {
        let df = kiln_syntax::parse(src).unwrap();
        let opts = BuildOptions {
            target: target.map(str::to_owned),
            ..BuildOptions::default()
        };
        plan(&df, &opts).unwrap().graph()
    }

    /// Each edge as `(from node, to stage, kind, text of its span, needed)`.
    fn edges<'a>(g: &StageGraph, src: &'a str) -> Vec<(usize, usize, DepKind, &'a str, bool)> {
        g.edges
            .iter()
            .map(|e| {
                (
                    e.from,
                    e.to,
                    e.kind,
                    &src[e.span.start..e.span.end],
                    e.needed,
                )
            })
            .collect()
    }

    #[test]
    fn stages_images_and_every_reading_instruction() {
        let src = "FROM alpine AS a\nFROM scratch AS b\nCOPY --from=a /x /x\nFROM a AS c\nRUN --mount=from=b,target=/b --mount=from=tool:1,target=/t true\nCOPY --from=tool:1 / /\nCOPY --from=0 / /\n";
        let g = graph(src, None);
        let kinds: Vec<_> = g.nodes.iter().map(|n| n.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                NodeKind::Stage(0),
                NodeKind::Stage(1),
                NodeKind::Stage(2),
                NodeKind::Image("alpine".into()),
                NodeKind::Image("tool:1".into()),
            ]
        );
        assert_eq!(
            edges(&g, src),
            [
                (3, 0, DepKind::Base, "alpine", true),
                (0, 1, DepKind::CopyFrom, "--from=a", true),
                (0, 2, DepKind::Base, "a", true),
                (1, 2, DepKind::MountFrom, "--mount=from=b,target=/b", true),
                (
                    4,
                    2,
                    DepKind::MountFrom,
                    "--mount=from=tool:1,target=/t",
                    true
                ),
                (4, 2, DepKind::CopyFrom, "--from=tool:1", true),
                (0, 2, DepKind::CopyFrom, "--from=0", true),
            ]
        );
        assert_eq!(g.target, 2);
        // b is needed only through the target's mount.
        assert!(g.nodes.iter().all(|n| n.needed));
    }

    #[test]
    fn pruned_stages_and_the_images_only_they_read() {
        let src = "FROM busybox AS build\nFROM debian AS test\nCOPY --from=build / /\nFROM busybox\nCOPY --from=build / /\n";
        let g = graph(src, None);
        let needed: Vec<_> = g.nodes.iter().map(|n| n.needed).collect();
        // build, test, stage-2, busybox, debian
        assert_eq!(needed, [true, false, true, true, false]);
        let e = edges(&g, src);
        assert_eq!(e[1], (4, 1, DepKind::Base, "debian", false));
        assert_eq!(e[2], (0, 1, DepKind::CopyFrom, "--from=build", false));
        let g = graph(src, Some("test"));
        let needed: Vec<_> = g.nodes.iter().map(|n| n.needed).collect();
        assert_eq!(needed, [true, true, false, true, true]);
        assert_eq!(g.target, 1);
    }
}
