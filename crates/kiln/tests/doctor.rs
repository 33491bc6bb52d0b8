//! `kiln doctor` run for real on deliberately broken setups: an unprivileged user the test
//! creates without subordinate ids, and user namespaces disabled by the sysctl inside a user
//! namespace the test makes (`user.max_user_namespaces` is per user namespace and writable
//! by its root), each reported with the one fix.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kiln_test_support::{require, run, text};

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A system user made for one test (no home, no subordinate ids: `useradd --system` never
/// adds them), removed when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(tag: &str) -> Self {
        let name = format!("kd{tag}{}", std::process::id());
        let _ = Command::new("userdel").arg(&name).output();
        run(Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name));
        let id = |flag: &str| -> u32 {
            run(Command::new("id").arg(flag).arg(&name))
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Self { name, uid, gid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A scratch directory anyone can enter, holding `store/` owned by `uid:gid`.
fn scratch(uid: u32, gid: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    fs::create_dir(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(uid), Some(gid)).unwrap();
    (dir, store)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", text(&out.stdout), text(&out.stderr)))
}

fn finding<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no `{check}` finding in {report:#}"))
}

#[test]
fn a_user_without_subordinate_ids_is_told_the_usermod_fix() {
    if require(true, &["useradd", "userdel", "setpriv"]).is_none() {
        return;
    }
    let user = TestUser::create("s");
    let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
    assert!(
        !subuid
            .lines()
            .any(|l| l.starts_with(&format!("{}:", user.name))),
        "useradd --system gave `{}` subordinate ids",
        user.name
    );
    let (_dir, store) = scratch(user.uid, user.gid);
    let doctor = |format: &str| {
        Command::new("setpriv")
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .arg("--clear-groups")
            .arg(KILN)
            .arg("--root")
            .arg(&store)
            .args(["doctor", "--format", format])
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    };
    let usermod = format!(
        "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}",
        user.name
    );

    // A build works with one mapped id: a warning with the fix, not a failure.
    let out = doctor("text");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("no entry for `{}` in `/etc/subuid`", user.name)),
        "{stdout}"
    );
    assert!(stdout.contains(&usermod), "{stdout}");
    assert!(stdout.contains("kiln can build here"), "{stdout}");

    let out = doctor("json");
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["uid"], user.uid);
    assert_eq!(report["rootless"], true);
    let subuid = finding(&report, "subuid");
    assert_eq!(subuid["status"], "warn");
    assert_eq!(subuid["fixes"]["host"], usermod.as_str());
    // The store is the user's: writable, and the probes ran in it and left nothing there.
    assert_eq!(finding(&report, "store")["status"], "ok");
    assert_eq!(fs::read_dir(&store).unwrap().count(), 0);
}

/// Run `kiln doctor --format json` as uid 1000 inside a user namespace the test makes, in
/// which root first sets `user.max_user_namespaces` to 0. The namespace maps its 0 to the
/// host's root and its 1000 to `user`.
fn doctor_in_a_namespace_without_user_namespaces(store: &Path, user: &TestUser) -> Output {
    let inner = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid=1000 \
         --regid=1000 --clear-groups {KILN} --root {} doctor --format json",
        store.display()
    );
    // The shell waits for the maps before it execs the one that writes the sysctl (its
    // capabilities in the namespace count from an exec after the mapping).
    let mut child = Command::new("unshare")
        .args(["--user", "sh", "-c", "read go && exec sh -c \"$0\""])
        .arg(&inner)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // unshare execs the shell in the new namespace; wait until it is there.
    let ns = fs::read_link("/proc/self/ns/user").unwrap();
    let proc_dir = format!("/proc/{}", child.id());
    for _ in 0..200 {
        if fs::read_link(format!("{proc_dir}/ns/user")).is_ok_and(|n| n != ns) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // One write each: the kernel takes a map in a single write.
    fs::write(
        format!("{proc_dir}/uid_map"),
        format!("0 0 1\n1000 {} 1\n", user.uid),
    )
    .unwrap();
    fs::write(
        format!("{proc_dir}/gid_map"),
        format!("0 0 1\n1000 {} 1\n", user.gid),
    )
    .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_namespaces_disabled_by_the_sysctl_are_reported_with_the_fix() {
    if require(true, &["unshare", "setpriv", "useradd", "userdel"]).is_none() {
        return;
    }
    let user = TestUser::create("n");
    let (_dir, store) = scratch(user.uid, user.gid);
    let out = doctor_in_a_namespace_without_user_namespaces(&store, &user);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["uid"], 1000);
    let userns = finding(&report, "userns");
    assert_eq!(userns["status"], "error");
    let message = userns["message"].as_str().unwrap();
    assert!(
        message.contains("user.max_user_namespaces is 0"),
        "{message}"
    );
    assert_eq!(
        userns["fixes"]["host"],
        "sysctl -w user.max_user_namespaces=15000"
    );
    // What needs a user namespace says it was not tried, rather than failing on its own.
    assert_eq!(finding(&report, "overlay")["status"], "info");
}
