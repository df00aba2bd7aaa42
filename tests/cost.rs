//! Request cost: the embedded price table, a LiteLLM-format file, and exact arithmetic.

use std::path::Path;

use switchyard::providers::Usage;
use switchyard::telemetry::cost::{PriceTable, EMBEDDED_PRICES_YAML};

const LITELLM_FIXTURE: &str = "tests/fixtures/litellm_model_prices.json";

fn usage(input: u64, cached: u64, cache_write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        cache_creation_tokens: cache_write,
        reasoning_tokens: 0,
    }
}

fn litellm() -> PriceTable {
    let text = std::fs::read_to_string(LITELLM_FIXTURE).unwrap();
    PriceTable::from_litellm_json(&text).unwrap()
}

#[test]
fn the_embedded_table_is_conf_prices_yaml_and_prices_every_listed_family() {
    let on_disk = std::fs::read_to_string("conf/prices.yaml").unwrap();
    assert_eq!(on_disk, EMBEDDED_PRICES_YAML);
    let t = PriceTable::embedded().unwrap();
    assert!(t.len() >= 25, "{t:?}");
    let u = usage(1_000_000, 0, 0, 0);
    for (kind, model, usd) in [
        ("openai", "gpt-4o", 2.5),
        ("openai", "gpt-4o-2024-08-06", 2.5),
        ("openai", "gpt-4o-2024-05-13", 5.0),
        ("openai", "gpt-4o-mini-2024-07-18", 0.15),
        ("openai", "gpt-4.1", 2.0),
        ("openai", "gpt-4.1-mini-2025-04-14", 0.4),
        ("openai", "gpt-4.1-nano", 0.1),
        ("openai", "o3-2025-04-16", 2.0),
        ("openai", "o4-mini", 1.1),
        ("azure-openai", "gpt-4o", 2.5),
        ("anthropic", "claude-opus-4-1-20250805", 15.0),
        ("anthropic", "claude-opus-4-5-20251101", 5.0),
        ("anthropic", "claude-sonnet-4-20250514", 3.0),
        ("anthropic", "claude-sonnet-4-5-20250929", 3.0),
        ("anthropic", "claude-haiku-4-5-20251001", 1.0),
        ("anthropic", "claude-3-5-haiku-latest", 0.8),
        ("gemini", "gemini-2.5-pro", 1.25),
        ("gemini", "models/gemini-2.5-flash", 0.3),
        ("gemini", "gemini-2.0-flash-001", 0.1),
    ] {
        assert_eq!(t.cost(kind, model, &u), Some(usd), "{kind}/{model}");
    }
}

#[test]
fn micro_dollar_exact_costs() {
    let t = PriceTable::embedded().unwrap();
    // 1M input + 500k output of gpt-4o: $2.50 + $5.00.
    assert_eq!(
        t.cost("openai", "gpt-4o", &usage(1_000_000, 0, 0, 500_000)),
        Some(7.5)
    );
    // gpt-4o-mini: $0.15 + $0.30, where naive f64 gives 0.44999999999999996.
    assert_eq!(
        t.cost("openai", "gpt-4o-mini", &usage(1_000_000, 0, 0, 500_000)),
        Some(0.45)
    );
    // Cached prompt tokens at the cached rate (gpt-4.1-mini: $0.40 / $0.10 / $1.60):
    // 234 567 × 0.40 + 1 000 000 × 0.10 + 7 654 × 1.60 = 0.0938268 + 0.1 + 0.0122464.
    assert_eq!(
        t.cost(
            "openai",
            "gpt-4.1-mini",
            &usage(1_234_567, 1_000_000, 0, 7_654)
        ),
        Some(0.2060732)
    );
    // Anthropic cache reads and writes (claude-sonnet-4-5: $3 / $0.30 / $3.75 / $15):
    // 5 000 × 3 + 30 000 × 0.30 + 15 000 × 3.75 + 2 000 × 15 = 0.015 + 0.009 + 0.05625 + 0.03.
    let mut u = usage(50_000, 30_000, 15_000, 2_000);
    u.reasoning_tokens = 500; // part of output_tokens: not charged twice
    assert_eq!(
        t.cost("anthropic", "claude-sonnet-4-5-20250929", &u),
        Some(0.11025)
    );
    // A model with no cached price charges cached tokens as input.
    assert_eq!(
        t.cost("openai", "gpt-4o-2024-05-13", &usage(1_000, 1_000, 0, 0)),
        Some(0.005)
    );
    // One token, and a thousand requests summed exactly.
    let one = usage(1, 0, 0, 0);
    assert_eq!(t.cost("openai", "gpt-4o-mini", &one), Some(0.000_000_15));
    let total: u128 = (0..1000)
        .map(|_| t.cost_pico_usd("openai", "gpt-4o-mini", &one).unwrap())
        .sum();
    assert_eq!(switchyard::telemetry::cost::pico_to_usd(total), 0.00015);
    // Nothing used costs nothing, for a known model.
    assert_eq!(t.cost("openai", "gpt-4o", &Usage::default()), Some(0.0));
}

#[test]
fn unknown_models_have_no_cost_never_zero() {
    let t = PriceTable::embedded().unwrap();
    let u = usage(1_000, 0, 0, 1_000);
    assert_eq!(t.cost("openai", "gpt-9-ultra", &u), None);
    assert_eq!(t.cost("openai-compatible", "llama-3.1-8b", &u), None);
    assert_eq!(t.cost("anthropic", "", &u), None);
    assert_eq!(t.cost("nope", "gpt-4o-typo", &Usage::default()), None);
    assert_eq!(PriceTable::new().cost("openai", "gpt-4o", &u), None);
}

