//! The runtime configuration: what the request path reads. Built only by [`super::compile`], never
//! mutated afterwards, and swapped whole through one `ArcSwap` (one load per request).
//!
//! Everything here is resolved: references are indices/`Arc`s, settings are inherited down the
//! target tree, secrets are read, durations are `Duration`s.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::vocab::ProviderKind;

/// A credential. Its `Debug`/`Display` never print the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The raw value, for the one place that needs it: the upstream request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Hex digest (16 chars) of the config file bytes plus every secret and price file it read.
    pub hash: String,
    /// Every file this snapshot was built from (the config file, then each secret file and
    /// price file read): the reloader watches their directories and re-hashes them.
    pub source_files: Vec<std::path::PathBuf>,
    /// What the file says that is accepted but probably not meant, each `path: message`
    /// (`switchyard check` prints them; a start or reload logs them).
    pub warnings: Vec<String>,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Worker threads per pingora service.
    pub threads: usize,
    pub limits: RequestLimits,
    /// Seconds a SIGTERM waits for in-flight requests and streams before exiting.
    pub shutdown_grace: Duration,
    pub providers: Vec<Arc<Provider>>,
    pub virtual_keys: HashMap<String, Arc<VirtualKey>>,
    pub configs: HashMap<String, Arc<RouteConfig>>,
    /// For each virtual key, the config a request runs when it names no config: the key alone
    /// (named `direct`, its target labelled with the key's name).
    pub direct_routes: HashMap<String, Arc<RouteConfig>>,
    pub default_config: Option<String>,
    /// Inline JSON configs (`x-portkey-config: {...}`): on unless `allow_inline_configs: false`;
    /// compiled against this snapshot and kept in its bounded cache.
    pub inline: InlineConfigs,
    /// Provider passthrough (`passthrough:`): the app's own provider key, Portkey's provider ids.
    pub passthrough: Passthrough,
    /// The settings a config's root inherits (top-level `timeouts:`, `circuit_breaker:`): what
    /// an inline config compiles against.
    pub root_settings: TargetSettings,
    /// Defaults applied where a config/target sets no breaker of its own.
    pub circuit_breaker: CircuitBreakerSettings,
    pub state: Option<StateSettings>,
    pub forward: Option<ForwardSettings>,
    /// Every model name the config mentions (allowlists, `override_params.model`): the only
    /// values the `model` metric label may take; anything else is reported as `other`.
    pub known_models: std::collections::HashSet<String>,
    /// Access log, body capture, trace export and prices (`telemetry:`; defaults when absent).
    pub telemetry: TelemetrySettings,
    /// The config as loaded with every secret replaced by `"[redacted]"`, served on `/config`.
    pub redacted: serde_json::Value,
    /// Who may use the admin port (`admin:`).
    pub admin: AdminSettings,
    /// The request store (`store:`); `None`: off. Read at start (a change needs a restart).
    pub store: Option<StoreSettings>,
}

/// Default `store.retention`.
pub const DEFAULT_STORE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default and smallest `store.max_bytes`.
pub const DEFAULT_STORE_MAX_BYTES: u64 = 1 << 30;
pub const MIN_STORE_MAX_BYTES: u64 = 8 << 20;
/// Default and largest `store.queue`.
pub const DEFAULT_STORE_QUEUE: usize = 10_000;
pub const MAX_STORE_QUEUE: usize = 1_000_000;

/// `store:` compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub retention: Duration,
    /// SQLite only: the file is kept under this size, oldest records first.
    pub max_bytes: u64,
    pub queue: usize,
    pub proxy_api: bool,
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreBackend {
    /// One SQLite file (WAL mode).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL (a credential: never logged or shown).
    Postgres(Secret),
}

/// `admin:`: the Host names accepted besides IP literals and `localhost`, and the bearer token
/// (read from `admin.token_file`) that guards `/config`, `/api/*` and the console.
#[derive(Debug, Default)]
pub struct AdminSettings {
    /// Lowercased, without port.
    pub allowed_hosts: Vec<String>,
    pub token: Option<Secret>,
}

