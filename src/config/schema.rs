//! The config file as users write it (DESIGN.md §4): serde types, `deny_unknown_fields`
//! everywhere, spelled as in Portkey's config where Portkey defines a field.
//!
//! YAML crate: `serde-saphyr`. `serde_yaml` is archived; its forks (`serde_yaml_ng`,
//! `serde_norway`) still run a C-transpiled unsafe parser. serde-saphyr is pure Rust with
//! `forbid(unsafe)`, refuses alias bombs with parse budgets (a sidecar re-parses on every reload),
//! and gives line/column errors. The file is parsed into a generic tree first and then into these
//! types through `serde_path_to_error`, so every error names its YAML path.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub threads: Option<usize>,
    pub default_config: Option<String>,
    /// Inline JSON configs in `x-portkey-config` / `x-switchyard-config`; default on.
    pub allow_inline_configs: Option<bool>,
    /// Provider passthrough: the app's own provider key (default on only without virtual keys).
    pub passthrough: Option<PassthroughSpec>,
    pub shutdown_grace: Option<Seconds>,
    #[serde(default)]
    pub limits: LimitsSpec,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSpec>,
    #[serde(default)]
    pub virtual_keys: BTreeMap<String, VirtualKeySpec>,
    pub state: Option<StateSpec>,
    pub forward: Option<ForwardSpec>,
    pub circuit_breaker: Option<BreakerSpec>,
    /// Upstream deadlines for every target that sets none (built-in defaults otherwise).
    pub timeouts: Option<DefaultTimeoutsSpec>,
    #[serde(default)]
    pub configs: BTreeMap<String, NodeSpec>,
    #[serde(default)]
    pub telemetry: TelemetrySpec,
    #[serde(default)]
    pub admin: AdminSpec,
    /// The request store (`store:`): off when absent.
    pub store: Option<StoreSpec>,
}

/// `store:`: where every request's record is kept for the analytics API and the console's
/// Traces view — one SQLite file, or a PostgreSQL database shared by a fleet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// SQLite file (its directory must exist and be writable).
    pub path: Option<String>,
    /// `postgres://user:password@host:port/db` (a secret: `${ENV}` allowed).
    pub postgres_url: Option<String>,
    /// A file holding the PostgreSQL URL (a mounted Secret).
    pub postgres_url_file: Option<String>,
    /// How long records are kept (default 7d).
    pub retention: Option<Seconds>,
    /// Largest SQLite file (default 1 GiB); the oldest records go first.
    pub max_bytes: Option<u64>,
    /// Records buffered between requests and the writer (default 10 000); beyond, dropped.
    pub queue: Option<usize>,
    /// Also answer `/v1/analytics/*` on the proxy port (default true).
    pub proxy_api: Option<bool>,
}

/// `passthrough:`: requests that carry their own provider key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassthroughSpec {
    /// Default: on when the file defines no virtual keys, off otherwise (a mistyped virtual key
    /// must be a 401, never a provider key).
    pub enabled: Option<bool>,
    /// Portkey provider id for a request that names none (default: by the client's API).
    pub default_provider: Option<String>,
    /// Hosts `custom_host` / `x-portkey-custom-host` may name (`host`, `host:port` or a URL);
    /// none by default, loopback included.
    #[serde(default)]
    pub custom_hosts: Vec<String>,
}

/// `admin:`: who may use the admin port beyond the probes and `/metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Host names (besides IP literals and `localhost`) accepted in the `Host` header.
    pub allowed_hosts: Option<Vec<String>>,
    /// A file holding the bearer token required for `/config`, `/api/*` and the console.
    pub token_file: Option<String>,
}

/// `telemetry.key_labels`: how virtual keys (bearer credentials) appear in metrics, logs,
/// traces, the console and `/config`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyLabelsSpec {
    /// `vk:` and 8 hex digits of the name's SHA-256.
    #[default]
    Hash,
    /// The name as written (only where the names are not secret).
    Name,
}