#[test]
fn a_litellm_file_loads_and_prices_requests() {
    let t = litellm();
    // 20 entries: sample_spec, two image and one audio model carry no token prices.
    assert_eq!(t.len(), 16);
    assert_eq!(
        t.cost("openai", "gpt-4o", &usage(1_000_000, 0, 0, 500_000)),
        Some(7.5)
    );
    assert_eq!(
        t.cost("openai", "gpt-4o-2024-05-13", &usage(1_000_000, 0, 0, 0)),
        Some(5.0)
    );
    assert_eq!(
        t.cost("openai", "o4-mini", &usage(1_000_000, 1_000_000, 0, 0)),
        Some(0.275)
    );
    assert_eq!(
        t.cost(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            &usage(50_000, 30_000, 15_000, 2_000)
        ),
        Some(0.11025)
    );
    // Filed by provider: "gemini/gemini-2.5-flash" is Gemini's gemini-2.5-flash.
    assert_eq!(
        t.cost(
            "gemini",
            "models/gemini-2.5-flash",
            &usage(0, 0, 0, 1_000_000)
        ),
        Some(2.5)
    );
    assert_eq!(
        t.cost("azure-openai", "gpt-4o", &usage(1_000_000, 0, 0, 0)),
        Some(2.5)
    );
    // A kind without an entry takes the model's own vendor's price, not a reseller's.
    assert_eq!(
        t.cost(
            "openai-compatible",
            "claude-haiku-4-5-20251001",
            &usage(1_000_000, 0, 0, 0)
        ),
        Some(1.0)
    );
    assert_eq!(
        t.cost(
            "bedrock_converse",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            &usage(1_000_000, 0, 0, 0)
        ),
        Some(1.1)
    );
    assert_eq!(
        t.cost(
            "openai-compatible",
            "meta-llama/llama-3.1-8b-instruct",
            &usage(1_000_000, 0, 0, 1_000_000)
        ),
        Some(0.07)
    );
    for model in [
        "sample_spec",
        "dall-e-3",
        "whisper-1",
        "1024-x-1024/dall-e-2",
    ] {
        assert_eq!(t.cost("openai", model, &usage(1, 0, 0, 1)), None, "{model}");
    }
}

#[test]
fn a_config_layers_litellm_under_the_embedded_table_under_inline_prices() {
    let s = switchyard::config::load_str(
        &format!(
            "telemetry:\n  litellm_prices_file: {LITELLM_FIXTURE}\n  prices:\n    \"openai/gpt-4o-mini\": {{ input: 0.1, output: 0.2 }}\n"
        ),
        Some(Path::new(".")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prices = &s.telemetry.prices;
    let u = usage(1_000_000, 0, 0, 0);
    // Only in the LiteLLM file.
    assert_eq!(
        prices.cost("openai-compatible", "meta-llama/llama-3.1-8b-instruct", &u),
        Some(0.02)
    );
    // The embedded table is still there (and wins where both list a model; see
    // config::compile's tests for a file that disagrees).
    assert_eq!(prices.cost("openai", "gpt-4.1", &u), Some(2.0));
    // Inline prices win over everything.
    assert_eq!(prices.cost("openai", "gpt-4o-mini", &u), Some(0.1));
    assert_eq!(s.source_files, vec![Path::new(".").join(LITELLM_FIXTURE)]);
}

#[test]
fn editing_a_price_file_reloads_the_config() {
    use std::sync::Arc;
    use switchyard::config::watch::{ReloadOutcome, Reloader};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    let prices = dir.path().join("prices.yaml");
    // A provider and a key: a reload refuses a config that serves nothing.
    std::fs::write(
        &config,
        "providers:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\nvirtual_keys:\n  vk: { provider: p }\ntelemetry:\n  prices_file: prices.yaml\n",
    )
    .unwrap();
    std::fs::write(&prices, "openai:\n  gpt-4o: { input: 2.5, output: 10 }\n").unwrap();
    let first = switchyard::config::load_file(&config).unwrap();
    assert_eq!(first.source_files, vec![config.clone(), prices.clone()]);
    let live = Arc::new(arc_swap::ArcSwap::from_pointee(first));
    let metrics = Arc::new(switchyard::telemetry::Metrics::new().unwrap());
    let reloader = Reloader::new(config, live.clone(), metrics);
    let u = usage(1_000_000, 0, 0, 0);
    assert_eq!(reloader.reload_now(), ReloadOutcome::Unchanged);

    std::fs::write(&prices, "openai:\n  gpt-4o: { input: 3, output: 10 }\n").unwrap();
    assert!(matches!(
        reloader.reload_now(),
        ReloadOutcome::Reloaded { .. }
    ));
    assert_eq!(
        live.load().telemetry.prices.cost("openai", "gpt-4o", &u),
        Some(3.0)
    );

    // A broken price file is refused with its path; the last good prices keep serving.
    std::fs::write(&prices, "openai:\n  gpt-4o: { input: cheap, output: 10 }\n").unwrap();
    let ReloadOutcome::Failed(error) = reloader.reload_now() else {
        panic!("a bad price file must not load")
    };
    assert!(
        error.contains("telemetry.prices_file: prices.yaml: "),
        "{error}"
    );
    assert_eq!(
        live.load().telemetry.prices.cost("openai", "gpt-4o", &u),
        Some(3.0)
    );
}
