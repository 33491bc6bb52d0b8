//! Broken setups fed through [`Host`]: a fake `/proc`, `/sys`, `/etc` and `PATH` in a temp
//! dir, and a prober that answers what it is told.

use std::fs;
use std::path::Path;

use super::finding::Status;
use super::host::{Host, Probe, ProbeFailure, Prober, Where};
use super::*;

/// A prober with fixed answers (`None`: works).
#[derive(Clone, Default)]
pub(super) struct FakeProber {
    pub userns: Option<ProbeFailure>,
    pub tmpfs: Option<ProbeFailure>,
    pub overlay: Option<ProbeFailure>,
    pub proc: Option<ProbeFailure>,
    pub id_map: Option<ProbeFailure>,
}

fn answer(f: Option<&ProbeFailure>) -> Probe {
    f.cloned().map_or(Ok(()), Err)
}

impl Prober for FakeProber {
    fn user_namespace(&self) -> Probe {
        answer(self.userns.as_ref())
    }
    fn mount_tmpfs(&self, _: &Path, _: bool) -> Probe {
        answer(self.tmpfs.as_ref())
    }
    fn overlay(&self, _: &Path, _: bool) -> Probe {
        answer(self.overlay.as_ref())
    }
    fn proc_mount(&self, _: &Path, _: bool) -> Probe {
        answer(self.proc.as_ref())
    }
    fn id_map(&self, _: &Path, _: u32) -> Probe {
        answer(self.id_map.as_ref())
    }
}

pub(super) fn eperm(step: &str) -> ProbeFailure {
    ProbeFailure {
        step: step.into(),
        errno: nix::libc::EPERM,
        message: "Operation not permitted".into(),
    }
}

/// A healthy rootless setup for uid 1000 `tester` on a host, except that `/etc/subuid` and
/// `/etc/subgid` are empty and `PATH` holds no tools; `edit` breaks or mends it further.
pub(super) fn fake_host(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "proc/self/attr",
        "proc/sys/user",
        "proc/sys/kernel",
        "sys/fs/cgroup",
        "etc",
        "bin",
        "store",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join("proc/self/status"),
        "Name:\tkiln\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\nSeccomp:\t0\n",
    )
    .unwrap();
    fs::write(root.join("proc/sys/user/max_user_namespaces"), "15000\n").unwrap();
    fs::write(root.join("proc/sys/kernel/osrelease"), "6.1.0-18-amd64\n").unwrap();
    fs::write(
        root.join("proc/self/mountinfo"),
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
    )
    .unwrap();
    fs::write(root.join("etc/subuid"), "").unwrap();
    fs::write(root.join("etc/subgid"), "").unwrap();
    edit(root);
    let host = Host {
        proc_root: root.join("proc"),
        sys_root: root.join("sys"),
        subuid: root.join("etc/subuid"),
        subgid: root.join("etc/subgid"),
        path: vec![root.join("bin")],
        uid: 1000,
        gid: 1000,
        user: Some("tester".into()),
        store: root.join("store/kiln"),
        place: Where::Host,
        prober: Box::new(FakeProber::default()),
    };
    (dir, host)
}

fn find<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings.iter().find(|f| f.check == check).unwrap()
}

fn fix_of(f: &Finding, place: Where) -> String {
    f.fix
        .as_ref()
        .and_then(|x| x.for_place(place))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn userns_disabled_by_the_sysctl_names_it() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(root.join("proc/sys/user/max_user_namespaces"), "0\n").unwrap();
    });
    host.prober = Box::new(FakeProber {
        userns: Some(ProbeFailure {
            step: "unshare".into(),
            errno: nix::libc::ENOSPC,
            message: "No space left on device".into(),
        }),
        ..FakeProber::default()
    });
    let findings = diagnose(&host);
    let f = find(&findings, "userns");
    assert_eq!(f.status, Status::Error);
    assert!(
        f.message.contains("user.max_user_namespaces is 0"),
        "{}",
        f.message
    );
    assert_eq!(
        fix_of(f, Where::Host),
        "sysctl -w user.max_user_namespaces=15000"
    );
    // What needs a user namespace is not tried, and says why.
    assert_eq!(
        find(&findings, "overlay").message,
        "not tried: no user namespace"
    );
}

#[test]
fn unprivileged_userns_clone_is_blamed_before_seccomp() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(
            root.join("proc/sys/kernel/unprivileged_userns_clone"),
            "0\n",
        )
        .unwrap();
    });
    host.prober = Box::new(FakeProber {
        userns: Some(eperm("unshare")),
        ..FakeProber::default()
    });
    let f = &diagnose(&host)[1];
    assert!(
        f.message.contains("kernel.unprivileged_userns_clone is 0"),
        "{}",
        f.message
    );
    assert_eq!(
        fix_of(f, Where::Host),
        "sysctl -w kernel.unprivileged_userns_clone=1"
    );
}

