//! Point 1 and 2: sources (wildcards, directories, symlinks, containment, missing) and the
//! destination rules, each against explicit BuildKit results.

mod common;

use common::*;
use kiln_fileop::{FileOpError, SourceRoot};

#[test]
fn file_to_name_and_into_trailing_slash_dir() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "a.txt", "A", 0o640);
    let m = run(&copy(&["a.txt"], "/x/renamed"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["x", "x/renamed"]);
    assert_eq!(m["x/renamed"].data, "A");
    assert_eq!(m["x/renamed"].mode, 0o640, "file permissions are kept");
    assert_eq!(
        (m["x"].mode, m["x"].kind),
        (0o755, 'd'),
        "created parents are 0755"
    );
    let m = run(&copy(&["a.txt"], "/x/"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["x", "x/a.txt"]);
}

#[test]
fn relative_dest_uses_workdir_and_dot() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "1", 0o644);
    let mut op = copy(&["f"], ".");
    op.workdir = "/var/www".into();
    let m = run(&op, ctx.path(), None).unwrap();
    assert!(m.contains_key("var/www/f"), "{:?}", paths(&m));
    let mut op = copy(&["f"], "sub/g");
    op.workdir = "/app".into();
    let m = run(&op, ctx.path(), None).unwrap();
    assert!(m.contains_key("app/sub/g"));
}

#[test]
fn directory_source_copies_its_contents() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "dir/a", "a", 0o644);
    write(ctx.path(), "dir/sub/b", "b", 0o600);
    set_mode(&ctx.path().join("dir"), 0o700);
    set_mtime(&ctx.path().join("dir"), 1_000);
    let m = run(&copy(&["dir"], "/out"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["out", "out/a", "out/sub", "out/sub/b"]);
    // The destination is made by MkdirAll (0755), then gets the source dir's mtime.
    assert_eq!((m["out"].mode, m["out"].mtime), (0o755, 1_000));
    // Trailing slash on the source changes nothing.
    let again = run(&copy(&["dir/"], "/out"), ctx.path(), None).unwrap();
    assert_eq!(m, again);
}

