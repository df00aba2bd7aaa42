//! Response caching (`configs.<name>.cache`, DESIGN.md §2): exact and semantic, looked up
//! before routing and filled after a successful commit.
//!
//! - **Exact** ([`key::exact`]): the canonical request after the config's `override_params`,
//!   plus the config, the presented virtual key, the path and the set of leaves the request can
//!   be served by ([`route`]: conditional groups evaluated with the request's metadata and
//!   params, each leaf's provider, credential hash and model after overrides). Identical requests hit whatever
//!   their sampling parameters (Portkey's semantics), unless `skip_nondeterministic: true`.
//! - **Semantic**: the last user message is embedded (an embeddings target through the router,
//!   or the in-process model of [`local`]); the nearest stored vector of the request's partition
//!   ([`key::partition`]) is served when its cosine similarity reaches `similarity_threshold`.
//!   Exact hits are checked first.
//! - **Stores** ([`store`]): per config, in memory (`moka`, bounded by bytes, per-entry TTL),
//!   and with `backend: redis` also in Redis ([`shared`]) for every replica. Only complete 2xx
//!   responses are stored, exactly as the client received them ([`replay`] writes them back).
//! - **Status**: `x-portkey-cache-status` / `x-switchyard-cache-status` = `HIT`, `SEMANTIC HIT`,
//!   `MISS`, `REFRESH` (`x-portkey-cache-force-refresh: true`), `DISABLED` (bypassed); counted
//!   in `switchyard_cache_requests_total{config,result}`.
//!
//! A config without `cache` never reaches this module.

pub mod config;
pub mod key;
#[cfg(feature = "local-embeddings")]
pub mod local;
pub mod replay;
pub mod route;
pub mod shared;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::IntCounterVec;
use serde_json::{Map, Value};

use crate::config::{CacheMode, CacheSettings, Embedder, StateSettings, Target};
use crate::router::condition::Facts;
use crate::telemetry::metrics::{CacheLabels, Family};
use key::{Digest32, Scope};
use shared::SharedStore;
use store::{ConfigStore, Entry};

/// Request headers that skip the lookup and store the fresh answer (Portkey's, ours).
pub const FORCE_REFRESH_HEADERS: [&str; 2] = [
    "x-portkey-cache-force-refresh",
    "x-switchyard-cache-force-refresh",
];

/// How the cache treated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Hit,
    SemanticHit,
    Miss,
    Refresh,
    /// Bypassed (`skip_nondeterministic`), or no cache on the config.
    Disabled,
}

impl Status {
    /// The `x-portkey-cache-status` value (and the access log's `cache`).
    pub fn header(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::SemanticHit => "SEMANTIC HIT",
            Status::Miss => "MISS",
            Status::Refresh => "REFRESH",
            Status::Disabled => "DISABLED",
        }
    }

    fn metric(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::SemanticHit => "semantic_hit",
            Status::Miss => "miss",
            Status::Refresh => "refresh",
            Status::Disabled => "bypass",
        }
    }
}

/// Embeds text through an embeddings target (the proxy runs it through the router).
#[async_trait]
pub trait TargetEmbedder: Sync {
    async fn embed(&self, target: &Target, model: &str, text: &str) -> Result<Vec<f32>, String>;
}

/// What a lookup needs to know about a request.
pub struct Request<'a> {
    pub scope: Scope<'a>,
    pub body: &'a Map<String, Value>,
    /// `x-portkey-metadata`: with `body`, what conditional groups route on.
    pub metadata: Option<&'a Map<String, Value>>,
    /// The config's own `override_params` (what every target at least merges in).
    pub overrides: &'a Map<String, Value>,
    pub force_refresh: bool,
}

/// A response found in the cache.
pub struct Hit {
    pub entry: Arc<Entry>,
    pub status: Status,
    /// Semantic hits: the cosine similarity of the prompt to the stored one.
    pub similarity: Option<f32>,
}

