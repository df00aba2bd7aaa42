//! The database under the store: one `sqlx` pool over SQLite or PostgreSQL (the `Any` driver:
//! one SQL text, `$N` placeholders, serves both), its per-connection settings and the built-in,
//! versioned migrations.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor};

use crate::config::{StoreBackend, StoreSettings};

/// Most connections a sidecar holds: PostgreSQL is shared by the fleet (one writer and one
/// reader per pod); SQLite reads concurrently in WAL mode.
const PG_CONNECTIONS: u32 = 2;
const SQLITE_CONNECTIONS: u32 = 4;
/// A query still running after this is cancelled (PostgreSQL `statement_timeout`; the API
/// also stops waiting for SQLite after it).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a connection (a new one, or a free one of the pool).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The SQLite write-ahead log is checkpointed every this many pages and truncated to
/// [`WAL_LIMIT_BYTES`] after: part of the disk bound.
const WAL_CHECKPOINT_PAGES: u32 = 256;
pub const WAL_LIMIT_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("request store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("request store: the SQLite path {0} is not valid UTF-8")]
    Path(String),
    #[error("request store: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("request store: the database's schema version {found} is newer than this build's {known}: upgrade Switchyard")]
    NewerSchema { found: i64, known: i64 },
}

/// Which database it is: a few statements differ (pruning, the migration lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

/// `sqlite://<percent-encoded path>?mode=rwc`: the path may hold `?`, `#` or spaces.
fn sqlite_url(path: &std::path::Path) -> Result<String, StoreError> {
    let text = path
        .to_str()
        .ok_or_else(|| StoreError::Path(path.display().to_string()))?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-') {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// Per-connection settings.
async fn configure(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), sqlx::Error> {
    let statements: &[&str] = match dialect {
        Dialect::Sqlite => &[
            // Before the first table is written (a no-op on an existing file): freed pages can
            // be given back to the file system.
            "PRAGMA auto_vacuum = INCREMENTAL",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 5000",
            "PRAGMA foreign_keys = OFF",
        ],
        Dialect::Postgres => &[
            "SET statement_timeout = 5000",
            "SET application_name = 'switchyard'",
        ],
    };
    for sql in statements {
        conn.execute(*sql).await?;
    }
    if dialect == Dialect::Sqlite {
        conn.execute(format!("PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}").as_str())
            .await?;
        conn.execute(format!("PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}").as_str())
            .await?;
    }
    Ok(())
}

impl Db {
    /// The pool. SQLite is opened (and created) now; PostgreSQL connects lazily, so a database
    /// that is down at start does not stop the gateway.
    pub async fn open(settings: &StoreSettings) -> Result<Db, StoreError> {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (url, dialect, max) = match &settings.backend {
            StoreBackend::Sqlite(path) => (sqlite_url(path)?, Dialect::Sqlite, SQLITE_CONNECTIONS),
            StoreBackend::Postgres(url) => {
                (url.expose().to_string(), Dialect::Postgres, PG_CONNECTIONS)
            }
        };
        let options = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(0)
            // sqlx retries a refused connection until this passes: it is what a write try or a
            // read costs while the database is down.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(60)))
            .after_connect(move |conn, _| Box::pin(async move { configure(conn, dialect).await }));
        let pool = match dialect {
            Dialect::Sqlite => options.connect(&url).await?,
            Dialect::Postgres => options.connect_lazy(&url)?,
        };
        Ok(Db { pool, dialect })
    }

    /// Applies the migrations this build knows and the database has not seen, under a lock
    /// (a fleet's sidecars may start together).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7365827)").await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS switchyard_schema \
             (version BIGINT PRIMARY KEY, applied_us BIGINT NOT NULL)",
        )
        .await?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) FROM switchyard_schema")
                .fetch_one(&mut *tx)
                .await?;
        let found = found.unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            for sql in migration
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                tx.execute(sql).await?;
            }
            sqlx::query("INSERT INTO switchyard_schema (version, applied_us) VALUES ($1, $2)")
                .bind(i as i64 + 1)
                .bind(super::clock::now_us())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The schema, one entry per version, in order; never edit a released entry, add one. The same
/// SQL serves SQLite and PostgreSQL (types by affinity in SQLite; times are microseconds since
/// the Unix epoch; booleans are 0/1).
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    w3c_trace_id TEXT NOT NULL,
    parent_span_id TEXT,
    client_span TEXT,
    start_us BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    duration_bucket BIGINT NOT NULL,
    ttft_us BIGINT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    operation TEXT NOT NULL,
    config TEXT NOT NULL,
    virtual_key TEXT,
    model TEXT,
    request_model TEXT,
    response_model TEXT,
    provider TEXT,
    provider_kind TEXT,
    stream BIGINT NOT NULL,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    is_error BIGINT NOT NULL,
    fallback BIGINT NOT NULL,
    attempt_count BIGINT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_nano_usd BIGINT,
    cache TEXT NOT NULL,
    metadata TEXT,
    gateway TEXT NOT NULL
);
CREATE INDEX requests_start ON requests (start_us, id);
CREATE INDEX requests_trace ON requests (trace_id, start_us);
CREATE TABLE request_metadata (
    request_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    start_us BIGINT NOT NULL,
    PRIMARY KEY (request_id, key)
);
CREATE INDEX request_metadata_kv ON request_metadata (key, value, start_us);
CREATE TABLE attempts (
    request_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    target TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_kind TEXT NOT NULL,
    request_model TEXT,
    response_model TEXT,
    status BIGINT,
    result TEXT NOT NULL,
    offset_us BIGINT NOT NULL,
    connect_us BIGINT,
    headers_us BIGINT,
    first_token_us BIGINT,
    total_us BIGINT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    PRIMARY KEY (request_id, seq)
);
CREATE TABLE bodies (
    request_id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    request_id TEXT,
    value BIGINT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    metadata TEXT,
    created_us BIGINT NOT NULL,
    updated_us BIGINT,
    gateway TEXT NOT NULL
);
CREATE INDEX feedback_request ON feedback (request_id);
CREATE INDEX feedback_trace ON feedback (trace_id, created_us);
CREATE INDEX feedback_created ON feedback (created_us)
"#];
