//! The request store on SQLite, end to end (issue 20): the real gateway writes every request,
//! its metadata, attempts, bodies and feedback to a file; the analytics API reads them back on
//! both ports; the file survives a restart; retention and the size bound prune; bad configs are
//! refused at load; no query parameter makes the API fail.

#[path = "support/gateway.rs"]
mod harness;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use harness::{chat, client, mock, Gateway};
use serde_json::{json, Value};

/// One virtual key on the mock; `$STORE` is the `store:` block.
fn config(mock: std::net::SocketAddr, store: &str) -> String {
    format!(
        r#"
listen: $LISTEN
admin_listen: $ADMIN
threads: 1
providers:
  mock: {{ kind: openai-compatible, base_url: "http://{mock}/v1", api_key: sk-test }}
virtual_keys:
  vk-app: {{ provider: mock }}
telemetry: {{ log_bodies: true }}
{store}
"#
    )
}

async fn send(gw: &Gateway, trace: &str, metadata: &Value, extra: &[(&str, &str)]) {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .header("authorization", "Bearer vk-app")
        .header("x-portkey-trace-id", trace)
        .header("x-portkey-metadata", metadata.to_string())
        .json(&chat("gpt-4o-mini", false));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn feedback(gw: &Gateway, body: Value) -> Value {
    let r = client()
        .post(gw.url("/v1/feedback"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `GET` on the admin port: status and JSON body.
async fn api(gw: &Gateway, path_and_query: &str) -> (u16, Value) {
    let r = client()
        .get(gw.admin_url(path_and_query))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls the request list until `check` holds (the store writes asynchronously).
async fn until(gw: &Gateway, query: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = api(gw, query).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{query}: never held; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn count(body: &Value) -> usize {
    body["data"].as_array().map_or(0, Vec::len)
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

#[tokio::test]
async fn a_session_is_stored_found_by_trace_and_metadata_and_survives_a_restart() {
    let mock = mock().await;
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("requests.db");
    let store = format!("store: {{ path: {:?} }}", db.to_str().unwrap());
    let template = config(mock.addr, &store);
    let mut gw = Gateway::start(&template).await;
    let meta =
        |turn: &str| json!({"user_id": "user_8821", "feature": "support-chat", "turn_id": turn});
    send(&gw, "sess-1", &meta("t1"), &[("x-portkey-span-id", "t1")]).await;
    let first = feedback(
        &gw,
        json!({"trace_id": "sess-1", "value": 1, "metadata": {"comment": "clear"}}),
    )
    .await;
    send(
        &gw,
        "sess-1",
        &meta("t2"),
        &[("x-portkey-disable-logging", "true")],
    )
    .await;
    feedback(&gw, json!({"trace_id": "sess-1", "value": -1})).await;
    send(
        &gw,
        "other",
        &json!({"user_id": "user_1", "feature": "docs"}),
        &[],
    )
    .await;

    let session = until(&gw, "/v1/analytics/requests?trace_id=sess-1", |b| {
        count(b) == 2
            && b["data"][0]["feedback"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
    })
    .await;
    let (turn2, turn1) = (&session["data"][0], &session["data"][1]);
    assert_eq!(
        turn1["metadata"]["turn_id"], "t1",
        "newest first: {session}"
    );
    assert_eq!(turn1["feedback"][0]["value"], 1);
    assert_eq!(turn1["feedback"][0]["metadata"]["comment"], "clear");
    assert_eq!(turn2["feedback"][0]["value"], -1);
    assert_eq!(turn1["client_span"]["span_id"], "t1");
    for turn in [turn1, turn2] {
        assert_eq!(turn["outcome"], "ok");
        assert_eq!(turn["status"], 200);
        assert_eq!(turn["model"], "gpt-4o-mini");
        assert_eq!(turn["provider"], "mock");
        assert!(turn["input_tokens"].as_i64().unwrap() > 0, "{turn}");
        assert!(turn["duration_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(
            turn["virtual_key"].as_str().unwrap().len(),
            11,
            "hashed label: {turn}"
        );
    }
    // Bodies only where logging was not turned off.
    let id1 = turn1["id"].as_str().unwrap();
    let (status, one) = api(&gw, &format!("/v1/analytics/requests/{id1}")).await;
    assert_eq!(status, 200);
    assert!(one["bodies"]["request"]
        .as_str()
        .unwrap()
        .contains("Say hello"));
    assert_eq!(one["attempts"][0]["result"], "ok");
    assert_eq!(one["attempts"][0]["status"], 200);
    let id2 = turn2["id"].as_str().unwrap();
    let (_, two) = api(&gw, &format!("/v1/analytics/requests/{id2}")).await;
    assert_eq!(
        two["bodies"],
        Value::Null,
        "x-portkey-disable-logging: {two}"
    );
    assert_eq!(two["attempts"].as_array().map(Vec::len), Some(1));

    // Metadata and feedback filters; the summary by feature.
    let by_user = until(
        &gw,
        "/v1/analytics/requests?metadata.user_id=user_8821",
        |b| count(b) == 2,
    )
    .await;
    assert!(by_user["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["trace_id"] == "sess-1"));
    let (_, negative) = api(&gw, "/v1/analytics/requests?feedback=negative").await;
    assert_eq!(count(&negative), 1);
    assert_eq!(negative["data"][0]["id"], id2);
    let (_, none) = api(&gw, "/v1/analytics/requests?feedback=none").await;
    assert_eq!(count(&none), 1, "the unrated request: {none}");
    let (status, summary) = api(&gw, "/v1/analytics/summary?group_by=metadata.feature").await;
    assert_eq!(status, 200, "{summary}");
    let groups = summary["groups"].as_array().unwrap();
    let chat = groups
        .iter()
        .find(|g| g["group"] == "support-chat")
        .unwrap();
    assert_eq!(
        (chat["requests"].as_i64(), chat["feedback_count"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(chat["feedback_mean"], 0.0);
    assert!(chat["p95_ms"].as_f64().unwrap() > 0.0);
    let docs = groups.iter().find(|g| g["group"] == "docs").unwrap();
    assert_eq!(
        (docs["requests"].as_i64(), docs["feedback_mean"].clone()),
        (Some(1), Value::Null)
    );

    // Pagination: one per page, newest first, every request exactly once.
    let mut seen = Vec::new();
    let mut query = "/v1/analytics/requests?limit=1".to_string();
    loop {
        let (status, page) = api(&gw, &query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("/v1/analytics/requests?limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 3, "pagination does not end: {seen:?}");
    }
    assert_eq!(seen.len(), 3);

    // An update of the first feedback lands in the store.
    let fid = first["feedback_ids"][0].as_str().unwrap();
    let r = client()
        .put(gw.url(&format!("/v1/feedback/{fid}")))
        .json(&json!({"value": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until(&gw, "/v1/analytics/requests?trace_id=sess-1", |b| {
        b["data"][1]["feedback"][0]["value"] == 5
            && !b["data"][1]["feedback"][0]["updated"].is_null()
    })
    .await;

    // SIGTERM flushes; a new process on the same file sees everything.
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).is_some());
    drop(gw);
    let gw = Gateway::start(&template).await;
    let (_, after) = api(&gw, "/v1/analytics/requests?trace_id=sess-1").await;
    assert_eq!(count(&after), 2, "{after}");
    assert_eq!(after["data"][1]["feedback"][0]["value"], 5);
    drop(gw);

    // The operator's export: one JSON line per request, oldest first, whole.
    let config_path = data.path().join("c.yaml");
    std::fs::write(
        &config_path,
        format!("{store}\npassthrough: {{ enabled: true }}\n"),
    )
    .unwrap();
    let out = bin()
        .args(["store", "export", "--since", "1h", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["metadata"]["turn_id"], "t1");
    assert!(lines[0]["attempts"].is_array());
    let out = bin()
        .args(["store", "migrate", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn retention_removes_old_requests() {
    let mock = mock().await;
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("r.db");
    let store = format!(
        "store: {{ path: {:?}, retention: 2s }}",
        db.to_str().unwrap()
    );
    let gw = Gateway::start(&config(mock.addr, &store)).await;
    send(&gw, "old", &json!({"k": "v"}), &[]).await;
    until(&gw, "/v1/analytics/requests?trace_id=old", |b| {
        count(b) == 1
    })
    .await;
    until(&gw, "/v1/analytics/requests?trace_id=old", |b| {
        count(b) == 0
    })
    .await;
    let (_, meta) = api(&gw, "/v1/analytics/requests?metadata.k=v").await;
    assert_eq!(count(&meta), 0);
}

#[tokio::test]
async fn the_api_on_the_proxy_port_needs_the_admin_token_and_can_be_turned_off() {
    let mock = mock().await;
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("p.db");
    let token = "a-long-admin-token-0123456789";
    let store = format!(
        "store: {{ path: {:?} }}\nadmin: {{ token_file: token }}",
        db.to_str().unwrap()
    );
    let gw = Gateway::start_with(
        &config(mock.addr, &store),
        |dir| std::fs::write(dir.join("token"), token).unwrap(),
        &[],
    )
    .await;
    let get = |headers: Vec<(&'static str, String)>| {
        let mut req = client().get(gw.url("/v1/analytics/requests"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let r = get(vec![]).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get(vec![("x-portkey-api-key", "wrong".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = get(vec![("x-portkey-api-key", token.into())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = get(vec![("authorization", format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The admin port's own gate.
    let r = client()
        .get(gw.admin_url("/v1/analytics/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Writes are refused: the API is read-only.
    let r = client()
        .post(gw.url("/v1/analytics/requests"))
        .header("x-portkey-api-key", token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(gw);

    let off = format!(
        "store: {{ path: {:?}, proxy_api: false }}",
        db.to_str().unwrap()
    );
    let gw = Gateway::start(&config(mock.addr, &off)).await;
    let r = client()
        .get(gw.url("/v1/analytics/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = api(&gw, "/v1/analytics/requests").await;
    assert_eq!(status, 200, "the admin port still answers");
    drop(gw);

    // No store: 503 store_disabled on both ports, in the OpenAI error shape.
    let gw = Gateway::start(&config(mock.addr, "")).await;
    let (status, body) = api(&gw, "/v1/analytics/summary?group_by=model").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("store_disabled"))
    );
    let r = client()
        .get(gw.url("/v1/analytics/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

/// Query strings built from a small deterministic generator: random parameter names, values
/// with every byte percent-encoded, huge and repeated values, bad times and cursors.
fn fuzz_queries(n: usize) -> Vec<String> {
    let names = [
        "trace_id",
        "metadata.user_id",
        "metadata.",
        "metadata.a.b",
        "feedback",
        "outcome",
        "model",
        "config",
        "virtual_key",
        "provider",
        "time_range",
        "from",
        "to",
        "limit",
        "cursor",
        "group_by",
        "x",
        "metadata.%00",
        "%FF",
        "",
    ];
    let values = [
        "",
        "1h",
        "30d",
        "999d",
        "-1",
        "0",
        "201",
        "50",
        "1e9",
        "9223372036854775807",
        "2026-12-05T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "positive",
        "any",
        "nonsense",
        "1.0123456789abcdef",
        "abc.def",
        "metadata.user_id",
        "model",
        "%00%01%FF",
        "'; DROP TABLE requests; --",
        "\u{202e}",
        "%E2%80%AE",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = move |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    (0..n)
        .map(|i| {
            let params = 1 + next(5);
            let mut q = Vec::new();
            for _ in 0..params {
                let value = if i % 17 == 0 {
                    "v".repeat(300)
                } else {
                    values[next(values.len())].to_string()
                };
                let value: String = value
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                q.push(format!("{}={value}", names[next(names.len())]));
            }
            q.join("&")
        })
        .collect()
}

#[tokio::test]
async fn no_query_parameter_makes_the_api_fail() {
    let mock = mock().await;
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("f.db");
    let gw = Gateway::start(&config(
        mock.addr,
        &format!("store: {{ path: {:?} }}", db.to_str().unwrap()),
    ))
    .await;
    send(&gw, "t", &json!({"user_id": "u"}), &[]).await;
    let routes = ["/v1/analytics/requests", "/v1/analytics/summary"];
    for (i, q) in fuzz_queries(240).iter().enumerate() {
        let path = format!("{}?{q}", routes[i % 2]);
        let r = client().get(gw.admin_url(&path)).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            200 => assert!(body["object"].is_string(), "{path}: {body}"),
            400 => assert!(
                body["error"]["param"].is_string() && body["error"]["code"] == "invalid_parameter",
                "{path}: {body}"
            ),
            other => panic!("{path}: {other} {body}"),
        }
    }
    for path in [
        "/v1/analytics/requests/zzzz",
        "/v1/analytics/requests/0123456789abcdef",
        "/v1/analytics/requests/..%2F..%2Fetc",
        "/v1/analytics/other",
        "/v1/analytics",
    ] {
        let r = client().get(gw.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[test]
fn an_unusable_store_path_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "store: { path: /nonexistent-sy/dir/r.db }",
            "store.path: the directory /nonexistent-sy/dir does not exist",
        ),
        // Read-only for root too (a pseudo file system).
        (
            "store: { path: /proc/r.db }",
            "store.path: the directory /proc is not writable",
        ),
        ("store: { path: \"\" }", "store.path: is empty"),
        ("store: { path: /tmp }", "is a directory"),
        (
            "store: { path: a.db, postgres_url: \"postgres://u:p@h/d\" }",
            "store: set exactly one of",
        ),
        ("store: {}", "store: set exactly one of"),
        (
            "store: { postgres_url: \"mysql://u:hunter2@h/db\" }",
            "store.postgres_url: must be a postgres://",
        ),
        (
            "store: { postgres_url: \"postgres://u:hunter2@h:notaport/db\" }",
            "store.postgres_url: not a valid PostgreSQL URL",
        ),
        (
            "store: { path: a.db, max_bytes: 1000 }",
            "store.max_bytes: must be at least",
        ),
        ("store: { path: a.db, retention: 1y }", "store.retention"),
        ("store: { path: a.db, queue: 0 }", "store.queue"),
        ("store: { path: a.db, nonsense: 1 }", "nonsense"),
    ];
    for (store, expected) in cases {
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            format!("passthrough: {{ enabled: true }}\n{store}\n"),
        )
        .unwrap();
        let out = bin()
            .args(["check", "--strict"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{store}: accepted");
        assert!(err.contains(expected), "{store}: {err}");
        assert!(
            !err.contains("hunter2"),
            "{store}: the password is echoed: {err}"
        );
    }
    // The gateway itself refuses to start on a missing directory (not only `check --strict`).
    let path = dir.path().join("run.yaml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\npassthrough: { enabled: true }\nstore: { path: /nonexistent-sy/r.db }\n",
    )
    .unwrap();
    let out = bin().args(["run", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// A record as the pipeline builds it, with a body of `body_bytes`.
fn record(i: u64, body_bytes: usize) -> Arc<switchyard::telemetry::RequestRecord> {
    use switchyard::telemetry::{Bodies, RequestRecord, TraceContext};
    let mut metadata = serde_json::Map::new();
    metadata.insert("user_id".into(), json!(format!("u{}", i % 100)));
    Arc::new(RequestRecord {
        trace: TraceContext {
            trace_id: [7; 16],
            span_id: i.to_be_bytes(),
            parent_span_id: None,
            sampled: true,
            display_id: format!("trace-{i}"),
        },
        start: SystemTime::now(),
        duration: Duration::from_millis(3),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        operation: "chat",
        config: "c".into(),
        virtual_key: None,
        request_model: Some("m".into()),
        response_model: None,
        stream: false,
        status: 200,
        outcome: "ok",
        attempts: Vec::new(),
        usage: None,
        cost_usd: None,
        cache: "MISS",
        metadata: Some(metadata),
        bodies: Some(Bodies {
            request: "x".repeat(body_bytes),
            response: String::new(),
        }),
        client_span: None,
    })
}

fn file_bytes(db: &Path) -> u64 {
    let wal = db.with_extension("db-wal");
    [db.to_path_buf(), wal]
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

fn settings(db: &Path, max_bytes: u64, queue: usize) -> switchyard::config::StoreSettings {
    switchyard::config::StoreSettings {
        backend: switchyard::config::StoreBackend::Sqlite(db.to_path_buf()),
        retention: Duration::from_secs(3600),
        max_bytes,
        queue,
        proxy_api: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_stays_under_max_bytes_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let max = 8u64 << 20;
    let metrics = switchyard::telemetry::Metrics::new().unwrap();
    let store =
        switchyard::store::Store::open(&settings(&db, max, 10_000), metrics.store.clone()).unwrap();
    // 40 MB of bodies, five times the bound, written in waves the writer keeps up with.
    let mut high = 0;
    for wave in 0..40u64 {
        for i in 0..250 {
            store.record(record(wave * 250 + i, 4000));
        }
        assert!(
            store.flush(Duration::from_secs(30)).await,
            "wave {wave} not written"
        );
        high = high.max(file_bytes(&db));
    }
    assert_eq!(
        metrics
            .store
            .dropped_total
            .with(&switchyard::telemetry::metrics::StoreDrop::QueueFull)
            .get(),
        0
    );
    // The next prune runs within a second of the last batch.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store.record(record(999_999, 10));
    assert!(store.flush(Duration::from_secs(30)).await);
    high = high.max(file_bytes(&db));
    assert!(
        high <= max + max / 10,
        "the file reached {high} bytes, bound {max}"
    );
    let newest =
        switchyard::store::api::answer(Some(&store), "/v1/analytics/requests", Some("limit=1"))
            .await
            .unwrap();
    assert_eq!(newest["data"][0]["trace_id"], "trace-999999");
    let oldest = switchyard::store::api::answer(
        Some(&store),
        "/v1/analytics/requests",
        Some("trace_id=trace-0"),
    )
    .await
    .unwrap();
    assert_eq!(count(&oldest), 0, "the oldest records go first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_and_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let metrics = switchyard::telemetry::Metrics::new().unwrap();
    let store =
        switchyard::store::Store::open(&settings(&db, 1 << 30, 4), metrics.store.clone()).unwrap();
    for i in 0..2000 {
        store.record(record(i, 10));
    }
    let dropped = metrics
        .store
        .dropped_total
        .with(&switchyard::telemetry::metrics::StoreDrop::QueueFull)
        .get();
    assert!(dropped > 0, "a queue of 4 took 2000 records at once");
    assert!(store.flush(Duration::from_secs(30)).await);
    let written = metrics.store.written_total.get();
    assert_eq!(
        written + dropped,
        2000,
        "every record is written or counted as dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_bodies_are_bounded_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let metrics = switchyard::telemetry::Metrics::new().unwrap();
    let store =
        switchyard::store::Store::open(&settings(&db, 1 << 30, 100_000), metrics.store.clone())
            .unwrap();
    // 1000 records of 128 KiB of bodies at once: twice the 64 MiB the queue may hold, far
    // under its 100 000 records.
    for i in 0..1000 {
        store.record(record(i, 128 << 10));
    }
    let dropped = metrics
        .store
        .dropped_total
        .with(&switchyard::telemetry::metrics::StoreDrop::QueueFull)
        .get();
    assert!(dropped > 0, "128 MiB of bodies were queued whole");
    assert!(store.flush(Duration::from_secs(60)).await);
    assert_eq!(metrics.store.written_total.get() + dropped, 1000);
    // Drained: the bound is free again.
    store.record(record(5000, 128 << 10));
    assert!(store.flush(Duration::from_secs(30)).await);
    assert_eq!(metrics.store.written_total.get() + dropped, 1001);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_kept_aside_and_requests_are_served() {
    let mock = mock().await;
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("requests.db");
    std::fs::write(&db, "not a database ".repeat(500)).unwrap();
    let store = format!("store: {{ path: {:?} }}", db.to_str().unwrap());
    let gw = Gateway::start(&config(mock.addr, &store)).await;
    send(&gw, "after", &json!({}), &[]).await;
    until(&gw, "/v1/analytics/requests?trace_id=after", |b| {
        count(b) == 1
    })
    .await;
    let kept: Vec<String> = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("requests.db.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let old = std::fs::read_to_string(data.path().join(&kept[0])).unwrap();
    assert!(old.starts_with("not a database"), "kept as it was");
    assert!(
        gw.log().contains("not a usable SQLite database"),
        "{}",
        gw.log()
    );
}
