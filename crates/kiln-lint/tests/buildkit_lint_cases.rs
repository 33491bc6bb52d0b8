//! BuildKit's build-check cases (`buildkit-lint-cases.json` of the shared conformance corpus,
//! taken from `dockerfile_check_test.go`): every Dockerfile must give exactly the expected
//! warnings, each with BuildKit's rule name, description, URL, line and message.
//!
//! Upstream runs each case twice, and so does this test:
//! - as a build (the progress stream): only the stages the target needs get their
//!   instructions checked; compared with `warnings` (rule, line and message);
//! - as `docker build --check` (the lint subrequest): every stage; compared with
//!   `unmarshal_warnings` when the case has them, else with `warnings`. Upstream compares the
//!   rule and message there, not the line (`checkLintWarning`), and the one case with its own
//!   list (`testLegacyKeyValueFormat` 3) gives lines that are not those of the file, so that
//!   list is compared without lines.
//!
//! A case's `build_err` is checked too: a `lint violation found for rules: ...` must be the
//! report's violation, any other error must end the checks on `build_err_line`. Errors that
//! only a real build meets (`build_err_regexp`: a file missing from the context) are outside
//! the checks, which must then end without error.

// Tests read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;

use kiln_frontend::{BuildOptions, Platform};
use kiln_lint::{BaseImage, BaseImages, Report, Request};
use kiln_syntax::LineIndex;
use serde_json::Value;

/// The registry image of `testBaseImagePlatformMismatch`, as that test sets it up: pushed
/// for a platform (`targetPlatform`) other than the one the build then asks for
/// (`expectedCurrentPlatform`).
const REGISTRY: &str = "localhost:5000";
const IMAGE_PLATFORM: &str = "linux/arm64";
const BUILD_PLATFORM: &str = "linux/amd64";

struct Registry;

impl BaseImages for Registry {
    fn base_image(&self, name: &str, _platform: &Platform) -> Option<BaseImage> {
        (name == format!("{REGISTRY}/buildkit/testbaseimageplatform:latest")).then(|| BaseImage {
            platform: Some(Platform::parse(IMAGE_PLATFORM).unwrap()),
            env: Vec::new(),
            shell: Vec::new(),
            user: None,
        })
    }
}

/// Fill the placeholders the corpus keeps for the registry test.
fn fill(s: &str) -> String {
    s.replace("<REGISTRY>", REGISTRY)
        .replace("<targetPlatform>", IMAGE_PLATFORM)
        .replace("<expectedCurrentPlatform>", BUILD_PLATFORM)
}

/// (rule, line, message) of a finding; the line is `None` where it is not compared.
type Finding = (String, Option<usize>, String);

fn expected(list: &Value, with_lines: bool) -> Vec<Finding> {
    let mut out: Vec<Finding> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let rule = w["RuleName"].as_str().unwrap();
            // The rule table must say what BuildKit's warning says.
            let known = kiln_lint::rule(rule).unwrap_or_else(|| panic!("unknown rule {rule}"));
            assert_eq!(
                known.description,
                w["Description"].as_str().unwrap(),
                "{rule}"
            );
            assert_eq!(known.url, w["URL"].as_str(), "{rule}");
            assert_eq!(w["Level"], 1, "{rule}");
            (
                rule.to_owned(),
                with_lines.then(|| usize::try_from(w["Line"].as_u64().unwrap()).unwrap()),
                fill(w["Detail"].as_str().unwrap()),
            )
        })
        .collect();
    out.sort();
    out
}

