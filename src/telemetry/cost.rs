//! What a request cost: the [`PriceTable`] (list prices per provider kind and model, loaded from
//! our `prices.yaml` format or from LiteLLM's `model_prices_and_context_window.json`, with
//! config-level overrides on top) and the arithmetic that turns a [`Usage`] into US dollars.
//!
//! Prices are held as integers, in pico-dollars per token (which is also micro-dollars per
//! million tokens), and a request's cost is summed in integers before the one conversion to
//! `f64`: a million input and half a million output tokens of gpt-4o-mini ($0.15/M in, $0.60/M
//! out) cost exactly `0.45`, where summing `f64` terms gives `0.44999999999999996`.
//!
//! An unknown model has no cost (`None`), never a cost of zero: dashboards must be able to tell
//! "free" from "not priced".

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::providers::Usage;

/// The default price table, `conf/prices.yaml`, built into the binary.
pub const EMBEDDED_PRICES_YAML: &str = include_str!("../../conf/prices.yaml");

/// The provider kinds our price format is keyed by (`ProviderKind::as_str`).
pub const PROVIDER_KINDS: [&str; 5] = [
    "openai",
    "azure-openai",
    "anthropic",
    "gemini",
    "openai-compatible",
];

/// Pico-dollars in one dollar.
const PICO_PER_USD: f64 = 1e12;
/// Highest accepted price, USD per million tokens: far above any real list price, low enough
/// that every product stays exact in `u128`.
const MAX_USD_PER_MILLION: f64 = 1_000_000.0;

/// Why a price table could not be loaded. Paths are inside the price file
/// (`openai.gpt-4o.input`, `gpt-4o.input_cost_per_token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PriceError {
    PriceError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// One model's prices as written in `prices.yaml` and in `telemetry.prices`, USD per million
/// tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
}

impl PriceSpec {
    /// Validates the numbers; errors name the field under `path`.
    pub fn to_price(&self, path: &str) -> Result<ModelPrice, PriceError> {
        let convert = |field: &str, usd_per_million: f64| {
            per_million_to_pico(usd_per_million).ok_or_else(|| {
                invalid(
                    format!("{path}.{field}"),
                    format!(
                        "must be a number of USD per million tokens between 0 and {MAX_USD_PER_MILLION}"
                    ),
                )
            })
        };
        Ok(ModelPrice {
            input: convert("input", self.input)?,
            output: convert("output", self.output)?,
            cached_input: self
                .cached_input
                .map(|p| convert("cached_input", p))
                .transpose()?,
            cache_write: self
                .cache_write
                .map(|p| convert("cache_write", p))
                .transpose()?,
        })
    }
}

fn per_million_to_pico(usd_per_million: f64) -> Option<u64> {
    if !usd_per_million.is_finite() || !(0.0..=MAX_USD_PER_MILLION).contains(&usd_per_million) {
        return None;
    }
    // USD per million tokens × 1e6 = pico-dollars per token; rounding absorbs the binary error
    // of decimal literals such as 0.075.
    Some((usd_per_million * 1e6).round() as u64)
}

fn per_token_to_pico(usd_per_token: f64) -> Option<u64> {
    per_million_to_pico(usd_per_token * 1e6)
}

/// One model's prices, in pico-dollars per token (= micro-dollars per million tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    pub input: u64,
    /// Completion tokens, reasoning included.
    pub output: u64,
    /// Prompt tokens read from a cache; `None` charges them as `input`.
    pub cached_input: Option<u64>,
    /// Prompt tokens written to a cache; `None` charges them as `input`.
    pub cache_write: Option<u64>,
}

impl ModelPrice {
    /// The exact cost of `usage` in pico-dollars. `input_tokens` includes the cached and the
    /// cache-written tokens (see [`Usage`]), so only the remainder is charged at `input`.
    pub fn cost_pico_usd(&self, usage: &Usage) -> u128 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cached_tokens)
            .saturating_sub(usage.cache_creation_tokens);
        let term = |tokens: u64, price: u64| u128::from(tokens) * u128::from(price);
        term(uncached, self.input)
            + term(usage.cached_tokens, self.cached_input.unwrap_or(self.input))
            + term(
                usage.cache_creation_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + term(usage.output_tokens, self.output)
    }

    /// The cost of `usage` in US dollars.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        pico_to_usd(self.cost_pico_usd(usage))
    }
}

