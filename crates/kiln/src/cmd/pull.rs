//! `kiln pull [--platform P] REF`: an image from its registry (or a mirror) into the store
//! (its blobs; layers are unpacked when first used); prints the digest the reference resolved
//! to. Also where every command gets its
//! [`Registries`]: kiln's config file, Docker's credentials and `certs.d`, the proxies.

use std::path::PathBuf;
use std::process::ExitCode;

use kiln_oci::{Reference, Store};
use kiln_registry::{PullOptions, Registries, RegistryError, RegistryOptions};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: `name[:tag]`, `name@sha256:...`, `host[:port]/name:tag`.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
    /// The platform to pull from a multi-platform image; the host's by default.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print nothing but the digest.
    #[arg(short, long)]
    pub quiet: bool,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    // The blobs only, as skopeo does: the layers are unpacked when first used (`kiln run`, a
    // build step on the image), and not at all when nothing uses their files.
    let mut opts = PullOptions {
        unpack: false,
        ..PullOptions::default()
    };
    if let Some(p) = &args.platform {
        opts.platform = platform(p)?;
    }
    let store = Store::open(&globals.root)?;
    let registries = registries(globals)?;
    let pulled = registries
        .pull(
            &store,
            &reference,
            &opts,
            &BlobLines {
                verb: "pull",
                quiet: args.quiet,
            },
        )
        .map_err(hinted)?;
    if !args.quiet {
        eprintln!(
            "pulled {} from {}: {} blobs fetched ({} bytes), {} already present",
            pulled.reference.familiar(),
            pulled.registry,
            pulled.fetched,
            pulled.fetched_bytes,
            pulled.present
        );
    }
    outln!("{}", pulled.digest)?;
    Ok(ExitCode::SUCCESS)
}

/// `--platform` as the registry client takes it.
pub(crate) fn platform(p: &str) -> anyhow::Result<kiln_oci::model::Platform> {
    let parsed = kiln_frontend::Platform::parse(p).map_err(|e| {
        anyhow::anyhow!("invalid `--platform {p}`: {e}\nhint: write e.g. `--platform linux/amd64`")
    })?;
    Ok(kiln_oci::model::Platform {
        architecture: parsed.architecture,
        os: parsed.os,
        variant: (!parsed.variant.is_empty()).then_some(parsed.variant),
        extra: std::collections::BTreeMap::new(),
    })
}

/// kiln's config file: `--config FILE`, else `$XDG_CONFIG_HOME/kiln/config.toml`
/// (`~/.config/kiln/config.toml`), or `/etc/kiln/config.toml` for root; a default file that
/// does not exist is an empty config.
fn config_path(globals: &Globals) -> (PathBuf, bool) {
    if let Some(c) = &globals.config {
        return (c.clone(), true);
    }
    if crate::is_root() && !globals.rootless {
        return (PathBuf::from("/etc/kiln/config.toml"), false);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .unwrap_or_else(|| PathBuf::from("/etc"));
    (base.join("kiln/config.toml"), false)
}

/// The registries of this command, with the environment's settings: kiln's config file,
/// Docker's config directory (`DOCKER_CONFIG`, else `~/.docker`) for credentials,
/// `/etc/docker/certs.d`, the proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`) and the CA
/// bundle `SSL_CERT_FILE` names.
pub(crate) fn registries(globals: &Globals) -> anyhow::Result<Registries> {
    let (path, given) = config_path(globals);
    let config = if given || path.is_file() {
        kiln_registry::Config::read(&path)?
    } else {
        kiln_registry::Config::default()
    };
    let docker_config_dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".docker"))
        });
    let mut http = kiln_http::ClientOptions {
        proxies: kiln_http::Proxies::from_vars(|k| std::env::var(k).ok()),
        ..kiln_http::ClientOptions::default()
    };
    if let Some(ca) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        http.ca_file = ca.into();
    }
    Registries::new(RegistryOptions {
        config,
        docker_config_dir,
        http,
        ..RegistryOptions::default()
    })
    .map_err(hinted)
}

/// A registry error as one message: what failed, its causes, and what to do.
#[derive(Debug)]
pub(crate) struct Hinted(String);

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Hinted {}

/// `e` with its causes on one line and its hint after.
#[allow(clippy::needless_pass_by_value)] // `map_err(hinted)` hands it over.
pub(crate) fn hinted(e: RegistryError) -> anyhow::Error {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    if let Some(h) = e.hint() {
        s.push_str("\nhint: ");
        s.push_str(&h);
    }
    Hinted(s).into()
}

/// A pull's or push's progress on stderr: a line per blob when it is done (what moved, and
/// how big), so a log shows which layers came from where; nothing when `quiet`.
pub(crate) struct BlobLines {
    /// `pull` or `push`: how the lines read.
    pub(crate) verb: &'static str,
    pub(crate) quiet: bool,
}

impl kiln_registry::Progress for BlobLines {
    fn blob_finished(
        &self,
        blob: &kiln_oci::model::Descriptor,
        outcome: kiln_registry::BlobOutcome,
    ) {
        use kiln_registry::BlobOutcome;
        if self.quiet {
            return;
        }
        let what = match outcome {
            BlobOutcome::Present if self.verb == "push" => "already in the registry",
            BlobOutcome::Present => "already in the store",
            BlobOutcome::Fetched => "fetched",
            BlobOutcome::Uploaded => "uploaded",
            BlobOutcome::Mounted => "mounted from another repository",
            BlobOutcome::Foreign => "foreign, left where its URLs say",
        };
        let hex = blob.digest.to_string();
        let short = hex.get(..19).unwrap_or(&hex);
        eprintln!(
            "{} {short} {what} ({})",
            self.verb,
            crate::cmd::images::human_size(blob.size)
        );
    }
}
