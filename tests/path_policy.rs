//! Policy cannot be bypassed by spelling a path differently (issue 17, finding 1): every
//! spelling of a route is either refused (400/404) or made canonical, matched, governed and
//! forwarded in its canonical form. Requests are written on raw TCP, because HTTP clients
//! normalise `.` segments themselves.

#[path = "support/gateway.rs"]
mod harness;

use std::time::Duration;

use harness::{chat, eventually, Gateway};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use switchyard_mock::MockHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keys: `vk-mini` (allowlist `gpt-4o-mini`), `vk-budget` (`usd_per_day: 0.0001` on a model
/// priced at 0.01 USD per token), `vk-any`; config `guarded` denies the word "password".
fn config(mock: &MockHandle) -> String {
    format!(
        r#"
providers:
  mock:
    kind: openai-compatible
    base_url: http://{addr}/v1
    api_key: sk-real-provider-key
virtual_keys:
  vk-mini:
    provider: mock
    models: [gpt-4o-mini]
  vk-budget:
    provider: mock
    limits: {{ usd_per_day: 0.0001 }}
  vk-any:
    provider: mock
configs:
  guarded:
    virtual_key: vk-any
    input_guardrails:
      - {{ check: contains, name: no_secrets, words: [password], operator: none, action: deny }}
telemetry:
  access_log: {{ path: "off" }}
  prices:
    budget-model: {{ input: 10000, output: 10000 }}
"#,
        addr = mock.addr
    )
}

async fn setup() -> (MockHandle, Gateway) {
    let mock = harness::mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    (mock, gw)
}

/// Spellings of `/v1/chat/completions` that are rewritten to it.
const REWRITTEN: [&str; 14] = [
    "/v1/chat/completions",
    "/v1/chat/completions/",
    "/v1//chat/completions",
    "//v1/chat/completions",
    "/v1/./chat/completions",
    "/v1/chat/completion%73",
    "/v1/chat/completions?",
    "/v1/x/../chat/completions",
    "/v1/x/%2e%2e/chat/completions",
    "/v1/%2E/chat/completions",
    "/v1/chat/co%6Dpletions",
    "/v1/chat/co%6dpletions",
    "/%76%31/chat/completions",
    "/v1/chat/./completions/.",
];

/// Spellings refused outright (400 or 404), whatever the key.
const REFUSED: [(&str, u16); 12] = [
    ("/v1/chat%2Fcompletions", 400),
    ("/v1/chat%2fcompletions", 400),
    ("/v1/chat%5Ccompletions", 400),
    ("/v1/chat/completions%00", 400),
    ("/v1/chat/completions%", 400),
    ("/v1/chat/completions%zz", 400),
    ("/../v1/chat/completions", 400),
    ("/v1/%2e%2e/%2e%2e/chat/completions", 400),
    ("/v1/../_mock/requests", 404),
    ("/v1/chat/completions/x", 404),
    ("/v1/files", 404),
    ("/v2/chat/completions", 404),
];

/// One response, read whole (`Connection: close`).
#[derive(Debug)]
struct Raw {
    status: u16,
    body: String,
}

impl Raw {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Decodes a chunked body (enough for the gateway's answers).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Sends one request with the target exactly as given. `None`: the connection closed
/// without an answer.
async fn send(gw: &Gateway, method: &str, target: &str, key: &str, body: &str) -> Option<Raw> {
    send_with(gw, method, target, key, "", body).await
}

/// [`send`] with extra header lines (`name: value\r\n` each).
async fn send_with(
    gw: &Gateway,
    method: &str,
    target: &str,
    key: &str,
    extra: &str,
    body: &str,
) -> Option<Raw> {
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.ok()?;
    // An absolute-form target (forward-proxy mode) carries its own authority as `Host`.
    let host = target
        .strip_prefix("http://")
        .and_then(|t| t.split('/').next())
        .map_or_else(|| gw.addr.to_string(), str::to_string);
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.ok()?;
    conn.write_all(body.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    // A reset after the answer (the gateway closes without reading what is left) still
    // leaves the answer in `buf`.
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some(Raw { status, body })
}

async fn post(gw: &Gateway, target: &str, key: &str, model: &str) -> Raw {
    let body = chat(model, false).to_string();
    send(gw, "POST", target, key, &body)
        .await
        .unwrap_or_else(|| panic!("no answer for POST {target}"))
}

#[tokio::test]
async fn every_spelling_of_a_route_meets_the_allowlist() {
    let (mock, gw) = setup().await;
    for target in REWRITTEN {
        let r = post(&gw, target, "vk-mini", "gpt-4o").await;
        assert_eq!(
            (r.status, r.code()),
            (403, "model_not_allowed".into()),
            "{target}: {r:?}"
        );
    }
    for (target, status) in REFUSED {
        let r = post(&gw, target, "vk-mini", "gpt-4o").await;
        assert_eq!(r.status, status, "{target}: {r:?}");
    }
    // The base-URL-as-proxy form (absolute target naming the gateway) is the same route.
    let absolute = format!("http://{}/v1/chat/completion%73", gw.addr);
    let r = post(&gw, &absolute, "vk-mini", "gpt-4o").await;
    assert_eq!(r.status, 403, "{absolute}: {r:?}");
    assert!(
        mock.requests().is_empty(),
        "forwarded: {:?}",
        mock.requests()
    );

    // An allowed model is served on every rewritten spelling, forwarded canonically.
    for target in REWRITTEN {
        let r = post(&gw, target, "vk-mini", "gpt-4o-mini").await;
        assert_eq!(r.status, 200, "{target}: {r:?}");
    }
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), REWRITTEN.len());
    for p in &paths {
        assert!(
            p == "/v1/chat/completions" || p == "/v1/chat/completions?",
            "forwarded as {p}"
        );
    }
}

#[tokio::test]
async fn every_spelling_meets_the_input_guardrails() {
    let (mock, gw) = setup().await;
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "my password is hunter2"}],
    })
    .to_string();
    for target in REWRITTEN {
        let extra = "x-portkey-config: guarded\r\n";
        let r = send_with(&gw, "POST", target, "vk-any", extra, &body)
            .await
            .expect("answer");
        assert_eq!(r.status, 446, "{target}: {r:?}");
    }
    assert!(
        mock.requests().is_empty(),
        "forwarded: {:?}",
        mock.requests()
    );
}

