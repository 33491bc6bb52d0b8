//! Helpers shared by kiln's tests (a dev-dependency only; never linked into the binary).
//!
//! It knows where the shared conformance corpus lives and the CI policy for tests that
//! cannot run: under `CI=true` a missing prerequisite is a failure, never a skip.

// Tests and benchmarks read their own settings from the environment.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use std::path::PathBuf;

pub mod bases;

/// Whether the tests run in CI (`CI=true`), where missing prerequisites must fail.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared conformance corpus: `KILN_CONFORMANCE_DIR`, else `../shared/conformance` beside
/// the workspace root.
///
/// Returns `None` (after saying so loudly) when it is absent outside CI; panics in CI.
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_CONFORMANCE_DIR").map_or_else(
        || workspace_root().join("../shared/conformance"),
        PathBuf::from,
    );
    if dir.is_dir() {
        return Some(dir);
    }
    missing(&format!(
        "conformance corpus not found at `{}`",
        dir.display()
    ));
    None
}

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Report a prerequisite that is missing: a panic under CI, a loud message otherwise.
pub fn missing(what: &str) {
    assert!(!in_ci(), "{what} (CI=true: this test must not be skipped)");
    eprintln!("SKIPPED: {what}");
}

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Docker 20.10 client (`/usr/local/bin/docker` may be a newer one that refuses
/// BuildKit without buildx).
pub const DOCKER: &str = "/usr/bin/docker";

/// Run a command to success and return its stdout; panics with both streams otherwise.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a tool is installed (an absolute path that exists, or a name on `PATH`).
pub fn have(tool: &str) -> bool {
    Path::new(tool).exists()
        || Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Whether the tests run as root (needed for dockerd, namespaces, ownership).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Check prerequisites: `Some(())` when all are there; otherwise report them with
/// [`missing`] (a panic under CI) and return `None`.
pub fn require(root: bool, tools: &[&str]) -> Option<()> {
    if root && !is_root() {
        missing("this test needs root");
        return None;
    }
    for tool in tools {
        if !have(tool) {
            missing(&format!(
                "`{tool}` is not installed (see scripts/debian-packages.txt)"
            ));
            return None;
        }
    }
    Some(())
}

/// A busybox root filesystem: the static busybox with every applet as a hard link, a
/// `/bin/sh`, `/etc/passwd` and `/etc/group` with root and nobody, and a sticky `/tmp`;
/// written to `dir/rootfs.tar` (returned).
pub fn busybox_rootfs_tar(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("busybox-rootfs");
    for d in ["bin", "etc", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines().filter(|a| *a != "busybox" && !a.is_empty()) {
        let _ = fs::hard_link(root.join("bin/busybox"), root.join("bin").join(applet));
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    run(Command::new("chmod").arg("1777").arg(root.join("tmp")));
    let tar = dir.join("rootfs.tar");
    run(Command::new("tar")
        .arg("--sort=name")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// A private dockerd that touches neither the host firewall nor the host's Docker; stopped
/// when dropped.
pub struct Dockerd {
    child: Child,
    sock: String,
    dir: std::path::PathBuf,
}

impl Dockerd {
    /// Start one with its state under `dir`; waits until it answers (at most a minute).
    pub fn start(dir: &Path) -> Self {
        let sock = format!("unix://{}/docker.sock", dir.display());
        fs::create_dir_all(dir).unwrap();
        let log = fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args([
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
            ])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .args(["-H", &sock])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Self {
            child,
            sock,
            dir: dir.to_owned(),
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_mins(1) {
            if d.docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "dockerd did not start: {}",
            fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
    }

    /// A `docker` command talking to this daemon.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(["-H", &self.sock]);
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        // dockerd leaves its default network namespace mounted under its exec root, and
        // the test's temp dir could not be removed through it.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.join("exec/netns/default"))
            .output();
    }
}

/// A throw-away kiln store holding `busybox:latest` (from [`busybox_rootfs_tar`]), with
/// helpers to write build contexts and run the kiln binary on the store.
pub struct KilnEnv {
    _tmp: tempfile::TempDir,
    /// A scratch directory for contexts and outputs.
    pub dir: std::path::PathBuf,
    /// The store root.
    pub store: std::path::PathBuf,
    bin: std::path::PathBuf,
}

impl KilnEnv {
    /// A store for the kiln binary `bin`, or `None` (reported by [`require`]) without root,
    /// busybox, tar or one of `tools`.
    pub fn new(bin: &Path, tools: &[&str]) -> Option<Self> {
        let mut all = vec!["/bin/busybox", "tar"];
        all.extend_from_slice(tools);
        require(true, &all)?;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let store = dir.join("store");
        let rootfs = busybox_rootfs_tar(&dir);
        let env = Self {
            _tmp: tmp,
            dir,
            store,
            bin: bin.to_owned(),
        };
        ok(&env.kiln(&["import", rootfs.to_str().unwrap(), "busybox:latest"]));
        Some(env)
    }

    /// Write a context `name` with `dockerfile` and `files` (`(path, content)`).
    pub fn context(
        &self,
        name: &str,
        dockerfile: &str,
        files: &[(&str, &str)],
    ) -> std::path::PathBuf {
        let ctx = self.dir.join(name);
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        for (p, c) in files {
            let path = ctx.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, c).unwrap();
        }
        ctx
    }

    /// Run kiln on the store.
    pub fn kiln(&self, args: &[&str]) -> std::process::Output {
        self.kiln_with(args, &[], None)
    }

    /// Run kiln on the store with extra environment variables and optional stdin bytes.
    pub fn kiln_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&[u8]>,
    ) -> std::process::Output {
        use std::io::Write as _;
        let mut child = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.store)
            .args(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Assert a command succeeded; its stdout.
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A loopback HTTP server that answers every request with `body`; returns its address and
/// the count of requests it has answered.
pub fn serve_http(body: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 512];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    (format!("http://{addr}"), count)
}

/// A free TCP port on 127.0.0.1 (bound and released: another process may take it, which
/// is unlikely in the moment before it is used).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a [`Registry`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RegistrySetup {
    /// `htpasswd` basic auth with this user and password (bcrypt, `htpasswd -Bbn`).
    pub basic_auth: Option<(String, String)>,
    /// TLS with a server certificate for 127.0.0.1 signed by a test CA ([`TestCa`]).
    pub tls: bool,
    /// With [`Self::tls`], clients must present a certificate signed by the CA.
    pub mtls: bool,
}

/// A test certificate authority and what it signed, made with the `openssl` CLI in a
/// directory of the test's.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate (PEM): what clients trust.
    pub ca: std::path::PathBuf,
    /// The server certificate for `127.0.0.1` and `localhost` (PEM).
    pub server_cert: std::path::PathBuf,
    /// Its key.
    pub server_key: std::path::PathBuf,
    /// A client certificate signed by the CA (PEM).
    pub client_cert: std::path::PathBuf,
    /// Its key.
    pub client_key: std::path::PathBuf,
}

impl TestCa {
    /// Makes a CA, a server certificate and a client certificate under `dir`.
    pub fn make(dir: &Path) -> Self {
        fs::create_dir_all(dir).unwrap();
        let p = |n: &str| dir.join(n);
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(dir));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kiln test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        fs::write(p("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for who in ["server", "client"] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=kiln test {who}"),
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.pem"),
            ]);
        }
        Self {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
        }
    }
}

/// Debian's `docker-registry` (the CNCF distribution registry) on 127.0.0.1 and a free port,
/// its storage under a directory of the test's; killed when dropped (or by [`Self::kill`]).
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Where it keeps its data (`docker/registry/v2/...`).
    pub storage: std::path::PathBuf,
    /// The CA and certificates, for a TLS registry.
    pub ca: Option<TestCa>,
    config: std::path::PathBuf,
}