/// Pico-dollars to dollars: one correctly rounded division, so any amount up to ~$9000 that is
/// a whole number of micro-dollars comes out as the `f64` nearest its decimal spelling.
pub fn pico_to_usd(pico: u128) -> f64 {
    pico as f64 / PICO_PER_USD
}

/// List prices by provider kind and model; overrides are merged in ([`PriceTable::merged_with`]).
#[derive(Clone, Default)]
pub struct PriceTable {
    /// provider kind (or LiteLLM provider) → model (lower case) → price.
    by_provider: HashMap<String, HashMap<String, ModelPrice>>,
    /// Entries for any provider, tried before the provider's own (only `telemetry.prices`
    /// keys without a kind make these).
    any_provider: HashMap<String, ModelPrice>,
    /// model → the price of its most canonical provider (see [`provider_rank`]), for lookups
    /// whose provider kind has no entry. Rebuilt after every change.
    by_model: HashMap<String, ModelPrice>,
}

impl fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Thousands of entries with a LiteLLM file: print the shape, not the table.
        f.debug_struct("PriceTable")
            .field("providers", &self.by_provider.len())
            .field("models", &self.len())
            .field("any_provider", &self.any_provider.len())
            .finish()
    }
}

/// Which provider's price a model-only lookup prefers when several list the model: the
/// model's own vendor first, then Azure, then resellers and clouds (by name, for determinism).
fn provider_rank(provider: &str) -> u8 {
    match provider {
        "openai" | "anthropic" | "gemini" => 0,
        "azure-openai" => 1,
        "" => 3,
        _ => 2,
    }
}

/// LiteLLM's `litellm_provider` spelled as our provider kind where one corresponds.
fn litellm_provider_kind(provider: &str) -> &str {
    match provider {
        "openai" | "text-completion-openai" => "openai",
        "azure" | "azure_text" => "azure-openai",
        "anthropic" => "anthropic",
        "gemini" => "gemini",
        other => other,
    }
}

/// The model name with what does not change its price removed: Gemini's `models/` prefix, a
/// date (`-2024-08-06`, `-20250929`, `@20250514`), `-latest`, or a three-digit version
/// (`-001`). `None` when nothing was removed.
pub fn normalize_model(model: &str) -> Option<String> {
    let lower = model.trim().to_ascii_lowercase();
    let mut m = lower.as_str();
    if let Some(rest) = m.strip_prefix("models/") {
        m = rest;
    }
    loop {
        let before = m.len();
        m = strip_version_suffix(m);
        if m.len() == before {
            break;
        }
    }
    (m != model && !m.is_empty()).then(|| m.to_string())
}

fn strip_version_suffix(m: &str) -> &str {
    fn digits(b: &[u8]) -> bool {
        !b.is_empty() && b.iter().all(u8::is_ascii_digit)
    }
    if let Some(rest) = m.strip_suffix("-latest") {
        return rest;
    }
    let b = m.as_bytes();
    // Each pattern is ASCII and starts with a separator, so a match starts on a char boundary.
    let suffix_len = |len: usize, seps: &[u8]| -> Option<usize> {
        let start = b.len().checked_sub(len).filter(|&s| s > 0)?;
        let tail = &b[start..];
        let ok = seps.contains(&tail[0])
            && if len == 11 {
                // -YYYY-MM-DD
                tail[5] == b'-'
                    && tail[8] == b'-'
                    && digits(&tail[1..5])
                    && digits(&tail[6..8])
                    && digits(&tail[9..11])
            } else {
                digits(&tail[1..])
            };
        ok.then_some(start)
    };
    let start = suffix_len(11, b"-")
        .or_else(|| suffix_len(9, b"-@")) // -YYYYMMDD, @YYYYMMDD (Vertex)
        .or_else(|| suffix_len(4, b"-")); // -001
    match start {
        Some(start) => m.get(..start).unwrap_or(m),
        None => m,
    }
}

