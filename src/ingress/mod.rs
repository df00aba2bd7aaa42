//! Ingress: which virtual key a request carries and which config runs it (DESIGN.md §3), read
//! from the request headers against one snapshot.

pub mod body;
pub mod path;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::{RouteConfig, Snapshot, VirtualKey};
use crate::error::GatewayError;

/// Headers that name a virtual key, first match wins.
const VIRTUAL_KEY_HEADERS: [&str; 2] = ["x-switchyard-virtual-key", "x-portkey-virtual-key"];
/// Headers that name a config, first match wins.
const CONFIG_HEADERS: [&str; 2] = ["x-switchyard-config", "x-portkey-config"];

/// The outcome of ingress for one request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The config that runs: a named one, or the virtual key's own `direct` route.
    pub route: Arc<RouteConfig>,
    /// The virtual key the client presented, if any.
    pub virtual_key: Option<Arc<VirtualKey>>,
}

impl Resolved {
    /// The bounded `config` metric label: the config's name, or `direct`.
    pub fn config_label(&self) -> &str {
        &self.route.name
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| header(headers, n))
}

/// A credential the client sent that may be a virtual key's name.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(auth) = header(headers, "authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth);
        return Some(token.trim());
    }
    header(headers, "x-api-key")
}

fn usable(key: &Arc<VirtualKey>) -> Result<Arc<VirtualKey>, GatewayError> {
    if key.disabled {
        return Err(GatewayError::Unauthorized(format!(
            "virtual key \"{}\" is disabled",
            key.name
        )));
    }
    Ok(key.clone())
}

/// Finds the virtual key and the config for a request.
pub fn resolve(snapshot: &Snapshot, headers: &HeaderMap) -> Result<Resolved, GatewayError> {
    resolve_with(snapshot, headers, None)
}

/// Like [`resolve`], with the route to run when the request selects nothing and there is no
/// `default_config` (forward-proxy mode: the intercepted host's provider) instead of a 401.
pub fn resolve_with(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    inferred: Option<&Arc<RouteConfig>>,
) -> Result<Resolved, GatewayError> {
    let named_config = first_header(headers, &CONFIG_HEADERS);
    let virtual_key = match first_header(headers, &VIRTUAL_KEY_HEADERS) {
        Some(name) => Some(
            snapshot
                .virtual_keys
                .get(name)
                .ok_or_else(|| {
                    // Never echo the value: it may be a real provider key sent by mistake.
                    GatewayError::Unauthorized(
                        "the virtual key in the request header is not configured".into(),
                    )
                })
                .and_then(usable)?,
        ),
        // A bearer token or x-api-key counts only when it names a virtual key; otherwise it is
        // ignored (the portkey SDK sends a placeholder next to its config header).
        None => match credential(headers).and_then(|c| snapshot.virtual_keys.get(c)) {
            Some(key) => Some(usable(key)?),
            None => None,
        },
    };

    let config_name = match named_config {
        Some(inline) if inline.starts_with('{') => {
            return Err(GatewayError::InvalidRequest(
                if snapshot.allow_inline_configs {
                    "inline JSON configs are not supported yet: name a config from the config file"
                        .into()
                } else {
                    "inline JSON configs are disabled (allow_inline_configs: false): name a config from the config file".into()
                },
            ));
        }
        Some(name) => Some(name),
        None => virtual_key
            .as_ref()
            .and_then(|k| k.config.as_deref())
            .or(snapshot.default_config.as_deref()),
    };

    let route = match (config_name, &virtual_key) {
        (Some(name), _) => snapshot.configs.get(name).cloned().ok_or_else(|| {
            GatewayError::InvalidRequest(format!("unknown config \"{}\"", truncate(name)))
        })?,
        (None, Some(key)) => snapshot
            .direct_routes
            .get(&key.name)
            .cloned()
            .ok_or_else(|| GatewayError::Internal("virtual key without a route".into()))?,
        (None, None) => match inferred {
            Some(route) => route.clone(),
            None => return Err(GatewayError::Unauthorized(
                "no virtual key: send one as `Authorization: Bearer <virtual key>`, `x-api-key`, or `x-switchyard-virtual-key`".into(),
            ))
        }
    };
    Ok(Resolved { route, virtual_key })
}

/// Bounds what we echo back from a client header.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
