//! Read-only views of a stage's merged filesystem, for COPY: its destination checks and
//! `--chown` lookups, and `COPY --from` sources.
//!
//! With two or more layers the view is an overlay mount of their snapshots, made in a thread
//! that first unshares its mount namespace: the mount exists for that thread only, the host
//! never sees it, and it vanishes when the thread ends, even if kiln is killed. Without
//! overlayfs (not root, or no kernel support), the layers are merged into a scratch copy.

use std::path::{Path, PathBuf};

use crate::error::StepError;

/// Run `f` on a directory showing `lower` (snapshot dirs, topmost first) merged, read-only.
/// `scratch` is an empty directory on the store's filesystem that `f` may not outlive.
pub fn with_merged<R: Send>(
    lower: &[PathBuf],
    scratch: &Path,
    overlay: bool,
    f: impl FnOnce(&Path) -> R + Send,
) -> Result<R, StepError> {
    match lower {
        [] => {
            let empty = scratch.join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| StepError::io("create", &empty, e))?;
            Ok(f(&empty))
        }
        [only] => Ok(f(only)),
        _ if overlay => std::thread::scope(|s| {
            s.spawn(|| overlay_view(lower, scratch, f))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
        _ => {
            let merged = scratch.join("merged");
            kiln_layer::overlay::copy_merged(lower, &merged).map_err(|source| {
                StepError::Merge {
                    purpose: "for a read-only view",
                    source: Box::new(source),
                }
            })?;
            Ok(f(&merged))
        }
    }
}

/// In the calling thread: a private mount namespace with `lower` mounted read-only.
fn overlay_view<R>(
    lower: &[PathBuf],
    scratch: &Path,
    f: impl FnOnce(&Path) -> R,
) -> Result<R, StepError> {
    use nix::mount::{MsFlags, mount};
    let mnt = scratch.join("view");
    std::fs::create_dir_all(&mnt).map_err(|e| StepError::io("create", &mnt, e))?;
    let fail = |action: &'static str, source: nix::Error| StepError::View { action, source };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("unshare the mount namespace", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| fail("make mounts private", e))?;
    // Absolute lower dirs when they fit in the one page mount options get; otherwise relative
    // to their common parent, which this thread (alone, after unsharing) makes its working
    // directory. `f` gets absolute paths either way.
    let absolute = format!(
        "lowerdir={}",
        lower
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    let base = lower[0]
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let options = match &base {
        Some(b) if absolute.len() > 4000 && lower.iter().all(|l| l.starts_with(b)) => {
            std::env::set_current_dir(b).map_err(|e| StepError::io("enter", b, e))?;
            let rel: Vec<String> = lower
                .iter()
                .map(|l| l.strip_prefix(b).unwrap_or(l).display().to_string())
                .collect();
            format!("lowerdir={}", rel.join(":"))
        }
        _ => absolute,
    };
    mount(
        Some("overlay"),
        &mnt,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    )
    .map_err(|e| fail("mount the overlay", e))?;
    Ok(f(&mnt))
}
