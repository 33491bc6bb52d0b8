//! Points 3, 4 and 6: `--chown`, `--chmod`, `--parents`, `--exclude`, `--link`, mtimes,
//! hard links and heredocs, each against BuildKit's documented or tested result.

mod common;

use std::sync::Arc;

use common::*;
use kiln_fileop::{ChownSpec, FileOpError, ModeChange, OctalMode, Source};

fn passwd_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\nuser01:x:1001:1001::/home/user01:/bin/sh\ndaemon:x:1:1::/:/bin/false\n",
        0o644,
    );
    write(
        t.path(),
        "etc/group",
        "root:x:0:\nuser:x:1000:\nnobody:x:65534:\n",
        0o644,
    );
    t
}

#[test]
fn chown_by_name_and_id_applies_to_files_and_created_parents() {
    // testCopyChown and testCopyChownCreateDest.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "foo", "f", 0o644);
    write(ctx.path(), "d/x", "x", 0o644);
    let target = passwd_root();
    let cases = [
        ("daemon", (1, 1)),
        ("1000:nobody", (1000, 65534)),
        ("user01:user", (1001, 1000)),
        ("1000", (1000, 1000)),
        ("root", (0, 0)),
    ];
    for (spec, ids) in cases {
        let mut op = copy(&["foo"], "/new/dir/");
        op.chown = Some(ChownSpec::parse(spec));
        let m = run(&op, ctx.path(), Some(target.path())).unwrap();
        let got = |p: &str| (m[p].uid, m[p].gid);
        assert_eq!(got("new/dir/foo"), ids, "{spec}");
        assert_eq!(
            got("new"),
            ids,
            "created parents belong to the chown user ({spec})"
        );
    }
    let mut op = copy(&["d"], "/dest");
    op.chown = Some(ChownSpec::parse("user:user"));
    let m = run(&op, ctx.path(), Some(target.path())).unwrap();
    assert_eq!((m["dest"].uid, m["dest/x"].uid), (1000, 1000));
}

#[test]
fn chown_of_an_unknown_name_is_an_error_naming_the_file() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "foo", "f", 0o644);
    let target = passwd_root();
    let mut op = copy(&["foo"], "/");
    op.chown = Some(ChownSpec::parse("ghost"));
    let err = run(&op, ctx.path(), Some(target.path())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown user `ghost` in `--chown`: not found in `/etc/passwd`"
    );
    op.chown = Some(ChownSpec::parse("user:ghosts"));
    let err = run(&op, ctx.path(), Some(target.path())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown group `ghosts` in `--chown`: not found in `/etc/group`"
    );
}

#[test]
fn octal_chmod_sets_copied_entries_and_created_parents() {
    // Today's BuildKit (Dockerfile 1.25, `testCopyChmod`): created parents get the --chmod
    // bits (`0o777` of them). Docker 20.10's BuildKit made them 0755: a deliberate deviation,
    // recorded in the conformance case 11-chmod.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "foo", "f", 0o600);
    write(ctx.path(), "d/x", "x", 0o600);
    let run_chmod = |src: &str, dest: &str, mode: u32| {
        let mut op = copy(&[src], dest);
        op.chmod = Some(Arc::new(OctalMode(mode)));
        run(&op, ctx.path(), None).unwrap()
    };
    assert_eq!(run_chmod("foo", "/foo", 0o644)["foo"].mode, 0o644);
    assert_eq!(run_chmod("foo", "/foobis", 0)["foobis"].mode, 0);
    assert_eq!(run_chmod("foo", "/parent/foo", 0o777)["parent"].mode, 0o777);
    let m = run_chmod("foo", "/parent/sub/foo", 0o770);
    assert_eq!((m["parent"].mode, m["parent/sub"].mode), (0o770, 0o770));
    assert_eq!(m["parent/sub/foo"].mode, 0o770);
    let m = run_chmod("d", "/out/", 0o4700);
    assert_eq!(m["out/x"].mode, 0o4700, "special bits reach files");
    assert_eq!(
        m["out"].mode, 0o700,
        "the directory made for the copy has the --chmod bits"
    );
}

/// `u+x` as a test double for the frontend's symbolic chmod.
#[derive(Debug)]
struct UserExec;

impl ModeChange for UserExec {
    fn apply(&self, mode: u32, _is_dir: bool) -> u32 {
        mode | 0o100
    }
    fn octal(&self) -> Option<u32> {
        None
    }
}