impl AdminSettings {
    /// Whether `presented` is the admin token (compared as SHA-256 digests, without an early
    /// exit). `false` when no token is configured.
    pub fn token_matches(&self, presented: &str) -> bool {
        use sha2::Digest;
        let Some(token) = &self.token else {
            return false;
        };
        let a = sha2::Sha256::digest(token.expose().as_bytes());
        let b = sha2::Sha256::digest(presented.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

/// How a virtual key appears wherever it is shown or used as a label: the names are bearer
/// credentials, so by default `vk:` and the first 8 hex digits of the name's SHA-256 (stable
/// across restarts and pods, so dashboards keep working), or the name with `key_labels: name`.
pub fn key_label(name: &str, as_name: bool) -> String {
    use sha2::Digest;
    if as_name {
        return name.to_string();
    }
    let digest = sha2::Sha256::digest(name.as_bytes());
    format!("vk:{}", hex::encode(&digest[..4]))
}

/// Bounds on what a client may send and what we buffer from upstream.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Largest request body accepted (413 above). Default 16 MiB.
    pub max_request_body_bytes: usize,
    /// Largest non-streaming upstream response body buffered. Default 16 MiB.
    pub max_response_body_bytes: usize,
    /// Accept (or end of the previous request) to end of request head; 408 after. Default 10 s.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit idle before its next request's first byte;
    /// closed without an answer after. Default 75 s.
    pub keepalive_idle: Duration,
    /// Largest request head; 431 above. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Grace before `min_body_rate` applies to a request body. Default 10 s.
    pub body_timeout: Duration,
    /// Minimum average request-body rate in bytes/s after the grace; 408 below. Default 1 KiB/s.
    pub min_body_rate: usize,
    /// A write to the client that makes no progress this long cuts the connection. Default 30 s.
    pub write_timeout: Duration,
    /// Open connections on the proxy listener (also bounded by the fd limit). Default 1024.
    pub max_connections: usize,
}

/// Where a provider lives, split once at load so the request path never parses a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `true` for `https`.
    pub tls: bool,
    /// Host name or IP literal (no brackets), used for DNS, SNI and the `Host` header.
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `/v1` (may be empty).
    pub path: String,
}

impl BaseUrl {
    /// The `Host` header value: `host` plus `:port` when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug)]
pub struct Provider {
    /// The name under `providers:`; also the `provider` metric label.
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: BaseUrl,
    /// `None` for keyless providers (a local vLLM, say).
    pub api_key: Option<Secret>,
    /// Header that carries the key. `authorization` means `Bearer <key>`; any other name carries the
    /// raw key (`api-key` for Azure, `x-api-key` for Anthropic, or a custom one).
    pub auth_header: String,
    /// Extra PEM CA bundle trusted for this provider besides the bundled web PKI roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Azure `api-version` / Anthropic `anthropic-version` where the kind needs one.
    pub api_version: Option<String>,
    /// Extra static headers sent upstream (values are not secrets).
    pub headers: Vec<(String, String)>,
    /// `azure-openai`: model name → deployment name; a model not listed is used as the
    /// deployment name. Empty for other kinds.
    pub deployments: HashMap<String, String>,
    /// Passthrough: the caller's own credential (`Authorization: Bearer`, `x-api-key`,
    /// `api-key`, `x-goog-api-key`) is sent in `auth_header`; `api_key` is `None`.
    pub caller_credential: bool,
    /// How connections to it are made (HTTP/2, pre-warming).
    pub connections: ConnectionSettings,
}

/// A provider's connection settings (`http2`, `http2_max_streams`, `prewarm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Offer HTTP/2 by ALPN (HTTPS only).
    pub http2: bool,
    /// Streams multiplexed on one HTTP/2 connection at most.
    pub h2_max_streams: usize,
    /// Connections opened before the gateway answers ready.
    pub prewarm: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            http2: true,
            h2_max_streams: ConnectionSettings::DEFAULT_H2_MAX_STREAMS,
            prewarm: 0,
        }
    }
}

impl ConnectionSettings {
    pub const DEFAULT_H2_MAX_STREAMS: usize = 100;
    pub const MAX_H2_STREAMS: usize = 1000;
    pub const MAX_PREWARM: usize = 64;
}

