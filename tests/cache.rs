//! The response cache end to end through the real binary: exact hits, misses, refreshes and
//! expiry (streams replayed as SSE), what is never stored, the semantic cache with the mock
//! provider's chosen embeddings, a Redis-shared cache across two gateway processes, and
//! malformed `cache` blocks refused by `switchyard check` with their YAML paths.

#[path = "support/gateway.rs"]
mod harness;
#[path = "support/redis.rs"]
mod redis_server;

use std::time::Duration;

use harness::{client, eventually, metric_value, mock, Gateway};
use redis_server::RedisServer;
use switchyard_mock::MockHandle;

fn config(mock: &MockHandle, extra: &str) -> String {
    format!(
        r#"
providers:
  mock:
    kind: openai-compatible
    base_url: http://{addr}/v1
    api_key: sk-provider
  mock-anthropic:
    kind: anthropic
    base_url: http://{addr}
    api_key: sk-provider
virtual_keys:
  vk-a: {{ provider: mock, config: cached }}
  vk-b: {{ provider: mock, config: cached }}
  vk-plain: {{ provider: mock }}
  vk-claude: {{ provider: mock-anthropic }}
configs:
  cached:
    cache: {{ mode: simple, max_age: 60 }}
    virtual_key: vk-plain
  translated:
    cache: {{ mode: simple }}
    virtual_key: vk-claude
    override_params: {{ model: claude-haiku-4-5 }}
  short:
    cache: {{ mode: simple, max_age: 1 }}
    virtual_key: vk-plain
  careful:
    cache: {{ mode: simple, skip_nondeterministic: true }}
    virtual_key: vk-plain
  semantic:
    cache:
      mode: semantic
      similarity_threshold: 0.9
      embedder: {{ virtual_key: vk-plain, model: text-embedding-3-small }}
    virtual_key: vk-plain
{extra}
"#,
        addr = mock.addr
    )
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn cache(&self) -> &str {
        let status = self.header("x-portkey-cache-status").unwrap_or("absent");
        assert_eq!(self.header("x-switchyard-cache-status"), Some(status));
        status
    }
}

struct Req<'a> {
    key: &'a str,
    config: Option<&'a str>,
    body: serde_json::Value,
    headers: Vec<(&'a str, &'a str)>,
    path: &'a str,
}

impl<'a> Req<'a> {
    fn new(key: &'a str, body: serde_json::Value) -> Req<'a> {
        Req {
            key,
            config: None,
            body,
            headers: vec![],
            path: "/v1/chat/completions",
        }
    }
    fn config(mut self, c: &'a str) -> Self {
        self.config = Some(c);
        self
    }
    fn header(mut self, k: &'a str, v: &'a str) -> Self {
        self.headers.push((k, v));
        self
    }
}

async fn send(gw: &Gateway, r: Req<'_>) -> Answer {
    let mut req = client()
        .post(gw.url(r.path))
        .bearer_auth(r.key)
        .json(&r.body);
    if let Some(c) = r.config {
        req = req.header("x-portkey-config", c);
    }
    for (k, v) in &r.headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

fn chat(content: &str, temperature: f64, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "temperature": temperature,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    })
}

fn upstream_chats(mock: &MockHandle) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions") || r.path.ends_with("/messages"))
        .count()
}

async fn metrics(gw: &Gateway) -> String {
    gw.metrics().await
}

