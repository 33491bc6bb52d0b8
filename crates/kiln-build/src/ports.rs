//! EXPOSE port specs, as BuildKit's `parsePorts`: `80`, `80/udp`, `8000-8002/tcp`; an IP or
//! host part (`1.2.3.4:80:80`) is accepted and ignored (BuildKit lints it).

/// An EXPOSE spec that is not a port, in BuildKit's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port: {spec:?}: {problem}")]
pub struct PortError {
    /// The spec as written.
    pub spec: String,
    /// What is wrong with it.
    pub problem: PortProblem,
}

/// What is wrong with a port spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortProblem {
    /// Nothing before `/proto`.
    #[error("no port specified")]
    NoPort,
    /// Not tcp, udp or sctp.
    #[error("invalid proto: {0}")]
    Proto(String),
    /// Not a port or range up to 65535.
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    /// Not a port or range up to 65535.
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    /// A host range of another length than the container range.
    #[error("invalid ranges specified for container and host Ports: {port} and {host}")]
    Ranges {
        /// The container port range.
        port: String,
        /// The host port range.
        host: String,
    },
}

/// Expand port specs into `port/proto` keys (`80/tcp`), in order.
pub(crate) fn parse_ports(specs: &[String]) -> Result<Vec<String>, PortError> {
    let mut out = Vec::new();
    for raw in specs {
        out.extend(parse_port(raw).map_err(|problem| PortError {
            spec: raw.clone(),
            problem,
        })?);
    }
    Ok(out)
}

fn parse_port(raw: &str) -> Result<Vec<String>, PortProblem> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (host_port, container) = match parts.as_slice() {
        [c] => ("", *c),
        [h, c] => (*h, *c),
        [_ip, h, c] => (*h, *c),
        _ => {
            // IPv6 addresses with colons: the container port is the last part.
            let n = parts.len();
            (parts[n - 2], parts[n - 1])
        }
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(PortProblem::NoPort);
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "" | "tcp" => "tcp",
        "udp" => "udp",
        "sctp" => "sctp",
        _ => return Err(PortProblem::Proto(proto.to_owned())),
    };
    let (start, end) = range(port).ok_or_else(|| PortProblem::ContainerPort(port.to_owned()))?;
    if !host_port.is_empty() {
        let (hs, he) =
            range(host_port).ok_or_else(|| PortProblem::HostPort(host_port.to_owned()))?;
        if end - start != he - hs && end != start {
            return Err(PortProblem::Ranges {
                port: port.to_owned(),
                host: host_port.to_owned(),
            });
        }
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-').map_or((s, None), |(a, b)| (a, Some(b)));
    let start = number(a)?;
    match b {
        None => Some((start, start)),
        Some(b) if b == a => Some((start, start)),
        Some(b) => Some((start, number(b)?)).filter(|(s, e)| e >= s),
    }
}

fn number(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|p| *p <= 65535)
}

#[cfg(test)]
mod tests {
    use super::parse_ports;

    fn p(s: &[&str]) -> Result<Vec<String>, String> {
        parse_ports(&s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ports() {
        assert_eq!(
            p(&["80", "53/UDP", "8000-8002"]).unwrap(),
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(p(&["127.0.0.1:8080:80/tcp"]).unwrap(), ["80/tcp"]);
        assert!(p(&["80/icmp"]).unwrap_err().contains("invalid proto: icmp"));
        assert!(
            p(&["70000"])
                .unwrap_err()
                .contains("invalid containerPort: 70000")
        );
        assert!(p(&["90-80"]).is_err());
        assert!(p(&["/tcp"]).unwrap_err().contains("no port specified"));
    }
}
