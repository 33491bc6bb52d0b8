//! `kiln analyze` as text (for people) and as JSON (dive's `--json` export, kiln's findings
//! under `kiln`).

use std::fmt::Write as _;

use kiln_inspect::ci::{Status, format_bytes};
use kiln_inspect::{Analysis, CacheKind, ChangeKind, Finding, Kind, WasteReason};
use serde_json::{Value, json};

use super::Report;
use super::source::SourceInstruction;
use crate::cmd::images::human_size;

/// dive's `command`: the history text without a leading `/bin/sh -c `.
fn dive_command(created_by: &str) -> &str {
    created_by.strip_prefix("/bin/sh -c ").unwrap_or(created_by)
}

pub(super) fn source<'r>(
    report: &'r Report<'_>,
    layer: usize,
) -> Option<(&'r str, &'r SourceInstruction)> {
    let (file, per_layer) = report.sources.as_ref()?;
    Some((file.as_str(), per_layer.get(layer)?.as_ref()?))
}

/// What made `layer`: `Dockerfile:3 RUN make`, else its history text.
pub(super) fn made_by(report: &Report<'_>, layer: usize) -> String {
    if let Some((file, s)) = source(report, layer) {
        return format!("{file}:{} {}", s.line, s.original);
    }
    match &report.analysis.layers[layer].info.history {
        Some((_, by)) if !by.is_empty() => dive_command(by).to_owned(),
        _ => "(no history)".to_owned(),
    }
}

pub(super) fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn tally(t: kiln_inspect::Tally) -> String {
    if t.files == 0 {
        "0".to_owned()
    } else {
        format!("{} ({})", t.files, human_size(t.bytes))
    }
}

/// What a finding is, in words.
pub(super) fn what(report: &Report<'_>, f: &Finding) -> String {
    let by = |layer: usize| format!("layer {layer} ({})", short(&made_by(report, layer), 50));
    match f.reason {
        WasteReason::Overwritten { by: l } => format!("written again by {}", by(l)),
        WasteReason::MetadataOnly { by: l } => {
            format!("rewritten with another mode or owner by {}", by(l))
        }
        WasteReason::Deleted { by: l } => format!("deleted by {}", by(l)),
        WasteReason::Cache(kind) => format!("{} left in the image", cache_words(kind)),
    }
}

fn cache_words(kind: CacheKind) -> &'static str {
    match kind {
        CacheKind::AptLists => "apt package lists (/var/lib/apt/lists)",
        CacheKind::AptCache => "apt's download cache (/var/cache/apt)",
        CacheKind::Apk => "apk's cache (/var/cache/apk)",
        CacheKind::Dnf => "dnf/yum's cache (/var/cache/dnf, /var/cache/yum)",
        CacheKind::Pip => "pip's cache (~/.cache/pip)",
        CacheKind::Npm => "npm's cache (~/.npm)",
        CacheKind::Yarn => "yarn's cache",
        CacheKind::Go => "Go's build and module caches",
        CacheKind::Cargo => "Cargo's registry (~/.cargo/registry)",
        CacheKind::Tmp => "temporary files (/tmp, /var/tmp)",
    }
}

/// How to stop wasting the bytes of a finding.
pub(crate) fn fix(reason: WasteReason) -> &'static str {
    match reason {
        WasteReason::Deleted { .. } => {
            "delete it in the same RUN that creates it; if COPY brings it, keep it out with .dockerignore; or make it in another stage and COPY --from only what the image needs"
        }
        WasteReason::Overwritten { .. } => {
            "write it once: merge the two steps, or leave it out of the first"
        }
        WasteReason::MetadataOnly { .. } => {
            "set mode and owner where the file is written (`COPY --chmod=... --chown=...`, or chmod/chown in the same RUN): a later chmod/chown copies the whole file into a new layer"
        }
        WasteReason::Cache(kind) => match kind {
            CacheKind::AptLists => {
                "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`, or mount a cache there: `RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked`"
            }
            CacheKind::AptCache => {
                "run `apt-get clean` in the same RUN, or `RUN --mount=type=cache,target=/var/cache/apt,sharing=locked`"
            }
            CacheKind::Apk => "use `apk add --no-cache`",
            CacheKind::Dnf => {
                "run `dnf clean all` (`yum clean all`) in the same RUN, or mount a cache on /var/cache/dnf"
            }
            CacheKind::Pip => {
                "use `pip install --no-cache-dir`, or `RUN --mount=type=cache,target=/root/.cache/pip`"
            }
            CacheKind::Npm => {
                "run `npm cache clean --force` in the same RUN, or `RUN --mount=type=cache,target=/root/.npm`"
            }
            CacheKind::Yarn => {
                "run `yarn cache clean` in the same RUN, or mount a cache on yarn's cache folder"
            }
            CacheKind::Go => {
                "`RUN --mount=type=cache,target=/root/.cache/go-build`, or build in another stage and COPY --from the binary"
            }
            CacheKind::Cargo => {
                "`RUN --mount=type=cache,target=/root/.cargo/registry`, or build in another stage and COPY --from the binary"
            }
            CacheKind::Tmp => {
                "remove temporary files in the RUN that makes them, or `RUN --mount=type=tmpfs,target=/tmp`"
            }
        },
    }
}

