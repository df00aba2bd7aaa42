//! The analytics API's query parameters, validated: every value bounded, every unknown or
//! repeated parameter refused with a 400 naming it, every time range capped.

use std::collections::HashSet;

use crate::vocab::GatewayError;

/// Longest time range a query may span.
pub const MAX_RANGE_US: i64 = 31 * 24 * 3600 * 1_000_000;
/// Default and largest page of requests.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// Default and largest number of groups in a summary.
pub const DEFAULT_GROUPS: i64 = 50;
pub const MAX_GROUPS: i64 = 500;
/// Most `metadata.<key>` filters in one query.
pub const MAX_METADATA_FILTERS: usize = 4;
/// Longest parameter value.
const MAX_VALUE: usize = 256;
/// Longest metadata key.
const MAX_KEY: usize = 64;

/// A 400 naming the parameter.
pub fn invalid(param: &str, message: impl std::fmt::Display) -> GatewayError {
    GatewayError::InvalidParameter {
        param: bounded(param),
        message: message.to_string(),
    }
}

fn bounded(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `feedback=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackFilter {
    Any,
    Positive,
    Negative,
    Neutral,
    None,
}

/// What `group_by=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Column(&'static str),
    Metadata(String),
    Feedback,
}

/// Every parameter a query may take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub from_us: i64,
    pub to_us: i64,
    pub trace_id: Option<String>,
    /// `metadata.<key>=<value>`.
    pub metadata: Vec<(String, String)>,
    pub feedback: Option<FeedbackFilter>,
    /// `(column, value)`: outcome, model, config, virtual_key, provider.
    pub columns: Vec<(&'static str, String)>,
    pub limit: i64,
    /// `(start_us, id)` of the last row of the previous page.
    pub cursor: Option<(i64, String)>,
    pub group_by: Option<GroupBy>,
}

/// Which route the parameters are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Requests,
    Summary,
}

/// Column filters: parameter → column.
const COLUMNS: [(&str, &str); 5] = [
    ("outcome", "outcome"),
    ("model", "model"),
    ("config", "config"),
    ("virtual_key", "virtual_key"),
    ("provider", "provider"),
];

impl Params {
    /// Parses the query string of `route` at `now_us`.
    pub fn parse(query: Option<&str>, route: Route, now_us: i64) -> Result<Params, GatewayError> {
        let mut p = Params {
            limit: match route {
                Route::Requests => DEFAULT_LIMIT,
                Route::Summary => DEFAULT_GROUPS,
            },
            ..Params::default()
        };
        let mut seen = HashSet::new();
        let (mut range, mut from, mut to) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !seen.insert(name.to_string()) {
                return Err(invalid(&name, "is given more than once"));
            }
            let value = value.trim();
            if value.len() > MAX_VALUE {
                return Err(invalid(&name, format!("is longer than {MAX_VALUE} bytes")));
            }
            match name.as_ref() {
                "time_range" => range = Some(parse_range(value)?),
                "from" => from = Some(parse_time("from", value)?),
                "to" => to = Some(parse_time("to", value)?),
                "trace_id" => p.trace_id = Some(non_empty("trace_id", value)?),
                "feedback" => p.feedback = Some(parse_feedback(value)?),
                "limit" => p.limit = parse_limit(value, route)?,
                "cursor" if route == Route::Requests => p.cursor = Some(parse_cursor(value)?),
                "group_by" if route == Route::Summary => p.group_by = Some(parse_group(value)?),
                // The admin token, consumed by the admin port's gate.
                "token" => {}
                other => p.other(other, value)?,
            }
        }
        if route == Route::Summary && p.group_by.is_none() {
            return Err(invalid(
                "group_by",
                "is required: model, config, virtual_key, provider, outcome, feedback or metadata.<key>",
            ));
        }
        (p.from_us, p.to_us) = window(range, from, to, now_us)?;
        Ok(p)
    }

    /// `metadata.<key>` and the column filters.
    fn other(&mut self, name: &str, value: &str) -> Result<(), GatewayError> {
        if let Some(key) = name.strip_prefix("metadata.") {
            check_key(name, key)?;
            if self.metadata.len() == MAX_METADATA_FILTERS {
                return Err(invalid(
                    name,
                    format!("at most {MAX_METADATA_FILTERS} metadata filters"),
                ));
            }
            self.metadata.push((key.to_string(), value.to_string()));
            return Ok(());
        }
        match COLUMNS.iter().find(|(param, _)| *param == name) {
            Some((param, column)) => {
                self.columns.push((column, non_empty(param, value)?));
                Ok(())
            }
            None => Err(invalid(
                name,
                "is not a parameter of this route (trace_id, metadata.<key>, feedback, outcome, model, config, virtual_key, provider, time_range, from, to, limit, cursor, group_by)",
            )),
        }
    }
}

