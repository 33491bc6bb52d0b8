//! Parse and plan a generated 5,000-line multi-stage Dockerfile; prints a table.
//!
//! Run: `cargo bench -p kiln-frontend --bench plan_5000`. This is a benchmark, not a test:
//! it asserts nothing about time.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// 100 stages of 50 lines each: ARGs, ENV chains, continuations, heredocs, COPY --from,
/// RUN --mount, comments.
fn dockerfile() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox\nARG TAG=1.36\n");
    let mut stage = 0;
    while s.lines().count() < 5000 {
        let _ = writeln!(s, "\n# stage {stage}\nFROM ${{BASE}}:${{TAG}} AS s{stage}");
        let _ = writeln!(
            s,
            "ARG VERSION=1.{stage}\nARG TAG\nENV A{stage}=x B=${{A{stage}:-y}} C=\"$VERSION\""
        );
        for i in 0..8 {
            let _ = writeln!(
                s,
                "RUN --mount=type=cache,target=/c{i},sharing=locked \\\n    echo {i} \\\n    && echo ${{VERSION}} # step"
            );
        }
        let _ = writeln!(s, "COPY --chown=1:1 --chmod=0644 a{stage} b{stage} /dst/");
        if stage > 0 {
            let _ = writeln!(s, "COPY --from=s{} /out /in", stage - 1);
        }
        let _ = writeln!(s, "RUN <<EOF\nset -e\necho hi > /x\nEOF");
        let _ = writeln!(
            s,
            "LABEL a=b c=\"d e\"\nWORKDIR /w/${{VERSION}}\nUSER 1000\nEXPOSE 80/tcp 443\nHEALTHCHECK --interval=5s CMD true"
        );
        stage += 1;
    }
    s
}

fn time(iterations: u32, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..iterations {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
    }
    best
}

fn main() {
    let text = dockerfile();
    let lines = text.lines().count();
    let opts = kiln_frontend::BuildOptions::default();
    let df = kiln_syntax::parse(&text).expect("generated Dockerfile parses");
    let stages = kiln_frontend::plan(&df, &opts).expect("plans").stages.len();
    let parse = time(30, || {
        black_box(kiln_syntax::parse(black_box(&text)).unwrap());
    });
    let plan = time(30, || {
        black_box(kiln_frontend::plan(black_box(&df), &opts).unwrap());
    });
    let both = time(30, || {
        let df = kiln_syntax::parse(black_box(&text)).unwrap();
        black_box(kiln_frontend::plan(&df, &opts).unwrap());
    });
    println!(
        "{lines} lines, {} bytes, {stages} stages (best of 30)",
        text.len()
    );
    println!("{:<16} {:>10} {:>14}", "phase", "time", "lines/s");
    for (name, d) in [("parse", parse), ("plan", plan), ("parse+plan", both)] {
        #[allow(clippy::cast_precision_loss)]
        let rate = lines as f64 / d.as_secs_f64();
        println!("{name:<16} {:>8.2}ms {rate:>14.0}", d.as_secs_f64() * 1e3);
    }
}
