//! Rootless kiln: the same builds run by an ordinary user (created here, with and without
//! subordinate ids, run through `setpriv`) give the same images as root's.
//!
//! - The example and every conformance case under `tests/conformance/`, built rootless and as
//!   root from the same base: the final filesystems (path, type, mode, uid, gid, size, sha256,
//!   link target) and configs match, and with `SOURCE_DATE_EPOCH` so do the image digests.
//! - Steps that write as `USER 1000`, delete files (whiteouts) and replace a directory (an
//!   opaque one) give the same image digest rootless and as root, with both snapshotters.
//! - A user without subordinate ids gets one warning and a working build of what needs no
//!   other id, and a clear error, saying how to add them, for a step that does.
//! - Every command works rootless, and writes nothing outside the user's store (and runtime
//!   directory).
//!
//! CI runs as root; these tests make their users themselves (`useradd`, `/etc/subuid`).

mod cases;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cases::{CONFIG_FIELDS, FsEntry, cases, config_subset, diff_fs, flags, read_tar};
use kiln_test_support::{busybox_rootfs_tar, require, run, text};

/// `useradd` and the edits of `/etc/subuid` take turns (they lock the files).
static USERS: Mutex<()> = Mutex::new(());

/// An ordinary user of the host, and a home for it under a test directory.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// Makes (or reuses) the user `name`, with subordinate ids or without any, and a fresh home
/// under `dir`.
fn user(name: &str, subids: bool, dir: &Path) -> User {
    let _turn = USERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let exists = Command::new("id")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        run(Command::new("useradd").args(["-M", "-s", "/bin/sh", name]));
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let old = fs::read_to_string(file).unwrap_or_default();
        let mut new: Vec<String> = old
            .lines()
            .filter(|l| !l.starts_with(&format!("{name}:")))
            .map(str::to_owned)
            .collect();
        if subids {
            // A range of its own, far above what useradd hands out.
            let start = 1_000_000 + 65536 * (u32::from(name.as_bytes()[name.len() - 1]) % 64);
            new.push(format!("{name}:{start}:65536"));
        }
        new.push(String::new());
        fs::write(file, new.join("\n")).unwrap();
    }
    let id = |flag: &str| -> u32 {
        text(
            &Command::new("id")
                .args([flag, name])
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .parse()
        .unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let home = dir.join(format!("home-{name}"));
    fs::create_dir_all(&home).unwrap();
    run(Command::new("chown").arg(format!("{uid}:{gid}")).arg(&home));
    User {
        name: name.to_owned(),
        uid,
        gid,
        home,
    }
}

impl User {
    /// kiln run as this user (`setpriv`), with only a plain environment: `HOME`, `PATH`,
    /// `XDG_RUNTIME_DIR`, `KILN_ROOT` unset so the store is the default one.
    fn kiln(&self, kiln: &Path, args: &[&str]) -> Output {
        let runtime = self.home.join("run");
        fs::create_dir_all(&runtime).unwrap();
        run(Command::new("chown")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(&runtime));
        Command::new("setpriv")
            .args(["--reuid", &self.uid.to_string()])
            .args(["--regid", &self.gid.to_string()])
            .args(["--init-groups", "--"])
            .arg(kiln)
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", &runtime)
            .current_dir(&self.home)
            .output()
            .unwrap()
    }

    fn store(&self) -> PathBuf {
        self.home.join(".local/share/kiln")
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A world-readable directory for the test (contexts, the kiln binary, outputs).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A copy of the kiln binary the users can execute (the target dir may not be theirs to
/// read).
fn kiln_copy(dir: &Path) -> PathBuf {
    let to = dir.join("kiln");
    fs::copy(env!("CARGO_BIN_EXE_kiln"), &to).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    to
}

fn root_kiln(kiln: &Path, store: &Path, args: &[&str]) -> Output {
    Command::new(kiln)
        .arg("--root")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// `kiln inspect`'s config and image id.
fn inspected(out: &str) -> (serde_json::Value, String) {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    (
        v[0]["Config"].clone(),
        v[0]["Id"].as_str().unwrap().to_owned(),
    )
}

/// Copies `from` into `to` with modes, links and times (`cp -a`), readable by everyone.
fn copy_context(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(to));
}

/// The same busybox base in root's store and in `me`'s: imported once (an import records
/// its time), saved, and loaded by the user.
fn same_base(kiln: &Path, dir: &Path, root_store: &Path, me: &User) {
    let base = busybox_rootfs_tar(dir);
    ok(
        &root_kiln(
            kiln,
            root_store,
            &["import", base.to_str().unwrap(), "busybox:latest"],
        ),
        "root import",
    );
    let archive = dir.join("busybox.tar");
    ok(
        &root_kiln(
            kiln,
            root_store,
            &["save", "-o", archive.to_str().unwrap(), "busybox:latest"],
        ),
        "root save",
    );
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o644)).unwrap();
    ok(
        &me.kiln(kiln, &["load", "-i", archive.to_str().unwrap()]),
        "rootless load",
    );
}

fn prerequisites() -> bool {
    require(
        true,
        &[
            "setpriv",
            "useradd",
            "newuidmap",
            "newgidmap",
            "/bin/busybox",
            "tar",
        ],
    )
    .is_some()
}

#[test]
fn rootless_builds_match_root_builds_file_for_file_and_by_digest() {
    if !prerequisites() {
        return;
    }
    let tmp = shared_dir();
    let kiln = kiln_copy(tmp.path());
    let me = user("kiln-rl-a", true, tmp.path());
    let root_store = tmp.path().join("root-store");
    same_base(&kiln, tmp.path(), &root_store, &me);

    let mut contexts: Vec<(String, PathBuf, Vec<String>)> = Vec::new();
    let example = tmp.path().join("ctx-example");
    copy_context(
        &kiln_test_support::workspace_root().join("examples/busybox-app"),
        &example,
    );
    contexts.push(("example".into(), example, Vec::new()));
    for case in cases() {
        let ctx = tmp.path().join(format!("ctx-{}", case.name));
        copy_context(&case.dir, &ctx);
        contexts.push((case.name.clone(), ctx, flags(&case)));
    }
    assert!(contexts.len() > 30, "{} contexts", contexts.len());
    let outputs = tmp.path().join("out");
    fs::create_dir_all(&outputs).unwrap();
    fs::set_permissions(&outputs, fs::Permissions::from_mode(0o777)).unwrap();

    let mut failures = Vec::new();
    for (name, ctx, extra) in &contexts {
        let build = |who: &str| -> (BTreeMap<String, FsEntry>, serde_json::Value, String) {
            let tar = outputs.join(format!("{name}-{who}.tar"));
            let tag = format!("rl/{name}");
            let mut args: Vec<String> = vec![
                "build".into(),
                "-q".into(),
                "--build-arg".into(),
                "SOURCE_DATE_EPOCH=1700000000".into(),
                "-o".into(),
                format!("type=image,name={tag}"),
                "-o".into(),
                format!("type=tar,dest={}", tar.display()),
            ];
            args.extend(extra.iter().cloned());
            args.push(ctx.display().to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (built, inspect) = if who == "root" {
                (
                    root_kiln(&kiln, &root_store, &args),
                    root_kiln(&kiln, &root_store, &["inspect", &tag]),
                )
            } else {
                (me.kiln(&kiln, &args), me.kiln(&kiln, &["inspect", &tag]))
            };
            ok(&built, &format!("{who} build of {name}"));
            let (config, id) = inspected(&ok(&inspect, &format!("{who} inspect of {name}")));
            (read_tar(&tar), config, id)
        };
        let (root_fs, root_cfg, root_id) = build("root");
        let (rl_fs, rl_cfg, rl_id) = build("rootless");
        let mut problems = diff_fs(("root", &root_fs), ("rootless", &rl_fs));
        let (a, b) = (config_subset(&root_cfg), config_subset(&rl_cfg));
        for f in CONFIG_FIELDS {
            if a[f] != b[f] {
                problems.push(format!("  config {f}: root {} rootless {}", a[f], b[f]));
            }
        }
        if root_id != rl_id {
            problems.push(format!("  image: root {root_id} rootless {rl_id}"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}:\n{}", problems.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} builds differ:\n{}",
        failures.len(),
        contexts.len(),
        failures.join("\n")
    );
    // The store is the user's, in its XDG data directory, and holds what the user's builds
    // made: files of ids other than the user's belong to its subordinate ids on the host.
    let store = me.store();
    assert!(store.join("index.json").is_file(), "{}", store.display());
}

/// Steps as `USER 1000`, a deleted file and directory (whiteouts) and a replaced directory
/// (opaque), in a stage whose files a later stage copies.
const IDS_AND_WHITEOUTS: &str = r"FROM busybox:latest AS base
RUN mkdir -p /data/keep /data/gone /opq/sub && touch /data/gone/f /opq/old /opq/sub/x \
 && chown -R 1000:1000 /data && chown 1001:1002 /opq/old
USER 1000:1000
RUN echo mine > /data/keep/mine && touch /data/keep/x && id -u > /data/keep/uid
USER root
RUN rm -rf /data/gone /data/keep/x /opq && mkdir /opq && touch /opq/new \
 && chown 1000:100 /opq/new && ls -ln /data/keep > /listing
FROM busybox:latest
COPY --from=base --chown=1000:1000 /data /data
COPY --from=base /opq /opq
USER 1000
";

#[test]
fn other_ids_whiteouts_and_opaque_directories_work_rootless_in_both_snapshotters() {
    if !prerequisites() {
        return;
    }
    let tmp = shared_dir();
    let kiln = kiln_copy(tmp.path());
    let me = user("kiln-rl-b", true, tmp.path());
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), IDS_AND_WHITEOUTS).unwrap();
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&ctx));
    let root_store = tmp.path().join("root-store");
    same_base(&kiln, tmp.path(), &root_store, &me);
    let ctx_s = ctx.to_str().unwrap();
    for target in ["base", ""] {
        let mut ids = Vec::new();
        for snapshotter in ["overlay", "naive"] {
            let mut args = vec![
                "--snapshotter",
                snapshotter,
                "build",
                "-q",
                "--no-cache",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
            ];
            if !target.is_empty() {
                args.extend(["--target", target]);
            }
            args.push(ctx_s);
            let root_args: Vec<&str> = std::iter::once("--root")
                .chain(std::iter::once(root_store.to_str().unwrap()))
                .chain(args.iter().copied())
                .collect();
            let root = ok(
                &Command::new(&kiln).args(&root_args).output().unwrap(),
                "root build",
            );
            let rootless = ok(&me.kiln(&kiln, &args), "rootless build");
            ids.push((
                snapshotter,
                root.trim().to_owned(),
                rootless.trim().to_owned(),
            ));
        }
        for (snapshotter, root, rootless) in &ids {
            assert_eq!(
                root, rootless,
                "target `{target}` with {snapshotter}: root and rootless images differ"
            );
        }
        assert_eq!(
            ids[0].1, ids[1].1,
            "target `{target}`: the snapshotters differ"
        );
    }
    // What the steps saw: `id -u` ran as 1000, and the listing shows the ids the container
    // sees, not the host's.
    let out = me.kiln(
        &kiln,
        &["build", "-q", "--target", "base", "-t", "ids", ctx_s],
    );
    ok(&out, "rootless build");
    let run_out = me.kiln(
        &kiln,
        &["run", "--rm", "ids", "cat", "/data/keep/uid", "/listing"],
    );
    let seen = ok(&run_out, "rootless run");
    assert!(seen.starts_with("1000\n"), "{seen}");
    assert!(seen.contains(" 1000     1000 "), "{seen}");
}

#[test]
fn without_subordinate_ids_one_id_is_mapped_with_a_warning_and_a_way_out() {
    if !prerequisites() {
        return;
    }
    let tmp = shared_dir();
    let kiln = kiln_copy(tmp.path());
    let me = user("kiln-rl-c", false, tmp.path());
    let base = busybox_rootfs_tar(tmp.path());
    fs::set_permissions(&base, fs::Permissions::from_mode(0o644)).unwrap();
    let imported = me.kiln(&kiln, &["import", base.to_str().unwrap(), "busybox:latest"]);
    ok(&imported, "import");
    let warning = "warning: rootless kiln maps only your own id";
    assert_eq!(
        text(&imported.stderr).matches(warning).count(),
        1,
        "{}",
        text(&imported.stderr)
    );
    // The example needs no other id: it builds and runs.
    let example = tmp.path().join("ctx-example");
    copy_context(
        &kiln_test_support::workspace_root().join("examples/busybox-app"),
        &example,
    );
    let built = me.kiln(
        &kiln,
        &["build", "-q", "-t", "greet", example.to_str().unwrap()],
    );
    ok(&built, "build of the example");
    assert!(
        text(&built.stderr).contains(warning),
        "{}",
        text(&built.stderr)
    );
    let greeting = ok(
        &me.kiln(&kiln, &["run", "--rm", "--user", "0", "greet"]),
        "run",
    );
    assert!(greeting.contains("hello from kiln"), "{greeting}");
    // A step as another user cannot work; the error says why and how to fix it.
    let ctx = tmp.path().join("ctx-user");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:latest\nUSER 1000\nRUN touch /tmp/x\n",
    )
    .unwrap();
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&ctx));
    let failed = me.kiln(&kiln, &["build", "-q", ctx.to_str().unwrap()]);
    assert!(!failed.status.success());
    let err = text(&failed.stderr);
    assert!(
        err.contains("user 1000:0 does not exist in kiln's user namespace")
            && err.contains("usermod --add-subuids"),
        "{err}"
    );
}

