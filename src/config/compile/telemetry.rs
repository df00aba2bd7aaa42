//! `telemetry:`: the access log, OTLP export and the price table.

use sha2::Digest;
use std::sync::Arc;

use super::compiler::*;
use super::providers::parse_base_url;
use crate::config::schema::*;
use crate::config::secrets;
use crate::config::snapshot::*;
use crate::telemetry::cost::PriceError;
use crate::telemetry::cost::PriceTable;

impl Compiler<'_> {
    pub(super) fn telemetry(&mut self, spec: &TelemetrySpec) -> TelemetrySettings {
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

    pub(super) fn access_log(&mut self, spec: &AccessLogSpec) -> AccessLogSettings {
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

    pub(super) fn otlp(&mut self, spec: &OtlpSpec) -> Option<OtlpConfig> {
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
    pub(super) fn read_price_file(&mut self, path: &str, file: &str) -> Option<String> {
        let resolved = secrets::resolve_path(file, self.base_dir);
        let bytes = match std::fs::read(&resolved) {
            Ok(b) => b,
            Err(e) => {
                self.absent(path, format!("cannot read {}: {e}", resolved.display()));
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

    pub(super) fn prices(&mut self, spec: &TelemetrySpec) -> PriceTable {
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
}
