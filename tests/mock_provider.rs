//! The mock provider itself: each fault does what it says, so gateway tests can trust it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use switchyard_mock::{FaultSpec, MockHandle, MockStats, TlsOptions};

async fn mock() -> MockHandle {
    switchyard_mock::start("127.0.0.1:0".parse().unwrap())
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

// ---------------------------------------------------------------------------------------------
// Anthropic Messages and Gemini formats, and tool calling in all three.

/// SSE events as `(event name, data)`.
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn parse(data: &str) -> serde_json::Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
}

fn weather_schema() -> serde_json::Value {
    serde_json::json!({"type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"]})
}

fn anthropic_body(stream: bool) -> serde_json::Value {
    serde_json::json!({"model": "claude-test", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "a b c"}]})
}

async fn anthropic(m: &MockHandle, fault: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}/v1/messages", m.addr))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-fault", fault)
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn anthropic_messages_json_and_stream() {
    let m = mock().await;
    let r = anthropic(&m, "", &anthropic_body(false)).await;
    assert_eq!(r.status(), 200);
    let msg: serde_json::Value = r.json().await.unwrap();
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"), "{msg}");
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["model"], "claude-test");
    assert_eq!(msg["content"][0]["type"], "text");
    assert_eq!(msg["content"][0]["text"], "Hello from the mock provider.");
    assert_eq!(msg["stop_reason"], "end_turn");
    assert!(msg["stop_sequence"].is_null());
    assert!(msg["usage"]["input_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(msg["usage"]["output_tokens"], 5);
    let seen = &m.requests()[0];
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));

    let r = anthropic(&m, "chunks=3", &anthropic_body(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let datas: Vec<serde_json::Value> = events.iter().map(|(_, d)| parse(d)).collect();
    for ((name, _), d) in events.iter().zip(&datas) {
        assert_eq!(d["type"], name.as_deref().unwrap(), "{d}");
    }
    assert_eq!(datas[0]["message"]["model"], "claude-test");
    assert_eq!(datas[0]["message"]["content"], serde_json::json!([]));
    assert!(datas[0]["message"]["stop_reason"].is_null());
    assert_eq!(datas[1]["content_block"]["type"], "text");
    let text: String = datas[3..6]
        .iter()
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 ");
    assert_eq!(datas[7]["delta"]["stop_reason"], "end_turn");
    assert_eq!(datas[7]["usage"]["output_tokens"], 3);
    assert_eq!(m.stats().streams_completed, 1);
}

#[tokio::test]
async fn anthropic_errors_have_anthropic_shape() {
    let m = mock().await;
    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/messages", m.addr);
    let no_key = c
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .json(&anthropic_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let body: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let no_version = c
        .post(&url)
        .header("x-api-key", "k")
        .json(&anthropic_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);
    let mut no_max = anthropic_body(false);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = anthropic(&m, "", &no_max).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));

    for (status, kind) in [
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let r = anthropic(
            &m,
            &format!("status={status},retry_after=3"),
            &anthropic_body(true),
        )
        .await;
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["retry-after"], "3");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
        assert!(body["error"]["message"].is_string());
    }
    let bad_spec = anthropic(&m, "nonsense", &anthropic_body(false)).await;
    assert_eq!(bad_spec.status(), 400);
    let body: serde_json::Value = bad_spec.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // The path prefix works under a base path too.
    let r = c
        .post(format!(
            "http://{}/fault/status=503/anthropic/v1/messages",
            m.addr
        ))
        .json(&anthropic_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn anthropic_tool_use_and_tool_result() {
    let m = mock().await;
    let mut req = anthropic_body(false);
    req["tools"] = serde_json::json!([
        {"name": "get_weather", "description": "d", "input_schema": weather_schema()},
        {"name": "other", "input_schema": {"type": "object"}}
    ]);
    let msg: serde_json::Value = anthropic(&m, "", &req).await.json().await.unwrap();
    assert_eq!(msg["stop_reason"], "tool_use");
    let block = &msg["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], serde_json::json!({"location": "Paris"}));

    req["stream"] = true.into();
    let events = sse(&anthropic(&m, "", &req).await.text().await.unwrap());
    let datas: Vec<serde_json::Value> = events.iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(datas[1]["content_block"]["type"], "tool_use");
    assert_eq!(datas[1]["content_block"]["name"], "get_weather");
    assert_eq!(datas[1]["content_block"]["input"], serde_json::json!({}));
    let pieces: Vec<&str> = datas
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert!(pieces.iter().filter(|p| !p.is_empty()).count() >= 2);
    assert_eq!(
        parse(&pieces.concat()),
        serde_json::json!({"location": "Paris"})
    );
    let delta = datas.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    req["stream"] = false.into();
    req["tool_choice"] = serde_json::json!({"type": "tool", "name": "other"});
    let forced: serde_json::Value = anthropic(&m, "", &req).await.json().await.unwrap();
    assert_eq!(forced["content"][0]["name"], "other");
    assert_eq!(forced["content"][0]["input"], serde_json::json!({}));

    req["messages"] = serde_json::json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "18C and sunny"}]}
    ]);
    let answer: serde_json::Value = anthropic(&m, "", &req).await.json().await.unwrap();
    assert_eq!(answer["stop_reason"], "end_turn");
    assert!(answer["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("18C and sunny"));
}

#[tokio::test]
async fn anthropic_stream_faults() {
    let m = mock().await;
    let r = anthropic(&m, "error_event", &anthropic_body(true)).await;
    assert_eq!(r.status(), 200);
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0.as_deref(), Some("error"));
    let err = parse(&events[0].1);
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "overloaded_error");

    let bad = sse(&anthropic(&m, "malformed", &anthropic_body(true))
        .await
        .text()
        .await
        .unwrap());
    assert!(bad.contains(&(Some("content_block_delta".into()), "{not json".into())));

    let empty = sse(&anthropic(&m, "empty_stream", &anthropic_body(true))
        .await
        .text()
        .await
        .unwrap());
    assert!(empty
        .iter()
        .all(|(n, _)| n.as_deref() != Some("content_block_delta")));
    assert_eq!(empty.last().unwrap().0.as_deref(), Some("message_stop"));

    let cut = anthropic(&m, "cut_after=2", &anthropic_body(true)).await;
    assert!(
        cut.text().await.is_err(),
        "a cut stream must not end cleanly"
    );
}

