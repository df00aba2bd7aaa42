//! Round trips through two formats: a request, response or stream translated A → B and then
//! B → A comes back as it was (system prompts, images, tools, tool calls and results, sampling
//! parameters), and what cannot survive a format is refused or dropped as documented.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use switchyard::config::ProviderKind;
use switchyard::providers::{
    decode_response, encode_response, translate_response, ClientFormat, DecodedRequest, Format,
    StreamTranslator, TranslateContext, TranslateError,
};
use switchyard::upstream::sse::SseParser;

fn encode(client: ClientFormat, body: &Value, kind: ProviderKind) -> Result<Value, TranslateError> {
    let d = DecodedRequest::decode(client, Bytes::from(body.to_string()))?;
    let e = d.encode(kind, &Map::new(), None)?;
    Ok(serde_json::from_slice(&e.body).unwrap())
}

#[test]
fn openai_request_survives_anthropic() {
    let original = json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Describe both."},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": "Calling tools.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":2}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": "two"},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "f", "description": "d",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        }}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["x"],
        "max_completion_tokens": 100,
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "u"
    });
    let anthropic = encode(ClientFormat::OpenAi, &original, ProviderKind::Anthropic).unwrap();
    // The tool results and the user's text share one user turn, results first.
    assert_eq!(anthropic["messages"].as_array().unwrap().len(), 3);
    assert_eq!(anthropic["messages"][2]["content"][2]["text"], "Thanks");
    let back = encode(ClientFormat::Anthropic, &anthropic, ProviderKind::OpenAi).unwrap();
    assert_eq!(back, original);
}

#[test]
fn anthropic_request_survives_openai() {
    let original = json!({
        "model": "m",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "text", "text": "What?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"},
                {"type": "text", "text": "And?"}
            ]}
        ],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["x"],
        "stream": true,
        "metadata": {"user_id": "u"}
    });
    // An OpenAI-compatible server keeps top_k and max_tokens.
    let openai = encode(
        ClientFormat::Anthropic,
        &original,
        ProviderKind::OpenAiCompatible,
    )
    .unwrap();
    assert_eq!(openai["top_k"], 5);
    assert_eq!(openai["max_tokens"], 100);
    let back = encode(ClientFormat::OpenAi, &openai, ProviderKind::Anthropic).unwrap();
    assert_eq!(back, original);
    // OpenAI itself takes neither top_k nor max_tokens for translated requests.
    let strict = encode(ClientFormat::Anthropic, &original, ProviderKind::OpenAi).unwrap();
    assert!(strict.get("top_k").is_none());
    assert_eq!(strict["max_completion_tokens"], 100);
}

#[test]
fn what_a_format_cannot_carry_is_refused_or_dropped() {
    let with_document = json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
            {"type": "text", "text": "Summarise"}
        ]}]
    });
    for kind in [ProviderKind::OpenAi, ProviderKind::Gemini] {
        assert!(matches!(
            encode(ClientFormat::Anthropic, &with_document, kind),
            Err(TranslateError::Unsupported { .. })
        ));
    }
    // Same format: untouched.
    assert_eq!(
        encode(
            ClientFormat::Anthropic,
            &with_document,
            ProviderKind::Anthropic
        )
        .unwrap(),
        with_document
    );

    let image_result = json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
            ]}]}
        ]
    });
    assert!(encode(ClientFormat::Anthropic, &image_result, ProviderKind::OpenAi).is_err());
    assert!(encode(ClientFormat::Anthropic, &image_result, ProviderKind::Gemini).is_err());

    let server_tool = json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": "search"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    });
    assert!(encode(ClientFormat::Anthropic, &server_tool, ProviderKind::OpenAi).is_err());

    let many = json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": "hi"}]});
    assert!(encode(ClientFormat::OpenAi, &many, ProviderKind::Anthropic).is_err());
    assert_eq!(
        encode(ClientFormat::OpenAi, &many, ProviderKind::Gemini).unwrap()["generationConfig"]
            ["candidateCount"],
        3
    );

    // Dropped, not refused: is_error and thinking through OpenAI; JSON mode to Anthropic.
    let thinking = json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": true}]}
        ]
    });
    let openai = encode(ClientFormat::Anthropic, &thinking, ProviderKind::OpenAi).unwrap();
    assert_eq!(openai["messages"][1]["content"], Value::Null);
    assert_eq!(
        openai["messages"][2],
        json!({"role": "tool", "tool_call_id": "t", "content": "boom"})
    );
    let json_mode = json!({"model": "m", "messages": [{"role": "user", "content": "q"}], "response_format": {"type": "json_object"}});
    let anthropic = encode(ClientFormat::OpenAi, &json_mode, ProviderKind::Anthropic).unwrap();
    assert!(anthropic.get("response_format").is_none());
    assert_eq!(anthropic["max_tokens"], 4096);
}

