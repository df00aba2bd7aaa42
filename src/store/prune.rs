//! Pruning: records older than `store.retention` go (both databases), and a SQLite file is
//! kept under `store.max_bytes` by removing the oldest records first and giving the freed
//! pages back to the file system. Runs in the writer, between batches, in short chunks.

use std::time::{Duration, Instant};

use super::clock::now_us;
use super::db::{Db, Dialect, StoreError, WAL_LIMIT_BYTES};

/// Requests removed per statement.
const CHUNK: i64 = 2000;
/// The size check starts pruning above this share of `max_bytes` (less the WAL's allowance)
/// and stops below `LOW`.
const HIGH: f64 = 0.9;
const LOW: f64 = 0.75;

pub struct Pruner {
    pub retention: Duration,
    /// SQLite's bound; `None` for PostgreSQL (sized by its operator).
    pub max_bytes: Option<u64>,
    every: Duration,
    next: Instant,
}

impl Pruner {
    pub fn new(retention: Duration, max_bytes: Option<u64>) -> Pruner {
        // Often enough that a short retention (tests) holds, at most once a minute.
        let every = (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
        let every = if max_bytes.is_some() {
            every.min(Duration::from_secs(1))
        } else {
            every
        };
        Pruner {
            retention,
            max_bytes,
            every,
            next: Instant::now(),
        }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    pub fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    pub fn postpone(&mut self) {
        self.next = Instant::now() + self.every;
    }

    /// Prunes by age, then by size.
    pub async fn run(&mut self, db: &Db) -> Result<u64, StoreError> {
        self.postpone();
        let cutoff = now_us() - i64::try_from(self.retention.as_micros()).unwrap_or(i64::MAX);
        let removed = prune_before(db, cutoff).await?;
        Ok(removed + self.size(db).await?)
    }

    /// Prunes by size only (SQLite): cheap when under the bound (three pragmas), so it runs
    /// after every batch and the file cannot outgrow the bound between age prunes.
    pub async fn size(&mut self, db: &Db) -> Result<u64, StoreError> {
        match (self.max_bytes, db.dialect) {
            (Some(max), Dialect::Sqlite) => prune_to_size(db, max).await,
            _ => Ok(0),
        }
    }
}

/// Removes every request (and its rows) that started before `cutoff_us`, and feedback sent
/// before it, in chunks. Returns the requests removed.
pub async fn prune_before(db: &Db, cutoff_us: i64) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let n = delete_chunk(db, cutoff_us).await?;
        removed += n;
        if n < CHUNK as u64 {
            break;
        }
    }
    sqlx::query("DELETE FROM feedback WHERE created_us < $1")
        .bind(cutoff_us)
        .execute(&db.pool)
        .await?;
    Ok(removed)
}

/// One chunk of the oldest requests before `cutoff_us`, with their attempts, metadata and
/// bodies, in one transaction.
async fn delete_chunk(db: &Db, cutoff_us: i64) -> Result<u64, StoreError> {
    const OLDEST: &str = "SELECT id FROM requests WHERE start_us < $1 ORDER BY start_us LIMIT $2";
    let mut tx = db.pool.begin().await?;
    for table in ["attempts", "request_metadata", "bodies"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE request_id IN ({OLDEST})"
        ))
        .bind(cutoff_us)
        .bind(CHUNK)
        .execute(&mut *tx)
        .await?;
    }
    let done = sqlx::query(&format!("DELETE FROM requests WHERE id IN ({OLDEST})"))
        .bind(cutoff_us)
        .bind(CHUNK)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Bytes the SQLite database holds in live pages.
async fn used_bytes(db: &Db) -> Result<u64, StoreError> {
    let pragma = |name: &'static str| async move {
        sqlx::query_scalar::<_, i64>(name).fetch_one(&db.pool).await
    };
    let pages = pragma("PRAGMA page_count").await?;
    let free = pragma("PRAGMA freelist_count").await?;
    let size = pragma("PRAGMA page_size").await?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Keeps the SQLite file under `max_bytes` (its WAL's allowance set aside): above
/// [`HIGH`] of it, the oldest requests go until the live pages are under [`LOW`]; the freed
/// pages are returned to the file system.
async fn prune_to_size(db: &Db, max_bytes: u64) -> Result<u64, StoreError> {
    let budget = max_bytes.saturating_sub(WAL_LIMIT_BYTES) as f64;
    let (high, low) = ((budget * HIGH) as u64, (budget * LOW) as u64);
    let mut used = used_bytes(db).await?;
    if used <= high {
        return Ok(0);
    }
    let mut removed = 0;
    while used > low {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM requests")
            .fetch_one(&db.pool)
            .await?;
        if total == 0 {
            break;
        }
        // The share of rows to drop, from the share of bytes over the low mark.
        let share = (used - low) as f64 / used as f64;
        let count = ((total as f64 * share).ceil() as i64).clamp(1, CHUNK);
        let cutoff: Option<i64> =
            sqlx::query_scalar("SELECT start_us FROM requests ORDER BY start_us LIMIT 1 OFFSET $1")
                .bind(count.min(total - 1))
                .fetch_optional(&db.pool)
                .await?;
        let cutoff = match cutoff {
            Some(c) => c + 1,
            None => i64::MAX,
        };
        let n = prune_before(db, cutoff).await?;
        removed += n;
        used = used_bytes(db).await?;
        if n == 0 {
            break;
        }
    }
    sqlx::query("PRAGMA incremental_vacuum")
        .execute(&db.pool)
        .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&db.pool)
        .await?;
    Ok(removed)
}
