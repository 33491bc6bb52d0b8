//! Credentials as Docker keeps them: `config.json` in the Docker config directory
//! (`$DOCKER_CONFIG`, else `~/.docker`; the binary says which), with `auths` (base64
//! `user:password` in `auth`, or an `identitytoken`), `credsStore` (a helper for every
//! registry) and `credHelpers` (a helper per registry), helpers being `docker-credential-NAME`
//! programs on `PATH` spoken to with `get`, `store` and `erase`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::RegistryError;
use crate::secret::Secret;

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token), sent as Basic auth or to a
    /// token server.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An `OAuth2` refresh token (`identitytoken`), exchanged at the token server.
    IdentityToken {
        /// The user name, when known.
        username: String,
        /// The token.
        token: Secret,
    },
}

/// Docker's credential configuration in one directory.
#[derive(Debug, Clone)]
pub struct DockerCredentials {
    dir: Option<PathBuf>,
}

/// The key Docker files Docker Hub's credentials under.
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// The `config.json` key of `registry` (`docker.io` is Docker Hub's v1 URL, as Docker has
/// it; every other registry its host).
pub(crate) fn server_key(registry: &str) -> String {
    match crate::config::normalize_host(registry).as_str() {
        "docker.io" => HUB_KEY.to_owned(),
        h => h.to_owned(),
    }
}

/// A `config.json` key reduced to its host, as Docker compares them
/// (`https://host/v1/` and `host` are the same registry).
fn key_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    crate::config::normalize_host(k.split('/').next().unwrap_or(k))
}

impl DockerCredentials {
    /// The configuration in `dir` (`config.json` in it); `None`: no credentials at all.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("config.json"))
    }

    fn read(&self) -> Result<Map<String, Value>, RegistryError> {
        let Some(path) = self.file() else {
            return Ok(Map::new());
        };
        match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Err(bad_file(&path, "is not a JSON object")),
                Err(e) => Err(bad_file(&path, &format!("is not JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(bad_file(&path, &format!("cannot be read: {e}"))),
        }
    }

    /// The helper that keeps `registry`'s credentials, when one does.
    fn helper(config: &Map<String, Value>, registry: &str) -> Option<String> {
        let host = crate::config::normalize_host(registry);
        if let Some(Value::Object(helpers)) = config.get("credHelpers") {
            for (k, v) in helpers {
                if key_host(k) == host
                    && let Some(name) = v.as_str()
                {
                    return Some(name.to_owned());
                }
            }
        }
        config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The credentials for `registry`, when there are any.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let config = self.read()?;
        if let Some(helper) = Self::helper(&config, registry) {
            return helper_get(&helper, registry);
        }
        let host = crate::config::normalize_host(registry);
        let Some(Value::Object(auths)) = config.get("auths") else {
            return Ok(None);
        };
        let Some((_, Value::Object(entry))) = auths.iter().find(|(k, _)| key_host(k) == host)
        else {
            return Ok(None);
        };
        let s = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
        let (mut username, mut password) = (s("username").to_owned(), s("password").to_owned());
        if !s("auth").is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(s("auth").trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| RegistryError::Credentials {
                    registry: registry.to_owned(),
                    reason: "the `auth` entry in config.json is not base64 of `user:password`"
                        .to_owned(),
                    source: None,
                })?;
            let (u, p) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            u.clone_into(&mut username);
            p.clone_into(&mut password);
        }
        if !s("identitytoken").is_empty() {
            return Ok(Some(Credential::IdentityToken {
                username,
                token: Secret::new(s("identitytoken")),
            }));
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential::Basic {
            username,
            password: Secret::new(password),
        }))
    }

    /// Stores credentials for `registry` as Docker does: in its helper when one is set, else
    /// base64 in `auths` (the file is written 0600, by atomic rename, keeping its other
    /// settings).
    pub fn store(&self, registry: &str, cred: &Credential) -> Result<(), RegistryError> {
        let mut config = self.read()?;
        if let Some(helper) = Self::helper(&config, registry) {
            let (user, secret) = match cred {
                Credential::Basic { username, password } => (username.as_str(), password),
                Credential::IdentityToken { token, .. } => ("<token>", token),
            };
            let input = serde_json::json!({
                "ServerURL": server_key(registry),
                "Username": user,
                "Secret": secret.expose(),
            });
            helper_call(&helper, "store", registry, input.to_string().as_bytes())?;
            return Ok(());
        }
        let path = self.file().ok_or_else(|| RegistryError::Credentials {
            registry: registry.to_owned(),
            reason: "no Docker config directory to keep them in".to_owned(),
            source: None,
        })?;
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let auths = auths.as_object_mut().expect("made an object above");
        let host = crate::config::normalize_host(registry);
        auths.retain(|k, _| key_host(k) != host);
        let entry = match cred {
            Credential::Basic { username, password } => serde_json::json!({
                "auth": base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose())),
            }),
            Credential::IdentityToken { username, token } => serde_json::json!({
                "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:")),
                "identitytoken": token.expose(),
            }),
        };
        auths.insert(server_key(registry), entry);
        write_private(&path, &Value::Object(config))
    }

    /// Forgets `registry`'s credentials; whether there were any.
    pub fn erase(&self, registry: &str) -> Result<bool, RegistryError> {
        let mut config = self.read()?;
        if let Some(helper) = Self::helper(&config, registry) {
            return match helper_call(&helper, "erase", registry, server_key(registry).as_bytes()) {
                Ok(_) => Ok(true),
                Err(RegistryError::Credentials { reason, .. }) if is_not_found(&reason) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            };
        }
        let Some(path) = self.file() else {
            return Ok(false);
        };
        let host = crate::config::normalize_host(registry);
        let Some(Value::Object(auths)) = config.get_mut("auths") else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != host);
        if auths.len() == before {
            return Ok(false);
        }
        write_private(&path, &Value::Object(config))?;
        Ok(true)
    }
}