#[test]
fn existing_dest_directory_receives_the_file_and_keeps_its_metadata() {
    let ctx = tempfile::tempdir().unwrap();
    let lower = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "F", 0o644);
    write(ctx.path(), "d/x", "X", 0o644);
    dir(lower.path(), "existing", 0o750);
    chown(&lower.path().join("existing"), 500, 600);
    let m = run(&copy(&["f"], "/existing"), ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(paths(&m), ["existing", "existing/f"]);
    assert_eq!((m["existing"].uid, m["existing"].mode), (500, 0o750));
    let m = run(&copy(&["d"], "/existing"), ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(paths(&m), ["existing", "existing/x"]);
    assert_eq!(
        m["existing"].uid, 500,
        "an existing target dir keeps its owner"
    );
}

#[test]
fn wildcards_match_per_element_sorted_and_empty_matches_are_fine() {
    let ctx = tempfile::tempdir().unwrap();
    for f in ["b.txt", "a.txt", "c.md", "arr[0].txt", "sub/d.txt"] {
        write(ctx.path(), f, f, 0o644);
    }
    let m = run(&copy(&["*.txt"], "/w/"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["w", "w/a.txt", "w/arr[0].txt", "w/b.txt"]);
    let m = run(&copy(&["arr[[]0].txt", "?.md"], "/w/"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["w", "w/arr[0].txt", "w/c.md"]);
    let m = run(&copy(&["*/d.*"], "/w/"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["w", "w/d.txt"]);
    // BuildKit's AllowEmptyWildcard: `COPY foo nomatch* /` copies foo and nothing else.
    let m = run(&copy(&["c.md", "nomatch*"], "/"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["c.md"]);
}

#[test]
fn several_sources_to_a_name_without_slash_overwrite_as_buildkit_does() {
    // moby/buildkit#1853: no error, the last source wins.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "one", "1", 0o644);
    write(ctx.path(), "two", "2", 0o644);
    let m = run(&copy(&["one", "two"], "/dest"), ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["dest"]);
    assert_eq!(m["dest"].data, "2");
}

#[test]
fn source_symlinks_are_followed_inside_the_root_but_kept_inside_directories() {
    // dockerfile_copy_test.go testCopySymlinks / testCopyThroughSymlinkContext /
    // testCopyFollowAllSymlinks.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "bar", "bar-contents", 0o600);
    link(ctx.path(), "foo", "bar");
    write(ctx.path(), "sub/subfile", "subfile-contents", 0o600);
    link(ctx.path(), "sub/l0", "subfile");
    link(ctx.path(), "sub/l1", "second");
    link(ctx.path(), "sub/second", "baz");
    write(ctx.path(), "sub/baz", "baz-contents", 0o600);
    link(ctx.path(), "link", "sub");
    link(ctx.path(), "dir/up", "../../../bar");
    let m = run(&copy(&["foo"], "/"), ctx.path(), None).unwrap();
    assert_eq!(
        (m["foo"].kind, m["foo"].data.as_str()),
        ('f', "bar-contents")
    );
    let m = run(&copy(&["sub/l*"], "/alllinks/"), ctx.path(), None).unwrap();
    assert_eq!(m["alllinks/l0"].data, "subfile-contents");
    assert_eq!(m["alllinks/l1"].data, "baz-contents");
    let m = run(&copy(&["link/subfile"], "/"), ctx.path(), None).unwrap();
    assert_eq!(m["subfile"].data, "subfile-contents");
    let m = run(&copy(&["dir/up"], "/x"), ctx.path(), None).unwrap();
    assert_eq!(
        m["x"].data, "bar-contents",
        "`..` in a link stays in the root"
    );
    // Inside a copied directory a symlink stays a symlink.
    let m = run(&copy(&["sub"], "/s/"), ctx.path(), None).unwrap();
    assert_eq!((m["s/l0"].kind, m["s/l0"].link.as_str()), ('l', "subfile"));
}

#[test]
fn dotdot_and_absolute_sources_stay_in_the_root() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "in", 0o644);
    for src in ["../../f", "/f", "./x/../f"] {
        let m = run(&copy(&[src], "/g"), ctx.path(), None).unwrap();
        assert_eq!(m["g"].data, "in", "{src}");
    }
}

#[test]
fn missing_sources_say_what_and_where() {
    let ctx = tempfile::tempdir().unwrap();
    let err = run(&copy(&["nope/x"], "/"), ctx.path(), None).unwrap_err();
    assert!(matches!(err, FileOpError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        "failed to compute cache key: `/nope/x` not found in the build context"
    );
    assert!(err.hint().is_some());
}

#[test]
fn ignored_files_do_not_exist_in_the_context() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "keep", "k", 0o644);
    write(ctx.path(), "secret.key", "s", 0o644);
    write(ctx.path(), "logs/a.log", "l", 0o644);
    write(ctx.path(), "logs/keep.log", "l", 0o644);
    let rules =
        kiln_context::IgnoreRules::from_patterns(&["*.key", "logs", "!logs/keep.log"]).unwrap();
    let root = SourceRoot::context(ctx.path(), &rules).unwrap();
    let (m, _) = run_with(&copy(&["."], "/c/"), Some(&root), None, None).unwrap();
    assert_eq!(paths(&m), ["c", "c/keep", "c/logs", "c/logs/keep.log"]);
    let err = run_with(&copy(&["secret.key"], "/"), Some(&root), None, None).unwrap_err();
    assert!(matches!(err, FileOpError::NotFound { .. }));
}

#[test]
fn stage_sources_keep_owners_and_follow_middle_links_inside_the_stage() {
    // testCopyThroughSymlinkMultiStage and testCopyChownExistingDir.
    let stage = tempfile::tempdir().unwrap();
    write(stage.path(), "out/sub/foo", "data", 0o644);
    link(stage.path(), "sub", "/out/sub");
    link(stage.path(), "sub2", "out/sub");
    dir(stage.path(), "dir/subdir", 0o755);
    write(stage.path(), "dir/subdir/nested", "n", 0o644);
    chown(&stage.path().join("dir"), 100, 200);
    chown(&stage.path().join("dir/subdir"), 101, 201);
    chown(&stage.path().join("dir/subdir/nested"), 102, 202);
    let root = SourceRoot::rootfs(stage.path(), "stage `build`");
    let (m, _) = run_with(
        &copy(&["/sub/foo", "/sub2/foo"], "/got/"),
        Some(&root),
        None,
        None,
    )
    .unwrap();
    assert_eq!(m["got/foo"].data, "data");
    let (m, _) = run_with(&copy(&["/dir"], "/dir"), Some(&root), None, None).unwrap();
    assert_eq!(
        (m["dir"].uid, m["dir"].gid),
        (0, 0),
        "the created target dir is root's"
    );
    assert_eq!((m["dir/subdir"].uid, m["dir/subdir"].gid), (101, 201));
    assert_eq!(
        (m["dir/subdir/nested"].uid, m["dir/subdir/nested"].gid),
        (102, 202)
    );
    let err = run_with(&copy(&["/nothere"], "/"), Some(&root), None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to compute cache key: `/nothere` not found in stage `build`"
    );
}

#[test]
fn context_files_become_root_owned() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "x", 0o644);
    chown(&ctx.path().join("f"), 1234, 4321);
    let m = run(&copy(&["f"], "/f"), ctx.path(), None).unwrap();
    assert_eq!((m["f"].uid, m["f"].gid), (0, 0));
}

#[test]
fn destination_symlinks_in_the_parent_are_followed() {
    let ctx = tempfile::tempdir().unwrap();
    let lower = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "x", 0o644);
    dir(lower.path(), "usr/lib", 0o755);
    link(lower.path(), "lib", "usr/lib");
    let m = run(&copy(&["f"], "/lib/"), ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(paths(&m), ["usr", "usr/lib", "usr/lib/f"]);
}

#[test]
fn conflicts_give_buildkit_errors() {
    let ctx = tempfile::tempdir().unwrap();
    let lower = tempfile::tempdir().unwrap();
    write(ctx.path(), "d/sub/x", "x", 0o644);
    write(ctx.path(), "f", "x", 0o644);
    write(lower.path(), "out/sub", "a file", 0o644);
    let err = run(&copy(&["d"], "/out"), ctx.path(), Some(lower.path())).unwrap_err();
    assert_eq!(err.to_string(), "cannot copy to non-directory: `/out/sub`");
    write(lower.path(), "file", "a file", 0o644);
    let err = run(&copy(&["f"], "/file/x"), ctx.path(), Some(lower.path())).unwrap_err();
    assert!(matches!(err, FileOpError::NotADirectory { .. }), "{err}");
    dir(lower.path(), "dd/f", 0o755);
    // `f` goes to `/dd/f` (the destination is a directory), which is a directory: fsutil's
    // ensureEmptyFileTarget refuses.
    let err = run(&copy(&["d", "f"], "/dd/"), ctx.path(), Some(lower.path())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot replace to directory `/dd/f` with file"
    );
}
