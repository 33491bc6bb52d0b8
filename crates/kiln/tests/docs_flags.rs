//! The CI recipes kiln documents (`docs/ci.md`: GitHub Actions, GitLab CI; the Kubernetes Job
//! in `deploy/kubernetes/kiln-build-job.yaml`) use only flags kiln has: every `--flag` given
//! to `kiln build`, `kiln login` or `kiln doctor` there is one that subcommand's `--help`
//! lists. (What each flag does is tested where it is built: `build_registry.rs`,
//! `registry_cli.rs`, `build_remote_cache.rs`, `rootless.rs`, `doctor.rs`.)

use std::collections::BTreeSet;
use std::process::Command;

use kiln_test_support::{ok, workspace_root};

/// The `(subcommand, --flag)` pairs of `kiln SUB ...` command lines in `text`, with shell
/// line continuations (`\`) and YAML folded lines joined.
fn kiln_flags(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in logical_lines(text) {
        let Some(at) = line.find("kiln ") else {
            continue;
        };
        let words: Vec<&str> = line[at + 5..]
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '`' || c == ',' || c == ')'))
            .collect();
        let Some(sub) = words.first() else {
            continue;
        };
        if !["build", "login", "doctor"].contains(sub) {
            continue;
        }
        for w in &words[1..] {
            if matches!(*w, "|" | "&&" | ";") {
                break;
            }
            if let Some(flag) = w.strip_prefix("--") {
                let name = flag.split('=').next().unwrap_or(flag);
                out.insert(((*sub).to_owned(), format!("--{name}")));
            }
        }
    }
    out
}

/// `text`'s lines with shell continuations (`\`) joined, and each YAML folded scalar (a line
/// ending in `>`, then its more-indented lines) made one line.
fn logical_lines(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let mut out: Vec<String> = Vec::new();
    let mut folding: Option<usize> = None;
    for line in joined.lines() {
        let indent = line.len() - line.trim_start().len();
        match folding {
            Some(at) if indent > at && !line.trim().is_empty() => {
                let last = out.last_mut().expect("a folded scalar follows its line");
                last.push(' ');
                last.push_str(line.trim());
                continue;
            }
            _ => folding = None,
        }
        if line.trim_end().ends_with('>') {
            folding = Some(indent);
        }
        out.push(line.to_owned());
    }
    out
}

/// The `args:` list of the Job's container: `build` and its flags.
fn job_flags(yaml: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut in_args = false;
    let mut sub = None;
    for line in yaml.lines() {
        let t = line.trim();
        if t == "args:" {
            in_args = true;
            continue;
        }
        if in_args {
            let Some(item) = t.strip_prefix("- ") else {
                in_args = false;
                continue;
            };
            match (&sub, item.strip_prefix("--")) {
                (None, _) => sub = Some(item.to_owned()),
                (Some(s), Some(flag)) => {
                    let name = flag.split('=').next().unwrap_or(flag);
                    out.insert((s.clone(), format!("--{name}")));
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn the_documented_ci_recipes_use_only_flags_kiln_has() {
    let root = workspace_root();
    let ci = std::fs::read_to_string(root.join("docs/ci.md")).unwrap();
    let job = std::fs::read_to_string(root.join("deploy/kubernetes/kiln-build-job.yaml")).unwrap();
    let mut flags = kiln_flags(&ci);
    let from_job = job_flags(&job);
    assert!(
        from_job.contains(&("build".into(), "--cache-from".into())),
        "{from_job:?}"
    );
    flags.extend(from_job);
    for expected in ["--cache-to", "--push", "--metadata-file"] {
        assert!(
            flags.contains(&("build".into(), expected.into())),
            "{expected} not found in {flags:?}"
        );
    }
    let mut unknown = Vec::new();
    for (sub, flag) in &flags {
        let help = ok(&Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args([sub.as_str(), "--help"])
            .output()
            .unwrap());
        if !help.contains(&format!("{flag} "))
            && !help.contains(&format!("{flag}="))
            && !help.contains(&format!("{flag}\n"))
            && !help.contains(&format!("{flag} <"))
            && !help.contains(&format!("{flag}["))
        {
            unknown.push(format!("kiln {sub} {flag}"));
        }
    }
    assert!(
        unknown.is_empty(),
        "documented but not in --help: {unknown:?}"
    );
}
