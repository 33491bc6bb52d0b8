//! kiln's config file, in the format of BuildKit's `buildkitd.toml` so that users can paste
//! their registry sections:
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["127.0.0.1:5000", "mirror.example.com/proxy.docker.io"]
//!
//! [registry."registry.example.com:5000"]
//! http = true                  # plain HTTP
//! insecure = true              # TLS without verifying the certificate
//! ca = ["/etc/kiln/ca.pem"]    # CAs trusted besides the system's
//! tlsconfigdir = ["/etc/kiln/certs.d/registry.example.com"]
//!
//! [[registry."registry.example.com:5000".keypair]]
//! key = "/etc/kiln/client.key"
//! cert = "/etc/kiln/client.pem"
//! ```
//!
//! A key kiln does not know inside a `registry` section is an error naming the key and its
//! line. The other top-level tables of a `buildkitd.toml` (`worker`, `grpc`, `debug` ...) are
//! about BuildKit's daemon: they are accepted and ignored, so a whole file can be pasted;
//! anything else at the top is an error too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the kiln config `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key or value kiln does not take.
    #[error("`{}` line {line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong (with the key's name for unknown keys).
        message: String,
    },
}

/// The settings of one registry host (`[registry."HOST"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Mirrors tried in order for pulls before the registry itself: `host[:port][/path]`.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP (`http = true`).
    #[serde(default)]
    pub http: Option<bool>,
    /// TLS without verifying the certificate.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// CA bundles trusted besides the system's.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// Client certificates.
    #[serde(default)]
    pub keypair: Vec<KeyPair>,
    /// Directories in Docker's `certs.d/HOST` format (`*.crt`, `*.cert` + `*.key`).
    #[serde(default)]
    pub tlsconfigdir: Vec<PathBuf>,
}

/// A client certificate and key (`[[registry."HOST".keypair]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// The private key, PEM.
    pub key: PathBuf,
    /// The certificate, PEM.
    pub cert: PathBuf,
}

/// kiln's config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The `[registry."HOST"]` sections, by host (`docker.io`, `host:port`).
    pub registries: BTreeMap<String, RegistryConfig>,
}

/// The file as TOML sees it: the registry sections, and BuildKit's daemon settings ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // BuildKit's daemon settings are read to be ignored.
struct File {
    #[serde(default)]
    registry: BTreeMap<String, RegistryConfig>,
    // BuildKit daemon settings: accepted so that a whole buildkitd.toml can be pasted.
    #[serde(default)]
    debug: Option<toml::Value>,
    #[serde(default)]
    trace: Option<toml::Value>,
    #[serde(default)]
    root: Option<toml::Value>,
    #[serde(default, rename = "insecure-entitlements")]
    insecure_entitlements: Option<toml::Value>,
    #[serde(default)]
    entitlements: Option<toml::Value>,
    #[serde(default)]
    grpc: Option<toml::Value>,
    #[serde(default)]
    otel: Option<toml::Value>,
    #[serde(default)]
    worker: Option<toml::Value>,
    #[serde(default)]
    history: Option<toml::Value>,
    #[serde(default)]
    frontend: Option<toml::Value>,
    #[serde(default)]
    system: Option<toml::Value>,
    #[serde(default)]
    dns: Option<toml::Value>,
    #[serde(default)]
    log: Option<toml::Value>,
    #[serde(default)]
    cdi: Option<toml::Value>,
}

impl Config {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        let registries = file
            .registry
            .into_iter()
            .map(|(host, c)| (normalize_host(&host), c))
            .collect();
        Ok(Self { registries })
    }

    /// The section of `host`, when there is one (`docker.io` also answers to
    /// `index.docker.io` and `registry-1.docker.io`).
    pub fn registry(&self, host: &str) -> Option<&RegistryConfig> {
        self.registries.get(&normalize_host(host))
    }
}

/// A registry host as config sections name it: lowercase, `docker.io` for Docker Hub.
pub(crate) fn normalize_host(host: &str) -> String {
    let h = host
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_buildkit_registry_sections() {
        let text = r#"
debug = true
[worker.oci]
  max-parallelism = 4

[registry."docker.io"]
  mirrors = ["127.0.0.1:5000", "mirror.example.com/proxy.docker.io"]

[registry."reg.example.com:5000"]
  http = true
  insecure = true
  ca = ["/etc/ca.pem"]
  [[registry."reg.example.com:5000".keypair]]
    key = "/k.pem"
    cert = "/c.pem"
"#;
        let c = Config::parse(text, Path::new("config.toml")).unwrap();
        let hub = c.registry("registry-1.docker.io").unwrap();
        assert_eq!(
            hub.mirrors,
            ["127.0.0.1:5000", "mirror.example.com/proxy.docker.io"]
        );
        let r = c.registry("reg.example.com:5000").unwrap();
        assert_eq!(r.http, Some(true));
        assert_eq!(r.insecure, Some(true));
        assert_eq!(r.ca, [PathBuf::from("/etc/ca.pem")]);
        assert_eq!(
            r.keypair,
            [KeyPair {
                key: "/k.pem".into(),
                cert: "/c.pem".into()
            }]
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = "[registry.\"docker.io\"]\nmirrors = []\nmirror = [\"x\"]\n";
        let e = Config::parse(text, Path::new("k.toml")).unwrap_err();
        let ConfigError::Invalid { line, message, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 3);
        assert!(message.contains("`mirror`"), "{message}");
        let e = Config::parse("debug = true\nregistries = 1\n", Path::new("k.toml")).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(e.to_string().contains("registries"), "{e}");
        let e = Config::parse(
            "[registry.\"a\"]\n[[registry.\"a\".keypair]]\nkey = \"k\"\ncert = \"c\"\npass = \"x\"\n",
            Path::new("k.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 5"), "{e}");
    }
}