fn bad_file(path: &Path, what: &str) -> RegistryError {
    RegistryError::File {
        path: path.to_owned(),
        reason: what.to_owned(),
    }
}

fn is_not_found(message: &str) -> bool {
    message.contains("credentials not found")
}

/// `docker-credential-NAME get`.
fn helper_get(helper: &str, registry: &str) -> Result<Option<Credential>, RegistryError> {
    let out = match helper_call(helper, "get", registry, server_key(registry).as_bytes()) {
        Ok(out) => out,
        Err(RegistryError::Credentials { reason, .. }) if is_not_found(&reason) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|_| RegistryError::Credentials {
        registry: registry.to_owned(),
        reason: format!("`docker-credential-{helper} get` did not print JSON"),
        source: None,
    })?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let (user, secret) = (s("Username"), s("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if user == "<token>" {
        Credential::IdentityToken {
            username: String::new(),
            token: Secret::new(secret),
        }
    } else {
        Credential::Basic {
            username: user.to_owned(),
            password: Secret::new(secret),
        }
    }))
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin; its stdout. A failure's
/// reason is the helper's first line of output (helpers print no secret there).
fn helper_call(
    helper: &str,
    action: &str,
    registry: &str,
    input: &[u8],
) -> Result<Vec<u8>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String, source: Option<std::io::Error>| RegistryError::Credentials {
        registry: registry.to_owned(),
        reason,
        source: source.map(|e| Box::new(e) as _),
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run `{program}`"), Some(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading says why on its output.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot run `{program}`"), Some(e)))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let said = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .lines()
    .next()
    .unwrap_or_default()
    .chars()
    .take(200)
    .collect::<String>();
    Err(fail(
        format!("`{program} {action}` failed: {}", said.trim()),
        None,
    ))
}

/// Writes `value` to `path` readable by its owner only, by way of a temporary file.
fn write_private(path: &Path, value: &Value) -> Result<(), RegistryError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(kiln_io::io_err("create", dir))?;
    let tmp = dir.join(format!(".config.json.kiln-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| bad_file(path, &e.to_string()))?;
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        kiln_io::io_err("write", path)(e).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_are_read_stored_and_erased_as_docker_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "reg:5000":{"identitytoken":"refresh"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let c = DockerCredentials::new(Some(dir.path().to_owned()));
        assert_eq!(
            c.get("docker.io").unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: Secret::new("pa:ss")
            })
        );
        assert!(matches!(
            c.get("reg:5000").unwrap(),
            Some(Credential::IdentityToken { token, .. }) if token.expose() == "refresh"
        ));
        assert_eq!(c.get("other").unwrap(), None);
        c.store(
            "127.0.0.1:5000",
            &Credential::Basic {
                username: "u".into(),
                password: Secret::new("p"),
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(text.contains("\"psFormat\""), "other settings are kept");
        assert!(text.contains("\"auth\": \"dTpw\""), "{text}");
        assert!(c.erase("127.0.0.1:5000").unwrap());
        assert!(!c.erase("127.0.0.1:5000").unwrap());
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), None);
    }
}
