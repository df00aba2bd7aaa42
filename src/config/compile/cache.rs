//! A config's `cache:`: compiled by `crate::cache::config::compile`, whose errors (with their
//! YAML paths) join the file's; the route identities of the config's tree are attached here. A
//! semantic cache without `embedder` (as Portkey's configs are written) gets a default one
//! (`crate::cache::config::default_embedder`), said in a warning `check` prints.

use super::compiler::*;
use crate::cache::config::{default_embedder, Context};
use crate::cache::route::RouteKeys;
use crate::config::schema::{CacheModeSpec, CacheSpec};
use crate::config::snapshot::{CacheSettings, Embedder, Target};

/// A semantic cache with no embedder and nothing to choose one from.
const NO_EMBEDDER: &str = "required for mode: semantic, and this config has no target whose \
    provider speaks OpenAI's format (openai, azure-openai, openai-compatible) to embed with: set \
    cache.embedder: { virtual_key: <an OpenAI-format key>, model: text-embedding-3-small }, or \
    { local: <model dir> } in a build with --features local-embeddings";

impl Compiler<'_> {
    /// The `cache:` of the config whose tree is `root` (at `yaml_path`).
    pub(super) fn cache(
        &mut self,
        spec: &CacheSpec,
        yaml_path: &str,
        ctx: &Context<'_>,
        root: &Target,
    ) -> Option<CacheSettings> {
        let chosen;
        let spec = match (spec.mode, &spec.embedder) {
            (CacheModeSpec::Semantic, None) => {
                match default_embedder(root, yaml_path, ctx.base_dir) {
                    Some((embedder, note)) => {
                        self.warn(format!("{yaml_path}.cache.embedder"), note);
                        chosen = CacheSpec {
                            embedder: Some(embedder),
                            ..spec.clone()
                        };
                        &chosen
                    }
                    None => {
                        self.error(format!("{yaml_path}.cache.embedder"), NO_EMBEDDER);
                        return None;
                    }
                }
            }
            _ => spec,
        };
        let (settings, errors) = crate::cache::config::compile(spec, yaml_path, ctx);
        for (path, message) in errors {
            self.error(path, message);
        }
        if let Some(model) = settings.as_ref().and_then(|s| match &s.embedder {
            Some(Embedder::Target { model, .. }) => Some(model),
            _ => None,
        }) {
            self.known_models.insert(model.clone());
        }
        settings.map(|s| RouteKeys::attach(s, root))
    }
}