impl Hit {
    /// The cache headers of the hit.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = status_headers(self.status);
        if let Some(s) = self.similarity {
            h.push(("x-switchyard-cache-similarity", format!("{s:.4}")));
        }
        h
    }
}

/// A miss (or refresh) whose successful answer is to be stored.
pub struct Pending {
    pub status: Status,
    store: Arc<ConfigStore>,
    shared: Option<Arc<SharedStore>>,
    key: Digest32,
    /// Semantic mode: the prompt's partition and unit vector.
    vector: Option<(Digest32, Box<[f32]>)>,
    ttl: std::time::Duration,
}

impl Pending {
    /// The largest response this store keeps.
    pub fn max_bytes(&self) -> usize {
        self.store.max_entry_bytes()
    }
}

/// What the lookup decided.
pub enum Lookup {
    Hit(Hit),
    /// Route the request; store its answer if it succeeds.
    Miss(Pending),
    /// Route the request, store nothing.
    Bypass,
}

/// The `x-portkey-cache-status` headers for `status`.
pub fn status_headers(status: Status) -> Vec<(&'static str, String)> {
    vec![
        ("x-portkey-cache-status", status.header().to_string()),
        ("x-switchyard-cache-status", status.header().to_string()),
    ]
}

/// The process-wide cache: per-config stores (they outlive reloads that keep the config and
/// its `max_bytes`), the Redis store, the in-process embedders.
pub struct Cache {
    stores: Mutex<HashMap<String, Arc<ConfigStore>>>,
    state: Option<StateSettings>,
    shared: OnceLock<Option<Arc<SharedStore>>>,
    requests_total: Family<IntCounterVec, CacheLabels<'static>, 2>,
    #[cfg(feature = "local-embeddings")]
    local: local::Models,
}

impl Cache {
    /// `state` is where `backend: redis` entries go (read at start, like governance's).
    pub fn new(
        state: Option<&StateSettings>,
        requests_total: Family<IntCounterVec, CacheLabels<'static>, 2>,
    ) -> Cache {
        Cache {
            stores: Mutex::new(HashMap::new()),
            state: state.cloned(),
            shared: OnceLock::new(),
            requests_total,
            #[cfg(feature = "local-embeddings")]
            local: local::Models::default(),
        }
    }