#[test]
fn a_seccomp_filter_in_docker_gets_the_docker_flag() {
    let (dir, mut host) = fake_host(|_| {});
    fs::write(
        dir.path().join("proc/self/status"),
        "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\nSeccomp:\t2\n",
    )
    .unwrap();
    host.place = Where::Docker;
    host.prober = Box::new(FakeProber {
        userns: Some(eperm("unshare")),
        ..FakeProber::default()
    });
    let findings = diagnose(&host);
    let f = find(&findings, "userns");
    assert!(
        f.message.contains("seccomp filter refuses unshare"),
        "{}",
        f.message
    );
    assert_eq!(
        fix_of(f, Where::Docker),
        "--security-opt seccomp=unconfined"
    );
    assert_eq!(
        fix_of(f, Where::Kubernetes),
        "securityContext.seccompProfile.type: Unconfined"
    );
    assert!(render_text(&host, &findings).contains("fix: --security-opt seccomp=unconfined"));
}

#[test]
fn the_apparmor_userns_restriction_is_named() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(
            root.join("proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            "1\n",
        )
        .unwrap();
    });
    host.prober = Box::new(FakeProber {
        userns: Some(eperm("write /proc/self/uid_map")),
        ..FakeProber::default()
    });
    let f = &diagnose(&host)[1];
    assert_eq!(
        fix_of(f, Where::Host),
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    );
}

#[test]
fn docker_default_apparmor_refusing_mounts_gets_apparmor_unconfined() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(
            root.join("proc/self/attr/current"),
            "docker-default (enforce)\n",
        )
        .unwrap();
    });
    host.place = Where::Docker;
    host.prober = Box::new(FakeProber {
        tmpfs: Some(eperm("mount tmpfs")),
        overlay: Some(eperm("mount overlay")),
        ..FakeProber::default()
    });
    let findings = diagnose(&host);
    let f = find(&findings, "mount");
    assert_eq!(f.status, Status::Error);
    assert!(
        f.message.contains("`docker-default` refuses mounts"),
        "{}",
        f.message
    );
    assert_eq!(
        fix_of(f, Where::Docker),
        "--security-opt apparmor=unconfined"
    );
    assert_eq!(
        fix_of(f, Where::Kubernetes),
        "securityContext.appArmorProfile.type: Unconfined"
    );
    assert_eq!(find(&findings, "overlay").status, Status::Warn);
}

#[test]
fn masked_proc_is_a_warning_with_systempaths_unconfined() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(
            root.join("proc/self/mountinfo"),
            "1 0 0:1 / / rw - overlay overlay rw\n2 1 0:5 /null /proc/kcore rw - devtmpfs udev rw\n",
        )
        .unwrap();
    });
    host.place = Where::Docker;
    host.prober = Box::new(FakeProber {
        proc: Some(eperm("mount proc")),
        ..FakeProber::default()
    });
    let findings = diagnose(&host);
    let f = find(&findings, "proc");
    assert_eq!(f.status, Status::Warn);
    assert_eq!(
        fix_of(f, Where::Docker),
        "--security-opt systempaths=unconfined"
    );
    assert!(fix_of(f, Where::Kubernetes).starts_with("securityContext.procMount: Unmasked"));
}

#[test]
fn overlay_failing_is_a_warning_with_the_reason() {
    let (_dir, mut host) = fake_host(|root| {
        fs::write(root.join("proc/sys/kernel/osrelease"), "5.10.0-28-amd64\n").unwrap();
    });
    host.prober = Box::new(FakeProber {
        overlay: Some(eperm("mount overlay")),
        ..FakeProber::default()
    });
    let f = namespaces::check_overlay(&host, Path::new("/x"), true, false);
    assert_eq!(f.status, Status::Warn);
    assert!(f.message.contains("copying snapshotter"), "{}", f.message);
    assert!(fix_of(&f, Where::Host).contains("5.11"));
    // A store on overlayfs (a container's root) wants a volume.
    host.place = Where::Docker;
    let f = namespaces::check_overlay(&host, Path::new("/x"), true, true);
    assert!(
        fix_of(&f, Where::Docker).starts_with("-v kiln-data:"),
        "{f:?}"
    );
}

#[test]
fn root_with_sys_admin_needs_no_user_namespace_or_subids() {
    let (dir, mut host) = fake_host(|_| {});
    fs::write(
        dir.path().join("proc/self/status"),
        "Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\nSeccomp:\t0\n",
    )
    .unwrap();
    host.uid = 0;
    host.gid = 0;
    // A prober that would fail the user namespace: it must not be asked.
    host.prober = Box::new(FakeProber {
        userns: Some(eperm("unshare")),
        ..FakeProber::default()
    });
    let findings = diagnose(&host);
    assert!(
        findings.iter().all(|f| f.status != Status::Error),
        "{findings:#?}"
    );
    assert_eq!(find(&findings, "subuid").status, Status::Info);
    assert_eq!(find(&findings, "userns").status, Status::Info);
    assert!(!render_json(&host, &findings)["rootless"].as_bool().unwrap());
}

