//! The request store on a real PostgreSQL server, through the real binary: two gateway
//! processes writing one database and each answering the analytics API with both pods' rows;
//! the seed's traced multi-turn support session (two `/v1/messages` turns and their feedback,
//! sent through different pods) read back by trace, metadata and summary; feedback matched to
//! its request when the two pods write them at the same moment; the database stopped
//! mid-test and started again (requests keep flowing, writes are retried, dropped and counted,
//! the API answers 503, writing resumes), and a gateway started while it is down; and the
//! database URL, a credential, kept out of `/config`, logs, error bodies and metrics.
//!
//! Every wait is bounded; nothing asserts a timing.

#[path = "support/gateway.rs"]
mod harness;
#[path = "support/postgres.rs"]
mod postgres_server;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use harness::{client, metric_value, mock, Gateway};
use postgres_server::PostgresServer;
use serde_json::{json, Value};
use switchyard_mock::MockHandle;

/// An OpenAI-compatible and an Anthropic provider, both the mock; one virtual key each (the
/// session's `claude-sonnet-4-6` has a price in the built-in table, so its turns have a cost).
/// `store` is the `store:` block, a flow mapping.
fn config(mock: &MockHandle, store: &str) -> String {
    format!(
        r#"
providers:
  mock: {{ kind: openai-compatible, base_url: "http://{addr}/v1", api_key: sk-provider }}
  claude: {{ kind: anthropic, base_url: "http://{addr}", api_key: sk-ant }}
virtual_keys:
  vk-oai: {{ provider: mock }}
  vk-claude: {{ provider: claude }}
store: {store}
"#,
        addr = mock.addr
    )
}

/// `store:` with the URL inline.
fn inline(url: &str) -> String {
    format!("{{ postgres_url: \"{url}\" }}")
}

/// A gateway whose rows say `pod`.
async fn gateway(cfg: &str, pod: &str) -> Gateway {
    Gateway::start_with(cfg, |_| {}, &[("POD_NAME", pod)]).await
}

/// Runs blocking harness work (starting or stopping the server) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// One OpenAI chat through `vk-oai` under `trace`, with `metadata` when given; the status.
async fn chat(gw: &Gateway, trace: &str, metadata: Option<Value>) -> u16 {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-oai")
        .header("x-portkey-trace-id", trace)
        .json(&harness::chat("gpt-4o-mini", false));
    if let Some(m) = metadata {
        req = req.header("x-portkey-metadata", m.to_string());
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("chat {trace}: {e}"))
        .status()
        .as_u16()
}

