//! Property tests: the config loader and the SSE framing never panic, and SSE framing does not
//! depend on how the bytes were split into reads.

use proptest::prelude::*;
use switchyard::upstream::sse::{SseEvent, SseParser};

fn parse_in_chunks(input: &[u8], cuts: &[usize]) -> (Vec<SseEvent>, usize) {
    let mut parser = SseParser::new(1 << 20);
    let mut events = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());
    for end in points {
        if end < start {
            continue;
        }
        parser.push(&input[start..end]).unwrap();
        while let Some(e) = parser.next_event() {
            events.push(e);
        }
        start = end;
    }
    let pending = parser.pending_bytes();
    events.extend(parser.finish());
    (events, pending)
}

/// Byte strings made mostly of SSE syntax, so the interesting paths are hit.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: x".to_vec()),
        Just(b": comment".to_vec()),
        Just(b"id: 1".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"[DONE]".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
        "[a-z{}\":, ]{0,12}".prop_map(|s| s.into_bytes()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sse_never_panics_and_loses_nothing(input in sse_like(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let (events, _) = parse_in_chunks(&input, &cuts);
        let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.to_vec()).collect();
        // Every byte comes out again, except a leading BOM.
        let expected = input.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&input);
        prop_assert_eq!(raw, expected.to_vec());
    }

    #[test]
    fn sse_framing_does_not_depend_on_read_boundaries(input in sse_like(), cuts in proptest::collection::vec(any::<usize>(), 1..8)) {
        let (whole, _) = parse_in_chunks(&input, &[]);
        let (split, _) = parse_in_chunks(&input, &cuts);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn sse_arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = parse_in_chunks(&input, &cuts);
    }

    #[test]
    fn sse_memory_is_bounded(len in 17usize..2000) {
        let mut p = SseParser::new(16);
        let r = p.push(&vec![b'x'; len]);
        prop_assert!(r.is_err());
    }

    #[test]
    fn config_loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = switchyard::config::load_str(&text, None);
    }

    #[test]
    fn config_loader_never_panics_on_config_shaped_yaml(doc in config_like()) {
        let _ = switchyard::config::load_str(&doc, None);
    }
}

/// YAML documents built from the real field names and plausible and implausible values.
fn config_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("listen"),
        Just("admin_listen"),
        Just("threads"),
        Just("default_config"),
        Just("providers"),
        Just("virtual_keys"),
        Just("configs"),
        Just("kind"),
        Just("base_url"),
        Just("api_key"),
        Just("api_key_file"),
        Just("provider"),
        Just("models"),
        Just("strategy"),
        Just("mode"),
        Just("targets"),
        Just("virtual_key"),
        Just("weight"),
        Just("request_timeout"),
        Just("timeouts"),
        Just("ttft_ms"),
        Just("retry"),
        Just("attempts"),
        Just("on_status_codes"),
        Just("conditions"),
        Just("query"),
        Just("then"),
        Just("default"),
        Just("name"),
        Just("override_params"),
        Just("circuit_breaker"),
        Just("cache"),
        Just("limits"),
        Just("state"),
        Just("redis_url"),
        Just("forward"),
        Just("hedge"),
        Just("after_ms"),
        Just("input_guardrails"),
        Just("shutdown_grace"),
        Just("x"),
    ];
    let scalar = prop_oneof![
        Just("openai".to_string()),
        Just("openai-compatible".to_string()),
        Just("fallback".to_string()),
        Just("http://127.0.0.1:1/v1".to_string()),
        Just("vk-a".to_string()),
        Just("p".to_string()),
        Just("${UNSET_X}".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("250ms".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("~".to_string()),
        Just("1e999".to_string()),
        Just("\"$regex\"".to_string()),
        Just("&a [*a, *a]".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9.:/-]{0,10}",
    ];
    let leaf = (key.clone(), scalar).prop_map(|(k, v)| format!("{k}: {v}"));
    let line = leaf.prop_recursive(4, 64, 6, move |inner| {
        (
            key.clone(),
            proptest::collection::vec(inner, 1..4),
            any::<bool>(),
        )
            .prop_map(|(k, items, list)| {
                let body: Vec<String> = items
                    .iter()
                    .map(|i| {
                        let indented = i.replace('\n', "\n    ");
                        if list {
                            format!("  - {indented}")
                        } else {
                            format!("  {indented}")
                        }
                    })
                    .collect();
                format!("{k}:\n{}", body.join("\n"))
            })
    });
    proptest::collection::vec(line, 0..6).prop_map(|l| l.join("\n"))
}

proptest! {
    #[test]
    fn backoff_is_jittered_within_a_capped_exponential_ceiling(attempt in 0u32..64, sample in 0.0f64..1.0) {
        use switchyard::router::retry::{backoff, backoff_ceiling, BACKOFF_BASE, BACKOFF_CAP};
        let wait = backoff(attempt, sample);
        let ceiling = backoff_ceiling(attempt);
        prop_assert!(wait <= ceiling);
        prop_assert!(ceiling <= BACKOFF_CAP);
        prop_assert!(ceiling >= BACKOFF_BASE.min(BACKOFF_CAP));
        // Full jitter: the wait scales with the sample, so two clients rarely collide.
        prop_assert_eq!(wait, ceiling.mul_f64(sample));
    }
}

/// A config with one virtual key, for the inline-config property below.
fn inline_snapshot() -> switchyard::config::Snapshot {
    switchyard::config::load_str(
        "providers: { p: { kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k } }\nvirtual_keys: { vk: { provider: p } }\n",
        None,
    )
    .unwrap()
}

/// JSON-ish fragments an inline config is built from: valid pieces, wrong types, deep nesting.
fn inline_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"virtual_key\":\"vk\"".to_string()),
        Just("\"virtual_key\":\"nope\"".to_string()),
        Just("\"provider\":\"openai\"".to_string()),
        Just("\"custom_host\":\"http://127.0.0.1:1\"".to_string()),
        Just("\"strategy\":{\"mode\":\"fallback\"}".to_string()),
        Just("\"retry\":{\"attempts\":99}".to_string()),
        Just("\"weight\":-1".to_string()),
        Just("\"cache\":{\"mode\":\"semantic\"}".to_string()),
        (1usize..400).prop_map(|n| format!(
            "\"targets\":{}{}",
            "[{\"targets\":".repeat(n),
            "]}".repeat(n)
        )),
        "[ -~]{0,40}".prop_map(|s| s),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|p| format!("{{{}}}", p.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever an inline config says, resolution answers (a route or a 400/401) without a
    /// panic, and a repeat answers the same from the cache.
    #[test]
    fn inline_configs_never_panic_and_repeat_the_same_answer(text in inline_text()) {
        let snapshot = inline_snapshot();
        let mut headers = http::HeaderMap::new();
        let Ok(value) = http::HeaderValue::from_str(&text) else { return Ok(()) };
        headers.insert("x-portkey-config", value);
        let first = switchyard::ingress::resolve(&snapshot, &headers).map(|r| r.route.name.clone());
        let again = switchyard::ingress::resolve(&snapshot, &headers).map(|r| r.route.name.clone());
        prop_assert_eq!(format!("{first:?}"), format!("{again:?}"));
        if let Err(e) = first {
            let m = e.to_string();
            prop_assert!(!m.contains("nope"), "{}", m);
        }
    }
}
