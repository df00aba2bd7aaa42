//! Inline configs: a JSON object in `x-portkey-config` / `x-switchyard-config`, compiled by the
//! same code as a `configs:` entry of the file, against the live snapshot's virtual keys,
//! passthrough table and root settings. Errors name their JSON path (`$.targets[1].…`) and
//! pass through [`super::scrub`] (they go back to a client and into logs: no values quoted).

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::compiler::*;
use super::passthrough::PassthroughScope;
use super::routes::Scope;
use crate::config::error::{ConfigError, ConfigErrors};
use crate::config::schema::NodeSpec;
use crate::config::snapshot::{
    CompiledInline, InlineError, RouteConfig, Snapshot, MAX_INLINE_BYTES,
};
use std::sync::Arc;

/// The config label (metric `config`) of every inline config: bounded, whatever clients send.
pub const INLINE_LABEL: &str = "inline";

/// The route of inline config `text` (a JSON object) on `snapshot`, compiled once.
pub fn inline_route(snapshot: &Snapshot, text: &str) -> Result<Arc<RouteConfig>, InlineError> {
    if !snapshot.inline.enabled {
        return Err(InlineError::Disabled);
    }
    cached(snapshot, text)
}

/// The route of `x-portkey-provider: <id>` with `x-portkey-custom-host: <host>`: the same as
/// the inline config `{"provider": id, "custom_host": host}` (the host checked against
/// `passthrough.custom_hosts`), compiled once per pair whether or not inline configs are on.
pub fn custom_host_route(
    snapshot: &Snapshot,
    id: &str,
    host: &str,
) -> Result<Arc<RouteConfig>, String> {
    let text = serde_json::json!({ "provider": id, "custom_host": host }).to_string();
    cached(snapshot, &text).map_err(|e| match e {
        InlineError::Invalid(m) => m.trim_start_matches("$.custom_host: ").to_string(),
        other => other.to_string(),
    })
}

fn cached(snapshot: &Snapshot, text: &str) -> Result<Arc<RouteConfig>, InlineError> {
    if text.len() > MAX_INLINE_BYTES {
        return Err(InlineError::TooLarge(text.len()));
    }
    let compiled = match snapshot.inline.get(text) {
        Some(c) => c,
        None => {
            let c: CompiledInline = compile_inline(snapshot, text)
                .map(Arc::new)
                .map_err(|e| Arc::from(e.to_string().replace('\n', "; ")));
            snapshot.inline.insert(text, c.clone());
            c
        }
    };
    compiled.map_err(InlineError::Invalid)
}

/// Compiles one inline config. `text` is the header value, a JSON object.
fn compile_inline(snapshot: &Snapshot, text: &str) -> Result<RouteConfig, ConfigErrors> {
    let tree: Value = serde_json::from_str(text).map_err(|e| {
        one(
            "$",
            format!("not valid JSON: {}", super::scrub(&e.to_string())),
        )
    })?;
    if !tree.is_object() {
        return Err(one("$", "an inline config must be a JSON object"));
    }
    refuse_files(&tree, "$")?;
    let spec: NodeSpec = serde_path_to_error::deserialize(&tree).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "$".into()
        } else {
            format!("$.{path}")
        };
        one(
            &at,
            super::schema_errors::readable(&super::scrub(&e.into_inner().to_string())),
        )
    })?;
    // Breakers of an inline config are its own, keyed by its content.
    let digest = Sha256::digest(text.as_bytes());
    let config_name = format!("{INLINE_LABEL}:{}", hex::encode(&digest[..8]));
    let declared = BTreeMap::new();
    let scope = Scope {
        virtual_keys: &snapshot.virtual_keys,
        declared: &declared,
        passthrough: PassthroughScope {
            table: &snapshot.passthrough,
            inline: true,
        },
        config_name: &config_name,
        has_state: snapshot.state.is_some(),
    };
    // Nothing an inline config names is read from disk: no base directory, nothing absent.
    let mut compiler = Compiler::new(false, None, Vec::new());
    let route = compiler.route(&spec, "$", INLINE_LABEL, &snapshot.root_settings, &scope);
    if !compiler.errors.is_empty() {
        let scrubbed = compiler
            .errors
            .into_iter()
            .map(|e| ConfigError {
                path: e.path,
                message: super::scrub(&e.message),
            })
            .collect();
        return Err(ConfigErrors(scrubbed));
    }
    route.ok_or_else(|| one("$", "the inline config did not compile"))
}

/// Nothing a client sends may make the gateway read a file: a local embedder model directory
/// is refused in an inline config.
fn refuse_files(tree: &Value, path: &str) -> Result<(), ConfigErrors> {
    match tree {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                if k == "embedder" && v.get("local").is_some() {
                    return Err(one(
                        &format!("{p}.local"),
                        "not allowed in an inline config (it would read a directory of the gateway's host): name it in the config file",
                    ));
                }
                refuse_files(v, &p)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| refuse_files(v, &format!("{path}[{i}]"))),
        _ => Ok(()),
    }
}
