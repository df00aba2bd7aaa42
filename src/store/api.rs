//! The analytics API, read-only, the same on the admin port and (for Portkey's clients) the
//! proxy port: `GET /v1/analytics/requests`, `/v1/analytics/requests/{id}`,
//! `/v1/analytics/summary`. Answers are JSON values; refusals are [`GatewayError`]s (400
//! naming the parameter, 404, 503 when the store is off or cannot answer) that each port
//! writes its own way.

use serde_json::Value;

use super::clock::now_us;
use super::params::{Params, Route};
use super::read::ReadError;
use super::{read, summary, Store};
use crate::vocab::GatewayError;

/// The API's path prefix.
pub const PREFIX: &str = "/v1/analytics";

/// Whether `path` is under the analytics API.
pub fn is_analytics(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|r| r.starts_with('/'))
}

fn unavailable(e: ReadError) -> GatewayError {
    GatewayError::StoreUnavailable {
        code: "store_unavailable",
        message: format!("the request store cannot answer now: {e}"),
    }
}

/// The 503 when there is no store.
pub fn disabled() -> GatewayError {
    GatewayError::StoreUnavailable {
        code: "store_disabled",
        message: "the request store is off: set store.path (SQLite) or store.postgres_url (PostgreSQL) in the config".into(),
    }
}

/// Answers one API call. `path` is canonical, without the query.
pub async fn answer(
    store: Option<&Store>,
    path: &str,
    query: Option<&str>,
) -> Result<Value, GatewayError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let route = match rest {
        "/requests" => Some(Route::Requests),
        "/summary" => Some(Route::Summary),
        _ => None,
    };
    let one = rest
        .strip_prefix("/requests/")
        .filter(|id| !id.is_empty() && !id.contains('/'));
    if route.is_none() && one.is_none() {
        return Err(GatewayError::NotFound(format!(
            "no analytics route {}: the routes are {PREFIX}/requests, {PREFIX}/requests/{{id}} and {PREFIX}/summary",
            path.chars().take(128).collect::<String>()
        )));
    }
    let store = store.ok_or_else(disabled)?;
    if let Some(id) = one {
        return request(store, id).await;
    }
    let route = route.unwrap_or(Route::Requests);
    let params = Params::parse(query, route, now_us())?;
    let answer = match route {
        Route::Requests => store.read(move |db| read::list(db, params)).await,
        Route::Summary => store.read(move |db| summary::summary(db, params)).await,
    };
    answer.map_err(unavailable)
}

/// `GET /v1/analytics/requests/{id}`.
async fn request(store: &Store, id: &str) -> Result<Value, GatewayError> {
    let not_found = || {
        GatewayError::NotFound(format!(
            "no stored request {:?} (ids are the `id` of {PREFIX}/requests answers)",
            id.chars().take(64).collect::<String>()
        ))
    };
    let valid = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(not_found());
    }
    let id = id.to_ascii_lowercase();
    store
        .read(move |db| read::one(db, id))
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)
}
