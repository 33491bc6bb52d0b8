//! `kiln graph` and `kiln build --graph` through the real binary. `kiln graph` needs nothing
//! but the binary; the DOT checks need Graphviz's `dot`, and the build graphs root (RUN steps
//! run in namespaces). Under `CI=true` a missing prerequisite fails.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kiln_test_support::{KilnEnv, ok, require, text};

/// A Dockerfile with every kind of edge, a pruned stage, a stage from scratch and ARGs
/// (one with characters DOT and Mermaid must escape).
const DOCKERFILE: &str = r#"ARG BASE=busybox
ARG NOTE="say \"hi\" <b> #1 \\ & more"
FROM ${BASE} AS builder
ARG NOTE
RUN echo "$NOTE" > /note
FROM builder AS test
RUN --mount=from=builder,target=/b true
FROM scratch AS runtime
COPY --from=builder /note /note
COPY --from=alpine:3 /etc/os-release /o
RUN --mount=from=tool:1,target=/t true
"#;

fn kiln_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(dir)
        // Never touched: `kiln graph` opens no store.
        .env("KILN_ROOT", dir.join("no-store"))
        .output()
        .expect("run kiln")
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["graph", "--format", "json"];
    args.extend_from_slice(extra);
    let out = kiln_in(dir, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(from, to, kind, line, needed)` of every edge.
fn edges(doc: &serde_json::Value) -> Vec<(String, String, String, u64, bool)> {
    doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
                e["line"].as_u64().unwrap(),
                e["needed"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn edge(
    from: &str,
    to: &str,
    kind: &str,
    line: u64,
    needed: bool,
) -> (String, String, String, u64, bool) {
    (from.into(), to.into(), kind.into(), line, needed)
}

#[test]
fn json_lists_stages_images_edges_pruning_and_args() {
    let dir = context(DOCKERFILE);
    let doc = json(dir.path(), &[]);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["target"], "runtime");
    let nodes: Vec<(&str, &str, &str, bool, bool)> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap(),
                n["kind"].as_str().unwrap(),
                n["name"].as_str().unwrap(),
                n["needed"].as_bool().unwrap(),
                n["target"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("stage0", "stage", "builder", true, false),
            ("stage1", "stage", "test", false, false),
            ("stage2", "stage", "runtime", true, true),
            ("image0", "image", "busybox", true, false),
            ("image1", "image", "alpine:3", true, false),
            ("image2", "image", "tool:1", true, false),
        ]
    );
    assert_eq!(
        edges(&doc),
        [
            edge("image0", "stage0", "base", 3, true),
            edge("stage0", "stage1", "base", 6, false),
            edge("stage0", "stage1", "mount-from", 7, false),
            edge("stage0", "stage2", "copy-from", 9, true),
            edge("image1", "stage2", "copy-from", 10, true),
            edge("image2", "stage2", "mount-from", 11, true),
        ]
    );
    let builder = &doc["nodes"][0];
    assert_eq!(builder["line"], 3);
    assert_eq!(builder["base"], "busybox");
    assert_eq!(
        builder["args"][0],
        serde_json::json!({"name": "NOTE", "value": "say \"hi\" <b> #1 \\ & more", "origin": "global"})
    );
    assert_eq!(doc["nodes"][2]["base"], "scratch");
    assert!(doc["nodes"][0]["run"].is_null(), "no build, no run");

    // Another target, another pruning; build args reach the stages.
    let doc = json(
        dir.path(),
        &["--target", "test", "--build-arg", "BASE=debian:12"],
    );
    assert_eq!(doc["target"], "test");
    let needed: Vec<bool> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["needed"].as_bool().unwrap())
        .collect();
    assert_eq!(needed, [true, true, false, true, false, false]);
    assert_eq!(doc["nodes"][3]["name"], "debian:12");
    let base = doc["nodes"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "BASE")
        .unwrap()
        .clone();
    assert_eq!(
        base,
        serde_json::json!({"name": "BASE", "value": "debian:12", "origin": "build-arg"})
    );
}

#[test]
fn text_says_what_each_stage_reads_and_what_is_pruned() {
    let dir = context(DOCKERFILE);
    let out = kiln_in(dir.path(), &["graph"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("target: runtime"), "{stdout}");
    assert!(
        stdout.contains("stage 1 test (line 6): pruned (the target does not need it)\n  <- builder (stage): FROM, line 6\n  <- builder (stage): RUN --mount from, line 7\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stage 2 runtime (line 8) [target]: needed\n  <- builder (stage): COPY --from, line 9\n  <- alpine:3 (image): COPY --from, line 10\n  <- tool:1 (image): RUN --mount from, line 11\n  from scratch\n"),
        "{stdout}"
    );
    assert!(stdout.contains("image busybox: needed"), "{stdout}");
}

#[test]
fn dot_is_valid_graphviz_with_pruned_stages_dashed() {
    let dir = context(DOCKERFILE);
    let out = kiln_in(dir.path(), &["graph", "--format", "dot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    assert!(dot.starts_with("digraph kiln {\n"), "{dot}");
    let line_of = |needle: &str| {
        dot.lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {dot}"))
            .to_owned()
    };
    let test = line_of("stage1 [");
    assert!(
        test.contains("dashed") && test.contains("color=grey"),
        "{test}"
    );
    assert!(!line_of("stage0 [").contains("dashed"));
    assert!(line_of("stage2 [").contains("bold"), "the target");
    let pruned_edge = line_of("stage0 -> stage1 [label=\"RUN --mount from\\nline 7\"");
    assert!(pruned_edge.contains("style=dashed"), "{pruned_edge}");
    assert!(line_of("image1 -> stage2").contains("COPY --from\\nline 10"));
    // The ARG value's quotes and backslash are escaped for DOT.
    assert!(
        dot.contains(r#"ARG NOTE=say \"hi\" <b> #1 \\ & more"#),
        "{dot}"
    );
    if require(false, &["dot"]).is_none() {
        return;
    }
    let svg = svg(&dot);
    assert!(svg.contains("<svg"), "{svg}");
    assert!(
        svg.contains("stroke-dasharray"),
        "pruned drawn dashed: {svg}"
    );
    assert!(
        svg.contains("say &quot;hi&quot; &lt;b&gt; #1 \\ &amp; more"),
        "{svg}"
    );
}

/// Graphviz's SVG of `dot`, failing on any error or warning it prints.
fn svg(dot: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "dot: {}\n{dot}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn mermaid_is_a_flowchart_with_pruned_nodes_classed() {
    let dir = context(DOCKERFILE);
    let out = kiln_in(dir.path(), &["graph", "--format", "mermaid"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = text(&out.stdout);
    let lines: Vec<&str> = m.lines().collect();
    assert_eq!(lines[0], "flowchart LR");
    assert!(
        m.contains("  stage0 -.->|\"FROM, line 6\"| stage1\n"),
        "pruned edges dotted: {m}"
    );
    assert!(
        m.contains("  stage0 -->|\"COPY --from, line 9\"| stage2\n"),
        "{m}"
    );
    assert!(m.contains("  image2(["), "images as stadiums: {m}");
    assert!(m.contains("  class stage1 pruned\n"), "{m}");
    assert!(m.contains("  class stage2 target\n"), "{m}");
    // Mermaid's entity codes: no raw quote, angle bracket or `#` inside a label.
    assert!(
        m.contains("ARG NOTE=say #quot;hi#quot; #lt;b#gt; #35;1 \\ #amp; more"),
        "{m}"
    );
    for l in &lines[1..] {
        let quotes = l.matches('"').count();
        assert!(quotes % 2 == 0, "unbalanced quotes in `{l}`");
    }
}