impl Registry {
    /// Starts one under `dir` with `setup`; `None` (reported by [`require`]) when
    /// `docker-registry` (or `htpasswd`, `openssl` for the setup) is missing. Waits until it
    /// answers (at most 30 s).
    pub fn start(dir: &Path, setup: &RegistrySetup) -> Option<Self> {
        use std::fmt::Write as _;
        let mut tools = vec!["docker-registry"];
        if setup.basic_auth.is_some() {
            tools.push("htpasswd");
        }
        if setup.tls {
            tools.push("openssl");
        }
        require(false, &tools)?;
        fs::create_dir_all(dir).unwrap();
        let storage = dir.join("data");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog: {{ level: error, accesslog: {{ disabled: true }} }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        let ca = setup.tls.then(|| TestCa::make(&dir.join("pki")));
        if let Some(ca) = &ca {
            let _ = write!(
                config,
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert.display(),
                ca.server_key.display()
            );
            if setup.mtls {
                let _ = writeln!(config, "    clientcas: [{}]", ca.ca.display());
            }
        }
        if let Some((user, pass)) = &setup.basic_auth {
            let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
            let file = dir.join("htpasswd");
            fs::write(&file, line.trim()).unwrap();
            let _ = write!(
                config,
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            );
        }
        let config_path = dir.join("registry.yml");
        fs::write(&config_path, config).unwrap();
        let mut r = Self {
            child: None,
            addr,
            storage,
            ca,
            config: config_path,
        };
        r.restart();
        Some(r)
    }

    /// Starts it again (after [`Self::kill`]) on the same port and storage.
    pub fn restart(&mut self) {
        let log = fs::File::create(self.config.with_extension("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
        );
    }

    /// Kills it (SIGKILL) and waits for it to end.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
