//! Base images made locally (there is no registry to pull from): a Debian bookworm root
//! filesystem from `debootstrap`, cached for the day, and a build context that turns it into
//! a stand-in for the official `rust:1-bookworm` image with the host's own toolchain (Rust
//! cannot be downloaded here, and Debian's rustc is too old for kiln).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run;

/// Where tests keep what is slow to make and stays the same for a day (the debootstrap
/// root filesystem): `KILN_TEST_CACHE`, else `/var/tmp/kiln-test-cache` (kept across
/// reboots, unlike `/tmp`).
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/var/tmp/kiln-test-cache"), PathBuf::from);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create `{}`: {e}", dir.display()));
    dir
}

/// Today's date as `YYYYMMDD` (UTC), the key of the day's cache entries.
fn today() -> String {
    run(Command::new("date").args(["-u", "+%Y%m%d"]))
        .trim()
        .to_owned()
}

/// A Debian bookworm root filesystem (`debootstrap --variant=minbase`, Debian's mirror) as a
/// tarball with numeric owners, made at most once a day: `CACHE/debian-bookworm-minbase-DATE.tar`
/// (older days' tarballs are removed). Needs root and debootstrap; 20-60 s when not cached.
pub fn debian_rootfs_tar() -> PathBuf {
    let cache = cache_dir();
    let name = format!("debian-bookworm-minbase-{}.tar", today());
    let tar = cache.join(&name);
    if tar.is_file() {
        return tar;
    }
    let work = cache.join(format!("debootstrap-{}", std::process::id()));
    let rootfs = work.join("rootfs");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&rootfs)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("cannot run debootstrap");
    // debootstrap mounts /proc and /sys in the target and may leave them on failure: never
    // remove through a mount.
    for point in ["proc", "sys", "dev/pts"] {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(rootfs.join(point))
            .output();
    }
    assert!(
        out.status.success(),
        "debootstrap failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = work.join(&name);
    run(Command::new("tar")
        .args(["--numeric-owner", "--sort=name", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&partial)
        .arg("."));
    // Atomic for concurrent test processes: each makes its own, the last rename wins.
    fs::rename(&partial, &tar).unwrap();
    run(Command::new("rm")
        .arg("-rf")
        .arg("--one-file-system")
        .arg(&work));
    for entry in fs::read_dir(&cache).unwrap().flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with("debian-bookworm-minbase-") && n != name {
            let _ = fs::remove_file(entry.path());
        }
    }
    tar
}

/// The Dockerfile of the `rust:1-bookworm` stand-in: `debian:bookworm-slim` plus gcc and
/// libc6-dev (for crates with C parts) and ca-certificates (for crates.io), the host's own
/// extra CA certificates (a TLS-inspecting egress proxy's, as a company's mirror of the
/// official image would carry), and the context's `toolchain/` where the official image
/// has it (`RUSTUP_HOME=/usr/local/rustup`, `CARGO_HOME=/usr/local/cargo`,
/// `/usr/local/cargo/bin` first on `PATH`).
pub const RUST_STANDIN_DOCKERFILE: &str = r"FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY toolchain /usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin \
 && for t in cargo rustc rustdoc; do ln -s ../../rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/$t /usr/local/cargo/bin/$t; done \
 && cargo --version && rustc --version
";

/// A build context under `dir` for the `rust:1-bookworm` stand-in ([`RUST_STANDIN_DOCKERFILE`]):
/// the Dockerfile and `toolchain/`, the host's `rustc --print sysroot` cut to what builds
/// for the host (cargo, rustc, rustdoc, the compiler's libraries, the host target's
/// standard library and linker; no docs, no sources), hard-linked where it can be, and
/// `ca-certificates/`, the host's `/usr/local/share/ca-certificates/*.crt`.
pub fn rust_standin_context(dir: &Path) -> PathBuf {
    let sysroot = PathBuf::from(
        run(Command::new("rustc").args(["--print", "sysroot"]))
            .trim()
            .to_owned(),
    );
    let host = run(Command::new("rustc").args(["--print", "host-tuple"]))
        .trim()
        .to_owned();
    let ctx = dir.join("rust-standin");
    let tc = ctx.join("toolchain");
    let target = format!("lib/rustlib/{host}");
    for d in ["bin", &target] {
        fs::create_dir_all(tc.join(d)).unwrap();
    }
    fs::write(ctx.join("Dockerfile"), RUST_STANDIN_DOCKERFILE).unwrap();
    let cas = ctx.join("ca-certificates");
    fs::create_dir_all(&cas).unwrap();
    for entry in fs::read_dir("/usr/local/share/ca-certificates")
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().ends_with(".crt") {
            fs::copy(entry.path(), cas.join(entry.file_name())).unwrap();
        }
    }
    let mut parts: Vec<PathBuf> = ["bin/cargo", "bin/rustc", "bin/rustdoc"]
        .iter()
        .map(PathBuf::from)
        .collect();
    parts.extend(
        fs::read_dir(sysroot.join("lib"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".so"))
            .map(|e| PathBuf::from("lib").join(e.file_name())),
    );
    parts.push(PathBuf::from(&target).join("lib"));
    parts.push(PathBuf::from(&target).join("bin"));
    for part in parts {
        let from = sysroot.join(&part);
        let to = tc.join(&part);
        // Hard links when on the same filesystem (fast), copies otherwise.
        let linked = Command::new("cp")
            .arg("-al")
            .arg(&from)
            .arg(&to)
            .output()
            .is_ok_and(|o| o.status.success());
        if !linked {
            run(Command::new("cp").arg("-a").arg(&from).arg(&to));
        }
    }
    ctx
}
