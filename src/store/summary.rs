//! `GET /v1/analytics/summary`: per group (a column, a metadata key, or the requests' feedback)
//! requests, errors, fallbacks, P50/P95/P99 latency, tokens, cost and feedback. Percentiles come
//! from the rows' log-scale duration buckets (within 2.5% of exact), so one SQL text serves
//! both databases and the answer's size is bounded by groups × buckets.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::params::{GroupBy, Params};
use super::read::{filters, rfc3339, Sql};
use super::rows::{bucket_ms, Val};
use super::Db;

const FEEDBACK_GROUP: &str = "CASE \
    WHEN NOT EXISTS (SELECT 1 FROM feedback f2 WHERE f2.request_id = r.id) THEN 'none' \
    WHEN (SELECT SUM(f2.value) FROM feedback f2 WHERE f2.request_id = r.id) > 0 THEN 'positive' \
    WHEN (SELECT SUM(f2.value) FROM feedback f2 WHERE f2.request_id = r.id) < 0 THEN 'negative' \
    ELSE 'neutral' END";

/// The group's SQL expression, and the join it needs (a metadata key).
fn group_expr(group: &GroupBy) -> String {
    match group {
        GroupBy::Column(c) => format!("r.{c}"),
        GroupBy::Metadata(_) => "g.value".into(),
        GroupBy::Feedback => FEEDBACK_GROUP.into(),
    }
}

/// `FROM requests r [JOIN …] WHERE …` for `p`, after `select`.
fn from_where(select: &str, p: &Params, join_feedback: bool) -> Sql {
    let mut sql = Sql::default();
    sql.push(select, []);
    if join_feedback {
        sql.push(
            " FROM feedback f JOIN requests r ON r.id = f.request_id",
            [],
        );
    } else {
        sql.push(" FROM requests r", []);
    }
    if let Some(GroupBy::Metadata(key)) = &p.group_by {
        sql.push(
            " LEFT JOIN request_metadata g ON g.request_id = r.id AND g.key = ?",
            [key.clone().into()],
        );
    }
    filters(&mut sql, p);
    sql
}

fn group_of(row: &AnyRow) -> Option<String> {
    row.try_get::<Option<String>, _>(0).ok().flatten()
}

fn int(row: &AnyRow, i: usize) -> i64 {
    row.try_get::<Option<i64>, _>(i).ok().flatten().unwrap_or(0)
}

/// `AND (<expr> IN (…) [OR <expr> IS NULL])`: only the groups already chosen.
fn only_groups(sql: &mut Sql, expr: &str, groups: &[Option<String>]) {
    let named: Vec<Val> = groups.iter().flatten().map(|g| g.clone().into()).collect();
    let null = groups.iter().any(Option::is_none);
    sql.push(" AND (", []);
    if named.is_empty() {
        sql.push("1 = 0", []);
    } else {
        let marks = vec!["?"; named.len()].join(", ");
        sql.push(&format!("{expr} IN ({marks})"), named);
    }
    if null {
        sql.push(&format!(" OR {expr} IS NULL"), []);
    }
    sql.push(")", []);
}

/// P50, P95 and P99 in milliseconds from `(bucket, count)` pairs.
fn percentiles(mut buckets: Vec<(i64, i64)>) -> [Option<f64>; 3] {
    buckets.sort_unstable();
    let total: i64 = buckets.iter().map(|(_, n)| n).sum();
    [0.5, 0.95, 0.99].map(|q| {
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as i64).max(1);
        let mut seen = 0;
        buckets.iter().find_map(|(b, n)| {
            seen += n;
            (seen >= rank).then(|| (bucket_ms(*b) * 1000.0).round() / 1000.0)
        })
    })
}

fn rate(part: i64, whole: i64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(part as f64 / whole as f64)
    }
}

