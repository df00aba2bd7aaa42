//! Validation and compilation: [`super::schema`] (what users write) → [`Snapshot`] (what the
//! request path reads). Every error carries the YAML path it is about; `switchyard check` and
//! every reload use this same code. Structural errors (syntax, unknown fields, wrong types) stop
//! at the first; every semantic error after that is collected.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::schema::*;
use super::secrets;
use super::snapshot::*;
use crate::guardrails::Stage;
use crate::server::forward::ca::{CaError, LocalCa};
use crate::server::forward::hosts::HostPattern;
use crate::telemetry::cost::{PriceError, PriceTable};

/// One problem in a config file, with the YAML path it is about
/// (`configs.chat.targets[1].virtual_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// How a refused reload is shown on `/config`, on the console and in the log: like
    /// `Display`, with virtual-key names (bearer credentials) in paths
    /// (`virtual_keys.<name>.…`) and in "unknown virtual key" messages replaced by their labels
    /// (see [`key_label`]; names kept with `as_names`). `check` prints the names: its reader
    /// has the file.
    pub fn shown(&self, as_names: bool) -> String {
        const QUOTED: &str = "unknown virtual key \"";
        let mut out = String::new();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let path = match e.path.strip_prefix("virtual_keys.") {
                Some(rest) => {
                    let (name, tail) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
                    format!("virtual_keys.{}{tail}", key_label(name, as_names))
                }
                None => e.path.clone(),
            };
            let message = match e.message.strip_prefix(QUOTED) {
                Some(rest) => {
                    let name = rest.split('"').next().unwrap_or("");
                    format!("unknown virtual key {}", key_label(name, as_names))
                }
                None => e.message.clone(),
            };
            let shown = ConfigError { path, message };
            out.push_str(&shown.to_string());
        }
        out
    }
}

fn one(path: &str, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_string(),
        message: message.into(),
    }])
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Loopback: the admin port serves the live config and the console. A Kubernetes pod sets
/// `0.0.0.0:9090` explicitly so kubelet probes and Prometheus reach it.
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// Shortest `admin.token_file` token accepted (a guessable token is no guard).
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
const DEFAULT_THREADS: usize = 2;
const DEFAULT_BODY_LIMIT: usize = 16 << 20;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// As long as the gateway kept idle client connections before there was a head deadline.
const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(75);
const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MIN_BODY_RATE: usize = 1024;
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
const REDACTED: &str = "[redacted]";
const MAX_ACCESS_LOG_BUFFER_LINES: usize = 1 << 20;
const DEFAULT_SERVICE_NAME: &str = "switchyard";
const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_STATE_TIMEOUT: Duration = Duration::from_millis(200);
const QUERY_OPERATORS: [&str; 11] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$and", "$or",
];

/// Reads, parses, resolves secrets, validates and compiles the config file at `path`.
pub fn load_file(path: &Path) -> Result<Snapshot, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| one("", format!("cannot read {}: {e}", path.display())))?;
    compile_text(&text, path.parent(), Some(path.to_path_buf()))
}

/// [`load_file`], then [`serving_errors`]: what `check` and every reload accept.
pub fn load_file_to_serve(path: &Path) -> Result<Snapshot, ConfigErrors> {
    let snapshot = load_file(path)?;
    let errors = serving_errors(&snapshot);
    if errors.is_empty() {
        Ok(snapshot)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// What makes a well-formed config unable to serve anything: no providers, or no way for any
/// request to be routed (no enabled virtual key, no `default_config`, no forward-proxy
/// interception route), so every request would be a 401. `check` and reloads refuse these;
/// `run` only warns (a config being written for a later reload may start that way).
pub fn serving_errors(snapshot: &Snapshot) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if snapshot.providers.is_empty() {
        errors.push(ConfigError {
            path: "providers".into(),
            message: "no provider is defined: every request would fail".into(),
        });
    }
    let any_key = snapshot.virtual_keys.values().any(|k| !k.disabled);
    let intercepts = snapshot
        .forward
        .as_ref()
        .is_some_and(|f| f.intercept.iter().any(|r| r.route.is_some()));
    if !any_key && snapshot.default_config.is_none() && !intercepts {
        errors.push(ConfigError {
            path: "virtual_keys".into(),
            message: "no enabled virtual key, no default_config and no forward-proxy \
                      interception: every request would be refused with 401"
                .into(),
        });
    }
    errors
}

/// A reload that would drop every enabled virtual key of the live config is refused: that is
/// what a file truncated mid-write (or a ConfigMap cut short) usually parses into, and it would
/// turn all live traffic into 401s. Removing the last key takes a restart.
pub fn reload_errors(live: &Snapshot, new: &Snapshot) -> Vec<ConfigError> {
    let enabled = |s: &Snapshot| s.virtual_keys.values().filter(|k| !k.disabled).count();
    if enabled(live) > 0 && enabled(new) == 0 {
        return vec![ConfigError {
            path: "virtual_keys".into(),
            message: format!(
                "the new config has no enabled virtual key while the live one has {}: \
                 refusing (a truncated file?); restart to remove every key",
                enabled(live)
            ),
        }];
    }
    Vec::new()
}

/// Like [`load_file`] for text already read; `base_dir` resolves relative `*_file` paths.
pub fn load_str(text: &str, base_dir: Option<&Path>) -> Result<Snapshot, ConfigErrors> {
    compile_text(text, base_dir, None)
}

fn compile_text(
    text: &str,
    base_dir: Option<&Path>,
    source: Option<PathBuf>,
) -> Result<Snapshot, ConfigErrors> {
    let mut tree: Value = serde_saphyr::from_str(text).map_err(|e| yaml_error(&e))?;
    if tree.is_null() {
        // `: > switchyard.yaml` mid-rollout, or a ConfigMap key left empty: serving "no
        // config" would turn every request into a 401, so it is never a valid config.
        return Err(one(
            "",
            "the config file is empty (no YAML mapping, only whitespace or comments)",
        ));
    }
    if !tree.is_object() {
        return Err(one("", "the config must be a YAML mapping"));
    }
    let mut redacted = redact(tree.clone());
    let mut errors = Vec::new();
    secrets::interpolate_env(&mut tree, "", &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let file: FileConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        one(
            if path == "." { "" } else { &path },
            scrub(&e.into_inner().to_string()),
        )
    })?;
    label_keys(
        &mut redacted,
        file.telemetry.key_labels == KeyLabelsSpec::Name,
    );
    let mut compiler = Compiler {
        errors: Vec::new(),
        base_dir,
        hasher: Sha256::new(),
        source_files: source.into_iter().collect(),
        known_models: HashSet::new(),
    };
    compiler.hasher.update(text.as_bytes());
    let snapshot = compiler.compile(file, redacted);
    if compiler.errors.is_empty() {
        snapshot.ok_or_else(|| one("", "config did not compile"))
    } else {
        Err(ConfigErrors(compiler.errors))
    }
}

/// A YAML syntax error as reason and position only: the parser's own rendering quotes the
/// source lines around the error, which may hold a key (`api_key: sk-…` on the line above).
fn yaml_error(e: &serde_saphyr::Error) -> ConfigErrors {
    let reason = scrub(&e.without_snippet().render());
    let at = e
        .location()
        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    one("", format!("invalid YAML{at}: {reason}"))
}

/// Longest reason kept from a parser message.
const MAX_REASON_CHARS: usize = 160;

/// The one place parser and deserializer messages pass through before they are shown (by
/// `check`, on `/config`, on the console and in the log): keep the first line only (later
/// lines are source excerpts), drop every quoted span (`"…"`, `'…'`: values as written) and
/// every backquoted span that is not a plain field name, and bound the length.
pub fn scrub(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let mut out = String::with_capacity(line.len().min(MAX_REASON_CHARS));
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'', '`']) {
        out.push_str(&rest[..start]);
        let quote = rest[start..].chars().next().unwrap_or('"');
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else {
            // An unterminated quote: drop everything after it.
            out.push('…');
            rest = "";
            break;
        };
        let inner = &after[..end];
        let field_name = quote == '`'
            && !inner.is_empty()
            && inner.len() <= 40
            && inner
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if field_name {
            out.push('`');
            out.push_str(inner);
            out.push('`');
        } else {
            out.push('…');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_REASON_CHARS {
        out = out.chars().take(MAX_REASON_CHARS).collect();
        out.push('…');
    }
    out
}

/// Virtual-key names are bearer credentials: `/config` shows them as their labels (the keys of
/// `virtual_keys`, and every `virtual_key:` reference), unless `telemetry.key_labels: name`.
fn label_keys(tree: &mut Value, as_names: bool) {
    fn walk(v: &mut Value, as_names: bool) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "virtual_key" {
                        if let Value::String(name) = child {
                            *name = key_label(name, as_names);
                        }
                    } else {
                        walk(child, as_names);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, as_names)),
            _ => {}
        }
    }
    if as_names {
        return;
    }
    walk(tree, as_names);
    if let Some(Value::Object(keys)) = tree.get_mut("virtual_keys") {
        let relabelled = std::mem::take(keys)
            .into_iter()
            .map(|(name, spec)| (key_label(&name, as_names), spec))
            .collect();
        *keys = relabelled;
    }
}

