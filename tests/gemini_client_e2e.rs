//! A Gemini client (`google-genai`'s routes) through the real gateway: the `?key=` query is
//! accepted as a virtual key and never forwarded upstream; `alt=sse` streams are server-sent
//! events, streams without it one JSON array served as `application/json`; a Gemini client is
//! translated for an OpenAI provider.

#[path = "support/gateway.rs"]
mod harness;

use harness::{client, mock, Gateway};
use serde_json::{json, Value};

fn config(addr: std::net::SocketAddr) -> String {
    format!(
        "providers:
  gem: {{ kind: gemini, base_url: \"http://{addr}\", api_key: sk-gem-upstream }}
  oai: {{ kind: openai, base_url: \"http://{addr}/v1\", api_key: sk-oai }}
virtual_keys:
  vk-gem: {{ provider: gem }}
  vk-oai: {{ provider: oai }}
  vk-cached: {{ provider: gem, config: cached }}
configs:
  cached:
    cache: {{ mode: simple, max_age: 60 }}
    virtual_key: vk-gem
"
    )
}

fn body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "generationConfig": {"maxOutputTokens": 32}
    })
}

/// The text of a stream's chunks and how many finish reasons they carry.
fn text_and_finishes(chunks: &[Value]) -> (String, usize) {
    let mut text = String::new();
    let mut finishes = 0;
    for c in chunks {
        assert!(c.get("error").is_none(), "{c}");
        for cand in c["candidates"].as_array().unwrap() {
            for p in cand["content"]["parts"].as_array().into_iter().flatten() {
                text.push_str(p["text"].as_str().unwrap_or(""));
            }
            finishes += usize::from(cand.get("finishReason").is_some());
        }
    }
    (text, finishes)
}

#[tokio::test]
async fn a_gemini_client_key_is_a_virtual_key_and_both_framings_stream() {
    let m = mock().await;
    let gw = Gateway::start(&config(m.addr)).await;
    let http = client();
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

    // alt=sse: server-sent events.
    let resp = http
        .post(gw.url(&format!("{path}?alt=sse&key=vk-gem")))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let sse = resp.text().await.unwrap();
    let chunks: Vec<Value> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let (sse_text, finishes) = text_and_finishes(&chunks);
    assert!(!sse_text.is_empty(), "{sse}");
    assert_eq!(finishes, 1, "{sse}");

    // No alt: one JSON array, as application/json.
    let resp = http
        .post(gw.url(&format!("{path}?key=vk-gem")))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let array: Value = resp.json().await.unwrap();
    let (array_text, finishes) = text_and_finishes(array.as_array().unwrap());
    assert_eq!(array_text, sse_text);
    assert_eq!(finishes, 1);

    // The key never went upstream: the provider's credential did, in the header; the upstream
    // was always asked for SSE.
    let reqs = m.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert!(!r.path.contains("key="), "{}", r.path);
        assert!(!r.path.contains("vk-gem"), "{}", r.path);
        assert!(
            r.path.ends_with(":streamGenerateContent?alt=sse"),
            "{}",
            r.path
        );
        assert_eq!(r.header("x-goog-api-key"), Some("sk-gem-upstream"));
        assert!(r.headers.iter().all(|(_, v)| !v.contains("vk-gem")));
        assert_eq!(r.json().unwrap(), body());
    }

    // A wrong key is refused in Google's error shape.
    let resp = http
        .post(gw.url(&format!("{path}?alt=sse&key=vk-nope")))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["status"].is_string(), "{v}");
    assert_eq!(m.requests().len(), 2);
}

#[tokio::test]
async fn a_gemini_client_is_translated_for_an_openai_provider() {
    let m = mock().await;
    let gw = Gateway::start(&config(m.addr)).await;
    let http = client();
    // Whole response.
    let resp = http
        .post(gw.url("/v1beta/models/gemini-2.5-flash:generateContent?key=vk-oai"))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "STOP", "{v}");
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"].is_string(),
        "{v}"
    );
    assert!(v["usageMetadata"]["promptTokenCount"].is_u64(), "{v}");
    // Array stream.
    let resp = http
        .post(gw.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=vk-oai"))
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let array: Value = resp.json().await.unwrap();
    let chunks = array.as_array().unwrap();
    let (text, finishes) = text_and_finishes(chunks);
    assert!(!text.is_empty());
    assert_eq!(finishes, 1);
    assert!(chunks.last().unwrap()["usageMetadata"].is_object());
    let reqs = m.requests();
    let oai = reqs.last().unwrap();
    assert!(oai.path.starts_with("/v1/chat/completions"), "{}", oai.path);
    assert_eq!(oai.header("authorization"), Some("Bearer sk-oai"));
    let sent = oai.json().unwrap();
    assert_eq!(sent["model"], "gemini-2.5-flash");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["max_completion_tokens"], 32);
}

#[tokio::test]
async fn cached_gemini_streams_replay_in_their_own_framing() {
    let m = mock().await;
    let gw = Gateway::start(&config(m.addr)).await;
    let http = client();
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    let send = |query: &'static str| {
        let req = http
            .post(gw.url(&format!("{path}?{query}")))
            .json(&body())
            .send();
        async move {
            let resp = req.await.unwrap();
            assert_eq!(resp.status(), 200);
            let status = resp
                .headers()
                .get("x-portkey-cache-status")
                .map(|v| v.to_str().unwrap().to_string());
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            (status, ct, resp.text().await.unwrap())
        }
    };
    let (first, ct, array) = send("key=vk-cached").await;
    assert_eq!(first.as_deref(), Some("MISS"));
    assert!(ct.starts_with("application/json"));
    let (second, ct, replayed) = send("key=vk-cached").await;
    assert_eq!(second.as_deref(), Some("HIT"), "{replayed}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(
        serde_json::from_str::<Value>(&replayed).unwrap(),
        serde_json::from_str::<Value>(&array).unwrap()
    );
    // The same call with alt=sse is another entry: never the array.
    let (third, ct, sse) = send("alt=sse&key=vk-cached").await;
    assert_eq!(third.as_deref(), Some("MISS"));
    assert!(ct.starts_with("text/event-stream"));
    assert!(sse.starts_with("data: "), "{sse}");
    let (fourth, ct, sse_again) = send("alt=sse&key=vk-cached").await;
    assert_eq!(fourth.as_deref(), Some("HIT"));
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(sse_again, sse);
    assert_eq!(m.requests().len(), 2);
}