pub(super) fn percent(ratio: f64) -> String {
    format!("{:.2} %", ratio * 100.0)
}

fn sign(change: ChangeKind) -> char {
    match change {
        ChangeKind::Added => '+',
        ChangeKind::Changed => '~',
        ChangeKind::Removed => '-',
    }
}

/// The report as text.
pub(super) fn text(report: &Report<'_>) -> String {
    let a: &Analysis = report.analysis;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "image {} ({}): {} layers, {}, {} files",
        report.name,
        report.image.id().short(),
        a.layers.len(),
        human_size(Report::image_size(a)),
        a.total.files
    );
    let _ = writeln!(s);
    let mut rows = vec![[
        "LAYER".to_owned(),
        "SIZE".into(),
        "ADDED".into(),
        "CHANGED".into(),
        "REMOVED".into(),
        "MADE BY".into(),
    ]];
    for (i, l) in a.layers.iter().enumerate() {
        rows.push([
            i.to_string(),
            human_size(l.size),
            tally(l.added),
            tally(l.changed),
            tally(l.removed),
            short(&made_by(report, i), 80),
        ]);
    }
    table(&mut s, &rows);
    if report.top > 0 {
        for (i, l) in a.layers.iter().enumerate() {
            let mut biggest: Vec<_> = l
                .changes
                .iter()
                .filter(|c| c.kind != Kind::Dir || c.change == ChangeKind::Removed)
                .collect();
            if biggest.is_empty() {
                continue;
            }
            biggest.sort_by(|x, y| y.bytes.cmp(&x.bytes).then(x.node.cmp(&y.node)));
            let _ = writeln!(s, "\nlayer {i}: its biggest files");
            for c in biggest.iter().take(report.top) {
                let _ = writeln!(
                    s,
                    "  {} {:>9}  {}",
                    sign(c.change),
                    human_size(c.bytes),
                    a.tree.path(c.node)
                );
            }
        }
    }
    let findings = a.findings();
    let _ = writeln!(
        s,
        "\nwasted: {} in {} finding{}",
        human_size(a.wasted_bytes()),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in &findings {
        let _ = writeln!(
            s,
            "  {:>9}  layer {} ({})",
            human_size(f.bytes),
            f.layer,
            short(&made_by(report, f.layer), 70)
        );
        let _ = writeln!(
            s,
            "             {} file{} {}",
            f.files,
            if f.files == 1 { "" } else { "s" },
            what(report, f)
        );
        for (node, bytes) in f.examples.iter().take(report.top) {
            let _ = writeln!(
                s,
                "             {:>9}  {}",
                human_size(*bytes),
                a.tree.path(*node)
            );
        }
        let _ = writeln!(s, "             fix: {}", fix(f.reason));
    }
    if !report.stages.is_empty() {
        stages_text(&mut s, report);
    }
    let d = &a.dive;
    let _ = writeln!(s, "\ndive's numbers:");
    let _ = writeln!(s, "  efficiency:        {}", percent(d.efficiency));
    let wasted = if d.wasted_bytes > 0 {
        format!(" ({})", format_bytes(d.wasted_bytes))
    } else {
        String::new()
    };
    let _ = writeln!(s, "  wastedBytes:       {} bytes{wasted}", d.wasted_bytes);
    let _ = writeln!(
        s,
        "  userWastedPercent: {}",
        if d.wasted_bytes > 0 {
            percent(d.wasted_user_percent)
        } else {
            "0 %".to_owned()
        }
    );
    if d.inefficiencies.is_empty() {
        let _ = writeln!(s, "Inefficient Files: (None)");
    } else {
        let _ = writeln!(s, "Inefficient Files:");
        let _ = writeln!(s, "  {:<5}  {:<12}  File Path", "Count", "Wasted Space");
        let shown = report.top.saturating_mul(4);
        for i in d.inefficiencies.iter().take(shown) {
            let _ = writeln!(
                s,
                "  {:<5}  {:<12}  {}",
                i.count,
                format_bytes(i.bytes),
                a.tree.path(i.node)
            );
        }
        if d.inefficiencies.len() > shown {
            let _ = writeln!(s, "  ... and {} more", d.inefficiencies.len() - shown);
        }
    }
    if let Some(results) = &report.results {
        let _ = writeln!(s, "\nEvaluation:");
        let (mut pass, mut fail, mut skip) = (0, 0, 0);
        for r in results {
            let status = match r.status {
                Status::Pass => {
                    pass += 1;
                    "PASS"
                }
                Status::Fail => {
                    fail += 1;
                    "FAIL"
                }
                Status::Skip => {
                    skip += 1;
                    "SKIP"
                }
            };
            let _ = writeln!(s, "  {status}  {} ({})", r.rule.key(), r.message);
        }
        let tally: Vec<String> = [("pass", pass), ("fail", fail), ("skip", skip)]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        let _ = writeln!(
            s,
            "\n{} [{}]",
            if fail > 0 { "FAIL" } else { "PASS" },
            tally.join(" ")
        );
    }
    s
}

