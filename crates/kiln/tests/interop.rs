//! Interoperability with the real tools: skopeo and umoci read the store; Docker's `docker
//! save` output loads and saves back with the same layers; what kiln saves, Docker loads and
//! runs. Runs as root in CI (`CI=true`: a missing tool fails the test).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln_test_support::{DOCKER, Dockerd, have, missing, run};

fn kiln(root: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A root filesystem tarball with the static busybox and `/bin/sh`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let tar = dir.join("rootfs.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg("."));
    tar
}

#[test]
fn skopeo_and_umoci_read_the_store() {
    for tool in ["skopeo", "umoci", "/bin/busybox"] {
        if !have(tool) {
            missing(&format!(
                "`{tool}` is not installed (Debian: skopeo, umoci, busybox-static)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let rootfs = busybox_rootfs(tmp.path());
    kiln(
        &root,
        &["import", rootfs.to_str().unwrap(), "local/busybox"],
    );
    let r = root.to_str().unwrap();
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{r}:docker.io/local/busybox:latest")));
    assert!(out.contains("\"Layers\""), "{out}");
    let out = run(Command::new("umoci").args(["ls", "--layout", r]));
    assert!(out.contains("docker.io/local/busybox:latest"), "{out}");
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{r}:docker.io/local/busybox:latest"),
        ])
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

/// `(config digest, [layer digests])` of a docker-archive, from its `manifest.json`.
fn archive_digests(tar: &Path, scratch: &Path) -> (String, Vec<String>) {
    fs::create_dir_all(scratch).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(scratch));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(scratch.join("manifest.json")).unwrap()).unwrap();
    let sha = |rel: &str| {
        run(Command::new("sha256sum").arg(scratch.join(rel)))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let config = sha(manifest[0]["Config"].as_str().unwrap());
    let layers = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| sha(l.as_str().unwrap()))
        .collect();
    (config, layers)
}

#[test]
fn docker_round_trips_through_kiln() {
    if !rustix::process::geteuid().is_root() {
        missing("root is needed to run a private dockerd");
        return;
    }
    for tool in ["dockerd", DOCKER, "/bin/busybox"] {
        if !have(tool) {
            missing(&format!(
                "`{tool}` is not installed (Debian: docker.io, busybox-static)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let rootfs = busybox_rootfs(tmp.path());
    let dockerd = Dockerd::start(&tmp.path().join("docker"));

    // Docker -> kiln -> Docker format: same config (image id) and same layer digests.
    run(dockerd
        .docker()
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&rootfs)
        .arg("local/dbb:1"));
    let saved = tmp.path().join("docker-saved.tar");
    run(dockerd
        .docker()
        .args(["save", "-o"])
        .arg(&saved)
        .arg("local/dbb:1"));
    kiln(&root, &["load", "-i", saved.to_str().unwrap()]);
    let back = tmp.path().join("kiln-saved.tar");
    kiln(
        &root,
        &["save", "-o", back.to_str().unwrap(), "local/dbb:1"],
    );
    assert_eq!(
        archive_digests(&saved, &tmp.path().join("x1")),
        archive_digests(&back, &tmp.path().join("x2"))
    );

    // Issue 10, item 22: two images of one layer under different configs; Docker 20.10 saves
    // the layer once and links the second image's `layer.tar` to it.
    run(dockerd
        .docker()
        .args([
            "import",
            "--change",
            "CMD [\"/bin/busybox\", \"echo\", \"two\"]",
        ])
        .arg(&rootfs)
        .arg("local/dbb:2"));
    let both = tmp.path().join("docker-saved-both.tar");
    run(dockerd
        .docker()
        .args(["save", "-o"])
        .arg(&both)
        .args(["local/dbb:1", "local/dbb:2"]));
    let listing = run(Command::new("tar").arg("-tvf").arg(&both));
    assert!(listing.contains("/layer.tar -> ../"), "{listing}");
    let fresh = tmp.path().join("store-both");
    kiln(&fresh, &["load", "-i", both.to_str().unwrap()]);
    let out = kiln(&fresh, &["run", "local/dbb:2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two\n");

    // kiln -> Docker, in both formats, and it runs.
    kiln(
        &root,
        &[
            "import",
            "--cmd",
            "[\"sh\"]",
            rootfs.to_str().unwrap(),
            "local/kbb:docker",
        ],
    );
    kiln(&root, &["tag", "local/kbb:docker", "local/kbb:oci"]);
    for (tag, format) in [("docker", "docker"), ("oci", "oci")] {
        let file = tmp.path().join(format!("kiln-{format}.tar"));
        kiln(
            &root,
            &[
                "save",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
                &format!("local/kbb:{tag}"),
            ],
        );
        run(dockerd.docker().args(["load", "-i"]).arg(&file));
        let out = run(dockerd.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            &format!("local/kbb:{tag}"),
            "/bin/busybox",
            "echo",
            "hello from kiln",
        ]));
        assert_eq!(out.trim(), "hello from kiln", "format {format}");
    }
}

/// A tar header owned by root, dated the epoch.
fn header() -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A tar of `files` (`(path, content)`), as a layer.
fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// An image of [`docker_save_by_hand`]: its tag, a `sh -c` Cmd and its layers as
/// `(path in the archive, content)`.
type HandImage<'a> = (&'a str, &'a str, &'a [(&'a str, &'a [u8])]);

/// A `docker save` tarball of `images` in which the paths of `links` (`(path, target)`) are
/// symlinks (as Docker writes a layer two images share: once, the second name a link) and
/// every other layer path is a file with its content.
fn docker_save_by_hand(out: &Path, images: &[HandImage<'_>], links: &[(&str, &str)]) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let add = |b: &mut tar::Builder<fs::File>, path: &str, data: &[u8]| {
        let mut h = header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    let mut written = std::collections::BTreeSet::new();
    let mut manifest = Vec::new();
    for (tag, cmd, layers) in images {
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh", "-c", cmd]},
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| sha256(l.1)).collect::<Vec<_>>(),
            },
            "history": layers.iter().map(|l| serde_json::json!({"created_by": l.0})).collect::<Vec<_>>(),
        });
        let config = serde_json::to_vec(&config).unwrap();
        let name = format!("{}.json", &sha256(&config)["sha256:".len()..]);
        add(&mut b, &name, &config);
        for (path, data) in *layers {
            if !links.iter().any(|l| l.0 == *path) && written.insert(*path) {
                add(&mut b, path, data);
            }
        }
        let paths: Vec<&str> = layers.iter().map(|l| l.0).collect();
        manifest.push(serde_json::json!({"Config": name, "RepoTags": [tag], "Layers": paths}));
    }
    for (path, target) in links {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, path, target).unwrap();
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.finish().unwrap();
}

