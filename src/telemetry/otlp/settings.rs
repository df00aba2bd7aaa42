//! Exporter settings: where and how to send traces, from the config file or the standard
//! `OTEL_*` environment variables, and the parsing those need (header lists, percent-decoding,
//! endpoints with credentials redacted for messages).

use std::fmt;
use std::time::Duration;

/// `service.name` when neither the settings nor the environment name one.
pub const DEFAULT_SERVICE_NAME: &str = "switchyard";
/// Per-export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set (the OTLP default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where traces go when `OTEL_TRACES_EXPORTER=otlp` names no endpoint (the OTLP/HTTP default).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// Where and how to send traces.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The full traces URL (`http://collector:4318/v1/traces`); `http` or `https`.
    pub endpoint: String,
    /// Sent with every export (e.g. `authorization`). Never logged.
    pub headers: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Per export request, connect to answer.
    pub timeout: Duration,
}

impl fmt::Debug for OtlpSettings {
    // Header values may be credentials: show only their names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field("endpoint", &redact_userinfo(&self.endpoint))
            .field("headers", &names)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OtlpSettings {
    /// Settings for `endpoint` (the full traces URL) with the defaults: no headers,
    /// `service.name` `switchyard`, a 10 s timeout.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpSettings {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// From the process environment; see [`OtlpSettings::from_lookup`].
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// From the standard OpenTelemetry variables, read through `get`. `None` (export off) unless
    /// an endpoint is given (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as-is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`) or `OTEL_TRACES_EXPORTER` names `otlp`
    /// (then the default `localhost:4318`); also `None` with `OTEL_SDK_DISABLED=true`,
    /// `OTEL_TRACES_EXPORTER=none` (or a list without `otlp`), or a protocol other than
    /// `http/protobuf`. Headers come from `OTEL_EXPORTER_OTLP_HEADERS` overridden per name by
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`k=v,k2=v2`, values percent-decoded); the timeout
    /// from `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds);
    /// the service name from `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `switchyard`.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let env = Env(get);
        if env
            .var("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let endpoint = env.endpoint(env.otlp_named()?)?;
        if !env.protocol_supported() {
            return None;
        }
        Some(OtlpSettings {
            endpoint,
            headers: env.headers(),
            service_name: env.service_name(),
            timeout: env.timeout(),
        })
    }
}

/// The `OTEL_*` variables, read through a lookup function; blank values count as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Whether `OTEL_TRACES_EXPORTER` names `otlp`; `None` (export off) when it is set to
    /// `none` or to a list without `otlp`.
    fn otlp_named(&self) -> Option<bool> {
        let Some(list) = self.var("OTEL_TRACES_EXPORTER") else {
            return Some(false);
        };
        let names: Vec<String> = list
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        if names.iter().any(|n| n == "none") || !names.iter().any(|n| n == "otlp") {
            return None;
        }
        Some(true)
    }

    /// The traces URL: the per-signal variable as-is, the base one + `/v1/traces`, or the
    /// default when the exporter is named.
    fn endpoint(&self, otlp_named: bool) -> Option<String> {
        if let Some(url) = self.var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url)
        } else if let Some(base) = self.var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(format!("{}/v1/traces", base.trim_end_matches('/')))
        } else if otlp_named {
            Some(DEFAULT_ENDPOINT.to_string())
        } else {
            None
        }
    }

    /// Only `http/protobuf` (or no protocol named) is supported; anything else is warned about.
    fn protocol_supported(&self) -> bool {
        let protocol = self
            .var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| self.var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match protocol {
            Some(protocol) if protocol != "http/protobuf" => {
                tracing::warn!(
                    %protocol,
                    "OTLP trace export off: only the http/protobuf protocol is supported"
                );
                false
            }
            _ => true,
        }
    }

    /// The general headers, each overridden (by name, case-insensitively) by the traces ones.
    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = self
            .var("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|v| parse_headers(&v))
            .unwrap_or_default();
        for (name, value) in self
            .var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .map(|v| parse_headers(&v))
            .unwrap_or_default()
        {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }
        headers
    }

    fn timeout(&self) -> Duration {
        let Some(raw) = self
            .var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| self.var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        else {
            return DEFAULT_TIMEOUT;
        };
        match raw.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                tracing::warn!(
                    value = %raw,
                    "OTEL_EXPORTER_OTLP_TIMEOUT is not a positive number of milliseconds; \
                     using 10000"
                );
                DEFAULT_TIMEOUT
            }
        }
    }

    fn service_name(&self) -> String {
        self.var("OTEL_SERVICE_NAME")
            .or_else(|| {
                self.var("OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
                    parse_headers(&attrs)
                        .into_iter()
                        .find(|(k, _)| k == "service.name")
                        .map(|(_, v)| v)
                        .filter(|v| !v.is_empty())
                })
            })
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string())
    }
}

/// `k=v,k2=v2` with percent-encoded values (the OTLP headers and resource attributes format).
/// Pairs without `=`, with an empty key, or whose value does not decode to UTF-8 are skipped.
pub(super) fn parse_headers(raw: &str) -> Vec<(String, String)> {
    raw.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            Some((k.to_string(), percent_decode(v.trim())?))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// An endpoint string with any `user:password@` replaced, for messages.
pub(super) fn redact_userinfo(endpoint: &str) -> String {
    let Some(scheme_end) = endpoint.find("://") else {
        return endpoint.to_string();
    };
    let rest = &endpoint[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &endpoint[..scheme_end + 3], &rest[at + 1..]),
        None => endpoint.to_string(),
    }
}