#[test]
fn symbolic_chmod_changes_each_mode_and_leaves_created_parents_at_0755() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "d/x", "x", 0o600);
    write(ctx.path(), "d/s/y", "y", 0o640);
    set_mode(&ctx.path().join("d/s"), 0o700);
    link(ctx.path(), "d/l", "x");
    let mut op = copy(&["d"], "/p/q/");
    op.chmod = Some(Arc::new(UserExec));
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(m["p/q/x"].mode, 0o700);
    assert_eq!(m["p/q/s/y"].mode, 0o740);
    assert_eq!(m["p/q/s"].mode, 0o700, "copied directories are changed too");
    assert_eq!(m["p"].mode, 0o755);
    assert_eq!(m["p/q/l"].mode, 0o777, "symlinks are never chmodded");
}

#[test]
fn parents_keep_the_path_below_the_root_or_the_pivot() {
    // dockerfile_parents_test.go testCopyParents / testCopyRelativeParents.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "x/a.txt", "a", 0o644);
    write(ctx.path(), "y/a.txt", "b", 0o644);
    write(ctx.path(), "y/b/c.txt", "c", 0o644);
    write(ctx.path(), "y/b/d.md", "d", 0o644);
    let mut op = copy(&["x/a.txt", "y/a.txt"], "/out/");
    op.parents = true;
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(
        paths(&m),
        ["out", "out/x", "out/x/a.txt", "out/y", "out/y/a.txt"]
    );
    let mut op = copy(&["./y/./b/*.txt"], "/out/");
    op.parents = true;
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["out", "out/b", "out/b/c.txt"]);
    let mut op = copy(&["y/b"], "/out/");
    op.parents = true;
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(
        paths(&m),
        ["out", "out/y", "out/y/b", "out/y/b/c.txt", "out/y/b/d.md"]
    );
    // testCopyParentsMissingDirectory: a literal path must exist.
    let mut op = copy(&["y/nope"], "/out/");
    op.parents = true;
    let err = run(&op, ctx.path(), None).unwrap_err();
    assert!(matches!(err, FileOpError::NotFound { .. }), "{err}");
}

#[test]
fn exclude_matches_paths_below_each_source() {
    // exclude_patterns_test.go testExcludedFilesOnCopy, builders 1, 3 and 4.
    let ctx = tempfile::tempdir().unwrap();
    for f in [
        "dir1/f.png",
        "dir1/f.txt",
        "dir1/f.jpeg",
        "dir2/g.pdf",
        "dir3/h.mp3",
        "dir3/h.mpeg",
    ] {
        write(ctx.path(), f, f, 0o644);
    }
    let mut op = copy(&["."], "/1");
    op.exclude = vec!["*/*.png".into(), "*/*.jpeg".into()];
    let m = run(&op, ctx.path(), None).unwrap();
    assert!(!m.contains_key("1/dir1/f.png") && !m.contains_key("1/dir1/f.jpeg"));
    assert!(m.contains_key("1/dir1/f.txt") && m.contains_key("1/dir3/h.mp3"));
    let mut op = copy(&["dir3/"], "/3/");
    op.exclude = vec!["*.mp3".into()];
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["3", "3/h.mpeg"]);
    let mut op = copy(&["dir*"], "/4/");
    op.exclude = ["*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"]
        .map(Into::into)
        .to_vec();
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["4", "4/h.mpeg"]);
    // An exception re-includes below an excluded directory, which then appears.
    let mut op = copy(&["."], "/5/");
    op.exclude = vec![
        "dir1".into(),
        "!dir1/f.txt".into(),
        "dir2".into(),
        "dir3".into(),
    ];
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(paths(&m), ["5", "5/dir1", "5/dir1/f.txt"]);
    let mut op = copy(&["."], "/");
    op.exclude = vec!["[".into()];
    assert!(matches!(
        run(&op, ctx.path(), None),
        Err(FileOpError::Pattern(_))
    ));
}

