//! Authentication: `WWW-Authenticate` challenges, Basic auth, and bearer tokens from the
//! registry's token server, one per set of scopes (`repository:NAME:pull`,
//! `repository:NAME:pull,push`), kept until they expire. Tokens and credentials live here
//! as [`Secret`]s only; the cache is keyed by host and scopes, never by a credential.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kiln_http::{Client, Method, Request};

use crate::credentials::{Credential, DockerCredentials};
use crate::error::RegistryError;
use crate::secret::Secret;

/// A challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        /// The token server.
        realm: String,
        /// The service to name to it.
        service: Option<String>,
    },
}

/// Parses the challenges of `WWW-Authenticate` values (RFC 7235: a scheme, then
/// `key=value` or `key="quoted value"` pairs; several challenges comma-separated).
pub(crate) fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        let mut rest = value.trim();
        while !rest.is_empty() {
            let (scheme, after) = rest.split_once(' ').unwrap_or((rest, ""));
            let (params, next) = parse_params(after);
            rest = next.trim_start_matches([',', ' ']);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if scheme.eq_ignore_ascii_case("basic") {
                out.push(Challenge::Basic);
            } else if scheme.eq_ignore_ascii_case("bearer")
                && let Some(realm) = get("realm")
            {
                out.push(Challenge::Bearer {
                    realm,
                    service: get("service"),
                });
            }
        }
    }
    out
}

/// `k=v, k="v", ...` up to the next challenge; the pairs and what follows.
fn parse_params(s: &str) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let Some(eq) = rest.find('=') else {
            return (params, rest);
        };
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains([' ', ',']) {
            // The next challenge's scheme.
            return (params, rest);
        }
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key.to_owned(), value));
        rest = next.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None => return (params, rest),
        }
    }
}

/// A host's credentials, once looked up.
#[derive(Default, Clone)]
enum Looked {
    /// Not looked up yet.
    #[default]
    Not,
    /// What Docker's config (or `kiln login`) gives; `None`: nothing.
    Found(Option<Credential>),
}

/// What kiln knows of one registry host's auth.
#[derive(Default)]
struct HostState {
    /// The challenge it sent last.
    challenge: Option<Challenge>,
    /// Tokens by scopes (space-joined, sorted), with their expiry.
    tokens: HashMap<String, (Secret, Instant)>,
    /// Its credentials, once looked up.
    credential: Looked,
}

/// The auth state of every host this process spoke to.
pub(crate) struct Auth {
    creds: DockerCredentials,
    hosts: Mutex<HashMap<String, HostState>>,
    /// Held while a token is fetched, so that the threads of a pull or push that need the
    /// same token at once ask for it once.
    fetching: Mutex<()>,
}

impl Auth {
    pub(crate) fn new(creds: DockerCredentials) -> Self {
        Self {
            creds,
            hosts: Mutex::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    pub(crate) fn credentials(&self) -> &DockerCredentials {
        &self.creds
    }

    fn with<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(hosts.entry(host.to_owned()).or_default())
    }

    /// Uses `credential` for `host` instead of what Docker's config says (for `kiln login`,
    /// before storing it).
    pub(crate) fn set_credential(&self, host: &str, credential: Credential) {
        self.with(host, |s| {
            s.credential = Looked::Found(Some(credential));
            s.tokens.clear();
        });
    }

    fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Looked::Found(c) = self.with(host, |s| s.credential.clone()) {
            return Ok(c);
        }
        let c = self.creds.get(host)?;
        self.with(host, |s| s.credential = Looked::Found(c.clone()));
        Ok(c)
    }

    /// Remembers the challenge of a 401 from `host`; whether there was one kiln can answer.
    pub(crate) fn learn(&self, host: &str, response: &kiln_http::Response) -> bool {
        let challenges = parse_challenges(response.headers_all("www-authenticate"));
        let pick = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        let found = pick.is_some();
        self.with(host, |s| {
            if pick.is_some() {
                s.challenge = pick;
            }
        });
        found
    }

