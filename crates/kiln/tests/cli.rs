//! The command line's own manners, whatever the command: a closed stdout ends kiln quietly.

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
