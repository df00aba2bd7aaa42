//! The route part of a cache key: which upstreams a request could be served by.
//!
//! The lookup runs before routing, so it cannot know the leaf that will answer; it knows the
//! *set* of leaves the request can reach. Conditional groups are evaluated with the request's
//! facts (the same [`condition::choose`] the router runs); `fallback` and `loadbalance` groups
//! contribute every child, `single` its first. Two requests share entries only when their sets
//! are equal, so an answer produced by one tier's target is never served to a request routed to
//! another (issue 17, finding 4). Within one set, loadbalance/fallback members are treated as
//! equivalent: that is the operator's declaration when putting them in one group.
//!
//! A leaf is identified by what decides its answer: the provider (kind, base URL, API version,
//! auth header, static headers, Azure deployments), the credential (as a SHA-256 of the secret,
//! never the secret) and the leaf's effective `override_params` (its model after overrides).
//! A reload that changes any of these changes the identity, so entries produced by the old
//! target are unreachable. Identities are hashed at compile time; a config without conditional
//! groups has one fixed route digest, and the request path only copies it.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::key::{self, Digest32};
use crate::config::{CacheSettings, Secret, StrategyMode, Target, TargetKind};
use crate::router::condition::{self, Facts};

use crate::config::snapshot::RouteNode as Node;
pub use crate::config::RouteKeys;

impl RouteKeys {
    /// `settings` with the route identities of the tree under `root` (its config's root).
    pub fn attach(mut settings: CacheSettings, root: &Target) -> CacheSettings {
        settings.route = Some(std::sync::Arc::new(RouteKeys::compile(root)));
        settings
    }

    /// Hashes every leaf identity of the tree once.
    pub fn compile(root: &Target) -> RouteKeys {
        let root = node(root);
        let fixed = match &root {
            Node::Leaves(ids) => Some(set_digest(ids)),
            _ => None,
        };
        RouteKeys { fixed, root }
    }

    /// The digest of the set of leaves a request with `facts` can be served by.
    pub fn digest(&self, facts: &Facts<'_>) -> Digest32 {
        if let Some(d) = self.fixed {
            return d;
        }
        // Conditional configs only: a small vector per lookup.
        let mut ids = Vec::new();
        reachable(&self.root, facts, &mut ids);
        ids.sort_unstable();
        ids.dedup();
        set_digest(&ids)
    }
}

fn node(t: &Target) -> Node {
    let (strategy, targets) = match &t.kind {
        TargetKind::Leaf { virtual_key } => {
            let id = leaf_identity(&virtual_key.provider, &t.settings.override_params);
            return Node::Leaves(Box::new([id]));
        }
        TargetKind::Group { strategy, targets } => (strategy, targets),
    };
    // A single group only ever runs its first child.
    let take = match strategy.mode {
        StrategyMode::Single => 1,
        _ => targets.len(),
    };
    let children: Vec<Node> = targets.iter().take(take).map(node).collect();
    if strategy.mode == StrategyMode::Conditional {
        return Node::Conditional {
            conditions: strategy.conditions.clone().into(),
            default: strategy.default_target,
            children: children.into(),
        };
    }
    if children.iter().all(|c| matches!(c, Node::Leaves(_))) {
        let mut ids: Vec<Digest32> = children
            .iter()
            .flat_map(|c| match c {
                Node::Leaves(ids) => ids.iter().copied(),
                _ => [].iter().copied(),
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        return Node::Leaves(ids.into());
    }
    Node::Union(children.into())
}

fn reachable(node: &Node, facts: &Facts<'_>, out: &mut Vec<Digest32>) {
    match node {
        Node::Leaves(ids) => out.extend_from_slice(ids),
        Node::Union(children) => children.iter().for_each(|c| reachable(c, facts, out)),
        Node::Conditional {
            conditions,
            default,
            children,
        } => {
            // No route: the empty set; such a request fails before anything is stored.
            if let Some(child) =
                condition::choose(conditions, *default, facts).and_then(|i| children.get(i))
            {
                reachable(child, facts, out);
            }
        }
    }
}

fn set_digest(ids: &[Digest32]) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"switchyard-cache-route-v1");
    h.update((ids.len() as u64).to_le_bytes());
    for id in ids {
        h.update(id);
    }
    h.finalize().into()
}

/// What decides a leaf's answer (see the module docs).
fn leaf_identity(provider: &crate::config::Provider, overrides: &Map<String, Value>) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"switchyard-cache-leaf-v1");
    key::str_field(&mut h, provider.kind.as_str());
    let url = &provider.base_url;
    h.update([u8::from(url.tls)]);
    key::str_field(&mut h, &url.host);
    h.update(url.port.to_le_bytes());
    key::str_field(&mut h, &url.path);
    optional(&mut h, provider.api_version.as_deref());
    key::str_field(&mut h, &provider.auth_header);
    match &provider.api_key {
        Some(secret) => {
            h.update(b"k");
            h.update(credential_identity(secret));
        }
        None => h.update(b"-"),
    }
    let mut headers: Vec<&(String, String)> = provider.headers.iter().collect();
    headers.sort_unstable();
    h.update((headers.len() as u64).to_le_bytes());
    for (name, value) in headers {
        key::str_field(&mut h, name);
        key::str_field(&mut h, value);
    }
    let mut deployments: Vec<(&String, &String)> = provider.deployments.iter().collect();
    deployments.sort_unstable();
    h.update((deployments.len() as u64).to_le_bytes());
    for (model, deployment) in deployments {
        key::str_field(&mut h, model);
        key::str_field(&mut h, deployment);
    }
    key::object(&mut h, overrides.iter());
    h.finalize().into()
}

