//! `configs.<name>.cache` validated and compiled into [`CacheSettings`], every error with its
//! YAML path (`configs.chat.cache.max_age: …`). Called by `config::compile` for each config.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::schema::{CacheBackendSpec, CacheModeSpec, CacheSpec, EmbedderSpec};
use crate::config::{
    CacheMode, CacheSettings, Embedder, PhaseTimeouts, ProviderKind, RetrySettings, Target,
    TargetKind, TargetSettings, VirtualKey,
};

/// How long an entry is served when `max_age` is not set.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Default bound of a config's in-memory store (bytes of stored responses).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// The default `similarity_threshold`, from cosine similarities measured with all-MiniLM-L6-v2
/// (README, Cache): "How do I reset my password?" / "What's the way to reset my password?"
/// scores 0.966, "enable 2FA" / "disable 2FA" 0.908; 0.94 is near the middle, erring high (a
/// wrong hit is worse than a miss).
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.94;
/// Deadline of an embeddings call to its response headers when `timeout_ms` is not set.
pub const DEFAULT_EMBED_TIMEOUT: Duration = Duration::from_millis(2000);
/// The embeddings model of a default embedder that calls a target (OpenAI's smallest).
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// Where a build with `local-embeddings` looks for the in-process model when `cache.embedder`
/// is not set: this variable, else `models/all-minilm-l6-v2` beside the config file.
pub const LOCAL_MODEL_DIR_ENV: &str = "SWITCHYARD_EMBEDDER_DIR";

/// What compiling a cache block needs from the rest of the config.
pub struct Context<'a> {
    pub virtual_keys: &'a HashMap<String, Arc<VirtualKey>>,
    /// Whether `state.redis_url` is set (`backend: redis` needs it).
    pub has_state: bool,
    pub config_name: &'a str,
    /// Relative `embedder.local` paths are relative to the config file's directory.
    pub base_dir: Option<&'a Path>,
}