#[test]
fn a_rootless_setup_names_only_what_is_broken_and_leaves_no_store_behind() {
    let (dir, host) = fake_host(|root| {
        fs::write(root.join("etc/subuid"), "tester:100000:65536\n").unwrap();
        fs::write(root.join("etc/subgid"), "tester:100000:65536\n").unwrap();
        for tool in ["newuidmap", "newgidmap"] {
            fs::write(root.join("bin").join(tool), "").unwrap();
        }
    });
    let findings = diagnose(&host);
    // The copied helpers are not setuid: only those two are errors.
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.status == Status::Error)
        .map(|f| f.check)
        .collect();
    assert_eq!(errors, ["newuidmap", "newgidmap"], "{findings:#?}");
    assert_eq!(find(&findings, "store").status, Status::Ok);
    assert!(!host.store.exists(), "the probes' directories are removed");
    assert!(dir.path().join("store").exists());
    let json = render_json(&host, &findings);
    assert_eq!(json["ok"], false);
    assert_eq!(json["where"], "host");
    assert_eq!(json["findings"][0]["check"], "user");
    let fix = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "newuidmap")
        .unwrap()["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fix.starts_with("setcap cap_setuid=ep "), "{fix}");
}

#[test]
fn an_unwritable_store_is_an_error_and_skips_the_probes() {
    let (dir, mut host) = fake_host(|_| {});
    // Under a file: no one, not even root, can create it.
    host.store = dir.path().join("etc/subuid/store");
    let findings = diagnose(&host);
    assert_eq!(find(&findings, "store").status, Status::Error);
    assert_eq!(
        find(&findings, "mount").message,
        "not tried: the store is not writable"
    );
}

#[test]
fn binfmt_entries_become_platforms() {
    let (_dir, host) = fake_host(|root| {
        let b = root.join("proc/sys/fs/binfmt_misc");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("status"), "enabled\n").unwrap();
        fs::write(b.join("register"), "").unwrap();
        fs::write(
            b.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n",
        )
        .unwrap();
        fs::write(
            b.join("qemu-riscv64"),
            "disabled\ninterpreter x\nflags: F\n",
        )
        .unwrap();
        fs::write(
            b.join("python3.11"),
            "enabled\ninterpreter /usr/bin/python3.11\nflags: \n",
        )
        .unwrap();
    });
    let f = system::check_binfmt(&host);
    assert_eq!(f.status, Status::Ok);
    assert_eq!(f.message, "RUN steps can also run for linux/arm64");
    let (_dir, host) = fake_host(|_| {});
    let f = system::check_binfmt(&host);
    assert_eq!(f.status, Status::Info);
    assert_eq!(
        fix_of(&f, Where::Host),
        "apt-get install qemu-user-static binfmt-support"
    );
}

#[test]
fn entries_without_the_f_flag_are_a_warning() {
    let (_dir, host) = fake_host(|root| {
        let b = root.join("proc/sys/fs/binfmt_misc");
        fs::create_dir_all(&b).unwrap();
        fs::write(
            b.join("qemu-arm"),
            "enabled\ninterpreter /usr/bin/qemu-arm\nflags: OC\n",
        )
        .unwrap();
    });
    let f = system::check_binfmt(&host);
    assert_eq!(f.status, Status::Warn);
    assert!(f.message.contains("linux/arm/v7"), "{}", f.message);
}

#[test]
fn cgroup_v2_delegation_is_information() {
    let (_dir, host) = fake_host(|root| {
        fs::write(
            root.join("sys/fs/cgroup/cgroup.controllers"),
            "cpu memory\n",
        )
        .unwrap();
        fs::write(root.join("proc/self/cgroup"), "0::/user.slice\n").unwrap();
        fs::create_dir_all(root.join("sys/fs/cgroup/user.slice")).unwrap();
    });
    let f = system::check_cgroup(&host);
    assert_eq!(f.status, Status::Info);
    assert!(
        f.message.starts_with("cgroup v2, `/user.slice`"),
        "{}",
        f.message
    );
    let (_dir, host) = fake_host(|_| {});
    assert!(system::check_cgroup(&host).message.starts_with("cgroup v1"));
}

#[test]
fn apparmor_profile_is_read_from_attr() {
    let (_dir, host) = fake_host(|root| {
        fs::write(root.join("proc/self/attr/current"), "unconfined\n").unwrap();
    });
    assert_eq!(namespaces::apparmor_profile(&host), None);
    let (_dir, host) = fake_host(|root| {
        fs::create_dir_all(root.join("proc/self/attr/apparmor")).unwrap();
        fs::write(
            root.join("proc/self/attr/apparmor/current"),
            "cri-containerd.apparmor.d (enforce)\n",
        )
        .unwrap();
    });
    assert_eq!(
        namespaces::apparmor_profile(&host).as_deref(),
        Some("cri-containerd.apparmor.d")
    );
}