/// The credential as a hash: the secret itself goes into nothing but this digest.
fn credential_identity(secret: &Secret) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"switchyard-cache-credential-v1");
    key::str_field(&mut h, secret.expose());
    h.finalize().into()
}

fn optional(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => {
            h.update(b"s");
            key::str_field(h, s);
        }
        None => h.update(b"-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use serde_json::json;

    /// The route keys of config `c` of a config whose providers `p` and `q` use `key_p` and
    /// the mock URL, with `body` as the config's YAML (indented under `c:`).
    fn keys(key_p: &str, body: &str) -> std::sync::Arc<RouteKeys> {
        let text = format!(
            "providers:\n  p: {{ kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\", api_key: {key_p} }}\n  q: {{ kind: openai-compatible, base_url: \"http://127.0.0.1:2/v1\", api_key: sk-q }}\nvirtual_keys:\n  vp: {{ provider: p }}\n  vq: {{ provider: q }}\nconfigs:\n  c:\n    cache: {{ mode: simple }}\n{body}"
        );
        let snapshot = load_str(&text, None).expect("config loads");
        let settings = snapshot.configs["c"].root.settings.cache.clone();
        settings.and_then(|s| s.route).expect("route keys attached")
    }

    fn with(meta: serde_json::Value) -> Facts<'static> {
        let meta: &'static serde_json::Value = Box::leak(Box::new(meta));
        Facts {
            metadata: meta.as_object(),
            params: None,
        }
    }

    const TIERED: &str = "    strategy:\n      mode: conditional\n      conditions:\n        - { query: { \"metadata.tier\": { $eq: pro } }, then: pro }\n        - { query: { \"metadata.tier\": { $in: [free, trial] } }, then: free }\n      default: free\n    targets:\n      - { name: pro, virtual_key: vp, override_params: { model: big } }\n      - { name: free, virtual_key: vp, override_params: { model: small } }\n";

    #[test]
    fn conditional_routes_key_by_the_leaves_they_reach() {
        let k = keys("sk-p", TIERED);
        let pro = k.digest(&with(json!({"tier": "pro"})));
        let free = k.digest(&with(json!({"tier": "free"})));
        assert_ne!(pro, free, "tiers routed to different models never share");
        // Other spellings that route the same way share the key.
        assert_eq!(free, k.digest(&with(json!({"tier": "trial"}))));
        assert_eq!(free, k.digest(&with(json!({"tier": "free", "user": "u1"}))));
        assert_eq!(free, k.digest(&with(json!({}))), "the default");
        let none = Facts {
            metadata: None,
            params: None,
        };
        assert_eq!(free, k.digest(&none));
        assert_eq!(pro, k.digest(&with(json!({"user": "u2", "tier": "pro"}))));
    }

    #[test]
    fn fixed_routes_are_sets_and_follow_every_leaf_identity() {
        let ab = "    strategy: { mode: fallback }\n    targets:\n      - { virtual_key: vp }\n      - { virtual_key: vq }\n";
        let ba = "    strategy: { mode: loadbalance }\n    targets:\n      - { virtual_key: vq }\n      - { virtual_key: vp }\n";
        let k = keys("sk-p", ab);
        assert!(k.fixed.is_some(), "no conditional: computed once");
        let any = with(json!({"tier": "pro"}));
        assert_eq!(k.digest(&any), keys("sk-p", ba).digest(&any));
        // Only the first child of a single group is reachable.
        let single = "    targets:\n      - { virtual_key: vp }\n      - { virtual_key: vq }\n";
        let only_p = "    virtual_key: vp\n";
        assert_eq!(
            keys("sk-p", single).digest(&any),
            keys("sk-p", only_p).digest(&any)
        );
        // The credential, the model after overrides and the provider all count.
        assert_ne!(k.digest(&any), keys("sk-other", ab).digest(&any));
        let small = keys(
            "sk-p",
            "    virtual_key: vp\n    override_params: { model: small }\n",
        );
        let big = keys(
            "sk-p",
            "    virtual_key: vp\n    override_params: { model: big }\n",
        );
        assert_ne!(small.digest(&any), big.digest(&any));
        assert_ne!(
            keys("sk-p", only_p).digest(&any),
            keys("sk-p", "    virtual_key: vq\n").digest(&any)
        );
    }

    #[test]
    fn the_credential_is_never_kept() {
        let k = keys("sk-secret-value", TIERED);
        assert!(!format!("{k:?}").contains("sk-secret-value"));
    }
}
