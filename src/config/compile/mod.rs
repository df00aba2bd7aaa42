//! Validation and compilation: [`super::schema`] (what users write) → [`Snapshot`] (what the
//! request path reads). Every error carries the YAML path it is about; `switchyard check` and
//! every reload use this same code. Structural errors (syntax, unknown fields, wrong types) stop
//! at the first; every semantic error after that is collected.
//!
//! Each YAML section is compiled in its own file, in the order `Compiler::compile` runs them:
//! `keys` (`limits:`, `virtual_keys:`, `state:`), `providers` (`providers:`, `timeouts:`),
//! `routes` (`circuit_breaker:`, `configs:`), `cache` and `guardrails` (a config's `cache:` and
//! guardrail lists, compiled by `crate::cache` and `crate::guardrails` and collected here like
//! every other section's), `forward`, `telemetry`, `admin`, `store`; `compiler` holds the error list
//! they all push to.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;

use super::schema::*;
use super::secrets;
use super::snapshot::*;
use compiler::*;
use providers::default_timeouts;
use routes::direct_routes;

pub use super::error::{ConfigError, ConfigErrors};
pub use inline::{custom_host_route, inline_route};
pub use passthrough::CONFIG_LABEL as PASSTHROUGH_LABEL;
pub use providers::parse_base_url;

mod admin;
mod cache;
mod compiler;
mod forward;
mod guardrails;
mod inline;
mod keys;
mod passthrough;
mod providers;
mod routes;
mod schema_errors;
mod store;
mod telemetry;
#[cfg(test)]
mod tests;

/// Reads, parses, resolves secrets, validates and compiles the config file at `path`.
pub fn load_file(path: &Path) -> Result<Snapshot, ConfigErrors> {
    read_and_compile(path, false)
}

/// The file at `path` compiled; `absent_ok`: absent secrets and files are warnings.
fn read_and_compile(path: &Path, absent_ok: bool) -> Result<Snapshot, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| one("", format!("cannot read {}: {e}", path.display())))?;
    compile_text(&text, path.parent(), Some(path.to_path_buf()), absent_ok)
}

/// What `switchyard check` accepts: [`load_file_to_serve`], except that, unless `strict`,
/// secrets and files absent where the check runs (unset `${ENV}`, key, CA, token and price
/// files) are warnings — a file can be checked on a laptop, in CI or in the GitOps repo. A
/// file that compiles but cannot serve comes back as errors with the snapshot's warnings.
pub fn check_file(path: &Path, strict: bool) -> Result<Snapshot, (ConfigErrors, Vec<String>)> {
    let snapshot = read_and_compile(path, !strict).map_err(|e| (e, vec![]))?;
    let errors = serving_errors(&snapshot);
    match errors.is_empty() {
        true => Ok(snapshot),
        false => Err((ConfigErrors(errors), snapshot.warnings)),
    }
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

/// What makes a well-formed config unable to serve anything: passthrough off and no providers,
/// or no way for any request to be routed (no enabled virtual key, no `default_config`, no
/// forward-proxy interception route), so every request would be a 401. `check` and reloads refuse these;
/// `run` only warns (a config being written for a later reload may start that way).
pub fn serving_errors(snapshot: &Snapshot) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // Passthrough serves the standard providers with each caller's own key.
    if snapshot.passthrough.enabled && !snapshot.passthrough.routes.is_empty() {
        return errors;
    }
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
    compile_text(text, base_dir, None, false)
}

fn compile_text(
    text: &str,
    base_dir: Option<&Path>,
    source: Option<PathBuf>,
    absent_ok: bool,
) -> Result<Snapshot, ConfigErrors> {
    let mut tree: Value =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(&e, source.as_deref()))?;
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
    if !errors.is_empty() && !absent_ok {
        return Err(ConfigErrors(errors));
    }
    // Only checking: an unset variable is left as written, and said.
    let unset = errors;
    let file: FileConfig = match serde_path_to_error::deserialize(&tree) {
        Ok(file) => file,
        Err(e) => {
            // Every section's error, not only the first one serde met.
            let all = schema_errors::collect(&tree);
            if !all.is_empty() {
                return Err(ConfigErrors(all));
            }
            let path = e.path().to_string();
            return Err(one(
                if path == "." { "" } else { &path },
                schema_errors::readable(&scrub(&e.into_inner().to_string())),
            ));
        }
    };
    label_keys(
        &mut redacted,
        file.telemetry.key_labels == KeyLabelsSpec::Name,
    );
    let mut compiler = Compiler::new(absent_ok, base_dir, source.into_iter().collect());
    for e in unset {
        compiler.absent(e.path, e.message);
    }
    compiler.hasher.update(text.as_bytes());
    let snapshot = compiler.compile(file, redacted);
    if compiler.errors.is_empty() {
        snapshot.ok_or_else(|| one("", "config did not compile"))
    } else {
        Err(ConfigErrors(compiler.errors))
    }
}

/// A YAML syntax error as file, position and reason only: the parser's own rendering quotes the
/// source lines around the error, which may hold a key (`api_key: sk-…` on the line above).
fn yaml_error(e: &serde_saphyr::Error, file: Option<&Path>) -> ConfigErrors {
    let reason = scrub(&e.without_snippet().render());
    let file = file
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default();
    let at = e
        .location()
        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    one("", format!("invalid YAML{file}{at}: {reason}"))
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
                        "api_key" | "redis_url" | "postgres_url" => {
                            *child = Value::String(REDACTED.into())
                        }
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

impl Compiler<'_> {
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
        let limits = self.request_limits(&file.limits);
        let circuit_breaker = self.breaker(
            "circuit_breaker",
            file.circuit_breaker.as_ref(),
            &Default::default(),
        );

        let (providers, provider_by_name) = self.providers(&file.providers);

        let virtual_keys = self.virtual_keys(&file, &provider_by_name);

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
        let passthrough = self.passthrough(&file, &root_settings);
        let configs = self.configs(&file, &root_settings, &virtual_keys, &passthrough);

        let direct_routes = direct_routes(&virtual_keys, &root_settings);

        let state = self.state(file.state.as_ref());
        let forward = file
            .forward
            .as_ref()
            .and_then(|f| self.forward(f, &providers, &root_settings));

        let telemetry = self.telemetry(&file.telemetry);
        let admin = self.admin(&file.admin);
        let store = self.store(file.store.as_ref());

        let digest = std::mem::take(&mut self.hasher).finalize();
        let hash = hex::encode(&digest[..8]);
        Some(Snapshot {
            hash,
            source_files: std::mem::take(&mut self.source_files),
            warnings: self.warnings.iter().map(ToString::to_string).collect(),
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
            inline: InlineConfigs::new(file.allow_inline_configs.unwrap_or(true)),
            passthrough,
            root_settings,
            circuit_breaker,
            state,
            forward,
            known_models: std::mem::take(&mut self.known_models),
            telemetry,
            redacted,
            admin,
            store,
        })
    }
}
