//! The mock provider itself: each fault does what it says, so gateway tests can trust it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use switchyard::mock_provider::{self, FaultSpec, MockHandle};

async fn mock() -> MockHandle {
    mock_provider::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn chat(stream: bool) -> serde_json::Value {
    serde_json::json!({"model": "m", "stream": stream, "stream_options": {"include_usage": true},
                       "messages": [{"role": "user", "content": "a b c"}]})
}

async fn call(m: &MockHandle, fault: &str, stream: bool) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", m.addr))
        .header("x-mock-fault", fault)
        .json(&chat(stream))
        .timeout(Duration::from_secs(10))
        .send()
        .await
}

fn data_events(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect()
}

#[tokio::test]
async fn status_retry_after_and_fail_first() {
    let m = mock().await;
    let r = call(&m, "status=503,retry_after=2", false).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    let statuses: Vec<u16> = futures_util::future::join_all((0..3).map(|_| async {
        call(&m, "status=500,fail_first=2", false)
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await;
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 500, 500]);
    let unknown = call(&m, "statuss=500", false).await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!("status=x".parse::<FaultSpec>().is_err());
}

#[tokio::test]
async fn streams_have_openai_shape_and_pacing() {
    let m = mock().await;
    let started = Instant::now();
    let r = call(
        &m,
        "chunks=3,chunk_delay_ms=100,first_chunk_delay_ms=100",
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut reads = 0;
    let mut body = String::new();
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        reads += 1;
        body.push_str(&String::from_utf8_lossy(&c.unwrap()));
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    let events = data_events(&body);
    // role, 3 content, finish, usage, [DONE]
    assert_eq!(events.len(), 7, "{body}");
    assert!(reads >= 5, "events were merged into {reads} reads");
    let role: serde_json::Value = serde_json::from_str(events[0]).unwrap();
    assert_eq!(role["choices"][0]["delta"]["role"], "assistant");
    let finish: serde_json::Value = serde_json::from_str(events[4]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage: serde_json::Value = serde_json::from_str(events[5]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(events[6], "[DONE]");
    assert_eq!(m.stats().streams_completed, 1);
}

#[tokio::test]
async fn stream_faults() {
    let m = mock().await;
    let cut = call(&m, "cut_after=2", true).await.unwrap();
    assert!(
        cut.text().await.is_err(),
        "a cut stream must not end cleanly"
    );

    let bad = call(&m, "malformed", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(data_events(&bad).contains(&"{not json"));

    let err = call(&m, "error_event", true).await.unwrap();
    assert_eq!(err.status(), 200);
    let err = err.text().await.unwrap();
    assert!(data_events(&err)[0].contains("\"error\""));

    let empty = call(&m, "empty_stream", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!empty.contains("tok0") && empty.contains("[DONE]"));

    let stalled = call(&m, "stall_after=1", true).await.unwrap();
    let mut s = stalled.bytes_stream();
    let mut body = String::new();
    let waited = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(Ok(c)) = s.next().await {
            body.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    assert!(waited.is_err(), "a stalled stream must not end");
    assert!(body.contains("tok0") && !body.contains("tok1"));
    drop(s);
    let cancelled = async {
        for _ in 0..250 {
            if m.stats().streams_cancelled >= 2 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    assert!(cancelled.await, "{:?}", m.stats());

    assert!(call(&m, "cut=headers", false).await.is_err());
}

#[tokio::test]
async fn control_endpoints_and_recording() {
    let m = mock().await;
    let c = reqwest::Client::new();
    c.post(format!("http://{}/_mock/fault", m.addr))
        .body("status=418")
        .send()
        .await
        .unwrap();
    let r = c
        .post(format!(
            "http://{}/fault/headers_delay_ms=1/v1/embeddings?x=1",
            m.addr
        ))
        .header("authorization", "Bearer sk-test")
        .json(&serde_json::json!({"input": ["a", "b"], "model": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the path fault wins over the default");
    let r = c
        .get(format!("http://{}/v1/models", m.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418, "the default fault applies");
    c.post(format!("http://{}/_mock/fault", m.addr))
        .send()
        .await
        .unwrap();
    let seen = m.requests();
    assert_eq!(seen[0].path, "/v1/embeddings?x=1");
    assert_eq!(seen[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen[0].json().unwrap()["model"], "e");
    let listed: serde_json::Value = c
        .get(format!("http://{}/_mock/requests", m.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let padded: serde_json::Value = c
        .post(format!("http://{}/v1/chat/completions", m.addr))
        .header("x-mock-fault", "content_bytes=5000")
        .json(&chat(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        padded["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        5000
    );
    assert!(m.stats().total_connections >= 1);
}