#[tokio::test]
async fn exact_cache_hits_misses_refreshes_and_replays_streams() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;

    let first = send(&gw, Req::new("vk-a", chat("hello cache", 0.7, false))).await;
    assert_eq!((first.status, first.cache()), (200, "MISS"), "{first:?}");
    assert_eq!(upstream_chats(&mock), 1);
    // Identical: served from the cache, whatever the temperature (Portkey's semantics).
    let second = send(&gw, Req::new("vk-a", chat("hello cache", 0.7, false))).await;
    assert_eq!((second.status, second.cache()), (200, "HIT"), "{second:?}");
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.header("content-type"),
        Some("application/json"),
        "{second:?}"
    );
    assert_eq!(upstream_chats(&mock), 1, "a hit never reaches the provider");
    assert!(second.header("x-portkey-trace-id").is_some());
    // Key order does not matter.
    let reordered = serde_json::json!({
        "messages": [{"content": "hello cache", "role": "user"}],
        "stream": false, "temperature": 0.7, "model": "gpt-4o-mini",
    });
    assert_eq!(send(&gw, Req::new("vk-a", reordered)).await.cache(), "HIT");

    // Anything else that changes the request misses: a parameter, another virtual key.
    let other = send(&gw, Req::new("vk-a", chat("hello cache", 0.2, false))).await;
    assert_eq!(other.cache(), "MISS");
    let other_key = send(&gw, Req::new("vk-b", chat("hello cache", 0.7, false))).await;
    assert_eq!(other_key.cache(), "MISS");
    assert_eq!(upstream_chats(&mock), 3);

    // Force refresh: no lookup, the fresh answer is stored.
    let refreshed = send(
        &gw,
        Req::new("vk-a", chat("hello cache", 0.7, false))
            .header("x-portkey-cache-force-refresh", "true"),
    )
    .await;
    assert_eq!(refreshed.cache(), "REFRESH");
    assert_eq!(upstream_chats(&mock), 4);
    let after = send(&gw, Req::new("vk-a", chat("hello cache", 0.7, false))).await;
    assert_eq!(after.cache(), "HIT");
    assert_eq!(after.body, refreshed.body);
    assert_ne!(
        after.body, first.body,
        "the refreshed answer replaced the first"
    );

    // A stream is stored as the client received it and replayed as SSE.
    let s1 = send(&gw, Req::new("vk-a", chat("stream me", 0.0, true))).await;
    assert_eq!((s1.status, s1.cache()), (200, "MISS"));
    assert!(s1.body.contains("data: [DONE]"), "{s1:?}");
    let s2 = send(&gw, Req::new("vk-a", chat("stream me", 0.0, true))).await;
    assert_eq!((s2.status, s2.cache()), (200, "HIT"), "{s2:?}");
    assert_eq!(s2.header("content-type"), Some("text/event-stream"));
    assert_eq!(s2.body, s1.body);
    // Streams and whole bodies are separate entries.
    let whole = send(&gw, Req::new("vk-a", chat("stream me", 0.0, false))).await;
    assert_eq!(whole.cache(), "MISS");
    assert_eq!(upstream_chats(&mock), 6);

    // Failures are never stored: an upstream 500, a stream cut mid-way.
    let failed = send(
        &gw,
        Req::new("vk-a", chat("fragile", 0.0, false)).header("x-mock-fault", "status=500"),
    )
    .await;
    assert_eq!((failed.status, failed.cache()), (500, "MISS"));
    let cut = send(
        &gw,
        Req::new("vk-a", chat("fragile", 0.0, true)).header("x-mock-fault", "cut_after=4"),
    )
    .await;
    assert_eq!((cut.status, cut.cache()), (200, "MISS"));
    let healthy = send(&gw, Req::new("vk-a", chat("fragile", 0.0, false))).await;
    assert_eq!((healthy.status, healthy.cache()), (200, "MISS"));
    let healthy_stream = send(&gw, Req::new("vk-a", chat("fragile", 0.0, true))).await;
    assert_eq!(healthy_stream.cache(), "MISS");
    assert!(healthy_stream.body.contains("data: [DONE]"));
    assert_eq!(
        send(&gw, Req::new("vk-a", chat("fragile", 0.0, true)))
            .await
            .cache(),
        "HIT"
    );

    // A config without `cache` says nothing about caching.
    let plain = send(&gw, Req::new("vk-plain", chat("hello cache", 0.7, false))).await;
    assert_eq!(plain.header("x-portkey-cache-status"), None);

    // Metrics: results per config; hits are outcome `cache_hit` and never upstream attempts.
    let text = metrics(&gw).await;
    let cache = |result: &str| {
        metric_value(
            &text,
            "switchyard_cache_requests_total",
            &["config=\"cached\"", &format!("result=\"{result}\"")],
        )
    };
    assert_eq!(cache("hit"), 5.0, "{text}");
    assert_eq!(cache("miss"), 9.0, "{text}");
    assert_eq!(cache("refresh"), 1.0, "{text}");
    assert_eq!(
        metric_value(
            &text,
            "switchyard_requests_total",
            &["config=\"cached\"", "outcome=\"cache_hit\""]
        ),
        5.0
    );
    assert_eq!(
        metric_value(
            &text,
            "switchyard_upstream_attempts_total",
            &["config=\"cached\""]
        ),
        10.0,
        "one attempt per miss or refresh"
    );
    // Every hit has its access-log line (the writer batches: wait for it).
    let hits = || {
        gw.access_log()
            .into_iter()
            .filter(|l| l["outcome"] == "cache_hit")
            .collect::<Vec<_>>()
    };
    let logged = eventually(Duration::from_secs(5), || async { hits().len() == 5 }).await;
    assert!(logged.is_some(), "{:?}", hits());
    assert!(hits().iter().all(|l| l["cache"] == "HIT"
        && l["status"] == 200
        && l["attempts"].as_array().is_none_or(|a| a.is_empty())));
}

