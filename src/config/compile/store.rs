//! `store:`: the request store's backend (one SQLite file, or a PostgreSQL URL read from the
//! config or a secret file), retention, size bound and queue.

use std::path::Path;

use sha2::Digest;

use super::compiler::*;
use crate::config::schema::*;
use crate::config::secrets;
use crate::config::snapshot::*;

const PATH: &str = "store";

impl Compiler<'_> {
    pub(super) fn store(&mut self, spec: Option<&StoreSpec>) -> Option<StoreSettings> {
        let spec = spec?;
        let backend = self.store_backend(spec)?;
        let retention = spec.retention.map_or(DEFAULT_STORE_RETENTION, |r| r.0);
        if retention < std::time::Duration::from_secs(1) {
            self.error(format!("{PATH}.retention"), "must be at least 1s");
        }
        let max_bytes = spec.max_bytes.unwrap_or(DEFAULT_STORE_MAX_BYTES);
        if max_bytes < MIN_STORE_MAX_BYTES {
            self.error(
                format!("{PATH}.max_bytes"),
                format!("must be at least {MIN_STORE_MAX_BYTES} (8 MiB)"),
            );
        }
        let queue = spec.queue.unwrap_or(DEFAULT_STORE_QUEUE);
        if !(1..=MAX_STORE_QUEUE).contains(&queue) {
            self.error(
                format!("{PATH}.queue"),
                format!("must be between 1 and {MAX_STORE_QUEUE}"),
            );
        }
        Some(StoreSettings {
            backend,
            retention,
            max_bytes,
            queue,
            proxy_api: spec.proxy_api.unwrap_or(true),
        })
    }

    /// Exactly one of `path`, `postgres_url`, `postgres_url_file`.
    fn store_backend(&mut self, spec: &StoreSpec) -> Option<StoreBackend> {
        let given = [
            spec.path.is_some(),
            spec.postgres_url.is_some(),
            spec.postgres_url_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                PATH,
                "set exactly one of path (SQLite), postgres_url or postgres_url_file (PostgreSQL)",
            );
            return None;
        }
        if let Some(file) = &spec.path {
            return self.sqlite_path(file).map(StoreBackend::Sqlite);
        }
        let url = match (&spec.postgres_url, &spec.postgres_url_file) {
            (Some(url), _) => url.trim().to_string(),
            (_, Some(file)) => {
                let resolved = secrets::resolve_path(file, self.base_dir);
                match secrets::read_secret_file(&resolved) {
                    Ok((url, bytes)) => {
                        self.hasher.update(&bytes);
                        self.source_files.push(resolved);
                        url
                    }
                    Err(e) => {
                        self.absent(format!("{PATH}.postgres_url_file"), e);
                        return None;
                    }
                }
            }
            (None, None) => return None,
        };
        let field = if spec.postgres_url.is_some() {
            "postgres_url"
        } else {
            "postgres_url_file"
        };
        if self.absent_ok && url.contains("${") {
            // An unset variable, already said.
        } else if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            // Never echo the URL: it carries a password.
            self.error(
                format!("{PATH}.{field}"),
                "must be a postgres:// or postgresql:// URL",
            );
            return None;
        }
        if !url.contains("${")
            && <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url).is_err()
        {
            self.error(
                format!("{PATH}.{field}"),
                "not a valid PostgreSQL URL (postgres://user:password@host:port/database)",
            );
            return None;
        }
        Some(StoreBackend::Postgres(Secret::new(url)))
    }

    /// The SQLite file: its directory must exist and be writable, and the file (when it
    /// exists) must be a writable regular file — refused at load, not at the first request.
    fn sqlite_path(&mut self, file: &str) -> Option<std::path::PathBuf> {
        let field = format!("{PATH}.path");
        if file.trim().is_empty() {
            self.error(field, "is empty");
            return None;
        }
        let path = secrets::resolve_path(file.trim(), self.base_dir);
        if path.to_str().is_none() {
            self.error(field, "is not valid UTF-8");
            return None;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        if path.is_dir() {
            self.error(
                field,
                format!("{} is a directory, not a file", path.display()),
            );
            return None;
        }
        if !dir.is_dir() {
            self.absent(
                field,
                format!("the directory {} does not exist", dir.display()),
            );
            return None;
        }
        if let Err(e) = writable(&dir, &path) {
            self.absent(field, e);
            return None;
        }
        Some(path)
    }
}

/// Whether the store can write `path` in `dir`: a probe file is created and removed (access(2)
/// would not see a read-only mount), and an existing file is opened for writing.
fn writable(dir: &Path, path: &Path) -> Result<(), String> {
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("{} is not writable: {e}", path.display()))?;
    }
    let probe = dir.join(format!(".switchyard-store-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("the directory {} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