#[tokio::test]
async fn every_spelling_meets_the_usd_budget() {
    let (mock, gw) = setup().await;
    // Spend (or reserve past) the budget on the exact path, then wait for it to show.
    let _ = post(&gw, "/v1/chat/completions", "vk-budget", "budget-model").await;
    let exhausted = eventually(Duration::from_secs(5), || async {
        post(&gw, "/v1/chat/completions", "vk-budget", "budget-model")
            .await
            .status
            == 429
    })
    .await;
    assert!(exhausted.is_some(), "the budget never ran out");
    let before = mock.requests().len();
    for target in REWRITTEN {
        let r = post(&gw, target, "vk-budget", "budget-model").await;
        assert_eq!(r.status, 429, "{target}: {r:?}");
        assert_eq!(r.code(), "usd_per_day_exceeded", "{target}: {r:?}");
    }
    assert_eq!(mock.requests().len(), before, "a spelling was forwarded");
}

#[tokio::test]
async fn a_climb_to_the_mock_control_routes_never_reaches_the_provider() {
    let (mock, gw) = setup().await;
    for target in [
        "/v1/../_mock/requests",
        "/v1/%2e%2e/_mock/requests",
        "/v1/chat/../../_mock/requests",
        "/v1/..%2F_mock/requests",
    ] {
        for method in ["GET", "POST"] {
            let r = send(&gw, method, target, "vk-any", "{}")
                .await
                .expect("answer");
            assert!(matches!(r.status, 400 | 404), "{method} {target}: {r:?}");
            assert!(!r.body.contains("sk-real-provider-key"), "{r:?}");
        }
    }
    assert!(mock.requests().is_empty(), "{:?}", mock.requests());
    assert_eq!(
        mock.stats().total_connections,
        0,
        "the provider was contacted"
    );
}

#[tokio::test]
async fn echoed_client_values_are_bounded() {
    let (_mock, gw) = setup().await;
    // A 10 KB method on a known path, a long unknown path, and a path over the length limit.
    let method = "A".repeat(10_000);
    let long_path = format!("/v1/{}", "b".repeat(1_500));
    let too_long = format!("/v1/{}", "c".repeat(3_000));
    for (method, target) in [
        (method.as_str(), "/v1/chat/completions"),
        ("GET", long_path.as_str()),
        ("GET", too_long.as_str()),
    ] {
        let Some(r) = send(&gw, method, target, "vk-any", "").await else {
            panic!(
                "no answer to a {}-byte method on a {}-byte path",
                method.len(),
                target.len()
            );
        };
        assert!(matches!(r.status, 400 | 404 | 405 | 414 | 431), "{r:?}");
        assert!(
            r.body.len() < 1024,
            "{} bytes echoed: {}",
            r.body.len(),
            r.body
        );
        assert!(!r.body.contains(&"A".repeat(65)), "{}", r.body);
    }
    let r = send(&gw, "GET", &long_path, "vk-any", "")
        .await
        .expect("answer");
    assert_eq!((r.status, r.code()), (404, "unknown_route".into()));
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains('…'), "{message}");
}