/// `passthrough:` compiled: whether a request may reach a provider with its own key, and the
/// providers it may reach that way (Portkey's provider ids, each at its standard base URL or
/// the one its `SWITCHYARD_<ID>_BASE_URL` names).
#[derive(Debug, Default)]
pub struct Passthrough {
    pub enabled: bool,
    /// Portkey provider id used when a request names none; `None`: by the client's API
    /// (`/v1/messages` → `anthropic`, everything else → `openai`).
    pub default_provider: Option<String>,
    /// Hosts (`host` or `host:port`, lowercase) `custom_host` / `x-portkey-custom-host` may name.
    pub custom_hosts: Vec<String>,
    /// One single-target route per provider id with a standard base URL (config label
    /// `passthrough`), by id; the ids themselves are `vocab::kinds::PORTKEY_PROVIDERS`.
    pub routes: HashMap<String, Arc<RouteConfig>>,
}

impl Passthrough {
    /// The route for provider `id` at its standard base URL.
    pub fn route(&self, id: &str) -> Option<&Arc<RouteConfig>> {
        self.routes.get(id)
    }

    /// Whether `custom_hosts` lists the host of `url` (`host` alone matches any port).
    pub fn allows_host(&self, url: &BaseUrl) -> bool {
        let host = url.host.to_ascii_lowercase();
        let with_port = format!("{host}:{}", url.port);
        self.custom_hosts
            .iter()
            .any(|h| *h == host || *h == with_port)
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrent: Option<u64>,
    pub usd_per_day: Option<f64>,
    pub usd_per_month: Option<f64>,
}

impl KeyLimits {
    /// No limit set: governance skips the key entirely.
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none()
            && self.tpm.is_none()
            && self.concurrent.is_none()
            && self.usd_per_day.is_none()
            && self.usd_per_month.is_none()
    }
}

#[derive(Debug)]
pub struct VirtualKey {
    pub name: String,
    /// What metrics, logs, traces, the console and `/config` show instead of the name (see
    /// [`key_label`]); computed once at compile time.
    pub label: String,
    pub provider: Arc<Provider>,
    /// Allowlist of models; `None` allows any.
    pub models: Option<Vec<String>>,
    /// The config this key selects when the request names none.
    pub config: Option<String>,
    pub disabled: bool,
    pub limits: KeyLimits,
}

impl VirtualKey {
    pub fn allows_model(&self, model: &str) -> bool {
        match &self.models {
            None => true,
            Some(list) => list.iter().any(|m| m == model),
        }
    }
}

/// One named config: a tree of targets.
#[derive(Debug)]
pub struct RouteConfig {
    pub name: String,
    /// Whether routing needs the parsed request body (some `override_params`, or a conditional
    /// strategy reading `params.*`); otherwise only `model` is peeked at and the body is
    /// forwarded as received.
    pub needs_body: bool,
    /// The root; its `path` is `"config"`.
    pub root: Target,
    /// The virtual keys with limits this config can route to, sorted by name: they govern a
    /// request that presents no virtual key of its own (`governance`).
    pub governed_keys: Vec<Arc<VirtualKey>>,
}

