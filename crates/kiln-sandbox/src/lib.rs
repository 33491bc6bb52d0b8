//! Runs one process isolated from the host, over a root filesystem assembled from directories.
//!
//! A step is described by a [`Spec`]: an overlay of read-only lower dirs under a fresh upper dir
//! (or, when overlayfs cannot be used, one plain directory), the process (arguments, env,
//! working directory, `USER`), the hostname and the network mode. [`Launcher::spawn`]
//! re-executes the calling binary as an init ([`init`]) that unshares the mount, pid, ipc and
//! uts namespaces (and net for [`Network::None`]), mounts the rootfs with `/proc`, a minimal
//! `/dev`, `/sys`, bind-mounted copies of `/etc/hosts` and `/etc/resolv.conf` and the spec's
//! extra [`MountSpec`]s ([`mounts`]: binds, overlays, tmpfs, files on the private `/dev`), pivots
//! into it, resolves `USER` from the image's own `/etc/passwd` and `/etc/group` ([`user`]), and
//! executes the process as pid 1 of a fresh pid namespace; the step's exit code, stdout and stderr come
//! back to the caller, and when it ends every process and mount of it is gone. Kernel calls go
//! through the [`sys::Syscall`] trait, recorded by `fake::RecordingSyscall` in tests (built
//! for this crate's tests and with the `fake` feature, never in a release of kiln).
//!
//! Rootless, [`userns::enter`] first puts the whole kiln process in a user namespace of its
//! own in which the caller is root; the setup then binds from the host what such a namespace
//! cannot make (device nodes, `/sys` for the host's network, a `/proc` a container masks).
//!
//! The crate deliberately knows nothing of layers, tar, whiteouts as a format, images or
//! stores: it is given directories and leaves the upper dir (or the plain directory) holding
//! the step's changes for someone else to diff.

#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod init;
pub mod mounts;
pub mod pty;
pub mod run;
pub mod setup;
pub mod spec;
pub mod sys;
pub mod user;
pub mod userns;
pub mod view;

pub use run::{Launcher, Running, SandboxError, Stopper, overlay_available, write_etc_files};
pub use setup::SetupError;
pub use spec::{FileContent, MountKind, MountSpec, Network, Process, Rootfs, Spec};
pub use user::{User, UserError};
pub use view::mount_private_view;
