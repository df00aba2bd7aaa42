//! Round trips through the Responses API format: what a provider said, translated for a
//! Responses client and then read back as a Responses upstream (into an Anthropic client),
//! says the same — text, tool calls, the stop reason and usage (cache reads and writes
//! included).

use bytes::Bytes;
use serde_json::Value;
use switchyard::providers::{
    translate_response, ClientFormat, Format, StreamTranslator, TranslateContext,
};
use switchyard::upstream::sse::SseParser;

fn ctx() -> TranslateContext {
    TranslateContext {
        include_usage: false,
        requested_model: "m".into(),
        created: 1_700_000_000,
        nonce: "rt".into(),
        gemini_framing: Default::default(),
    }
}

fn golden(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn an_anthropic_response_survives_the_responses_format() {
    let original = golden("openai-to-anthropic/tools.response.in.json");
    let there = translate_response(
        Format::Anthropic,
        ClientFormat::Responses,
        Bytes::from(original.clone()),
        &ctx(),
    )
    .unwrap();
    let back = translate_response(
        Format::Responses,
        ClientFormat::Anthropic,
        there.body,
        &ctx(),
    )
    .unwrap();
    let a: Value = serde_json::from_str(&original).unwrap();
    let b: Value = serde_json::from_slice(&back.body).unwrap();
    assert_eq!(a["content"], b["content"]);
    assert_eq!(a["stop_reason"], b["stop_reason"]);
    assert_eq!(a["model"], b["model"]);
    assert_eq!(a["usage"]["output_tokens"], b["usage"]["output_tokens"]);
    assert_eq!(
        a["usage"]["cache_read_input_tokens"],
        b["usage"]["cache_read_input_tokens"]
    );
    assert_eq!(a["usage"], b["usage"]);
    let total = |u: &Value| {
        [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ]
        .iter()
        .map(|k| u[k].as_u64().unwrap_or(0))
        .sum::<u64>()
    };
    assert_eq!(total(&a["usage"]), total(&b["usage"]));
    assert_eq!(
        there.usage.unwrap().total_tokens(),
        back.usage.unwrap().total_tokens()
    );
}

fn translate_stream(input: &[u8], upstream: Format, client: ClientFormat) -> (Vec<u8>, u64) {
    let mut t = StreamTranslator::new(upstream, client, &ctx());
    let mut p = SseParser::new(1 << 20);
    p.push(input).unwrap();
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        t.push(&e, &mut out);
    }
    t.finish(&mut out);
    (out, t.usage().total_tokens())
}

/// An Anthropic client stream's text, tool calls (name, arguments) and stop reason.
fn assemble_anthropic(bytes: &[u8]) -> (String, Vec<(String, String)>, String) {
    let mut p = SseParser::new(1 << 20);
    p.push(bytes).unwrap();
    let (mut text, mut tools, mut stop) = (String::new(), Vec::new(), String::new());
    while let Some(e) = p.next_event() {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        match v["type"].as_str() {
            Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
                tools.push((
                    v["content_block"]["name"].as_str().unwrap().to_string(),
                    String::new(),
                ))
            }
            Some("content_block_delta") => {
                if let Some(t) = v["delta"]["text"].as_str() {
                    text.push_str(t);
                }
                if let (Some(j), Some(last)) =
                    (v["delta"]["partial_json"].as_str(), tools.last_mut())
                {
                    last.1.push_str(j);
                }
            }
            Some("message_delta") => stop = v["delta"]["stop_reason"].as_str().unwrap_or("").into(),
            _ => {}
        }
    }
    (text, tools, stop)
}

#[test]
fn anthropic_streams_survive_the_responses_format() {
    for case in ["chat", "tools"] {
        let original = golden(&format!("openai-to-anthropic/{case}.stream.in.sse"));
        let (there, usage_there) = translate_stream(
            original.as_bytes(),
            Format::Anthropic,
            ClientFormat::Responses,
        );
        let (back, usage_back) =
            translate_stream(&there, Format::Responses, ClientFormat::Anthropic);
        let want = assemble_anthropic(original.as_bytes());
        assert!(!want.0.is_empty(), "{case}");
        assert_eq!(
            assemble_anthropic(&back),
            want,
            "{case}:\n{}",
            String::from_utf8_lossy(&back)
        );
        assert_eq!(usage_there, usage_back, "{case}");
    }
}