impl RouteConfig {
    /// The config `name` over the tree `root`, with what is derived from the tree.
    pub fn new(name: String, root: Target) -> RouteConfig {
        RouteConfig {
            name,
            needs_body: root.needs_body(),
            governed_keys: root.limited_keys(),
            root,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyMode {
    Single,
    Fallback,
    LoadBalance,
    Conditional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbAlgorithm {
    WeightedRandom,
    LeastLatency,
}

#[derive(Debug)]
pub struct Strategy {
    pub mode: StrategyMode,
    /// Fallback only: move on only for these statuses; `None` = any non-2xx.
    pub on_status_codes: Option<Vec<u16>>,
    pub algorithm: LbAlgorithm,
    /// Conditional only, in order.
    pub conditions: Vec<Condition>,
    /// Conditional only: index into `targets` of the default.
    pub default_target: Option<usize>,
    pub hedge_after: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Condition {
    /// The Portkey query object, validated at load (operators and shape).
    pub query: serde_json::Value,
    /// Index into the group's `targets`.
    pub then: usize,
}

#[derive(Debug)]
pub enum TargetKind {
    /// Calls one provider through one virtual key.
    Leaf { virtual_key: Arc<VirtualKey> },
    /// A strategy over child targets.
    Group {
        strategy: Strategy,
        targets: Vec<Target>,
    },
}

/// A node of the strategy tree, with every inheritable setting already resolved for it.
#[derive(Debug)]
pub struct Target {
    /// Portkey's option-index path: `config`, `config.targets[1]`, `config.targets[1].targets[0]`.
    pub path: String,
    /// Optional `name` (conditional routing refers to it); the metric `target` label is
    /// `name` if set, else `path`.
    pub name: Option<String>,
    /// Identifies this target's circuit breaker across reloads: `<config>/<name or path>`.
    pub breaker_key: String,
    /// Load-balancing weight (> 0), default 1.
    pub weight: f64,
    pub kind: TargetKind,
    pub settings: TargetSettings,
}

impl Target {
    /// A one-leaf tree's root (the key alone, a passthrough provider, a forward-proxy host):
    /// `name` is its `target` label, `breaker_key` names its breaker.
    pub fn leaf(
        breaker_key: String,
        name: String,
        virtual_key: Arc<VirtualKey>,
        settings: &TargetSettings,
    ) -> Target {
        Target {
            path: "config".into(),
            name: Some(name),
            breaker_key,
            weight: 1.0,
            kind: TargetKind::Leaf { virtual_key },
            settings: settings.clone(),
        }
    }

    /// Whether this target or any below it merges `override_params`, routes conditionally or
    /// checks the request's text (input guardrails).
    pub fn needs_body(&self) -> bool {
        !self.settings.override_params.is_empty()
            || self.settings.input_guardrails.is_some()
            || self.settings.cache.is_some()
            || match &self.kind {
                TargetKind::Leaf { .. } => false,
                TargetKind::Group { strategy, targets } => {
                    strategy.mode == StrategyMode::Conditional
                        || targets.iter().any(Target::needs_body)
                }
            }
    }

    /// The virtual keys with limits this target or any below it uses, sorted by name, once each.
    pub fn limited_keys(&self) -> Vec<Arc<VirtualKey>> {
        fn walk(t: &Target, out: &mut Vec<Arc<VirtualKey>>) {
            match &t.kind {
                TargetKind::Leaf { virtual_key } => {
                    if !virtual_key.limits.is_empty() {
                        out.push(virtual_key.clone());
                    }
                }
                TargetKind::Group { targets, .. } => targets.iter().for_each(|c| walk(c, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        out
    }

    /// Whether this target or any below it sends the caller's own credential (passthrough).
    pub fn uses_caller_credential(&self) -> bool {
        match &self.kind {
            TargetKind::Leaf { virtual_key } => virtual_key.provider.caller_credential,
            TargetKind::Group { targets, .. } => targets.iter().any(Target::uses_caller_credential),
        }
    }

    /// The bounded label this target reports under in metrics.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.path)
    }
}

/// Settings after inheritance (parent → child unless the child overrides).
#[derive(Debug, Clone)]
pub struct TargetSettings {
    pub retry: RetrySettings,
    /// Per-attempt deadline to response headers (Portkey's `request_timeout`).
    pub request_timeout: Option<Duration>,
    pub timeouts: PhaseTimeouts,
    /// Merged parent → child (child wins), shallow, into the request body.
    pub override_params: serde_json::Map<String, serde_json::Value>,
    pub circuit_breaker: CircuitBreakerSettings,
    pub cache: Option<CacheSettings>,
    /// `None`: no input guardrails (nothing is extracted or checked).
    pub input_guardrails: Option<Arc<crate::guardrails::Guardrails>>,
    pub output_guardrails: Option<Arc<crate::guardrails::Guardrails>>,
}

#[derive(Debug, Clone, Default)]
pub struct PhaseTimeouts {
    /// TCP (+TLS) connect.
    pub connect: Option<Duration>,
    /// Response headers when no `request_timeout` applies (top-level `timeouts.headers_ms`, else
    /// the built-in default); a `request_timeout` wins.
    pub headers: Option<Duration>,
    /// First content chunk of a stream (measured from sending the request).
    pub ttft: Option<Duration>,
    /// Longest gap between two upstream body reads.
    pub idle: Option<Duration>,
    /// Whole attempt, body included.
    pub total: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Extra attempts on the same target (0 = none).
    pub attempts: u32,
    pub on_status_codes: Vec<u16>,
    pub use_retry_after: bool,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 0,
            on_status_codes: vec![429, 500, 502, 503, 504],
            use_retry_after: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CircuitBreakerSettings {
    pub enabled: bool,
    pub window: Duration,
    pub min_calls: u32,
    pub failure_rate: f64,
    /// `None` = the target's request_timeout, else 10 s.
    pub slow_call: Option<Duration>,
    pub slow_call_rate: f64,
    pub open_for: Duration,
    pub half_open_probes: u32,
}

impl Default for CircuitBreakerSettings {
    fn default() -> Self {
        CircuitBreakerSettings {
            enabled: true,
            window: Duration::from_secs(30),
            min_calls: 10,
            failure_rate: 0.5,
            slow_call: None,
            slow_call_rate: 0.5,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Simple,
    Semantic,
}

/// A config's `cache:` compiled (see `crate::cache`). Set on the config's root only: the
/// lookup runs before routing.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub mode: CacheMode,
    /// How long an entry is served.
    pub max_age: Duration,
    /// Semantic mode: the least cosine similarity served.
    pub similarity_threshold: f64,
    /// Requests with `temperature > 0` (or none: the providers' default is 1) or `n > 1` bypass.
    pub skip_nondeterministic: bool,
    /// Entries are also kept in Redis (`state.redis_url`), shared by every replica.
    pub backend_redis: bool,
    /// Bound of this config's in-memory store, in bytes of stored responses.
    pub max_bytes: u64,
    /// Semantic mode: what embeds the last user message.
    pub embedder: Option<Embedder>,
    /// The identities of the leaves the config's tree can serve from, for the route part of
    /// the key (`crate::cache::route`); set by compile once the tree is built. `None`: the
    /// lookup bypasses the cache rather than key without the route.
    pub route: Option<Arc<RouteKeys>>,
}

/// A config's leaves as the cache sees them (built and read by `crate::cache::route`; the type
/// is here because the snapshot holds it), mirroring the target tree only where a conditional
/// group makes the reachable set depend on the request.
#[derive(Debug)]
pub struct RouteKeys {
    /// The route digest when no conditional group exists: every request gets this one.
    pub(crate) fixed: Option<[u8; 32]>,
    pub(crate) root: RouteNode,
}

#[derive(Debug)]
pub(crate) enum RouteNode {
    /// A subtree without conditional groups: the identities of every leaf it can reach,
    /// sorted and deduplicated.
    Leaves(Box<[[u8; 32]]>),
    /// A fallback/loadbalance group with a conditional below: the union of its children.
    Union(Box<[RouteNode]>),
    /// A conditional group: the child `router::condition::choose` picks (indices as in the config).
    Conditional {
        conditions: Box<[Condition]>,
        default: Option<usize>,
        children: Box<[RouteNode]>,
    },
}

/// What embeds a prompt for the semantic cache.
#[derive(Debug, Clone)]
pub enum Embedder {
    /// `POST /v1/embeddings` through the router to this leaf target (`model` in the body).
    Target { target: Arc<Target>, model: String },
    /// The in-process model in this directory (cargo feature `local-embeddings`).
    Local(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct StateSettings {
    /// Contains a password possibly; never printed.
    pub redis_url: Secret,
    pub on_state_error_allow: bool,
    /// Deadline of each Redis call.
    pub timeout: Duration,
}

/// `forward:` compiled (forward-proxy mode, `server::forward`).
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    /// The local CA, loaded and checked; its key never leaves memory.
    pub ca: Arc<super::ca::LocalCa>,
    /// Hosts whose TLS is terminated and whose requests run the gateway path, in order.
    pub intercept: Vec<InterceptRule>,
    /// Hosts (and ports) tunnelled (or, for plain HTTP, forwarded) untouched.
    pub allow_hosts: Vec<super::hosts::AllowHost>,
}

/// One `forward.intercept` entry.
#[derive(Debug, Clone)]
pub struct InterceptRule {
    pub pattern: super::hosts::HostPattern,
    /// The provider inferred for this host (`forward.providers`, else the one configured provider
    /// of the host's kind), as a one-target route named `forward`: run when a request selects
    /// no virtual key or config and there is no `default_config`.
    pub route: Option<Arc<RouteConfig>>,
}

impl ForwardSettings {
    /// The first `intercept` entry matching a normalised host.
    pub fn intercept_rule(&self, host: &str) -> Option<&InterceptRule> {
        self.intercept.iter().find(|r| r.pattern.matches(host))
    }

    /// The inferred route for an intercepted host, if any.
    pub fn route_for(&self, host: &str) -> Option<&Arc<RouteConfig>> {
        self.intercept_rule(host)?.route.as_ref()
    }
}

/// `telemetry:` compiled.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub access_log: AccessLogSettings,
    /// Capture prompt and completion text in the request record (off by default).
    pub log_bodies: bool,
    /// `None`: no OTLP export configured here (the `OTEL_EXPORTER_OTLP_*` variables are read
    /// by the exporter itself).
    pub otlp: Option<OtlpConfig>,
    /// Embedded or `prices_file` prices, over `litellm_prices_file`, under `prices`.
    pub prices: Arc<crate::telemetry::cost::PriceTable>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    pub target: LogTarget,
    /// Lines buffered between the request path and the writer; beyond that lines are dropped
    /// (and counted), never waited for. Default 4096.
    pub buffer_lines: usize,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            target: LogTarget::Stdout,
            buffer_lines: 4096,
        }
    }
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    Off,
    /// Appended to; a relative path is relative to the config file's directory.
    File(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// OTLP/HTTP traces URL (`http(s)://host:port/v1/traces`), validated at load.
    pub endpoint: String,
    /// Header names lower-cased; values are secrets (never printed, redacted on `/config`).
    pub headers: Vec<(String, Secret)>,
    /// `service.name` resource attribute; default `switchyard`.
    pub service_name: String,
    /// Per export request; default 10 s.
    pub timeout: Duration,
}

/// Longest inline config accepted, in bytes (the request head is bounded too).
pub const MAX_INLINE_BYTES: usize = 32 << 10;
/// Bytes of header text the inline cache holds at most (each entry weighs its text plus a
/// fixed estimate of the compiled tree).
const INLINE_CACHE_BYTES: u64 = 8 << 20;
const INLINE_ENTRY_OVERHEAD: u32 = 4 << 10;

/// An inline config compiled, or why it does not compile (errors are cached too: a client
/// repeating a bad config does not recompile it).
pub type CompiledInline = Result<Arc<RouteConfig>, Arc<str>>;

/// Inline configs on or off (`allow_inline_configs`), and the ones compiled on this snapshot
/// (`config::compile::inline_route`): a bounded cache by the header's exact text, so a
/// repeated inline config costs one hash lookup. A reload builds a new snapshot and so a new
/// cache: an inline config always compiles against the virtual keys it runs with.
pub struct InlineConfigs {
    pub enabled: bool,
    cache: moka::sync::Cache<String, CompiledInline>,
}

impl fmt::Debug for InlineConfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineConfigs")
            .field("enabled", &self.enabled)
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

impl InlineConfigs {
    pub fn new(enabled: bool) -> Self {
        InlineConfigs {
            enabled,
            cache: moka::sync::Cache::builder()
                .max_capacity(INLINE_CACHE_BYTES)
                .weigher(|k: &String, _v: &CompiledInline| {
                    u32::try_from(k.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(INLINE_ENTRY_OVERHEAD)
                })
                .build(),
        }
    }

    pub fn get(&self, text: &str) -> Option<CompiledInline> {
        self.cache.get(text)
    }

    pub fn insert(&self, text: &str, compiled: CompiledInline) {
        self.cache.insert(text.to_string(), compiled);
    }
}

/// Why an inline config cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InlineError {
    #[error("inline JSON configs are disabled (allow_inline_configs: false): name a config from the config file")]
    Disabled,
    #[error("the inline config is {0} bytes; at most {MAX_INLINE_BYTES} are accepted")]
    TooLarge(usize),
    #[error("invalid inline config: {0}")]
    Invalid(Arc<str>),
}
