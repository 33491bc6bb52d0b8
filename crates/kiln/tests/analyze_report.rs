//! The HTML report (`kiln build --report`, `kiln analyze --format html`) through the real
//! binary: one self-contained, deterministic page with the stage graph (times and sizes), the
//! layers coloured by instruction, a treemap and the wasted files with their fixes; file
//! names escaped; and the page opened in headless Chromium, whose screenshot must not be
//! blank and whose console must stay free of errors. Needs root (RUN steps run in
//! namespaces) and `chromium`; under `CI=true` a missing prerequisite fails.

// Tests read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::Command;

use kiln_test_support::{KilnEnv, ok, text};

/// A file name that would run a script if the page did not escape it.
const IMG: &str = "<img src=x onerror=\"document.body.setAttribute('data-injected','1')\">.bin";
/// A file name that would open a script element and swallow the rest of the page.
const SCRIPT: &str = "<script>document.title='pwned'<.bin";

const DF: &str = "FROM busybox AS builder\n\
                  RUN mkdir /out && head -c 30000 /dev/zero > /out/tool && head -c 200000 /dev/zero > /objects\n\
                  FROM busybox\n\
                  COPY --from=builder /out/tool /usr/bin/tool\n\
                  COPY app /app\n\
                  RUN rm /app/*.bin && mkdir -p /var/lib/apt/lists && head -c 50000 /dev/zero > /var/lib/apt/lists/x_dists\n";

fn store_env(tools: &[&str]) -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), tools)
}

/// Builds the two-stage image with `--report`; returns the context and the page.
fn build_with_report(env: &KilnEnv, tag: &str) -> (std::path::PathBuf, String) {
    let ctx = env.context(tag, DF, &[("app/keep.txt", "keep\n")]);
    fs::write(ctx.join("app").join(IMG), vec![1u8; 40_000]).unwrap();
    fs::write(ctx.join("app").join(SCRIPT), vec![2u8; 20_000]).unwrap();
    let report = env.dir.join(format!("{tag}.html"));
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        &format!("{tag}:1"),
        "--report",
        report.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]));
    (ctx, fs::read_to_string(&report).unwrap())
}

