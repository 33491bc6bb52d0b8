//! The setup sequence, recorded by the fake kernel.

use std::io;
use std::path::{Path, PathBuf};

use super::*;
use crate::fake::RecordingSyscall;
use crate::spec::{Network, Process, Rootfs, Spec};

fn spec(rootfs: Rootfs) -> Spec {
    Spec {
        rootfs,
        mountpoint: PathBuf::from("/s/rootfs"),
        hosts: PathBuf::from("/s/hosts"),
        resolv_conf: PathBuf::from("/s/resolv.conf"),
        hostname: "kiln".into(),
        network: Network::Host,
        process: Process {
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            cwd: "/work/dir".into(),
            user: "app".into(),
            terminal: false,
        },
        mounts: Vec::new(),
    }
}

fn overlay() -> Rootfs {
    Rootfs::Overlay {
        lower: vec![
            PathBuf::from("/store/snapshots/b2/fs"),
            PathBuf::from("/store/snapshots/a1/fs"),
        ],
        upper: PathBuf::from("/s/upper"),
        work: PathBuf::from("/s/work"),
    }
}

/// An image that has every mount point already.
fn full_image() -> RecordingSyscall {
    RecordingSyscall::new()
        .with_dir("/s/rootfs/proc/sys")
        .with_dir("/s/rootfs/dev")
        .with_dir("/s/rootfs/sys")
        .with_file("/s/rootfs/proc/kcore", "")
        .with_file("/s/rootfs/etc/hosts", "")
        .with_file("/s/rootfs/etc/resolv.conf", "")
}

#[test]
fn full_sequence_over_an_overlay() {
    let sys = full_image();
    let stubs = build_rootfs(&spec(overlay()), &sys).unwrap();
    assert!(stubs.is_empty());
    let expected = [
        "unshare mnt,ipc,uts",
        "make-rprivate /",
        "sethostname kiln",
        "chdir /store/snapshots",
        "mount overlay overlay /s/rootfs - lowerdir=b2/fs:a1/fs,upperdir=/s/upper,workdir=/s/work,volatile",
        "mount tmpfs tmpfs /s/rootfs/dev nosuid mode=755,size=65536k",
        "mknod /s/rootfs/dev/null c 1 3 666",
        "mknod /s/rootfs/dev/zero c 1 5 666",
        "mknod /s/rootfs/dev/full c 1 7 666",
        "mknod /s/rootfs/dev/random c 1 8 666",
        "mknod /s/rootfs/dev/urandom c 1 9 666",
        "mknod /s/rootfs/dev/tty c 5 0 666",
        "mkdir /s/rootfs/dev/pts 755",
        "mount devpts devpts /s/rootfs/dev/pts nosuid,noexec newinstance,ptmxmode=0666,mode=0620",
        "mkdir /s/rootfs/dev/shm 1777",
        "mount tmpfs shm /s/rootfs/dev/shm nosuid,nodev,noexec mode=1777,size=65536k",
        "symlink pts/ptmx /s/rootfs/dev/ptmx",
        "symlink /proc/self/fd /s/rootfs/dev/fd",
        "symlink /proc/self/fd/0 /s/rootfs/dev/stdin",
        "symlink /proc/self/fd/1 /s/rootfs/dev/stdout",
        "symlink /proc/self/fd/2 /s/rootfs/dev/stderr",
        "mount sysfs sysfs /s/rootfs/sys nosuid,nodev,noexec,ro ",
        "bind /s/hosts /s/rootfs/etc/hosts",
        "bind /s/resolv.conf /s/rootfs/etc/resolv.conf",
        "chdir /s/rootfs",
        "pivot_root . .",
        "umount .",
        "chdir /",
    ];
    assert_eq!(sys.calls(), expected);
}