/// `GET /v1/analytics/summary`.
pub async fn summary(db: Arc<Db>, p: Params) -> Result<Value, sqlx::Error> {
    let Some(group) = p.group_by.clone() else {
        return Ok(Value::Null);
    };
    let expr = group_expr(&group);
    let mut totals = from_where(
        &format!(
            "SELECT {expr} AS grp, COUNT(*) AS n, CAST(SUM(r.is_error) AS BIGINT), \
             CAST(SUM(r.fallback) AS BIGINT), CAST(SUM(r.input_tokens) AS BIGINT), \
             CAST(SUM(r.output_tokens) AS BIGINT), CAST(SUM(r.cost_nano_usd) AS BIGINT)"
        ),
        &p,
        false,
    );
    totals.push(" GROUP BY 1 ORDER BY 2 DESC LIMIT ?", [p.limit.into()]);
    let rows = totals.fetch(&db).await?;
    let groups: Vec<Option<String>> = rows.iter().map(group_of).collect();

    let mut histogram = from_where(
        &format!("SELECT {expr} AS grp, r.duration_bucket, COUNT(*)"),
        &p,
        false,
    );
    only_groups(&mut histogram, &expr, &groups);
    histogram.push(" GROUP BY 1, 2", []);
    let mut buckets: HashMap<Option<String>, Vec<(i64, i64)>> = HashMap::new();
    for row in histogram.fetch(&db).await? {
        buckets
            .entry(group_of(&row))
            .or_default()
            .push((int(&row, 1), int(&row, 2)));
    }

    let mut rated = from_where(
        &format!(
            "SELECT {expr} AS grp, COUNT(f.id), \
             CAST(AVG(CAST(f.value AS DOUBLE PRECISION)) AS DOUBLE PRECISION)"
        ),
        &p,
        true,
    );
    only_groups(&mut rated, &expr, &groups);
    rated.push(" GROUP BY 1", []);
    let mut feedback: HashMap<Option<String>, (i64, Option<f64>)> = HashMap::new();
    for row in rated.fetch(&db).await? {
        let mean = row.try_get::<Option<f64>, _>(2).ok().flatten();
        feedback.insert(group_of(&row), (int(&row, 1), mean));
    }

    let out: Vec<Value> = rows
        .iter()
        .map(|row| {
            let g = group_of(row);
            let n = int(row, 1);
            let [p50, p95, p99] = percentiles(buckets.remove(&g).unwrap_or_default());
            let (fb_count, fb_mean) = feedback.remove(&g).unwrap_or((0, None));
            json!({
                "group": g,
                "requests": n,
                "errors": int(row, 2),
                "error_rate": rate(int(row, 2), n),
                "fallbacks": int(row, 3),
                "fallback_rate": rate(int(row, 3), n),
                "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
                "input_tokens": int(row, 4),
                "output_tokens": int(row, 5),
                "cost_usd": int(row, 6) as f64 / 1e9,
                "feedback_count": fb_count,
                "feedback_mean": fb_mean,
            })
        })
        .collect();
    let group_by = match &group {
        GroupBy::Column(c) => (*c).to_string(),
        GroupBy::Metadata(k) => format!("metadata.{k}"),
        GroupBy::Feedback => "feedback".into(),
    };
    Ok(json!({
        "object": "summary",
        "group_by": group_by,
        "from": rfc3339(p.from_us),
        "to": rfc3339(p.to_us),
        "groups": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::percentiles;
    use crate::store::rows::{bucket_ms, bucket_of};

    #[test]
    fn percentiles_from_buckets_are_within_the_bucket_width() {
        // 1..=1000 ms, one each.
        let mut counts = std::collections::HashMap::new();
        for ms in 1..=1000i64 {
            *counts.entry(bucket_of(ms * 1000)).or_insert(0) += 1;
        }
        let [p50, p95, p99] = percentiles(counts.into_iter().collect());
        for (got, want) in [(p50, 500.0), (p95, 950.0), (p99, 990.0)] {
            let got = got.unwrap();
            assert!((got - want).abs() / want < 0.05, "{got} vs {want}");
        }
        assert_eq!(percentiles(vec![]), [None, None, None]);
        let b = bucket_of(12_345);
        assert!((bucket_ms(b) - 12.345).abs() / 12.345 < 0.03);
    }
}
