//! The workspace's shape, checked from `cargo metadata`: crate dependencies point down the
//! layers `crates/README.md` lists (or stay within a layer), and every crate in the
//! dependency tree has a licence from the allowed list.

// Tests and benchmarks read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::process::Command;

use kiln_test_support::{run, workspace_root};

/// `cargo metadata` for this machine's platform, as JSON.
fn metadata(no_deps: bool) -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = run(Command::new("rustc").arg("-vV"))
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &host]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    serde_json::from_str(&run(&mut cmd)).unwrap()
}

/// The layer of each crate in `crates/README.md`'s table (a row such as `| 2 | kiln-oci |`,
/// the name in backticks); `None` for the `test` row.
fn layers() -> BTreeMap<String, Option<u32>> {
    let readme = std::fs::read_to_string(workspace_root().join("crates/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            let layer = match *cells.get(1)? {
                "test" => None,
                n => Some(n.parse().ok()?),
            };
            Some((name.to_owned(), layer))
        })
        .collect()
}

#[test]
fn dependencies_point_down_the_layers_of_crates_readme() {
    let layers = layers();
    let meta = metadata(true);
    let members: Vec<&serde_json::Value> = meta["packages"].as_array().unwrap().iter().collect();
    let mut problems = Vec::new();
    for p in &members {
        let name = p["name"].as_str().unwrap();
        let Some(&mine) = layers.get(name) else {
            problems.push(format!("`{name}` is not in crates/README.md's table"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let dev = d["kind"].as_str() == Some("dev");
            let Some(&theirs) = layers.get(dep) else {
                continue; // not a crate of this workspace
            };
            match (mine, theirs) {
                // Only tests use the test support crate.
                (_, None) if dev => {}
                (_, None) => {
                    problems.push(format!("`{name}` depends on `{dep}` outside its tests"));
                }
                (Some(m), Some(t)) if t > m && !dev => problems.push(format!(
                    "`{name}` (layer {m}) depends on `{dep}` (layer {t}): arrows point down"
                )),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Licences the project accepts in its dependency tree: permissive ones, compatible with
/// kiln's Apache-2.0 (`bzip2-1.0.6` is the BSD-style licence of the bzip2 sources; `MIT-0` is
/// MIT without the attribution clause, of `borrow-or-share` under the SARIF test's schema
/// validator).
const ALLOWED: [&str; 11] = [
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "Unicode-3.0",
    "Unlicense",
    "bzip2-1.0.6",
];

/// Whether an SPDX expression (`A OR B`, `(A OR B) AND C`, and the old `A/B`) allows use
/// under the licences in [`ALLOWED`]: every `AND` part must have an allowed alternative.
fn allowed(expr: &str) -> bool {
    expr.replace(['(', ')'], "").split(" AND ").all(|part| {
        part.split(" OR ")
            .flat_map(|p| p.split('/'))
            .any(|l| ALLOWED.contains(&l.trim()))
    })
}

#[test]
fn every_dependency_has_an_allowed_licence() {
    assert!(allowed("MIT OR Apache-2.0"));
    assert!(allowed("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(!allowed("GPL-3.0-only"));
    assert!(!allowed("MIT AND GPL-3.0-only"));
    let meta = metadata(false);
    let mut problems = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        match p["license"].as_str() {
            Some(l) if allowed(l) => {}
            Some(l) => problems.push(format!("`{name}`: {l}")),
            None => problems.push(format!("`{name}`: no licence field")),
        }
    }
    assert!(
        problems.is_empty(),
        "dependencies whose licence is not allowed (add it to ALLOWED with a reason, or drop the crate):\n{}",
        problems.join("\n")
    );
}
