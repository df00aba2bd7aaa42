//! Host names as forward-proxy mode compares them: normalisation (lower case, no trailing dot,
//! no IPv6 brackets), validation, and the `intercept` / `allow_hosts` patterns (`api.openai.com`,
//! or `*.openai.azure.com` for any name under that domain).
//!
//! An `allow_hosts` entry also names its port ([`AllowHost`]): `pypi.org:8443`. A bare host
//! admits only the scheme's default port — 443 for a `CONNECT`, 80 for a plain-HTTP request — so
//! allowing `localhost` for one service never opens every port of the pod (the gateway's own
//! admin port included).

use std::net::IpAddr;

/// A name or address from `forward.intercept` / `forward.allow_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One host name or IP literal.
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (one or more labels before it, not
    /// `example.com` itself). Stored with its leading dot.
    Subdomains(String),
}

impl HostPattern {
    /// Parses one entry as written in the config.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let t = text.trim();
        if let Some(domain) = t.strip_prefix("*.") {
            let domain = normalize(domain)
                .filter(|d| !d.contains('*') && d.parse::<IpAddr>().is_err())
                .ok_or_else(|| format!("{t:?}: expected *.<domain name>"))?;
            if !domain.contains('.') {
                return Err(format!(
                    "{t:?}: a wildcard needs a domain with at least two labels (*.example.com)"
                ));
            }
            return Ok(HostPattern::Subdomains(format!(".{domain}")));
        }
        if t.contains('*') {
            return Err(format!(
                "{t:?}: the only wildcard allowed is a leading \"*.\" (a bare \"*\" would make the sidecar an open proxy)"
            ));
        }
        normalize(t)
            .map(HostPattern::Exact)
            .ok_or_else(|| format!("{t:?} is not a host name or IP address"))
    }

    /// Whether `host` (already [`normalize`]d) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Subdomains(s) => write!(f, "*{s}"),
        }
    }
}

/// The port a bare `allow_hosts` entry admits on a `CONNECT` tunnel.
pub const DEFAULT_CONNECT_PORT: u16 = 443;
/// The port a bare `allow_hosts` entry admits on a plain-HTTP (absolute-form) request.
pub const DEFAULT_HTTP_PORT: u16 = 80;

/// One `forward.allow_hosts` entry: `host`, `host:port`, `*.domain[:port]`, `[v6][:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowHost {
    pub pattern: HostPattern,
    /// `None`: the scheme's default port ([`DEFAULT_CONNECT_PORT`] / [`DEFAULT_HTTP_PORT`]).
    pub port: Option<u16>,
}

impl AllowHost {
    /// Parses one entry as written in the config.
    pub fn parse(text: &str) -> Result<AllowHost, String> {
        let t = text.trim();
        let (host, port) = split_port(t)?;
        Ok(AllowHost {
            pattern: HostPattern::parse(host)?,
            port,
        })
    }

    /// Whether a request to `host` (already [`normalize`]d) on `port` is admitted; a bare entry
    /// admits `default_port` only.
    pub fn admits(&self, host: &str, port: u16, default_port: u16) -> bool {
        port == self.port.unwrap_or(default_port) && self.pattern.matches(host)
    }
}

impl std::fmt::Display for AllowHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.pattern, self.port) {
            (HostPattern::Exact(h), Some(p)) if h.contains(':') => write!(f, "[{h}]:{p}"),
            (p, Some(port)) => write!(f, "{p}:{port}"),
            (p, None) => write!(f, "{p}"),
        }
    }
}

/// `host[:port]` → host text and port. A bracketed IPv6 address may carry a port; an unbracketed
/// one (two or more colons) never does.
fn split_port(t: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if t.starts_with('[') {
        match t.find(']') {
            Some(end) if end + 1 == t.len() => (t, None),
            Some(end) => match t[end + 1..].strip_prefix(':') {
                Some(port) => (&t[..=end], Some(port)),
                None => return Err(format!("{t:?}: expected [IPv6]:port")),
            },
            None => return Err(format!("{t:?} is not a host name or IP address")),
        }
    } else if t.matches(':').count() == 1 {
        let (h, p) = t.split_once(':').unwrap_or((t, ""));
        (h, Some(p))
    } else {
        (t, None)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("{t:?}: the port must be 1-65535")),
            }
        }
        Some(_) => return Err(format!("{t:?}: the port must be 1-65535")),
    };
    Ok((host, port))
}

