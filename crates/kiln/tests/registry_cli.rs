//! `kiln push`, `kiln pull`, `kiln login` and `kiln logout` against Debian's
//! `docker-registry` on loopback, with skopeo on the other side: what kiln pushes skopeo
//! reads, what skopeo pushes (an OCI index of two platforms, a Docker schema 2 image) kiln
//! pulls; basic auth, TLS with a test CA (and client certificates) through the config,
//! mirrors, and a registry killed in the middle of a push.

use std::fs;
use std::path::Path;
use std::process::Command;

use kiln_test_support::{KilnEnv, Registry, RegistrySetup, ok, run, text};
use sha2::Digest as _;

fn env() -> Option<KilnEnv> {
    KilnEnv::new(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &["docker-registry", "skopeo", "gzip"],
    )
}

fn registry(env: &KilnEnv, name: &str, setup: &RegistrySetup) -> Registry {
    Registry::start(&env.dir.join(name), setup).expect("checked by env()")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// The digest skopeo sees for `reference` (of its raw manifest).
fn skopeo_digest(reference: &str) -> String {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    sha256(&raw.stdout)
}

#[test]
fn kiln_pushes_what_skopeo_pulls_and_pulls_it_back() {
    let Some(env) = env() else { return };
    let reg = registry(&env, "reg", &RegistrySetup::default());
    let target = format!("{}/kiln/busybox:1", reg.addr);
    let out = env.kiln(&["push", "busybox:latest", &target]);
    let digest = ok(&out).trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(
        text(&out.stderr).contains("2 blobs uploaded"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(skopeo_digest(&target), digest);
    let layout = env.dir.join("skopeo-copy");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:t", layout.display())));
    // Again: nothing to upload, the same manifest.
    let again = env.kiln(&["push", "busybox:latest", &target]);
    assert_eq!(ok(&again).trim(), digest);
    assert!(
        text(&again.stderr).contains("0 blobs uploaded"),
        "{}",
        text(&again.stderr)
    );
    // To another repository of the same registry: mounted, not uploaded.
    let other = format!("{}/other/busybox:2", reg.addr);
    let mounted = env.kiln(&["push", "busybox:latest", &other]);
    assert_eq!(ok(&mounted).trim(), digest);
    assert!(
        text(&mounted.stderr).contains("2 mounted"),
        "{}",
        text(&mounted.stderr)
    );

    // Into an empty store, and once more with every blob present.
    let other_store = env.dir.join("store2");
    let pull = |r: &str| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&other_store)
            .args(["pull", r])
            .output()
            .unwrap()
    };
    let first = pull(&target);
    assert_eq!(ok(&first).trim(), digest);
    assert!(
        text(&first.stderr).contains("2 blobs fetched"),
        "{}",
        text(&first.stderr)
    );
    let second = pull(&target);
    assert_eq!(ok(&second).trim(), digest);
    assert!(
        text(&second.stderr).contains("0 blobs fetched"),
        "{}",
        text(&second.stderr)
    );
    // The pull stored blobs only (as skopeo does); the layer is unpacked by its first use.
    let snapshots = other_store.join("snapshots");
    let unpacked = || {
        std::fs::read_dir(&snapshots).map_or(0, |d| {
            d.filter(|e| e.as_ref().unwrap().path().is_dir()).count()
        })
    };
    assert_eq!(unpacked(), 0, "pull unpacked a layer");
    let kiln = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&other_store)
            .args(args)
            .output()
            .unwrap()
    };
    let run = kiln(&["run", "--rm", &target, "echo", "unpacked"]);
    assert_eq!(ok(&run).trim(), "unpacked");
    assert_eq!(unpacked(), 1);
    let fsck = kiln(&["fsck"]);
    assert!(ok(&fsck).contains("0 problems"), "{}", text(&fsck.stdout));
}

/// Writes `files` (`(path, content)`) as a gzip tar layer into the layout's blobs; returns
/// the (layer digest, size, `diff_id`).
fn layer(dir: &Path, layout: &Path, name: &str, files: &[(&str, &str)]) -> (String, u64, String) {
    let root = dir.join(name);
    for (p, c) in files {
        fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        fs::write(root.join(p), c).unwrap();
    }
    let tar = dir.join(format!("{name}.tar"));
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let diff_id = sha256(&fs::read(&tar).unwrap());
    run(Command::new("gzip").args(["-n", "-f"]).arg(&tar));
    let gz = fs::read(dir.join(format!("{name}.tar.gz"))).unwrap();
    (blob(layout, &gz), gz.len() as u64, diff_id)
}

fn blob(layout: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&d[7..]), bytes).unwrap();
    d
}

/// An OCI layout with an index of two platforms (`multi`) and the amd64 image alone
/// (`amd`); returns the layout.
fn two_platform_layout(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("layout");
    fs::create_dir_all(&layout).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (l, size, diff_id) = layer(dir, &layout, arch, &[("etc/arch", arch)]);
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let c = blob(&layout, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{l}","size":{size}}}]}}"#,
            config.len()
        );
        let m = blob(&layout, manifest.as_bytes());
        manifests.push((arch, m, manifest.len()));
    }
    let entries: Vec<String> = manifests
        .iter()
        .map(|(arch, m, size)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    let i = blob(&layout, index.as_bytes());
    let (_, amd, amd_size) = &manifests[0];
    fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{i}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{amd}","size":{amd_size},"annotations":{{"org.opencontainers.image.ref.name":"amd"}}}}]}}"#,
            index.len()
        ),
    )
    .unwrap();
    layout
}

