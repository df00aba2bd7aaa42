//! A config's `cache:`: compiled by `crate::cache::config::compile`, whose errors (with their
//! YAML paths) join the file's; the route identities of the config's tree are attached here.

use super::compiler::*;
use crate::cache::config::Context;
use crate::cache::route::RouteKeys;
use crate::config::schema::CacheSpec;
use crate::config::snapshot::{CacheSettings, Embedder, Target};

impl Compiler<'_> {
    /// The `cache:` of the config whose tree is `root` (at `yaml_path`).
    pub(super) fn cache(
        &mut self,
        spec: &CacheSpec,
        yaml_path: &str,
        ctx: &Context<'_>,
        root: &Target,
    ) -> Option<CacheSettings> {
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