/// The first pattern of `patterns` that matches `host`, with its index.
pub fn find<'a, T>(
    patterns: &'a [T],
    pattern: impl Fn(&T) -> &HostPattern,
    host: &str,
) -> Option<(usize, &'a T)> {
    patterns
        .iter()
        .enumerate()
        .find(|(_, p)| pattern(p).matches(host))
}

/// The canonical form of a host: lower case, without a trailing dot or IPv6 brackets; `None`
/// when it is neither a valid DNS name nor an IP literal.
pub fn normalize(host: &str) -> Option<String> {
    let h = host.strip_suffix('.').unwrap_or(host);
    let h = h
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(h);
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    is_dns_name(h).then(|| h.to_ascii_lowercase())
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1–63 bytes, 253 bytes at most, no
/// label starting or ending with `-`, and not all digits and dots (that would be a malformed
/// IPv4 address).
fn is_dns_name(h: &str) -> bool {
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let labels_ok = h.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    labels_ok && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_match() {
        let exact = HostPattern::parse("API.OpenAI.com.").unwrap();
        assert!(exact.matches("api.openai.com"));
        assert!(!exact.matches("xapi.openai.com"));
        let wild = HostPattern::parse("*.openai.azure.com").unwrap();
        assert!(wild.matches("my-res.openai.azure.com"));
        assert!(wild.matches("a.b.openai.azure.com"));
        assert!(!wild.matches("openai.azure.com"));
        assert!(!wild.matches("evilopenai.azure.com"));
        assert_eq!(wild.to_string(), "*.openai.azure.com");
        assert!(HostPattern::parse("127.0.0.1")
            .unwrap()
            .matches("127.0.0.1"));
        assert!(HostPattern::parse("[::1]").unwrap().matches("::1"));
        for bad in [
            "*",
            "*.com",
            "a.*.com",
            "",
            "exa mple.com",
            "-a.com",
            "*.1.2.3.4",
            "1.2.3",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_entries_carry_a_port_and_bare_ones_admit_the_default_only() {
        let bare = AllowHost::parse("localhost").unwrap();
        assert!(bare.admits("localhost", 443, DEFAULT_CONNECT_PORT));
        assert!(!bare.admits("localhost", 9090, DEFAULT_CONNECT_PORT));
        assert!(bare.admits("localhost", 80, DEFAULT_HTTP_PORT));
        assert!(!bare.admits("localhost", 443, DEFAULT_HTTP_PORT));
        let with_port = AllowHost::parse(" *.example.com:8443 ").unwrap();
        assert!(with_port.admits("a.example.com", 8443, DEFAULT_CONNECT_PORT));
        assert!(!with_port.admits("a.example.com", 443, DEFAULT_CONNECT_PORT));
        assert_eq!(with_port.to_string(), "*.example.com:8443");
        let v6 = AllowHost::parse("[::1]:8080").unwrap();
        assert!(v6.admits("::1", 8080, DEFAULT_HTTP_PORT));
        assert_eq!(v6.to_string(), "[::1]:8080");
        let v6_bare = AllowHost::parse("::1").unwrap();
        assert_eq!(v6_bare.port, None);
        assert_eq!(AllowHost::parse("[::1]").unwrap().port, None);
        assert_eq!(AllowHost::parse("127.0.0.1:1").unwrap().port, Some(1));
        for bad in [
            "a.com:",
            "a.com:0",
            "a.com:65536",
            "a.com:+1",
            "a.com:http",
            "[::1]8080",
            "[::1",
            "*:443",
            ":443",
        ] {
            assert!(AllowHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalize_lowercases_and_rejects_garbage() {
        assert_eq!(
            normalize("Api.OpenAI.com").as_deref(),
            Some("api.openai.com")
        );
        assert_eq!(normalize("[::1]").as_deref(), Some("::1"));
        assert_eq!(normalize("0:0::1").as_deref(), Some("::1"));
        assert!(normalize("a..b").is_none());
        assert!(normalize("a/b").is_none());
        assert!(normalize(&"a".repeat(64)).is_none());
    }
}
