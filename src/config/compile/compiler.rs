//! The compiler's state shared by every section: the error list (each error with its YAML
//! path), the config hash and the files to watch, and the defaults and small checks sections share.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::error::{ConfigError, ConfigErrors};

pub(super) fn one(path: &str, message: impl Into<String>) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_string(),
        message: message.into(),
    }])
}

pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Loopback: the admin port serves the live config and the console. A Kubernetes pod sets
/// `0.0.0.0:9090` explicitly so kubelet probes and Prometheus reach it.
pub(super) const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// Shortest `admin.token_file` token accepted (a guessable token is no guard).
pub(super) const MIN_ADMIN_TOKEN_CHARS: usize = 16;
pub(super) const DEFAULT_THREADS: usize = 2;
pub(super) const DEFAULT_BODY_LIMIT: usize = 16 << 20;
pub(super) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// As long as the gateway kept idle client connections before there was a head deadline.
pub(super) const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(75);
pub(super) const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;
pub(super) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_MIN_BODY_RATE: usize = 1024;
pub(super) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub(super) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
pub(super) const REDACTED: &str = "[redacted]";
pub(super) const MAX_ACCESS_LOG_BUFFER_LINES: usize = 1 << 20;
pub(super) const DEFAULT_SERVICE_NAME: &str = "switchyard";
pub(super) const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_STATE_TIMEOUT: Duration = Duration::from_millis(200);
pub(super) const QUERY_OPERATORS: [&str; 11] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$and", "$or",
];

/// Collects every error of one file while its sections compile (each section's methods are in
/// its own file of this module).
pub(super) struct Compiler<'a> {
    pub(super) errors: Vec<ConfigError>,
    /// Accepted but probably not meant (`check` prints them, a load logs them).
    pub(super) warnings: Vec<ConfigError>,
    /// Secrets and files absent where the file is checked (a laptop, CI, the GitOps repo) are
    /// warnings, not errors: `switchyard check` without `--strict`. Never when serving.
    pub(super) absent_ok: bool,
    pub(super) base_dir: Option<&'a Path>,
    pub(super) hasher: Sha256,
    pub(super) source_files: Vec<PathBuf>,
    pub(super) known_models: HashSet<String>,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(
        absent_ok: bool,
        base_dir: Option<&'a Path>,
        source_files: Vec<PathBuf>,
    ) -> Self {
        Compiler {
            errors: Vec::new(),
            warnings: Vec::new(),
            absent_ok,
            base_dir,
            hasher: Sha256::new(),
            source_files,
            known_models: HashSet::new(),
        }
    }
}

impl Compiler<'_> {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Something the file names that is absent here (an environment variable, a key, CA, token
    /// or price file): an error, or a warning when only checking the file.
    pub(super) fn absent(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let message = message.into();
        if self.absent_ok {
            self.warn(
                path,
                format!("{message} (absent here; `check --strict` and the gateway refuse it)"),
            );
        } else {
            self.error(path, message);
        }
    }

    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn addr(&mut self, path: &str, value: Option<&str>, default: &str) -> SocketAddr {
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

    pub(super) fn positive_size(&mut self, path: &str, value: Option<usize>) -> usize {
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
    pub(super) fn bounded_size(
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
}
