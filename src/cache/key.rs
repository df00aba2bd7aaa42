//! What identifies a cacheable request: the exact key (SHA-256 of the canonical request after
//! the config's `override_params`, with the config, the virtual-key scope, the path and the
//! set of leaves the request can be served by — [`super::route`]), the semantic partition
//! (the same scope and leaves + model + stream flag + system prompt), the text a semantic
//! lookup embeds (the last user message), and whether a request is nondeterministic.
//!
//! "Canonical" means key order does not matter (objects are hashed with sorted keys) and every
//! value is hashed with a type tag and a length, so no two different requests share a preimage.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A 32-byte digest: an exact key or a semantic partition.
pub type Digest32 = [u8; 32];

/// Who may share entries: the config, the presented virtual key (or none), and the route.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub config: &'a str,
    pub virtual_key: Option<&'a str>,
    /// The request path (`/v1/chat/completions`, …).
    pub path: &'a str,
}

/// `route`: the digest of the leaves the request can reach ([`super::route::RouteKeys`]), so
/// answers of one route are never served to a request routed elsewhere.
fn start(tag: &[u8], scope: &Scope<'_>, route: &Digest32) -> Sha256 {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(route);
    str_field(&mut h, scope.config);
    match scope.virtual_key {
        Some(k) => {
            h.update(b"k");
            str_field(&mut h, k);
        }
        None => h.update(b"-"),
    }
    str_field(&mut h, scope.path);
    h
}

/// The cache scope of a passthrough request: a hash of the caller's credential (the same key
/// shares entries, another never does), never the credential.
pub fn caller_scope(headers: &http::HeaderMap) -> String {
    let credential = crate::vocab::headers::caller_credential(headers).map_or("", |(_, v)| v);
    let mut h = Sha256::new();
    h.update(b"switchyard-cache-caller-v1");
    str_field(&mut h, credential);
    format!("caller:{}", hex::encode(h.finalize()))
}

pub(super) fn str_field(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// Feeds `fmt` output straight into the hash (numbers without allocating).
struct HashWriter<'a>(&'a mut Sha256);

impl std::fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

fn value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            let _ = write!(HashWriter(h), "{n};");
        }
        Value::String(s) => {
            h.update(b"s");
            str_field(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                value(h, i);
            }
        }
        Value::Object(map) => object(h, map.iter()),
    }
}

/// An object with its keys in sorted order (whatever order the map iterates in).
pub(super) fn object<'a>(h: &mut Sha256, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    let mut sorted: Vec<(&String, &Value)> = entries.collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    h.update(b"{");
    h.update((sorted.len() as u64).to_le_bytes());
    for (k, v) in sorted {
        str_field(h, k);
        value(h, v);
    }
}

/// The body as the first target would get it: `overrides` win over the client's fields.
fn merged<'a>(
    body: &'a Map<String, Value>,
    overrides: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    body.iter()
        .filter(|(k, _)| !overrides.contains_key(*k))
        .chain(overrides.iter())
}

/// The exact key of a request.
pub fn exact(
    scope: &Scope<'_>,
    route: &Digest32,
    body: &Map<String, Value>,
    overrides: &Map<String, Value>,
) -> Digest32 {
    let mut h = start(b"switchyard-cache-exact-v2", scope, route);
    object(&mut h, merged(body, overrides));
    h.finalize().into()
}

fn param<'a>(
    name: &str,
    body: &'a Map<String, Value>,
    overrides: &'a Map<String, Value>,
) -> Option<&'a Value> {
    overrides.get(name).or_else(|| body.get(name))
}

/// Whether the answer may differ between identical requests: `temperature > 0` (a request
/// without one gets the providers' default, 1) or `n > 1`.
pub fn nondeterministic(body: &Map<String, Value>, overrides: &Map<String, Value>) -> bool {
    let hot = match param("temperature", body, overrides) {
        None | Some(Value::Null) => true,
        Some(t) => t.as_f64().is_none_or(|t| t > 0.0),
    };
    let many = param("n", body, overrides)
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1);
    hot || many
}

/// The text of a message's `content`: a string, or the `text` of its text parts.
fn content_text(content: Option<&Value>, out: &mut String) {
    match content {
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(parts)) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
        }
        _ => {}
    }
}

/// The last user message's text (OpenAI or Anthropic messages, or a completions `prompt`).
pub fn last_user_text(body: &Map<String, Value>) -> Option<String> {
    let mut out = String::new();
    match body.get("messages") {
        Some(Value::Array(messages)) => {
            let last = messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
            content_text(last.get("content"), &mut out);
        }
        _ => match body.get("prompt") {
            Some(Value::String(p)) => out.push_str(p),
            _ => return None,
        },
    }
    (!out.trim().is_empty()).then_some(out)
}