#[test]
fn kiln_pulls_what_skopeo_pushed_an_index_and_a_schema_2_image() {
    let Some(env) = env() else { return };
    let reg = registry(&env, "reg", &RegistrySetup::default());
    let layout = two_platform_layout(&env.dir);
    let multi = format!("{}/skopeo/multi:1", reg.addr);
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{multi}")));
    let v2s2 = format!("{}/skopeo/v2s2:1", reg.addr);
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:amd", layout.display()))
        .arg(format!("docker://{v2s2}")));

    // The index resolves to the platform asked for; the digest printed is the index's.
    let index_digest = skopeo_digest(&multi);
    let out = env.kiln(&["pull", "--platform", "linux/arm64", &multi]);
    assert_eq!(ok(&out).trim(), index_digest);
    let inspect = ok(&env.kiln(&["inspect", &multi]));
    assert!(inspect.contains("\"Architecture\": \"arm64\""), "{inspect}");
    let out = env.kiln(&["pull", "--platform", "linux/amd64", &multi]);
    assert_eq!(ok(&out).trim(), index_digest);
    let inspect = ok(&env.kiln(&["inspect", &multi]));
    assert!(inspect.contains("\"Architecture\": \"amd64\""), "{inspect}");
    // A platform the index lacks: named, with those it has.
    let out = env.kiln(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    // By digest, and by tag and digest.
    let by_digest = format!("{}/skopeo/multi@{index_digest}", reg.addr);
    assert_eq!(ok(&env.kiln(&["pull", &by_digest])).trim(), index_digest);
    let both = format!("{multi}@{index_digest}");
    assert_eq!(ok(&env.kiln(&["pull", &both])).trim(), index_digest);

    // Docker v2 schema 2: kept as the registry has it (same digest), readable.
    let out = env.kiln(&["pull", &v2s2]);
    assert_eq!(ok(&out).trim(), skopeo_digest(&v2s2));
    let inspect = ok(&env.kiln(&["inspect", &v2s2]));
    assert!(
        inspect.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{inspect}"
    );
    assert!(ok(&env.kiln(&["fsck"])).contains("0 problems"));
}

#[test]
fn wrong_credentials_give_a_clear_401_without_the_secret() {
    let Some(env) = env() else { return };
    if kiln_test_support::require(false, &["htpasswd"]).is_none() {
        return;
    }
    let password = "s3cret-PASS-4711";
    let wrong = "wrong-PW-0815";
    let reg = registry(
        &env,
        "reg",
        &RegistrySetup {
            basic_auth: Some(("kiln".into(), password.into())),
            ..RegistrySetup::default()
        },
    );
    let docker = env.dir.join("docker-config");
    fs::create_dir_all(&docker).unwrap();
    // base64("kiln:wrong-PW-0815")
    let auth = "a2lsbjp3cm9uZy1QVy0wODE1";
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let docker_env = [("DOCKER_CONFIG", docker.to_str().unwrap())];
    let target = format!("{}/private/busybox:1", reg.addr);
    let out = env.kiln_with(&["push", "busybox:latest", &target], &docker_env, None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains(&format!("kiln login {}", reg.addr)), "{err}");
    for secret in [wrong, auth, password] {
        assert!(!err.contains(secret), "{err}");
    }

    // kiln login checks before it stores: the wrong password is refused, the right one kept.
    let out = env.kiln_with(
        &["login", "-u", "kiln", "--password-stdin", &reg.addr],
        &docker_env,
        Some(format!("{wrong}\n").as_bytes()),
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(wrong));
    let out = env.kiln_with(
        &["login", "-u", "kiln", "--password-stdin", &reg.addr],
        &docker_env,
        Some(format!("{password}\n").as_bytes()),
    );
    ok(&out);
    let config = fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(
        !config.contains(auth),
        "the old entry is replaced: {config}"
    );
    let out = env.kiln_with(&["push", "busybox:latest", &target], &docker_env, None);
    let digest = ok(&out).trim().to_owned();
    let out = env.kiln_with(&["pull", &target], &docker_env, None);
    assert_eq!(ok(&out).trim(), digest);
    // The store holds no credential.
    let grep = Command::new("grep")
        .args(["-rl", password])
        .arg(&env.store)
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "{}", text(&grep.stdout));
    ok(&env.kiln_with(&["logout", &reg.addr], &docker_env, None));
    let out = env.kiln_with(&["pull", &target], &docker_env, None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
}