#[test]
fn bad_input_names_the_line_or_the_flag_with_a_hint() {
    let dir = context("FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n");
    let out = kiln_in(dir.path(), &["graph"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:2:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = context(DOCKERFILE);
    let out = kiln_in(dir.path(), &["graph", "--target", "tset"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("`--target`"), "{err}");
    assert!(err.contains("hint: did you mean `test`?"), "{err}");

    let out = kiln_in(dir.path(), &["graph", "--format", "svg"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--format"), "{err}");
    assert!(err.contains("dot") && err.contains("mermaid"), "{err}");

    let out = kiln_in(dir.path(), &["graph", "-f", "nope/Dockerfile"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("hint:"));
}

/// `kiln build --graph`: the stages that ran, each with its steps, how they ended and their
/// times; the pruned stage did not run; a failed build still writes its graph, with the
/// failed stage marked.
#[test]
fn build_graph_draws_the_stages_that_ran_with_their_times() {
    let Some(env) = KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[]) else {
        return;
    };
    let df = "FROM busybox AS builder\nRUN sleep 0.3 && echo built > /out\nFROM busybox AS test\nRUN false\nFROM busybox\nCOPY --from=builder /out /out\n";
    let ctx = env.context("graph-ok", df, &[]);
    let file = env.dir.join("build.json");
    let args = [
        "build",
        "--progress=plain",
        "--graph",
        file.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ];
    ok(&env.kiln(&args));
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let builder = &doc["nodes"][0]["run"];
    assert_eq!(builder["failed"], false);
    let steps: Vec<(&str, &str)> = builder["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("FROM busybox", "done"),
            ("RUN sleep 0.3 && echo built > /out", "done")
        ]
    );
    let seconds = builder["seconds"].as_f64().unwrap();
    assert!(seconds >= 0.3, "the RUN's time: {seconds}");
    assert!(
        doc["nodes"][1]["run"].is_null(),
        "the pruned stage did not run"
    );
    assert_eq!(doc["nodes"][2]["run"]["steps"].as_array().unwrap().len(), 2);

    // Again: everything cached, drawn as DOT.
    let dot_file = env.dir.join("build.dot");
    let args = [
        "build",
        "--progress=plain",
        "--graph",
        dot_file.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ];
    ok(&env.kiln(&args));
    let dot = fs::read_to_string(&dot_file).unwrap();
    let builder = dot
        .lines()
        .find(|l| l.trim_start().starts_with("stage0 ["))
        .unwrap();
    assert!(builder.contains("2 steps (1 cached)"), "{builder}");
    assert!(builder.contains("filled"), "{builder}");
    if require(false, &["dot"]).is_some() {
        svg(&dot);
    }

    // A failed build writes its graph too, the failed stage marked.
    let ctx = env.context(
        "graph-fail",
        "FROM busybox AS a\nRUN exit 7\nFROM busybox\nCOPY --from=a / /x\n",
        &[],
    );
    let file = env.dir.join("fail.mmd");
    let out = env.kiln(&[
        "build",
        "--progress=plain",
        "--graph",
        file.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exit code: 7"),
        "{}",
        text(&out.stderr)
    );
    let m = fs::read_to_string(&file).unwrap();
    assert!(m.contains("  class stage0 failed\n"), "{m}");
    assert!(m.contains("failed"), "{m}");

    // A name that says no format is refused before anything is built.
    let out = env.kiln(&["build", "--graph", "out.svg", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("invalid `--graph out.svg`"), "{err}");
    assert!(err.contains("hint: end it with `.dot`"), "{err}");
}