#[test]
fn every_command_works_rootless_and_writes_only_in_the_users_directories() {
    if !prerequisites() {
        return;
    }
    let tmp = shared_dir();
    let kiln = kiln_copy(tmp.path());
    let me = user("kiln-rl-d", true, tmp.path());
    let base = busybox_rootfs_tar(tmp.path());
    fs::set_permissions(&base, fs::Permissions::from_mode(0o644)).unwrap();
    let example = tmp.path().join("ctx-example");
    copy_context(
        &kiln_test_support::workspace_root().join("examples/busybox-app"),
        &example,
    );
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    run(Command::new("chown")
        .arg(format!("{}:{}", me.uid, me.gid))
        .arg(&out));
    let archive = out.join("greet.tar");
    let layout = out.join("layout");
    let (ex, ar, la) = (
        example.to_str().unwrap(),
        archive.to_str().unwrap(),
        layout.to_str().unwrap(),
    );
    let marker = tmp.path().join("marker");
    fs::write(&marker, b"").unwrap();
    // Coarse file times: make sure everything the commands write is newer than the marker.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let commands: Vec<Vec<&str>> = vec![
        vec!["import", base.to_str().unwrap(), "busybox:latest"],
        vec!["build", "-q", "-t", "greet", ex],
        vec!["build", "-q", "--no-cache", "-t", "greet:2", ex],
        vec!["images"],
        vec!["tag", "greet", "greet:copy"],
        vec!["inspect", "greet"],
        vec!["history", "greet"],
        vec!["run", "--rm", "greet"],
        vec!["run", "--rm", "--network", "none", "greet"],
        vec!["save", "-o", ar, "greet"],
        vec!["rmi", "greet:copy"],
        vec!["load", "-i", ar],
        vec!["save", "--format", "oci", "-o", la, "greet"],
        vec!["analyze", "greet"],
        vec!["diff", "greet", "greet:2"],
        vec!["du"],
        vec!["fsck"],
        vec!["prune", "--all"],
        vec!["lint", ex],
        vec!["outline", ex],
        vec!["graph", ex],
        vec!["unshare", "touch", "unshared"],
    ];
    for args in &commands {
        let o = me.kiln(&kiln, args);
        // `diff` says 1 for images that differ, as diff(1) does.
        let fine = o.status.success() || (args[0] == "diff" && o.status.code() == Some(1));
        assert!(
            fine,
            "rootless `kiln {}` failed ({}):\n{}",
            args.join(" "),
            o.status,
            text(&o.stderr)
        );
    }
    // In kiln's namespace the store's files are root's (the user's own id), whatever their
    // owner on the host; the user removes the store there.
    let listing = me.kiln(&kiln, &["unshare", "stat", "-c", "%u", "unshared"]);
    assert_eq!(ok(&listing, "unshare stat").trim(), "0");
    let store = me.store();
    ok(
        &me.kiln(&kiln, &["unshare", "rm", "-rf", store.to_str().unwrap()]),
        "unshare rm",
    );
    assert!(!store.exists());
    // Nothing of the user's (its id or its subordinate ids) outside its home (store and
    // runtime directory there) and the output directory it was given.
    let range = fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", me.name)).map(str::to_owned))
        .unwrap();
    let (start, count) = range.split_once(':').unwrap();
    let (start, count): (u64, u64) = (start.parse().unwrap(), count.parse().unwrap());
    let found = Command::new("find")
        .args([
            "/tmp", "/var/tmp", "/run", "/dev/shm", "/home", "/root", "/etc", "/var/lib",
        ])
        .args(["-xdev", "-newer"])
        .arg(&marker)
        .args(["(", "-uid", &me.uid.to_string()])
        .args([
            "-o",
            "-uid",
            &format!("+{}", start - 1),
            "-a",
            "-uid",
            &format!("-{}", start + count),
            ")",
            "-print",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let found = text(&found.stdout);
    let outside: Vec<&str> = found
        .lines()
        .filter(|p| {
            let p = Path::new(p);
            !p.starts_with(&me.home) && !p.starts_with(&out)
        })
        .collect();
    assert!(
        outside.is_empty(),
        "rootless kiln wrote outside its directories:\n{}",
        outside.join("\n")
    );
}