/// `telemetry:`: the access log, body capture, trace export and the price table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySpec {
    pub access_log: Option<AccessLogSpec>,
    #[serde(default)]
    pub log_bodies: bool,
    pub otlp: Option<OtlpSpec>,
    /// Our price format; default: the embedded `conf/prices.yaml`.
    pub prices_file: Option<String>,
    /// LiteLLM's `model_prices_and_context_window.json`, under `prices_file`.
    pub litellm_prices_file: Option<String>,
    /// `kind/model` or `model` → price; wins over both files.
    pub prices: Option<BTreeMap<String, crate::telemetry::cost::PriceSpec>>,
    #[serde(default)]
    pub key_labels: KeyLabelsSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogSpec {
    /// `stdout` (default), `stderr`, `off`, or a file path.
    pub path: Option<String>,
    pub buffer_lines: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSpec {
    /// OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`.
    pub endpoint: String,
    /// Sent with every export; values are secrets (`${ENV}` allowed).
    pub headers: Option<BTreeMap<String, String>>,
    pub service_name: Option<String>,
    pub timeout_ms: Option<Millis>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub max_request_body_bytes: Option<usize>,
    pub max_response_body_bytes: Option<usize>,
    /// From accept, or the end of the previous request, to the end of the request head.
    pub header_timeout_ms: Option<Millis>,
    /// How long a keep-alive connection may wait for the first byte of its next request.
    pub keepalive_idle_ms: Option<Millis>,
    /// Largest request head (request line and headers).
    pub max_header_bytes: Option<usize>,
    /// Time allowed for the request body before `min_body_rate` counts.
    pub body_timeout_ms: Option<Millis>,
    /// Bytes per second the body must average after `body_timeout_ms`.
    pub min_body_rate: Option<usize>,
    /// How long a write to the client may make no progress before the connection is cut.
    pub write_timeout_ms: Option<Millis>,
    /// Open connections on the proxy listener; more are closed at once.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKindSpec {
    Openai,
    AzureOpenai,
    Anthropic,
    Gemini,
    OpenaiCompatible,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub kind: ProviderKindSpec,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub api_key_file: Option<String>,
    pub auth_header: Option<String>,
    pub ca_file: Option<String>,
    pub api_version: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    /// `azure-openai` only: model name → deployment name (a model not listed is its own
    /// deployment name).
    pub deployments: Option<BTreeMap<String, String>>,
    /// `auto` (default): HTTP/2 when the provider offers it by ALPN, else HTTP/1.1; `off`:
    /// HTTP/1.1 only. Plain-HTTP base URLs always use HTTP/1.1.
    pub http2: Option<Http2Spec>,
    /// Concurrent streams on one HTTP/2 connection before another is opened (default 100).
    pub http2_max_streams: Option<u32>,
    /// Connections opened at start, and when a reload adds the provider, before `/readyz`
    /// answers ready (default 0).
    pub prewarm: Option<u32>,
}

/// `http2: auto | off`. YAML 1.1 reads an unquoted `off` as `false` (and `on` as `true`), so
/// the booleans are taken too: `false` is `off`, `true` is `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http2Spec {
    Auto,
    Off,
}