/// Top-level shape of `prices.yaml`: provider kind → model → price.
type PriceFile = BTreeMap<String, BTreeMap<String, PriceSpec>>;

impl PriceTable {
    /// An empty table: every model is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table built into the binary (`conf/prices.yaml`).
    pub fn embedded() -> Result<Self, PriceError> {
        Self::from_yaml(EMBEDDED_PRICES_YAML)
    }

    /// Parses our format (see `conf/prices.yaml`). Unknown provider kinds and unknown fields are
    /// errors, with their path in the file.
    pub fn from_yaml(text: &str) -> Result<Self, PriceError> {
        let mut tree: Value =
            serde_saphyr::from_str(text).map_err(|e| PriceError::Yaml(e.to_string()))?;
        if tree.is_null() {
            tree = Value::Object(Default::default());
        }
        let file: PriceFile = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            invalid(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        let mut table = Self::new();
        for (kind, models) in &file {
            if !PROVIDER_KINDS.contains(&kind.as_str()) {
                return Err(invalid(
                    kind.clone(),
                    format!(
                        "unknown provider kind {kind:?}: expected one of {}",
                        PROVIDER_KINDS.join(", ")
                    ),
                ));
            }
            for (model, spec) in models {
                let price = spec.to_price(&format!("{kind}.{model}"))?;
                table.insert(kind, model, price);
            }
        }
        table.reindex();
        Ok(table)
    }

    /// Parses LiteLLM's `model_prices_and_context_window.json`: `input_cost_per_token`,
    /// `output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost`
    /// (USD per token) under each model, filed by `litellm_provider`. `sample_spec`, entries
    /// that are not objects and entries without both token prices (images, audio, rerank …) are
    /// skipped; a token price that is present but not a non-negative number is an error.
    pub fn from_litellm_json(text: &str) -> Result<Self, PriceError> {
        let tree: Value =
            serde_json::from_str(text).map_err(|e| PriceError::Json(e.to_string()))?;
        let Value::Object(entries) = tree else {
            return Err(PriceError::Json(
                "expected an object of models at the top level".into(),
            ));
        };
        let mut table = Self::new();
        for (key, entry) in &entries {
            if key == "sample_spec" {
                continue;
            }
            let Value::Object(fields) = entry else {
                continue;
            };
            let price = |field: &str| -> Result<Option<u64>, PriceError> {
                match fields.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .and_then(per_token_to_pico)
                        .map(Some)
                        .ok_or_else(|| {
                            invalid(
                                format!("{key}.{field}"),
                                "must be a non-negative number of USD per token",
                            )
                        }),
                }
            };
            let (Some(input), Some(output)) = (
                price("input_cost_per_token")?,
                price("output_cost_per_token")?,
            ) else {
                continue;
            };
            let model_price = ModelPrice {
                input,
                output,
                cached_input: price("cache_read_input_token_cost")?,
                cache_write: price("cache_creation_input_token_cost")?,
            };
            match fields.get("litellm_provider").and_then(Value::as_str) {
                Some(provider) => {
                    // "azure/gpt-4o" is filed under "azure"; the prefix is not part of the
                    // model name the provider answers to.
                    let model = key
                        .strip_prefix(provider)
                        .and_then(|m| m.strip_prefix('/'))
                        .unwrap_or(key);
                    table.insert(litellm_provider_kind(provider), model, model_price);
                }
                // Filed under no provider: found by the model-only lookup, after every kind's
                // own entry.
                None => table.insert("", key, model_price),
            }
        }
        table.reindex();
        Ok(table)
    }

