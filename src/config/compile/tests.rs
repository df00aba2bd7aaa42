use std::time::Duration;

use super::*;

const BASE: &str = r#"
providers:
  openai: { kind: openai, api_key: sk-inline-secret }
  local: { kind: openai-compatible, base_url: "http://127.0.0.1:9000/v1/" }
virtual_keys:
  vk-a: { provider: openai, models: [gpt-4o-mini] }
  vk-b: { provider: local }
"#;

fn errors(text: &str) -> Vec<String> {
    match load_str(text, None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

#[test]
fn a_minimal_file_compiles_with_defaults() {
    let s = load_str(BASE, None).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(s.threads, 2);
    assert_eq!(s.hash.len(), 16);
    let local = &s.virtual_keys["vk-b"].provider;
    assert_eq!(local.base_url.path, "/v1");
    assert_eq!(local.base_url.port, 9000);
    let openai = &s.virtual_keys["vk-a"].provider;
    assert!(openai.base_url.tls);
    assert_eq!(openai.base_url.host, "api.openai.com");
    assert!(s.known_models.contains("gpt-4o-mini"));
    // Issue 17 finding 3: an empty file is an error everywhere, not "no config".
    for empty in ["", " \n", "# nothing\n", "---\n"] {
        let e = load_str(empty, None).unwrap_err().to_string();
        assert!(e.contains("the config file is empty"), "{empty:?}: {e}");
    }
}

#[test]
fn parser_messages_lose_source_text_and_values() {
    let broken = "providers:\n  p:\n    kind: openai\n    api_key: sk-live-SECRET\n   base_url: [\"http://x\"\n";
    let e = load_str(broken, None).unwrap_err().to_string();
    assert!(!e.contains("SECRET"), "{e}");
    assert!(e.starts_with("invalid YAML at line"), "{e}");
    let typed =
        "providers:\n  p: { kind: openai, api_key: sk-live-SECRET, headers: sk-live-SECRET2 }\n";
    let e = load_str(typed, None).unwrap_err().to_string();
    assert!(!e.contains("SECRET"), "{e}");
    assert!(e.contains("providers.p.headers"), "{e}");
    let variant = "providers:\n  p: { kind: sk-live-SECRET }\n";
    let e = load_str(variant, None).unwrap_err().to_string();
    assert!(
        !e.contains("SECRET") && e.contains("unknown variant"),
        "{e}"
    );
    assert_eq!(
        scrub("unknown field `falback`, expected one of `kind`, `Base`\n  | line"),
        "unknown field `falback`, expected one of `kind`, …"
    );
    let e = load_str("providers: {}\nvirtual_keys:\n  vk-secret: { provider: none }\nconfigs:\n  c: { virtual_key: vk-typo }\n", None).unwrap_err();
    let shown = e.shown(false);
    assert!(
        shown.contains(&format!(
            "virtual_keys.{}.provider",
            key_label("vk-secret", false)
        )),
        "{shown}"
    );
    assert!(shown.contains(&key_label("vk-typo", false)), "{shown}");
    assert!(
        !shown.contains("vk-secret") && !shown.contains("vk-typo"),
        "{shown}"
    );
    assert!(e.shown(true).contains("vk-secret"));
    assert_eq!(
        scrub("invalid type: string \"x y\", expected 'z"),
        "invalid type: string …, expected …"
    );
}

#[test]
fn key_names_become_labels_in_the_config_view_unless_asked() {
    let s = load_str(BASE, None).unwrap();
    let label = key_label("vk-a", false);
    assert!(label.starts_with("vk:") && label.len() == 11, "{label}");
    assert_eq!(s.virtual_keys["vk-a"].label, label);
    let view = s.redacted.to_string();
    assert!(!view.contains("vk-a") && view.contains(&label), "{view}");
    let named = load_str(&format!("{BASE}telemetry: {{ key_labels: name }}\n"), None).unwrap();
    assert_eq!(named.virtual_keys["vk-a"].label, "vk-a");
    assert!(named.redacted.to_string().contains("vk-a"));
}

#[test]
fn secrets_never_show_in_debug_or_the_redacted_view() {
    let s = load_str(BASE, None).unwrap();
    assert!(!format!("{s:?}").contains("sk-inline-secret"));
    assert!(!s.redacted.to_string().contains("sk-inline-secret"));
    assert_eq!(s.redacted["providers"]["openai"]["api_key"], REDACTED);
}

#[test]
fn references_are_checked_with_their_yaml_paths() {
    let e = errors(&format!(
            "{BASE}default_config: nope\nconfigs:\n  chat:\n    strategy: {{ mode: fallback }}\n    targets:\n      - virtual_key: vk-a\n      - virtual_key: vk-cluade\n  c2:\n    targets: []\n"
        ));
    assert!(
        has(
            &e,
            r#"configs.chat.targets[1].virtual_key: unknown virtual key "vk-cluade""#
        ),
        "{e:?}"
    );
    assert!(has(&e, "default_config: unknown config \"nope\""), "{e:?}");
    assert!(has(&e, "configs.c2.targets: must not be empty"), "{e:?}");
    let e = errors("virtual_keys:\n  vk: { provider: ghost }\n");
    assert!(
        has(&e, "virtual_keys.vk.provider: unknown provider \"ghost\""),
        "{e:?}"
    );
}

#[test]
fn unknown_fields_bad_durations_and_weights_are_errors() {
    let e = errors("providers:\n  p: { kind: openai, api_key: k, falback: 1 }\n");
    assert!(has(&e, "providers.p") && has(&e, "falback"), "{e:?}");
    for (timeout, what) in [
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        ("soon", "invalid duration"),
        ("1.5", "whole number"),
    ] {
        let e = errors(&format!(
            "{BASE}configs:\n  c:\n    virtual_key: vk-b\n    request_timeout: {timeout}\n"
        ));
        assert!(
            has(&e, "configs.c.request_timeout") && has(&e, what),
            "{timeout}: {e:?}"
        );
    }
    // Issue 19: `weight: 0` drains a target (Portkey); a group with no other is an error, and so
    // is a negative weight.
    let e = errors(&format!("{BASE}configs:\n  c:\n    strategy: {{ mode: loadbalance }}\n    targets:\n      - {{ virtual_key: vk-b, weight: 0 }}\n"));
    assert!(
        has(&e, "configs.c.targets: every target is drained (weight 0)"),
        "{e:?}"
    );
    let e = errors(&format!("{BASE}configs:\n  c:\n    strategy: {{ mode: loadbalance }}\n    targets:\n      - {{ virtual_key: vk-b, weight: -1 }}\n      - {{ virtual_key: vk-b }}\n"));
    assert!(
        has(&e, "configs.c.targets[0].weight: must be a number ≥ 0"),
        "{e:?}"
    );
    let drained = format!("{BASE}configs:\n  c:\n    strategy: {{ mode: loadbalance }}\n    retry: {{ attempts: 1, use_retry_after_headers: false }}\n    targets:\n      - {{ virtual_key: vk-b, weight: 0 }}\n      - {{ virtual_key: vk-a }}\n");
    let s = load_str(&drained, None).unwrap();
    let TargetKind::Group { targets, .. } = &s.configs["c"].root.kind else {
        panic!("a group")
    };
    assert_eq!(targets[0].weight, 0.0);
    // Portkey's plural spelling of the Retry-After switch is read too.
    assert!(!s.configs["c"].root.settings.retry.use_retry_after);
    let e = errors(&format!("{BASE}configs:\n  c:\n    strategy: {{ mode: fallback, on_status_codes: [503, 42] }}\n    targets: [{{ virtual_key: vk-b }}]\n"));
    assert!(has(&e, "configs.c.strategy.on_status_codes[1]"), "{e:?}");
    let e = errors("listen: nowhere\nthreads: 0\n");
    assert!(
        has(&e, "listen: invalid address") && has(&e, "threads"),
        "{e:?}"
    );
}

#[test]
fn azure_deployments_compile_and_belong_to_azure_only() {
    let s = load_str(
            "providers:\n  az:\n    kind: azure-openai\n    base_url: https://x.openai.azure.com\n    api_key: k\n    deployments: { gpt-4o: prod-4o }\n",
            None,
        )
        .unwrap();
    let az = &s.providers[0];
    assert_eq!(
        az.deployments.get("gpt-4o").map(String::as_str),
        Some("prod-4o")
    );
    let e = errors("providers:\n  p: { kind: openai, api_key: k, deployments: { a: b } }\n");
    assert!(
        has(&e, "providers.p.deployments: only kind azure-openai"),
        "{e:?}"
    );
    let e = errors(
            "providers:\n  az: { kind: azure-openai, base_url: https://x, api_key: k, deployments: { a: \"\" } }\n",
        );
    assert!(has(&e, "providers.az.deployments.a: is empty"), "{e:?}");
}

#[test]
fn unset_env_and_unreadable_key_files_are_errors() {
    let e =
        errors("providers:\n  p: { kind: openai, api_key: \"${SWITCHYARD_SURELY_UNSET_VAR}\" }\n");
    assert!(
        has(
            &e,
            "providers.p.api_key: environment variable SWITCHYARD_SURELY_UNSET_VAR is not set"
        ),
        "{e:?}"
    );
    let e = errors("providers:\n  p: { kind: openai, api_key_file: /nonexistent/key }\n");
    assert!(
        has(&e, "providers.p.api_key_file: cannot read /nonexistent/key"),
        "{e:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "sk-from-file\n").unwrap();
    let s = load_str(
        "providers:\n  p: { kind: openai, api_key_file: key }\n",
        Some(dir.path()),
    )
    .unwrap();
    assert_eq!(
        s.providers[0].api_key.as_ref().unwrap().expose(),
        "sk-from-file"
    );
    assert_eq!(s.source_files, vec![dir.path().join("key")]);
}

#[test]
fn settings_inherit_down_the_tree_and_paths_follow_portkey() {
    let s = load_str(
        &format!(
            r#"{BASE}configs:
  chat:
    strategy: {{ mode: fallback }}
    request_timeout: 8000
    override_params: {{ temperature: 0.2, model: a }}
    targets:
      - virtual_key: vk-a
        override_params: {{ model: gpt-4o-mini }}
        timeouts: {{ ttft_ms: 3s }}
      - strategy: {{ mode: loadbalance }}
        request_timeout: 500
        targets:
          - {{ virtual_key: vk-b, weight: 3, name: big }}
          - {{ virtual_key: vk-b }}
"#
        ),
        None,
    )
    .unwrap();
    let root = &s.configs["chat"].root;
    assert_eq!(root.path, "config");
    let TargetKind::Group { targets, strategy } = &root.kind else {
        panic!()
    };
    assert_eq!(strategy.mode, StrategyMode::Fallback);
    let first = &targets[0];
    assert_eq!(first.path, "config.targets[0]");
    assert_eq!(first.settings.request_timeout, Some(Duration::from_secs(8)));
    assert_eq!(first.settings.timeouts.ttft, Some(Duration::from_secs(3)));
    assert_eq!(first.settings.override_params["model"], "gpt-4o-mini");
    assert_eq!(first.settings.override_params["temperature"], 0.2);
    let TargetKind::Group { targets: inner, .. } = &targets[1].kind else {
        panic!()
    };
    assert_eq!(inner[0].path, "config.targets[1].targets[0]");
    assert_eq!(inner[0].label(), "big");
    assert_eq!(inner[1].label(), "config.targets[1].targets[1]");
    assert_eq!(inner[0].weight, 3.0);
    assert_eq!(
        inner[0].settings.request_timeout,
        Some(Duration::from_millis(500))
    );
    assert_eq!(inner[0].settings.override_params["model"], "a");
}

#[test]
fn conditional_routing_is_validated() {
    let e = errors(&format!(
        r#"{BASE}configs:
  c:
    strategy:
      mode: conditional
      conditions:
        - {{ query: {{ "metadata.plan": {{ $eq: paid }} }}, then: fast }}
        - {{ query: {{ "metadata.plan": {{ $like: x }} }}, then: ghost }}
        - {{ query: {{ "params.model": {{ $regex: "(" }} }}, then: fast }}
      default: slow
    targets:
      - {{ name: fast, virtual_key: vk-a }}
      - {{ name: fast, virtual_key: vk-b }}
"#
    ));
    assert!(
        has(
            &e,
            "conditions[1].query.metadata.plan.$like: unknown operator"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "conditions[1].then: no target named \"ghost\""),
        "{e:?}"
    );
    assert!(
        has(&e, "conditions[2].query.params.model.$regex: invalid regex"),
        "{e:?}"
    );
    assert!(
        has(&e, "strategy.default: no target named \"slow\""),
        "{e:?}"
    );
    assert!(has(&e, "targets[1].name: duplicate target name"), "{e:?}");
}

fn million_input() -> crate::providers::Usage {
    crate::providers::Usage {
        input_tokens: 1_000_000,
        ..Default::default()
    }
}

#[test]
fn telemetry_has_defaults_when_absent() {
    let s = load_str(BASE, None).unwrap();
    let t = &s.telemetry;
    assert_eq!(
        t.access_log,
        AccessLogSettings {
            target: LogTarget::Stdout,
            buffer_lines: 4096
        }
    );
    assert!(!t.log_bodies);
    assert!(t.otlp.is_none());
    // The embedded price table.
    assert_eq!(
        t.prices.cost("openai", "gpt-4o", &million_input()),
        Some(2.5)
    );
    assert!(s.source_files.is_empty());
    let s = load_str("telemetry: {}\n", None).unwrap();
    assert_eq!(s.telemetry.access_log.target, LogTarget::Stdout);
    let s = load_str("telemetry: { access_log: { path: \"off\" } }\n", None).unwrap();
    assert_eq!(s.telemetry.access_log.target, LogTarget::Off);
}

#[test]
fn the_telemetry_block_compiles_with_price_files_overrides_and_secret_headers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prices.yaml"),
        "openai:\n  gpt-4o: { input: 3, output: 12 }\n",
    )
    .unwrap();
    std::fs::write(
            dir.path().join("litellm.json"),
            r#"{"gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "litellm_provider": "openai"},
                "gemini/gemini-2.5-pro": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5, "litellm_provider": "gemini"}}"#,
        )
        .unwrap();
    std::env::set_var("SWITCHYARD_TEST_OTEL_TOKEN", "otel-s3cret");
    let text = r#"
