//! Helpers shared by kiln's tests (a dev-dependency only; never linked into the binary).
//!
//! It knows where the shared conformance corpus lives and the CI policy for tests that
//! cannot run: under `CI=true` a missing prerequisite is a failure, never a skip.

use std::path::PathBuf;

/// Whether the tests run in CI (`CI=true`), where missing prerequisites must fail.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared conformance corpus: `KILN_CONFORMANCE_DIR`, else `../shared/conformance` beside
/// the workspace root.
///
/// Returns `None` (after saying so loudly) when it is absent outside CI; panics in CI.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR").map_or_else(
        || workspace_root().join("../shared/conformance"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    missing(&format!(
        "conformance corpus not found at `{}`",
        dir.display()
    ));
    None
}

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Report a prerequisite that is missing: a panic under CI, a loud message otherwise.
pub fn missing(what: &str) {
    assert!(!in_ci(), "{what} (CI=true: this test must not be skipped)");
    eprintln!("SKIPPED: {what}");
}
