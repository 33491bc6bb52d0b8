//! Where a registry is reached: its endpoints (mirrors first for pulls, then the registry),
//! each with its scheme(s) and TLS settings from kiln's config and Docker's `certs.d`.

use std::path::{Path, PathBuf};

use kiln_http::{ClientCertFiles, HostTls};

use crate::config::{Config, normalize_host};

/// Docker Hub's API host.
pub(crate) const HUB_HOST: &str = "registry-1.docker.io";

/// How an endpoint is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schemes {
    /// TLS only.
    Https,
    /// Plain HTTP only (`http = true`).
    Http,
    /// TLS first, plain HTTP when TLS fails (loopback registries, as Docker does).
    HttpsThenHttp,
}

/// One host kiln can ask for a repository's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The registry as configs and credentials name it (`docker.io`, `127.0.0.1:5000`).
    pub name: String,
    /// The `host[:port]` contacted (`registry-1.docker.io` for `docker.io`).
    pub authority: String,
    /// A mirror's path inside `/v2/` (`proxy.docker.io/`), empty otherwise.
    pub prefix: String,
    /// Its schemes.
    pub schemes: Schemes,
    /// Whether this is a mirror of another registry.
    pub mirror: bool,
}

/// Whether `authority` (`host[:port]`) is a loopback address or `localhost`.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || authority == "::1"
}

/// The endpoint of the registry `name` itself.
pub(crate) fn registry_endpoint(config: &Config, name: &str) -> Endpoint {
    let name = normalize_host(name);
    let authority = if name == "docker.io" {
        HUB_HOST.to_owned()
    } else {
        name.clone()
    };
    Endpoint {
        schemes: schemes(config, &name),
        name,
        authority,
        prefix: String::new(),
        mirror: false,
    }
}

fn schemes(config: &Config, name: &str) -> Schemes {
    match config.registry(name).and_then(|c| c.http) {
        Some(true) => Schemes::Http,
        _ if is_loopback(name) => Schemes::HttpsThenHttp,
        _ => Schemes::Https,
    }
}

/// The endpoints to pull `registry`'s content from: its mirrors in order, then itself.
pub(crate) fn pull_endpoints(config: &Config, registry: &str) -> Vec<Endpoint> {
    let mut out = Vec::new();
    if let Some(c) = config.registry(registry) {
        for m in &c.mirrors {
            let m = m
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let (host, path) = m.split_once('/').unwrap_or((m, ""));
            let name = normalize_host(host);
            out.push(Endpoint {
                schemes: schemes(config, &name),
                authority: name.clone(),
                name,
                prefix: if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                },
                mirror: true,
            });
        }
    }
    out.push(registry_endpoint(config, registry));
    out
}

/// The TLS settings of `endpoint`: the config's `ca`, `keypair`, `insecure` and
/// `tlsconfigdir`, and Docker's `certs_d/<host:port>/` (`*.crt` CAs, `*.cert` + `*.key`
/// client certificates).
pub(crate) fn host_tls(config: &Config, certs_d: Option<&Path>, endpoint: &Endpoint) -> HostTls {
    let mut tls = HostTls::default();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(c) = config.registry(&endpoint.name) {
        tls.ca_files.extend(c.ca.iter().cloned());
        if let Some(k) = c.keypair.first() {
            tls.client_cert = Some(ClientCertFiles {
                cert: k.cert.clone(),
                key: k.key.clone(),
            });
        }
        tls.insecure = c.insecure == Some(true);
        dirs.extend(c.tlsconfigdir.iter().cloned());
    }
    if let Some(d) = certs_d {
        dirs.push(d.join(&endpoint.authority));
        if endpoint.authority != endpoint.name {
            dirs.push(d.join(&endpoint.name));
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        names.sort();
        for p in names {
            match p.extension().and_then(|e| e.to_str()) {
                Some("crt") => tls.ca_files.push(p),
                Some("cert") if tls.client_cert.is_none() => {
                    let key = p.with_extension("key");
                    if key.is_file() {
                        tls.client_cert = Some(ClientCertFiles { cert: p, key });
                    }
                }
                _ => {}
            }
        }
    }
    tls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_plain_http_capable() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1:5000", "example.com", "[fe80::1]:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn mirrors_come_first_then_the_registry() {
        let config = Config::parse(
            "[registry.\"docker.io\"]\nmirrors = [\"127.0.0.1:5000\", \"m.example/proxy.docker.io\"]\n[registry.\"m.example\"]\nhttp = true\n",
            Path::new("c"),
        )
        .unwrap();
        let e = pull_endpoints(&config, "docker.io");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].authority, "127.0.0.1:5000");
        assert_eq!(e[0].schemes, Schemes::HttpsThenHttp);
        assert_eq!(e[1].authority, "m.example");
        assert_eq!(e[1].prefix, "proxy.docker.io/");
        assert_eq!(e[1].schemes, Schemes::Http);
        assert_eq!(e[2].authority, HUB_HOST);
        assert_eq!(e[2].schemes, Schemes::Https);
        assert!(!e[2].mirror);
    }

    #[test]
    fn certs_d_gives_cas_and_client_certs() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        for f in ["ca.crt", "client.cert", "client.key"] {
            std::fs::write(host.join(f), "x").unwrap();
        }
        let e = registry_endpoint(&Config::default(), "reg.example:5000");
        let tls = host_tls(&Config::default(), Some(dir.path()), &e);
        assert_eq!(tls.ca_files, [host.join("ca.crt")]);
        assert_eq!(
            tls.client_cert,
            Some(ClientCertFiles {
                cert: host.join("client.cert"),
                key: host.join("client.key")
            })
        );
    }
}