/// The semantic partition: entries are compared only with requests of the same config, scope,
/// path, reachable leaves, model, stream flag and system prompt (OpenAI `system`/`developer` messages, Anthropic
/// `system`).
pub fn partition(
    scope: &Scope<'_>,
    route: &Digest32,
    body: &Map<String, Value>,
    overrides: &Map<String, Value>,
) -> Digest32 {
    let mut h = start(b"switchyard-cache-semantic-v2", scope, route);
    match param("model", body, overrides) {
        Some(m) => value(&mut h, m),
        None => h.update(b"-"),
    }
    let stream = param("stream", body, overrides).and_then(Value::as_bool) == Some(true);
    h.update(if stream { b"S" } else { b"J" });
    if let Some(system) = body.get("system") {
        value(&mut h, system);
    }
    if let Some(Value::Array(messages)) = body.get("messages") {
        for m in messages {
            if matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            ) {
                h.update(b"m");
                if let Some(c) = m.get("content") {
                    value(&mut h, c);
                }
            }
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object"),
        }
    }

    const R: Digest32 = [7; 32];

    const SCOPE: Scope<'static> = Scope {
        config: "chat",
        virtual_key: Some("vk-a"),
        path: "/v1/chat/completions",
    };

    #[test]
    fn exact_keys_ignore_key_order_but_not_values_scope_or_overrides() {
        let none = Map::new();
        let a = obj(
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}),
        );
        let b = obj(
            serde_json::json!({"temperature": 0.5, "messages": [{"content": "hi", "role": "user"}], "model": "m"}),
        );
        assert_eq!(exact(&SCOPE, &R, &a, &none), exact(&SCOPE, &R, &b, &none));
        let c = obj(
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.6}),
        );
        assert_ne!(exact(&SCOPE, &R, &a, &none), exact(&SCOPE, &R, &c, &none));
        let other_key = Scope {
            virtual_key: Some("vk-b"),
            ..SCOPE
        };
        assert_ne!(
            exact(&SCOPE, &R, &a, &none),
            exact(&other_key, &R, &a, &none)
        );
        let no_key = Scope {
            virtual_key: None,
            ..SCOPE
        };
        assert_ne!(exact(&SCOPE, &R, &a, &none), exact(&no_key, &R, &a, &none));
        // An override that sets what the client sent changes nothing; one that changes it does.
        let same = obj(serde_json::json!({"model": "m"}));
        assert_eq!(exact(&SCOPE, &R, &a, &none), exact(&SCOPE, &R, &a, &same));
        let other = obj(serde_json::json!({"model": "n"}));
        assert_ne!(exact(&SCOPE, &R, &a, &none), exact(&SCOPE, &R, &a, &other));
        // Strings and numbers never collide.
        let s = obj(serde_json::json!({"x": "1"}));
        let n = obj(serde_json::json!({"x": 1}));
        assert_ne!(exact(&SCOPE, &R, &s, &none), exact(&SCOPE, &R, &n, &none));
        // Another set of reachable leaves never shares a key or a semantic partition.
        assert_ne!(
            exact(&SCOPE, &R, &a, &none),
            exact(&SCOPE, &[8; 32], &a, &none)
        );
        assert_ne!(
            partition(&SCOPE, &R, &a, &none),
            partition(&SCOPE, &[8; 32], &a, &none)
        );
    }

    #[test]
    fn nondeterminism_follows_temperature_and_n() {
        let none = Map::new();
        let t0 = obj(serde_json::json!({"temperature": 0}));
        assert!(!nondeterministic(&t0, &none));
        assert!(nondeterministic(
            &obj(serde_json::json!({"temperature": 0.7})),
            &none
        ));
        assert!(nondeterministic(&obj(serde_json::json!({})), &none));
        assert!(nondeterministic(
            &obj(serde_json::json!({"temperature": 0, "n": 2})),
            &none
        ));
        let hot = obj(serde_json::json!({"temperature": 1}));
        assert!(!nondeterministic(&hot, &t0), "the override wins");
    }

    #[test]
    fn the_last_user_message_and_the_system_prompt_are_found() {
        let body = obj(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        ]}));
        assert_eq!(last_user_text(&body).as_deref(), Some("second"));
        let none = Map::new();
        let other_system = obj(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "be verbose"},
            {"role": "user", "content": "second"},
        ]}));
        assert_ne!(
            partition(&SCOPE, &R, &body, &none),
            partition(&SCOPE, &R, &other_system, &none)
        );
        let same_system = obj(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "something else"},
        ]}));
        assert_eq!(
            partition(&SCOPE, &R, &body, &none),
            partition(&SCOPE, &R, &same_system, &none)
        );
        assert_eq!(
            last_user_text(&obj(serde_json::json!({"messages": []}))),
            None
        );
    }
}
