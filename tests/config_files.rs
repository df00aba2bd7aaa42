//! The shipped configs load, and the production example exercises every field.

use switchyard::config::{load_file, StrategyMode, TargetKind};

#[test]
fn shipped_configs_load() {
    for f in ["conf/switchyard.yaml", "conf/demo.yaml"] {
        let s = load_file(std::path::Path::new(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!s.virtual_keys.is_empty(), "{f}");
    }
}

#[test]
fn the_production_example_loads_with_its_secrets_present() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("conf/examples/production.yaml")
        .unwrap()
        .replace(
            "/var/run/secrets/switchyard",
            &dir.path().display().to_string(),
        );
    for name in ["anthropic", "azure", "gemini"] {
        std::fs::write(dir.path().join(name), format!("sk-{name}-from-file\n")).unwrap();
    }
    std::env::set_var("OPENAI_API_KEY", "sk-openai-from-env");
    let s = switchyard::config::load_str(&text, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.providers.len(), 5);
    assert!(s.virtual_keys["vk-retired"].disabled);
    assert_eq!(s.virtual_keys["vk-checkout"].limits.rpm, Some(600));
    assert!(s.state.is_some() && s.forward.is_some());
    assert_eq!(s.source_files.len(), 3);
    let TargetKind::Group { strategy, targets } = &s.configs["by-plan"].root.kind else {
        panic!("by-plan is a group")
    };
    assert_eq!(strategy.mode, StrategyMode::Conditional);
    assert_eq!(strategy.default_target, Some(1));
    assert_eq!(
        targets[1]
            .settings
            .cache
            .as_ref()
            .unwrap()
            .similarity_threshold,
        Some(0.95)
    );
    let dump = format!("{s:?} {}", s.redacted);
    for secret in [
        "sk-openai-from-env",
        "sk-anthropic-from-file",
        "redis.llm-infra",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked");
    }
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