/// In a user namespace: overlayfs with `userxattr`, the host's devices bound on files (no
/// mknod), the host's `/sys` bound read-only when sysfs cannot be mounted (the host's
/// network namespace), and the host's `/proc` bound in `/dev` for the step.
#[test]
fn rootless_sequence_binds_what_it_cannot_make() {
    let sys = full_image()
        .rootless()
        .failing("mknod", io::ErrorKind::PermissionDenied)
        .failing("mount sysfs", io::ErrorKind::PermissionDenied);
    let stubs = build_rootfs(&spec(overlay()), &sys).unwrap();
    assert!(stubs.is_empty());
    let calls = sys.calls();
    let at = |line: &str| {
        calls
            .iter()
            .position(|c| c == line)
            .unwrap_or_else(|| panic!("no `{line}` in {calls:#?}"))
    };
    assert!(calls[4].ends_with(",userxattr,volatile"), "{}", calls[4]);
    let null = at("create /s/rootfs/dev/null 666");
    assert_eq!(calls[null + 1], "bind /dev/null /s/rootfs/dev/null");
    let tty = at("create /s/rootfs/dev/tty 666");
    assert_eq!(calls[tty + 1], "bind /dev/tty /s/rootfs/dev/tty");
    let proc = at("mkdir /s/rootfs/dev/.host-proc 555");
    assert_eq!(calls[proc + 1], "bind /proc /s/rootfs/dev/.host-proc");
    let sysfs = at("bind /sys /s/rootfs/sys");
    assert_eq!(calls[sysfs + 1], "remount-ro /s/rootfs/sys");
}

/// The step mounts a proc of its own over the host's it was given, and drops the host's;
/// where no new proc may be mounted (a container that masks parts of `/proc`) it moves the
/// host's to `/proc`.
#[test]
fn a_rootless_step_prefers_its_own_proc() {
    let sys = RecordingSyscall::new()
        .rootless()
        .with_dir("/dev/.host-proc")
        .with_dir("/proc/sys");
    mount_proc(&sys).unwrap();
    assert_eq!(
        sys.calls()[..3],
        [
            "mount proc proc /proc nosuid,nodev,noexec ",
            "umount /dev/.host-proc",
            "remove /dev/.host-proc",
        ]
    );
    let masked = RecordingSyscall::new()
        .rootless()
        .with_dir("/dev/.host-proc")
        .failing("mount proc", io::ErrorKind::PermissionDenied);
    mount_proc(&masked).unwrap();
    assert_eq!(
        masked.calls(),
        [
            "mount proc proc /proc nosuid,nodev,noexec ",
            "move /dev/.host-proc /proc",
            "remove /dev/.host-proc",
        ]
    );
    // Without the host's proc to fall back on, the refusal is the error.
    let alone = RecordingSyscall::new().failing("mount proc", io::ErrorKind::PermissionDenied);
    let e = mount_proc(&alone).unwrap_err();
    assert!(e.to_string().contains("mount proc at"), "{e}");
}

/// `/proc` is mounted by the step's process, pid 1 of its own pid namespace, after the pivot.
#[test]
fn proc_is_mounted_by_the_process() {
    let sys = RecordingSyscall::new()
        .with_dir("/proc/sys")
        .with_file("/proc/kcore", "");
    mount_proc(&sys).unwrap();
    assert_eq!(
        sys.calls(),
        [
            "mount proc proc /proc nosuid,nodev,noexec ",
            "bind /proc/sys /proc/sys",
            "remount-ro /proc/sys",
            "bind /dev/null /proc/kcore",
        ]
    );
}

#[test]
fn bind_rootfs_for_the_fallback() {
    let sys = full_image();
    build_rootfs(
        &spec(Rootfs::Bind {
            dir: PathBuf::from("/s/tree"),
        }),
        &sys,
    )
    .unwrap();
    assert_eq!(sys.calls()[3], "bind /s/tree /s/rootfs");
}