/// `GET url`: status and JSON body (`Null` when not JSON).
async fn get(url: &str) -> (u16, Value) {
    let resp = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET url` every 100 ms until it answers 200 with a body `done` accepts, for at most `limit`;
/// panics with the last answer if it never does.
async fn poll(url: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = get(url).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {url}: no expected answer in {limit:?}; the last was {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The rows of a `/v1/analytics/requests` answer.
fn rows(list: &Value) -> &[Value] {
    list["data"].as_array().map_or(&[], Vec::as_slice)
}

/// The trace ids of a `/v1/analytics/requests` answer, newest first.
fn traces(list: &Value) -> Vec<&str> {
    rows(list)
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap_or(""))
        .collect()
}

/// Whether a stored request of `trace` is listed.
fn has_trace(list: &Value, trace: &str) -> bool {
    traces(list).contains(&trace)
}

/// Whether `check` held within `limit` (checked every 50 ms).
async fn until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most `limit`) until `check` holds; panics naming `what` if it does not.
async fn wait_for<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(until(limit, check).await, "{what}: not within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_write_one_database_and_each_answers_with_both_pods_rows() {
    let pg = blocking(PostgresServer::start);
    let mock = mock().await;
    let cfg = config(&mock, &inline(&pg.url()));
    let (a, b) = tokio::join!(gateway(&cfg, "pod-a"), gateway(&cfg, "pod-b"));

    // The first requests go through both at once: both writers find the database empty and
    // migrate it together (under the migration lock).
    let sends = (0..3).flat_map(|i| {
        [(&a, format!("pods-a-{i}")), (&b, format!("pods-b-{i}"))]
            .map(|(gw, trace)| async move { (chat(gw, &trace, None).await, trace) })
    });
    for (status, trace) in join_all(sends).await {
        assert_eq!(status, 200, "{trace}");
    }

    let check = |list: &Value| {
        let by_trace: BTreeMap<&str, &str> = rows(list)
            .iter()
            .map(|r| {
                (
                    r["trace_id"].as_str().unwrap(),
                    r["gateway"].as_str().unwrap(),
                )
            })
            .collect();
        let want: BTreeMap<String, &str> = (0..3)
            .flat_map(|i| {
                [
                    (format!("pods-a-{i}"), "pod-a"),
                    (format!("pods-b-{i}"), "pod-b"),
                ]
            })
            .collect();
        assert_eq!(
            by_trace,
            want.iter().map(|(t, g)| (t.as_str(), *g)).collect(),
            "{list}"
        );
        for r in rows(list) {
            assert_eq!(r["status"], 200, "{r}");
            assert_eq!(r["outcome"], "ok", "{r}");
            assert_eq!(r["provider"], "mock", "{r}");
            assert_eq!(r["path"], "/v1/chat/completions", "{r}");
            assert_eq!(r["attempt_count"], 1, "{r}");
        }
    };
    // Pod A's admin port, once both pods' rows are in.
    let list = poll(
        &a.admin_url("/v1/analytics/requests?limit=200"),
        Duration::from_secs(20),
        |l| rows(l).len() >= 6,
    )
    .await;
    check(&list);
    assert_eq!(list["has_more"], false, "{list}");
    // Pod B's proxy port answers the same from the same database.
    let (status, list) = get(&b.url("/v1/analytics/requests?limit=200")).await;
    assert_eq!(status, 200, "{list}");
    check(&list);
    // Filters work across pods too: pod B's admin port, pod A's rows by trace.
    let (status, one) = get(&b.admin_url("/v1/analytics/requests?trace_id=pods-a-1")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(traces(&one), ["pods-a-1"], "{one}");
    assert_eq!(rows(&one)[0]["gateway"], "pod-a", "{one}");

    // Two migrating processes applied the schema once.
    assert_eq!(
        blocking(|| pg.psql("SELECT version FROM switchyard_schema ORDER BY version")),
        "1"
    );
    assert_eq!(blocking(|| pg.psql("SELECT count(*) FROM requests")), "6");
    // Each pod counts what it wrote.
    for gw in [&a, &b] {
        wait_for("written_total", Duration::from_secs(5), || async {
            gw.metric("switchyard_store_written_total", &[]).await == 3.0
        })
        .await;
    }
    // The inline URL is a credential: `/config` shows it redacted.
    let view = a.admin_json("/config").await;
    assert_eq!(
        view["config"]["store"]["postgres_url"], "[redacted]",
        "{view}"
    );
    assert!(!view.to_string().contains(&pg.url()), "{view}");
}

/// The seed's support session: `x-portkey-*` headers of one turn (trace = feature-session,
/// span = the turn id, metadata naming user, session, feature, environment and turn).
fn turn_headers(turn_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-portkey-trace-id", "support-chat-sess_1".into()),
        ("x-portkey-span-id", turn_id.into()),
        ("x-portkey-metadata", session_metadata(turn_id).to_string()),
    ]
}

fn session_metadata(turn_id: &str) -> Value {
    json!({
        "user_id": "user_8821",
        "session_id": "sess_1",
        "feature": "support-chat",
        "environment": "production",
        "turn_id": turn_id,
    })
}

/// One Anthropic Messages turn of the session through `gw`; the answer's JSON.
async fn send_turn(gw: &Gateway, turn_id: &str, messages: &Value) -> Value {
    let mut req = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "vk-claude")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": messages}));
    for (k, v) in turn_headers(turn_id) {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("send turn");
    assert_eq!(resp.status(), 200, "turn {turn_id}");
    let v: Value = resp.json().await.expect("turn JSON");
    assert_eq!(v["type"], "message", "{v}");
    v
}

/// `POST /v1/feedback` through `gw` for the session.
async fn send_feedback(gw: &Gateway, value: i64, comment: &str) {
    let resp = client()
        .post(gw.url("/v1/feedback"))
        .json(&json!({
            "trace_id": "support-chat-sess_1",
            "value": value,
            "weight": 1,
            "metadata": {"user_id": "user_8821", "comment": comment},
        }))
        .send()
        .await
        .expect("send feedback");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_multi_turn_session_is_read_back_with_each_turns_feedback_across_pods() {
    let pg = blocking(PostgresServer::start);
    let mock = mock().await;
    let cfg = config(&mock, &inline(&pg.url()));
    let (a, b) = tokio::join!(gateway(&cfg, "pod-a"), gateway(&cfg, "pod-b"));

    // Turn 1 through pod A, rated +1 through pod B; turn 2 through pod B, rated -1 through
    // pod A: each piece of feedback is written by another pod than the turn it rates.
    let mut messages = vec![json!({"role": "user",
        "content": "I can't connect to my database after upgrading to v2.1."})];
    let t1 = send_turn(&a, "a1b2c3d4", &json!(messages)).await;
    send_feedback(&b, 1, "Clear and actionable advice").await;
    messages.push(json!({"role": "assistant", "content": t1["content"][0]["text"]}));
    messages.push(json!({"role": "user",
        "content": "The error says 'connection refused on port 5432'. PostgreSQL is running."}));
    let t2 = send_turn(&b, "e5f6a7b8", &json!(messages)).await;
    send_feedback(&a, -1, "Missed firewall/pg_hba.conf angle").await;
    // An unrelated request of another feature and user.
    let other = json!({"user_id": "user_1234", "feature": "search"});
    assert_eq!(chat(&a, "search-q1", Some(other.clone())).await, 200);

    // The session, newest first, each turn with its own feedback (bounded: the writers of both
    // pods and the feedback's attribution run after the answers).
    let session = poll(
        &a.admin_url("/v1/analytics/requests?trace_id=support-chat-sess_1&time_range=24h"),
        Duration::from_secs(20),
        |l| {
            rows(l).len() == 2
                && rows(l)
                    .iter()
                    .all(|r| r["feedback"].as_array().is_some_and(|f| f.len() == 1))
        },
    )
    .await;
    let [turn2, turn1] = rows(&session) else {
        panic!("{session}")
    };
    for (row, answer, turn_id, pod, value, comment) in [
        (
            turn1,
            &t1,
            "a1b2c3d4",
            "pod-a",
            1,
            "Clear and actionable advice",
        ),
        (
            turn2,
            &t2,
            "e5f6a7b8",
            "pod-b",
            -1,
            "Missed firewall/pg_hba.conf angle",
        ),
    ] {
        assert_eq!(row["trace_id"], "support-chat-sess_1", "{row}");
        assert_eq!(row["client_span"]["span_id"], turn_id, "{row}");
        assert_eq!(row["metadata"], session_metadata(turn_id), "{row}");
        assert_eq!(row["gateway"], pod, "{row}");
        assert_eq!(row["path"], "/v1/messages", "{row}");
        assert_eq!(row["model"], "claude-sonnet-4-6", "{row}");
        assert_eq!(row["provider"], "claude", "{row}");
        assert_eq!(row["provider_kind"], "anthropic", "{row}");
        assert_eq!(row["status"], 200, "{row}");
        assert_eq!(row["outcome"], "ok", "{row}");
        assert_eq!(
            row["input_tokens"], answer["usage"]["input_tokens"],
            "{row}"
        );
        assert_eq!(
            row["output_tokens"], answer["usage"]["output_tokens"],
            "{row}"
        );
        assert!(row["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{row}");
        let feedback = &row["feedback"][0];
        assert_eq!(feedback["value"], value, "{row}");
        assert_eq!(feedback["weight"], 1.0, "{row}");
        assert_eq!(feedback["metadata"]["comment"], comment, "{row}");
    }
    assert!(
        turn2["start_unix_ms"].as_i64() >= turn1["start_unix_ms"].as_i64(),
        "{session}"
    );

    // One request whole: its attempts.
    for row in [turn1, turn2] {
        let id = row["id"].as_str().unwrap();
        let (status, one) = get(&b.admin_url(&format!("/v1/analytics/requests/{id}"))).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["id"], id, "{one}");
        assert_eq!(one["feedback"], row["feedback"], "{one}");
        let attempts = one["attempts"].as_array().expect("attempts");
        assert_eq!(attempts.len(), 1, "{one}");
        assert_eq!(attempts[0]["seq"], 0, "{one}");
        assert_eq!(attempts[0]["provider"], "claude", "{one}");
        assert_eq!(attempts[0]["provider_kind"], "anthropic", "{one}");
        assert_eq!(attempts[0]["status"], 200, "{one}");
    }

    // The user's requests are exactly the session (through pod B's proxy port).
    let (status, by_user) =
        get(&b.url("/v1/analytics/requests?metadata.user_id=user_8821&time_range=24h")).await;
    assert_eq!(status, 200, "{by_user}");
    let ids = |l: &Value| -> Vec<String> {
        rows(l)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&by_user), ids(&session), "{by_user}");
    // Only turn 2 was rated negatively.
    let (_, negative) =
        get(&a.admin_url("/v1/analytics/requests?trace_id=support-chat-sess_1&feedback=negative"))
            .await;
    assert_eq!(
        ids(&negative),
        [turn2["id"].as_str().unwrap()],
        "{negative}"
    );

    // Per feature: the session's two turns, two ratings averaging 0, their cost; and the
    // unrelated search request (wait until it is written too).
    let url = a.admin_url("/v1/analytics/summary?group_by=metadata.feature&time_range=24h");
    let summary = poll(&url, Duration::from_secs(20), |s| {
        s["groups"].as_array().is_some_and(|g| g.len() == 2)
    })
    .await;
    assert_eq!(summary["group_by"], "metadata.feature", "{summary}");
    let group = |name: &str| -> &Value {
        summary["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == name)
            .unwrap_or_else(|| panic!("no group {name}: {summary}"))
    };
    let chat_group = group("support-chat");
    assert_eq!(chat_group["requests"], 2, "{summary}");
    assert_eq!(chat_group["errors"], 0, "{summary}");
    assert_eq!(chat_group["feedback_count"], 2, "{summary}");
    assert_eq!(chat_group["feedback_mean"], 0.0, "{summary}");
    let tokens = |key: &str| turn1[key].as_i64().unwrap() + turn2[key].as_i64().unwrap();
    assert_eq!(
        chat_group["input_tokens"],
        tokens("input_tokens"),
        "{summary}"
    );
    assert_eq!(
        chat_group["output_tokens"],
        tokens("output_tokens"),
        "{summary}"
    );
    let cost = turn1["cost_usd"].as_f64().unwrap() + turn2["cost_usd"].as_f64().unwrap();
    let summed = chat_group["cost_usd"].as_f64().unwrap();
    assert!(
        (summed - cost).abs() <= 1e-12,
        "{summed} != {cost}: {summary}"
    );
    let search = group("search");
    assert_eq!(search["requests"], 1, "{summary}");
    assert_eq!(search["feedback_count"], 0, "{summary}");
    assert_eq!(search["feedback_mean"], Value::Null, "{summary}");
}

/// A transaction held open by a `psql` process until [`commit`](Self::commit) (or killed when
/// dropped).
struct OpenTransaction(std::process::Child);

impl OpenTransaction {
    /// `BEGIN` and `sql`, as the gateways' role; returns once they ran.
    fn begin(pg: &PostgresServer, sql: &str) -> OpenTransaction {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(pg.tool("psql"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(pg.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run psql");
        let mut stdin = child.stdin.take().unwrap();
        // Bounded: `sql` may wait for a writer's lock (a few milliseconds).
        writeln!(
            stdin,
            "SET statement_timeout = 5000;\nBEGIN;\n{sql};\nSELECT 'begun';"
        )
        .unwrap();
        child.stdin = Some(stdin);
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "begun" {
            line.clear();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "psql ended: {sql}"
            );
        }
        OpenTransaction(child)
    }

    fn commit(mut self) {
        use std::io::Write;
        let mut stdin = self.0.stdin.take().unwrap();
        stdin.write_all(b"COMMIT;\n").unwrap();
        drop(stdin);
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many of the gateways' sessions wait for a lock.
fn waiting_writers(pg: &PostgresServer) -> usize {
    pg.psql_admin(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'switchyard' AND wait_event_type = 'Lock'",
    )
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn feedback_sent_to_one_pod_while_another_writes_the_turn_rates_that_turn() {
    let pg = blocking(PostgresServer::start);
    let mock = mock().await;
    let cfg = config(&mock, &inline(&pg.url()));
    let (a, b) = tokio::join!(gateway(&cfg, "pod-a"), gateway(&cfg, "pod-b"));
    // Both writers connected and the schema in.
    assert_eq!(chat(&a, "warm-a", None).await, 200);
    assert_eq!(chat(&b, "warm-b", None).await, 200);
    let list = a.admin_url("/v1/analytics/requests?limit=200");
    poll(&list, Duration::from_secs(20), |l| {
        has_trace(l, "warm-a") && has_trace(l, "warm-b")
    })
    .await;
    // A feedback row of no request, sent "in the future": a writer that, in its transaction,
    // matches the feedback sent since its requests started to them passes over it.
    blocking(|| {
        pg.psql(
            "INSERT INTO feedback (id, trace_id, value, weight, created_us, gateway) \
             VALUES ('held', 'held', 0, 1, 9000000000000000, 'test')",
        )
    });

    // Each round: a turn through one pod, its feedback through the other while the turn's
    // transaction is still open (held by a lock on that row: its request written, not yet
    // committed) — the interleaving of a fleet's writers under load, made to happen every time.
    const ROUNDS: usize = 2;
    for i in 0..ROUNDS {
        let (turn, rate) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let trace = format!("rated-{i}");
        let held = blocking(|| {
            OpenTransaction::begin(&pg, "SELECT id FROM feedback WHERE id = 'held' FOR UPDATE")
        });
        assert_eq!(chat(turn, &trace, None).await, 200, "{trace}");
        // The turn's writer waits (bounded, under the 5 s statement timeout; a store that does
        // not wait here is not held, and the round is then an ordinary one).
        until(Duration::from_secs(2), || async {
            blocking(|| waiting_writers(&pg)) >= 1
        })
        .await;
        let resp = client()
            .post(rate.url("/v1/feedback"))
            .json(&json!({"trace_id": trace, "value": 1}))
            .send()
            .await
            .expect("send feedback");
        assert_eq!(resp.status(), 200, "{trace}");
        // The feedback written, or its writer waiting too.
        let sql = format!("SELECT count(*) FROM feedback WHERE trace_id = '{trace}'");
        until(Duration::from_secs(2), || async {
            blocking(|| pg.psql(&sql) == "1" || waiting_writers(&pg) >= 2)
        })
        .await;
        blocking(|| held.commit());
    }

    // Once every request and every piece of feedback is written, each must rate its request.
    let counts =
        || pg.try_psql("SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM feedback)");
    let all = format!("{}|{}", ROUNDS + 2, ROUNDS + 1);
    wait_for("every row written", Duration::from_secs(20), || async {
        blocking(counts).is_ok_and(|c| c == all)
    })
    .await;
    let unrated = blocking(|| {
        pg.psql(
            "SELECT coalesce(string_agg(trace_id, ' ' ORDER BY trace_id), '') \
             FROM feedback WHERE request_id IS NULL AND id <> 'held'",
        )
    });
    assert_eq!(unrated, "", "feedback without its request");
    let rated = poll(&list, Duration::from_secs(5), |l| {
        rows(l).len() == ROUNDS + 2
    })
    .await;
    for r in rows(&rated) {
        let trace = r["trace_id"].as_str().unwrap();
        let want = usize::from(trace.starts_with("rated-"));
        assert_eq!(r["feedback"].as_array().map(Vec::len), Some(want), "{r}");
    }
}

/// The value of one metric of `gw`.
async fn metric(gw: &Gateway, name: &str, parts: &[&str]) -> f64 {
    metric_value(&gw.metrics().await, name, parts)
}

/// `/readyz` on the admin port: its status.
async fn ready(gw: &Gateway) -> u16 {
    gw.admin_get("/readyz").await.status().as_u16()
}

/// Asserts an analytics call answers 503 `store_unavailable` (neither a 500 nor a hang: the
/// client gives up after 30 s).
async fn assert_unavailable(url: &str) -> Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 503, "{url}: {body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{url}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_mid_test_costs_records_not_requests_and_writing_resumes() {
    let mut pg = blocking(PostgresServer::start);
    let mock = mock().await;
    let gw = gateway(&config(&mock, &inline(&pg.url())), "pod-outage").await;
    let list = gw.admin_url("/v1/analytics/requests?limit=200");
    assert_eq!(chat(&gw, "before", None).await, 200);
    poll(&list, Duration::from_secs(20), |l| has_trace(l, "before")).await;

    blocking(|| pg.stop());
    // Requests are answered; the record waits in the writer's retries.
    assert_eq!(chat(&gw, "during-0", None).await, 200);
    assert_eq!(ready(&gw).await, 200);
    // The API says the store cannot answer, on both ports.
    let summary = gw.url("/v1/analytics/summary?group_by=model");
    let (admin, proxy) = tokio::join!(assert_unavailable(&list), assert_unavailable(&summary));
    assert_eq!(
        admin["error"]["type"], proxy["error"]["type"],
        "{admin} {proxy}"
    );

    // Each failed try is counted; when the batch's retries run out it is dropped and counted.
    // Meanwhile requests keep getting 200 and the gateway stays ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 1;
    loop {
        let text = gw.metrics().await;
        let errors = metric_value(&text, "switchyard_store_errors_total", &[r#"op="write""#]);
        let dropped = metric_value(
            &text,
            "switchyard_store_dropped_total",
            &[r#"reason="write_failed""#],
        );
        if errors >= 1.0 && dropped >= 1.0 {
            // At least the batch of `during-0` (4 tries: the first and 3 retries).
            assert!(errors >= 4.0, "{errors} failed tries before a drop");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write_failed drop in 60 s (errors {errors}, dropped {dropped}):\n{}",
            gw.log()
        );
        assert_eq!(ready(&gw).await, 200, "readyz during the outage");
        assert_eq!(chat(&gw, &format!("during-{sent}"), None).await, 200);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        gw.log().contains("request store: write failed"),
        "{}",
        gw.log()
    );

    // Back up (same port, same data): new requests are written again, the old ones kept.
    blocking(|| pg.restart());
    assert_eq!(chat(&gw, "after", None).await, 200);
    let found = poll(&list, Duration::from_secs(30), |l| has_trace(l, "after")).await;
    assert!(has_trace(&found, "before"), "{found}");
    // The first outage batch was dropped, not written late.
    assert!(!has_trace(&found, "during-0"), "{found}");
    assert_eq!(ready(&gw).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_started_while_postgres_is_down_serves_and_writes_once_it_is_up() {
    let mut pg = blocking(PostgresServer::start);
    blocking(|| pg.stop());
    let mock = mock().await;
    // Starts (and is ready) with its database down: the store connects and migrates lazily.
    let gw = gateway(&config(&mock, &inline(&pg.url())), "pod-cold").await;
    assert_eq!(chat(&gw, "cold-1", None).await, 200);
    assert_eq!(ready(&gw).await, 200);
    // The writer has tried, and failed to connect, before the database comes up.
    wait_for("a connect error", Duration::from_secs(30), || async {
        metric(&gw, "switchyard_store_errors_total", &[r#"op="connect""#]).await >= 1.0
    })
    .await;
    assert_eq!(chat(&gw, "cold-2", None).await, 200);

    blocking(|| pg.restart());
    assert_eq!(chat(&gw, "cold-3", None).await, 200);
    let list = poll(
        &gw.admin_url("/v1/analytics/requests?limit=200"),
        Duration::from_secs(30),
        |l| has_trace(l, "cold-3"),
    )
    .await;
    // The records queued while it was down were still being retried: written too.
    assert_eq!(traces(&list), ["cold-3", "cold-2", "cold-1"], "{list}");
    assert!(
        rows(&list).iter().all(|r| r["gateway"] == "pod-cold"),
        "{list}"
    );
    assert_eq!(
        blocking(|| pg.psql("SELECT version FROM switchyard_schema")),
        "1"
    );
}

/// The password of the role in the credentials test: distinctive, so a hit is this and no
/// other text.
const ROLE_PASSWORD: &str = "Pw-7hQ2-xZ9k-Lm4";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_url_from_a_file_shows_nowhere() {
    let pg = blocking(PostgresServer::start);
    blocking(|| pg.psql_admin(&format!("ALTER ROLE switchyard PASSWORD '{ROLE_PASSWORD}'")));
    let url = pg.url().replace(
        &format!(":{}@", postgres_server::PASSWORD),
        &format!(":{ROLE_PASSWORD}@"),
    );
    assert!(url.contains(ROLE_PASSWORD));
    let mock = mock().await;
    let cfg = config(&mock, "{ postgres_url_file: store-url }");
    let file_text = format!("{url}\n");
    let gw = Gateway::start_with(
        &cfg,
        |dir| std::fs::write(dir.join("store-url"), &file_text).unwrap(),
        &[("POD_NAME", "pod-creds")],
    )
    .await;
    // The URL from the file works.
    assert_eq!(chat(&gw, "creds-1", None).await, 200);
    let list = gw.admin_url("/v1/analytics/requests");
    poll(&list, Duration::from_secs(20), |l| has_trace(l, "creds-1")).await;

    // `/config` names the file, not what is in it.
    let view = gw.admin_json("/config").await;
    assert_eq!(
        view["config"]["store"]["postgres_url_file"], "store-url",
        "{view}"
    );
    assert!(
        view["config"]["store"].get("postgres_url").is_none(),
        "{view}"
    );

    // The role's password changes and its sessions end: every write and read now fails with an
    // authentication error, which the log, the API's error and the metrics carry.
    blocking(|| {
        pg.psql_admin("ALTER ROLE switchyard PASSWORD 'changed-elsewhere'");
        pg.psql_admin(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE usename = 'switchyard'",
        );
    });
    assert_eq!(chat(&gw, "creds-2", None).await, 200);
    let refused = assert_unavailable(&list).await;
    let proxy_refused =
        assert_unavailable(&gw.url("/v1/analytics/requests/0123456789abcdef")).await;
    wait_for(
        "a logged write failure",
        Duration::from_secs(30),
        || async { gw.log().contains("request store: write failed") },
    )
    .await;
    wait_for("the batch dropped", Duration::from_secs(30), || async {
        metric(
            &gw,
            "switchyard_store_dropped_total",
            &[r#"reason="write_failed""#],
        )
        .await
            >= 1.0
    })
    .await;

    let metrics = gw.metrics().await;
    let stdout = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap();
    let stderr = gw.log();
    // What went wrong is said (so the texts below are those of the failure).
    for (what, text) in [
        (
            "the admin port's 503",
            refused["error"]["message"].to_string(),
        ),
        (
            "the proxy port's 503",
            proxy_refused["error"]["message"].to_string(),
        ),
        ("stderr", stderr.clone()),
    ] {
        assert!(
            text.contains("password authentication failed"),
            "{what}: {text}"
        );
    }
    // A URL in the file that does not parse is refused at load without being echoed.
    let bad = tempfile::tempdir().unwrap();
    let bad_file = bad.path().join("store-url");
    std::fs::write(
        &bad_file,
        format!("postgres://switchyard:{ROLE_PASSWORD}@127.0.0.1:notaport/x\n"),
    )
    .unwrap();
    let (ok, out, err) = harness::check_config(&config(
        &mock,
        &format!("{{ postgres_url_file: \"{}\" }}", bad_file.display()),
    ));
    assert!(!ok, "{out}{err}");
    assert!(err.contains("store.postgres_url_file"), "{err}");
    assert!(
        stdout.contains("creds-2"),
        "stdout is the access log: {stdout}"
    );
    for (what, text) in [
        ("/config", view.to_string()),
        ("the admin port's 503", refused.to_string()),
        ("the proxy port's 503", proxy_refused.to_string()),
        ("/metrics", metrics),
        ("stdout", stdout),
        ("stderr", stderr),
        ("switchyard check", format!("{out}{err}")),
    ] {
        assert!(
            !text.contains(ROLE_PASSWORD),
            "the password in {what}:\n{text}"
        );
        assert!(!text.contains(&url), "the URL in {what}:\n{text}");
    }
}

/// A request without a price (cost unknown: NULL) before requests with one: the cost column
/// must not make later batches fail (sqlx 0.8's `Any` driver binds a NULL f64 as float4, which
/// PostgreSQL then keeps for the cached insert statement — costs are stored as integers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_a_price_do_not_stop_the_writes_after_them() {
    let pg = blocking(PostgresServer::start);
    let mock = harness::mock().await;
    let gw = gateway(&config(&mock, &inline(&pg.url())), "pod-a").await;
    let unpriced = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-oai")
        .header("x-portkey-trace-id", "unpriced")
        .json(&harness::chat("model-without-a-price", false))
        .send()
        .await
        .unwrap();
    assert_eq!(unpriced.status(), 200);
    let url = gw.admin_url("/v1/analytics/requests?trace_id=unpriced");
    poll(&url, Duration::from_secs(20), |l| rows(l).len() == 1).await;
    for i in 0..3 {
        assert_eq!(chat(&gw, &format!("priced-{i}"), None).await, 200);
    }
    let all = poll(
        &gw.admin_url("/v1/analytics/requests"),
        Duration::from_secs(20),
        |l| rows(l).len() == 4,
    )
    .await;
    for r in rows(&all) {
        let priced = r["trace_id"].as_str().unwrap().starts_with("priced-");
        assert_eq!(r["cost_usd"].is_f64(), priced, "{r}");
    }
    assert_eq!(
        metric(&gw, "switchyard_store_dropped_total", &["write_failed"]).await,
        0.0
    );
}
