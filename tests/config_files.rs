//! The shipped configs load, and the production example exercises every field.

use switchyard::config::{load_file, LogTarget, StrategyMode, TargetKind};
use switchyard::providers::Usage;

#[test]
fn shipped_configs_load() {
    for f in ["conf/switchyard.yaml", "conf/demo.yaml"] {
        let s = load_file(std::path::Path::new(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(switchyard::config::serving_errors(&s).is_empty(), "{f}");
    }
    // The embedded default: passthrough to the standard providers, no keys of its own.
    let s = load_file(std::path::Path::new("conf/switchyard.yaml")).unwrap();
    assert!(s.virtual_keys.is_empty() && s.passthrough.enabled);
    assert!(s.passthrough.route("openai").is_some() && s.passthrough.route("anthropic").is_some());
}

#[test]
fn the_production_example_loads_with_its_secrets_present() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    switchyard::server::forward::ca::init_dir(&ca_dir, false, 30).unwrap();
    let text = std::fs::read_to_string("conf/examples/production.yaml")
        .unwrap()
        .replace(
            "/var/run/secrets/switchyard-ca",
            &ca_dir.display().to_string(),
        )
        .replace(
            "/var/run/secrets/switchyard",
            &dir.path().display().to_string(),
        )
        .replace("/etc/switchyard/prices", &dir.path().display().to_string());
    for name in ["anthropic", "azure", "gemini"] {
        std::fs::write(dir.path().join(name), format!("sk-{name}-from-file\n")).unwrap();
    }
    std::fs::copy("conf/prices.yaml", dir.path().join("prices.yaml")).unwrap();
    std::fs::copy(
        "tests/fixtures/litellm_model_prices.json",
        dir.path().join("model_prices_and_context_window.json"),
    )
    .unwrap();
    std::env::set_var("OPENAI_API_KEY", "sk-openai-from-env");
    std::env::set_var("OTEL_TOKEN", "otel-token-from-env");
    let s = switchyard::config::load_str(&text, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.providers.len(), 5);
    assert!(s.virtual_keys["vk-retired"].disabled);
    assert_eq!(s.virtual_keys["vk-checkout"].limits.rpm, Some(600));
    assert!(s.state.is_some() && s.forward.is_some());
    // Three key files, two price files and the forward-proxy CA's two.
    assert_eq!(s.source_files.len(), 7);
    let t = &s.telemetry;
    assert_eq!(t.access_log.target, LogTarget::Stdout);
    assert_eq!(t.access_log.buffer_lines, 4096);
    assert!(!t.log_bodies);
    let otlp = t.otlp.as_ref().expect("otlp configured");
    assert_eq!(otlp.service_name, "switchyard");
    assert_eq!(otlp.timeout, std::time::Duration::from_secs(10));
    assert_eq!(otlp.headers[0].1.expose(), "Bearer otel-token-from-env");
    let million_in = Usage {
        input_tokens: 1_000_000,
        ..Default::default()
    };
    assert_eq!(t.prices.cost("openai", "gpt-4o", &million_in), Some(2.5));
    assert_eq!(
        t.prices.cost(
            "openai-compatible",
            "meta-llama/Llama-3.1-8B-Instruct",
            &million_in
        ),
        Some(0.0)
    );
    assert_eq!(
        t.prices
            .cost("anthropic", "claude-3-5-haiku-latest", &million_in),
        Some(0.8)
    );
    let TargetKind::Group { strategy, targets } = &s.configs["by-plan"].root.kind else {
        panic!("by-plan is a group")
    };
    assert_eq!(strategy.mode, StrategyMode::Conditional);
    assert_eq!(strategy.default_target, Some(1));
    assert!(targets[1].settings.cache.is_none(), "cache is per config");
    let cache = s.configs["by-plan"].root.settings.cache.as_ref().unwrap();
    assert_eq!(cache.similarity_threshold, 0.95);
    assert!(cache.backend_redis && cache.skip_nondeterministic);
    let dump = format!("{s:?} {}", s.redacted);
    for secret in [
        "sk-openai-from-env",
        "sk-anthropic-from-file",
        "redis.llm-infra",
        "otel-token-from-env",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked");
    }
    let ca_key = std::fs::read_to_string(ca_dir.join("ca.key")).unwrap();
    assert!(
        ca_key.lines().skip(1).take(1).all(|l| !dump.contains(l)),
        "CA key leaked"
    );
    // Without the environment variable, the error names it and its path.
    std::env::remove_var("OPENAI_API_KEY");
    let err = switchyard::config::load_str(&text, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("providers.openai.api_key: environment variable OPENAI_API_KEY is not set"),
        "{err}"
    );
}