fn gemini_body() -> serde_json::Value {
    serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "a b c"}]}]})
}

async fn gemini(
    m: &MockHandle,
    method: &str,
    fault: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "http://{}/v1beta/models/gemini-test:{method}",
            m.addr
        ))
        .header("x-goog-api-key", "g-test")
        .header("x-mock-fault", fault)
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn gemini_generate_content_json_and_streams() {
    let m = mock().await;
    let r = gemini(&m, "generateContent", "", &gemini_body()).await;
    assert_eq!(r.status(), 200);
    let resp: serde_json::Value = r.json().await.unwrap();
    let cand = &resp["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(
        cand["content"]["parts"][0]["text"],
        "Hello from the mock provider."
    );
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["index"], 0);
    let u = &resp["usageMetadata"];
    assert_eq!(u["candidatesTokenCount"], 5);
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap() + 5
    );
    assert_eq!(resp["modelVersion"], "gemini-test");
    assert!(resp["responseId"].is_string());
    assert_eq!(m.requests()[0].header("x-goog-api-key"), Some("g-test"));

    let r = gemini(
        &m,
        "streamGenerateContent?alt=sse",
        "chunks=3",
        &gemini_body(),
    )
    .await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    assert!(!body.contains("[DONE]"));
    let events = sse(&body);
    assert_eq!(events.len(), 4, "{body}");
    let datas: Vec<serde_json::Value> = events
        .iter()
        .map(|(n, d)| {
            assert!(n.is_none());
            parse(d)
        })
        .collect();
    let text: String = datas
        .iter()
        .filter_map(|d| d["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 ");
    for d in &datas[..3] {
        assert!(d["candidates"][0]["finishReason"].is_null());
        assert!(d["usageMetadata"].is_null());
    }
    assert_eq!(datas[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(datas[3]["usageMetadata"]["candidatesTokenCount"], 3);

    // Without alt=sse: one JSON array of the same responses.
    let r = gemini(&m, "streamGenerateContent", "", &gemini_body()).await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let all: serde_json::Value = r.json().await.unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn gemini_errors_have_gemini_shape() {
    let m = mock().await;
    let c = reqwest::Client::new();
    let url = format!(
        "http://{}/v1beta/models/gemini-test:generateContent",
        m.addr
    );
    let r = c.post(&url).json(&gemini_body()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert!(body["error"]["message"].is_string());
    let r = c
        .post(format!("{url}?key=g-query"))
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the key query parameter is accepted");
    let r = gemini(&m, "generateContent", "", &serde_json::json!({})).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    for (status, kind) in [
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ] {
        let r = gemini(
            &m,
            "streamGenerateContent?alt=sse",
            &format!("status={status}"),
            &gemini_body(),
        )
        .await;
        assert_eq!(r.status(), status);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], status);
        assert_eq!(body["error"]["status"], kind);
    }
}

#[tokio::test]
async fn gemini_function_call_and_response() {
    let m = mock().await;
    let mut req = gemini_body();
    req["tools"] = serde_json::json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "d", "parameters": weather_schema()}
    ]}]);
    let resp: serde_json::Value = gemini(&m, "generateContent", "", &req)
        .await
        .json()
        .await
        .unwrap();
    let cand = &resp["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    let call = &cand["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["args"], serde_json::json!({"location": "Paris"}));

    let body = gemini(&m, "streamGenerateContent?alt=sse", "", &req)
        .await
        .text()
        .await
        .unwrap();
    let datas: Vec<serde_json::Value> = sse(&body).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(datas.len(), 2, "{body}");
    assert_eq!(
        datas[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"]["location"],
        "Paris"
    );
    assert_eq!(datas[1]["candidates"][0]["finishReason"], "STOP");

    req["contents"] = serde_json::json!([
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": "18C"}}}]}
    ]);
    let resp: serde_json::Value = gemini(&m, "generateContent", "", &req)
        .await
        .json()
        .await
        .unwrap();
    let text = resp["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("18C"), "{text}");

    req["contents"] = gemini_body()["contents"].clone();
    req["toolConfig"] = serde_json::json!({"functionCallingConfig": {"mode": "NONE"}});
    let resp: serde_json::Value = gemini(&m, "generateContent", "", &req)
        .await
        .json()
        .await
        .unwrap();
    assert!(resp["candidates"][0]["content"]["parts"][0]["text"].is_string());
}

#[tokio::test]
async fn gemini_stream_faults() {
    let m = mock().await;
    let r = gemini(
        &m,
        "streamGenerateContent?alt=sse",
        "error_event",
        &gemini_body(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    let err = parse(&events[0].1);
    assert_eq!(err["error"]["code"], 500);
    assert_eq!(err["error"]["status"], "INTERNAL");

    let empty = sse(&gemini(
        &m,
        "streamGenerateContent?alt=sse",
        "empty_stream",
        &gemini_body(),
    )
    .await
    .text()
    .await
    .unwrap());
    assert_eq!(empty.len(), 1);
    assert_eq!(parse(&empty[0].1)["candidates"][0]["finishReason"], "STOP");

    let started = Instant::now();
    let r = gemini(
        &m,
        "streamGenerateContent?alt=sse",
        "stall_after=1,first_chunk_delay_ms=100",
        &gemini_body(),
    )
    .await;
    let mut s = r.bytes_stream();
    let mut body = String::new();
    let waited = tokio::time::timeout(Duration::from_millis(600), async {
        while let Some(Ok(c)) = s.next().await {
            body.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    assert!(waited.is_err(), "a stalled stream must not end");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(body.contains("tok0") && !body.contains("tok1"), "{body}");
}

#[tokio::test]
async fn openai_tool_calls_and_usage() {
    let m = mock().await;
    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/chat/completions", m.addr);
    let mut req = chat(false);
    req["tools"] = serde_json::json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}},
        {"type": "function", "function": {"name": "units", "parameters": {"type": "object",
            "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer"}},
            "required": ["unit", "days"]}}}
    ]);
    let resp: serde_json::Value = c
        .post(&url)
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = parse(call["function"]["arguments"].as_str().unwrap());
    assert_eq!(args, serde_json::json!({"location": "Paris"}));

    req["tool_choice"] = serde_json::json!({"type": "function", "function": {"name": "units"}});
    let resp: serde_json::Value = c
        .post(&url)
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = &resp["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "units");
    assert_eq!(
        parse(call["arguments"].as_str().unwrap()),
        serde_json::json!({"unit": "celsius", "days": 1})
    );

    req["tool_choice"] = serde_json::json!("auto");
    req["stream"] = true.into();
    let body = c
        .post(&url)
        .json(&req)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = data_events(&body);
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|d| parse(d))
        .collect();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["tool_calls"][0]["index"], 0);
    assert!(first["tool_calls"][0]["id"].is_string());
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    let pieces: Vec<&str> = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(pieces.iter().filter(|p| !p.is_empty()).count() >= 2);
    assert_eq!(
        parse(&pieces.concat()),
        serde_json::json!({"location": "Paris"})
    );
    let finish = chunks
        .iter()
        .find(|c| !c["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    req["stream"] = false.into();
    req["messages"] = serde_json::json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": resp["choices"][0]["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_x", "content": "18C and sunny"}
    ]);
    let resp: serde_json::Value = c
        .post(&url)
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert!(resp["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("18C and sunny"));

    req["messages"] = chat(false)["messages"].clone();
    req["tool_choice"] = "none".into();
    let resp: serde_json::Value = c
        .post(&url)
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["choices"][0]["message"]["content"],
        "Hello from the mock provider."
    );
}