#[test]
fn tls_with_a_private_ca_and_client_certificates_through_the_config() {
    let Some(env) = env() else { return };
    if kiln_test_support::require(false, &["openssl"]).is_none() {
        return;
    }
    let reg = registry(
        &env,
        "reg",
        &RegistrySetup {
            tls: true,
            mtls: true,
            ..RegistrySetup::default()
        },
    );
    let ca = reg.ca.clone().unwrap();
    let target = format!("{}/tls/busybox:1", reg.addr);
    // Without the CA: the certificate is not trusted, and the hint says where it goes.
    let out = env.kiln(&["push", "busybox:latest", &target]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("certs.d") && err.contains("ca = "), "{err}");
    let with_ca = env.dir.join("ca-only.toml");
    fs::write(
        &with_ca,
        format!(
            "[registry.\"{}\"]\nca = [\"{}\"]\n",
            reg.addr,
            ca.ca.display()
        ),
    )
    .unwrap();
    // The CA alone: the registry wants a client certificate.
    let out = env.kiln(&[
        "--config",
        with_ca.to_str().unwrap(),
        "push",
        "busybox:latest",
        &target,
    ]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let config = env.dir.join("kiln.toml");
    fs::write(
        &config,
        format!(
            "[registry.\"{}\"]\nca = [\"{}\"]\n[[registry.\"{}\".keypair]]\nkey = \"{}\"\ncert = \"{}\"\n",
            reg.addr,
            ca.ca.display(),
            reg.addr,
            ca.client_key.display(),
            ca.client_cert.display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let digest = ok(&env.kiln(&["--config", c, "push", "busybox:latest", &target]))
        .trim()
        .to_owned();
    assert_eq!(
        ok(&env.kiln(&["--config", c, "pull", &target])).trim(),
        digest
    );
    // A config with a key kiln does not know: the key and its line.
    let bad = env.dir.join("bad.toml");
    fs::write(
        &bad,
        "[registry.\"x\"]\nmirrors = []\ninsecure-skip = true\n",
    )
    .unwrap();
    let out = env.kiln(&["--config", bad.to_str().unwrap(), "pull", &target]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("`insecure-skip`"),
        "{err}"
    );
}

#[test]
fn mirrors_are_tried_in_order_then_the_registry() {
    let Some(env) = env() else { return };
    let upstream = registry(&env, "upstream", &RegistrySetup::default());
    let mirror = registry(&env, "mirror", &RegistrySetup::default());
    let dead = format!("127.0.0.1:{}", kiln_test_support::free_port());
    // Only the mirror has `lib/a`; only the upstream has `lib/b`.
    ok(&env.kiln(&[
        "push",
        "busybox:latest",
        &format!("{}/lib/a:1", mirror.addr),
    ]));
    ok(&env.kiln(&["tag", "busybox:latest", "other:1"]));
    let b_digest = ok(&env.kiln(&[
        "push",
        "--compression",
        "zstd",
        "other:1",
        &format!("{}/lib/b:1", upstream.addr),
    ]))
    .trim()
    .to_owned();
    let config = env.dir.join("mirrors.toml");
    fs::write(
        &config,
        format!(
            "[registry.\"{}\"]\nmirrors = [\"{dead}\", \"{}\"]\n",
            upstream.addr, mirror.addr
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let fresh = env.dir.join("fresh");
    let pull = |r: &str| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&fresh)
            .args(["--config", c, "pull", r])
            .output()
            .unwrap()
    };
    let out = pull(&format!("{}/lib/a:1", upstream.addr));
    ok(&out);
    assert!(
        text(&out.stderr).contains(&format!("from {}", mirror.addr)),
        "{}",
        text(&out.stderr)
    );
    let out = pull(&format!("{}/lib/b:1", upstream.addr));
    assert_eq!(ok(&out).trim(), b_digest, "a zstd image pulls too");
    assert!(
        text(&out.stderr).contains(&format!("from {}", upstream.addr)),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_registry_killed_mid_push_gives_a_clear_error_and_the_next_push_succeeds() {
    let Some(env) = env() else { return };
    let mut reg = registry(&env, "reg", &RegistrySetup::default());
    // 48 MiB that do not compress: the upload takes a while.
    let rootfs = env.dir.join("big");
    fs::create_dir_all(&rootfs).unwrap();
    run(Command::new("head")
        .args(["-c", "50331648", "/dev/urandom"])
        .stdout(fs::File::create(rootfs.join("noise")).unwrap()));
    let tar = env.dir.join("big.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    ok(&env.kiln(&["import", tar.to_str().unwrap(), "big:1"]));
    // Compressed once, before the registry is involved, so the push below is all upload.
    let target = format!("{}/big/image:1", reg.addr);
    let push = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(&env.store)
        .args(["push", "big:1", &target])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry once an upload has begun.
    let uploads = reg
        .storage
        .join("docker/registry/v2/repositories/big/image/_uploads");
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_mins(1) {
        if fs::read_dir(&uploads).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reg.kill();
    let out = push.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "the push finished before the kill: {err}"
    );
    assert!(err.contains(&reg.addr), "{err}");
    assert!(err.contains("hint:"), "{err}");
    reg.restart();
    let digest = ok(&env.kiln(&["push", "big:1", &target])).trim().to_owned();
    assert_eq!(skopeo_digest(&target), digest);
    assert!(ok(&env.kiln(&["fsck"])).contains("0 problems"));
}
