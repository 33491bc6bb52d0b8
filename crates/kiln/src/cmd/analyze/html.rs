//! `kiln analyze --format html` and `kiln build --report`: the report as one self-contained
//! page that a CI job keeps as an artifact. Inline CSS, inline SVG drawn here, and one small
//! inline script (selecting a layer, filtering the wasted files); nothing is fetched, and
//! the page's Content-Security-Policy forbids fetching anything and allows only that script
//! (by its hash), so a string that escaped its escaping still could not run.
//!
//! Every string from the image or the Dockerfile passes through [`escape`]. The page is
//! deterministic: the same report renders byte for byte the same.
//!
//! Sections: a summary; the stage graph with each stage's time and size (after a build, or
//! from the Dockerfile with `-f`; otherwise a note); the layers as bars coloured by the
//! instruction that made them, each with its biggest changes (wasted files marked); a
//! treemap of the final filesystem by directory; the wasted files by fix; dive's numbers.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use kiln_inspect::{ChangeKind, Kind, NodeId};
use sha2::{Digest as _, Sha256};

use super::Report;
use super::render::{made_by, percent, source, what};
use super::treemap;
use crate::cmd::images::human_size;
use crate::graph::StageSize;
use crate::markup::{base64, escape};

const STYLE: &str = r#"
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f7f8fa; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid #d8dce3; padding-bottom: 4px; }
.sub { color: #5b6474; margin: 0 0 16px; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: #fff; border: 1px solid #d8dce3; border-radius: 6px; padding: 10px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; } .card span { color: #5b6474; font-size: 12px; }
.card.bad b { color: #b3261e; }
.note { color: #5b6474; font-style: italic; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid #d8dce3; border-radius: 6px; padding: 8px; }
svg text { font-size: 12px; fill: #1d2330; }
.stage-graph .node rect { fill: #fff; stroke: #6b7385; stroke-width: 1.2; }
.stage-graph .node.image rect { fill: #eef1f6; }
.stage-graph .node.ran rect { fill: #e6f2e6; }
.stage-graph .node.failed rect { stroke: #cc0000; fill: #fdecea; }
.stage-graph .node.target rect { stroke-width: 3; }
.stage-graph .node.pruned rect { stroke-dasharray: 5 4; stroke: #9aa1ad; }
.stage-graph .node.pruned text { fill: #9aa1ad; }
.stage-graph .name { font-weight: 600; }
.stage-graph .edge path { fill: none; stroke: #555; stroke-width: 1.3; }
.stage-graph .edge.mount path { stroke-dasharray: 2 3; }
.stage-graph .edge.pruned path { stroke: #aaa; stroke-dasharray: 5 4; }
.stage-graph .edge text { font-size: 10px; fill: #5b6474; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e6e9ee; vertical-align: top; }
th { background: #eef1f6; } td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
code, .path { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; word-break: break-all; }
.bar-run { fill: #e8912d; } .bar-copy { fill: #3b7dd8; } .bar-add { fill: #8e5cc9; } .bar-other { fill: #8a8f98; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
.legend .run { background: #e8912d; } .legend .copy { background: #3b7dd8; } .legend .add { background: #8e5cc9; } .legend .other { background: #8a8f98; }
.layers .row { cursor: pointer; } .layers .row:hover .hit, .layers .row.selected .hit { fill: #e3ebfa; }
.layers .hit { fill: transparent; }
.layer-detail { margin-top: 8px; }
.added { color: #1a7f37; } .changed { color: #9a6700; } .removed { color: #b3261e; }
tr.wasted td { background: #fff4e5; } .tag { font-size: 11px; background: #ffd8a8; border-radius: 3px; padding: 0 4px; margin-left: 6px; }
#waste tr.selected td { background: #e3ebfa; }
.treemap rect { stroke: #fff; stroke-width: 1; } .treemap text { font-size: 11px; pointer-events: none; }
.stepbar { display: inline-block; height: 9px; background: #6b8fd6; border-radius: 2px; }
input[type=search] { padding: 4px 8px; margin-bottom: 8px; width: 320px; }
footer { margin-top: 32px; color: #8a8f98; font-size: 12px; }
"#;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  function select(layer) {
    document.querySelectorAll("[data-layer]").forEach(function (e) {
      e.classList.toggle("selected", e.getAttribute("data-layer") === layer);
    });
    document.querySelectorAll(".layer-detail").forEach(function (d) {
      d.hidden = d.getAttribute("data-detail") !== layer;
    });
  }
  document.querySelectorAll(".layers .row").forEach(function (row) {
    row.addEventListener("click", function () { select(row.getAttribute("data-layer")); });
  });
  var filter = document.getElementById("waste-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      document.querySelectorAll("#waste tbody tr").forEach(function (r) {
        r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
  var first = document.querySelector(".layers .row[data-biggest]");
  if (first) { select(first.getAttribute("data-layer")); }
  document.body.setAttribute("data-rendered", "ok");
})();
"##;

/// How many changes each layer's detail lists.
const DETAIL_ROWS: usize = 25;

/// The page.
pub(super) fn page(report: &Report<'_>) -> String {
    let a = report.analysis;
    let script_hash = base64(&Sha256::digest(SCRIPT.as_bytes()));
    let mut s = String::with_capacity(64 * 1024);
    let title = format!("kiln analyze: {}", report.name);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    summary(&mut s, report);
    stage_graph(&mut s, report);
    layers(&mut s, report);
    let _ = writeln!(
        s,
        "<h2>The final image by directory</h2>\n<p class=\"sub\">{} in {} files; each rectangle's area is its bytes.</p>",
        human_size(a.total.bytes),
        a.total.files
    );
    s.push_str("<div class=\"scroll\">");
    treemap_svg(&mut s, report);
    s.push_str("</div>\n");
    waste(&mut s, report);
    dive(&mut s, report);
    let _ = write!(
        s,
        "<footer>kiln {} &middot; no network, no external scripts</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn summary(s: &mut String, report: &Report<'_>) {
    let a = report.analysis;
    let _ = writeln!(
        s,
        "<h1>{}</h1>\n<p class=\"sub\">image <code>{}</code></p>",
        escape(report.name),
        escape(&report.image.id().to_string())
    );
    let wasted = a.wasted_bytes();
    let mut cards = vec![
        (human_size(Report::image_size(a)), "size", false),
        (a.layers.len().to_string(), "layers", false),
        (a.total.files.to_string(), "files", false),
        (human_size(wasted), "wasted (kiln)", wasted > 0),
        (
            percent(a.dive.efficiency),
            "efficiency (dive)",
            a.dive.efficiency < 0.9,
        ),
    ];
    if let Some(results) = &report.results {
        let failed = results
            .iter()
            .filter(|r| r.status == kiln_inspect::ci::Status::Fail)
            .count();
        cards.push((
            if failed == 0 {
                "PASS".to_owned()
            } else {
                format!("FAIL ({failed})")
            },
            "CI rules",
            failed > 0,
        ));
    }
    s.push_str("<div class=\"cards\">");
    for (value, label, bad) in cards {
        let _ = write!(
            s,
            "<div class=\"card{}\"><b>{}</b><span>{}</span></div>",
            if bad { " bad" } else { "" },
            escape(&value),
            label
        );
    }
    s.push_str("</div>\n");
}

fn stage_graph(s: &mut String, report: &Report<'_>) {
    s.push_str("<h2>Stages</h2>\n");
    let Some(graph) = &report.graph else {
        s.push_str("<p class=\"note\">No stage graph: give the Dockerfile the image was built from (<code>kiln analyze -f Dockerfile</code>), or use <code>kiln build --report</code>, which also shows each stage's time.</p>\n");
        return;
    };
    let sizes: BTreeMap<String, StageSize> = report
        .stages
        .iter()
        .map(|st| {
            (
                st.name.clone(),
                StageSize {
                    size: st.size,
                    own: st.own,
                },
            )
        })
        .collect();
    if report.stages.is_empty() {
        s.push_str("<p class=\"note\">Drawn from the Dockerfile: this image was not built by this command, so the stages carry no times or sizes.</p>\n");
    }
    let _ = writeln!(s, "<div class=\"scroll\">{}</div>", graph.svg(&sizes));
    let runs: Vec<_> = graph.stage_runs().collect();
    if runs.is_empty() {
        return;
    }
    let longest = runs
        .iter()
        .flat_map(|(_, r)| r.steps.iter().map(|st| st.seconds))
        .fold(0.0f64, f64::max);
    s.push_str("<h3>Steps</h3>\n<table><thead><tr><th>stage</th><th>step</th><th>status</th><th>time</th><th></th></tr></thead><tbody>\n");
    for (stage, run) in runs {
        for step in &run.steps {
            let width = if longest > 0.0 {
                (step.seconds / longest * 200.0).max(1.0)
            } else {
                1.0
            };
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{:.2}s</td><td><svg width=\"202\" height=\"10\"><rect class=\"bar-run\" x=\"0\" y=\"1\" width=\"{width:.1}\" height=\"8\"/></svg></td></tr>",
                escape(stage),
                escape(&step.name),
                step.status,
                step.seconds
            );
        }
    }
    s.push_str("</tbody></table>\n");
}

/// The instruction keyword that made `layer`, as a bar class: `run`, `copy`, `add`, `other`.
fn keyword(report: &Report<'_>, layer: usize) -> (&'static str, String) {
    let kw = if let Some((_, src)) = source(report, layer) {
        src.keyword.clone()
    } else {
        let by = report.analysis.layers[layer]
            .info
            .history
            .as_ref()
            .map_or("", |(_, by)| by.as_str())
            .trim();
        if let Some(rest) = by.strip_prefix("/bin/sh -c #(nop)") {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase()
        } else if by.starts_with("/bin/sh -c") || by.starts_with('|') {
            "RUN".to_owned()
        } else {
            by.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase()
        }
    };
    let class = match kw.as_str() {
        "RUN" => "run",
        "COPY" => "copy",
        "ADD" => "add",
        _ => "other",
    };
    (class, kw)
}

fn layers(s: &mut String, report: &Report<'_>) {
    const ROW: usize = 24;
    let a = report.analysis;
    s.push_str("<h2>Layers</h2>\n<p class=\"legend\"><span><i class=\"run\"></i>RUN</span><span><i class=\"copy\"></i>COPY</span><span><i class=\"add\"></i>ADD</span><span><i class=\"other\"></i>other or unknown</span> &middot; click a layer for its biggest changes</p>\n");
    let max = a.layers.iter().map(|l| l.size).max().unwrap_or(0).max(1);
    let biggest = a
        .layers
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.size.cmp(&y.1.size).then(y.0.cmp(&x.0)))
        .map(|(i, _)| i);
    let height = ROW * a.layers.len() + 4;
    let _ = write!(
        s,
        "<div class=\"scroll\"><svg class=\"layers\" xmlns=\"http://www.w3.org/2000/svg\" width=\"1040\" height=\"{height}\" viewBox=\"0 0 1040 {height}\">"
    );
    for (i, l) in a.layers.iter().enumerate() {
        let y = i * ROW + 2;
        #[allow(clippy::cast_precision_loss)]
        let width = (l.size as f64 / max as f64 * 420.0).max(2.0);
        let (class, _) = keyword(report, i);
        let by = made_by(report, i);
        let _ = write!(
            s,
            "<g class=\"row\" data-layer=\"{i}\"{big}><title>{title}</title><rect class=\"hit\" x=\"0\" y=\"{y}\" width=\"1040\" height=\"{ROW}\"/>\
             <text x=\"4\" y=\"{ty}\">#{i}</text><rect class=\"bar-{class}\" x=\"40\" y=\"{by_}\" width=\"{width:.1}\" height=\"16\" rx=\"2\"/>\
             <text x=\"{sx:.1}\" y=\"{ty}\">{size}</text><text x=\"540\" y=\"{ty}\">{text}</text></g>",
            big = if Some(i) == biggest {
                " data-biggest=\"1\""
            } else {
                ""
            },
            title = escape(&format!("layer {i}: {} — {by}", human_size(l.size))),
            ty = y + 16,
            by_ = y + 4,
            sx = 46.0 + width,
            size = human_size(l.size),
            text = escape(&super::render::short(&by, 70)),
        );
    }
    s.push_str("</svg></div>\n");
    let wasted: HashSet<(usize, NodeId)> = a.waste.iter().map(|w| (w.layer, w.node)).collect();
    for (i, l) in a.layers.iter().enumerate() {
        let _ = write!(
            s,
            "<div class=\"layer-detail\" data-detail=\"{i}\"{hidden}><h3>Layer {i}: <code>{}</code></h3>\
             <p class=\"sub\">{} &middot; added {} &middot; changed {} &middot; removed {} &middot; digest <code>{}</code></p>",
            escape(&made_by(report, i)),
            human_size(l.size),
            tally(l.added),
            tally(l.changed),
            tally(l.removed),
            escape(&l.info.digest.to_string()),
            hidden = if Some(i) == biggest { "" } else { " hidden" },
        );
        let mut shown: Vec<_> = l
            .changes
            .iter()
            .filter(|c| c.kind != Kind::Dir || c.change == ChangeKind::Removed)
            .collect();
        shown.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(x.node.cmp(&y.node)));
        if shown.is_empty() {
            s.push_str(
                "<p class=\"note\">No files: this layer changes only directories.</p></div>\n",
            );
            continue;
        }
        s.push_str("<table><thead><tr><th></th><th>path</th><th>bytes</th></tr></thead><tbody>");
        for c in shown.iter().take(DETAIL_ROWS) {
            let is_wasted = wasted.contains(&(i, c.node));
            let _ = write!(
                s,
                "<tr{}><td class=\"{}\">{}</td><td class=\"path\">{}{}</td><td class=\"num\">{}</td></tr>",
                if is_wasted { " class=\"wasted\"" } else { "" },
                c.change.name(),
                c.change.name(),
                escape(&a.tree.path(c.node)),
                if is_wasted {
                    "<span class=\"tag\">wasted</span>"
                } else {
                    ""
                },
                human_size(c.bytes)
            );
        }
        s.push_str("</tbody></table>");
        if shown.len() > DETAIL_ROWS {
            let _ = write!(
                s,
                "<p class=\"note\">and {} more</p>",
                shown.len() - DETAIL_ROWS
            );
        }
        s.push_str("</div>\n");
    }
}

fn tally(t: kiln_inspect::Tally) -> String {
    format!("{} ({})", t.files, human_size(t.bytes))
}

fn treemap_svg(s: &mut String, report: &Report<'_>) {
    const W: f64 = 1040.0;
    const H: f64 = 560.0;
    let a = report.analysis;
    let cells = treemap::layout(a, W, H);
    let _ = write!(
        s,
        "<svg class=\"treemap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">"
    );
    if cells.is_empty() {
        let _ = write!(
            s,
            "<text x=\"10\" y=\"20\">The final image holds no file bytes.</text>"
        );
    }
    for c in &cells {
        let hue = (c.top * 47 + 200) % 360;
        let light = if c.leaf {
            62 + c.depth * 6
        } else {
            88 - c.depth * 4
        };
        let path = c.node.map_or_else(|| c.label.clone(), |n| a.tree.path(n));
        let _ = write!(
            s,
            "<g><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"hsl({hue},55%,{light}%)\"/>",
            escape(&format!("{path}: {}", human_size(c.bytes))),
            c.rect.x,
            c.rect.y,
            c.rect.w,
            c.rect.h,
        );
        let fits = c.rect.w > 44.0 && c.rect.h > 13.0;
        if fits {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let chars = ((c.rect.w - 6.0) / 6.5) as usize;
            let label = format!("{} {}", c.label, human_size(c.bytes));
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                c.rect.x + 3.0,
                c.rect.y + 11.0,
                escape(&super::render::short(&label, chars.max(2)))
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
}

fn waste(s: &mut String, report: &Report<'_>) {
    let a = report.analysis;
    let findings = a.findings();
    let _ = writeln!(
        s,
        "<h2>Wasted files</h2>\n<p class=\"sub\">{} in {} finding{}, by the layer that wrote them and how to stop it.</p>",
        human_size(a.wasted_bytes()),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    if findings.is_empty() {
        s.push_str("<p class=\"note\">Nothing is wasted.</p>\n");
        return;
    }
    s.push_str("<input type=\"search\" id=\"waste-filter\" placeholder=\"filter by path, layer or fix\">\n<table id=\"waste\"><thead><tr><th>wasted</th><th>files</th><th>layer</th><th>why</th><th>largest files</th><th>fix</th></tr></thead><tbody>\n");
    for f in &findings {
        let examples: Vec<String> = f
            .examples
            .iter()
            .map(|(n, b)| {
                format!(
                    "<div class=\"path\">{} <span class=\"num\">{}</span></div>",
                    escape(&a.tree.path(*n)),
                    human_size(*b)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "<tr data-layer=\"{layer}\"><td class=\"num\">{}</td><td class=\"num\">{}</td><td>#{layer} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            human_size(f.bytes),
            f.files,
            escape(&super::render::short(&made_by(report, f.layer), 60)),
            escape(&what(report, f)),
            examples.join(""),
            escape(super::render::fix(f.reason)),
            layer = f.layer,
        );
    }
    s.push_str("</tbody></table>\n");
}

fn dive(s: &mut String, report: &Report<'_>) {
    let d = &report.analysis.dive;
    let a = report.analysis;
    let _ = writeln!(
        s,
        "<h2>dive's numbers</h2>\n<table><tbody><tr><td>efficiency</td><td class=\"num\">{}</td></tr><tr><td>wastedBytes</td><td class=\"num\">{}</td></tr><tr><td>userWastedPercent</td><td class=\"num\">{}</td></tr></tbody></table>",
        percent(d.efficiency),
        d.wasted_bytes,
        percent(d.wasted_user_percent)
    );
    if let Some(results) = &report.results {
        s.push_str("<h3>CI rules</h3><table><tbody>");
        for r in results {
            let status = match r.status {
                kiln_inspect::ci::Status::Pass => "PASS",
                kiln_inspect::ci::Status::Fail => "FAIL",
                kiln_inspect::ci::Status::Skip => "SKIP",
            };
            let _ = write!(
                s,
                "<tr><td>{status}</td><td>{}</td><td>{}</td></tr>",
                r.rule.key(),
                escape(&r.message)
            );
        }
        s.push_str("</tbody></table>\n");
    }
    if !d.inefficiencies.is_empty() {
        s.push_str("<h3>Inefficient files</h3><table><thead><tr><th>count</th><th>bytes</th><th>path</th></tr></thead><tbody>");
        for i in d.inefficiencies.iter().take(50) {
            let _ = write!(
                s,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"path\">{}</td></tr>",
                i.count,
                human_size(i.bytes),
                escape(&a.tree.path(i.node))
            );
        }
        s.push_str("</tbody></table>\n");
        if d.inefficiencies.len() > 50 {
            let _ = writeln!(
                s,
                "<p class=\"note\">and {} more</p>",
                d.inefficiencies.len() - 50
            );
        }
    }
}
