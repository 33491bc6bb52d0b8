//! `kiln lint`, `kiln build --check` and the build checks of `kiln build`, through the real
//! binary: the three output formats, exit statuses, the check options, and errors.

// Tests read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A context folder with `files` (name, text) in a fresh temporary folder, and a store path
/// beside it (not created).
struct Ctx {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
}

fn context(files: &[(&str, &str)]) -> Ctx {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    std::fs::create_dir(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let store = tmp.path().join("store");
    Ctx {
        _tmp: tmp,
        dir,
        store,
    }
}

fn kiln(ctx: &Ctx, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&ctx.store)
        .args(args)
        .arg(&ctx.dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const WARNED: &str = "FROM scratch as Builder\nCOPY app.env /app/\nMAINTAINER me\nUSER 1000\n";

#[test]
fn lint_prints_snippets_and_exits_1_only_when_strict() {
    let ctx = context(&[
        ("Dockerfile", WARNED),
        ("app.env", "x"),
        (".dockerignore", "*.env\n"),
    ]);
    let out = kiln(&ctx, &["lint"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let file = ctx.dir.join("Dockerfile").display().to_string();
    assert!(
        stdout.contains(&format!(
            "warning: Stage name 'Builder' should be lowercase\n --> {file}:1:1\n  |\n1 | FROM scratch as Builder\n  | ^^^^^^^^^^^^^^^^^^^^^^^\n  = see: https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: Attempting to Copy file \"app.env\" that is excluded by .dockerignore\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!("{file}: 4 warnings\n")),
        "{stdout}"
    );
    assert!(!ctx.store.exists(), "lint creates no store");
    let strict = kiln(&ctx, &["lint", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    let clean = context(&[
        ("Dockerfile", "FROM scratch\nCOPY a /a\nUSER 1000\n"),
        ("a", ""),
    ]);
    let out = kiln(&clean, &["lint", "--strict"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).ends_with(": no warnings\n"));
}

#[test]
fn lint_json_has_the_diagnostics_shape() {
    let ctx = context(&[("Dockerfile", WARNED)]);
    let out = kiln(&ctx, &["lint", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = ctx.dir.join("Dockerfile").display().to_string();
    let rules: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["StageNameCasing", "FromAsCasing", "MaintainerDeprecated"]
    );
    assert_eq!(
        doc["warnings"][2],
        serde_json::json!({
            "rule": "MaintainerDeprecated",
            "severity": "warning",
            "file": file,
            "line": 3,
            "column": 1,
            "end_line": 3,
            "end_column": 14,
            "message": "Maintainer instruction is deprecated in favor of using label",
            "hint": null,
            "url": "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
        })
    );
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["violation"], Value::Null);
}

#[test]
fn check_options_come_from_the_directive_or_the_build_arg() {
    let ctx = context(&[(
        "Dockerfile",
        &format!("# check=error=true;skip=FromAsCasing\n{WARNED}"),
    )]);
    let out = kiln(&ctx, &["lint"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("FromAsCasing"), "{stdout}");
    assert!(
        stdout.ends_with(
            "error: lint violation found for rules: StageNameCasing, MaintainerDeprecated\n"
        ),
        "{stdout}"
    );
    // The build arg replaces the directive: no error=true any more.
    let out = kiln(
        &ctx,
        &["lint", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).ends_with(": no warnings\n"));
    let bad = kiln(
        &ctx,
        &["lint", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.starts_with("error: invalid `--build-arg BUILDKIT_DOCKERFILE_CHECK=skip`: invalid check option \"skip\"\nhint: write `skip=<rules>|all;"),
        "{stderr}"
    );
    let directive = context(&[("Dockerfile", "# check=skip=all;nope\nFROM scratch\n")]);
    let out = kiln(&directive, &["lint"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: invalid check option \"nope\"\n --> "),
        "{stderr}"
    );
    assert!(stderr.contains(":1:1\n"), "{stderr}");
    assert!(text(&out.stdout).ends_with(": 1 error\n"));
}

#[test]
fn errors_point_at_the_file_after_the_warnings_before_them() {
    // BuildKit's testWarningsBeforeError: the warnings before an unknown instruction, then it.
    let ctx = context(&[(
        "Dockerfile",
        "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n",
    )]);
    let out = kiln(&ctx, &["lint", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 2);
    assert_eq!(doc["error"]["line"], 4);
    assert_eq!(doc["error"]["rule"], "InstructionError");
    assert_eq!(doc["error"]["message"], "unknown instruction: BADCMD");
    // A file that does not parse.
    let broken = context(&[("Dockerfile", "FROM a\nRUN <<EOF\necho\n")]);
    let out = kiln(&broken, &["lint"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: unterminated heredoc `EOF`\n --> "),
        "{stderr}"
    );
    assert!(stderr.contains("Dockerfile:2:1\n"), "{stderr}");
    assert!(
        stderr.contains("= hint: end the heredoc with a line holding only `EOF`"),
        "{stderr}"
    );
    // A file that cannot be read.
    let missing = context(&[]);
    let out = kiln(&missing, &["lint"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot read the Dockerfile `"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: pass `-f FILE`"), "{stderr}");
}

#[test]
fn sarif_is_valid_and_names_rules_results_and_regions() {
    let ctx = context(&[(
        "Dockerfile",
        "FROM scratch AS base\nCOPY --from=bsae /a /b\nMAINTAINER me\nFROM base\n",
    )]);
    let out = kiln(&ctx, &["lint", "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Field by field, what code scanning tools read.
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "kiln");
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(
        rules.len(),
        34,
        "22 build checks, kiln's 11 rules and the planner's StageNameTypo"
    );
    let root = rules
        .iter()
        .position(|r| r["id"] == "FinalStageRunsAsRoot")
        .unwrap();
    assert_eq!(rules[root]["helpUri"], "docs/lint/KL010.md");
    assert_eq!(rules[root]["properties"]["code"], "KL010");
    assert_eq!(
        rules[root]["properties"]["hadolint"],
        serde_json::json!(["DL3002"])
    );
    assert!(
        rules[root]["help"]["markdown"]
            .as_str()
            .unwrap()
            .contains("## Why is this bad?")
    );
    let maintainer = rules
        .iter()
        .position(|r| r["id"] == "MaintainerDeprecated")
        .unwrap();
    assert_eq!(
        rules[maintainer]["shortDescription"]["text"],
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
    );
    assert_eq!(
        rules[maintainer]["helpUri"],
        "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/"
    );
    let results = run["results"].as_array().unwrap();
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "StageNameTypo",
            "MaintainerDeprecated",
            "FinalStageRunsAsRoot"
        ]
    );
    assert_eq!(results[2]["ruleIndex"], root);
    assert_eq!(
        results[2]["locations"][0]["physicalLocation"]["region"]["startLine"],
        4
    );
    let r = &results[1];
    assert_eq!(r["ruleIndex"], maintainer);
    assert_eq!(r["level"], "warning");
    assert_eq!(
        r["message"]["text"],
        "Maintainer instruction is deprecated in favor of using label"
    );
    let location = &r["locations"][0]["physicalLocation"];
    let file = ctx.dir.join("Dockerfile").display().to_string();
    assert_eq!(location["artifactLocation"]["uri"], file);
    assert_eq!(
        location["region"],
        serde_json::json!({ "startLine": 3, "startColumn": 1, "endLine": 3, "endColumn": 14 })
    );
    // And against the SARIF 2.1.0 schema itself.
    let Some(schema) = sarif_schema() else {
        return;
    };
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The validator does reject what is not SARIF.
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["level"] = "loud".into();
    assert!(!validator.is_valid(&broken));
}

/// The SARIF 2.1.0 JSON schema: `KILN_SARIF_SCHEMA`, else where `scripts/sarif-schema.sh`
/// keeps it. Missing: a failure under `CI=true`, a loud skip otherwise.
fn sarif_schema() -> Option<Value> {
    let path = std::env::var_os("KILN_SARIF_SCHEMA").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                PathBuf::from,
            );
            cache.join("kiln-test/sarif-2.1.0.json")
        },
        PathBuf::from,
    );
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(e) => {
            kiln_test_support::missing(&format!(
                "the SARIF 2.1.0 schema `{}` ({e}); run `bash scripts/sarif-schema.sh`",
                path.display()
            ));
            None
        }
    }
}

#[test]
fn build_check_builds_nothing_and_fails_on_warnings() {
    let ctx = context(&[("Dockerfile", WARNED), ("app.env", "x")]);
    let out = kiln(&ctx, &["build", "--check", "-t", "checked:1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("warning: Maintainer instruction is deprecated"),
        "{stdout}"
    );
    assert!(stdout.ends_with(": 3 warnings\n"), "{stdout}");
    let images = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&ctx.store)
        .arg("images")
        .output()
        .unwrap();
    assert!(!text(&images.stdout).contains("checked"), "nothing built");
    let clean = context(&[
        ("Dockerfile", "FROM scratch\nCOPY a /a\nUSER 1000\n"),
        ("a", ""),
    ]);
    let out = kiln(&clean, &["build", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn build_prints_the_warnings_and_fails_after_them_with_error_true() {
    let df = "FROM scratch\nCOPY a /a\nMAINTAINER me\n";
    let ctx = context(&[("Dockerfile", df), ("a", "x")]);
    let out = kiln(&ctx, &["build", "--progress=plain", "-t", "warned:1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let file = ctx.dir.join("Dockerfile").display().to_string();
    assert!(
        stderr.contains(&format!(
            "warning: Maintainer instruction is deprecated in favor of using label\n --> {file}:3:1\n"
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("warning:").count(),
        1,
        "each warning once: {stderr}"
    );
    let strict = context(&[
        ("Dockerfile", &format!("# check=error=true\n{df}")),
        ("a", "x"),
    ]);
    let out = kiln(&strict, &["build", "-t", "strict:1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: Maintainer instruction is deprecated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: lint violation found for rules: MaintainerDeprecated\nhint: "),
        "{stderr}"
    );
}

#[test]
fn lint_reports_kilns_rules_in_text_and_json_and_honours_hadolint_ignores() {
    let df = "FROM alpine:3.20\nCOPY . /app\nRUN cd /app\n# hadolint ignore=DL3003\nRUN cd /tmp\nUSER app\n";
    let ctx = context(&[("Dockerfile", df), (".env", "SECRET=1")]);
    let out = kiln(&ctx, &["lint"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let file = ctx.dir.join("Dockerfile").display().to_string();
    assert!(
        stdout.contains(&format!(
            "warning: `cd /app` lasts only for this RUN\n --> {file}:3:1\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("  = see: docs/lint/KL009.md\n"), "{stdout}");
    assert!(!stdout.contains("cd /tmp"), "{stdout}");
    assert!(stdout.ends_with(": 2 warnings\n"), "{stdout}");
    let out = kiln(&ctx, &["lint", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings[0]["rule"], "UnfilteredContextCopy");
    assert_eq!(
        warnings[0]["message"],
        "COPY of the whole context, which has no `.dockerignore`, takes in `.env` (a secret)"
    );
    assert_eq!(warnings[0]["url"], "docs/lint/KL004.md");
    assert_eq!(warnings[0]["line"], 2);
    assert_eq!(warnings[1]["rule"], "RunCd");
    // With a `.dockerignore` that leaves `.env` out, the copy is fine.
    std::fs::write(ctx.dir.join(".dockerignore"), ".env\n").unwrap();
    let out = kiln(&ctx, &["lint", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["RunCd"]);
}