    /// Parses `telemetry.prices`: keys are `kind/model` (`openai/gpt-4o`) for one provider
    /// kind, or a bare model name for any provider (a model may itself contain `/`, as in
    /// `meta-llama/Llama-3.1-8B`, unless the part before it is a provider kind). Errors name
    /// the key under `path`.
    pub fn from_overrides<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a PriceSpec)>,
        path: &str,
    ) -> Result<Self, PriceError> {
        let mut table = Self::new();
        for (key, spec) in entries {
            let price = spec.to_price(&format!("{path}.{key}"))?;
            match key.split_once('/') {
                Some((kind, model)) if PROVIDER_KINDS.contains(&kind) => {
                    if model.trim().is_empty() {
                        return Err(invalid(format!("{path}.{key}"), "names no model"));
                    }
                    table.insert(kind, model, price);
                }
                _ => {
                    if key.trim().is_empty() {
                        return Err(invalid(format!("{path}.{key}"), "names no model"));
                    }
                    table
                        .any_provider
                        .insert(key.trim().to_ascii_lowercase(), price);
                }
            }
        }
        table.reindex();
        Ok(table)
    }

    /// `self` with every entry of `higher` added, replacing entries for the same provider and
    /// model: how a `prices_file` sits on top of a LiteLLM file, and `telemetry.prices` on top
    /// of both.
    pub fn merged_with(mut self, higher: PriceTable) -> Self {
        for (provider, models) in higher.by_provider {
            self.by_provider.entry(provider).or_default().extend(models);
        }
        self.any_provider.extend(higher.any_provider);
        self.reindex();
        self
    }

    /// Number of priced (provider, model) pairs, plus entries for any provider.
    pub fn len(&self) -> usize {
        self.by_provider.values().map(HashMap::len).sum::<usize>() + self.any_provider.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, provider: &str, model: &str, price: ModelPrice) {
        self.by_provider
            .entry(provider.to_string())
            .or_default()
            .insert(model.trim().to_ascii_lowercase(), price);
    }

    fn reindex(&mut self) {
        let mut providers: Vec<&String> = self.by_provider.keys().collect();
        providers.sort_by(|a, b| provider_rank(a).cmp(&provider_rank(b)).then(a.cmp(b)));
        let mut by_model = HashMap::new();
        for provider in providers {
            for (model, price) in &self.by_provider[provider] {
                by_model.entry(model.clone()).or_insert(*price);
            }
        }
        self.by_model = by_model;
    }

    /// The price for `model` served by a provider of `provider_kind`, trying the model as named
    /// and then normalized ([`normalize_model`]) at each step: an entry for any provider (only
    /// overrides have those); this kind's entry; another provider's entry for the model (its
    /// own vendor first, see [`provider_rank`]).
    pub fn price(&self, provider_kind: &str, model: &str) -> Option<ModelPrice> {
        let normalized = normalize_model(model);
        let names = [Some(model), normalized.as_deref()];
        let names = || names.iter().flatten().copied();
        let find = |map: &HashMap<String, ModelPrice>| names().find_map(|n| map.get(n).copied());
        find(&self.any_provider)
            .or_else(|| self.by_provider.get(provider_kind).and_then(find))
            .or_else(|| find(&self.by_model))
    }

    /// What `usage` cost in US dollars on `model` at a provider of `provider_kind`
    /// (`ProviderKind::as_str`); `None` when the model has no price.
    pub fn cost(&self, provider_kind: &str, model: &str, usage: &Usage) -> Option<f64> {
        self.price(provider_kind, model).map(|p| p.cost_usd(usage))
    }

    /// Like [`PriceTable::cost`], exact, in pico-dollars (for summing many requests).
    pub fn cost_pico_usd(&self, provider_kind: &str, model: &str, usage: &Usage) -> Option<u128> {
        self.price(provider_kind, model)
            .map(|p| p.cost_pico_usd(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Default::default()
        }
    }

    #[test]
    fn the_embedded_table_loads_and_covers_each_vendor() {
        let t = PriceTable::embedded().unwrap();
        for (kind, model) in [
            ("openai", "gpt-4o"),
            ("openai", "gpt-4.1-mini"),
            ("openai", "o4-mini"),
            ("anthropic", "claude-sonnet-4-5"),
            ("anthropic", "claude-haiku-4-5"),
            ("anthropic", "claude-opus-4-1"),
            ("gemini", "gemini-2.5-pro"),
            ("gemini", "gemini-2.5-flash"),
        ] {
            assert!(t.price(kind, model).is_some(), "{kind}/{model}");
        }
    }

    #[test]
    fn prices_are_exact_integers() {
        let spec = PriceSpec {
            input: 0.075,
            output: 0.3,
            cached_input: Some(0.0375),
            cache_write: None,
        };
        let p = spec.to_price("x").unwrap();
        assert_eq!(
            (p.input, p.output, p.cached_input),
            (75_000, 300_000, Some(37_500))
        );
        assert_eq!(per_token_to_pico(2.5e-6), Some(2_500_000));
        assert_eq!(per_token_to_pico(5.46875e-07), Some(546_875));
        assert_eq!(per_token_to_pico(-1e-6), None);
        assert_eq!(per_token_to_pico(f64::NAN), None);
    }

    #[test]
    fn cost_splits_input_into_uncached_cached_and_written() {
        // $3 in, $15 out, $0.30 cache read, $3.75 cache write per million.
        let p = ModelPrice {
            input: 3_000_000,
            output: 15_000_000,
            cached_input: Some(300_000),
            cache_write: Some(3_750_000),
        };
        let u = Usage {
            input_tokens: 10_000,
            cached_tokens: 6_000,
            cache_creation_tokens: 3_000,
            output_tokens: 1_000,
            reasoning_tokens: 400,
        };
        // (1000×3 + 6000×0.30 + 3000×3.75 + 1000×15) / 1e6 = 0.03105 USD
        assert_eq!(p.cost_usd(&u), 0.03105);
        // Without cache prices, cached and written tokens are charged as input.
        let plain = ModelPrice {
            cached_input: None,
            cache_write: None,
            ..p
        };
        assert_eq!(plain.cost_usd(&u), 0.045);
        // Inconsistent counts never underflow.
        let odd = Usage {
            input_tokens: 10,
            cached_tokens: 20,
            ..Default::default()
        };
        assert_eq!(plain.cost_pico_usd(&odd), 20 * 3_000_000);
    }

    #[test]
    fn model_names_normalize() {
        for (given, expected) in [
            ("gpt-4o-2024-08-06", Some("gpt-4o")),
            ("claude-sonnet-4-5-20250929", Some("claude-sonnet-4-5")),
            ("claude-3-5-haiku-latest", Some("claude-3-5-haiku")),
            ("claude-sonnet-4@20250514", Some("claude-sonnet-4")),
            ("models/gemini-2.5-pro", Some("gemini-2.5-pro")),
            ("gemini-2.0-flash-001", Some("gemini-2.0-flash")),
            ("GPT-4o", Some("gpt-4o")),
            ("gpt-4o", None),
            ("o3", None),
            ("-2024-08-06", None),
            ("", None),
            ("models/", None),
            ("é-2024", None),
            ("éé-001", Some("éé")),
            ("modèle-20250101", Some("modèle")),
            ("€€€€€€€€€€€€", None),
            ("-001", None),
        ] {
            assert_eq!(normalize_model(given).as_deref(), expected, "{given}");
        }
    }

    #[test]
    fn lookup_prefers_the_kind_then_any_provider_and_overrides_win() {
        let base = PriceTable::from_yaml(
            "openai:\n  gpt-4o: { input: 2.5, output: 10 }\n  gpt-4o-2024-05-13: { input: 5, output: 15 }\nazure-openai:\n  gpt-4o: { input: 2.75, output: 11 }\n",
        )
        .unwrap();
        let u = usage(1_000_000, 0);
        assert_eq!(base.cost("openai", "gpt-4o-2024-08-06", &u), Some(2.5));
        assert_eq!(base.cost("openai", "gpt-4o-2024-05-13", &u), Some(5.0));
        assert_eq!(base.cost("azure-openai", "gpt-4o", &u), Some(2.75));
        // No entry for this kind: the vendor's own price.
        assert_eq!(base.cost("openai-compatible", "gpt-4o", &u), Some(2.5));
        assert_eq!(base.cost("openai", "gpt-5", &u), None);

        let spec = PriceSpec {
            input: 1.0,
            output: 1.0,
            cached_input: None,
            cache_write: None,
        };
        let overrides =
            PriceTable::from_overrides([("openai/gpt-4o", &spec), ("my-llama", &spec)], "p")
                .unwrap();
        let t = base.merged_with(overrides);
        // A kind's override replaces that kind's entry …
        assert_eq!(t.cost("openai", "gpt-4o-2024-08-06", &u), Some(1.0));
        assert_eq!(t.cost("openai-compatible", "gpt-4o", &u), Some(1.0));
        // … and no other, nor a dated model with a price of its own.
        assert_eq!(t.cost("azure-openai", "gpt-4o", &u), Some(2.75));
        assert_eq!(t.cost("openai", "gpt-4o-2024-05-13", &u), Some(5.0));
        // A model-only override prices the model at every provider, first.
        assert_eq!(t.cost("openai-compatible", "my-llama", &u), Some(1.0));
        let t = t.merged_with(
            PriceTable::from_overrides([("GPT-4o", &PriceSpec { input: 7.0, ..spec })], "p")
                .unwrap(),
        );
        assert_eq!(t.cost("azure-openai", "gpt-4o", &u), Some(7.0));
        let e = PriceTable::from_overrides([("openai/", &spec)], "p").unwrap_err();
        assert_eq!(e.to_string(), "p.openai/: names no model");
    }

    #[test]
    fn bad_price_files_name_the_path() {
        let e = PriceTable::from_yaml("openai:\n  gpt-4o: { input: -1, output: 10 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("openai.gpt-4o.input: must be"), "{e}");
        let e = PriceTable::from_yaml("opeanai:\n  gpt-4o: { input: 1, output: 10 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown provider kind \"opeanai\""), "{e}");
        let e = PriceTable::from_yaml("openai:\n  gpt-4o: { input: 1, output: 10, cahced: 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("openai.gpt-4o") && e.contains("cahced"), "{e}");
        let e = PriceTable::from_yaml("openai:\n  gpt-4o: { input: 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("output"), "{e}");
        assert!(PriceTable::from_yaml("[1, 2]").is_err());
        assert!(PriceTable::from_yaml(": : :").is_err());
        assert!(PriceTable::from_yaml("").unwrap().is_empty());
    }

    #[test]
    fn litellm_entries_are_filed_by_provider_and_odd_ones_skipped() {
        let t = PriceTable::from_litellm_json(
            r#"{
              "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": "x"},
              "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai", "mode": "chat"},
              "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05, "litellm_provider": "azure"},
              "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai"},
              "weird": [1, 2],
              "nullish": {"input_cost_per_token": null, "output_cost_per_token": 1e-06}
            }"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let u = usage(1_000_000, 0);
        assert_eq!(t.cost("openai", "gpt-4o", &u), Some(2.5));
        assert_eq!(t.cost("azure-openai", "gpt-4o", &u), Some(2.75));
        assert_eq!(t.cost("openai", "dall-e-3", &u), None);
        assert_eq!(t.cost("openai", "sample_spec", &u), None);
        let e = PriceTable::from_litellm_json(
            r#"{"m": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-6}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.input_cost_per_token: must be a non-negative number of USD per token"
        );
        assert!(PriceTable::from_litellm_json("[]").is_err());
        assert!(PriceTable::from_litellm_json("{").is_err());
    }

    #[test]
    fn a_higher_table_replaces_same_keys_only() {
        let low = PriceTable::from_yaml(
            "openai:\n  gpt-4o: { input: 9, output: 9 }\n  gpt-4o-mini: { input: 0.15, output: 0.6 }\n",
        )
        .unwrap();
        let high =
            PriceTable::from_yaml("openai:\n  gpt-4o: { input: 2.5, output: 10 }\n").unwrap();
        let t = low.merged_with(high);
        let u = usage(1_000_000, 0);
        assert_eq!(t.cost("openai", "gpt-4o", &u), Some(2.5));
        assert_eq!(t.cost("openai", "gpt-4o-mini", &u), Some(0.15));
        assert_eq!(
            format!("{t:?}"),
            "PriceTable { providers: 1, models: 2, any_provider: 0 }"
        );
    }
}