/// The `/config` view: every credential-bearing value replaced before anything is resolved.
fn redact(mut tree: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    match k.as_str() {
                        "api_key" | "redis_url" => *child = Value::String(REDACTED.into()),
                        "headers" => {
                            if let Value::Object(h) = child {
                                for hv in h.values_mut() {
                                    *hv = Value::String(REDACTED.into());
                                }
                            } else {
                                *child = Value::String(REDACTED.into());
                            }
                        }
                        _ => walk(child),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut tree);
    tree
}

struct Compiler<'a> {
    errors: Vec<ConfigError>,
    base_dir: Option<&'a Path>,
    hasher: Sha256,
    source_files: Vec<PathBuf>,
    known_models: HashSet<String>,
}

impl Compiler<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn addr(&mut self, path: &str, value: Option<&str>, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        match text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    path,
                    format!("invalid address {text:?}: expected IP:PORT, e.g. 127.0.0.1:8080"),
                );
                // Unused: the snapshot is discarded when there are errors.
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        }
    }

    fn compile(&mut self, file: FileConfig, mut redacted: Value) -> Option<Snapshot> {
        let listen = self.addr("listen", file.listen.as_deref(), DEFAULT_LISTEN);
        let admin_listen = self.addr(
            "admin_listen",
            file.admin_listen.as_deref(),
            DEFAULT_ADMIN_LISTEN,
        );
        let threads = file.threads.unwrap_or(DEFAULT_THREADS);
        if threads == 0 || threads > 256 {
            self.error("threads", "must be between 1 and 256");
        }
        let limits = RequestLimits {
            max_request_body_bytes: self.positive_size(
                "limits.max_request_body_bytes",
                file.limits.max_request_body_bytes,
            ),
            max_response_body_bytes: self.positive_size(
                "limits.max_response_body_bytes",
                file.limits.max_response_body_bytes,
            ),
            header_timeout: file
                .limits
                .header_timeout_ms
                .map_or(DEFAULT_HEADER_TIMEOUT, |t| t.0),
            keepalive_idle: file
                .limits
                .keepalive_idle_ms
                .map_or(DEFAULT_KEEPALIVE_IDLE, |t| t.0),
            max_header_bytes: self.bounded_size(
                "limits.max_header_bytes",
                file.limits.max_header_bytes,
                DEFAULT_MAX_HEADER_BYTES,
                1 << 20,
            ),
            body_timeout: file
                .limits
                .body_timeout_ms
                .map_or(DEFAULT_BODY_TIMEOUT, |t| t.0),
            min_body_rate: file.limits.min_body_rate.unwrap_or(DEFAULT_MIN_BODY_RATE),
            write_timeout: file
                .limits
                .write_timeout_ms
                .map_or(DEFAULT_WRITE_TIMEOUT, |t| t.0),
            max_connections: self.bounded_size(
                "limits.max_connections",
                file.limits.max_connections,
                DEFAULT_MAX_CONNECTIONS,
                1 << 20,
            ),
        };
        let circuit_breaker = self.breaker(
            "circuit_breaker",
            file.circuit_breaker.as_ref(),
            &Default::default(),
        );

        let mut providers = Vec::new();
        let mut provider_by_name = HashMap::new();
        for (name, spec) in &file.providers {
            if let Some(p) = self.provider(name, spec) {
                let p = Arc::new(p);
                provider_by_name.insert(name.clone(), p.clone());
                providers.push(p);
            }
        }

        let key_names = file.telemetry.key_labels == KeyLabelsSpec::Name;
        let mut virtual_keys = HashMap::new();
        for (name, spec) in &file.virtual_keys {
            let path = format!("virtual_keys.{name}");
            let Some(provider) = provider_by_name.get(&spec.provider).cloned() else {
                if !file.providers.contains_key(&spec.provider) {
                    self.error(
                        format!("{path}.provider"),
                        format!("unknown provider {:?}", spec.provider),
                    );
                }
                continue;
            };
            if let Some(config) = &spec.config {
                if !file.configs.contains_key(config) {
                    self.error(
                        format!("{path}.config"),
                        format!("unknown config {config:?}"),
                    );
                }
            }
            if let Some(models) = &spec.models {
                if models.is_empty() {
                    self.error(
                        format!("{path}.models"),
                        "an empty allowlist allows nothing; omit it to allow any model",
                    );
                }
                self.known_models.extend(models.iter().cloned());
            }
            let limits = spec.limits.as_ref().map(|l| KeyLimits {
                rpm: l.rpm,
                tpm: l.tpm,
                concurrent: l.concurrent,
                usd_per_day: l.usd_per_day,
                usd_per_month: l.usd_per_month,
            });
            if let Some(l) = &limits {
                for (field, v) in [
                    ("usd_per_day", l.usd_per_day),
                    ("usd_per_month", l.usd_per_month),
                ] {
                    if v.is_some_and(|v| v.is_nan() || v < 0.0) {
                        self.error(format!("{path}.limits.{field}"), "must be zero or more");
                    }
                }
            }
            virtual_keys.insert(
                name.clone(),
                Arc::new(VirtualKey {
                    name: name.clone(),
                    label: key_label(name, key_names),
                    provider,
                    models: spec.models.clone(),
                    config: spec.config.clone(),
                    disabled: spec.disabled,
                    limits: limits.unwrap_or_default(),
                }),
            );
        }

        if let Some(default) = &file.default_config {
            if !file.configs.contains_key(default) {
                self.error("default_config", format!("unknown config {default:?}"));
            }
        }

        let root_settings = TargetSettings {
            retry: RetrySettings::default(),
            request_timeout: None,
            timeouts: default_timeouts(file.timeouts.as_ref(), &mut redacted),
            override_params: Default::default(),
            circuit_breaker: circuit_breaker.clone(),
            cache: None,
            input_guardrails: None,
            output_guardrails: None,
        };
        let mut configs = HashMap::new();
        for (name, spec) in &file.configs {
            let yaml_path = format!("configs.{name}");
            if let Some(root) = self.node(
                spec,
                &yaml_path,
                "config".into(),
                &root_settings,
                &virtual_keys,
                &file,
                name,
            ) {
                let mut root = root;
                if let Some(c) = &spec.cache {
                    let ctx = crate::cache::config::Context {
                        virtual_keys: &virtual_keys,
                        has_state: file.state.is_some(),
                        config_name: name,
                        base_dir: self.base_dir,
                    };
                    let (settings, errors) = crate::cache::config::compile(c, &yaml_path, &ctx);
                    for (path, message) in errors {
                        self.error(path, message);
                    }
                    if let Some(model) = settings.as_ref().and_then(|s| match &s.embedder {
                        Some(crate::config::Embedder::Target { model, .. }) => Some(model),
                        _ => None,
                    }) {
                        self.known_models.insert(model.clone());
                    }
                    root.settings.cache =
                        settings.map(|s| crate::cache::route::RouteKeys::attach(s, &root));
                }
                configs.insert(
                    name.clone(),
                    Arc::new(RouteConfig {
                        name: name.clone(),
                        needs_body: root.needs_body(),
                        governed_keys: root.limited_keys(),
                        root,
                    }),
                );
            }
        }

        let direct_routes = virtual_keys
            .iter()
            .map(|(name, key)| {
                let root = Target {
                    path: "config".into(),
                    // Shown on the console and as the `target` label: the key's label.
                    breaker_key: format!("direct/{}", key.label),
                    name: Some(key.label.clone()),
                    weight: 1.0,
                    kind: TargetKind::Leaf {
                        virtual_key: key.clone(),
                    },
                    settings: root_settings.clone(),
                };
                let route = RouteConfig {
                    name: "direct".into(),
                    needs_body: root.needs_body(),
                    governed_keys: root.limited_keys(),
                    root,
                };
                (name.clone(), Arc::new(route))
            })
            .collect();

        let state = file.state.as_ref().map(|s| {
            if s.redis_url.starts_with("rediss://") {
                self.error(
                    "state.redis_url",
                    "rediss:// (TLS) is not supported yet: use redis:// (in-cluster, or through a TLS sidecar)",
                );
            } else if !s.redis_url.starts_with("redis://") {
                self.error("state.redis_url", "must start with redis://");
            } else if redis::Client::open(s.redis_url.as_str()).is_err() {
                // The URL is not echoed: it may carry a password.
                self.error(
                    "state.redis_url",
                    "not a valid Redis URL (redis://[user:password@]host[:port][/db])",
                );
            }
            StateSettings {
                redis_url: Secret::new(s.redis_url.clone()),
                on_state_error_allow: matches!(s.on_state_error, Some(OnStateError::Allow)),
                timeout: s.timeout_ms.map_or(DEFAULT_STATE_TIMEOUT, |t| t.0),
            }
        });
        let forward = file
            .forward
            .as_ref()
            .and_then(|f| self.forward(f, &providers, &root_settings));

        let telemetry = self.telemetry(&file.telemetry);
        let admin = self.admin(&file.admin);

        let digest = std::mem::take(&mut self.hasher).finalize();
        let hash = hex::encode(&digest[..8]);
        Some(Snapshot {
            hash,
            source_files: std::mem::take(&mut self.source_files),
            listen,
            admin_listen,
            threads,
            limits,
            shutdown_grace: file
                .shutdown_grace
                .map(|s| s.0)
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            providers,
            virtual_keys,
            configs,
            direct_routes,
            default_config: file.default_config.clone(),
            allow_inline_configs: file.allow_inline_configs,
            circuit_breaker,
            state,
            forward,
            known_models: std::mem::take(&mut self.known_models),
            telemetry,
            redacted,
            admin,
        })
    }

    /// `admin:`: allowed Host names (checked to be plain DNS names) and the token file (read,
    /// hashed into the config hash and watched, so a rotated token is picked up on reload).
    fn admin(&mut self, spec: &AdminSpec) -> AdminSettings {
        let mut allowed_hosts = Vec::new();
        for (i, host) in spec.allowed_hosts.iter().flatten().enumerate() {
            let host = host.trim().to_ascii_lowercase();
            let valid = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if valid {
                allowed_hosts.push(host);
            } else {
                self.error(
                    format!("admin.allowed_hosts[{i}]"),
                    "not a host name (letters, digits, '-' and '.'; no port)",
                );
            }
        }
        let token = spec.token_file.as_ref().and_then(|file| {
            let resolved = secrets::resolve_path(file, self.base_dir);
            match secrets::read_secret_file(&resolved) {
                Ok((token, bytes)) if token.len() >= MIN_ADMIN_TOKEN_CHARS => {
                    self.hasher.update(&bytes);
                    self.source_files.push(resolved);
                    Some(Secret::new(token))
                }
                Ok(_) => {
                    self.error(
                        "admin.token_file",
                        format!("the token must have at least {MIN_ADMIN_TOKEN_CHARS} characters"),
                    );
                    None
                }
                Err(e) => {
                    self.error("admin.token_file", e);
                    None
                }
            }
        });
        AdminSettings {
            allowed_hosts,
            token,
        }
    }

    /// `forward:`: the CA files loaded and checked, the host patterns parsed, and each
    /// intercepted host's provider inferred (see [`infer_forward_provider`]).
    fn forward(
        &mut self,
        spec: &ForwardSpec,
        providers: &[Arc<Provider>],
        root_settings: &TargetSettings,
    ) -> Option<ForwardSettings> {
        let cert_path = secrets::resolve_path(&spec.ca_cert, self.base_dir);
        let key_path = secrets::resolve_path(&spec.ca_key, self.base_dir);
        let ca = match LocalCa::load(&cert_path, &key_path) {
            Ok((ca, bytes)) => {
                self.hasher.update(&bytes);
                self.source_files.push(cert_path);
                self.source_files.push(key_path);
                Some(Arc::new(ca))
            }
            Err(e) => {
                let field = match e {
                    CaError::BadKey { .. }
                    | CaError::KeyMismatch { .. }
                    | CaError::KeyPermissions { .. } => "forward.ca_key",
                    CaError::Read { ref path, .. } if *path == key_path => "forward.ca_key",
                    _ => "forward.ca_cert",
                };
                self.error(field, e.to_string());
                None
            }
        };
        let default_intercept = DEFAULT_INTERCEPT.map(String::from);
        let written = spec.intercept.as_deref().unwrap_or(&default_intercept);
        let mut routes: HashMap<String, Arc<RouteConfig>> = HashMap::new();
        let mut intercept = Vec::new();
        for (i, text) in written.iter().enumerate() {
            let path = format!("forward.intercept[{i}]");
            let pattern = match HostPattern::parse(text) {
                Ok(p) => p,
                Err(e) => {
                    self.error(path, e);
                    continue;
                }
            };
            let chosen = match spec.providers.as_ref().and_then(|m| m.get(text.trim())) {
                Some(name) => match providers.iter().find(|p| &p.name == name) {
                    Some(p) => Some(p.clone()),
                    None => {
                        self.error(
                            format!("forward.providers.{}", text.trim()),
                            format!("unknown provider {name:?}"),
                        );
                        None
                    }
                },
                None => match infer_forward_provider(&pattern, providers) {
                    Ok(p) => p,
                    Err(e) => {
                        self.error(path, e);
                        None
                    }
                },
            };
            let route = chosen.map(|provider| {
                routes
                    .entry(provider.name.clone())
                    .or_insert_with(|| forward_route(provider, root_settings))
                    .clone()
            });
            if ca.as_ref().is_some_and(|ca| !ca.permits(&pattern)) {
                self.error(
                    format!("forward.intercept[{i}]"),
                    format!("the CA's name constraints do not permit {pattern}: re-create it with `switchyard ca init --permit <domain>`"),
                );
            }
            intercept.push(InterceptRule { pattern, route });
        }
        for key in spec.providers.iter().flat_map(|m| m.keys()) {
            if !written.iter().any(|w| w.trim() == key) {
                self.error(
                    format!("forward.providers.{key}"),
                    "not an entry of forward.intercept",
                );
            }
        }
        let mut allow_hosts = Vec::new();
        for (i, text) in spec.allow_hosts.iter().flatten().enumerate() {
            match crate::server::forward::hosts::AllowHost::parse(text) {
                Ok(p) => allow_hosts.push(p),
                Err(e) => self.error(format!("forward.allow_hosts[{i}]"), e),
            }
        }
        Some(ForwardSettings {
            ca: ca?,
            intercept,
            allow_hosts,
        })
    }

    fn telemetry(&mut self, spec: &TelemetrySpec) -> TelemetrySettings {
        let access_log = spec
            .access_log
            .as_ref()
            .map(|a| self.access_log(a))
            .unwrap_or_default();
        let otlp = spec.otlp.as_ref().and_then(|o| self.otlp(o));
        TelemetrySettings {
            access_log,
            log_bodies: spec.log_bodies,
            otlp,
            prices: Arc::new(self.prices(spec)),
        }
    }

    fn access_log(&mut self, spec: &AccessLogSpec) -> AccessLogSettings {
        let defaults = AccessLogSettings::default();
        let target = match spec.path.as_deref().map(str::trim) {
            None | Some("stdout") => LogTarget::Stdout,
            Some("stderr") => LogTarget::Stderr,
            Some("off") => LogTarget::Off,
            Some("") => {
                self.error(
                    "telemetry.access_log.path",
                    "is empty: use stdout, stderr, off or a file path",
                );
                LogTarget::Off
            }
            Some(file) => {
                let path = secrets::resolve_path(file, self.base_dir);
                if path.is_dir() {
                    self.error(
                        "telemetry.access_log.path",
                        format!("{} is a directory, not a file", path.display()),
                    );
                }
                LogTarget::File(path)
            }
        };
        let buffer_lines = match spec.buffer_lines {
            None => defaults.buffer_lines,
            Some(n) if (1..=MAX_ACCESS_LOG_BUFFER_LINES).contains(&n) => n,
            Some(_) => {
                self.error(
                    "telemetry.access_log.buffer_lines",
                    format!("must be between 1 and {MAX_ACCESS_LOG_BUFFER_LINES}"),
                );
                defaults.buffer_lines
            }
        };
        AccessLogSettings {
            target,
            buffer_lines,
        }
    }

    fn otlp(&mut self, spec: &OtlpSpec) -> Option<OtlpConfig> {
        let path = "telemetry.otlp";
        let endpoint = spec.endpoint.trim();
        let mut ok = true;
        if let Err(e) = parse_base_url(endpoint) {
            self.error(format!("{path}.endpoint"), e);
            ok = false;
        }
        let mut headers = Vec::new();
        for (name, value) in spec.headers.iter().flatten() {
            let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok();
            if valid {
                headers.push((name.to_ascii_lowercase(), Secret::new(value.clone())));
            } else {
                // Never echo the value: it is a credential.
                self.error(
                    format!("{path}.headers.{name}"),
                    "not a valid header name or value",
                );
                ok = false;
            }
        }
        let service_name = spec
            .service_name
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_SERVICE_NAME);
        if service_name.is_empty() {
            self.error(format!("{path}.service_name"), "is empty");
            ok = false;
        }
        ok.then(|| OtlpConfig {
            endpoint: endpoint.to_string(),
            headers,
            service_name: service_name.to_string(),
            timeout: spec.timeout_ms.map(|t| t.0).unwrap_or(DEFAULT_OTLP_TIMEOUT),
        })
    }

    /// Reads a price file named by the config: its bytes feed the hash and the reloader
    /// watches it.
    fn read_price_file(&mut self, path: &str, file: &str) -> Option<String> {
        let resolved = secrets::resolve_path(file, self.base_dir);
        let bytes = match std::fs::read(&resolved) {
            Ok(b) => b,
            Err(e) => {
                self.error(path, format!("cannot read {}: {e}", resolved.display()));
                return None;
            }
        };
        self.hasher.update(&bytes);
        self.source_files.push(resolved.clone());
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                self.error(path, format!("{} is not UTF-8", resolved.display()));
                None
            }
        }
    }

    fn prices(&mut self, spec: &TelemetrySpec) -> PriceTable {
        let mut table = match &spec.prices_file {
            Some(file) => {
                let path = "telemetry.prices_file";
                self.read_price_file(path, file).and_then(|text| {
                    match PriceTable::from_yaml(&text) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            self.error(path, format!("{file}: {e}"));
                            None
                        }
                    }
                })
            }
            None => match PriceTable::embedded() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.error(
                        "telemetry.prices_file",
                        format!("the built-in price table is invalid: {e}"),
                    );
                    None
                }
            },
        }
        .unwrap_or_default();
        if let Some(file) = &spec.litellm_prices_file {
            let path = "telemetry.litellm_prices_file";
            if let Some(text) = self.read_price_file(path, file) {
                match PriceTable::from_litellm_json(&text) {
                    Ok(litellm) => table = litellm.merged_with(table),
                    Err(e) => self.error(path, format!("{file}: {e}")),
                }
            }
        }
        if let Some(prices) = &spec.prices {
            let entries = prices.iter().map(|(k, v)| (k.as_str(), v));
            match PriceTable::from_overrides(entries, "telemetry.prices") {
                Ok(overrides) => table = table.merged_with(overrides),
                Err(PriceError::Invalid { path, message }) => self.error(path, message),
                Err(e) => self.error("telemetry.prices", e.to_string()),
            }
        }
        table
    }

    fn positive_size(&mut self, path: &str, value: Option<usize>) -> usize {
        match value {
            Some(0) => {
                self.error(path, "must be greater than zero");
                DEFAULT_BODY_LIMIT
            }
            Some(v) => v,
            None => DEFAULT_BODY_LIMIT,
        }
    }

    /// A count between 1 and `max`, else an error at `path`.
    fn bounded_size(
        &mut self,
        path: &str,
        value: Option<usize>,
        default: usize,
        max: usize,
    ) -> usize {
        match value {
            None => default,
            Some(v) if v == 0 || v > max => {
                self.error(path, format!("must be between 1 and {max}"));
                default
            }
            Some(v) => v,
        }
    }

    fn provider(&mut self, name: &str, spec: &ProviderSpec) -> Option<Provider> {
        let path = format!("providers.{name}");
        let kind = match spec.kind {
            ProviderKindSpec::Openai => ProviderKind::OpenAi,
            ProviderKindSpec::AzureOpenai => ProviderKind::AzureOpenAi,
            ProviderKindSpec::Anthropic => ProviderKind::Anthropic,
            ProviderKindSpec::Gemini => ProviderKind::Gemini,
            ProviderKindSpec::OpenaiCompatible => ProviderKind::OpenAiCompatible,
        };
        let default_url = match kind {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => None,
        };
        let base_url = match spec.base_url.as_deref().or(default_url) {
            Some(url) => match parse_base_url(url) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.error(format!("{path}.base_url"), e);
                    None
                }
            },
            None => {
                self.error(
                    format!("{path}.base_url"),
                    format!("required for kind {}", kind.as_str()),
                );
                None
            }
        };
        let api_key = match (&spec.api_key, &spec.api_key_file) {
            (Some(_), Some(_)) => {
                self.error(
                    format!("{path}.api_key_file"),
                    "set either api_key or api_key_file, not both",
                );
                None
            }
            (Some(key), None) => {
                if key.trim().is_empty() {
                    self.error(format!("{path}.api_key"), "is empty");
                }
                Some(Secret::new(key.trim().to_string()))
            }
            (None, Some(file)) => {
                let resolved = secrets::resolve_path(file, self.base_dir);
                match secrets::read_secret_file(&resolved) {
                    Ok((key, bytes)) => {
                        self.hasher.update(&bytes);
                        self.source_files.push(resolved);
                        Some(Secret::new(key))
                    }
                    Err(e) => {
                        self.error(format!("{path}.api_key_file"), e);
                        None
                    }
                }
            }
            (None, None) => {
                if kind != ProviderKind::OpenAiCompatible {
                    self.error(
                        format!("{path}.api_key"),
                        format!("kind {} needs api_key or api_key_file", kind.as_str()),
                    );
                }
                None
            }
        };
        let auth_header = spec
            .auth_header
            .clone()
            .map(|h| h.to_ascii_lowercase())
            .unwrap_or_else(|| {
                match kind {
                    ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => "authorization",
                    ProviderKind::AzureOpenAi => "api-key",
                    ProviderKind::Anthropic => "x-api-key",
                    ProviderKind::Gemini => "x-goog-api-key",
                }
                .to_string()
            });
        if http::HeaderName::from_bytes(auth_header.as_bytes()).is_err() {
            self.error(format!("{path}.auth_header"), "not a valid header name");
        }
        let mut headers = Vec::new();
        for (k, v) in spec.headers.iter().flatten() {
            let ok = http::HeaderName::from_bytes(k.as_bytes()).is_ok()
                && http::HeaderValue::from_str(v).is_ok();
            if ok {
                headers.push((k.to_ascii_lowercase(), v.clone()));
            } else {
                self.error(
                    format!("{path}.headers.{k}"),
                    "not a valid header name or value",
                );
            }
        }
        let ca_file = spec.ca_file.as_ref().map(|f| {
            let p = secrets::resolve_path(f, self.base_dir);
            if let Err(e) = std::fs::metadata(&p) {
                self.error(
                    format!("{path}.ca_file"),
                    format!("cannot read {}: {e}", p.display()),
                );
            }
            p
        });
        let mut deployments = HashMap::new();
        if let Some(map) = &spec.deployments {
            if kind != ProviderKind::AzureOpenAi {
                self.error(
                    format!("{path}.deployments"),
                    format!(
                        "only kind azure-openai has deployments, not {}",
                        kind.as_str()
                    ),
                );
            }
            for (model, deployment) in map {
                if deployment.trim().is_empty() {
                    self.error(format!("{path}.deployments.{model}"), "is empty");
                } else {
                    deployments.insert(model.clone(), deployment.trim().to_string());
                }
            }
        }
        Some(Provider {
            name: name.to_string(),
            kind,
            base_url: base_url?,
            api_key,
            auth_header,
            ca_file,
            api_version: spec.api_version.clone(),
            headers,
            deployments,
        })
    }

    fn breaker(
        &mut self,
        path: &str,
        spec: Option<&BreakerSpec>,
        parent: &CircuitBreakerSettings,
    ) -> CircuitBreakerSettings {
        let Some(spec) = spec else {
            return parent.clone();
        };
        for (field, v) in [
            ("failure_rate", spec.failure_rate),
            ("slow_call_rate", spec.slow_call_rate),
        ] {
            if v.is_some_and(|v| !(0.0..=1.0).contains(&v) || v == 0.0) {
                self.error(format!("{path}.{field}"), "must be in (0, 1]");
            }
        }
        if spec.min_calls == Some(0) {
            self.error(format!("{path}.min_calls"), "must be at least 1");
        }
        if spec.half_open_probes == Some(0) {
            self.error(format!("{path}.half_open_probes"), "must be at least 1");
        }
        CircuitBreakerSettings {
            enabled: spec.enabled.unwrap_or(parent.enabled),
            window: spec.window_s.map(|d| d.0).unwrap_or(parent.window),
            min_calls: spec.min_calls.unwrap_or(parent.min_calls),
            failure_rate: spec.failure_rate.unwrap_or(parent.failure_rate),
            slow_call: spec.slow_call_ms.map(|d| d.0).or(parent.slow_call),
            slow_call_rate: spec.slow_call_rate.unwrap_or(parent.slow_call_rate),
            open_for: spec.open_s.map(|d| d.0).unwrap_or(parent.open_for),
            half_open_probes: spec.half_open_probes.unwrap_or(parent.half_open_probes),
        }
    }

    fn status_codes(&mut self, path: &str, codes: &[i64]) -> Vec<u16> {
        let mut out = Vec::with_capacity(codes.len());
        for (i, c) in codes.iter().enumerate() {
            if (100..=599).contains(c) {
                out.push(*c as u16);
            } else {
                self.error(
                    format!("{path}[{i}]"),
                    format!("{c} is not an HTTP status code (100-599)"),
                );
            }
        }
        out
    }

    /// The settings of a node: its own where set, else its parent's.
    fn settings(&mut self, spec: &NodeSpec, path: &str, parent: &TargetSettings) -> TargetSettings {
        let retry = match &spec.retry {
            Some(r) => RetrySettings {
                attempts: r.attempts,
                on_status_codes: match &r.on_status_codes {
                    Some(c) => self.status_codes(&format!("{path}.retry.on_status_codes"), c),
                    None => RetrySettings::default().on_status_codes,
                },
                use_retry_after: r.use_retry_after_header.unwrap_or(true),
            },
            None => parent.retry.clone(),
        };
        if spec.retry.as_ref().is_some_and(|r| r.attempts > 10) {
            self.error(format!("{path}.retry.attempts"), "at most 10");
        }
        let timeouts = match &spec.timeouts {
            Some(t) => PhaseTimeouts {
                connect: t.connect_ms.map(|d| d.0).or(parent.timeouts.connect),
                headers: parent.timeouts.headers,
                ttft: t.ttft_ms.map(|d| d.0).or(parent.timeouts.ttft),
                idle: t.idle_ms.map(|d| d.0).or(parent.timeouts.idle),
                total: t.total_ms.map(|d| d.0).or(parent.timeouts.total),
            },
            None => parent.timeouts.clone(),
        };
        let mut override_params = parent.override_params.clone();
        if let Some(own) = &spec.override_params {
            for (k, v) in own {
                override_params.insert(k.clone(), v.clone());
            }
        }
        if let Some(model) = override_params.get("model") {
            match model.as_str() {
                Some(m) => {
                    self.known_models.insert(m.to_string());
                }
                None => self.error(format!("{path}.override_params.model"), "must be a string"),
            }
        }
        // The lookup runs before routing: only the config's own `cache` applies (compiled with
        // the config, in `compile`).
        if spec.cache.is_some() && path.contains(".targets[") {
            self.error(
                format!("{path}.cache"),
                "cache is set on a config, not on a target (the lookup runs before routing)",
            );
        }
        let cache = None;
        let input_guardrails = match &spec.input_guardrails {
            Some(g) => self.guardrails(&format!("{path}.input_guardrails"), g, Stage::Input),
            None => parent.input_guardrails.clone(),
        };
        let output_guardrails = match &spec.output_guardrails {
            Some(g) => self.guardrails(&format!("{path}.output_guardrails"), g, Stage::Output),
            None => parent.output_guardrails.clone(),
        };
        TargetSettings {
            retry,
            request_timeout: spec.request_timeout.map(|d| d.0).or(parent.request_timeout),
            timeouts,
            override_params,
            circuit_breaker: self.breaker(
                &format!("{path}.circuit_breaker"),
                spec.circuit_breaker.as_ref(),
                &parent.circuit_breaker,
            ),
            cache,
            input_guardrails,
            output_guardrails,
        }
    }

    /// Compiles a guardrail list (`crate::guardrails::compile`), collecting its errors.
    fn guardrails(
        &mut self,
        path: &str,
        list: &[crate::guardrails::GuardrailSpec],
        stage: Stage,
    ) -> Option<Arc<crate::guardrails::Guardrails>> {
        match crate::guardrails::compile(stage, list, path) {
            Ok(g) => g,
            Err(errors) => {
                for (p, m) in errors {
                    self.error(p, m);
                }
                None
            }
        }
    }

    /// Validates a Portkey query: `{ "metadata.x": {"$eq": v}, "$or": [ ... ] }`.
    fn query(&mut self, path: &str, query: &Value) {
        let Some(obj) = query.as_object() else {
            self.error(path, "a query must be a mapping");
            return;
        };
        for (key, value) in obj {
            let p = format!("{path}.{key}");
            if key == "$and" || key == "$or" {
                match value.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.query(&format!("{p}[{i}]"), item);
                        }
                    }
                    None => self.error(p, format!("{key} takes a list of queries")),
                }
                continue;
            }
            if !(key.starts_with("metadata.")
                || key.starts_with("params.")
                || key == "url.pathname")
            {
                self.error(
                    p,
                    "query keys are metadata.<key>, params.<key>, $and or $or",
                );
                continue;
            }
            let Some(ops) = value.as_object() else {
                continue; // a bare value means $eq
            };
            for (op, operand) in ops {
                if !QUERY_OPERATORS.contains(&op.as_str()) {
                    self.error(format!("{p}.{op}"), format!("unknown operator {op}"));
                } else if op == "$regex" {
                    match operand.as_str().map(regex::Regex::new) {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            self.error(format!("{p}.{op}"), format!("invalid regex: {e}"))
                        }
                        None => self.error(format!("{p}.{op}"), "must be a string"),
                    }
                } else if (op == "$in" || op == "$nin") && !operand.is_array() {
                    self.error(format!("{p}.{op}"), "must be a list");
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        option_path: String,
        parent: &TargetSettings,
        virtual_keys: &HashMap<String, Arc<VirtualKey>>,
        file: &FileConfig,
        config_name: &str,
    ) -> Option<Target> {
        let settings = self.settings(spec, yaml_path, parent);
        let weight = spec.weight.unwrap_or(1.0);
        if weight.is_nan() || weight <= 0.0 || weight.is_infinite() {
            self.error(format!("{yaml_path}.weight"), "must be greater than zero");
        }
        let kind = match (&spec.virtual_key, &spec.targets) {
            (Some(_), Some(_)) => {
                self.error(
                    yaml_path,
                    "a target has either virtual_key or targets, not both",
                );
                return None;
            }
            (None, None) => {
                self.error(yaml_path, "a target needs virtual_key or targets");
                return None;
            }
            (Some(vk), None) => {
                if spec.strategy.is_some() {
                    self.error(format!("{yaml_path}.strategy"), "a strategy needs targets");
                }
                match virtual_keys.get(vk) {
                    Some(k) => TargetKind::Leaf {
                        virtual_key: k.clone(),
                    },
                    None => {
                        if !file.virtual_keys.contains_key(vk) {
                            self.error(
                                format!("{yaml_path}.virtual_key"),
                                format!("unknown virtual key {vk:?}"),
                            );
                        }
                        return None;
                    }
                }
            }
            (None, Some(children)) => {
                if children.is_empty() {
                    self.error(format!("{yaml_path}.targets"), "must not be empty");
                    return None;
                }
                let strategy = self.strategy(spec, yaml_path, children);
                let mut targets = Vec::with_capacity(children.len());
                for (i, child) in children.iter().enumerate() {
                    if let Some(t) = self.node(
                        child,
                        &format!("{yaml_path}.targets[{i}]"),
                        format!("{option_path}.targets[{i}]"),
                        &settings,
                        virtual_keys,
                        file,
                        config_name,
                    ) {
                        targets.push(t);
                    }
                }
                if targets.len() != children.len() {
                    return None;
                }
                TargetKind::Group { strategy, targets }
            }
        };
        let breaker_key = format!(
            "{config_name}/{}",
            spec.name.as_deref().unwrap_or(&option_path)
        );
        Some(Target {
            breaker_key,
            path: option_path,
            name: spec.name.clone(),
            weight,
            kind,
            settings,
        })
    }

    fn strategy(&mut self, spec: &NodeSpec, yaml_path: &str, children: &[NodeSpec]) -> Strategy {
        let s = spec.strategy.as_ref();
        let sp = format!("{yaml_path}.strategy");
        let mode = match s.map(|s| s.mode) {
            None | Some(ModeSpec::Single) => StrategyMode::Single,
            Some(ModeSpec::Fallback) => StrategyMode::Fallback,
            Some(ModeSpec::Loadbalance) => StrategyMode::LoadBalance,
            Some(ModeSpec::Conditional) => StrategyMode::Conditional,
        };
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, c) in children.iter().enumerate() {
            if let Some(n) = &c.name {
                if names.insert(n.as_str(), i).is_some() {
                    self.error(
                        format!("{yaml_path}.targets[{i}].name"),
                        format!("duplicate target name {n:?}"),
                    );
                }
            }
        }
        let on_status_codes = s
            .and_then(|s| s.on_status_codes.as_ref())
            .map(|c| self.status_codes(&format!("{sp}.on_status_codes"), c));
        if on_status_codes.is_some() && mode != StrategyMode::Fallback {
            self.error(format!("{sp}.on_status_codes"), "only for mode fallback");
        }
        let mut conditions = Vec::new();
        let mut default_target = None;
        if mode == StrategyMode::Conditional {
            let specs = s.and_then(|s| s.conditions.as_ref());
            if specs.is_none_or(|c| c.is_empty()) {
                self.error(
                    format!("{sp}.conditions"),
                    "mode conditional needs conditions",
                );
            }
            for (i, c) in specs.into_iter().flatten().enumerate() {
                self.query(&format!("{sp}.conditions[{i}].query"), &c.query);
                match names.get(c.then.as_str()) {
                    Some(&idx) => conditions.push(Condition {
                        query: c.query.clone(),
                        then: idx,
                    }),
                    None => self.error(
                        format!("{sp}.conditions[{i}].then"),
                        format!("no target named {:?}", c.then),
                    ),
                }
            }
            if let Some(d) = s.and_then(|s| s.default.as_ref()) {
                match names.get(d.as_str()) {
                    Some(&idx) => default_target = Some(idx),
                    None => self.error(format!("{sp}.default"), format!("no target named {d:?}")),
                }
            }
        } else {
            if s.is_some_and(|s| s.conditions.is_some()) {
                self.error(format!("{sp}.conditions"), "only for mode conditional");
            }
            if s.is_some_and(|s| s.default.is_some()) {
                self.error(format!("{sp}.default"), "only for mode conditional");
            }
        }
        let algorithm = match s.and_then(|s| s.algorithm) {
            Some(AlgorithmSpec::LeastLatency) => LbAlgorithm::LeastLatency,
            _ => LbAlgorithm::WeightedRandom,
        };
        if s.and_then(|s| s.algorithm).is_some() && mode != StrategyMode::LoadBalance {
            self.error(format!("{sp}.algorithm"), "only for mode loadbalance");
        }
        let hedge_after = spec.hedge.as_ref().map(|h| h.after_ms.0);
        if hedge_after.is_some() && mode != StrategyMode::Fallback {
            self.error(
                format!("{yaml_path}.hedge"),
                "hedging needs strategy mode fallback",
            );
        }
        Strategy {
            mode,
            on_status_codes,
            algorithm,
            conditions,
            default_target,
            hedge_after,
        }
    }
}

