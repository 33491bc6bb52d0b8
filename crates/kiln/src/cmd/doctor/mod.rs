//! `kiln doctor [--format json]`: checks what kiln needs on this machine or in this
//! container, and prints for each problem the one command, `docker run` flag or Kubernetes
//! field that fixes it. Exit status 1 when a build cannot work here, 0 otherwise (warnings
//! allowed).
//!
//! What it checks, in order: who runs kiln (root with `CAP_SYS_ADMIN`, or rootless); that a
//! user namespace can be created, and if not which of `user.max_user_namespaces`,
//! `kernel.unprivileged_userns_clone`, a seccomp filter or
//! `kernel.apparmor_restrict_unprivileged_userns` refuses it; the user's ranges in
//! `/etc/subuid` and `/etc/subgid`; `newuidmap` and `newgidmap` (setuid or with file
//! capabilities); a mount, an overlay (with `userxattr` when rootless) and a fresh `/proc` in
//! new namespaces, each tried in a child under the store; seccomp; cgroups (information:
//! kiln sets no limits); `binfmt_misc` emulators for other platforms; the store writable.
//! [`Host`] holds every input, so unit tests feed broken setups.

mod finding;
mod host;
mod ids;
mod namespaces;
pub(crate) mod probe;
mod system;

use std::fs;
use std::process::ExitCode;

use finding::{Finding, Status};
use host::Host;

use crate::Globals;

/// Text or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One line per check, with `fix:` lines under problems.
    Text,
    /// One JSON object: where kiln runs, who, and every finding with its fix.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let host = Host::real(&globals.root, Box::new(probe::Reexec::current()));
    let findings = diagnose(&host);
    match args.format {
        Format::Text => out!("{}", render_text(&host, &findings))?,
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&render_json(&host, &findings))?
        )?,
    }
    Ok(if findings.iter().any(|f| f.status == Status::Error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether kiln builds rootless here: not root, or root without `CAP_SYS_ADMIN` (an
/// unprivileged container).
fn rootless(host: &Host) -> bool {
    host.uid != 0 || !host.has_sys_admin()
}

/// Every check, in the order they are printed.
pub(crate) fn diagnose(host: &Host) -> Vec<Finding> {
    let rootless = rootless(host);
    let mut out = vec![system::check_user(host, rootless)];
    let userns = namespaces::check_userns(host, rootless);
    out.push(userns.finding.clone());
    for kind in ["subuid", "subgid"] {
        out.push(ids::check_subids(host, kind));
    }
    for tool in ["newuidmap", "newgidmap"] {
        out.push(ids::check_helper(host, tool, userns.works));
    }
    let store = system::check_store(host);
    if !userns.works {
        for check in ["mount", "overlay", "proc"] {
            out.push(namespaces::not_tried(check, "no user namespace"));
        }
    } else if store.status == Status::Error {
        for check in ["mount", "overlay", "proc"] {
            out.push(namespaces::not_tried(check, "the store is not writable"));
        }
    } else {
        out.extend(mount_probes(host, rootless));
    }
    out.push(system::check_seccomp(host));
    out.push(system::check_cgroup(host));
    out.push(system::check_binfmt(host));
    out.push(store);
    out
}

/// The mount, overlay and proc probes, in a directory of their own under the store (created
/// for the probes when the store does not exist yet, and removed after).
fn mount_probes(host: &Host, rootless: bool) -> Vec<Finding> {
    let existing = host
        .store
        .ancestors()
        .find(|p| p.exists())
        .map(std::path::Path::to_path_buf);
    let dir = host.store.join(format!(".doctor-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&dir) {
        let why = format!("cannot create `{}`: {e}", dir.display());
        return ["mount", "overlay", "proc"]
            .into_iter()
            .map(|c| namespaces::not_tried(c, &why))
            .collect();
    }
    let on_overlay = system::on_overlayfs(&dir);
    let out = vec![
        namespaces::check_mount(host, &dir, rootless),
        namespaces::check_overlay(host, &dir, rootless, on_overlay),
        namespaces::check_proc(host, &dir, rootless),
    ];
    probe::remove_probe_dir(&dir);
    // Remove the directories doctor made for the probes (only those, and only when empty).
    let mut d = Some(host.store.clone());
    while let Some(dir) = d.filter(|d| Some(d) != existing.as_ref()) {
        if fs::remove_dir(&dir).is_err() {
            break;
        }
        d = dir.parent().map(std::path::Path::to_path_buf);
    }
    out
}

/// The text report.
fn render_text(host: &Host, findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "kiln doctor: uid {} (`{}`) {}, store `{}`\n",
        host.uid,
        host.user_label(),
        namespaces::place_name(host.place),
        host.store.display()
    );
    for f in findings {
        let _ = writeln!(s, "{:<8}{:<10} {}", f.status.word(), f.check, f.message);
        if f.status >= Status::Info
            && let Some(fix) = f.fix.as_ref().and_then(|x| x.for_place(host.place))
        {
            let _ = writeln!(s, "{:<18} fix: {fix}", "");
        }
    }
    let count = |st| findings.iter().filter(|f| f.status == st).count();
    let (errors, warnings) = (count(Status::Error), count(Status::Warn));
    if errors > 0 {
        let _ = writeln!(
            s,
            "kiln cannot build here: {errors} error{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        );
    } else {
        let _ = writeln!(
            s,
            "kiln can build here ({warnings} warning{})",
            plural(warnings)
        );
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The JSON report: `{where, uid, user, store, rootless, ok, findings: [{check, status,
/// message, fix, fixes: {host, docker, kubernetes}}]}`; `fix` is the form for `where`.
fn render_json(host: &Host, findings: &[Finding]) -> serde_json::Value {
    let items: Vec<_> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "check": f.check,
                "status": f.status,
                "message": f.message,
                "fix": f.fix.as_ref().and_then(|x| x.for_place(host.place)),
                "fixes": f.fix.as_ref().map(|x| serde_json::json!({
                    "host": x.host, "docker": x.docker, "kubernetes": x.kubernetes,
                })),
            })
        })
        .collect();
    serde_json::json!({
        "where": host.place,
        "uid": host.uid,
        "user": host.user,
        "store": host.store,
        "rootless": rootless(host),
        "ok": !findings.iter().any(|f| f.status == Status::Error),
        "findings": items,
    })
}

#[cfg(test)]
mod tests;
