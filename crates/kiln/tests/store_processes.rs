//! Several kiln processes sharing one store: no tag is lost, and fsck finds it consistent.

use std::path::Path;
use std::process::{Command, Output};

fn kiln(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run kiln")
}

#[test]
fn concurrent_processes_keep_every_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    // A tiny rootfs: one file is enough for an image.
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), "hi\n").unwrap();
    let tar = tmp.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let out = kiln(&root, &["import", tar.to_str().unwrap(), "base:1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Eight processes tag at once, and two more import new images at the same time.
    let mut children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_kiln"))
                .arg("--root")
                .arg(&root)
                .args(["tag", "base:1", &format!("proc/t{i}:v")])
                .spawn()
                .unwrap()
        })
        .collect();
    children.extend((0..2).map(|i| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&root)
            .args(["import", tar.to_str().unwrap(), &format!("imported/i{i}")])
            .spawn()
            .unwrap()
    }));
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }

    let out = kiln(&root, &["images", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["Repository"].as_str().unwrap(),
                i["Tag"].as_str().unwrap()
            )
        })
        .collect();
    for i in 0..8 {
        assert!(
            names.contains(&format!("proc/t{i}:v")),
            "lost tag t{i}: {names:?}"
        );
    }
    for i in 0..2 {
        assert!(
            names.contains(&format!("imported/i{i}:latest")),
            "lost import i{i}: {names:?}"
        );
    }
    let out = kiln(&root, &["fsck"]);
    assert!(
        out.status.success(),
        "fsck: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
