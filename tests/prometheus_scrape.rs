//! The shipped monitoring against the real thing. A real Prometheus (Debian's `prometheus`,
//! installed by scripts/test) on a loopback port scrapes a running Switchyard every second and
//! evaluates the recording rules and alerts of `k8s/base/monitoring/prometheusrule.yaml`, while
//! the test drives a fallback scenario with known numbers; the recorded P50/P95/P99, fallback and
//! error ratios read back through Prometheus' HTTP API must match that traffic. A second test
//! checks that every metric name the rules and the Grafana dashboard use is one the gateway
//! exports, so a rename cannot silently empty a dashboard.

#[path = "support/gateway.rs"]
mod harness;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{chat, free_port, mock, Gateway};
use switchyard_mock::{FaultSpec, MockHandle};

const RULES: &str = "k8s/base/monitoring/prometheusrule.yaml";
const DASHBOARD: &str = "k8s/base/monitoring/switchyard-dashboard.json";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The rule groups of the shipped PrometheusRule, as a Prometheus rule file (JSON is YAML).
fn rule_groups() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_file(RULES)).expect("read the PrometheusRule");
    let rule: serde_json::Value = serde_saphyr::from_str(&text).expect("PrometheusRule is YAML");
    assert_eq!(rule["kind"], "PrometheusRule");
    rule["spec"].clone()
}

/// `prometheus` from SWITCHYARD_PROMETHEUS or PATH. Missing is a failure under CI (scripts/test
/// installs it) and a skip elsewhere.
fn prometheus_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SWITCHYARD_PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed; scripts/test installs Debian's `prometheus` package"
        );
        eprintln!("SKIP: prometheus not installed (apt-get install prometheus)");
    }
    found
}

/// A Prometheus server in a temporary directory, killed when dropped.
struct Prometheus {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Prometheus {
    /// Scrapes `target` every second (with the `namespace` and `pod` labels a PodMonitor would
    /// add) and evaluates `rules` every second.
    async fn start(binary: &Path, target: SocketAddr, rules: &serde_json::Value) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("rules.yaml"), rules.to_string()).unwrap();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: switchyard
    static_configs:
      - targets: ["{target}"]
        labels: {{ namespace: test, pod: checkout-0 }}
"#
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut prom = Prometheus {
            child: Some(child),
            addr,
            dir,
            client: reqwest::Client::new(),
        };
        prom.wait_ready().await;
        prom
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            let ready = self
                .client
                .get(format!("http://{}/-/ready", self.addr))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query: each result's labels and value.
    async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let body: serde_json::Value = self
            .client
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", promql)])
            .send()
            .await
            .expect("query prometheus")
            .json()
            .await
            .expect("query answer is JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .expect("a vector result")
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap_or("NaN");
                (r["metric"].clone(), value.parse().unwrap_or(f64::NAN))
            })
            .collect()
    }

    /// The value of a query that selects one series (None while it selects none).
    async fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await;
        assert!(
            result.len() <= 1,
            "{promql} selects several series: {result:?}"
        );
        result.first().map(|(_, v)| *v)
    }

    /// Polls (every 250 ms, up to 30 s) until `promql` has a value that `ok` accepts; returns
    /// the last value seen either way, so the assertion that follows shows it.
    async fn settle(&self, promql: &str, ok: impl Fn(f64) -> bool) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.value(promql).await;
            if v.is_some_and(&ok) || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn fault(spec: &str) -> Option<FaultSpec> {
    Some(spec.parse().expect("fault spec"))
}