/// `COPY . /` and `COPY --link . /`: the root is where the copy lands, never an entry of the
/// layer (BuildKit's differ does not report it; `--link` used to fail looking it up).
#[test]
fn the_context_into_the_root_leaves_the_root_out_of_the_layer() {
    let ctx = tempfile::tempdir().unwrap();
    let lower = tempfile::tempdir().unwrap();
    write(ctx.path(), "a.txt", "a", 0o644);
    write(ctx.path(), "d/b", "b", 0o600);
    for link in [false, true] {
        let mut op = copy(&["."], "/");
        op.link = link;
        let m = run(&op, ctx.path(), Some(lower.path())).unwrap();
        assert_eq!(paths(&m), ["a.txt", "d", "d/b"], "--link={link}");
    }
}

#[test]
fn link_ignores_the_parent_and_is_dropped_by_chmod() {
    let ctx = tempfile::tempdir().unwrap();
    let lower = tempfile::tempdir().unwrap();
    write(ctx.path(), "f", "x", 0o644);
    dir(lower.path(), "usr/lib", 0o700);
    link(lower.path(), "lib", "usr/lib");
    dir(lower.path(), "existing", 0o700);
    let mut op = copy(&["f"], "/lib/");
    op.link = true;
    let m = run(&op, ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(
        paths(&m),
        ["lib", "lib/f"],
        "no symlink lookup under --link"
    );
    assert_eq!(m["lib"].mode, 0o755);
    let mut op = copy(&["f"], "/existing");
    op.link = true;
    let m = run(&op, ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(
        paths(&m),
        ["existing"],
        "the existing directory is not seen"
    );
    op.chmod = Some(Arc::new(OctalMode(0o600)));
    assert!(!op.effective_link());
    let m = run(&op, ctx.path(), Some(lower.path())).unwrap();
    assert_eq!(paths(&m), ["existing", "existing/f"]);
}

#[test]
fn mtimes_come_from_the_source_and_created_things_from_created_mtime() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "d/f", "x", 0o644);
    set_mtime(&ctx.path().join("d/f"), 1_234_567);
    set_mtime(&ctx.path().join("d"), 7_654_321);
    let mut op = copy(&["d"], "/a/b/");
    op.created_mtime = 42;
    let m = run(&op, ctx.path(), None).unwrap();
    assert_eq!(m["a/b/f"].mtime, 1_234_567);
    assert_eq!(
        m["a/b"].mtime, 7_654_321,
        "the copied directory's own mtime"
    );
    assert_eq!(m["a"].mtime, 42);
    // Same inputs, same bytes, without SOURCE_DATE_EPOCH.
    let root =
        kiln_fileop::SourceRoot::context(ctx.path(), &kiln_context::IgnoreRules::empty()).unwrap();
    let (_, one) = run_with(&op, Some(&root), None, None).unwrap();
    let (_, two) = run_with(&op, Some(&root), None, None).unwrap();
    assert_eq!(one.out, two.out);
    assert_eq!(one.digests.diff_id, two.digests.diff_id);
}

#[test]
fn hard_links_within_a_source_stay_links() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "d/a", "shared", 0o644);
    std::fs::hard_link(ctx.path().join("d/a"), ctx.path().join("d/b")).unwrap();
    let m = run(&copy(&["d"], "/o/"), ctx.path(), None).unwrap();
    assert_eq!((m["o/a"].kind, m["o/a"].data.as_str()), ('f', "shared"));
    assert_eq!((m["o/b"].kind, m["o/b"].link.as_str()), ('h', "o/a"));
}

#[test]
fn heredocs_are_0644_files_named_after_the_heredoc() {
    // dockerfile_heredoc_test.go testCopyHeredoc.
    let mut op = copy(&[], "/dest/");
    op.sources = vec![
        Source::Heredoc {
            name: "EOF".into(),
            data: b"hello\n".to_vec(),
        },
        Source::Heredoc {
            name: "two".into(),
            data: b"2".to_vec(),
        },
    ];
    let (m, _) = run_with(&op, None, None, None).unwrap();
    assert_eq!(paths(&m), ["dest", "dest/EOF", "dest/two"]);
    assert_eq!(
        (m["dest/EOF"].mode, m["dest/EOF"].data.as_str()),
        (0o644, "hello\n")
    );
    let mut op = copy(&[], "/named");
    op.sources = vec![Source::Heredoc {
        name: "EOF".into(),
        data: b"x".to_vec(),
    }];
    op.chmod = Some(Arc::new(OctalMode(0o755)));
    let (m, _) = run_with(&op, None, None, None).unwrap();
    assert_eq!((m["named"].mode, m["named"].uid), (0o755, 0));
}
