//! Rendering of `kiln build --explain`'s result ([`kiln_build::Explanation`]): a closing line
//! for people (the per-step lines are the progress output's `CACHED` and `cache miss:` lines),
//! or one JSON document for tools.
//!
//! The JSON document (`--format json`, alone on stdout):
//!
//! ```text
//! {
//!   "dockerfile": "ctx/Dockerfile",
//!   "would_run": true,
//!   "steps": [
//!     {"stage": "deps", "stage_index": 0, "step": 2, "steps": 3,
//!      "instruction": "COPY deps.txt /deps.txt",
//!      "line": 2, "column": 1, "end_line": 2, "end_column": 24,
//!      "status": "would_run",
//!      "reason": {"kind": "changed", "message": "file `/deps.txt` changed",
//!                 "changes": [{"component": "file", "name": "/deps.txt",
//!                              "delta": "changed", "message": "file `/deps.txt` changed"}]}},
//!     {"stage": "app", ..., "status": "cached", "reason": null}
//!   ],
//!   "warnings": [ ...diagnostics as `diagnostics::to_json` shapes them... ]
//! }
//! ```
//!
//! `status` is `cached` or `would_run`; a reason's `kind` is one of `no_cache`,
//! `no_cache_filter` (with `stage`), `first_build`, `evicted`, `changed` (with `changes`),
//! `not_hashed`, `no_cache_store`, `earlier_step` and `stage_rebuilt` (with `stage`). A
//! change's `component` is one of `format`, `parent`, `instruction`, `platform`, `arg`, `env`,
//! `files_presence`, `file`, `files` and `input`; `name` and `delta` (`added`, `removed`,
//! `changed`) are there when the component has them.

use kiln_build::{ExplainedStep, Explanation, Verdict, WhyRun};
use kiln_cache::{Change, Miss};
use kiln_syntax::{Diagnostic, LineIndex};
use serde_json::{Value, json};

use crate::cmd::outline::DockerfileSource;

/// The line `kiln build --explain` ends with (on stderr).
pub(crate) fn summary(e: &Explanation) -> &'static str {
    if e.would_run() {
        "some steps would run (see above); nothing was built"
    } else {
        "every step is cached; nothing was built"
    }
}

/// The explanation of a build of `src`, with the warnings its parsing and planning gave.
pub(crate) fn to_json(src: &DockerfileSource, e: &Explanation, warnings: &[Diagnostic]) -> Value {
    let index = LineIndex::new(&src.text);
    json!({
        "dockerfile": src.path.display().to_string(),
        "would_run": e.would_run(),
        "steps": e.steps.iter().map(|s| step_json(src, &index, s)).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(|w| src.json(w)).collect::<Vec<_>>(),
    })
}

fn step_json(src: &DockerfileSource, index: &LineIndex, s: &ExplainedStep) -> Value {
    let start = index.line_col(&src.text, s.span.start);
    let end = index.line_col(&src.text, s.span.end);
    let (status, reason) = match &s.verdict {
        Verdict::Cached => ("cached", Value::Null),
        Verdict::WouldRun(why) => ("would_run", reason_json(why)),
    };
    json!({
        "stage": s.stage,
        "stage_index": s.stage_index,
        "step": s.index,
        "steps": s.total,
        "instruction": s.instruction,
        "line": start.line,
        "column": start.col,
        "end_line": end.line,
        "end_column": end.col,
        "status": status,
        "reason": reason,
    })
}

fn reason_json(why: &WhyRun) -> Value {
    let message = why.to_string();
    match why {
        WhyRun::NoCache => json!({"kind": "no_cache", "message": message}),
        WhyRun::NoCacheFilter(stage) => {
            json!({"kind": "no_cache_filter", "stage": stage, "message": message})
        }
        WhyRun::Miss(Miss::FirstBuild) => json!({"kind": "first_build", "message": message}),
        WhyRun::Miss(Miss::Evicted) => json!({"kind": "evicted", "message": message}),
        WhyRun::Miss(Miss::Changed(changes)) => json!({
            "kind": "changed",
            "message": message,
            "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
        }),
        WhyRun::NotHashed => json!({"kind": "not_hashed", "message": message}),
        WhyRun::NoCacheStore => json!({"kind": "no_cache_store", "message": message}),
        WhyRun::EarlierStep => json!({"kind": "earlier_step", "message": message}),
        WhyRun::StageRebuilt(stage) => {
            json!({"kind": "stage_rebuilt", "stage": stage, "message": message})
        }
    }
}

fn change_json(c: &Change) -> Value {
    let message = c.to_string();
    let named = |component: &str, name: &str, delta: &kiln_cache::Delta| {
        json!({
            "component": component,
            "name": name,
            "delta": delta.to_string(),
            "message": message,
        })
    };
    match c {
        Change::Arg { name, delta } => named("arg", name, delta),
        Change::Env { name, delta } => named("env", name, delta),
        Change::File { path, delta } => named("file", path, delta),
        Change::Input { name, delta } => named("input", name, delta),
        Change::Format { .. } => json!({"component": "format", "message": message}),
        Change::Parent { .. } => json!({"component": "parent", "message": message}),
        Change::Instruction => json!({"component": "instruction", "message": message}),
        Change::Platform => json!({"component": "platform", "message": message}),
        Change::FilesPresence { .. } => {
            json!({"component": "files_presence", "message": message})
        }
        Change::Files => json!({"component": "files", "message": message}),
    }
}

#[cfg(test)]
mod tests {
    use kiln_cache::Delta;
    use kiln_syntax::TextRange;

    use super::*;

    #[test]
    fn json_lists_cached_and_would_run_steps_with_reasons() {
        let src = DockerfileSource {
            path: "Dockerfile".into(),
            text: "FROM a\nCOPY x /x\nRUN y\n".into(),
        };
        let step =
            |index: usize, span: TextRange, instruction: &str, verdict: Verdict| ExplainedStep {
                stage: "stage-0".into(),
                stage_index: 0,
                index,
                total: 3,
                instruction: instruction.into(),
                span,
                verdict,
            };
        let e = Explanation {
            steps: vec![
                step(2, TextRange::new(7, 16), "COPY x /x", Verdict::Cached),
                step(
                    3,
                    TextRange::new(17, 22),
                    "RUN y",
                    Verdict::WouldRun(WhyRun::Miss(Miss::Changed(vec![Change::Arg {
                        name: "V".into(),
                        delta: Delta::Added,
                    }]))),
                ),
            ],
        };
        assert_eq!(
            summary(&e),
            "some steps would run (see above); nothing was built"
        );
        let v = to_json(&src, &e, &[]);
        assert_eq!(v["would_run"], json!(true));
        assert_eq!(v["warnings"], json!([]));
        assert_eq!(
            v["steps"][0],
            json!({
                "stage": "stage-0", "stage_index": 0, "step": 2, "steps": 3,
                "instruction": "COPY x /x", "line": 2, "column": 1, "end_line": 2,
                "end_column": 10, "status": "cached", "reason": null,
            })
        );
        assert_eq!(
            v["steps"][1]["reason"],
            json!({
                "kind": "changed",
                "message": "build arg `V` added",
                "changes": [{"component": "arg", "name": "V", "delta": "added",
                             "message": "build arg `V` added"}],
            })
        );
    }
}
