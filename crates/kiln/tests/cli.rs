//! The command line's own manners, whatever the command: a closed stdout ends kiln quietly,
//! and warnings read the same everywhere (a snippet on stderr, an object in JSON documents).

use std::process::{Command, Stdio};

/// `kiln images | head -0`: whoever reads stdout has gone before kiln writes. kiln ends with
/// status 0 and says nothing (it panicked with `failed printing to stdout`), as ripgrep does.
#[test]
fn a_closed_stdout_ends_kiln_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["images"][..], &["images", "--format", "json"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(tmp.path().join("store"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// A build check's warning (BuildKit's rule, message, URL and line, with kiln's hint) and a
/// planner warning (kiln's rule, with a hint), both as snippets on stderr and as objects in
/// `outline --format json`.
#[test]
fn warnings_are_snippets_on_stderr_and_objects_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("Dockerfile"),
        "FROM busybox AS builder\nRUN echo a \\\n\n  b\nFROM busybox\nCOPY --from=buidler /x /y\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(tmp.path().join("store"))
        .args(["outline", "--format", "json"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let file = tmp.path().join("Dockerfile").display().to_string();
    assert!(
        stderr.contains(&format!(
            "warning: `buidler` is not a stage of this Dockerfile, so it is used as an image\n --> {file}:6:6\n  |\n6 | COPY --from=buidler /x /y\n  |      ^^^^^^^^^^^^^^\n  = hint: did you mean the stage `builder`?\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: Empty continuation line\n --> {file}:4:1\n"
        )),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["warnings"],
        serde_json::json!([
            {
                "rule": "NoEmptyContinuation",
                "severity": "warning",
                "file": file,
                "line": 4,
                "column": 1,
                "end_line": 4,
                "end_column": 4,
                "message": "Empty continuation line",
                "hint": "empty continuation lines will become errors in a future release: remove the blank line",
                "url": "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
            },
            {
                "rule": "StageNameTypo",
                "severity": "warning",
                "file": file,
                "line": 6,
                "column": 6,
                "end_line": 6,
                "end_column": 20,
                "message": "`buidler` is not a stage of this Dockerfile, so it is used as an image",
                "hint": "did you mean the stage `builder`?",
                "url": null,
            },
        ])
    );
}