    /// The `Authorization` value for a request to `host` needing `scopes`, when kiln knows
    /// how to authenticate there (a challenge was seen). Fetches a token when none is cached.
    pub(crate) fn header(
        &self,
        client: &Client,
        host: &str,
        scopes: &[String],
    ) -> Result<Option<Secret>, RegistryError> {
        let Some(challenge) = self.with(host, |s| s.challenge.clone()) else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic => Ok(match self.credential(host)? {
                Some(Credential::Basic { username, password }) => Some(Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()))
                ))),
                _ => None,
            }),
            Challenge::Bearer { realm, service } => {
                let mut sorted = scopes.to_vec();
                sorted.sort();
                sorted.dedup();
                let key = sorted.join(" ");
                let cached = || {
                    let now = Instant::now();
                    self.with(host, |s| {
                        s.tokens
                            .get(&key)
                            .filter(|(_, until)| *until > now)
                            .map(|(t, _)| Secret::new(format!("Bearer {}", t.expose())))
                    })
                };
                if let Some(t) = cached() {
                    return Ok(Some(t));
                }
                let _one_at_a_time = self
                    .fetching
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Another thread may have fetched it while this one waited.
                if let Some(t) = cached() {
                    return Ok(Some(t));
                }
                let now = Instant::now();
                let cred = self.credential(host)?;
                let (token, ttl) = fetch_token(
                    client,
                    host,
                    &realm,
                    service.as_deref(),
                    &sorted,
                    cred.as_ref(),
                )?;
                // A little early, so a token does not expire on its way.
                let until = now
                    + ttl
                        .saturating_sub(Duration::from_secs(10))
                        .max(Duration::from_secs(1));
                self.with(host, |s| s.tokens.insert(key, (token.clone(), until)));
                Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
            }
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Asks the token server `realm` for a token for `scopes`: a GET with Basic credentials (or
/// none, anonymously), or an `OAuth2` refresh-token POST for an identity token.
fn fetch_token(
    client: &Client,
    host: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    cred: Option<&Credential>,
) -> Result<(Secret, Duration), RegistryError> {
    let transport = |source| RegistryError::Transport {
        action: "get a token from the auth server of",
        registry: host.to_owned(),
        source,
    };
    let response = if let Some(Credential::IdentityToken { token, .. }) = cred {
        let mut form = format!(
            "grant_type=refresh_token&client_id=kiln&refresh_token={}",
            encode(token.expose())
        );
        if let Some(s) = service {
            let _ = write!(form, "&service={}", encode(s));
        }
        if !scopes.is_empty() {
            let _ = write!(form, "&scope={}", encode(&scopes.join(" ")));
        }
        let body = form.into_bytes();
        let req = Request::new(Method::Post, realm)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(&body);
        client.send(&req).map_err(transport)?
    } else {
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            let _ = write!(url, "{sep}service={}", encode(s));
            sep = '&';
        }
        for s in scopes {
            let _ = write!(url, "{sep}scope={}", encode(s));
            sep = '&';
        }
        let mut req = Request::new(Method::Get, &url);
        if let Some(Credential::Basic { username, password }) = cred {
            req = req.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose()))
                ),
            );
        }
        client.send(&req).map_err(transport)?
    };
    let status = response.status();
    if status != 200 {
        return Err(RegistryError::Status {
            action: "get a token for",
            registry: host.to_owned(),
            repository: scopes.join(" "),
            object: realm.to_owned(),
            status,
            message: None,
        });
    }
    let body = response.read_to_vec(1 << 20).map_err(transport)?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| RegistryError::Protocol {
            registry: host.to_owned(),
            repository: scopes.join(" "),
            reason: format!("the auth server `{realm}` did not answer with a JSON token"),
        })?;
    let token = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Protocol {
            registry: host.to_owned(),
            repository: scopes.join(" "),
            reason: format!("the auth server `{realm}` sent no token"),
        })?;
    let ttl = v
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .filter(|s| *s > 0)
        .unwrap_or(60);
    Ok((Secret::new(token), Duration::from_secs(ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let c = parse_challenges(
            [r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#]
                .into_iter(),
        );
        assert_eq!(
            c,
            [Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            }]
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="Registry Realm""#].into_iter()),
            [Challenge::Basic]
        );
        assert_eq!(
            parse_challenges(
                [r#"Basic realm="a, b", Bearer realm=http://t/x,service=s"#].into_iter()
            ),
            [
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://t/x".into(),
                    service: Some("s".into())
                }
            ]
        );
        assert!(parse_challenges(["Negotiate"].into_iter()).is_empty());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
