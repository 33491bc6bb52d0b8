//! The context walker on real temporary trees: fsutil's filtering examples, ignore-file
//! precedence, symlinks and ordering.

use std::fs;
use std::path::Path;

use kiln_context::{ContextError, IgnoreRules, IgnoreSource, PatternError, walk};

/// Creates `spec` under `root`: names ending in `/` are directories, others files.
fn tree(root: &Path, spec: &[&str]) {
    for item in spec {
        let path = root.join(item.trim_end_matches('/'));
        if item.ends_with('/') {
            fs::create_dir_all(&path).unwrap();
        } else {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, item.as_bytes()).unwrap();
        }
    }
}

/// The walk as `file x` / `dir x` / `symlink x` lines, like fsutil's test dumps.
fn dump(root: &Path, rules: &IgnoreRules) -> Vec<String> {
    walk(root, rules)
        .unwrap()
        .into_iter()
        .map(|e| {
            let kind = if e.file_type.is_dir() {
                "dir"
            } else if e.file_type.is_symlink() {
                "symlink"
            } else {
                "file"
            };
            format!("{kind} {}", e.path)
        })
        .collect()
}

fn excluding(patterns: &[&str]) -> IgnoreRules {
    IgnoreRules::from_patterns(patterns).unwrap()
}

#[test]
fn exception_below_excluded_directory_keeps_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["bar", "foo/bar1", "foo/bar2", "foo2"]);
    assert_eq!(
        dump(dir.path(), &excluding(&["foo*", "!foo/bar2"])),
        ["file bar", "dir foo", "file foo/bar2"]
    );
}

#[test]
fn excluded_directory_with_reincluded_child() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["foo/bar", "foo/baz", "other"]);
    assert_eq!(
        dump(dir.path(), &excluding(&["foo", "!foo/bar"])),
        ["dir foo", "file foo/bar", "file other"]
    );
}

#[test]
fn exclusion_without_exceptions_drops_whole_directory() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["docs/a.md", "docs/sub/b.md", "src/main.rs"]);
    assert_eq!(
        dump(dir.path(), &excluding(&["docs"])),
        ["dir src", "file src/main.rs"]
    );
}

#[test]
fn glob_exception_walks_every_excluded_directory() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["a/x/keep", "a/y", "b"]);
    assert_eq!(
        dump(dir.path(), &excluding(&["a", "!**/keep"])),
        ["dir a", "dir a/x", "file a/x/keep", "file b"]
    );
}

#[test]
fn nested_exceptions_follow_last_match() {
    let dir = tempfile::tempdir().unwrap();
    tree(
        dir.path(),
        &["foo/bar/baz/x", "foo/bar/baz/y", "foo/bar/z", "foo/w"],
    );
    let rules = excluding(&["foo", "!foo/bar", "foo/bar/baz", "!foo/bar/baz/x"]);
    assert_eq!(
        dump(dir.path(), &rules),
        [
            "dir foo",
            "dir foo/bar",
            "dir foo/bar/baz",
            "file foo/bar/baz/x",
            "file foo/bar/z"
        ]
    );
}