telemetry:
  access_log: { path: logs/access.log, buffer_lines: 100 }
  log_bodies: true
  otlp:
    endpoint: http://collector:4318/v1/traces
    headers: { Authorization: "Bearer ${SWITCHYARD_TEST_OTEL_TOKEN}" }
    service_name: edge-gw
    timeout_ms: 2s
  prices_file: prices.yaml
  litellm_prices_file: litellm.json
  prices:
    "anthropic/claude-house": { input: 1, output: 2, cached_input: 0.1, cache_write: 1.25 }
    "meta-llama/Llama-3.1-8B": { input: 0.5, output: 0.5 }
"#;
    let s = load_str(text, Some(dir.path())).unwrap();
    let t = &s.telemetry;
    assert_eq!(
        t.access_log.target,
        LogTarget::File(dir.path().join("logs/access.log"))
    );
    assert_eq!(t.access_log.buffer_lines, 100);
    assert!(t.log_bodies);
    let otlp = t.otlp.as_ref().unwrap();
    assert_eq!(otlp.endpoint, "http://collector:4318/v1/traces");
    assert_eq!(otlp.service_name, "edge-gw");
    assert_eq!(otlp.timeout, Duration::from_secs(2));
    assert_eq!(otlp.headers.len(), 1);
    assert_eq!(otlp.headers[0].0, "authorization");
    assert_eq!(otlp.headers[0].1.expose(), "Bearer otel-s3cret");

    let u = million_input();
    // prices_file replaces the embedded table and wins over the LiteLLM file …
    assert_eq!(t.prices.cost("openai", "gpt-4o", &u), Some(3.0));
    assert_eq!(t.prices.cost("anthropic", "claude-sonnet-4-5", &u), None);
    // … which fills in what prices_file does not list.
    assert_eq!(
        t.prices.cost("gemini", "models/gemini-2.5-pro", &u),
        Some(1.25)
    );
    assert_eq!(t.prices.cost("anthropic", "claude-house", &u), Some(1.0));
    assert_eq!(
        t.prices
            .cost("openai-compatible", "meta-llama/Llama-3.1-8B", &u),
        Some(0.5)
    );
    assert_eq!(
        s.source_files,
        vec![
            dir.path().join("prices.yaml"),
            dir.path().join("litellm.json")
        ]
    );

    let dump = format!("{s:?} {}", s.redacted);
    assert!(!dump.contains("otel-s3cret"), "{dump}");
    assert_eq!(
        s.redacted["telemetry"]["otlp"]["headers"]["Authorization"],
        REDACTED
    );

    // Editing a price file changes the snapshot's hash.
    let before = s.hash.clone();
    std::fs::write(
        dir.path().join("prices.yaml"),
        "openai:\n  gpt-4o: { input: 4, output: 12 }\n",
    )
    .unwrap();
    let s = load_str(text, Some(dir.path())).unwrap();
    assert_ne!(s.hash, before);
    assert_eq!(s.telemetry.prices.cost("openai", "gpt-4o", &u), Some(4.0));
}