/// Issue 10, item 22: `docker save A B` writes a layer the two share once and links the
/// second image's `layer.tar` to the first (`../<id>/layer.tar`); kiln loads both. A link
/// that climbs out of the archive, is absolute or loops is refused and the store is left as
/// it was.
#[test]
fn r10_22_loads_a_docker_save_whose_shared_layer_is_a_symlink() {
    if kiln_test_support::require(true, &["/bin/busybox", "tar"]).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let busybox = fs::read(busybox_rootfs(tmp.path())).unwrap();
    let (a, b) = (layer_tar(&[("a", b"A\n")]), layer_tar(&[("b", b"B\n")]));
    let images: [HandImage<'_>; 2] = [
        (
            "a:1",
            "/bin/busybox cat /a",
            &[("aaa/layer.tar", &busybox), ("a2/layer.tar", &a)],
        ),
        (
            "b:1",
            "/bin/busybox cat /b",
            &[("bbb/layer.tar", &busybox), ("b2/layer.tar", &b)],
        ),
    ];
    let shared = tmp.path().join("shared.tar");
    docker_save_by_hand(&shared, &images, &[("bbb/layer.tar", "../aaa/layer.tar")]);
    let out =
        String::from_utf8_lossy(&kiln(&root, &["load", "-i", shared.to_str().unwrap()]).stdout)
            .into_owned();
    assert_eq!(out, "Loaded image: a:1\nLoaded image: b:1\n");
    for (image, said) in [("a:1", "A\n"), ("b:1", "B\n")] {
        let out = kiln(&root, &["run", image]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), said);
    }
    let inspect = |image: &str| -> serde_json::Value {
        serde_json::from_slice(&kiln(&root, &["inspect", image]).stdout).unwrap()
    };
    let (ia, ib) = (inspect("a:1"), inspect("b:1"));
    assert_eq!(ia[0]["RootFS"]["Layers"][0], ib[0]["RootFS"]["Layers"][0]);
    assert_ne!(ia[0]["Id"], ib[0]["Id"]);

    // Links that leave the archive or loop: one error naming the layer, and nothing loaded.
    for (case, links, says) in [
        (
            "climbs",
            &[("bbb/layer.tar", "../../aaa/layer.tar")][..],
            "leads outside the archive",
        ),
        (
            "absolute",
            &[("bbb/layer.tar", "/aaa/layer.tar")][..],
            "leads outside the archive",
        ),
        (
            "loop",
            &[
                ("bbb/layer.tar", "../ccc/layer.tar"),
                ("ccc/layer.tar", "../bbb/layer.tar"),
            ][..],
            "symlink loop",
        ),
    ] {
        let file = tmp.path().join(format!("{case}.tar"));
        docker_save_by_hand(&file, &images, links);
        let fresh = tmp.path().join(format!("store-{case}"));
        let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&fresh)
            .args(["load", "-i", file.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains("layer `bbb/layer.tar`") && stderr.contains(says),
            "{case}: {stderr}"
        );
        assert!(stderr.contains("hint:"), "{case}: {stderr}");
        let listed = kiln(&fresh, &["images", "-q"]);
        assert_eq!(String::from_utf8_lossy(&listed.stdout), "", "{case}");
    }
}