/// Everything the page loads comes from itself: no URLs but the SVG namespace, no `src`,
/// no `<link>`, a CSP that forbids the rest.
fn assert_self_contained(html: &str) {
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://"), "a URL in the page");
    assert!(!without_ns.contains("https://"), "a URL in the page");
    assert!(!html.contains("<link"), "a linked resource");
    // Text holds no raw `<`, so each `<` opens a tag: none loads anything.
    for tag in html
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
    {
        assert!(
            !tag.contains(" src=") && !tag.contains(" href="),
            "an element that loads something: <{tag}>"
        );
    }
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn build_report_draws_stages_layers_treemap_and_waste_with_fixes() {
    let Some(env) = store_env(&[]) else { return };
    let (_, html) = build_with_report(&env, "report");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    // The stage graph: both stages, the edge with its line, times and sizes.
    assert!(html.contains("class=\"stage-graph\""), "no stage graph");
    assert!(html.contains("data-stage=\"builder\""));
    assert!(html.contains("data-stage=\"stage-1\""));
    assert!(html.contains("COPY --from, line 4"));
    assert!(html.contains(" steps"), "a stage's time and steps");
    assert!(html.contains("over its base)"), "a stage's size");
    assert!(
        html.contains("RUN mkdir /out"),
        "the steps table names the step"
    );
    // Layers coloured by instruction: busybox's, two COPYs and a RUN.
    assert!(html.contains("class=\"bar-copy\""));
    assert!(html.contains("class=\"bar-run\""));
    assert_eq!(html.matches("<g class=\"row\" data-layer=").count(), 4);
    // The treemap holds the final image's directories.
    let treemap = &html[html.find("class=\"treemap\"").unwrap()..];
    let treemap = &treemap[..treemap.find("</svg>").unwrap()];
    assert!(
        treemap.contains("<title>/usr/bin/tool: 30kB</title>"),
        "{treemap}"
    );
    assert!(treemap.contains("<title>/var: "), "{treemap}");
    // Waste: the deleted files by the COPY that wrote them, and the apt lists, with fixes.
    let waste = &html[html.find("id=\"waste\"").unwrap()..];
    assert!(waste.contains("deleted by layer 3"), "{waste}");
    assert!(waste.contains("apt package lists"), "{waste}");
    assert!(waste.contains("rm -rf /var/lib/apt/lists/*"), "{waste}");
    // File names are text, never markup.
    assert!(
        !html.contains("<img"),
        "an image file name became an element"
    );
    assert!(
        !html.contains("<script>document.title"),
        "a file name became a script"
    );
    assert!(html.contains("&lt;img src=x onerror=&quot;document.body.setAttribute(&#39;data-injected&#39;,&#39;1&#39;)&quot;&gt;.bin"));
    assert!(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;.bin"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "the page's own script only"
    );
}

#[test]
fn analyze_html_is_deterministic_and_draws_the_graph_only_with_the_dockerfile() {
    let Some(env) = store_env(&[]) else { return };
    let (ctx, _) = build_with_report(&env, "again");
    let df = ctx.join("Dockerfile");
    let page = |extra: &[&str], name: &str| {
        let out = env.dir.join(name);
        let mut args = vec!["analyze", "--format", "html", "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push("again:1");
        ok(&env.kiln(&args));
        fs::read_to_string(out).unwrap()
    };
    let a = page(&["-f", df.to_str().unwrap()], "a.html");
    let b = page(&["-f", df.to_str().unwrap()], "b.html");
    assert!(a == b, "two renderings of one image differ");
    assert_self_contained(&a);
    assert!(a.contains("class=\"stage-graph\""));
    assert!(
        a.contains("not built by this command"),
        "the graph says it has no times"
    );
    assert!(
        a.contains("Dockerfile:5 COPY app /app"),
        "layers carry their lines"
    );
    let bare = page(&[], "bare.html");
    assert!(!bare.contains("class=\"stage-graph\""));
    assert!(
        bare.contains("No stage graph"),
        "a note instead of the graph"
    );
    assert!(bare.contains("class=\"treemap\""));
    // Without -o the page goes to stdout.
    let out = env.kiln(&["analyze", "--format", "html", "again:1"]);
    assert!(ok(&out).contains("class=\"treemap\""));
}

/// Colours of a PNG screenshot, and the share of pixels that are not the most common one.
fn colours(png_file: &Path) -> (usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(png_file).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let mut counts = std::collections::HashMap::new();
    for px in bytes.chunks(channels) {
        *counts.entry(px.to_vec()).or_insert(0u64) += 1;
    }
    let total: u64 = counts.values().sum();
    let top = counts.values().max().copied().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let other = (total - top) as f64 / total as f64;
    (counts.len(), other)
}

#[test]
fn the_report_renders_in_headless_chromium_with_no_console_errors() {
    let Some(env) = store_env(&["chromium"]) else {
        return;
    };
    let (_, _) = build_with_report(&env, "chromium");
    let report = env.dir.join("chromium.html");
    let url = format!("file://{}", report.display());
    let profile = env.dir.join("chromium-profile");
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1280,2000",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            text(&out.stderr)
        );
        out
    };
    // The DOM after the page's script ran: it marks itself rendered, and nothing injected.
    let dom = chromium(&["--dump-dom"]);
    let dom_text = text(&dom.stdout);
    assert!(
        dom_text.contains("data-rendered=\"ok\""),
        "the page's script did not finish: {}",
        text(&dom.stderr)
    );
    assert!(
        !dom_text.contains("data-injected=\"1\""),
        "a file name ran as script"
    );
    assert!(
        !dom_text.contains("<title>pwned"),
        "a file name ran as script"
    );
    let stderr = text(&dom.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || l.contains("Content Security Policy")
                || (l.contains("CONSOLE") && l.to_ascii_lowercase().contains("error"))
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    // The screenshot is not blank: many colours (bars, treemap, text), much of it not white.
    let shot = env.dir.join("report.png");
    let out = chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(shot.is_file(), "no screenshot: {}", text(&out.stderr));
    let (count, other) = colours(&shot);
    assert!(count >= 16, "{count} colours: the page looks blank");
    assert!(
        other > 0.05,
        "only {other:.3} of the page is not background"
    );
}