#[tokio::test]
async fn translated_answers_are_cached_in_the_clients_format() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    for stream in [false, true] {
        let a = send(
            &gw,
            Req::new("none", chat("bonjour", 0.0, stream)).config("translated"),
        )
        .await;
        let b = send(
            &gw,
            Req::new("none", chat("bonjour", 0.0, stream)).config("translated"),
        )
        .await;
        assert_eq!((a.cache(), b.cache()), ("MISS", "HIT"), "{a:?} {b:?}");
        assert_eq!(a.body, b.body);
        if stream {
            assert!(b.body.contains("chat.completion.chunk"), "{b:?}");
        } else {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&b.body).unwrap()["object"],
                "chat.completion"
            );
        }
    }
    assert_eq!(upstream_chats(&mock), 2);
}

#[tokio::test]
async fn entries_expire_after_max_age() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let req = || Req::new("none", chat("short-lived", 0.0, false)).config("short");
    assert_eq!(send(&gw, req()).await.cache(), "MISS");
    assert_eq!(send(&gw, req()).await.cache(), "HIT");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(send(&gw, req()).await.cache(), "MISS");
    assert_eq!(send(&gw, req()).await.cache(), "HIT");
    assert_eq!(upstream_chats(&mock), 2);
}

#[tokio::test]
async fn skip_nondeterministic_bypasses_sampled_requests() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let hot = || Req::new("none", chat("dice", 0.8, false)).config("careful");
    assert_eq!(send(&gw, hot()).await.cache(), "DISABLED");
    assert_eq!(send(&gw, hot()).await.cache(), "DISABLED");
    let mut many = chat("dice", 0.0, false);
    many["n"] = 2.into();
    let many = || Req::new("none", many.clone()).config("careful");
    assert_eq!(send(&gw, many()).await.cache(), "DISABLED");
    let cold = || Req::new("none", chat("dice", 0.0, false)).config("careful");
    assert_eq!(send(&gw, cold()).await.cache(), "MISS");
    assert_eq!(send(&gw, cold()).await.cache(), "HIT");
    assert_eq!(upstream_chats(&mock), 4);
    let text = metrics(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            "switchyard_cache_requests_total",
            &["config=\"careful\"", "result=\"bypass\""]
        ),
        3.0
    );
}

fn semantic_chat(system: Option<&str>, content: &str) -> serde_json::Value {
    let mut messages = vec![];
    if let Some(s) = system {
        messages.push(serde_json::json!({"role": "system", "content": s}));
    }
    messages.push(serde_json::json!({"role": "user", "content": content}));
    serde_json::json!({"model": "gpt-4o-mini", "temperature": 0, "messages": messages})
}

