//! `switchyard store migrate|prune|export`: the operator's side of the store, run against the
//! config's `store:` without starting the gateway.

use std::io::Write;

use sqlx::Row;

use super::db::{Db, StoreError};
use super::prune::{prune_before, Pruner};
use super::read::Sql;
use crate::config::StoreSettings;

/// Requests exported per query.
const EXPORT_PAGE: i64 = 1000;

/// Applies any pending migrations.
pub async fn migrate(settings: &StoreSettings) -> Result<(), StoreError> {
    Db::open(settings).await?.migrate().await
}

/// Prunes by the configured retention and size now; returns the requests removed.
pub async fn prune(settings: &StoreSettings) -> Result<u64, StoreError> {
    let db = Db::open(settings).await?;
    db.migrate().await?;
    let max = match settings.backend {
        crate::config::StoreBackend::Sqlite(_) => Some(settings.max_bytes),
        crate::config::StoreBackend::Postgres(_) => None,
    };
    Pruner::new(settings.retention, max).run(&db).await
}

/// Removes requests older than `before_us` regardless of retention.
pub async fn prune_older(settings: &StoreSettings, before_us: i64) -> Result<u64, StoreError> {
    let db = Db::open(settings).await?;
    db.migrate().await?;
    prune_before(&db, before_us).await
}

/// Writes every request that started at or after `since_us`, oldest first, as JSON lines
/// (the shape `/v1/analytics/requests/{id}` answers: attempts, bodies, feedback). Returns how
/// many.
pub async fn export(
    settings: &StoreSettings,
    since_us: i64,
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    let db = std::sync::Arc::new(Db::open(settings).await?);
    db.migrate().await?;
    let mut after = (since_us, String::new());
    let mut written = 0;
    loop {
        let mut sql = Sql::default();
        // Keyset paging; the first page's empty id takes every request at `since_us` too.
        sql.push(
            "SELECT id, start_us FROM requests WHERE start_us > ? OR (start_us = ? AND id > ?) \
             ORDER BY start_us, id LIMIT ?",
            [
                after.0.into(),
                after.0.into(),
                after.1.clone().into(),
                EXPORT_PAGE.into(),
            ],
        );
        let rows = sql.fetch(&db).await?;
        for row in &rows {
            let id: String = row.try_get("id")?;
            let start: i64 = row.try_get("start_us")?;
            if let Some(v) = super::read::one(db.clone(), id.clone()).await? {
                writeln!(out, "{v}")?;
                written += 1;
            }
            after = (start, id);
        }
        if (rows.len() as i64) < EXPORT_PAGE {
            break;
        }
    }
    Ok(written)
}