fn table<const N: usize>(s: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}   ");
            }
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

/// What each stage gave the final image: the bytes its `COPY --from` layers add.
pub(super) fn contributions(report: &Report<'_>) -> Vec<(String, u64, u64, Vec<String>)> {
    let mut out: Vec<(String, u64, u64, Vec<String>)> = Vec::new();
    for (i, l) in report.analysis.layers.iter().enumerate() {
        let Some((file, s)) = source(report, i) else {
            continue;
        };
        let Some(from) = &s.from else { continue };
        let from = from.to_ascii_lowercase();
        let files = l.added.files + l.changed.files;
        let bytes = l.added.bytes + l.changed.bytes;
        let at = format!("{file}:{}", s.line);
        match out.iter_mut().find(|c| c.0 == from) {
            Some(c) => {
                c.1 += files;
                c.2 += bytes;
                c.3.push(at);
            }
            None => out.push((from, files, bytes, vec![at])),
        }
    }
    out
}

/// Whether a `--from` value (lowercase) names the stage `st`: by its name, or by its
/// number (kiln names an unnamed stage `stage-N`).
pub(super) fn names_stage(from: &str, st: &super::StageRow) -> bool {
    let name = st.name.to_ascii_lowercase();
    from == name || name.strip_prefix("stage-") == Some(from)
}

fn stages_text(s: &mut String, report: &Report<'_>) {
    let given = contributions(report);
    let _ = writeln!(s, "\nstages:");
    let mut rows = vec![[
        "STAGE".to_owned(),
        "LAYERS".into(),
        "SIZE".into(),
        "OVER ITS BASE".into(),
        "IN THE FINAL IMAGE".into(),
    ]];
    for st in &report.stages {
        let gave = given.iter().find(|c| names_stage(&c.0, st)).map_or_else(
            || "-".to_owned(),
            |c| {
                format!(
                    "{} file{}, {} (COPY --from at {})",
                    c.1,
                    if c.1 == 1 { "" } else { "s" },
                    human_size(c.2),
                    c.3.join(", ")
                )
            },
        );
        rows.push([
            st.name.clone(),
            st.layers.to_string(),
            human_size(st.size),
            human_size(st.own),
            gave,
        ]);
    }
    let mut t = String::new();
    table(&mut t, &rows);
    for line in t.lines() {
        let _ = writeln!(s, "  {line}");
    }
    if let Some(last) = report.stages.last() {
        let others: u64 = report.stages[..report.stages.len() - 1]
            .iter()
            .map(|st| st.own)
            .sum();
        let copied: u64 = given.iter().map(|c| c.2).sum();
        if others > 0 {
            let _ = writeln!(
                s,
                "  the other stages made {}; {} of it reached the final image ({}, {})",
                human_size(others),
                human_size(copied),
                last.name,
                human_size(last.size)
            );
        }
    }
}

