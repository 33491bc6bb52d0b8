//! `ExposeInvalidFormat`: `EXPOSE 127.0.0.1:80:80` or `EXPOSE 8080:80`.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags an `EXPOSE` port written with an IP address or a host port, as `docker run -p`
    /// takes them.
    ///
    /// ## Why is this bad?
    /// EXPOSE only records which container ports the image listens on; where they are
    /// published is decided at run time. The address and host port are dropped, and BuildKit
    /// has announced that they will become an error.
    ///
    /// ## Example
    /// ```dockerfile
    /// EXPOSE 127.0.0.1:8080:80
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// EXPOSE 80
    /// ```
    name: "ExposeInvalidFormat",
    description: "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
    url: Some("https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/"),
    experimental: false,
}

/// The parts of a `[ip:][host-port:]port[/proto]` word, as BuildKit's `splitParts` and
/// `splitProtoPort` cut it.
pub(crate) struct PortParts<'a> {
    pub(crate) ip: &'a str,
    pub(crate) host_port: &'a str,
    pub(crate) proto: &'a str,
}

/// Cut an EXPOSE word; `None` when BuildKit would reject it (no port, unknown protocol), which
/// the build reports.
pub(crate) fn split_port(raw: &str) -> Option<PortParts<'_>> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host_port, container) = match n {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        _ => {
            // Everything before the last two parts is the address (`[::1]:80:80`).
            let ip_len = parts[..n - 2].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
            (&raw[..ip_len], parts[n - 2], parts[n - 1])
        }
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() || !matches!(proto.to_lowercase().as_str(), "" | "tcp" | "udp" | "sctp") {
        return None;
    }
    Some(PortParts {
        ip,
        host_port,
        proto,
    })
}

/// Check one expanded EXPOSE word.
pub(crate) fn check(sink: &mut Sink, config: &CheckConfig, port: &str, span: TextRange) {
    if let Some(parts) = split_port(port)
        && (!parts.ip.is_empty() || !parts.host_port.is_empty())
    {
        sink.warn(
            config,
            &RULE,
            span,
            format!(
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::split_port;

    #[test]
    fn cuts_like_buildkit() {
        let p = split_port("[::1]:8080:80/udp").unwrap();
        assert_eq!((p.ip, p.host_port, p.proto), ("[::1]", "8080", "udp"));
        let p = split_port("127.0.0.1:80:80").unwrap();
        assert_eq!((p.ip, p.host_port, p.proto), ("127.0.0.1", "80", ""));
        let p = split_port("5000:5000").unwrap();
        assert_eq!((p.ip, p.host_port), ("", "5000"));
        assert!(split_port("80/quic").is_none());
        assert!(split_port("/tcp").is_none());
    }
}