/// The hosts intercepted when `forward.intercept` is not given.
const DEFAULT_INTERCEPT: [&str; 4] = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "*.openai.azure.com",
];

/// The provider an intercepted host's requests go to when they select nothing: the host's
/// provider kind (`api.openai.com` → openai, `api.anthropic.com` → anthropic,
/// `generativelanguage.googleapis.com` → gemini, `*.openai.azure.com` → azure-openai), then the
/// one configured provider of that kind; among several, the one whose `base_url` host is the
/// intercepted host. `Ok(None)`: the host has no known kind, or no provider of it is configured.
fn infer_forward_provider(
    pattern: &HostPattern,
    providers: &[Arc<Provider>],
) -> Result<Option<Arc<Provider>>, String> {
    let kind = match pattern {
        HostPattern::Exact(h) if h == "api.openai.com" => ProviderKind::OpenAi,
        HostPattern::Exact(h) if h == "api.anthropic.com" => ProviderKind::Anthropic,
        HostPattern::Exact(h) if h == "generativelanguage.googleapis.com" => ProviderKind::Gemini,
        HostPattern::Exact(h) if h.ends_with(".openai.azure.com") => ProviderKind::AzureOpenAi,
        HostPattern::Subdomains(s) if s.ends_with(".openai.azure.com") => ProviderKind::AzureOpenAi,
        _ => return Ok(None),
    };
    let of_kind: Vec<&Arc<Provider>> = providers.iter().filter(|p| p.kind == kind).collect();
    if of_kind.len() <= 1 {
        return Ok(of_kind.first().map(|p| (*p).clone()));
    }
    let same_host: Vec<&&Arc<Provider>> = of_kind
        .iter()
        .filter(|p| pattern.matches(&p.base_url.host))
        .collect();
    match same_host.as_slice() {
        [one] => Ok(Some((**one).clone())),
        _ => Err(format!(
            "several {} providers ({}) could serve {pattern}: name one under forward.providers",
            kind.as_str(),
            of_kind
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The root of every target's deadlines: top-level `timeouts:` over the built-in defaults
/// (`crate::upstream::client::DEFAULT_*`), so no upstream attempt is ever unbounded. The
/// effective values replace `timeouts` in the `/config` view (milliseconds).
fn default_timeouts(
    spec: Option<&crate::config::schema::DefaultTimeoutsSpec>,
    view: &mut Value,
) -> PhaseTimeouts {
    use crate::upstream::client as d;
    let spec = spec.cloned().unwrap_or_default();
    let t = PhaseTimeouts {
        connect: Some(spec.connect_ms.map_or(d::DEFAULT_CONNECT_TIMEOUT, |t| t.0)),
        headers: Some(spec.headers_ms.map_or(d::DEFAULT_HEADERS_TIMEOUT, |t| t.0)),
        ttft: spec.ttft_ms.map(|t| t.0),
        idle: Some(spec.idle_ms.map_or(d::DEFAULT_IDLE_TIMEOUT, |t| t.0)),
        total: Some(spec.total_ms.map_or(d::DEFAULT_TOTAL_TIMEOUT, |t| t.0)),
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    if let Some(root) = view.as_object_mut() {
        root.insert(
            "timeouts".into(),
            serde_json::json!({
                "connect_ms": ms(t.connect),
                "headers_ms": ms(t.headers),
                "ttft_ms": ms(t.ttft),
                "idle_ms": ms(t.idle),
                "total_ms": ms(t.total),
            }),
        );
    }
    t
}

/// A one-target route to `provider` with its own credential, labelled `forward` in metrics.
fn forward_route(provider: Arc<Provider>, settings: &TargetSettings) -> Arc<RouteConfig> {
    let key = Arc::new(VirtualKey {
        name: format!("forward:{}", provider.name),
        // Not a credential: the provider's name.
        label: format!("forward:{}", provider.name),
        config: None,
        models: None,
        disabled: false,
        limits: KeyLimits::default(),
        provider: provider.clone(),
    });
    let root = Target {
        path: "config".into(),
        name: Some(provider.name.clone()),
        breaker_key: format!("forward/{}", provider.name),
        weight: 1.0,
        kind: TargetKind::Leaf { virtual_key: key },
        settings: settings.clone(),
    };
    Arc::new(RouteConfig {
        name: "forward".into(),
        needs_body: root.needs_body(),
        governed_keys: Vec::new(),
        root,
    })
}

/// Splits a base URL once so the request path never parses one.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url:?} must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("credentials in base_url are not allowed: use api_key".into());
    }
    if path.contains('?') || path.contains('#') {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("{url:?}: unclosed ["))?;
        let host = &v6[..end];
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("{url:?}: invalid port"))?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("{url:?}: invalid port {p:?}"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(BaseUrl {
        tls,
        host,
        port,
        path: path.trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
providers:
  openai: { kind: openai, api_key: sk-inline-secret }
  local: { kind: openai-compatible, base_url: "http://127.0.0.1:9000/v1/" }
virtual_keys:
  vk-a: { provider: openai, models: [gpt-4o-mini] }
  vk-b: { provider: local }
"#;

    fn errors(text: &str) -> Vec<String> {
        match load_str(text, None) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn has(errors: &[String], needle: &str) -> bool {
        errors.iter().any(|e| e.contains(needle))
    }

    #[test]
    fn a_minimal_file_compiles_with_defaults() {
        let s = load_str(BASE, None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.admin_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(s.threads, 2);
        assert_eq!(s.hash.len(), 16);
        let local = &s.virtual_keys["vk-b"].provider;
        assert_eq!(local.base_url.path, "/v1");
        assert_eq!(local.base_url.port, 9000);
        let openai = &s.virtual_keys["vk-a"].provider;
        assert!(openai.base_url.tls);
        assert_eq!(openai.base_url.host, "api.openai.com");
        assert!(s.known_models.contains("gpt-4o-mini"));
        // Issue 17 finding 3: an empty file is an error everywhere, not "no config".
        for empty in ["", " \n", "# nothing\n", "---\n"] {
            let e = load_str(empty, None).unwrap_err().to_string();
            assert!(e.contains("the config file is empty"), "{empty:?}: {e}");
        }
    }

    #[test]
    fn parser_messages_lose_source_text_and_values() {
        let broken = "providers:\n  p:\n    kind: openai\n    api_key: sk-live-SECRET\n   base_url: [\"http://x\"\n";
        let e = load_str(broken, None).unwrap_err().to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.starts_with("invalid YAML at line"), "{e}");
        let typed = "providers:\n  p: { kind: openai, api_key: sk-live-SECRET, headers: sk-live-SECRET2 }\n";
        let e = load_str(typed, None).unwrap_err().to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("providers.p.headers"), "{e}");
        let variant = "providers:\n  p: { kind: sk-live-SECRET }\n";
        let e = load_str(variant, None).unwrap_err().to_string();
        assert!(
            !e.contains("SECRET") && e.contains("unknown variant"),
            "{e}"
        );
        assert_eq!(
            scrub("unknown field `falback`, expected one of `kind`, `Base`\n  | line"),
            "unknown field `falback`, expected one of `kind`, …"
        );
        let e = load_str("providers: {}\nvirtual_keys:\n  vk-secret: { provider: none }\nconfigs:\n  c: { virtual_key: vk-typo }\n", None).unwrap_err();
        let shown = e.shown(false);
        assert!(
            shown.contains(&format!(
                "virtual_keys.{}.provider",
                key_label("vk-secret", false)
            )),
            "{shown}"
        );
        assert!(shown.contains(&key_label("vk-typo", false)), "{shown}");
        assert!(
            !shown.contains("vk-secret") && !shown.contains("vk-typo"),
            "{shown}"
        );
        assert!(e.shown(true).contains("vk-secret"));
        assert_eq!(
            scrub("invalid type: string \"x y\", expected 'z"),
            "invalid type: string …, expected …"
        );
    }

    #[test]
    fn key_names_become_labels_in_the_config_view_unless_asked() {
        let s = load_str(BASE, None).unwrap();
        let label = key_label("vk-a", false);
        assert!(label.starts_with("vk:") && label.len() == 11, "{label}");
        assert_eq!(s.virtual_keys["vk-a"].label, label);
        let view = s.redacted.to_string();
        assert!(!view.contains("vk-a") && view.contains(&label), "{view}");
        let named = load_str(&format!("{BASE}telemetry: {{ key_labels: name }}\n"), None).unwrap();
        assert_eq!(named.virtual_keys["vk-a"].label, "vk-a");
        assert!(named.redacted.to_string().contains("vk-a"));
    }

    #[test]
    fn secrets_never_show_in_debug_or_the_redacted_view() {
        let s = load_str(BASE, None).unwrap();
        assert!(!format!("{s:?}").contains("sk-inline-secret"));
        assert!(!s.redacted.to_string().contains("sk-inline-secret"));
        assert_eq!(s.redacted["providers"]["openai"]["api_key"], REDACTED);
    }

    #[test]
    fn references_are_checked_with_their_yaml_paths() {
        let e = errors(&format!(
            "{BASE}default_config: nope\nconfigs:\n  chat:\n    strategy: {{ mode: fallback }}\n    targets:\n      - virtual_key: vk-a\n      - virtual_key: vk-cluade\n  c2:\n    targets: []\n"
        ));
        assert!(
            has(
                &e,
                r#"configs.chat.targets[1].virtual_key: unknown virtual key "vk-cluade""#
            ),
            "{e:?}"
        );
        assert!(has(&e, "default_config: unknown config \"nope\""), "{e:?}");
        assert!(has(&e, "configs.c2.targets: must not be empty"), "{e:?}");
        let e = errors("virtual_keys:\n  vk: { provider: ghost }\n");
        assert!(
            has(&e, "virtual_keys.vk.provider: unknown provider \"ghost\""),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_fields_bad_durations_and_weights_are_errors() {
        let e = errors("providers:\n  p: { kind: openai, api_key: k, falback: 1 }\n");
        assert!(has(&e, "providers.p") && has(&e, "falback"), "{e:?}");
        for (timeout, what) in [
            ("0", "greater than zero"),
            ("-5", "greater than zero"),
            ("soon", "invalid duration"),
            ("1.5", "whole number"),
        ] {
            let e = errors(&format!(
                "{BASE}configs:\n  c:\n    virtual_key: vk-b\n    request_timeout: {timeout}\n"
            ));
            assert!(
                has(&e, "configs.c.request_timeout") && has(&e, what),
                "{timeout}: {e:?}"
            );
        }
        let e = errors(&format!("{BASE}configs:\n  c:\n    strategy: {{ mode: loadbalance }}\n    targets:\n      - {{ virtual_key: vk-b, weight: 0 }}\n"));
        assert!(
            has(&e, "configs.c.targets[0].weight: must be greater than zero"),
            "{e:?}"
        );
        let e = errors(&format!("{BASE}configs:\n  c:\n    strategy: {{ mode: fallback, on_status_codes: [503, 42] }}\n    targets: [{{ virtual_key: vk-b }}]\n"));
        assert!(has(&e, "configs.c.strategy.on_status_codes[1]"), "{e:?}");
        let e = errors("listen: nowhere\nthreads: 0\n");
        assert!(
            has(&e, "listen: invalid address") && has(&e, "threads"),
            "{e:?}"
        );
    }

    #[test]
    fn azure_deployments_compile_and_belong_to_azure_only() {
        let s = load_str(
            "providers:\n  az:\n    kind: azure-openai\n    base_url: https://x.openai.azure.com\n    api_key: k\n    deployments: { gpt-4o: prod-4o }\n",
            None,
        )
        .unwrap();
        let az = &s.providers[0];
        assert_eq!(
            az.deployments.get("gpt-4o").map(String::as_str),
            Some("prod-4o")
        );
        let e = errors("providers:\n  p: { kind: openai, api_key: k, deployments: { a: b } }\n");
        assert!(
            has(&e, "providers.p.deployments: only kind azure-openai"),
            "{e:?}"
        );
        let e = errors(
            "providers:\n  az: { kind: azure-openai, base_url: https://x, api_key: k, deployments: { a: \"\" } }\n",
        );
        assert!(has(&e, "providers.az.deployments.a: is empty"), "{e:?}");
    }

    #[test]
    fn unset_env_and_unreadable_key_files_are_errors() {
        let e = errors(
            "providers:\n  p: { kind: openai, api_key: \"${SWITCHYARD_SURELY_UNSET_VAR}\" }\n",
        );
        assert!(
            has(
                &e,
                "providers.p.api_key: environment variable SWITCHYARD_SURELY_UNSET_VAR is not set"
            ),
            "{e:?}"
        );
        let e = errors("providers:\n  p: { kind: openai, api_key_file: /nonexistent/key }\n");
        assert!(
            has(&e, "providers.p.api_key_file: cannot read /nonexistent/key"),
            "{e:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "sk-from-file\n").unwrap();
        let s = load_str(
            "providers:\n  p: { kind: openai, api_key_file: key }\n",
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(
            s.providers[0].api_key.as_ref().unwrap().expose(),
            "sk-from-file"
        );
        assert_eq!(s.source_files, vec![dir.path().join("key")]);
    }

    #[test]
    fn settings_inherit_down_the_tree_and_paths_follow_portkey() {
        let s = load_str(
            &format!(
                r#"{BASE}configs:
  chat:
    strategy: {{ mode: fallback }}
    request_timeout: 8000
    override_params: {{ temperature: 0.2, model: a }}
    targets:
      - virtual_key: vk-a
        override_params: {{ model: gpt-4o-mini }}
        timeouts: {{ ttft_ms: 3s }}
      - strategy: {{ mode: loadbalance }}
        request_timeout: 500
        targets:
          - {{ virtual_key: vk-b, weight: 3, name: big }}
          - {{ virtual_key: vk-b }}
"#
            ),
            None,
        )
        .unwrap();
        let root = &s.configs["chat"].root;
        assert_eq!(root.path, "config");
        let TargetKind::Group { targets, strategy } = &root.kind else {
            panic!()
        };
        assert_eq!(strategy.mode, StrategyMode::Fallback);
        let first = &targets[0];
        assert_eq!(first.path, "config.targets[0]");
        assert_eq!(first.settings.request_timeout, Some(Duration::from_secs(8)));
        assert_eq!(first.settings.timeouts.ttft, Some(Duration::from_secs(3)));
        assert_eq!(first.settings.override_params["model"], "gpt-4o-mini");
        assert_eq!(first.settings.override_params["temperature"], 0.2);
        let TargetKind::Group { targets: inner, .. } = &targets[1].kind else {
            panic!()
        };
        assert_eq!(inner[0].path, "config.targets[1].targets[0]");
        assert_eq!(inner[0].label(), "big");
        assert_eq!(inner[1].label(), "config.targets[1].targets[1]");
        assert_eq!(inner[0].weight, 3.0);
        assert_eq!(
            inner[0].settings.request_timeout,
            Some(Duration::from_millis(500))
        );
        assert_eq!(inner[0].settings.override_params["model"], "a");
    }

    #[test]
    fn conditional_routing_is_validated() {
        let e = errors(&format!(
            r#"{BASE}configs:
  c:
    strategy:
      mode: conditional
      conditions:
        - {{ query: {{ "metadata.plan": {{ $eq: paid }} }}, then: fast }}
        - {{ query: {{ "metadata.plan": {{ $like: x }} }}, then: ghost }}
        - {{ query: {{ "params.model": {{ $regex: "(" }} }}, then: fast }}
      default: slow
    targets:
      - {{ name: fast, virtual_key: vk-a }}
      - {{ name: fast, virtual_key: vk-b }}
"#
        ));
        assert!(
            has(
                &e,
                "conditions[1].query.metadata.plan.$like: unknown operator"
            ),
            "{e:?}"
        );
        assert!(
            has(&e, "conditions[1].then: no target named \"ghost\""),
            "{e:?}"
        );
        assert!(
            has(&e, "conditions[2].query.params.model.$regex: invalid regex"),
            "{e:?}"
        );
        assert!(
            has(&e, "strategy.default: no target named \"slow\""),
            "{e:?}"
        );
        assert!(has(&e, "targets[1].name: duplicate target name"), "{e:?}");
    }

    fn million_input() -> crate::providers::Usage {
        crate::providers::Usage {
            input_tokens: 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn telemetry_has_defaults_when_absent() {
        let s = load_str(BASE, None).unwrap();
        let t = &s.telemetry;
        assert_eq!(
            t.access_log,
            AccessLogSettings {
                target: LogTarget::Stdout,
                buffer_lines: 4096
            }
        );
        assert!(!t.log_bodies);
        assert!(t.otlp.is_none());
        // The embedded price table.
        assert_eq!(
            t.prices.cost("openai", "gpt-4o", &million_input()),
            Some(2.5)
        );
        assert!(s.source_files.is_empty());
        let s = load_str("telemetry: {}\n", None).unwrap();
        assert_eq!(s.telemetry.access_log.target, LogTarget::Stdout);
        let s = load_str("telemetry: { access_log: { path: \"off\" } }\n", None).unwrap();
        assert_eq!(s.telemetry.access_log.target, LogTarget::Off);
    }

    #[test]
    fn the_telemetry_block_compiles_with_price_files_overrides_and_secret_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("prices.yaml"),
            "openai:\n  gpt-4o: { input: 3, output: 12 }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("litellm.json"),
            r#"{"gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "litellm_provider": "openai"},
                "gemini/gemini-2.5-pro": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5, "litellm_provider": "gemini"}}"#,
        )
        .unwrap();
        std::env::set_var("SWITCHYARD_TEST_OTEL_TOKEN", "otel-s3cret");
        let text = r#"
telemetry:
  access_log: { path: logs/access.log, buffer_lines: 100 }
  log_bodies: true
  otlp:
    endpoint: http://collector:4318/v1/traces
    headers: { Authorization: "Bearer ${SWITCHYARD_TEST_OTEL_TOKEN}" }
    service_name: edge-gw
    timeout_ms: 2s
  prices_file: prices.yaml
  litellm_prices_file: litellm.json
  prices:
    "anthropic/claude-house": { input: 1, output: 2, cached_input: 0.1, cache_write: 1.25 }
    "meta-llama/Llama-3.1-8B": { input: 0.5, output: 0.5 }
"#;
        let s = load_str(text, Some(dir.path())).unwrap();
        let t = &s.telemetry;
        assert_eq!(
            t.access_log.target,
            LogTarget::File(dir.path().join("logs/access.log"))
        );
        assert_eq!(t.access_log.buffer_lines, 100);
        assert!(t.log_bodies);
        let otlp = t.otlp.as_ref().unwrap();
        assert_eq!(otlp.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(otlp.service_name, "edge-gw");
        assert_eq!(otlp.timeout, Duration::from_secs(2));
        assert_eq!(otlp.headers.len(), 1);
        assert_eq!(otlp.headers[0].0, "authorization");
        assert_eq!(otlp.headers[0].1.expose(), "Bearer otel-s3cret");

        let u = million_input();
        // prices_file replaces the embedded table and wins over the LiteLLM file …
        assert_eq!(t.prices.cost("openai", "gpt-4o", &u), Some(3.0));
        assert_eq!(t.prices.cost("anthropic", "claude-sonnet-4-5", &u), None);
        // … which fills in what prices_file does not list.
        assert_eq!(
            t.prices.cost("gemini", "models/gemini-2.5-pro", &u),
            Some(1.25)
        );
        assert_eq!(t.prices.cost("anthropic", "claude-house", &u), Some(1.0));
        assert_eq!(
            t.prices
                .cost("openai-compatible", "meta-llama/Llama-3.1-8B", &u),
            Some(0.5)
        );
        assert_eq!(
            s.source_files,
            vec![
                dir.path().join("prices.yaml"),
                dir.path().join("litellm.json")
            ]
        );

        let dump = format!("{s:?} {}", s.redacted);
        assert!(!dump.contains("otel-s3cret"), "{dump}");
        assert_eq!(
            s.redacted["telemetry"]["otlp"]["headers"]["Authorization"],
            REDACTED
        );

        // Editing a price file changes the snapshot's hash.
        let before = s.hash.clone();
        std::fs::write(
            dir.path().join("prices.yaml"),
            "openai:\n  gpt-4o: { input: 4, output: 12 }\n",
        )
        .unwrap();
        let s = load_str(text, Some(dir.path())).unwrap();
        assert_ne!(s.hash, before);
        assert_eq!(s.telemetry.prices.cost("openai", "gpt-4o", &u), Some(4.0));
    }

    #[test]
    fn telemetry_errors_name_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "openai:\n  gpt-4o: { input: -1, output: 10 }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.json"), "{\"gpt-4o\": ").unwrap();
        let errors_in = |text: &str| match load_str(text, Some(dir.path())) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        };
        for (text, needle) in [
            (
                "telemetry: { access_log: { buffer_lines: 0 } }",
                "telemetry.access_log.buffer_lines: must be between 1 and",
            ),
            (
                "telemetry: { access_log: { path: \"\" } }",
                "telemetry.access_log.path: is empty",
            ),
            (
                "telemetry: { otlp: { endpoint: \"collector:4318\" } }",
                "telemetry.otlp.endpoint: \"collector:4318\" must start with http:// or https://",
            ),
            (
                "telemetry: { otlp: { endpoint: \"http://c:4318\", headers: { \"bad name\": x } } }",
                "telemetry.otlp.headers.bad name: not a valid header name or value",
            ),
            (
                "telemetry: { otlp: { endpoint: \"http://c:4318\", service_name: \" \" } }",
                "telemetry.otlp.service_name: is empty",
            ),
            ("telemetry: { otlp: {} }", "telemetry.otlp: missing field `endpoint`"),
            (
                "telemetry: { prices_file: missing.yaml }",
                "telemetry.prices_file: cannot read",
            ),
            (
                "telemetry: { prices_file: bad.yaml }",
                "telemetry.prices_file: bad.yaml: openai.gpt-4o.input: must be a number",
            ),
            (
                "telemetry: { litellm_prices_file: bad.json }",
                "telemetry.litellm_prices_file: bad.json: invalid JSON",
            ),
            (
                "telemetry: { prices: { \"openai/gpt-4o\": { input: 1, output: -2 } } }",
                "telemetry.prices.openai/gpt-4o.output: must be a number",
            ),
            (
                "telemetry: { prices: { gpt-4o: { input: 1 } } }",
                "telemetry.prices.gpt-4o: missing field `output`",
            ),
            (
                "telemetry: { prices: { gpt-4o: { input: 1, output: 1, cached: 1 } } }",
                "telemetry.prices.gpt-4o.cached: unknown field `cached`",
            ),
            ("telemetry: { acess_log: {} }", "unknown field `acess_log`"),
            ("telemetry: { log_bodies: maybe }", "telemetry.log_bodies"),
        ] {
            let e = errors_in(text);
            assert!(has(&e, needle), "{text}: {e:?}");
        }
        // A header value is never echoed in an error.
        std::env::set_var("SWITCHYARD_TEST_BAD_HEADER", "tok\nen");
        let e = errors_in(
            "telemetry: { otlp: { endpoint: \"http://c:4318\", headers: { authorization: \"${SWITCHYARD_TEST_BAD_HEADER}\" } } }",
        );
        assert!(has(&e, "telemetry.otlp.headers.authorization"), "{e:?}");
        assert!(!e.iter().any(|e| e.contains("tok")), "{e:?}");
    }

    #[test]
    fn base_urls_split_once() {
        let u = parse_base_url("https://[::1]:8443/openai/v1/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "::1", 8443, "/openai/v1")
        );
        assert_eq!(u.host_header(), "[::1]:8443");
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("http://user:pw@x/v1").is_err());
        assert!(parse_base_url("http://:80").is_err());
        assert!(parse_base_url("http://x:99999").is_err());
    }
}