/// The report as dive's JSON export, plus `kiln`.
pub(super) fn json<'r>(report: &'r Report<'_>) -> Doc<'r> {
    let a = report.analysis;
    let layers: Vec<Value> = a
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let command = l
                .info
                .history
                .as_ref()
                .map_or("", |(_, by)| dive_command(by));
            // dive names a layer by its uncompressed digest (the tar's name in a `docker
            // save` archive).
            let id = l.info.diff_id.as_ref().unwrap_or(&l.info.digest);
            json!({
                "index": i,
                "id": id.hex(),
                "digestId": id.to_string(),
                "sizeBytes": l.dive_size,
                "command": command,
            })
        })
        .collect();
    let references: Vec<Value> = a
        .dive
        .inefficiencies
        .iter()
        .map(|i| json!({"count": i.count, "sizeBytes": i.bytes, "file": a.tree.path(i.node)}))
        .collect();
    let kiln_layers: Vec<LayerDoc<'_>> = a
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let t = |t: kiln_inspect::Tally| json!({"files": t.files, "bytes": t.bytes});
            let src = source(report, i).map(|(file, s)| {
                json!({"file": file, "line": s.line, "instruction": s.original, "stage": s.stage})
            });
            LayerDoc {
                index: i,
                digest: l.info.digest.to_string(),
                diff_id: l.info.diff_id.as_ref().map(ToString::to_string),
                size: l.size,
                history_index: l.info.history.as_ref().map(|h| h.0),
                created_by: l.info.history.as_ref().map(|h| h.1.as_str()),
                source: src,
                added: t(l.added),
                changed: t(l.changed),
                removed: t(l.removed),
                changes: Changes {
                    analysis: a,
                    layer: i,
                },
            }
        })
        .collect();
    let waste: Vec<Value> = a
        .findings()
        .iter()
        .map(|f| {
            let (reason, by, cache) = match f.reason {
                WasteReason::Overwritten { by } => ("overwritten", Some(by), None),
                WasteReason::MetadataOnly { by } => ("metadata-only", Some(by), None),
                WasteReason::Deleted { by } => ("deleted", Some(by), None),
                WasteReason::Cache(k) => ("cache", None, Some(k.name())),
            };
            json!({
                "layer": f.layer,
                "reason": reason,
                "byLayer": by,
                "cache": cache,
                "bytes": f.bytes,
                "files": f.files,
                "examples": f.examples.iter().map(|(n, b)| json!({"path": a.tree.path(*n), "bytes": b})).collect::<Vec<_>>(),
                "fix": fix(f.reason),
            })
        })
        .collect();
    let rules = report.results.as_ref().map(|rs| {
        rs.iter()
            .map(|r| {
                json!({
                    "name": r.rule.key(),
                    "status": match r.status { Status::Pass => "pass", Status::Fail => "fail", Status::Skip => "skip" },
                    "message": r.message,
                })
            })
            .collect::<Vec<_>>()
    });
    let given = contributions(report);
    let stages: Vec<Value> = report
        .stages
        .iter()
        .map(|st| {
            let gave = given.iter().find(|c| names_stage(&c.0, st));
            json!({
                "name": st.name,
                "layers": st.layers,
                "size": st.size,
                "ownSize": st.own,
                "finalFiles": gave.map(|c| c.1),
                "finalBytes": gave.map(|c| c.2),
            })
        })
        .collect();
    Doc {
        layer: layers,
        image: json!({
            "sizeBytes": a.dive.size_bytes,
            "inefficientBytes": a.dive.wasted_bytes,
            "efficiencyScore": a.dive.efficiency,
            "fileReference": references,
        }),
        kiln: KilnDoc {
            image: json!({
                "name": report.name,
                "id": report.image.id().to_string(),
                "size": Report::image_size(a),
                "files": a.total.files,
                "userWastedPercent": a.dive.wasted_user_percent,
            }),
            layers: kiln_layers,
            wasted_bytes: a.wasted_bytes(),
            waste,
            stages,
            rules,
            pass: report.passed(),
        },
    }
}

/// The JSON document: dive's `layer` and `image`, then kiln's own. Written as it is
/// serialized: a layer's list of changes is never held as JSON values all at once.
#[derive(serde::Serialize)]
pub(super) struct Doc<'a> {
    layer: Vec<Value>,
    image: Value,
    kiln: KilnDoc<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct KilnDoc<'a> {
    image: Value,
    layers: Vec<LayerDoc<'a>>,
    wasted_bytes: u64,
    waste: Vec<Value>,
    stages: Vec<Value>,
    rules: Option<Vec<Value>>,
    pass: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerDoc<'a> {
    index: usize,
    digest: String,
    diff_id: Option<String>,
    size: u64,
    history_index: Option<usize>,
    created_by: Option<&'a str>,
    source: Option<Value>,
    added: Value,
    changed: Value,
    removed: Value,
    changes: Changes<'a>,
}

/// A layer's changes, serialized one at a time.
struct Changes<'a> {
    analysis: &'a Analysis,
    layer: usize,
}

impl serde::Serialize for Changes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.analysis;
        s.collect_seq(a.layers[self.layer].changes.iter().map(|c| {
            json!({
                "path": a.tree.path(c.node),
                "change": c.change.name(),
                "kind": c.kind.name(),
                "bytes": c.bytes,
            })
        }))
    }
}