#[test]
fn order_is_bytewise_depth_first() {
    let dir = tempfile::tempdir().unwrap();
    // Created out of order on purpose.
    tree(dir.path(), &["b", "a.txt", "a/z", "a-b", "A", "a/Y/1"]);
    assert_eq!(
        dump(dir.path(), &IgnoreRules::empty()),
        [
            "file A",
            "dir a",
            "dir a/Y",
            "file a/Y/1",
            "file a/z",
            "file a-b",
            "file a.txt",
            "file b"
        ]
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_reported_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    tree(dir.path(), &["real/file"]);
    tree(outside.path(), &["secret"]);
    std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
    std::os::unix::fs::symlink("missing", dir.path().join("dangling")).unwrap();
    assert_eq!(
        dump(dir.path(), &IgnoreRules::empty()),
        [
            "symlink dangling",
            "symlink link",
            "symlink out",
            "dir real",
            "file real/file"
        ]
    );
    // Patterns see the link's own path, not its target's.
    assert_eq!(
        dump(dir.path(), &excluding(&["real"])),
        ["symlink dangling", "symlink link", "symlink out"]
    );
}

#[test]
fn per_dockerfile_ignore_file_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    tree(
        dir.path(),
        &["a", "b", "build/app.Dockerfile", "Dockerfile"],
    );
    fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
    fs::write(
        dir.path().join("build/app.Dockerfile.dockerignore"),
        "# only b\nb\n",
    )
    .unwrap();

    let specific =
        IgnoreRules::for_build(dir.path(), &dir.path().join("build/app.Dockerfile")).unwrap();
    assert_eq!(
        specific.source(),
        &IgnoreSource::File(dir.path().join("build/app.Dockerfile.dockerignore"))
    );
    assert_eq!(specific.lines()[0].line, 2);
    assert!(specific.is_excluded("b").unwrap());
    assert!(!specific.is_excluded("a").unwrap());

    // Another Dockerfile without its own file falls back to the context's `.dockerignore`.
    let root = IgnoreRules::for_build(dir.path(), &dir.path().join("Dockerfile")).unwrap();
    assert_eq!(
        root.source(),
        &IgnoreSource::File(dir.path().join(".dockerignore"))
    );
    assert!(root.is_excluded("a").unwrap());
    assert!(!root.is_excluded("b").unwrap());

    // An empty per-Dockerfile file still wins, and excludes nothing.
    fs::write(dir.path().join("build/app.Dockerfile.dockerignore"), "").unwrap();
    let empty =
        IgnoreRules::for_build(dir.path(), &dir.path().join("build/app.Dockerfile")).unwrap();
    assert!(
        matches!(empty.source(), IgnoreSource::File(p) if p.ends_with("app.Dockerfile.dockerignore"))
    );
    assert!(!empty.is_excluded("a").unwrap());
}

#[test]
fn no_ignore_file_excludes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["Dockerfile", "x/y"]);
    let rules = IgnoreRules::for_build(dir.path(), &dir.path().join("Dockerfile")).unwrap();
    assert_eq!(rules.source(), &IgnoreSource::NoFile);
    assert_eq!(
        dump(dir.path(), &rules),
        ["file Dockerfile", "dir x", "file x/y"]
    );
}

#[test]
fn dockerfile_and_ignore_file_can_exclude_themselves() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["Dockerfile", "app.py"]);
    fs::write(
        dir.path().join(".dockerignore"),
        "Dockerfile\n.dockerignore\n",
    )
    .unwrap();
    let rules = IgnoreRules::for_build(dir.path(), &dir.path().join("Dockerfile")).unwrap();
    assert_eq!(dump(dir.path(), &rules), ["file app.py"]);
}

#[test]
fn bare_bang_fails_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".dockerignore"), "a\n!\n").unwrap();
    let err = IgnoreRules::for_build(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    let ContextError::InvalidPattern {
        location,
        pattern,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((location.line, pattern.as_str()), (2, "!"));
    assert_eq!(source, &PatternError::IllegalExclusion { index: 1 });
    assert!(err.to_string().contains(".dockerignore` line 2"), "{err}");
}

#[test]
fn pattern_that_fails_only_when_matching_stops_the_walk() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path(), &["x"]);
    fs::write(
        dir.path().join(".dockerignore"),
        "# bad range below\n[Local-Only]/\n",
    )
    .unwrap();
    let rules = IgnoreRules::for_build(dir.path(), &dir.path().join("Dockerfile")).unwrap();
    let err = walk(dir.path(), &rules).unwrap_err();
    let ContextError::MatchFailed {
        path,
        location,
        pattern,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (path.as_str(), location.line, pattern.as_str()),
        (".dockerignore", 2, "[Local-Only]")
    );
    assert!(err.hint().is_some());
}

#[test]
fn missing_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = walk(&dir.path().join("nope"), &IgnoreRules::empty()).unwrap_err();
    assert!(
        matches!(err, ContextError::Walk { ref path, .. } if path.ends_with("nope")),
        "{err:?}"
    );
}
