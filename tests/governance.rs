//! Governance end to end: per-virtual-key rpm, tpm, concurrency and USD caps through the real
//! binary, in one process (local state) and across two gateway processes sharing a real
//! `redis-server` — including Redis dying mid-test and coming back.
//!
//! Rate limits refill continuously (one minute of the limit per minute), so a bound on what a
//! burst may admit is the limit plus what refilled while the test ran: that slack is computed
//! from the measured elapsed time, never asserted as a timing.

#[path = "support/gateway.rs"]
mod harness;

/// The `virtual_key` label of a key's series: a hash of its name (the names are credentials).
fn vk(name: &str) -> String {
    format!(
        "virtual_key=\"{}\"",
        switchyard::config::key_label(name, false)
    )
}

#[path = "support/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use harness::{client, eventually, mock, Gateway};
use redis_server::RedisServer;
use switchyard_mock::MockHandle;

/// USD per token of `budget-model` (10 000 USD per million tokens).
const USD_PER_TOKEN: f64 = 0.01;

/// Keys: `vk-rpm` (rpm 20), `vk-budget` (usd_per_day 1), `vk-tokens` (tpm 1000), `vk-small`
/// (rpm 3), `vk-conc` (concurrent 3), `vk-free` (no limits); config `limited` routes to
/// `vk-small`, config `open` to `vk-free`. `state` is appended as given.
fn config(mock: &MockHandle, state: &str) -> String {
    format!(
        r#"
providers:
  mock:
    kind: openai-compatible
    base_url: http://{addr}/v1
    api_key: sk-provider
virtual_keys:
  vk-rpm:
    provider: mock
    limits: {{ rpm: 20 }}
  vk-budget:
    provider: mock
    limits: {{ usd_per_day: 1 }}
  vk-tokens:
    provider: mock
    limits: {{ tpm: 1000 }}
  vk-small:
    provider: mock
    limits: {{ rpm: 3 }}
  vk-conc:
    provider: mock
    limits: {{ concurrent: 3 }}
  vk-free:
    provider: mock
configs:
  limited:
    virtual_key: vk-small
  open:
    virtual_key: vk-free
telemetry:
  access_log: {{ path: "off" }}
  prices:
    budget-model: {{ input: 10000, output: 10000 }}
{state}
"#,
        addr = mock.addr
    )
}

fn shared_state(redis: &RedisServer, policy: &str) -> String {
    format!(
        "state: {{ redis_url: \"{}\", on_state_error: {policy}, timeout_ms: 1000 }}",
        redis.url()
    )
}

fn body(model: &str, max_tokens: u64, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

/// What one request got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: serde_json::Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("header {name} in {self:?}"))
    }
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