    fn store_of(&self, config: &str, settings: &CacheSettings) -> Arc<ConfigStore> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        match stores.get(config) {
            Some(s) if s.max_bytes == settings.max_bytes => s.clone(),
            _ => {
                let s = Arc::new(ConfigStore::new(settings.max_bytes));
                stores.insert(config.to_string(), s.clone());
                s
            }
        }
    }

    fn shared(&self) -> Option<Arc<SharedStore>> {
        self.shared
            .get_or_init(|| {
                let state = self.state.as_ref()?;
                match SharedStore::start(state) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!(error = %e, "the Redis response cache is off");
                        None
                    }
                }
            })
            .clone()
    }

    fn count(&self, config: &str, result: &str) {
        self.requests_total
            .with(&CacheLabels { config, result })
            .inc();
    }

    /// Finds a stored response by exact key: memory, then Redis. `Err` when Redis failed.
    async fn find(
        &self,
        store: &ConfigStore,
        shared: Option<&Arc<SharedStore>>,
        key: &Digest32,
    ) -> Result<Option<Arc<Entry>>, ()> {
        if let Some(e) = store.get(key) {
            return Ok(Some(e));
        }
        let Some(shared) = shared else {
            return Ok(None);
        };
        let found = shared.get(key).await?.map(Arc::new);
        if let Some(e) = &found {
            store.insert(*key, e.clone());
        }
        Ok(found)
    }

    async fn embed(
        &self,
        embedder: &Embedder,
        targets: &dyn TargetEmbedder,
        text: &str,
    ) -> Result<Box<[f32]>, String> {
        let raw = match embedder {
            Embedder::Target { target, model } => targets.embed(target, model, text).await?,
            #[cfg(feature = "local-embeddings")]
            Embedder::Local(dir) => self.local.embed(dir, text).await?,
            #[cfg(not(feature = "local-embeddings"))]
            Embedder::Local(_) => {
                return Err("this build has no in-process embedder".into());
            }
        };
        store::normalized(raw).ok_or_else(|| "the embedding is a zero vector".to_string())
    }

    /// Looks `request` up in the config's cache.
    pub async fn lookup(
        &self,
        settings: &CacheSettings,
        request: Request<'_>,
        targets: &dyn TargetEmbedder,
    ) -> Lookup {
        let config = request.scope.config;
        if settings.skip_nondeterministic && key::nondeterministic(request.body, request.overrides)
        {
            self.count(config, Status::Disabled.metric());
            return Lookup::Bypass;
        }
        // Never key without the route: a config whose route identities are missing is not cached.
        let Some(route) = settings.route.as_deref() else {
            self.count(config, Status::Disabled.metric());
            return Lookup::Bypass;
        };
        let route = route.digest(&Facts {
            metadata: request.metadata,
            params: Some(request.body),
        });
        let store = self.store_of(config, settings);
        let shared = if settings.backend_redis {
            self.shared()
        } else {
            None
        };
        let key = key::exact(&request.scope, &route, request.body, request.overrides);
        let mut failed = false;
        if !request.force_refresh {
            match self.find(&store, shared.as_ref(), &key).await {
                Ok(Some(entry)) => {
                    self.count(config, Status::Hit.metric());
                    return Lookup::Hit(Hit {
                        entry,
                        status: Status::Hit,
                        similarity: None,
                    });
                }
                Ok(None) => {}
                Err(()) => failed = true,
            }
        }
        let mut vector = None;
        if let (CacheMode::Semantic, Some(embedder)) = (settings.mode, &settings.embedder) {
            if let Some(text) = key::last_user_text(request.body) {
                match self.embed(embedder, targets, &text).await {
                    Ok(unit) => {
                        let partition =
                            key::partition(&request.scope, &route, request.body, request.overrides);
                        if !request.force_refresh {
                            if let Some(near) = store.nearest(&partition, &unit) {
                                if f64::from(near.similarity) >= settings.similarity_threshold {
                                    match self.find(&store, shared.as_ref(), &near.key).await {
                                        Ok(Some(entry)) => {
                                            self.count(config, Status::SemanticHit.metric());
                                            return Lookup::Hit(Hit {
                                                entry,
                                                status: Status::SemanticHit,
                                                similarity: Some(near.similarity),
                                            });
                                        }
                                        Ok(None) => {}
                                        Err(()) => failed = true,
                                    }
                                }
                            }
                        }
                        vector = Some((partition, unit));
                    }
                    Err(e) => {
                        tracing::debug!(config, error = %e, "semantic cache: cannot embed the prompt");
                        failed = true;
                    }
                }
            }
        }
        let status = if request.force_refresh {
            Status::Refresh
        } else {
            Status::Miss
        };
        self.count(config, if failed { "error" } else { status.metric() });
        Lookup::Miss(Pending {
            status,
            store,
            shared,
            key,
            vector,
            ttl: settings.max_age,
        })
    }

    /// Stores a complete, successful response for `pending`.
    pub fn store(&self, pending: Pending, status: u16, stream: bool, body: Bytes) {
        if !(200..300).contains(&status) || body.len() > pending.max_bytes() {
            return;
        }
        let entry = Arc::new(Entry {
            status,
            stream,
            body,
            ttl: pending.ttl,
        });
        if let Some(shared) = &pending.shared {
            shared.put(&pending.key, &entry);
        }
        pending.store.insert(pending.key, entry);
        if let Some((partition, unit)) = pending.vector {
            pending
                .store
                .insert_vector(partition, unit, pending.key, pending.ttl);
        }
    }
}