/// A fallback config over two mocks; the breaker is off so every request tries the primary.
fn fallback_config(primary: &MockHandle, secondary: &MockHandle) -> String {
    format!(
        r#"providers:
  p: {{ kind: openai, base_url: "http://{}/v1", api_key: sk-primary }}
  s: {{ kind: openai, base_url: "http://{}/v1", api_key: sk-secondary }}
virtual_keys:
  vk-app: {{ provider: p }}
  vk-secondary: {{ provider: s }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    circuit_breaker: {{ enabled: false }}
    targets:
      - {{ name: primary, virtual_key: vk-app }}
      - {{ name: secondary, virtual_key: vk-secondary }}
"#,
        primary.addr, secondary.addr
    )
}

/// One streamed chat request on config `chat`, read to the end; its status.
async fn stream_request(client: &reqwest::Client, gw: &Gateway) -> u16 {
    let resp = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .header("x-portkey-config", "chat")
        .json(&chat("gpt-4o-mini", true))
        .send()
        .await
        .expect("request through the gateway");
    let status = resp.status().as_u16();
    resp.bytes().await.expect("read the whole answer");
    status
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// The primary answers.
    Ok,
    /// The primary answers 503 (after 300 ms when slow); the secondary answers.
    Fallback,
    /// The primary answers 429, then the secondary 500: the app gets an error.
    Error,
}

async fn drive(
    client: &reqwest::Client,
    gw: &Gateway,
    primary: &MockHandle,
    secondary: &MockHandle,
    kind: Kind,
    slow: bool,
) {
    let (p, s, expected) = match kind {
        Kind::Ok => (None, None, 200),
        Kind::Fallback if slow => (fault("status=503,headers_delay_ms=300"), None, 200),
        Kind::Fallback => (fault("status=503"), None, 200),
        Kind::Error => (fault("status=429"), fault("status=500"), 500),
    };
    primary.set_fault(p);
    secondary.set_fault(s);
    assert_eq!(stream_request(client, gw).await, expected, "{kind:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_records_latency_fallback_and_error_rates_of_real_traffic() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    let started = Instant::now();
    let primary = mock().await;
    let secondary = mock().await;
    let gw = Gateway::start(&fallback_config(&primary, &secondary)).await;
    let client = reqwest::Client::new();

    // Warm-up before Prometheus starts: ten requests of each kind, so every series the rules
    // read exists before the measured traffic, with a value well above zero. rate() counts
    // increases from a series' first sample; and it extrapolates each series to the window's
    // edges, but never below zero, so a counter that starts near zero would be extrapolated less
    // than its neighbours and skew the ratios of this short test. Each kind touches its own
    // series: fallbacks_total{reason="status_5xx"} for Fallback, {reason="status_429"} for Error.
    for _ in 0..10 {
        for kind in [Kind::Ok, Kind::Fallback, Kind::Error] {
            drive(&client, &gw, &primary, &secondary, kind, false).await;
        }
    }
    let prom = Prometheus::start(&binary, gw.admin, &rule_groups()).await;
    let seen = prom
        .settle(r#"sum(switchyard_requests_total{config="chat"})"#, |v| {
            v == 30.0
        })
        .await;
    assert_eq!(seen, Some(30.0), "warm-up not scraped:\n{}", prom.log());
    // Two more scrapes of the settled warm-up values (bounded wait, not an assertion).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The measured traffic: 30 requests, 10 fall back (slow: 300 ms on the primary first),
    // 3 fail on both targets (fast), 17 are served by the primary at once.
    let mut plan = Vec::new();
    for i in 0..30 {
        plan.push(match i % 10 {
            0 | 3 | 6 => Kind::Fallback,
            9 => Kind::Error,
            _ => Kind::Ok,
        });
    }
    let (n, fallbacks, errors) = (
        plan.len() as f64,
        plan.iter().filter(|k| **k == Kind::Fallback).count() as f64,
        plan.iter().filter(|k| **k == Kind::Error).count() as f64,
    );
    assert_eq!((n, fallbacks, errors), (30.0, 9.0, 3.0));
    for kind in plan {
        drive(&client, &gw, &primary, &secondary, kind, true).await;
    }
    primary.set_fault(None);
    secondary.set_fault(None);

    // The gateway's own counters agree with the plan: every Fallback and every Error moved on
    // from the primary once; the last target failing is not a fallback.
    let text = gw.metrics().await;
    let total_fallbacks = harness::metric_value(&text, "switchyard_fallbacks_total", &[]);
    assert_eq!(total_fallbacks, 20.0 + fallbacks + errors, "{text}");
    let total_requests = harness::metric_value(&text, "switchyard_requests_total", &[]);
    assert_eq!(total_requests, 30.0 + n);

    // Prometheus has scraped the final counters ...
    let seen = prom
        .settle(r#"sum(switchyard_requests_total{config="chat"})"#, |v| {
            v == total_requests
        })
        .await;
    assert_eq!(seen, Some(total_requests), "{}", prom.log());
    // ... and its rules have been evaluated after that scrape (the recording group runs every
    // second; a recorded sample's timestamp is its evaluation time).
    let scraped_at = prom
        .value(r#"max(timestamp(switchyard_requests_total{config="chat"}))"#)
        .await
        .expect("scrape time");
    let evaluated = prom
        .settle(
            r#"timestamp(config:switchyard_requests:rate5m{config="chat"})"#,
            |t| t >= scraped_at,
        )
        .await;
    assert!(
        evaluated.is_some_and(|t| t >= scraped_at),
        "rules not evaluated after the last scrape ({evaluated:?} < {scraped_at})"
    );

    // ... and its rules, evaluated every second, record what the traffic was. The [5m] windows
    // hold the whole test, so a ratio of increases is the ratio of this traffic.
    let want_fallback = (fallbacks + errors) / n; // 12 of 30 = 0.4
    let fallback_ratio = prom
        .settle(
            r#"config:switchyard_fallback_ratio:rate5m{config="chat"}"#,
            |v| (v - want_fallback).abs() < 0.01,
        )
        .await;
    let fallback_ratio = fallback_ratio.expect("fallback ratio recorded");
    assert!(
        (fallback_ratio - want_fallback).abs() < 0.01,
        "recorded fallback ratio {fallback_ratio}, traffic {want_fallback}"
    );
    let want_errors = errors / n; // 0.1
    let error_ratio = prom
        .settle(
            r#"config:switchyard_request_errors:ratio_rate5m{config="chat"}"#,
            |v| (v - want_errors).abs() < 0.01,
        )
        .await
        .expect("error ratio recorded");
    assert!(
        (error_ratio - want_errors).abs() < 0.01,
        "recorded error ratio {error_ratio}, traffic {want_errors}"
    );
    // Per target: every Fallback and Error left the primary (12 of its 30 attempts); nothing
    // ever left the secondary, the last target.
    let primary_ratio = prom
        .settle(
            r#"target:switchyard_fallback_ratio:rate5m{target="primary"}"#,
            |v| (v - 0.4).abs() < 0.01,
        )
        .await
        .expect("primary fallback ratio recorded");
    assert!((primary_ratio - 0.4).abs() < 0.01, "{primary_ratio}");
    assert_eq!(
        prom.value(r#"target:switchyard_fallback_ratio:rate5m{target="secondary"}"#)
            .await,
        Some(0.0)
    );

    // Latency: 9 of 30 requests (30 %) took >= 300 ms, the rest far less. So P95 and P99 are
    // in the 0.25-0.5 s bucket, and the median below 0.25 s.
    let p =
        |q: &str| format!(r#"config:switchyard_request_duration_seconds:{q}_5m{{config="chat"}}"#);
    let p95 = prom
        .settle(&p("p95"), |v| v > 0.25 && v <= 0.5)
        .await
        .expect("P95 recorded");
    let p99 = prom.value(&p("p99")).await.expect("P99 recorded");
    let p50 = prom.value(&p("p50")).await.expect("P50 recorded");
    assert!(p95 > 0.25 && p95 <= 0.5, "P95 {p95}");
    assert!(
        p99 > 0.25 && p99 <= 0.5 && p99 >= p95,
        "P99 {p99}, P95 {p95}"
    );
    assert!(p50 < 0.25, "P50 {p50}");
    // Per attempt: the primary's slow failures put its P95 in the same bucket; the secondary,
    // always fast, stays below it.
    let t = |q: &str, target: &str| {
        format!(r#"target:switchyard_upstream_duration_seconds:{q}_5m{{target="{target}"}}"#)
    };
    let primary_p95 = prom.value(&t("p95", "primary")).await.expect("primary P95");
    assert!(primary_p95 > 0.25 && primary_p95 <= 0.5, "{primary_p95}");
    let secondary_p95 = prom
        .value(&t("p95", "secondary"))
        .await
        .expect("secondary P95");
    assert!(secondary_p95 < 0.25, "{secondary_p95}");
    // Streams: time to first token, recorded per target that streamed.
    let ttft = prom
        .value(r#"target:switchyard_time_to_first_token_seconds:p95_5m{target="secondary"}"#)
        .await
        .expect("TTFT P95 recorded");
    assert!(ttft > 0.0 && ttft < 0.25, "TTFT P95 {ttft}");

    // The alerts evaluate on these recordings: fallback and error rates are over their
    // thresholds, pending until their `for:` passes (10 and 5 minutes).
    let pending: BTreeSet<String> = prom
        .query(r#"ALERTS{alertstate="pending"}"#)
        .await
        .into_iter()
        .filter_map(|(m, _)| m["alertname"].as_str().map(str::to_string))
        .collect();
    assert!(
        pending.contains("SwitchyardHighFallbackRate")
            && pending.contains("SwitchyardHighErrorRate"),
        "pending alerts: {pending:?}"
    );
    assert!(!pending.contains("SwitchyardHighLatencyP95"), "{pending:?}");
    eprintln!(
        "real Prometheus test: fallback ratio {fallback_ratio:.4}, error ratio {error_ratio:.4}, primary {primary_ratio:.4}, \
         P50 {p50:.3}s P95 {p95:.3}s P99 {p99:.3}s, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Every `switchyard_*` / `gen_ai_*` name in a PromQL text, and every recorded name
/// (`level:metric:operation`).
fn names_in(promql: &str, out: &mut BTreeSet<String>) {
    let mut word = String::new();
    for c in promql.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        let is_label_value = c == '"';
        if !is_label_value
            && (word.starts_with("switchyard_")
                || word.starts_with("gen_ai_")
                || word.contains(":switchyard_"))
        {
            out.insert(word.clone());
        }
        word.clear();
    }
}

/// The metric families in a /metrics page (`# TYPE name kind`).
fn exported_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_read_is_exported() {
    // Names used by the rules (expressions) and the dashboard (panel and variable queries).
    let groups = rule_groups();
    let mut used = BTreeSet::new();
    let mut recorded = BTreeSet::new();
    for group in groups["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            names_in(rule["expr"].as_str().expect("expr"), &mut used);
            if let Some(r) = rule["record"].as_str() {
                recorded.insert(r.to_string());
            }
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_file(DASHBOARD)).unwrap())
            .expect("dashboard is JSON");
    let mut from_dashboard = BTreeSet::new();
    collect_exprs(&dashboard, &mut from_dashboard);
    assert!(from_dashboard.len() > 10, "{from_dashboard:?}");
    used.extend(from_dashboard);

    // Traffic that makes every family appear: a stream that falls back and is retried first,
    // a breaker that opens, tokens, a priced and an unpriced model.
    let bad = mock().await;
    let good = mock().await;
    bad.set_fault(fault("status=503"));
    let gw = Gateway::start(&format!(
        r#"providers:
  bad: {{ kind: openai, base_url: "http://{}/v1", api_key: sk-bad }}
  good: {{ kind: openai, base_url: "http://{}/v1", api_key: sk-good }}
virtual_keys:
  vk-app: {{ provider: bad }}
  vk-good: {{ provider: good }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    retry: {{ attempts: 1, on_status_codes: [503] }}
    circuit_breaker: {{ min_calls: 2, failure_rate: 0.5, open_s: 60 }}
    targets:
      - {{ name: primary, virtual_key: vk-app }}
      - {{ name: secondary, virtual_key: vk-good }}
"#,
        bad.addr, good.addr
    ))
    .await;
    let client = reqwest::Client::new();
    for model in ["gpt-4o-mini", "a-model-without-a-price", "gpt-4o-mini"] {
        let resp = client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-app")
            .header("x-portkey-config", "chat")
            .json(&chat(model, true))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    // The metrics of a request land just after its answer.
    let opened = harness::eventually(Duration::from_secs(5), || async {
        harness::metric_value(
            &gw.metrics().await,
            "switchyard_circuit_state",
            &[r#"target="primary""#],
        ) == 1.0
            && gw.metrics().await.contains("switchyard_cost_unknown_total")
    })
    .await;
    assert!(opened.is_some(), "{}", gw.metrics().await);
    let families = exported_families(&gw.metrics().await);

    let mut missing = Vec::new();
    for name in &used {
        if name.contains(':') {
            if !recorded.contains(name) {
                missing.push(format!("{name} (no recording rule)"));
            }
            continue;
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
            .unwrap_or(name);
        if !families.contains(family) {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "used by the rules or the dashboard but not exported: {missing:?}\nexported: {families:?}"
    );
    // The check itself sees the names (a parser that found nothing would pass vacuously).
    for expected in [
        "switchyard_request_duration_seconds_bucket",
        "switchyard_fallbacks_total",
        "switchyard_circuit_state",
        "switchyard_config_reloads_total",
        "switchyard_tokens_total",
        "switchyard_cost_usd_total",
        "config:switchyard_request_duration_seconds:p99_5m",
    ] {
        assert!(used.contains(expected), "{expected} not found in {used:?}");
    }
}

/// Every `expr` and templating `query` string in a Grafana dashboard.
fn collect_exprs(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map {
                match (k.as_str(), val) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        names_in(s, out)
                    }
                    _ => collect_exprs(val, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}