fn non_empty(param: &str, value: &str) -> Result<String, GatewayError> {
    if value.is_empty() {
        return Err(invalid(param, "is empty"));
    }
    Ok(value.to_string())
}

fn check_key(param: &str, key: &str) -> Result<(), GatewayError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            param,
            format!("the metadata key must be 1 to {MAX_KEY} letters, digits, '_', '-' or '.'"),
        ))
    }
}

/// `1h`, `24h`, `7d`, `30d`, or any `<n>m|h|d` up to 31 days.
fn parse_range(value: &str) -> Result<i64, GatewayError> {
    let bad = || {
        invalid(
            "time_range",
            "must be like 1h, 24h, 7d or 30d (at most 31d)",
        )
    };
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = value.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_us: i64 = match unit {
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(bad()),
    };
    let us = n.checked_mul(unit_us).ok_or_else(bad)?;
    if us <= 0 || us > MAX_RANGE_US {
        return Err(bad());
    }
    Ok(us)
}

/// RFC 3339, or Unix milliseconds.
fn parse_time(param: &str, value: &str) -> Result<i64, GatewayError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<i64>()
            .ok()
            .and_then(|ms| ms.checked_mul(1000))
            .ok_or_else(|| invalid(param, "is out of range"));
    }
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            invalid(
                param,
                "must be an RFC 3339 time (2026-12-05T10:00:00Z) or Unix milliseconds",
            )
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| invalid(param, "is out of range"))
}

/// The window `[from, to)`: `to` defaults to now, `from` to `to` minus the range (24 h).
fn window(
    range: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
    now_us: i64,
) -> Result<(i64, i64), GatewayError> {
    if range.is_some() && from.is_some() {
        return Err(invalid("time_range", "give time_range or from, not both"));
    }
    let to = to.unwrap_or(now_us.saturating_add(1));
    let from = match (from, range) {
        (Some(f), _) => f,
        (None, Some(r)) => to.saturating_sub(r),
        (None, None) => to.saturating_sub(24 * 3_600_000_000),
    };
    if from >= to {
        return Err(invalid("from", "must be before to"));
    }
    if to.saturating_sub(from) > MAX_RANGE_US {
        return Err(invalid(
            "from",
            "the range from..to may span at most 31 days",
        ));
    }
    Ok((from, to))
}

fn parse_feedback(value: &str) -> Result<FeedbackFilter, GatewayError> {
    Ok(match value {
        "any" => FeedbackFilter::Any,
        "positive" => FeedbackFilter::Positive,
        "negative" => FeedbackFilter::Negative,
        "neutral" => FeedbackFilter::Neutral,
        "none" => FeedbackFilter::None,
        _ => {
            return Err(invalid(
                "feedback",
                "must be any, positive, negative, neutral or none",
            ))
        }
    })
}

fn parse_limit(value: &str, route: Route) -> Result<i64, GatewayError> {
    let max = match route {
        Route::Requests => MAX_LIMIT,
        Route::Summary => MAX_GROUPS,
    };
    match value.parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            "limit",
            format!("must be a whole number from 1 to {max}"),
        )),
    }
}