/// The compiled settings (`None` when the block cannot be used) and the errors found, as
/// `(yaml path, message)`.
pub fn compile(
    spec: &CacheSpec,
    config_path: &str,
    ctx: &Context<'_>,
) -> (Option<CacheSettings>, Vec<(String, String)>) {
    let path = format!("{config_path}.cache");
    let mut errors = Vec::new();
    let mut error = |field: &str, message: &str| {
        let p = if field.is_empty() {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        errors.push((p, message.to_string()));
    };
    let mode = match spec.mode {
        CacheModeSpec::Simple => CacheMode::Simple,
        CacheModeSpec::Semantic => CacheMode::Semantic,
    };
    let threshold = spec
        .similarity_threshold
        .unwrap_or(DEFAULT_SIMILARITY_THRESHOLD);
    if !(threshold > 0.0 && threshold <= 1.0) {
        error("similarity_threshold", "must be in (0, 1]");
    }
    if mode == CacheMode::Simple {
        if spec.similarity_threshold.is_some() {
            error("similarity_threshold", "only for mode: semantic");
        }
        if spec.embedder.is_some() {
            error("embedder", "only for mode: semantic");
        }
    }
    let backend_redis = spec.backend == Some(CacheBackendSpec::Redis);
    if backend_redis && !ctx.has_state {
        error(
            "backend",
            "backend: redis needs state.redis_url (the Redis the gateway shares)",
        );
    }
    let max_bytes = spec.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max_bytes < 1024 {
        error("max_bytes", "must be at least 1024");
    }
    let embedder = match (&spec.embedder, mode) {
        (None, CacheMode::Semantic) => {
            error(
                "embedder",
                "required for mode: semantic: { virtual_key, model } or { local: <model dir> }",
            );
            None
        }
        (None, CacheMode::Simple) => None,
        (Some(e), _) => embedder(e, &path, ctx, &mut errors),
    };
    let settings = CacheSettings {
        mode,
        max_age: spec.max_age.map_or(DEFAULT_MAX_AGE, |d| d.0),
        similarity_threshold: threshold,
        skip_nondeterministic: spec.skip_nondeterministic.unwrap_or(false),
        backend_redis,
        max_bytes,
        embedder,
        // Set by `config::compile` once the target tree exists (`route::RouteKeys::attach`).
        route: None,
    };
    let ok = errors.is_empty();
    (ok.then_some(settings), errors)
}

/// The embedder of a semantic cache that names none (Portkey's configs never do): the
/// in-process model when this build has it and its directory holds one, else the embeddings
/// endpoint of the first leaf of `root` (in the order written) whose provider speaks OpenAI's
/// format, through its virtual key, with [`DEFAULT_EMBEDDING_MODEL`]. Returns the spec and a
/// sentence saying what was chosen (`check` prints it), or `None` when nothing fits.
pub fn default_embedder(
    root: &Target,
    config_path: &str,
    base_dir: Option<&Path>,
) -> Option<(EmbedderSpec, String)> {
    if cfg!(feature = "local-embeddings") {
        let dir = std::env::var(LOCAL_MODEL_DIR_ENV)
            .unwrap_or_else(|_| "models/all-minilm-l6-v2".to_string());
        let resolved = crate::config::secrets::resolve_path(&dir, base_dir);
        if resolved.join("model.safetensors").is_file() {
            let note = format!(
                "cache embedder: chose the in-process model in {} (set cache.embedder to choose another)",
                resolved.display()
            );
            let spec = EmbedderSpec {
                virtual_key: None,
                model: None,
                timeout_ms: None,
                local: Some(dir),
            };
            return Some((spec, note));
        }
    }
    let leaf = first_openai_leaf(root)?;
    let TargetKind::Leaf { virtual_key } = &leaf.kind else {
        return None;
    };
    let at = leaf.path.replacen("config", config_path, 1);
    let note = format!(
        "cache embedder: chose {DEFAULT_EMBEDDING_MODEL} at the embeddings endpoint of {at} \
         (provider {}, virtual key {}), the config's first OpenAI-format target; set \
         cache.embedder to choose another",
        virtual_key.provider.name, virtual_key.label
    );
    let spec = EmbedderSpec {
        virtual_key: Some(virtual_key.name.clone()),
        model: Some(DEFAULT_EMBEDDING_MODEL.to_string()),
        timeout_ms: None,
        local: None,
    };
    Some((spec, note))
}

/// The first enabled leaf under `node`, in the order written, whose provider is `openai`,
/// `azure-openai` or `openai-compatible`.
fn first_openai_leaf(node: &Target) -> Option<&Target> {
    match &node.kind {
        TargetKind::Leaf { virtual_key } => {
            let openai_format = matches!(
                virtual_key.provider.kind,
                ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible
            );
            (openai_format && !virtual_key.disabled).then_some(node)
        }
        TargetKind::Group { targets, .. } => targets.iter().find_map(first_openai_leaf),
    }
}

fn embedder(
    spec: &EmbedderSpec,
    cache_path: &str,
    ctx: &Context<'_>,
    errors: &mut Vec<(String, String)>,
) -> Option<Embedder> {
    let path = format!("{cache_path}.embedder");
    let mut error = |field: &str, message: String| {
        let p = if field.is_empty() {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        errors.push((p, message));
    };
    match (&spec.virtual_key, &spec.local) {
        (Some(_), Some(_)) => {
            error("", "either virtual_key (+ model) or local, not both".into());
            None
        }
        (None, None) => {
            error(
                "",
                "needs virtual_key (+ model) or local: <model dir>".into(),
            );
            None
        }
        (None, Some(dir)) => {
            if spec.model.is_some() || spec.timeout_ms.is_some() {
                error(
                    "local",
                    "model and timeout_ms belong to a virtual_key embedder".into(),
                );
            }
            if !cfg!(feature = "local-embeddings") {
                error(
                    "local",
                    "this build has no in-process embedder: build with --features local-embeddings, or use virtual_key + model".into(),
                );
                return None;
            }
            let dir = crate::config::secrets::resolve_path(dir, ctx.base_dir);
            for file in ["config.json", "tokenizer.json", "model.safetensors"] {
                if !dir.join(file).is_file() {
                    error(
                        "local",
                        format!(
                            "{} has no {file} (a sentence-transformers BERT model directory)",
                            dir.display()
                        ),
                    );
                    return None;
                }
            }
            Some(Embedder::Local(dir))
        }
        (Some(vk), None) => {
            let Some(model) = spec.model.clone() else {
                error(
                    "model",
                    "required with virtual_key (the embeddings model)".into(),
                );
                return None;
            };
            let Some(key) = ctx.virtual_keys.get(vk) else {
                error("virtual_key", format!("unknown virtual key {vk:?}"));
                return None;
            };
            let settings = TargetSettings {
                retry: RetrySettings::default(),
                request_timeout: Some(spec.timeout_ms.map_or(DEFAULT_EMBED_TIMEOUT, |t| t.0)),
                timeouts: PhaseTimeouts::default(),
                override_params: Default::default(),
                circuit_breaker: Default::default(),
                cache: None,
                input_guardrails: None,
                output_guardrails: None,
            };
            let target = Target {
                path: "config.cache.embedder".into(),
                name: Some(format!("{}/cache.embedder", ctx.config_name)),
                breaker_key: format!("{}/cache.embedder", ctx.config_name),
                weight: 1.0,
                kind: TargetKind::Leaf {
                    virtual_key: key.clone(),
                },
                settings,
            };
            Some(Embedder::Target {
                target: Arc::new(target),
                model,
            })
        }
    }
}