#[tokio::test]
async fn semantic_cache_serves_above_the_threshold_only() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let req = |system: Option<&str>, content: &str| {
        Req::new("none", semantic_chat(system, content)).config("semantic")
    };
    let first = send(&gw, req(None, "reset my password [[emb:1,0,0]]")).await;
    assert_eq!(first.cache(), "MISS");
    // cos = 0.95 ≥ 0.9: the stored answer, with its similarity.
    let close = send(
        &gw,
        req(
            None,
            "how do I reset the password? [[emb:0.95,0.3122499,0]]",
        ),
    )
    .await;
    assert_eq!(close.cache(), "SEMANTIC HIT", "{close:?}");
    assert_eq!(close.body, first.body);
    let similarity: f64 = close
        .header("x-switchyard-cache-similarity")
        .unwrap()
        .parse()
        .unwrap();
    assert!((similarity - 0.95).abs() < 1e-3, "{similarity}");
    // cos = 0.8 < 0.9: a miss, answered upstream.
    let far = send(&gw, req(None, "enable 2FA [[emb:0.8,0.6,0]]")).await;
    assert_eq!(far.cache(), "MISS");
    assert!(far.header("x-switchyard-cache-similarity").is_none());
    // Another system prompt is another partition, even for the same vector.
    let other = send(
        &gw,
        req(Some("answer in French"), "reset my password [[emb:1,0,0]]"),
    )
    .await;
    assert_eq!(other.cache(), "MISS");
    // The exact request is an exact hit, checked first.
    let exact = send(&gw, req(None, "reset my password [[emb:1,0,0]]")).await;
    assert_eq!(exact.cache(), "HIT");
    assert_eq!(upstream_chats(&mock), 3);
    // Every prompt but the exact hit was embedded through the embeddings target.
    let embeds: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/embeddings"))
        .collect();
    assert_eq!(embeds.len(), 4);
    let body = embeds[0].json().unwrap();
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["input"], "reset my password [[emb:1,0,0]]");
    assert_eq!(
        embeds[0].header("authorization"),
        Some("Bearer sk-provider")
    );
    let text = metrics(&gw).await;
    assert_eq!(
        metric_value(
            &text,
            "switchyard_cache_requests_total",
            &["config=\"semantic\"", "result=\"semantic_hit\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_redis_backend_shares_entries_across_gateways() {
    let redis = RedisServer::start();
    let mock = mock().await;
    let extra = format!(
        r#"  shared:
    cache: {{ mode: simple, backend: redis, max_age: 60 }}
    virtual_key: vk-plain
state: {{ redis_url: "{}", timeout_ms: 1000 }}"#,
        redis.url()
    );
    let text = config(&mock, &extra);
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;
    let req = |stream| Req::new("none", chat("shared answer", 0.0, stream)).config("shared");
    let first = send(&a, req(false)).await;
    assert_eq!(first.cache(), "MISS");
    let first_stream = send(&a, req(true)).await;
    assert_eq!(first_stream.cache(), "MISS");
    // Stores are sent off the request path: wait until Redis holds both entries.
    let stored = eventually(Duration::from_secs(5), || async {
        redis.command("DBSIZE").is_some_and(|r| r.trim() == ":2")
    })
    .await;
    assert!(stored.is_some(), "{:?}", redis.command("DBSIZE"));
    let ttl = redis.command("KEYS switchyard:cache:*").unwrap();
    assert!(ttl.contains("switchyard:cache:"), "{ttl}");
    let from_b = send(&b, req(false)).await;
    assert_eq!(from_b.cache(), "HIT", "{from_b:?}");
    assert_eq!(from_b.body, first.body);
    let stream_from_b = send(&b, req(true)).await;
    assert_eq!(stream_from_b.cache(), "HIT");
    assert_eq!(stream_from_b.body, first_stream.body);
    assert_eq!(
        upstream_chats(&mock),
        2,
        "gateway b never called the provider"
    );

    // Redis gone: lookups miss (counted as errors) and requests still succeed.
    drop(redis);
    let without = send(
        &b,
        Req::new("none", chat("after redis", 0.0, false)).config("shared"),
    )
    .await;
    assert_eq!((without.status, without.cache()), (200, "MISS"));
    let text = metrics(&b).await;
    assert!(
        metric_value(
            &text,
            "switchyard_cache_requests_total",
            &["config=\"shared\"", "result=\"error\""]
        ) >= 1.0,
        "{text}"
    );
}

/// A config routing on `metadata.tier`: `pro` to one model, `free`/`trial` (and the default)
/// to another, both through the provider `mock` with `api_key`; and `single`, one target that
/// overrides the model as the free tier does.
fn tiered(mock: &MockHandle, free_model: &str, api_key: &str) -> String {
    format!(
        r#"
providers:
  mock: {{ kind: openai-compatible, base_url: "http://{addr}/v1", api_key: {api_key} }}
virtual_keys:
  vk-app: {{ provider: mock, config: tiered }}
  vk-up: {{ provider: mock }}
  vk-single: {{ provider: mock, config: single }}
configs:
  single:
    cache: {{ mode: simple, max_age: 60 }}
    targets:
      - {{ virtual_key: vk-up, override_params: {{ model: {free_model} }} }}
  tiered:
    cache: {{ mode: simple, max_age: 60 }}
    strategy:
      mode: conditional
      conditions:
        - {{ query: {{ "metadata.tier": {{ $eq: pro }} }}, then: pro }}
        - {{ query: {{ "metadata.tier": {{ $in: [free, trial] }} }}, then: free }}
      default: free
    targets:
      - {{ name: pro, virtual_key: vk-up, override_params: {{ model: pro-model }} }}
      - {{ name: free, virtual_key: vk-up, override_params: {{ model: {free_model} }} }}
"#,
        addr = mock.addr
    )
}

/// One chat through `vk-app` with `x-portkey-metadata: metadata` (none if empty): the cache
/// status and the model that answered.
async fn tier_chat(gw: &Gateway, metadata: &str) -> (String, String, Answer) {
    key_chat(gw, "vk-app", metadata).await
}

async fn key_chat(gw: &Gateway, key: &str, metadata: &str) -> (String, String, Answer) {
    let mut r = Req::new(key, chat("which tier am I?", 0.0, false));
    if !metadata.is_empty() {
        r = r.header("x-portkey-metadata", metadata);
    }
    let a = send(gw, r).await;
    assert_eq!(a.status, 200, "{a:?}");
    let body: serde_json::Value = serde_json::from_str(&a.body).expect("json answer");
    let model = body["model"].as_str().unwrap_or_default().to_string();
    (a.cache().to_string(), model, a)
}

// Issue 17, finding 4: the key includes the leaves the request can reach.
#[tokio::test]
async fn conditional_tiers_never_share_cached_answers() {
    let mock = mock().await;
    let gw = Gateway::start(&tiered(&mock, "free-model", "sk-one")).await;
    let pro = r#"{"tier":"pro"}"#;
    let free = r#"{"tier":"free"}"#;

    let (c, m, pro_first) = tier_chat(&gw, pro).await;
    assert_eq!((c.as_str(), m.as_str()), ("MISS", "pro-model"));
    // The same request on the free tier is routed to another model: never the pro answer.
    let (c, m, free_first) = tier_chat(&gw, free).await;
    assert_eq!((c.as_str(), m.as_str()), ("MISS", "free-model"));
    // Same tier twice: a hit, each with its own answer.
    let (c, m, again) = tier_chat(&gw, pro).await;
    assert_eq!((c.as_str(), m.as_str()), ("HIT", "pro-model"));
    assert_eq!(again.body, pro_first.body);
    let (c, m, again) = tier_chat(&gw, free).await;
    assert_eq!((c.as_str(), m.as_str()), ("HIT", "free-model"));
    assert_eq!(again.body, free_first.body);
    // Other spellings that route to the same leaf share its entries.
    for same_route in [r#"{"tier":"trial"}"#, r#"{"user":"u1","tier":"free"}"#, ""] {
        let (c, m, a) = tier_chat(&gw, same_route).await;
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("HIT", "free-model"),
            "{same_route}"
        );
        assert_eq!(a.body, free_first.body);
    }
    let (c, m, _) = tier_chat(&gw, r#"{"user":"u2","tier":"pro"}"#).await;
    assert_eq!((c.as_str(), m.as_str()), ("HIT", "pro-model"));
    assert_eq!(upstream_chats(&mock), 2);
}

async fn reloaded(gw: &Gateway, n: f64) {
    let done = eventually(Duration::from_secs(10), || async {
        gw.metric("switchyard_config_reloads_total", &[r#"result="success""#])
            .await
            >= n
    })
    .await;
    assert!(done.is_some(), "reload {n} not picked up:\n{}", gw.log());
}

// Issue 17, finding 4: a reload that changes a leaf's model or credential never serves the
// entries the old leaf produced; entries of unchanged leaves stay.
#[tokio::test]
async fn a_reload_that_changes_a_leaf_misses_its_old_entries() {
    let mock = mock().await;
    let gw = Gateway::start(&tiered(&mock, "small-1", "sk-one")).await;
    let (pro, free) = (r#"{"tier":"pro"}"#, r#"{"tier":"free"}"#);
    assert_eq!(key_chat(&gw, "vk-single", "").await.0, "MISS");
    assert_eq!(key_chat(&gw, "vk-single", "").await.0, "HIT");
    assert_eq!(tier_chat(&gw, pro).await.0, "MISS");

    // The overridden model changes: answers of the old model are not served.
    gw.rewrite_config(&tiered(&mock, "small-2", "sk-one"));
    reloaded(&gw, 1.0).await;
    let (c, m, _) = key_chat(&gw, "vk-single", "").await;
    assert_eq!((c.as_str(), m.as_str()), ("MISS", "small-2"));
    let (c, m, _) = tier_chat(&gw, pro).await;
    assert_eq!(
        (c.as_str(), m.as_str()),
        ("HIT", "pro-model"),
        "unchanged leaf"
    );
    let (c, m, _) = tier_chat(&gw, free).await;
    assert_eq!((c.as_str(), m.as_str()), ("MISS", "small-2"));

    // The provider credential changes: every leaf using it misses.
    gw.rewrite_config(&tiered(&mock, "small-2", "sk-two"));
    reloaded(&gw, 2.0).await;
    assert_eq!(tier_chat(&gw, free).await.0, "MISS");
    assert_eq!(tier_chat(&gw, pro).await.0, "MISS");
    assert_eq!(key_chat(&gw, "vk-single", "").await.0, "MISS");
    assert_eq!(upstream_chats(&mock), 7);
}

#[test]
fn malformed_cache_blocks_are_refused_with_their_yaml_paths() {
    let base = r#"
providers:
  p: { kind: openai-compatible, base_url: "http://127.0.0.1:1/v1" }
virtual_keys:
  vk-a: { provider: p }
configs:
  chat:
    virtual_key: vk-a
"#;
    let cases = [
        (
            "    cache: { mode: simple, max_age: -5 }\n",
            "configs.chat.cache.max_age",
        ),
        (
            "    cache: { mode: fuzzy }\n",
            "configs.chat.cache.mode",
        ),
        (
            "    cache: { mode: simple, ttl: 5 }\n",
            "ttl",
        ),
        // A semantic cache without `embedder` gets a default one now (issue 19): the refusal
        // when there is nothing to choose from is in tests/guardrail_spelling.rs.
        (
            "    cache: { mode: semantic, similarity_threshold: 1.5, embedder: { virtual_key: vk-a, model: e } }\n",
            "configs.chat.cache.similarity_threshold: must be in (0, 1]",
        ),
        (
            "    cache: { mode: semantic, embedder: { virtual_key: vk-nope, model: e } }\n",
            "configs.chat.cache.embedder.virtual_key: unknown virtual key",
        ),
        (
            "    cache: { mode: semantic, embedder: { virtual_key: vk-a } }\n",
            "configs.chat.cache.embedder.model: required",
        ),
        (
            "    cache: { mode: simple, backend: redis }\n",
            "configs.chat.cache.backend: backend: redis needs state.redis_url",
        ),
        (
            "    cache: { mode: simple, similarity_threshold: 0.9 }\n",
            "configs.chat.cache.similarity_threshold: only for mode: semantic",
        ),
        (
            "    cache: { mode: simple, max_bytes: 10 }\n",
            "configs.chat.cache.max_bytes: must be at least 1024",
        ),
    ];
    for (block, expected) in cases {
        let (ok, _, err) = harness::check_config(&format!("{base}{block}"));
        assert!(!ok, "{block} was accepted");
        assert!(err.contains(expected), "{block}: {err}");
    }
    let nested = r#"
providers:
  p: { kind: openai-compatible, base_url: "http://127.0.0.1:1/v1" }
virtual_keys:
  vk-a: { provider: p }
configs:
  chat:
    strategy: { mode: fallback }
    targets:
      - { virtual_key: vk-a, cache: { mode: simple } }
"#;
    let (ok, _, err) = harness::check_config(nested);
    assert!(!ok);
    assert!(
        err.contains("configs.chat.targets[0].cache: cache is set on a config"),
        "{err}"
    );
    #[cfg(not(feature = "local-embeddings"))]
    {
        let (ok, _, err) = harness::check_config(&format!(
            "{base}    cache: {{ mode: semantic, embedder: {{ local: /models/minilm }} }}\n"
        ));
        assert!(!ok);
        assert!(
            err.contains(
                "configs.chat.cache.embedder.local: this build has no in-process embedder"
            ),
            "{err}"
        );
    }
    let (ok, _, err) = harness::check_config(&format!(
        "{base}    cache: {{ mode: semantic, similarity_threshold: 0.8, embedder: {{ virtual_key: vk-a, model: e }} }}\n"
    ));
    assert!(ok, "{err}");
}