/// `<start_us>.<id>` as `next_cursor` gives it.
fn parse_cursor(value: &str) -> Result<(i64, String), GatewayError> {
    let bad = || invalid("cursor", "is not a cursor this API gave (next_cursor)");
    let (start, id) = value.split_once('.').ok_or_else(bad)?;
    let start: i64 = start.parse().map_err(|_| bad())?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !id_ok || start < 0 {
        return Err(bad());
    }
    Ok((start, id.to_ascii_lowercase()))
}

fn parse_group(value: &str) -> Result<GroupBy, GatewayError> {
    if let Some(key) = value.strip_prefix("metadata.") {
        check_key("group_by", key)?;
        return Ok(GroupBy::Metadata(key.to_string()));
    }
    Ok(match value {
        "model" => GroupBy::Column("model"),
        "config" => GroupBy::Column("config"),
        "virtual_key" => GroupBy::Column("virtual_key"),
        "provider" => GroupBy::Column("provider"),
        "outcome" => GroupBy::Column("outcome"),
        "feedback" => GroupBy::Feedback,
        _ => {
            return Err(invalid(
                "group_by",
                "must be model, config, virtual_key, provider, outcome, feedback or metadata.<key>",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn param_of(q: &str, route: Route) -> String {
        match Params::parse(Some(q), route, NOW) {
            Err(GatewayError::InvalidParameter { param, .. }) => param,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_values() {
        let p = Params::parse(None, Route::Requests, NOW).unwrap();
        assert_eq!((p.to_us - p.from_us, p.limit), (24 * 3_600_000_000, 50));
        let p = Params::parse(
            Some("trace_id=t%201&metadata.user_id=u+8&time_range=7d&limit=200&feedback=negative&model=m"),
            Route::Requests,
            NOW,
        )
        .unwrap();
        assert_eq!(p.trace_id.as_deref(), Some("t 1"));
        assert_eq!(p.metadata, vec![("user_id".into(), "u 8".into())]);
        assert_eq!(p.to_us - p.from_us, 7 * 86_400_000_000);
        assert_eq!(p.feedback, Some(FeedbackFilter::Negative));
        assert_eq!(p.columns, vec![("model", "m".to_string())]);
        let p = Params::parse(
            Some("from=2026-12-01T00:00:00Z&to=1796169600000"),
            Route::Requests,
            NOW,
        )
        .unwrap();
        assert_eq!(p.from_us, 1_796_083_200_000_000);
        assert_eq!(p.to_us, 1_796_169_600_000_000);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (q, param) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=1e3", "limit"),
            ("time_range=1y", "time_range"),
            ("time_range=32d", "time_range"),
            ("time_range=-1h", "time_range"),
            ("time_range=99999999999999999999d", "time_range"),
            ("from=yesterday", "from"),
            ("from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from"),
            ("from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", "from"),
            ("feedback=great", "feedback"),
            ("metadata.=x", "metadata."),
            ("metadata.a%20b=x", "metadata.a b"),
            ("cursor=12.zz", "cursor"),
            ("cursor=abc", "cursor"),
            ("trace_id=a&trace_id=b", "trace_id"),
            ("trace_id=", "trace_id"),
            ("user=1", "user"),
            ("group_by=model", "group_by"),
        ] {
            assert_eq!(param_of(q, Route::Requests), param, "{q}");
        }
        assert_eq!(param_of("", Route::Summary), "group_by");
        assert_eq!(param_of("group_by=user", Route::Summary), "group_by");
        assert_eq!(
            param_of("group_by=model&cursor=1.x", Route::Summary),
            "cursor"
        );
        let long = format!("trace_id={}", "a".repeat(300));
        assert_eq!(param_of(&long, Route::Requests), "trace_id");
        let many: String = (0..5).map(|i| format!("metadata.k{i}=v&")).collect();
        assert_eq!(param_of(&many, Route::Requests), "metadata.k4");
    }

    #[test]
    fn summary_groups() {
        let p = Params::parse(
            Some("group_by=metadata.feature&limit=500"),
            Route::Summary,
            NOW,
        )
        .unwrap();
        assert_eq!(p.group_by, Some(GroupBy::Metadata("feature".into())));
        assert_eq!(p.limit, 500);
    }
}