impl<'de> Deserialize<'de> for Http2Spec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Http2Spec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("auto or off")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Http2Spec, E> {
                Ok(if v { Http2Spec::Auto } else { Http2Spec::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Http2Spec, E> {
                match v {
                    "auto" => Ok(Http2Spec::Auto),
                    "off" => Ok(Http2Spec::Off),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualKeySpec {
    pub provider: String,
    pub models: Option<Vec<String>>,
    pub limits: Option<KeyLimitsSpec>,
    pub config: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimitsSpec {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrent: Option<u64>,
    pub usd_per_day: Option<f64>,
    pub usd_per_month: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStateError {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    pub redis_url: String,
    pub on_state_error: Option<OnStateError>,
    /// Deadline of each Redis call (default 200 ms).
    pub timeout_ms: Option<Millis>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    pub ca_cert: String,
    pub ca_key: String,
    pub intercept: Option<Vec<String>>,
    pub allow_hosts: Option<Vec<String>>,
    /// Intercept entry (as written) → provider name, where the host's kind does not pick one.
    pub providers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    pub enabled: Option<bool>,
    pub window_s: Option<Seconds>,
    pub min_calls: Option<u32>,
    pub failure_rate: Option<f64>,
    pub slow_call_ms: Option<Millis>,
    pub slow_call_rate: Option<f64>,
    pub open_s: Option<Seconds>,
    pub half_open_probes: Option<u32>,
}

/// A config, or a target inside one: the same shape at every depth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub strategy: Option<StrategySpec>,
    pub hedge: Option<HedgeSpec>,
    pub targets: Option<Vec<NodeSpec>>,
    pub virtual_key: Option<String>,
    /// Passthrough target: a Portkey provider id (`openai`, `anthropic`, …), reached at its
    /// standard base URL (or `custom_host`) with `api_key`, else the caller's own key.
    pub provider: Option<String>,
    pub api_key: Option<String>,
    pub custom_host: Option<String>,
    pub name: Option<String>,
    pub weight: Option<f64>,
    pub override_params: Option<serde_json::Map<String, serde_json::Value>>,
    pub request_timeout: Option<Millis>,
    pub retry: Option<RetrySpec>,
    pub timeouts: Option<TimeoutsSpec>,
    pub circuit_breaker: Option<BreakerSpec>,
    pub cache: Option<CacheSpec>,
    /// Our flat entries or Portkey's shorthand (`crate::guardrails::item`).
    pub input_guardrails: Option<Vec<crate::guardrails::GuardrailItem>>,
    pub output_guardrails: Option<Vec<crate::guardrails::GuardrailItem>>,
    /// The tutorial's spelling: `{ input: [...], output: [...] }`.
    pub guardrails: Option<crate::guardrails::TutorialGuardrails>,
    /// Portkey's hooks (`type: guardrail`).
    pub before_request_hooks: Option<Vec<crate::guardrails::HookSpec>>,
    pub after_request_hooks: Option<Vec<crate::guardrails::HookSpec>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeSpec {
    Single,
    Fallback,
    Loadbalance,
    Conditional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmSpec {
    WeightedRandom,
    LeastLatency,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    pub mode: ModeSpec,
    pub on_status_codes: Option<Vec<i64>>,
    pub algorithm: Option<AlgorithmSpec>,
    pub conditions: Option<Vec<ConditionSpec>>,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub query: serde_json::Value,
    pub then: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeSpec {
    pub after_ms: Millis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    pub attempts: u32,
    pub on_status_codes: Option<Vec<i64>>,
    /// Portkey's spelling; `use_retry_after_headers` is read too.
    #[serde(alias = "use_retry_after_headers")]
    pub use_retry_after_header: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    pub connect_ms: Option<Millis>,
    pub ttft_ms: Option<Millis>,
    pub idle_ms: Option<Millis>,
    pub total_ms: Option<Millis>,
}

/// Top-level `timeouts:`: a target's phases plus `headers_ms`, the response-header deadline
/// when no `request_timeout` applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultTimeoutsSpec {
    pub connect_ms: Option<Millis>,
    pub headers_ms: Option<Millis>,
    pub ttft_ms: Option<Millis>,
    pub idle_ms: Option<Millis>,
    pub total_ms: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheModeSpec {
    Simple,
    Semantic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackendSpec {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    pub mode: CacheModeSpec,
    pub max_age: Option<Seconds>,
    pub similarity_threshold: Option<f64>,
    pub skip_nondeterministic: Option<bool>,
    pub backend: Option<CacheBackendSpec>,
    /// Bytes of responses this config's in-memory store holds at most (default 64 MiB).
    pub max_bytes: Option<u64>,
    pub embedder: Option<EmbedderSpec>,
}

/// `cache.embedder`: an embeddings target through the router (`virtual_key` + `model`), or the
/// in-process model (`local: <model dir>`, cargo feature `local-embeddings`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderSpec {
    pub virtual_key: Option<String>,
    pub model: Option<String>,
    /// Deadline of the embeddings call to its response headers (default 2000 ms).
    pub timeout_ms: Option<Millis>,
    pub local: Option<String>,
}

/// A duration written in milliseconds (`500`) or with a unit (`"500ms"`, `"2s"`, `"1m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub Duration);

/// A duration written in seconds (`30`) or with a unit (`"30s"`, `"2m"`, `"500ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

/// Parses `"250ms"`, `"8s"`, `"2m"`, `"1h"`; a bare number is in `default_unit_ms`.
pub fn parse_duration(text: &str, default_unit_ms: u64) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("duration {text:?} must be greater than zero"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 8s, 2m"))?;
    let unit_ms = match unit.trim() {
        "" => default_unit_ms as f64,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m, h or d"
            ))
        }
    };
    let ms = value * unit_ms;
    if !ms.is_finite() || ms <= 0.0 {
        return Err(format!("duration {text:?} must be greater than zero"));
    }
    if ms > 365.0 * 24.0 * 3_600_000.0 {
        return Err(format!("duration {text:?} is longer than a year"));
    }
    Ok(Duration::from_micros((ms * 1000.0) as u64))
}

struct DurationVisitor {
    unit_ms: u64,
    unit_name: &'static str,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a positive duration in {} or a string such as \"500ms\" or \"8s\"",
            self.unit_name
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        parse_duration(&v.to_string(), self.unit_ms).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        parse_duration(&v.to_string(), self.unit_ms).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        if v.fract() != 0.0 {
            return Err(E::custom(format!(
                "duration {v} must be a whole number of {}",
                self.unit_name
            )));
        }
        parse_duration(&v.to_string(), self.unit_ms).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v, self.unit_ms).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor {
            unit_ms: 1,
            unit_name: "milliseconds",
        })
        .map(Millis)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor {
            unit_ms: 1000,
            unit_name: "seconds",
        })
        .map(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("250", 1), Ok(Duration::from_millis(250)));
        assert_eq!(
            parse_duration("250ms", 1000),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("8s", 1), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("2m", 1), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30", 1000), Ok(Duration::from_secs(30)));
        for bad in ["0", "-5", "abc", "5 parsecs", "", "0ms", "1e400"] {
            assert!(parse_duration(bad, 1).is_err(), "{bad}");
        }
    }
}