// ---------------------------------------------------------------------------------------------
// HTTPS: ALPN and HTTP/2, session resumption, the handshake delay.

async fn mock_tls(alpn: &[&str], handshake_delay: Duration) -> (MockHandle, String) {
    let options = TlsOptions {
        alpn: alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
        handshake_delay,
    };
    switchyard_mock::start_tls_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

/// reqwest with HTTP/2 and rustls, trusting only the mock's CA; it offers ALPN `h2, http/1.1`.
fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn https_url(m: &MockHandle, path: &str) -> String {
    format!("https://localhost:{}{path}", m.addr.port())
}

/// Polls the mock's stats until `done` holds (at most 5 s); false if it never did.
async fn stats_reach(m: &MockHandle, done: impl Fn(&MockStats) -> bool) -> bool {
    for _ in 0..250 {
        if done(&m.stats()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn https_with_alpn_h2_serves_concurrent_requests_over_one_http2_connection() {
    let (m, ca) = mock_tls(&["h2", "http/1.1"], Duration::ZERO).await;
    let client = https_client(&ca);
    let url = https_url(&m, "/v1/chat/completions");
    let first = client.post(&url).json(&chat(false)).send().await.unwrap();
    assert_eq!(first.version(), reqwest::Version::HTTP_2);
    assert_eq!(first.status(), 200);

    // 20 at once, each held 200 ms before its head: in flight together on the one connection.
    let held = futures_util::future::join_all((0..20).map(|_| {
        client
            .post(&url)
            .header("x-mock-fault", "headers_delay_ms=200")
            .json(&chat(false))
            .send()
    }))
    .await;
    for r in held {
        let r = r.unwrap();
        assert_eq!(
            (r.version(), r.status().as_u16()),
            (reqwest::Version::HTTP_2, 200)
        );
    }

    let r = client
        .post(&url)
        .header("x-mock-fault", "chunks=4,chunk_delay_ms=20")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    let events = data_events(&body);
    // role, 4 content, finish, usage, [DONE]
    assert_eq!(events.len(), 8, "{body}");
    let text: String = events[1..5]
        .iter()
        .map(|e| {
            parse(e)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 ");
    assert_eq!(events[7], "[DONE]");

    let s = m.stats();
    assert_eq!(s.total_connections, 1, "{s:?}");
    assert_eq!((s.h2_connections, s.h1_connections), (1, 0), "{s:?}");
    assert_eq!((s.tls_handshakes_full, s.tls_handshakes_resumed), (1, 0));
    assert!(s.max_concurrent_streams > 1, "{s:?}");
    assert_eq!((s.streams_completed, s.streams_reset), (1, 0), "{s:?}");
    let json: serde_json::Value = client
        .get(https_url(&m, "/_mock/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["h2_connections"], 1, "{json}");
    assert_eq!(json["h1_connections"], 0, "{json}");
    assert_eq!(json["tls_handshakes_full"], 1, "{json}");
    assert_eq!(json["tls_handshakes_resumed"], 0, "{json}");
    assert_eq!(json["streams_reset"], 0, "{json}");
    assert!(
        json["max_concurrent_streams"].as_u64().unwrap() > 1,
        "{json}"
    );
}

#[tokio::test]
async fn http2_streams_faults_and_resets() {
    let (m, ca) = mock_tls(&["h2"], Duration::ZERO).await;
    let client = https_client(&ca);
    let url = https_url(&m, "/v1/chat/completions");
    let call = |fault: &'static str, stream: bool| {
        client
            .post(&url)
            .header("x-mock-fault", fault)
            .json(&chat(stream))
            .send()
    };
    let r = call("status=429,retry_after=3", false).await.unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 429)
    );
    assert_eq!(r.headers()["retry-after"], "3");
    let bad = call("malformed", true).await.unwrap().text().await.unwrap();
    assert!(data_events(&bad).contains(&"{not json"));
    let err = call("error_event", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(data_events(&err)[0].contains("\"error\""));
    // Over HTTP/2 the cuts reset the stream, not the connection.
    assert!(call("cut=headers", false).await.is_err());
    let cut = call("cut_after=2", true).await.unwrap();
    assert!(
        cut.text().await.is_err(),
        "a cut stream must not end cleanly"
    );

    let anthropic = client
        .post(https_url(&m, "/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&anthropic_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.version(), reqwest::Version::HTTP_2);
    let events = sse(&anthropic.text().await.unwrap());
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message_stop"));
    let gemini = client
        .post(https_url(
            &m,
            "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
        ))
        .header("x-goog-api-key", "g-test")
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    let events = sse(&gemini.text().await.unwrap());
    assert!(events.last().unwrap().1.contains("finishReason"));

    // The client drops a stream mid-way: its RST_STREAM is counted, the connection stays.
    let before = m.stats();
    assert_eq!(before.streams_reset, 0, "{before:?}");
    let slow = call("chunks=50,chunk_delay_ms=50", true).await.unwrap();
    let mut body = slow.bytes_stream();
    assert!(body.next().await.unwrap().is_ok());
    drop(body);
    let reset = stats_reach(&m, |s| {
        s.streams_reset == 1 && s.streams_cancelled == before.streams_cancelled + 1
    });
    assert!(reset.await, "{:?}", m.stats());
    let s = m.stats();
    assert_eq!((s.total_connections, s.open_connections), (1, 1), "{s:?}");
    assert_eq!(s.h2_connections, 1, "{s:?}");
}

#[tokio::test]
async fn https_with_alpn_http11_and_start_tls_serve_http1() {
    let (m, ca) = mock_tls(&["http/1.1"], Duration::ZERO).await;
    let r = https_client(&ca)
        .get(https_url(&m, "/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_11, 200)
    );
    let s = m.stats();
    assert_eq!((s.h1_connections, s.h2_connections), (1, 0), "{s:?}");
    assert_eq!(s.tls_handshakes_full, 1, "{s:?}");

    // start_tls, as before: no ALPN, HTTP/1.1 to a client that offers h2.
    let (m, ca) = switchyard_mock::start_tls("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let r = https_client(&ca)
        .get(https_url(&m, "/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_11, 200)
    );
    assert_eq!(m.stats().h1_connections, 1);

    // Plain HTTP counts as HTTP/1.1 and no handshake.
    let m = mock().await;
    assert_eq!(call(&m, "", false).await.unwrap().status(), 200);
    let s = m.stats();
    assert_eq!((s.h1_connections, s.tls_handshakes_full), (1, 0), "{s:?}");
}

/// A rustls connector trusting only `ca_pem`, offering no ALPN, one session cache for all its
/// connections.
fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    m: &MockHandle,
    connector: &tokio_rustls::TlsConnector,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(m.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn tls_sessions_resume() {
    use rustls::HandshakeKind::{Full, Resumed};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (m, ca) = mock_tls(&["h2", "http/1.1"], Duration::ZERO).await;
    let connector = tls_connector(&ca);
    for expected in [Full, Resumed] {
        let mut tls = tls_connect(&m, &connector).await;
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(expected));
        tls.write_all(b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        // Reading the answer also takes in the TLS 1.3 tickets the next connection resumes with.
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    }
    let s = m.stats();
    assert_eq!(
        (s.tls_handshakes_full, s.tls_handshakes_resumed),
        (1, 1),
        "{s:?}"
    );
    assert_eq!((s.h1_connections, s.total_connections), (2, 2), "{s:?}");
}

#[tokio::test]
async fn new_connections_pay_the_handshake_delay() {
    let delay = Duration::from_millis(300);
    let (m, ca) = mock_tls(&["h2", "http/1.1"], delay).await;
    let started = Instant::now();
    let _tls = tls_connect(&m, &tls_connector(&ca)).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());

    let client = https_client(&ca);
    let started = Instant::now();
    let r = client
        .get(https_url(&m, "/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    // The next request reuses that connection: no new handshake to pay.
    let r = client
        .get(https_url(&m, "/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = m.stats();
    assert_eq!(
        (s.total_connections, s.tls_handshakes_full),
        (2, 2),
        "{s:?}"
    );
}

// --- Responses API, Azure OpenAI paths, thinking and reasoning --------------------------------

async fn post(
    m: &MockHandle,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}{path}", m.addr))
        .json(body)
        .timeout(Duration::from_secs(10));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn responses_tool() -> serde_json::Value {
    serde_json::json!([{"type": "function", "name": "get_weather", "description": "weather",
                        "parameters": weather_schema()}])
}

/// Checks the Responses stream framing (named events, `type` = name, `sequence_number` 0..)
/// and returns the events' data.
fn responses_events(body: &str) -> Vec<serde_json::Value> {
    assert!(!body.contains("[DONE]"));
    sse(body)
        .iter()
        .enumerate()
        .map(|(i, (name, data))| {
            let d = parse(data);
            assert_eq!(d["type"], name.as_deref().unwrap(), "{d}");
            assert_eq!(d["sequence_number"], i, "{d}");
            d
        })
        .collect()
}

fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn responses_api_json_stream_and_function_calls() {
    let m = mock().await;
    let r = post(
        &m,
        "/v1/responses",
        &[],
        &serde_json::json!({"model": "m", "input": "a b c", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let resp: serde_json::Value = r.json().await.unwrap();
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["model"], "m");
    assert_eq!(resp["instructions"], "Be brief.");
    assert_eq!(resp["output"].as_array().unwrap().len(), 1);
    let item = &resp["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["text"], "Hello from the mock provider.");
    let u = &resp["usage"];
    assert_eq!(u["output_tokens"], 5);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["input_tokens"].as_u64().unwrap() + 5
    );
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);

    // Streamed text.
    let body = serde_json::json!({"model": "m", "input": [{"role": "user", "content": "a b c"}], "stream": true});
    let r = post(&m, "/v1/responses", &[("x-mock-fault", "chunks=3")], &body).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = responses_events(&r.text().await.unwrap());
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], serde_json::json!([]));
    let item_id = events[2]["item"]["id"].as_str().unwrap();
    let text: String = events[4..7]
        .iter()
        .map(|e| {
            assert_eq!(e["item_id"], item_id);
            e["delta"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 ");
    assert_eq!(events[7]["text"], text);
    let done = &events[10]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], text);
    assert_eq!(done["usage"]["output_tokens"], 3);

    // A function call, whole and streamed.
    let ask = serde_json::json!({"model": "m", "input": [{"type": "message", "role": "user", "content": "weather?"}],
                                 "tools": responses_tool()});
    let resp: serde_json::Value = post(&m, "/v1/responses", &[], &ask)
        .await
        .json()
        .await
        .unwrap();
    let call = &resp["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        parse(call["arguments"].as_str().unwrap()),
        serde_json::json!({"location": "Paris"})
    );
    let mut streamed = ask.clone();
    streamed["stream"] = true.into();
    let r = post(&m, "/v1/responses", &[], &streamed).await;
    let events = responses_events(&r.text().await.unwrap());
    let t = types(&events);
    assert_eq!(t[2], "response.output_item.added");
    assert_eq!(events[2]["item"]["type"], "function_call");
    assert_eq!(events[2]["item"]["name"], "get_weather");
    let args: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(parse(&args), serde_json::json!({"location": "Paris"}));
    assert!(t.contains(&"response.function_call_arguments.done"));
    assert!(!t.contains(&"response.output_text.delta"));
    let last = events.last().unwrap();
    assert_eq!(last["response"]["output"][0]["arguments"], args);

    // The tool's output comes back; tool_choice none.
    let back = serde_json::json!({"model": "m", "tools": responses_tool(), "input": [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"}]});
    let resp: serde_json::Value = post(&m, "/v1/responses", &[], &back)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["output"][0]["content"][0]["text"],
        "The tool returned: 18C."
    );
    let mut none = ask.clone();
    none["tool_choice"] = "none".into();
    let resp: serde_json::Value = post(&m, "/v1/responses", &[], &none)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["output"][0]["type"], "message");

    // Faults.
    let r = post(&m, "/fault/status=503/v1/responses", &[], &ask).await;
    assert_eq!(r.status(), 503);
    let err: serde_json::Value = r.json().await.unwrap();
    assert!(err["error"]["message"].is_string());
    let r = post(
        &m,
        "/v1/responses",
        &[("x-mock-fault", "error_event")],
        &streamed,
    )
    .await;
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0.as_deref(), Some("error"));
    assert_eq!(parse(&events[0].1)["code"], "server_error");
    let r = post(
        &m,
        "/v1/responses",
        &[("x-mock-fault", "cut_after=1")],
        &streamed,
    )
    .await;
    assert!(r.text().await.is_err());
}

#[tokio::test]
async fn azure_openai_paths_answer_like_chat() {
    let m = mock().await;
    let key = [("api-key", "azure-key")];
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
    let path = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21";
    let r = post(&m, path, &key, &body).await;
    assert_eq!(r.status(), 200);
    let resp: serde_json::Value = r.json().await.unwrap();
    assert_eq!(resp["object"], "chat.completion");
    assert_eq!(resp["model"], "gpt4o-prod");
    assert_eq!(
        resp["choices"][0]["message"]["content"],
        "Hello from the mock provider."
    );
    let seen = &m.requests()[0];
    assert_eq!(seen.path, path);
    assert_eq!(seen.header("api-key"), Some("azure-key"));

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    streamed["model"] = "gpt-4o".into();
    let r = post(&m, path, &key, &streamed).await;
    let body_text = r.text().await.unwrap();
    let chunks: Vec<serde_json::Value> = data_events(&body_text)
        .into_iter()
        .filter(|d| *d != "[DONE]")
        .map(parse)
        .collect();
    assert_eq!(chunks[0]["model"], "gpt-4o");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "tok0 ");

    let r = post(&m, "/openai/v1/chat/completions", &key, &streamed.clone()).await;
    assert_eq!(r.status(), 200);
    let r = post(&m, "/openai/deployments/d/chat/completions", &key, &body).await;
    assert_eq!(r.status(), 404);
    let r = post(&m, path, &[], &body).await;
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "401");
    let r = post(&m, &format!("/fault/status=429{path}"), &key, &body).await;
    assert_eq!(r.status(), 429);
}

fn thinking_body(stream: bool) -> serde_json::Value {
    serde_json::json!({"model": "claude-test", "max_tokens": 2048, "stream": stream,
                       "thinking": {"type": "enabled", "budget_tokens": 1024},
                       "messages": [{"role": "user", "content": "a b c"}]})
}

#[tokio::test]
async fn anthropic_thinking_blocks_signatures_and_streams() {
    use switchyard_mock::{
        ANTHROPIC_SIGNATURE, REDACTED_THINKING_DATA, REDACTED_THINKING_TRIGGER, THINKING_TEXT,
    };
    let m = mock().await;
    let msg: serde_json::Value = anthropic(&m, "", &thinking_body(false))
        .await
        .json()
        .await
        .unwrap();
    let content = msg["content"].as_array().unwrap();
    assert_eq!(content.len(), 2, "{msg}");
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], THINKING_TEXT);
    assert_eq!(content[0]["signature"], ANTHROPIC_SIGNATURE);
    assert_eq!(content[1]["type"], "text");
    assert_eq!(
        msg["usage"]["output_tokens"],
        5 + switchyard_mock::REASONING_TOKENS
    );
    // Without thinking: no block.
    let plain: serde_json::Value = anthropic(&m, "", &anthropic_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["content"].as_array().unwrap().len(), 1);

    // Streamed: the thinking block (deltas, then the signature), then the text at index 1.
    let r = anthropic(&m, "chunks=2", &thinking_body(true)).await;
    let events = sse(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let d: Vec<serde_json::Value> = events.iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(d[1]["index"], 0);
    assert_eq!(d[1]["content_block"]["type"], "thinking");
    let thought: String = d[3..5]
        .iter()
        .map(|e| {
            assert_eq!(e["delta"]["type"], "thinking_delta");
            e["delta"]["thinking"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(thought, THINKING_TEXT);
    assert_eq!(d[5]["delta"]["type"], "signature_delta");
    assert_eq!(d[5]["delta"]["signature"], ANTHROPIC_SIGNATURE);
    assert_eq!(d[6]["index"], 0);
    assert_eq!(d[7]["index"], 1);
    assert_eq!(d[7]["content_block"]["type"], "text");
    assert_eq!(d[8]["index"], 1);
    assert_eq!(d[10]["index"], 1);
    assert_eq!(
        d[11]["usage"]["output_tokens"],
        2 + switchyard_mock::REASONING_TOKENS
    );

    // The redacted-thinking trigger adds a redacted_thinking block.
    let mut redacted = thinking_body(false);
    redacted["messages"][0]["content"] = REDACTED_THINKING_TRIGGER.into();
    let msg: serde_json::Value = anthropic(&m, "", &redacted).await.json().await.unwrap();
    let kinds: Vec<&str> = msg["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "redacted_thinking", "text"]);
    assert_eq!(msg["content"][1]["data"], REDACTED_THINKING_DATA);
    redacted["stream"] = true.into();
    let events = sse(&anthropic(&m, "chunks=1", &redacted)
        .await
        .text()
        .await
        .unwrap());
    let blocks: Vec<serde_json::Value> = events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("content_block_start"))
        .map(|(_, d)| parse(d))
        .collect();
    assert_eq!(blocks[1]["content_block"]["type"], "redacted_thinking");
    assert_eq!(blocks[1]["content_block"]["data"], REDACTED_THINKING_DATA);
    assert_eq!(blocks[2]["index"], 2);

    // A thinking block sent back must keep the mock's signature.
    let turn = |signature: &str| {
        let mut body = thinking_body(false);
        body["messages"] = serde_json::json!([
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": THINKING_TEXT, "signature": signature},
                {"type": "text", "text": "b"}]},
            {"role": "user", "content": "c"}]);
        body
    };
    assert_eq!(
        anthropic(&m, "", &turn(ANTHROPIC_SIGNATURE)).await.status(),
        200
    );
    let r = anthropic(&m, "", &turn("tampered")).await;
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signature"));
}

#[tokio::test]
async fn openai_and_responses_reasoning_tokens() {
    let m = mock().await;
    let n = switchyard_mock::REASONING_TOKENS as u64;
    let mut body = chat(false);
    body["reasoning_effort"] = "low".into();
    let resp: serde_json::Value = post(&m, "/v1/chat/completions", &[], &body)
        .await
        .json()
        .await
        .unwrap();
    let u = &resp["usage"];
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], n);
    assert_eq!(u["completion_tokens"], 5 + n);
    let mut streamed = chat(true);
    streamed["reasoning_effort"] = "medium".into();
    let text = post(&m, "/v1/chat/completions", &[], &streamed)
        .await
        .text()
        .await
        .unwrap();
    let last = parse(data_events(&text).iter().rev().nth(1).unwrap());
    assert_eq!(
        last["usage"]["completion_tokens_details"]["reasoning_tokens"],
        n
    );
    // No reasoning_effort: no details.
    let resp: serde_json::Value = post(&m, "/v1/chat/completions", &[], &chat(false))
        .await
        .json()
        .await
        .unwrap();
    assert!(resp["usage"]["completion_tokens_details"].is_null());

    let ask = serde_json::json!({"model": "o4-mini", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}});
    let resp: serde_json::Value = post(&m, "/v1/responses", &[], &ask)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["output"][0]["type"], "reasoning");
    assert_eq!(
        resp["output"][0]["summary"][0]["text"],
        switchyard_mock::THINKING_TEXT
    );
    assert_eq!(resp["output"][1]["type"], "message");
    assert_eq!(
        resp["usage"]["output_tokens_details"]["reasoning_tokens"],
        n
    );
    let mut streamed = ask.clone();
    streamed["stream"] = true.into();
    let events = responses_events(
        &post(&m, "/v1/responses", &[], &streamed)
            .await
            .text()
            .await
            .unwrap(),
    );
    let t = types(&events);
    assert_eq!(
        &t[2..8],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done"
        ]
    );
    assert_eq!(events[8]["output_index"], 1);
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["output"][0]["type"], "reasoning");
    assert_eq!(
        done["usage"]["output_tokens_details"]["reasoning_tokens"],
        n
    );
}

#[tokio::test]
async fn gemini_thought_parts_and_signatures() {
    use switchyard_mock::{GEMINI_SIGNATURE, THINKING_TEXT};
    let m = mock().await;
    let mut body = gemini_body();
    body["generationConfig"] =
        serde_json::json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}});
    let resp: serde_json::Value = gemini(&m, "generateContent", "", &body)
        .await
        .json()
        .await
        .unwrap();
    let parts = &resp["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[0]["text"], THINKING_TEXT);
    assert_eq!(parts[0]["thoughtSignature"], GEMINI_SIGNATURE);
    assert_eq!(parts[1]["text"], "Hello from the mock provider.");
    assert!(parts[1]["thought"].is_null());
    assert_eq!(
        resp["usageMetadata"]["thoughtsTokenCount"],
        switchyard_mock::REASONING_TOKENS
    );

    let r = gemini(&m, "streamGenerateContent?alt=sse", "chunks=2", &body).await;
    let events = sse(&r.text().await.unwrap());
    assert_eq!(events.len(), 4);
    let first = parse(&events[0].1);
    assert_eq!(
        first["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert_eq!(
        first["candidates"][0]["content"]["parts"][0]["thoughtSignature"],
        GEMINI_SIGNATURE
    );
    let last = parse(&events[3].1);
    assert_eq!(
        last["usageMetadata"]["thoughtsTokenCount"],
        switchyard_mock::REASONING_TOKENS
    );

    // A function call made while thinking is signed; signatures sent back are checked.
    body["tools"] = serde_json::json!([{"functionDeclarations": [{"name": "get_weather", "parameters": weather_schema()}]}]);
    let resp: serde_json::Value = gemini(&m, "generateContent", "", &body)
        .await
        .json()
        .await
        .unwrap();
    let call = &resp["candidates"][0]["content"]["parts"][1];
    assert_eq!(call["functionCall"]["name"], "get_weather");
    assert_eq!(call["thoughtSignature"], GEMINI_SIGNATURE);
    let back = |sig: &str| {
        serde_json::json!({"contents": [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": sig}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 18}}}]}]})
    };
    assert_eq!(
        gemini(&m, "generateContent", "", &back(GEMINI_SIGNATURE))
            .await
            .status(),
        200
    );
    assert_eq!(
        gemini(
            &m,
            "generateContent",
            "",
            &back("skip_thought_signature_validator")
        )
        .await
        .status(),
        200
    );
    let r = gemini(&m, "generateContent", "", &back("dGFtcGVyZWQ=")).await;
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
}