fn ctx() -> TranslateContext {
    TranslateContext {
        include_usage: true,
        requested_model: "m".into(),
        created: 1_700_000_000,
        nonce: "rt".into(),
        gemini_framing: Default::default(),
    }
}

#[test]
fn responses_survive_a_round_trip() {
    let original = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "Checking.", "refusal": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]
        }, "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 64},
                  "completion_tokens_details": {"reasoning_tokens": 0}}
    });
    let anthropic = translate_response(
        Format::OpenAi,
        ClientFormat::Anthropic,
        Bytes::from(original.to_string()),
        &ctx(),
    )
    .unwrap();
    let decoded = decode_response(Format::Anthropic, &anthropic.body, "x").unwrap();
    let back: Value =
        serde_json::from_slice(&encode_response(ClientFormat::OpenAi, &decoded, &ctx())).unwrap();
    assert_eq!(back, original);
    assert_eq!(anthropic.usage, decoded.usage);
}

/// Text, tool calls and finish reasons of an OpenAI stream, as a client would assemble them.
fn assemble_openai(bytes: &[u8]) -> (String, Vec<(String, String, String)>, Vec<String>) {
    let mut p = SseParser::new(1 << 20);
    p.push(bytes).unwrap();
    let mut text = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finishes = Vec::new();
    while let Some(e) = p.next_event() {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        for c in v["choices"].as_array().into_iter().flatten() {
            if let Some(t) = c["delta"]["content"].as_str() {
                text.push_str(t);
            }
            for t in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let i = t["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = t["id"].as_str() {
                    calls[i].0 = id.into();
                }
                if let Some(n) = t["function"]["name"].as_str() {
                    calls[i].1 = n.into();
                }
                if let Some(a) = t["function"]["arguments"].as_str() {
                    calls[i].2.push_str(a);
                }
            }
            if let Some(f) = c["finish_reason"].as_str() {
                finishes.push(f.to_string());
            }
        }
    }
    (text, calls, finishes)
}

fn translate_stream(
    upstream: Format,
    client: ClientFormat,
    input: &[u8],
) -> (Vec<u8>, StreamTranslator) {
    let mut t = StreamTranslator::new(upstream, client, &ctx());
    let mut p = SseParser::new(1 << 20);
    p.push(input).unwrap();
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        t.push(&e, &mut out);
    }
    if let Some(e) = p.finish() {
        t.push(&e, &mut out);
    }
    t.finish(&mut out);
    (out, t)
}

#[test]
fn streams_survive_a_round_trip() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in ["chat", "tools"] {
        let openai =
            std::fs::read(dir.join(format!("anthropic-to-openai/{case}.stream.in.sse"))).unwrap();
        let (anthropic, first) = translate_stream(Format::OpenAi, ClientFormat::Anthropic, &openai);
        let (back, second) = translate_stream(Format::Anthropic, ClientFormat::OpenAi, &anthropic);
        assert_eq!(assemble_openai(&back), assemble_openai(&openai), "{case}");
        assert_eq!(first.usage(), second.usage(), "{case}");
        assert_eq!(second.model(), first.model(), "{case}");
    }
}