#[test]
fn missing_mount_points_become_stubs_and_are_removed() {
    // A `FROM scratch`-like image: nothing but the rootfs.
    let sys = RecordingSyscall::new().with_dir("/s/rootfs");
    let stubs = build_rootfs(&spec(overlay()), &sys).unwrap();
    let paths: Vec<_> = stubs.iter().map(|s| s.path.display().to_string()).collect();
    assert_eq!(
        paths,
        [
            "/proc",
            "/dev",
            "/sys",
            "/etc",
            "/etc/hosts",
            "/etc/resolv.conf"
        ]
    );
    assert!(
        sys.calls()
            .contains(&"create /s/rootfs/etc/hosts 644".to_owned())
    );
    // /etc is a stub: its children's parent mtime is not restored (it goes away itself).
    assert_eq!(stubs[4].parent_mtime, None);
    assert_eq!(stubs[3].parent_mtime, Some((1, 0)));
    assert!(
        stubs
            .iter()
            .all(|s| s.mounted != (s.path == Path::new("/etc")))
    );

    let sys = RecordingSyscall::new();
    remove_stubs(&stubs, &sys).unwrap();
    assert_eq!(
        sys.calls(),
        [
            "umount /etc/resolv.conf",
            "remove /etc/resolv.conf",
            "umount /etc/hosts",
            "remove /etc/hosts",
            "remove /etc",
            "set-mtime / 1",
            "umount /sys",
            "remove /sys",
            "set-mtime / 1",
            "umount /dev",
            "remove /dev",
            "set-mtime / 1",
            "umount /proc",
            "remove /proc",
            "set-mtime / 1",
        ]
    );
}

#[test]
fn symlinks_in_the_image_resolve_inside_the_rootfs() {
    // /etc/hosts -> /etc/shadow and /etc/resolv.conf -> ../run/resolv.conf must stay inside.
    let sys = full_image()
        .with_symlink("/s/rootfs/etc/hosts", "/etc/shadow")
        .with_dir("/s/rootfs/run")
        .with_symlink("/s/rootfs/etc/resolv.conf", "../../../../run/resolv.conf");
    let stubs = build_rootfs(&spec(overlay()), &sys).unwrap();
    let calls = sys.calls();
    assert!(calls.contains(&"bind /s/hosts /s/rootfs/etc/shadow".to_owned()));
    assert!(calls.contains(&"bind /s/resolv.conf /s/rootfs/run/resolv.conf".to_owned()));
    assert_eq!(stubs.len(), 2);
}

#[test]
fn symlink_loops_are_errors() {
    let sys = full_image().with_symlink("/s/rootfs/etc/hosts", "/etc/hosts");
    let err = build_rootfs(&spec(overlay()), &sys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot resolve `etc/hosts` inside the rootfs: too many levels of symbolic links"
    );
}

#[test]
fn overlay_without_volatile_on_old_kernels() {
    let sys = full_image().failing_once(
        "mount overlay overlay /s/rootfs - lowerdir=b2/fs:a1/fs,upperdir=/s/upper,workdir=/s/work,volatile",
        rustix::io::Errno::INVAL.raw_os_error(),
    );
    build_rootfs(&spec(overlay()), &sys).unwrap();
    assert_eq!(
        sys.calls()[5],
        "mount overlay overlay /s/rootfs - lowerdir=b2/fs:a1/fs,upperdir=/s/upper,workdir=/s/work"
    );
}

#[test]
fn failures_name_the_path() {
    let sys = full_image().failing("mount overlay", io::ErrorKind::PermissionDenied);
    let err = build_rootfs(&spec(overlay()), &sys).unwrap_err();
    assert_eq!(err.to_string(), "cannot mount the overlay at `/s/rootfs`");
    assert_eq!(err.exit_code(), 125);
}

#[test]
fn network_none_unshares_net() {
    let sys = full_image();
    let mut spec = spec(overlay());
    spec.network = crate::spec::Network::None;
    build_rootfs(&spec, &sys).unwrap();
    assert_eq!(sys.calls()[..2], ["unshare mnt,ipc,uts,net", "loopback-up"]);
}