#[tokio::test]
async fn intercepted_provider_requests_are_canonicalised_too() {
    let mock = harness::mock().await;
    let text = format!(
        r#"
providers:
  openai:
    kind: openai
    base_url: http://{addr}/v1
    api_key: sk-real-provider-key
virtual_keys:
  vk-mini:
    provider: openai
    models: [gpt-4o-mini]
forward:
  ca_cert: ca.pem
  ca_key: ca.key
  allow_hosts: [example.org]
"#,
        addr = mock.addr
    );
    let write_ca = |dir: &std::path::Path| {
        switchyard::server::forward::ca::init_dir(dir, false, 30).expect("ca init");
    };
    let gw = Gateway::start_with(&text, write_ca, &[]).await;
    // Plain-HTTP interception of the provider's host enters the same request path.
    for spelling in REWRITTEN {
        let target = format!("http://api.openai.com{spelling}");
        let r = post(&gw, &target, "vk-mini", "gpt-4o").await;
        assert_eq!(
            (r.status, r.code()),
            (403, "model_not_allowed".into()),
            "{target}: {r:?}"
        );
    }
    for (spelling, status) in REFUSED {
        let target = format!("http://api.openai.com{spelling}");
        let r = post(&gw, &target, "vk-mini", "gpt-4o").await;
        assert_eq!(r.status, status, "{target}: {r:?}");
    }
    assert!(
        mock.requests().is_empty(),
        "forwarded: {:?}",
        mock.requests()
    );
    let r = post(
        &gw,
        "http://api.openai.com/v1/chat/completion%73",
        "vk-mini",
        "gpt-4o-mini",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/chat/completions"]);
}

/// Path pieces for the property test: route names, dots, escapes (good and bad), slashes.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_string()),
        Just("%76%31".to_string()),
        Just("chat".to_string()),
        Just("%63hat".to_string()),
        Just("completions".to_string()),
        Just("completion%73".to_string()),
        Just("co%6Dpletions".to_string()),
        Just("messages".to_string()),
        Just("count_tokens".to_string()),
        Just("embeddings".to_string()),
        Just("responses".to_string()),
        Just("models".to_string()),
        Just("_mock".to_string()),
        Just("requests".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just(".%2e".to_string()),
        Just(String::new()),
        Just("%2F".to_string()),
        Just("%5c".to_string()),
        Just("%00".to_string()),
        Just("%".to_string()),
        Just("%zz".to_string()),
        Just("%3A".to_string()),
        Just("~x".to_string()),
        "[a-z]{1,6}",
    ]
}

fn request_path() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just("/v1/"),
        Just("//v1/"),
        Just("/./v1/"),
        Just("/v1//"),
        Just("/%76%31/"),
        Just("/"),
    ];
    let suffix = prop_oneof![Just(""), Just("/"), Just("?"), Just("?a=b"), Just("/.")];
    (prefix, proptest::collection::vec(segment(), 0..5), suffix)
        .prop_map(|(p, segs, s)| format!("{p}{}{s}", segs.join("/")))
}

/// The routes a JSON body with a model can reach the mock on (canonical, base path `/v1`).
const FORWARDED: [&str; 6] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages/count_tokens",
    "/v1/moderations",
];

async fn one_case(
    gw: &Gateway,
    mock: &MockHandle,
    target: &str,
    model: &str,
) -> Result<(), TestCaseError> {
    mock.clear();
    let body = chat(model, false).to_string();
    let answer = send(gw, "POST", target, "vk-mini", &body).await;
    let seen = mock.requests();
    let status = answer.as_ref().map_or(0, |r| r.status);
    prop_assert!(
        seen.len() <= 1,
        "{target}: {} upstream requests",
        seen.len()
    );
    match seen.first() {
        None => prop_assert!(
            (400..500).contains(&status),
            "{target} ({model}): not forwarded but answered {status}: {answer:?}"
        ),
        Some(req) => {
            let path = req.path.split('?').next().unwrap_or("");
            prop_assert!(
                FORWARDED.contains(&path),
                "{target} forwarded as {}",
                req.path
            );
            let sent = req.json().unwrap_or_default();
            prop_assert_eq!(sent["model"].as_str(), Some("gpt-4o-mini"), "{}", target);
            prop_assert_ne!(model, "gpt-4o", "{} forwarded a forbidden model", target);
        }
    }
    if model == "gpt-4o" {
        prop_assert!((400..500).contains(&status), "{target}: {status}");
    }
    Ok(())
}

/// For every generated path: either a 4xx, or the provider received a canonical, known route
/// with an allowed model (the allowlist ran).
#[test]
fn generated_paths_are_refused_or_forwarded_canonically_under_policy() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mock, gw) = rt.block_on(setup());
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 96,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let strategy = (
        request_path(),
        prop_oneof![Just("gpt-4o"), Just("gpt-4o-mini")],
    );
    let result = runner.run(&strategy, |(target, model)| {
        rt.block_on(one_case(&gw, &mock, &target, model))
    });
    drop(gw);
    if let Err(e) = result {
        panic!("{e}");
    }
}