#[test]
fn telemetry_errors_name_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "openai:\n  gpt-4o: { input: -1, output: 10 }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"gpt-4o\": ").unwrap();
    let errors_in = |text: &str| match load_str(text, Some(dir.path())) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    };
    for (text, needle) in [
        (
            "telemetry: { access_log: { buffer_lines: 0 } }",
            "telemetry.access_log.buffer_lines: must be between 1 and",
        ),
        (
            "telemetry: { access_log: { path: \"\" } }",
            "telemetry.access_log.path: is empty",
        ),
        (
            "telemetry: { otlp: { endpoint: \"collector:4318\" } }",
            "telemetry.otlp.endpoint: \"collector:4318\" must start with http:// or https://",
        ),
        (
            "telemetry: { otlp: { endpoint: \"http://c:4318\", headers: { \"bad name\": x } } }",
            "telemetry.otlp.headers.bad name: not a valid header name or value",
        ),
        (
            "telemetry: { otlp: { endpoint: \"http://c:4318\", service_name: \" \" } }",
            "telemetry.otlp.service_name: is empty",
        ),
        (
            "telemetry: { otlp: {} }",
            "telemetry.otlp: missing field `endpoint`",
        ),
        (
            "telemetry: { prices_file: missing.yaml }",
            "telemetry.prices_file: cannot read",
        ),
        (
            "telemetry: { prices_file: bad.yaml }",
            "telemetry.prices_file: bad.yaml: openai.gpt-4o.input: must be a number",
        ),
        (
            "telemetry: { litellm_prices_file: bad.json }",
            "telemetry.litellm_prices_file: bad.json: invalid JSON",
        ),
        (
            "telemetry: { prices: { \"openai/gpt-4o\": { input: 1, output: -2 } } }",
            "telemetry.prices.openai/gpt-4o.output: must be a number",
        ),
        (
            "telemetry: { prices: { gpt-4o: { input: 1 } } }",
            "telemetry.prices.gpt-4o: missing field `output`",
        ),
        (
            "telemetry: { prices: { gpt-4o: { input: 1, output: 1, cached: 1 } } }",
            "telemetry.prices.gpt-4o.cached: unknown field `cached`",
        ),
        ("telemetry: { acess_log: {} }", "unknown field `acess_log`"),
        ("telemetry: { log_bodies: maybe }", "telemetry.log_bodies"),
    ] {
        let e = errors_in(text);
        assert!(has(&e, needle), "{text}: {e:?}");
    }
    // A header value is never echoed in an error.
    std::env::set_var("SWITCHYARD_TEST_BAD_HEADER", "tok\nen");
    let e = errors_in(
            "telemetry: { otlp: { endpoint: \"http://c:4318\", headers: { authorization: \"${SWITCHYARD_TEST_BAD_HEADER}\" } } }",
        );
    assert!(has(&e, "telemetry.otlp.headers.authorization"), "{e:?}");
    assert!(!e.iter().any(|e| e.contains("tok")), "{e:?}");
}