#[test]
fn process_start_sequence() {
    let sys = RecordingSyscall::new()
        .with_file(
            "/etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .with_file("/etc/group", "app:x:1000:\nstaff:x:50:app\n")
        .with_file("/bin/sh", "");
    let spec = spec(overlay());
    let user = resolve_user(&spec, &sys).unwrap();
    assert_eq!(
        (user.uid, user.gid, user.groups.clone()),
        (1000, 1000, vec![1000, 50])
    );
    let cwd = prepare_cwd(&spec, &sys).unwrap();
    assert_eq!(cwd, Path::new("/work/dir"));
    let err = exec_process(&spec, &user, &cwd, &sys);
    assert!(matches!(err, SetupError::Exec { .. }));
    assert_eq!(
        sys.calls(),
        [
            "mkdir /work 755",
            "mkdir /work/dir 755",
            "limit-caps 14",
            "set-ids uid=1000 gid=1000 groups=[1000, 50]",
            "pdeathsig-kill",
            "chdir /work/dir",
            "exec /bin/sh [\"sh\", \"-c\", \"true\"] [\"A=1\", \
             \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \
             \"HOME=/home/app\"]",
        ]
    );
}

/// Rootless with one id mapped: a `USER` the namespace lacks is an error that says how to
/// add subordinate ids; as root the same failure is an ordinary one.
#[test]
fn an_unmapped_user_says_how_to_map_it() {
    let user = crate::user::resolve("1000:1000", "", "").unwrap();
    let line = "set-ids uid=1000 gid=1000 groups=[1000]";
    let einval = rustix::io::Errno::INVAL.raw_os_error();
    let rootless = RecordingSyscall::new()
        .rootless()
        .failing_once(line, einval);
    let err = exec_process(&spec(overlay()), &user, Path::new("/"), &rootless);
    assert!(
        matches!(
            err,
            SetupError::Unmapped {
                uid: 1000,
                gid: 1000
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("usermod --add-subuids"), "{err}");
    let root = RecordingSyscall::new().failing_once(line, einval);
    let err = exec_process(&spec(overlay()), &user, Path::new("/"), &root);
    assert!(err.to_string().contains("set the user ids"), "{err}");
}

#[test]
fn missing_program_is_127() {
    let sys = RecordingSyscall::new();
    let mut spec = spec(overlay());
    spec.process.args = vec!["nope".into()];
    let user = crate::user::resolve("", "", "").unwrap();
    let err = exec_process(&spec, &user, Path::new("/"), &sys);
    assert_eq!(err.to_string(), "executable `nope` not found in $PATH");
    assert_eq!(err.exit_code(), 127);
}

#[test]
fn unknown_user_is_an_error_naming_it() {
    let sys = RecordingSyscall::new().with_file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    let err = resolve_user(&spec(overlay()), &sys).unwrap_err();
    assert_eq!(err.to_string(), "cannot run as user `app`");
}

#[test]
fn home_from_env_wins() {
    let mut spec = spec(overlay());
    spec.process.env = vec!["HOME=/x".into(), "PATH=/bin".into()];
    let user = crate::user::resolve("", "", "").unwrap();
    assert_eq!(process_env(&spec, &user), ["HOME=/x", "PATH=/bin"]);
}

fn with_mounts(mounts: Vec<crate::spec::MountSpec>) -> Spec {
    let mut s = spec(overlay());
    s.mounts = mounts;
    s
}

fn mount(target: &str, kind: crate::spec::MountKind) -> crate::spec::MountSpec {
    crate::spec::MountSpec {
        target: target.into(),
        kind,
    }
}

/// The calls after `/etc/resolv.conf` and before `chdir /s/rootfs`: the extra mounts.
fn extra_calls(sys: &RecordingSyscall) -> Vec<String> {
    let calls = sys.calls();
    let start = calls
        .iter()
        .position(|c| c.starts_with("bind /s/resolv.conf"))
        .unwrap()
        + 1;
    let end = calls.iter().rposition(|c| c == "chdir /s/rootfs").unwrap();
    calls[start..end].to_vec()
}

/// BuildKit's `testCacheMountParallel`: two steps of parallel stages mount the same cache at
/// `/foo/bar` and another inside it; the second to make the inner mount point finds it made
/// (`EEXIST`) and goes on, and neither records it as a stub to remove (issue 10, item 6).
#[test]
fn a_mount_point_made_meanwhile_in_a_shared_cache_is_used() {
    use crate::spec::MountKind;
    let cache = |root: &str| MountKind::Bind {
        root: root.into(),
        path: String::new(),
        read_only: false,
    };
    let sys = full_image()
        .with_dir("/store/cache-mounts/outer")
        .with_dir("/store/cache-mounts/inner")
        .failing_once(
            "mkdir /s/rootfs/foo/bar/baz 755",
            rustix::io::Errno::EXIST.raw_os_error(),
        );
    let spec = with_mounts(vec![
        mount("/foo/bar/baz", cache("/store/cache-mounts/inner")),
        mount("/foo/bar", cache("/store/cache-mounts/outer")),
    ]);
    let stubs = build_rootfs(&spec, &sys).unwrap();
    let paths: Vec<_> = stubs.iter().map(|s| s.path.display().to_string()).collect();
    assert_eq!(
        paths,
        ["/foo", "/foo/bar"],
        "baz is the cache's, not a stub"
    );
}

#[test]
fn extra_mounts_in_depth_order_with_stubs() {
    use crate::spec::{FileContent, MountKind};
    let sys = full_image()
        .with_dir("/ctx/src")
        .with_file("/ctx/input.txt", "x")
        .with_dir("/s/rootfs/var");
    let spec = with_mounts(vec![
        mount(
            "/cache/sub",
            MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        ),
        mount(
            "/cache",
            MountKind::Bind {
                root: "/store/cache-mounts/ab".into(),
                path: String::new(),
                read_only: false,
            },
        ),
        mount(
            "/in.txt",
            MountKind::Bind {
                root: "/ctx".into(),
                path: "input.txt".into(),
                read_only: true,
            },
        ),
        mount(
            "/run/secrets/tok",
            MountKind::File {
                content: FileContent::Inline(b"hunter2".to_vec()),
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
        ),
        mount(
            "/dev/pipes/EOF",
            MountKind::File {
                content: FileContent::Inline(b"#!/bin/sh\n".to_vec()),
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        ),
    ]);
    let sys = sys.with_dir("/store/cache-mounts/ab");
    let stubs = build_rootfs(&spec, &sys).unwrap();
    assert_eq!(
        extra_calls(&sys),
        [
            "mkdir /s/rootfs/cache 755",
            "bind /store/cache-mounts/ab /s/rootfs/cache",
            "create /s/rootfs/in.txt 644",
            "bind /ctx/input.txt /s/rootfs/in.txt",
            "remount-ro /s/rootfs/in.txt",
            "mkdir /s/rootfs/cache/sub 755",
            "mount tmpfs tmpfs /s/rootfs/cache/sub nosuid,nodev mode=1777,size=1048576",
            "write /s/rootfs/dev/.kiln-file-3 7B 400 0:0",
            "mkdir /s/rootfs/run 755",
            "mkdir /s/rootfs/run/secrets 755",
            "create /s/rootfs/run/secrets/tok 644",
            "bind /s/rootfs/dev/.kiln-file-3 /s/rootfs/run/secrets/tok",
            "remount-ro /s/rootfs/run/secrets/tok",
            "remove /s/rootfs/dev/.kiln-file-3",
            "mkdir /s/rootfs/dev/pipes 755",
            "write /s/rootfs/dev/pipes/EOF 10B 755 0:0",
        ]
    );
    let paths: Vec<_> = stubs
        .iter()
        .map(|s| (s.path.display().to_string(), s.mounted))
        .collect();
    assert_eq!(
        paths,
        [
            ("/cache".into(), true),
            ("/in.txt".into(), true),
            // `/cache/sub` is made inside the cache mount, not the rootfs: it stays there.
            ("/run".into(), false),
            ("/run/secrets".into(), false),
            ("/run/secrets/tok".into(), true),
        ]
    );
    // The secret's bytes are nowhere in the recording.
    assert!(!sys.calls().iter().any(|c| c.contains("hunter2")));
    let sys = RecordingSyscall::new();
    remove_stubs(&stubs, &sys).unwrap();
    assert_eq!(
        sys.calls(),
        [
            "umount /run/secrets/tok",
            "remove /run/secrets/tok",
            "remove /run/secrets",
            "remove /run",
            "set-mtime / 1",
            "umount /in.txt",
            "remove /in.txt",
            "set-mtime / 1",
            "umount /cache",
            "remove /cache",
            "set-mtime / 1",
        ]
    );
}

#[test]
fn bind_sources_and_targets_stay_inside_their_roots() {
    use crate::spec::MountKind;
    // A context symlink to /etc/shadow resolves inside the context; an image symlink for the
    // target resolves inside the rootfs.
    let sys = full_image()
        .with_dir("/ctx/etc")
        .with_file("/ctx/etc/shadow", "")
        .with_symlink("/ctx/link", "/etc/shadow")
        .with_dir("/s/rootfs/data")
        .with_symlink("/s/rootfs/mnt", "../../../data");
    let spec = with_mounts(vec![mount(
        "/mnt/x",
        MountKind::Bind {
            root: "/ctx".into(),
            path: "link".into(),
            read_only: true,
        },
    )]);
    build_rootfs(&spec, &sys).unwrap();
    assert_eq!(
        extra_calls(&sys),
        [
            "create /s/rootfs/data/x 644",
            "bind /ctx/etc/shadow /s/rootfs/data/x",
            "remount-ro /s/rootfs/data/x",
        ]
    );
    let missing = with_mounts(vec![mount(
        "/x",
        MountKind::Bind {
            root: "/ctx".into(),
            path: "../nope".into(),
            read_only: true,
        },
    )]);
    let err = build_rootfs(&missing, &full_image().with_dir("/ctx")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot resolve `../nope` inside the rootfs: no such file or directory"
    );
}

#[test]
fn type_mismatches_and_the_root_are_refused() {
    use crate::spec::MountKind;
    let sys = full_image().with_dir("/ctx/d");
    let spec = with_mounts(vec![mount(
        "/etc/hosts",
        MountKind::Bind {
            root: "/ctx".into(),
            path: "d".into(),
            read_only: true,
        },
    )]);
    let err = build_rootfs(&spec, &sys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot resolve `etc/hosts` inside the rootfs: cannot mount a directory on a file"
    );
    let spec = with_mounts(vec![mount("/", MountKind::Tmpfs { size: None })]);
    let err = build_rootfs(&spec, &full_image()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot resolve `/` inside the rootfs: cannot mount over the root"
    );
}

#[test]
fn overlay_mounts_stack_lowers_and_bind_a_path_of_them() {
    use crate::spec::MountKind;
    let sys = full_image()
        .with_dir("/snap/a/fs/out")
        .with_dir("/snap/b/fs")
        .with_dir("/t/view/out");
    let spec = with_mounts(vec![
        mount(
            "/rw",
            MountKind::Overlay {
                lower: vec!["/snap/b/fs".into(), "/snap/a/fs".into()],
                upper: Some(("/t/up".into(), "/t/work".into())),
                mountpoint: "/t/view".into(),
                path: "/out".into(),
                read_only: false,
            },
        ),
        mount(
            "/ro",
            MountKind::Overlay {
                lower: vec!["/snap/a/fs".into()],
                upper: None,
                mountpoint: "/t/view2".into(),
                path: "out".into(),
                read_only: true,
            },
        ),
    ]);
    build_rootfs(&spec, &sys).unwrap();
    assert_eq!(
        extra_calls(&sys),
        [
            "chdir /snap",
            "mount overlay overlay /t/view - lowerdir=b/fs:a/fs,upperdir=/t/up,workdir=/t/work",
            "mkdir /s/rootfs/rw 755",
            "bind /t/view/out /s/rootfs/rw",
            "mkdir /s/rootfs/ro 755",
            "bind /snap/a/fs/out /s/rootfs/ro",
            "remount-ro /s/rootfs/ro",
        ]
    );
}

#[test]
fn host_file_content_is_read_before_pivot() {
    use crate::spec::{FileContent, MountKind};
    let sys = full_image().with_file("/secrets/tok", "abc");
    let spec = with_mounts(vec![mount(
        "/run/secrets/tok",
        MountKind::File {
            content: FileContent::Host("/secrets/tok".into()),
            mode: 0o440,
            uid: 1000,
            gid: 50,
        },
    )]);
    build_rootfs(&spec, &sys).unwrap();
    assert!(
        extra_calls(&sys).contains(&"write /s/rootfs/dev/.kiln-file-0 3B 440 1000:50".to_owned())
    );
}