fn found(report: &Report, source: &str, with_lines: bool) -> Vec<Finding> {
    let index = LineIndex::new(source);
    let mut out: Vec<Finding> = report
        .warnings
        .iter()
        .map(|w| {
            assert_eq!(w.severity, kiln_syntax::Severity::Warning);
            assert_eq!(
                w.url.as_deref(),
                kiln_lint::rule(w.rule).and_then(|r| r.url)
            );
            (
                w.rule.to_owned(),
                with_lines.then(|| index.line_col(source, w.span.start).line),
                w.message.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The build args of a case whose attributes the corpus keeps as Go source, such as
/// `"build-arg:IMAGE": integration.UnixOrWindows("busybox:latest", "nanoserver:latest"),`:
/// the Unix branch's value, as the corpus does for templated Dockerfiles.
fn unix_build_args(go: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in go.split("\"build-arg:").skip(1) {
        let Some((name, rest)) = entry.split_once("\":") else {
            continue;
        };
        let Some(args) = rest.trim().strip_prefix("integration.UnixOrWindows(\"") else {
            continue;
        };
        if let Some((unix, _)) = args.split_once('"') {
            out.push((name.to_owned(), unix.to_owned()));
        }
    }
    out
}

/// Run one case; a description of what differs, if anything.
fn run_case(case: &Value) -> Vec<String> {
    let name = format!("{} {}", case["test"].as_str().unwrap(), case["index"]);
    let source = fill(case["dockerfile"].as_str().unwrap());
    let df = kiln_syntax::parse(&source).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut build_args = Vec::new();
    if let Some(attrs) = case["frontend_attrs"].as_object() {
        for (k, v) in attrs {
            if let Some(arg) = k.strip_prefix("build-arg:") {
                build_args.push((arg.to_owned(), v.as_str().unwrap().to_owned()));
            }
        }
    }
    if let Some(go) = case["frontend_attrs_go"].as_str() {
        build_args.extend(unix_build_args(go));
    }
    let ignore = case["dockerignore"].as_str().map(|text| {
        kiln_context::IgnoreRules::parse(text.as_bytes(), ".dockerignore".into()).unwrap()
    });
    let options = BuildOptions {
        target: None,
        build_args,
        target_platform: Platform::parse(BUILD_PLATFORM).unwrap(),
        build_platform: Platform::parse(BUILD_PLATFORM).unwrap(),
    };
    let mut problems = Vec::new();
    for all_stages in [false, true] {
        let req = Request {
            source: &source,
            dockerfile: &df,
            options: &options,
            all_stages,
            ignore: ignore.as_ref().map(kiln_context::IgnoreRules::matcher),
            images: Some(&Registry),
            // BuildKit's rules only: the cases say what BuildKit reports, and kiln's own
            // rules (unpinned base images, root users ...) would add to every one of them.
            own_rules: false,
            context: None,
        };
        let report = kiln_lint::check(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mode = if all_stages { "check" } else { "build" };
        let own_list = all_stages && case.get("unmarshal_warnings").is_some();
        let list = if own_list {
            &case["unmarshal_warnings"]
        } else {
            case.get("warnings").unwrap_or(&Value::Null)
        };
        let want = if list.is_null() {
            Vec::new()
        } else {
            expected(list, !own_list)
        };
        let got = found(&report, &source, !own_list);
        if want != got {
            problems.push(format!("{name} ({mode}):\n  want {want:?}\n  got  {got:?}"));
        }
        problems.extend(check_error(&name, mode, case, &report, &source));
    }
    problems
}

/// Compare the case's `build_err` with the report.
fn check_error(
    name: &str,
    mode: &str,
    case: &Value,
    report: &Report,
    source: &str,
) -> Option<String> {
    let build_err = case["build_err"].as_str();
    let violation = report.violation();
    if let Some(err) = build_err.filter(|e| e.starts_with("lint violation")) {
        return (violation.as_deref() != Some(err))
            .then(|| format!("{name} ({mode}): violation {violation:?}, want {err:?}"));
    }
    if violation.is_some() {
        return Some(format!("{name} ({mode}): unexpected {violation:?}"));
    }
    let error_line = report
        .error
        .as_ref()
        .map(|e| LineIndex::new(source).line_col(source, e.span.start).line);
    let want_line = if case["build_err_regexp"].is_string() {
        None // a build-time error (a file missing from the context), not one of the checks
    } else {
        case["build_err_line"]
            .as_u64()
            .map(|l| usize::try_from(l).unwrap())
    };
    (error_line != want_line).then(|| {
        format!(
            "{name} ({mode}): error {:?} on line {error_line:?}, want line {want_line:?} ({build_err:?})",
            report.error.as_ref().map(ToString::to_string)
        )
    })
}

#[test]
fn buildkit_lint_cases() {
    let Some(dir) = kiln_test_support::conformance_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("buildkit-lint-cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 89);
    let mut problems = Vec::new();
    let mut rules_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ran = 0;
    for case in &cases {
        if windows_branch(case) {
            continue;
        }
        ran += 1;
        for w in case["warnings"].as_array().into_iter().flatten() {
            *rules_seen
                .entry(w["RuleName"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        problems.extend(run_case(case));
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(ran, 88);
    // Every rule is exercised by at least one expected warning.
    assert_eq!(rules_seen.len(), 22, "{rules_seen:?}");
}

/// The second `testBaseImagePlatformMismatch` entry is the Windows branch of the upstream
/// test (`integration.UnixOrWindows`): its Dockerfile and inputs are the same as the first
/// entry's, and upstream checks it with a regular expression over the progress stream
/// (`StreamBuildErrRegexp`, a Windows platform string), which the corpus could not carry, so
/// its empty `warnings` list does not describe a Linux build. It is the one case not run.
fn windows_branch(case: &Value) -> bool {
    case["test"] == "testBaseImagePlatformMismatch" && case["index"] == 2
}
