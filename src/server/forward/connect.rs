//! The `CONNECT` request head (RFC 9110 §9.3.6): strict and bounded. The request line must be
//! `CONNECT host:port HTTP/1.x` with an authority-form target (a DNS name, an IPv4 address or a
//! bracketed IPv6 address, and an explicit port); the head ends within [`MAX_HEAD`] bytes and
//! [`MAX_HEADERS`] header lines. Anything else is an error the listener answers with 400.

use std::fmt;
use std::net::Ipv6Addr;

use super::hosts;

/// Largest `CONNECT` head accepted (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header lines accepted in a `CONNECT` head.
pub const MAX_HEADERS: usize = 32;

/// Where a `CONNECT` asks to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Normalised: lower case, no trailing dot, IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a head is refused. Messages never echo the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("the CONNECT request head exceeds {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed CONNECT request: {0}")]
    Malformed(&'static str),
    #[error("invalid CONNECT target: {0}")]
    BadTarget(&'static str),
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are needed, else the target
/// and the length of the head (bytes after it belong to the tunnel).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Authority, usize)>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ConnectError::Malformed("too many header lines"))
        }
        Err(_) => return Err(ConnectError::Malformed("not an HTTP/1.1 request head")),
    };
    let len = match status {
        httparse::Status::Partial if buf.len() >= MAX_HEAD => return Err(ConnectError::TooLarge),
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(n) if n > MAX_HEAD => return Err(ConnectError::TooLarge),
        httparse::Status::Complete(n) => n,
    };
    if req.method != Some("CONNECT") {
        return Err(ConnectError::Malformed("the method is not CONNECT"));
    }
    let target = req
        .path
        .ok_or(ConnectError::Malformed("no request target"))?;
    Ok(Some((parse_authority(target)?, len)))
}

/// `host:port` or `[v6]:port`, port 1–65535 written as 1–5 digits.
pub fn parse_authority(target: &str) -> Result<Authority, ConnectError> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (v6, port) = rest
            .split_once("]:")
            .ok_or(ConnectError::BadTarget("expected [IPv6]:port"))?;
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| ConnectError::BadTarget("not an IPv6 address"))?;
        (ip.to_string(), port)
    } else {
        let (host, port) = target
            .rsplit_once(':')
            .ok_or(ConnectError::BadTarget("expected host:port"))?;
        if host.contains(':') {
            return Err(ConnectError::BadTarget("an IPv6 address needs brackets"));
        }
        let host =
            hosts::normalize(host).ok_or(ConnectError::BadTarget("not a host name or address"))?;
        (host, port)
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConnectError::BadTarget("invalid port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Authority { host, port: p }),
        _ => Err(ConnectError::BadTarget("invalid port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(target: &str) -> Vec<u8> {
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: t\r\n\r\n").into_bytes()
    }

    #[test]
    fn valid_targets_parse() {
        let h = head("API.openai.com:443");
        let (a, n) = parse_head(&h).unwrap().unwrap();
        assert_eq!(
            a,
            Authority {
                host: "api.openai.com".into(),
                port: 443
            }
        );
        assert_eq!(n, h.len());
        let (a, _) = parse_head(&head("[::1]:8443")).unwrap().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 8443));
        assert_eq!(a.to_string(), "[::1]:8443");
        let (a, _) = parse_head(&head("127.0.0.1:1")).unwrap().unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:1");
        // Bytes after the head are the tunnel's.
        let mut h = head("a.b:443");
        let len = h.len();
        h.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(parse_head(&h).unwrap().unwrap().1, len);
    }

    #[test]
    fn partial_heads_ask_for_more_and_garbage_is_refused() {
        assert_eq!(parse_head(b"CONNECT a.b:443 HTTP/1.1\r\n"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        let bad: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n\r\n",
            b"CONNECT a.b HTTP/1.1\r\n\r\n",
            b"CONNECT a.b:0 HTTP/1.1\r\n\r\n",
            b"CONNECT a.b:65536 HTTP/1.1\r\n\r\n",
            b"CONNECT a.b:+443 HTTP/1.1\r\n\r\n",
            b"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [::1]443 HTTP/1.1\r\n\r\n",
            b"CONNECT [nope]:443 HTTP/1.1\r\n\r\n",
            b"CONNECT user@a.b:443 HTTP/1.1\r\n\r\n",
            b"CONNECT http://a.b:443/ HTTP/1.1\r\n\r\n",
            b"CONNECT a..b:443 HTTP/1.1\r\n\r\n",
            b"CONNECT a.b:443 HTTP/1.1\r\nBad Header\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for b in bad {
            assert!(parse_head(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        let mut big = b"CONNECT a.b:443 HTTP/1.1\r\n".to_vec();
        while big.len() < MAX_HEAD {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(parse_head(&big).is_err());
        let many: String = (0..40).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("CONNECT a.b:443 HTTP/1.1\r\n{many}\r\n");
        assert!(parse_head(many.as_bytes()).is_err());
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
    }

    fn dns_name() -> impl Strategy<Value = String> {
        (prop::collection::vec(label(), 1..4), "[a-z][a-z0-9]{1,5}")
            .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_head(&bytes);
            let mut with_prefix = b"CONNECT ".to_vec();
            with_prefix.extend_from_slice(&bytes);
            let _ = parse_head(&with_prefix);
        }

        #[test]
        fn never_panics_on_any_target(target in "\\PC{0,80}") {
            let _ = parse_authority(&target);
        }

        #[test]
        fn names_round_trip(name in dns_name(), port in 1u16..) {
            let target = format!("{name}:{port}");
            let h = head(&target.to_ascii_uppercase());
            let (a, n) = parse_head(&h).unwrap().unwrap();
            prop_assert_eq!(n, h.len());
            prop_assert_eq!(&a.host, &name);
            prop_assert_eq!(a.port, port);
            prop_assert_eq!(a.to_string(), target);
        }

        #[test]
        fn addresses_round_trip(v4 in any::<std::net::Ipv4Addr>(), v6 in any::<Ipv6Addr>(), port in 1u16..) {
            for target in [format!("{v4}:{port}"), format!("[{v6}]:{port}")] {
                let (a, _) = parse_head(&head(&target)).unwrap().unwrap();
                prop_assert_eq!(a.port, port);
                prop_assert_eq!(a.to_string(), target);
            }
        }

        #[test]
        fn a_head_cut_anywhere_asks_for_more(name in dns_name(), cut in 0usize..40) {
            let h = head(&format!("{name}:443"));
            let cut = cut.min(h.len() - 1);
            prop_assert_eq!(parse_head(&h[..cut]), Ok(None));
        }
    }
}
