//! `kiln outline` driven through the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(workspace())
        .env(
            "KILN_ROOT",
            std::env::temp_dir().join("kiln-outline-test-root"),
        )
        .output()
        .expect("run kiln")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn outlines_the_shipped_example() {
    let out = kiln(&["outline", "examples/busybox-app"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("target: runtime"), "{stdout}");
    assert!(
        stdout.contains("build order: builder -> runtime"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stage 1 test (line 13): skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("VERSION=\"1.0\" (default)"), "{stdout}");
    assert!(
        stdout.contains("ignore file: examples/busybox-app/.dockerignore"),
        "{stdout}"
    );
}

#[test]
fn json_with_target_and_build_args() {
    let out = kiln(&[
        "--root",
        "/tmp/kiln-unused",
        "outline",
        "examples/busybox-app",
        "--target",
        "TEST",
        "--build-arg",
        "VERSION=2",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "test");
    assert_eq!(v["build_order"], serde_json::json!(["builder", "test"]));
    let builder = &v["stages"][0];
    assert_eq!(
        builder["args"][0],
        serde_json::json!({"name": "VERSION", "value": "2", "origin": "build-arg"})
    );
    assert_eq!(v["stages"][2]["needed"], false);
    assert_eq!(v["stages"][1]["depends_on"], serde_json::json!(["builder"]));
}

#[test]
fn errors_show_file_line_column_and_caret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM a\nRUN --mount=type=cahce,target=/x true\n",
    )
    .unwrap();
    let out = kiln(&["outline", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: unsupported mount type \"cahce\" (did you mean cache?)"),
        "{stderr}"
    );
    assert!(stderr.contains("Dockerfile:2:5"), "{stderr}");
    assert!(
        stderr.contains("2 | RUN --mount=type=cahce,target=/x true"),
        "{stderr}"
    );
    let caret = format!(
        "  |     {}\n",
        "^".repeat("--mount=type=cahce,target=/x".len())
    );
    assert!(stderr.contains(&caret), "{stderr}");
    assert!(stderr.contains("hint: mount types are"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_target_names_the_flag() {
    let out = kiln(&["outline", "examples/busybox-app", "--target", "bulider"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`--target`: target stage \"bulider\" could not be found"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean `builder`?"), "{stderr}");
}

#[test]
fn missing_dockerfile_is_a_clear_error() {
    let out = kiln(&["outline", "/nonexistent-kiln-context"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read the Dockerfile `/nonexistent-kiln-context/Dockerfile`"),
        "{stderr}"
    );
}

#[test]
fn debug_dump_matches_buildkit_format() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("Dockerfile");
    std::fs::write(&f, "FROM a\nCOPY --chown=1 x /y\nCMD [\"a\", \"b\"]\n").unwrap();
    let out = kiln(&["debug-dump", f.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout),
        "(from \"a\")\n(copy [\"--chown=1\"] \"x\" \"/y\")\n(cmd \"a\" \"b\")\n"
    );
}

#[test]
fn each_dependency_is_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM busybox AS a\nFROM busybox AS b\nFROM busybox\n\
         COPY --from=a / /x\nCOPY --from=b / /y\nCOPY --from=a / /z\n",
    )
    .unwrap();
    let out = kiln(&["outline", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stages"][2]["depends_on"], serde_json::json!(["a", "b"]));
}
