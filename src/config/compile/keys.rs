//! `virtual_keys:`, `limits:` and `state:`: the keys, the request limits, the shared state.

use std::collections::HashMap;
use std::sync::Arc;

use super::compiler::*;
use crate::config::schema::*;
use crate::config::snapshot::*;

impl Compiler<'_> {
    /// `virtual_keys:`: each key's provider, config and allowlist checked, its label derived.
    pub(super) fn virtual_keys(
        &mut self,
        file: &FileConfig,
        provider_by_name: &HashMap<String, Arc<Provider>>,
    ) -> HashMap<String, Arc<VirtualKey>> {
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
        virtual_keys
    }

    /// `limits:`: what a client may send and how long it may take.
    pub(super) fn request_limits(&mut self, spec: &LimitsSpec) -> RequestLimits {
        RequestLimits {
            max_request_body_bytes: self
                .positive_size("limits.max_request_body_bytes", spec.max_request_body_bytes),
            max_response_body_bytes: self.positive_size(
                "limits.max_response_body_bytes",
                spec.max_response_body_bytes,
            ),
            header_timeout: spec
                .header_timeout_ms
                .map_or(DEFAULT_HEADER_TIMEOUT, |t| t.0),
            keepalive_idle: spec
                .keepalive_idle_ms
                .map_or(DEFAULT_KEEPALIVE_IDLE, |t| t.0),
            max_header_bytes: self.bounded_size(
                "limits.max_header_bytes",
                spec.max_header_bytes,
                DEFAULT_MAX_HEADER_BYTES,
                1 << 20,
            ),
            body_timeout: spec.body_timeout_ms.map_or(DEFAULT_BODY_TIMEOUT, |t| t.0),
            min_body_rate: spec.min_body_rate.unwrap_or(DEFAULT_MIN_BODY_RATE),
            write_timeout: spec.write_timeout_ms.map_or(DEFAULT_WRITE_TIMEOUT, |t| t.0),
            max_connections: self.bounded_size(
                "limits.max_connections",
                spec.max_connections,
                DEFAULT_MAX_CONNECTIONS,
                1 << 20,
            ),
        }
    }

    /// `state:`: the Redis URL checked (never echoed: it may hold a password).
    pub(super) fn state(&mut self, spec: Option<&StateSpec>) -> Option<StateSettings> {
        spec.map(|s| {
            if s.redis_url.starts_with("rediss://") {
                self.error(
                    "state.redis_url",
                    "rediss:// (TLS) is not supported yet: use redis:// (in-cluster, or through a TLS sidecar)",
                );
            } else if self.absent_ok && s.redis_url.contains("${") {
                // An unset variable, already said: nothing to check the scheme of.
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
        })
    }
}
