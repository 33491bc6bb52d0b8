//! Proxies as Docker and BuildKit read them.

/// Proxies, as Docker and BuildKit read them from the environment: `HTTP_PROXY` for
/// `http://`, `HTTPS_PROXY` for `https://`, `ALL_PROXY` for both when the other is not set,
/// lowercase names too (they win, as in Go's `httpproxy`), and `NO_PROXY`: hosts reached
/// directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// The proxy for `http://` URLs.
    pub http: Option<String>,
    /// The proxy for `https://` URLs.
    pub https: Option<String>,
    /// `NO_PROXY` entries: `*`, a host or IP, a domain (`example.com` or `.example.com`:
    /// itself and every name below it), each optionally with `:port`.
    pub no_proxy: Vec<String>,
}

impl Proxies {
    /// The settings from variables looked up with `var` (the binary passes the process
    /// environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            var(&name.to_ascii_lowercase())
                .or_else(|| var(name))
                .filter(|v| !v.is_empty())
        };
        let all = get("ALL_PROXY");
        Self {
            http: get("HTTP_PROXY").or_else(|| all.clone()),
            https: get("HTTPS_PROXY").or(all),
            no_proxy: get("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether `host` (`port`) is reached without a proxy.
    pub fn bypasses(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, p.parse::<u16>().ok()),
                _ => (entry.as_str(), None),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let domain = name.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Proxies {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::from_vars(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn proxies_are_read_as_docker_reads_them() {
        let p = vars(&[
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:1"),
            ("ALL_PROXY", "http://all:3"),
            ("NO_PROXY", "localhost, .internal.example,10.1.2.3,reg:5000"),
        ]);
        assert_eq!(p.http.as_deref(), Some("http://lower:1"), "lowercase wins");
        assert_eq!(
            p.https.as_deref(),
            Some("http://all:3"),
            "ALL_PROXY fills in"
        );
        assert!(p.bypasses("localhost", 80));
        assert!(p.bypasses("a.internal.example", 443));
        assert!(p.bypasses("internal.example", 443));
        assert!(!p.bypasses("example", 443));
        assert!(p.bypasses("10.1.2.3", 80));
        assert!(p.bypasses("reg", 5000));
        assert!(
            !p.bypasses("reg", 443),
            "a port entry only matches its port"
        );
        assert!(vars(&[("no_proxy", "*")]).bypasses("anything", 1));
        assert_eq!(vars(&[("HTTPS_PROXY", "")]).https, None, "empty is unset");
    }
}