#[test]
fn base_urls_split_once() {
    let u = parse_base_url("https://[::1]:8443/openai/v1/").unwrap();
    assert_eq!(
        (u.tls, u.host.as_str(), u.port, u.path.as_str()),
        (true, "::1", 8443, "/openai/v1")
    );
    assert_eq!(u.host_header(), "[::1]:8443");
    assert!(parse_base_url("ftp://x").is_err());
    assert!(parse_base_url("http://user:pw@x/v1").is_err());
    assert!(parse_base_url("http://:80").is_err());
    assert!(parse_base_url("http://x:99999").is_err());
}

#[test]
fn a_request_timeout_below_100_ms_is_accepted_with_a_warning() {
    let s = load_str(
        &format!("{BASE}configs:\n  c:\n    virtual_key: vk-b\n    request_timeout: 30\n  d:\n    virtual_key: vk-b\n    request_timeout: 100\n"),
        None,
    )
    .unwrap();
    assert_eq!(
        s.configs["c"].root.settings.request_timeout,
        Some(Duration::from_millis(30))
    );
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].starts_with("configs.c.request_timeout: 30 ms is very short")
            && s.warnings[0].contains("did you mean 30 seconds, 30000?"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn every_schema_error_is_reported_in_one_run_in_plain_words() {
    let e = errors(
        "threads: many\nlisten: 1\nproviders:\n  p: { kind: openai, api_key: k, timeout: 3 }\n  q: { kind: openai, api_key: 5 }\nvirtual_keys:\n  a: { provider: p, models: 5 }\nlimits: { max_request_body_bytes: -1 }\n",
    );
    for needle in [
        "threads: found text …, expected a whole number ≥ 0",
        "listen: found the number `1`, expected a string",
        "providers.p.timeout: unknown field `timeout`",
        "providers.q.api_key: found the number `5`, expected a string",
        "virtual_keys.a.models: found the number `5`, expected a list",
        "limits.max_request_body_bytes: found the number …, expected a whole number ≥ 0",
    ] {
        assert!(has(&e, needle), "{needle}: {e:?}");
    }
    assert_eq!(e.len(), 6, "{e:?}");
    // No Rust type names are left.
    for word in ["u64", "usize", "u32", "i64", "f64", "invalid type"] {
        assert!(!e.iter().any(|m| m.contains(word)), "{word}: {e:?}");
    }
}

#[test]
fn connection_settings_take_yaml_spellings_and_refuse_out_of_range() {
    let with = |fields: &str| {
        format!(
            "providers:\n  p: {{ kind: openai-compatible, base_url: \"https://h.example/v1\"{fields} }}\nvirtual_keys:\n  vk: {{ provider: p }}\n"
        )
    };
    let settings = |fields: &str| {
        load_str(&with(fields), None).unwrap().virtual_keys["vk"]
            .provider
            .connections
    };
    let default = settings("");
    assert!(default.http2);
    assert_eq!(default.h2_max_streams, 100);
    assert_eq!(default.prewarm, 0);
    // YAML 1.1 reads an unquoted `off` as false.
    for off in [", http2: off", ", http2: \"off\"", ", http2: false"] {
        assert!(!settings(off).http2, "{off}");
    }
    for auto in [", http2: auto", ", http2: true"] {
        assert!(settings(auto).http2, "{auto}");
    }
    let tuned = settings(", http2_max_streams: 8, prewarm: 2");
    assert_eq!((tuned.h2_max_streams, tuned.prewarm), (8, 2));
    assert!(has(&errors(&with(", http2: maybe")), "providers.p.http2"));
    assert!(has(
        &errors(&with(", http2_max_streams: 0")),
        "providers.p.http2_max_streams"
    ));
    assert!(has(
        &errors(&with(", http2_max_streams: 1001")),
        "must be 1 to 1000"
    ));
    assert!(has(&errors(&with(", prewarm: 65")), "providers.p.prewarm"));
    assert!(has(&errors(&with(", prewarm: -1")), "providers.p.prewarm"));
}