async fn send(gw: &Gateway, key: &str, body: &serde_json::Value, fault: Option<&str>) -> Answer {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    if let Some(f) = fault {
        req = req.header("x-mock-fault", f);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let json = if body["stream"] == true && status == 200 {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    };
    Answer {
        status,
        headers,
        json,
    }
}

/// Sends one request after another (for up to 10 s) until one gets `status`; the last answer.
async fn send_until(
    gw: &Gateway,
    key: &str,
    body: &serde_json::Value,
    status: u16,
) -> (bool, Answer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = send(gw, key, body, None).await;
        if a.status == status || Instant::now() > deadline {
            return (a.status == status, a);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `n` requests at once, alternating between the gateways.
async fn burst(gws: &[&Gateway], key: &str, body: &serde_json::Value, n: usize) -> Vec<Answer> {
    join_all((0..n).map(|i| send(gws[i % gws.len()], key, body, None))).await
}

/// The most a rate limit of `limit` per minute may admit in `elapsed` (burst plus refill).
fn rate_bound(limit: u64, elapsed: Duration) -> u64 {
    limit + (elapsed.as_secs_f64() * limit as f64 / 60.0).ceil() as u64
}

fn assert_rate_limited(a: &Answer, code: &str, limit: u64) {
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.json["error"]["type"], "rate_limit_exceeded", "{a:?}");
    assert_eq!(a.code(), code, "{a:?}");
    assert!(a.header_u64("retry-after") >= 1, "{a:?}");
    assert!(a.header("retry-after-ms").is_some(), "{a:?}");
    let (l, r) = if code == "tpm_limit_exceeded" {
        ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens")
    } else {
        (
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
        )
    };
    if code != "concurrency_limit_exceeded" {
        assert_eq!(a.header_u64(l), limit, "{a:?}");
        assert_eq!(a.header_u64(r), 0, "{a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_enforce_one_rpm_limit_under_bursts() {
    let redis = RedisServer::start();
    let mock = mock().await;
    let cfg = config(&mock, &shared_state(&redis, "deny"));
    let (a, b) = tokio::join!(Gateway::start(&cfg), Gateway::start(&cfg));
    let started = Instant::now();
    let req = body("gpt-4o-mini", 5, false);
    // Bursts of varied sizes, each split across both gateways: 60 requests against rpm 20.
    let mut ok = 0u64;
    for n in [7, 13, 5, 11, 9, 15] {
        for answer in burst(&[&a, &b], "vk-rpm", &req, n).await {
            match answer.status {
                200 => {
                    ok += 1;
                    assert_eq!(answer.header_u64("x-ratelimit-limit-requests"), 20);
                    assert!(answer.header_u64("x-ratelimit-remaining-requests") < 20);
                    assert!(answer.header("x-ratelimit-reset-requests").is_some());
                }
                _ => assert_rate_limited(&answer, "rpm_limit_exceeded", 20),
            }
        }
        let bound = rate_bound(20, started.elapsed());
        assert!(ok <= bound, "admitted {ok} > {bound} across both gateways");
    }
    assert!(ok >= 20, "only {ok} admitted: the limit was not used up");
    // Both processes refused some (they share one counter), and say so in their metrics.
    for gw in [&a, &b] {
        let refused = gw
            .metric(
                "switchyard_limit_rejections_total",
                &[&vk("vk-rpm"), "limit=\"rpm\""],
            )
            .await;
        assert!(refused >= 1.0, "{refused}");
    }
    // An unlimited key is never counted.
    for answer in burst(&[&a, &b], "vk-free", &req, 30).await {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.header("x-ratelimit-limit-requests").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_never_overspend_one_usd_budget() {
    let redis = RedisServer::start();
    let mock = mock().await;
    let cfg = config(&mock, &shared_state(&redis, "deny"));
    let (a, b) = tokio::join!(Gateway::start(&cfg), Gateway::start(&cfg));
    let req = body("budget-model", 5, false);
    let (mut ok, mut spent, mut refused_waves) = (0u64, 0.0f64, 0);
    for wave in 0..40 {
        let answers = burst(&[&a, &b], "vk-budget", &req, 8).await;
        let mut admitted = 0;
        for answer in &answers {
            if answer.status == 200 {
                admitted += 1;
                let tokens = answer.json["usage"]["total_tokens"].as_u64().unwrap();
                spent += tokens as f64 * USD_PER_TOKEN;
            } else {
                assert_eq!(answer.status, 429, "{answer:?}");
                assert_eq!(answer.json["error"]["type"], "budget_exceeded");
                assert_eq!(answer.code(), "usd_per_day_exceeded");
                let retry = answer.header_u64("retry-after");
                assert!((1..=86_400).contains(&retry), "until UTC midnight: {retry}");
            }
        }
        ok += admitted;
        assert!(
            spent <= 1.0 + 1e-9,
            "wave {wave}: ${spent} spent over a $1 budget"
        );
        if admitted == 0 {
            refused_waves += 1;
            if refused_waves == 3 {
                break;
            }
        } else {
            refused_waves = 0;
        }
        // Settlements land after the responses: give them a moment before the next wave.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(refused_waves, 3, "the budget never ran out");
    // 6 tokens ($0.06) each, reserving ~$0.29: up to 12 fit in $1.
    assert!(ok >= 10, "only {ok} requests (${spent}) admitted");
    let remaining = a
        .metric(
            "switchyard_limit_remaining",
            &[&vk("vk-budget"), "limit=\"usd_per_day\""],
        )
        .await;
    assert!(remaining < 0.35, "{remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_follows_on_state_error_and_recovers() {
    let mut redis = RedisServer::start();
    let mock = mock().await;
    let deny_cfg = config(&mock, &shared_state(&redis, "deny"));
    let allow_cfg = config(&mock, &shared_state(&redis, "allow"));
    let (deny, allow) = tokio::join!(Gateway::start(&deny_cfg), Gateway::start(&allow_cfg));
    let req = body("gpt-4o-mini", 5, false);
    for gw in [&deny, &allow] {
        assert_eq!(send(gw, "vk-rpm", &req, None).await.status, 200);
    }

    redis.stop();
    // deny: 503 state_unavailable (once the client notices the connection is gone).
    let (refused, last) = send_until(&deny, "vk-rpm", &req, 503).await;
    assert!(refused, "deny kept admitting: {last:?}");
    assert_eq!(
        last.json["error"]["type"], "service_unavailable",
        "{last:?}"
    );
    assert_eq!(last.code(), "state_unavailable");
    assert!(last.header("retry-after").is_some());
    // allow: served throughout, against this process's own counters — failing open never
    // means unlimited (30 requests at once on an rpm 20 key: 20 pass, the rest are refused).
    let started = Instant::now();
    let answers = burst(&[&allow], "vk-rpm", &req, 30).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as u64;
    assert!(
        ok >= 20 && ok <= rate_bound(20, started.elapsed()),
        "{ok} of 30 admitted on rpm 20 while Redis was down"
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_rate_limited(a, "rpm_limit_exceeded", 20);
    }
    // Unlimited keys never touch Redis.
    assert_eq!(send(&deny, "vk-free", &req, None).await.status, 200);
    assert!(
        deny.metric("switchyard_state_errors_total", &["op=\"admit\""])
            .await
            >= 1.0
    );
    assert!(
        deny.metric(
            "switchyard_limit_rejections_total",
            &[&vk("vk-rpm"), "limit=\"state_unavailable\""]
        )
        .await
            >= 1.0
    );
    assert!(
        deny.log().contains("unreachable"),
        "no log line: {}",
        deny.log()
    );

    redis.restart();
    // Both recover by themselves. Wait on what shows each one is back on Redis, never on time:
    // `deny` admits nothing unless Redis answered; for `allow`, whose fallback also answers 200,
    // the restarted (empty) Redis must hold the rpm bucket of a key only `allow` uses from now
    // on (settlement never writes that bucket, only an admission does).
    let back = eventually(Duration::from_secs(15), || async {
        send(&deny, "vk-free", &req, None).await.status == 200
            && send(&deny, "vk-conc", &req, None).await.status == 200
    })
    .await;
    assert!(back.is_some(), "deny did not recover: {}", deny.log());
    let back = eventually(Duration::from_secs(15), || async {
        send(&allow, "vk-rpm", &req, None).await;
        redis.command("EXISTS switchyard:gov:vk-rpm:rpm").as_deref() == Some(":1\r\n")
    })
    .await;
    assert!(back.is_some(), "allow did not recover: {}", allow.log());
    // Both enforce the shared limit again (vk-small: rpm 3, fresh in the restarted Redis).
    let started = Instant::now();
    let answers = burst(&[&deny, &allow], "vk-small", &req, 8).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as u64;
    assert!(ok >= 3 && ok <= rate_bound(3, started.elapsed()), "{ok}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_rate_limited(a, "rpm_limit_exceeded", 3);
    }
}

/// A stream whose real usage (~600 tokens) is far beyond its reservation (~40) is charged in
/// full, and requests after it see the charge — through `first` and then `second`.
async fn usage_beyond_the_reservation_is_charged(first: &Gateway, second: &Gateway) {
    let big = body("gpt-4o-mini", 10, true);
    let small = body("gpt-4o-mini", 10, false);
    let started = Instant::now();
    let a = send(first, "vk-tokens", &big, Some("chunks=600")).await;
    assert_eq!(a.status, 200, "{a:?}");
    // The reservation alone would leave ~960 of 1000.
    let reserved_remaining = a.header_u64("x-ratelimit-remaining-tokens");
    assert!(reserved_remaining > 900, "{reserved_remaining}");
    // Once settled, the real usage shows in the gauge ...
    let settled = eventually(Duration::from_secs(10), || async {
        first
            .metric(
                "switchyard_limit_remaining",
                &[&vk("vk-tokens"), "limit=\"tpm\""],
            )
            .await
            < 450.0
    })
    .await;
    assert!(settled.is_some(), "the stream's usage was not charged");
    // ... and in what the next request (through the other gateway) is told is left.
    let b = send(second, "vk-tokens", &small, None).await;
    assert_eq!(b.status, 200, "{b:?}");
    let refill = (started.elapsed().as_secs_f64() * 1000.0 / 60.0).ceil() as u64;
    let remaining = b.header_u64("x-ratelimit-remaining-tokens");
    assert!(
        remaining <= 1000 - 600 + refill,
        "{remaining} tokens left after a 600-token stream (refill {refill})"
    );
    // A second big stream fits its reservation but its usage puts the key in debt: later
    // requests are refused until it drains (far longer than the request took).
    let c = send(second, "vk-tokens", &big, Some("chunks=600")).await;
    assert_eq!(c.status, 200, "{c:?}");
    let (refused, last) = send_until(first, "vk-tokens", &small, 429).await;
    assert!(refused, "debt not seen: {last:?}");
    assert_rate_limited(&last, "tpm_limit_exceeded", 1000);
    assert!(last.header_u64("retry-after") >= 3, "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tpm_charges_real_usage_across_gateways_sharing_redis() {
    let redis = RedisServer::start();
    let mock = mock().await;
    let cfg = config(&mock, &shared_state(&redis, "deny"));
    let (a, b) = tokio::join!(Gateway::start(&cfg), Gateway::start(&cfg));
    usage_beyond_the_reservation_is_charged(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tpm_charges_real_usage_in_one_process() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    usage_beyond_the_reservation_is_charged(&gw, &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_limits_hold_under_concurrent_load() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let req = body("gpt-4o-mini", 5, false);

    // rpm: 60 at once against 20.
    let started = Instant::now();
    let answers = burst(&[&gw], "vk-rpm", &req, 60).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as u64;
    assert!(
        ok >= 20 && ok <= rate_bound(20, started.elapsed()),
        "{ok} admitted"
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_rate_limited(a, "rpm_limit_exceeded", 20);
    }

    // concurrent: 12 slow requests at once against 3 slots; the slots come back after.
    let slow = Some("headers_delay_ms=1500");
    let answers = join_all((0..12).map(|_| send(&gw, "vk-conc", &req, slow))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(ok, 3, "{answers:?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_rate_limited(a, "concurrency_limit_exceeded", 3);
    }
    let answers = join_all((0..3).map(|_| send(&gw, "vk-conc", &req, None))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    // Slots are given back when each request is settled, just after its answer is written.
    gw.expect_metric(
        "switchyard_limit_remaining",
        &[&vk("vk-conc"), "limit=\"concurrent\""],
        3.0,
    )
    .await;

    // A request naming only a config is governed by the limited key it routes to.
    let by_config = join_all((0..6).map(|_| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .header("x-switchyard-config", "limited")
            .json(&req)
            .send()
    }))
    .await;
    let statuses: Vec<u16> = by_config
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );

    // An Anthropic-format client gets Anthropic's error shape.
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "vk-small")
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({
            "model": "claude-3-5-haiku-latest", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("requests per minute"));
}

/// Spends `vk-budget` one request at a time until it is refused twice in a row (settlement
/// lands just after a response, so a refusal may be a reservation still in flight), checking
/// the total never passes `cap`. Returns the total spent, from `spent`.
async fn spend_until_refused(
    gw: &Gateway,
    req: &serde_json::Value,
    mut spent: f64,
    cap: f64,
) -> f64 {
    let mut refusals = 0;
    for _ in 0..100 {
        let a = send(gw, "vk-budget", req, None).await;
        if a.status == 200 {
            refusals = 0;
            spent += a.json["usage"]["total_tokens"].as_u64().unwrap() as f64 * USD_PER_TOKEN;
            assert!(spent <= cap + 1e-9, "${spent} spent over ${cap}");
            continue;
        }
        assert_eq!(a.status, 429, "{a:?}");
        assert_eq!(a.json["error"]["type"], "budget_exceeded", "{a:?}");
        assert!(a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("usd_per_day"));
        refusals += 1;
        if refusals == 2 {
            return spent;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the budget never ran out (${spent})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_budget_and_a_reload_that_keeps_counters() {
    let mock = mock().await;
    let cfg = config(&mock, "");
    let gw = Gateway::start(&cfg).await;
    let req = body("budget-model", 5, false);

    // The day's budget, spent sequentially: never above $1.
    let spent = spend_until_refused(&gw, &req, 0.0, 1.0).await;
    assert!(spent > 0.65, "${spent}");
    assert_eq!(send(&gw, "vk-rpm", &req, None).await.status, 200);
    // vk-small: rpm 3, used up.
    for _ in 0..3 {
        assert_eq!(send(&gw, "vk-small", &req, None).await.status, 200);
    }
    assert_eq!(send(&gw, "vk-small", &req, None).await.status, 429);

    // Reload: vk-small's rpm raised to 6, the budget to $1.30, vk-rpm removed.
    let reloaded = cfg
        .replace("limits: { rpm: 3 }", "limits: { rpm: 6 }")
        .replace("usd_per_day: 1 }", "usd_per_day: 1.3 }")
        .replace(
            "  vk-rpm:\n    provider: mock\n    limits: { rpm: 20 }\n",
            "",
        );
    gw.rewrite_config(&reloaded);
    gw.expect_metric(
        "switchyard_config_reloads_total",
        &["result=\"success\""],
        1.0,
    )
    .await;
    // The bucket is as full as before: still refused, now against the new limit.
    let a = send(&gw, "vk-small", &req, None).await;
    assert_rate_limited(&a, "rpm_limit_exceeded", 6);
    // The day's spend carries over: only the extra $0.30 is left.
    let total = spend_until_refused(&gw, &req, spent, 1.3).await;
    assert!(total > spent, "the raised budget admitted nothing");
    // The removed key has no series left.
    let text = gw.metrics().await;
    assert!(
        text.contains(&vk("vk-small"))
            && !text
                .lines()
                .any(|l| l.starts_with("switchyard_limit_remaining") && l.contains(&vk("vk-rpm"))),
        "stale series:\n{text}"
    );
}

/// Sends a chat request with exactly these headers (no credential unless given).
async fn send_with(gw: &Gateway, headers: &[(&str, &str)]) -> Answer {
    let mut req =
        client()
            .post(gw.url("/v1/chat/completions"))
            .json(&body("gpt-4o-mini", 5, false));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let json = resp.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlimited_key_naming_a_limited_config_is_limited() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    // vk-free has no limits; `limited` routes to vk-small (rpm 3): 6 at once, at most 3 pass.
    let started = Instant::now();
    let headers = [
        ("authorization", "Bearer vk-free"),
        ("x-portkey-config", "limited"),
    ];
    let answers = join_all((0..6).map(|_| send_with(&gw, &headers))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count() as u64;
    assert!(
        ok >= 3 && ok <= rate_bound(3, started.elapsed()),
        "{ok} admitted: {answers:?}"
    );
    for a in &answers {
        if a.status == 200 {
            // The headers are the strictest governing key's: vk-small's.
            assert_eq!(a.header_u64("x-ratelimit-limit-requests"), 3, "{a:?}");
        } else {
            assert_rate_limited(a, "rpm_limit_exceeded", 3);
            let message = a.json["error"]["message"].as_str().unwrap_or("");
            // By its label (the name is a credential): the hash unless `key_labels: name`.
            let label = switchyard::config::key_label("vk-small", false);
            assert!(message.contains(&label), "names the key hit: {a:?}");
        }
    }
    // A limited key of its own does not lift the config's limit either.
    let a = send_with(
        &gw,
        &[
            ("authorization", "Bearer vk-rpm"),
            ("x-portkey-config", "limited"),
        ],
    )
    .await;
    assert_rate_limited(&a, "rpm_limit_exceeded", 3);
    assert!(a.json["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains(&switchyard::config::key_label("vk-small", false)));
}

/// The 401 for a credential that names no virtual key: which header, never the value.
fn assert_unknown_credential(a: &Answer, carrier: &str, value: &str) {
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.json["error"]["type"], "authentication_error", "{a:?}");
    assert_eq!(a.code(), "invalid_api_key", "{a:?}");
    let message = a.json["error"]["message"].as_str().unwrap_or("");
    assert_eq!(
        message,
        format!(
            "the credential in the `{carrier}` header is not a configured virtual key: no such key exists (the value is not shown)"
        ),
        "{a:?}"
    );
    assert!(!a.json.to_string().contains(value), "value echoed: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credential_naming_no_virtual_key_is_refused_not_defaulted() {
    let mock = mock().await;
    let (a_cfg, b_cfg) = (config(&mock, "default_config: open"), config(&mock, ""));
    let (with_default, without) = tokio::join!(Gateway::start(&a_cfg), Gateway::start(&b_cfg));
    // vk-small used up (rpm 3): a typo of it must not escape through default_config.
    for _ in 0..3 {
        send(
            &with_default,
            "vk-small",
            &body("gpt-4o-mini", 5, false),
            None,
        )
        .await;
    }
    let refused = send(
        &with_default,
        "vk-small",
        &body("gpt-4o-mini", 5, false),
        None,
    )
    .await;
    assert_eq!(refused.status, 429, "{refused:?}");
    for gw in [&with_default, &without] {
        let a = send_with(gw, &[("authorization", "Bearer vk-smal")]).await;
        assert_unknown_credential(&a, "Authorization", "vk-smal");
        let a = send_with(gw, &[("x-api-key", "vk-nope")]).await;
        assert_unknown_credential(&a, "x-api-key", "vk-nope");
        let a = send_with(gw, &[("authorization", "Bearer sk-proj-abc123")]).await;
        assert_unknown_credential(&a, "Authorization", "sk-proj-abc123");
        let a = send_with(gw, &[("x-portkey-virtual-key", "vk-smal")]).await;
        assert_unknown_credential(&a, "x-portkey-virtual-key", "vk-smal");
        // The portkey-ai SDK's placeholder next to a config or virtual-key header is served.
        for extra in [
            ("x-portkey-config", "open"),
            ("x-portkey-virtual-key", "vk-free"),
        ] {
            let a = send_with(gw, &[("authorization", "Bearer OPENAI_API_KEY"), extra]).await;
            assert_eq!(a.status, 200, "{extra:?}: {a:?}");
        }
    }
    // default_config serves requests without a credential (and the SDK's placeholder) only.
    assert_eq!(send_with(&with_default, &[]).await.status, 200);
    let a = send_with(&with_default, &[("authorization", "Bearer OPENAI_API_KEY")]).await;
    assert_eq!(a.status, 200, "{a:?}");
    // Without it, a request with no credential at all is told to send one.
    let a = send_with(&without, &[]).await;
    assert_eq!(a.status, 401, "{a:?}");
    let message = a.json["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("no credential: send a virtual key"),
        "{a:?}"
    );
}

#[test]
fn the_limits_example_compiles_and_state_urls_are_checked() {
    let text = std::fs::read_to_string("conf/examples/limits.yaml")
        .unwrap()
        .replace("${OPENAI_API_KEY}", "sk-a")
        .replace("${ANTHROPIC_API_KEY}", "sk-b")
        .replace("${REDIS_URL}", "redis://:secret@redis.example:6379/2");
    let s = switchyard::config::load_str(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let key = &s.virtual_keys["vk-checkout"];
    assert_eq!(key.limits.rpm, Some(600));
    assert_eq!(key.limits.usd_per_month, Some(1000.0));
    let state = s.state.as_ref().unwrap();
    assert!(!state.on_state_error_allow);
    assert_eq!(state.timeout, Duration::from_millis(200));
    // A request naming only `chat` is governed by both limited keys it can use.
    let governed: Vec<&str> = s.configs["chat"]
        .governed_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(governed, ["vk-checkout", "vk-claude"]);
    // The password never reaches /config.
    assert!(!s.redacted.to_string().contains("secret"));

    for (url, message) in [
        ("rediss://cache:6380", "rediss:// (TLS) is not supported"),
        ("http://cache:6379", "must start with redis://"),
        ("redis://:pw@[bad", "not a valid Redis URL"),
    ] {
        let text = text.replace("redis://:secret@redis.example:6379/2", url);
        let err = switchyard::config::load_str(&text, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("state.redis_url: ") && err.contains(message),
            "{url}: {err}"
        );
        assert!(!err.contains("pw@"), "{err}");
    }
}
