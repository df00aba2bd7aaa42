use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::super::super::canonical::*;
use super::super::super::stream::StreamTranslator;
use super::super::super::{ErrorKind, EventClass, ProviderError, TranslateContext};
use super::*;
use crate::upstream::sse::{SseEvent, SseParser};

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn decode(v: Value) -> ChatRequest {
    decode_request(&body(v), "models/gemini-2.5-flash", false).unwrap()
}

fn decode_err(v: Value) -> String {
    match decode_request(&body(v), "m", false) {
        Err(TranslateError::InvalidRequest(m)) => m,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

use super::super::super::TranslateError;

#[test]
fn every_part_type_decodes() {
    let r = decode(json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "Look:"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/y.jpg"}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/doc.pdf"}},
                {"inline_data": {"mime_type": "audio/wav", "data": "UklG"}}
            ]},
            {"role": "model", "parts": [
                {"text": "Let me think", "thought": true, "thoughtSignature": "c2ln"},
                {"text": "Calling."},
                {"functionCall": {"name": "lookup", "args": {"q": "x"}}},
                {"functionCall": {"name": "lookup", "args": {"q": "y"}, "id": "given"}},
                {"function_call": {"name": "other"}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "lookup", "response": {"output": "X"}}},
                {"functionResponse": {"name": "lookup", "id": "given", "response": {"a": 1}}},
                {"function_response": {"name": "other", "response": {"error": "boom"}}},
                {"text": "thanks"}
            ]},
            {"role": "user", "parts": [{"executableCode": {"language": "PYTHON", "code": "1"}}]}
        ]
    }));
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.source, Some(Format::Gemini));
    let m = &r.messages;
    assert_eq!(m[0], Message::text(Role::System, "Be brief."));
    assert_eq!(m[1].role, Role::User);
    assert_eq!(m[1].content[0], ContentPart::Text("Look:".into()));
    assert!(
        matches!(&m[1].content[1], ContentPart::Image { source: ImageSource::Base64 { media_type, data }, .. } if media_type == "image/png" && data == "iVBOR")
    );
    assert!(
        matches!(&m[1].content[2], ContentPart::Image { source: ImageSource::Url(u), .. } if u == "https://x/y.jpg")
    );
    assert!(matches!(&m[1].content[3], ContentPart::Other { kind, .. } if kind == "fileData"));
    assert!(matches!(&m[1].content[4], ContentPart::Other { kind, .. } if kind == "inlineData"));
    let model = &m[2];
    assert_eq!(
        model.content[0],
        ContentPart::Thinking {
            text: "Let me think".into(),
            signature: Some("c2ln".into())
        }
    );
    assert_eq!(model.content[1], ContentPart::Text("Calling.".into()));
    let ids: Vec<&str> = model.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["gemini_call_0", "given", "gemini_call_2"]);
    assert_eq!(model.tool_calls[0].arguments, r#"{"q":"x"}"#);
    assert_eq!(model.tool_calls[2].arguments, "{}");
    // Results: by name (the earliest unanswered `lookup`), by id, by name.
    assert_eq!(m[3].role, Role::Tool);
    assert_eq!(m[3].tool_call_id.as_deref(), Some("gemini_call_0"));
    assert_eq!(m[3].joined_text(), "X");
    assert_eq!(m[4].tool_call_id.as_deref(), Some("given"));
    assert_eq!(m[4].joined_text(), r#"{"a":1}"#);
    assert_eq!(m[5].tool_call_id.as_deref(), Some("gemini_call_2"));
    assert!(m[5].is_error);
    assert_eq!(m[6], Message::text(Role::User, "thanks"));
    assert!(
        matches!(&m[7].content[0], ContentPart::Other { kind, .. } if kind == "executableCode")
    );
}

#[test]
fn results_pair_by_name_in_order_and_orphans_get_ids() {
    let r = decode(json!({"contents": [
        {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {"n": 1}}},
            {"functionCall": {"name": "f", "args": {"n": 2}}}
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {}}},
            {"functionResponse": {"name": "f", "response": {}}},
            {"functionResponse": {"name": "f", "response": {}}}
        ]}
    ]}));
    let ids: Vec<_> = r.messages[1..]
        .iter()
        .map(|m| m.tool_call_id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["gemini_call_0", "gemini_call_1", "gemini_result_0"]);
    // Deterministic: the same request, the same ids.
    let again = decode(json!({"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": 1}}}]}
    ]}));
    assert_eq!(again.messages[0].tool_calls[0].id, "gemini_call_0");
}

#[test]
fn tools_and_tool_configs() {
    let r = decode(json!({
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [
            {"functionDeclarations": [
                {"name": "a", "description": "A", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING", "nullable": true}}, "propertyOrdering": ["x"]}},
                {"name": "b", "parametersJsonSchema": {"type": "object", "additionalProperties": false}}
            ]},
            {"googleSearch": {}},
            {"code_execution": {}},
            {"urlContext": {}}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}}
    }));
    assert_eq!(r.tools.len(), 5);
    assert_eq!(
        r.tools[0].parameters,
        Some(json!({"type": "object", "properties": {"x": {"type": ["string", "null"]}}}))
    );
    assert_eq!(
        r.tools[1].parameters,
        Some(json!({"type": "object", "additionalProperties": false}))
    );
    assert_eq!(r.tools[2].builtin, Some(json!({"googleSearch": {}})));
    assert_eq!(r.tools[3].builtin, Some(json!({"code_execution": {}})));
    assert_eq!(r.tools[4].name, "urlContext");
    assert_eq!(r.tool_choice, Some(ToolChoice::Function("b".into())));
    for (config, choice) in [
        (json!({"mode": "AUTO"}), Some(ToolChoice::Auto)),
        (json!({"mode": "NONE"}), Some(ToolChoice::None)),
        (json!({"mode": "ANY"}), Some(ToolChoice::Required)),
        (
            json!({"mode": "ANY", "allowed_function_names": ["a", "b"]}),
            Some(ToolChoice::Required),
        ),
        (json!({}), None),
    ] {
        let r = decode(json!({"contents": [], "tool_config": {"function_calling_config": config}}));
        assert_eq!(r.tool_choice, choice);
    }
    assert!(decode_err(
        json!({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "SOME"}}})
    )
    .contains("toolConfig.functionCallingConfig.mode"));
}

#[test]
fn generation_and_thinking_config() {
    let r = decode(json!({
        "contents": [],
        "generationConfig": {
            "temperature": 0.5, "topP": 0.9, "topK": 40, "candidateCount": 2,
            "maxOutputTokens": 100, "stopSequences": ["END"], "seed": 7,
            "presencePenalty": 0.1, "frequency_penalty": 0.2,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true, "thinkingLevel": "HIGH"}
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/abc",
        "labels": {"team": "x"}
    }));
    assert_eq!(r.temperature, Some(0.5));
    assert_eq!(r.top_p, Some(0.9));
    assert_eq!(r.top_k, Some(40));
    assert_eq!(r.n, Some(2));
    assert_eq!(r.max_tokens, Some(100));
    assert_eq!(r.stop, ["END"]);
    assert_eq!(r.seed, Some(7));
    assert_eq!(r.presence_penalty, Some(0.1));
    assert_eq!(r.frequency_penalty, Some(0.2));
    assert_eq!(
        r.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            description: None,
            schema: Some(json!({"type": "object", "properties": {"a": {"type": "integer"}}})),
            strict: None,
        })
    );
    assert_eq!(
        r.reasoning,
        Some(Reasoning {
            effort: Some("high".into()),
            budget_tokens: Some(1024),
            include_thoughts: Some(true),
            summary: None,
            disabled: false,
        })
    );
    let keys: Vec<&str> = r.extra.keys().map(String::as_str).collect();
    assert_eq!(keys, ["cachedContent", "labels", "safetySettings"]);
    let off = decode(
        json!({"contents": [], "generation_config": {"response_mime_type": "application/json", "thinking_config": {"thinking_budget": 0}}}),
    );
    assert_eq!(off.response_format, Some(ResponseFormat::JsonObject));
    assert!(off.reasoning.unwrap().disabled);
    let dynamic = decode(
        json!({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}}),
    );
    assert_eq!(dynamic.reasoning.unwrap().budget_tokens, None);
}

#[test]
fn invalid_shapes_are_named() {
    assert!(decode_err(json!({})).starts_with("contents"));
    assert!(decode_err(json!({"contents": {}})).starts_with("contents: expected an array"));
    assert!(
        decode_err(json!({"contents": [{"role": "system", "parts": []}]}))
            .contains("contents[0].role")
    );
    assert!(decode_err(json!({"contents": [{"parts": [{"text": 3}]}]}))
        .contains("contents[0].parts[0].text"));
    assert!(decode_err(
        json!({"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]})
    )
    .contains("functionCall.name"));
    assert!(decode_err(json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]})).contains("functionCall.args"));
    assert!(
        decode_err(json!({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}))
            .contains("\"model\" content")
    );
    assert!(
        decode_err(json!({"contents": [], "generationConfig": {"temperature": "hot"}}))
            .contains("generationConfig.temperature")
    );
    assert!(
        decode_err(json!({"contents": [], "tools": [{"functionDeclarations": [{}]}]}))
            .contains("tools[0].functionDeclarations[0].name")
    );
}

#[test]
fn responses_encode_parts_finish_and_usage() {
    let r = ChatResponse {
        id: "resp_1".into(),
        model: "m1".into(),
        created: None,
        choices: vec![Choice {
            index: 0,
            text: Some("Hi".into()),
            refusal: None,
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
            }],
            finish_reason: Some(FinishReason::ToolCalls),
            thinking: vec![
                ContentPart::Thinking {
                    text: "hmm".into(),
                    signature: Some("sig".into()),
                },
                ContentPart::RedactedThinking { data: "x".into() },
            ],
        }],
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 8,
            cached_tokens: 4,
            cache_creation_tokens: 0,
            reasoning_tokens: 3,
        }),
    };
    assert_eq!(
        encode_response(&r),
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "hmm", "thought": true, "thoughtSignature": "sig"},
                    {"text": "Hi"},
                    {"functionCall": {"id": "call_1", "name": "f", "args": {"a": 1}}}
                ]},
                "finishReason": "STOP",
                "index": 0
            }],
            "modelVersion": "m1",
            "responseId": "resp_1",
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 18, "cachedContentTokenCount": 4, "thoughtsTokenCount": 3}
        })
    );
    // Arguments that are not a JSON object: no call, MALFORMED_FUNCTION_CALL.
    let mut bad = r.clone();
    bad.choices[0].tool_calls[0].arguments = r#"{"a":"#.into();
    let v = encode_response(&bad);
    assert_eq!(
        v["candidates"][0]["finishReason"],
        "MALFORMED_FUNCTION_CALL"
    );
    assert_eq!(
        v["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    bad.choices[0].finish_reason = Some(FinishReason::Length);
    assert_eq!(
        encode_response(&bad)["candidates"][0]["finishReason"],
        "MAX_TOKENS"
    );
    for (reason, name) in [
        (FinishReason::ContentFilter, "SAFETY"),
        (FinishReason::Other("RECITATION".into()), "RECITATION"),
        (FinishReason::Other("pause_turn".into()), "OTHER"),
    ] {
        let mut x = r.clone();
        x.choices[0].finish_reason = Some(reason);
        assert_eq!(encode_response(&x)["candidates"][0]["finishReason"], name);
    }
}

fn events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: Some("r1".into()),
            model: Some("m1".into()),
        },
        StreamEvent::Thinking {
            choice: 0,
            text: "hmm".into(),
        },
        StreamEvent::Text {
            choice: 0,
            text: "Hel".into(),
        },
        StreamEvent::Text {
            choice: 0,
            text: "lo".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "c1".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 0,
            arguments: "{\"a\":".into(),
        },
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 0,
            arguments: "1}".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 5,
            output_tokens: 2,
            ..Usage::default()
        }),
    ]
}

/// The chunks of a client stream in either framing.
fn chunks(out: &[u8], framing: Framing) -> Vec<Value> {
    match framing {
        Framing::JsonArray => match serde_json::from_slice::<Value>(out).unwrap() {
            Value::Array(items) => items,
            other => panic!("not an array: {other}"),
        },
        Framing::Sse => sse(std::str::from_utf8(out).unwrap())
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect(),
    }
}

#[test]
fn the_encoder_writes_both_framings() {
    for framing in [Framing::Sse, Framing::JsonArray] {
        let mut e = ChunkEncoder::new("fallback".into(), "req".into(), framing);
        let mut out = Vec::new();
        let classes: Vec<EventClass> = events()
            .into_iter()
            .map(|ev| e.encode(ev, &mut out))
            .collect();
        use EventClass::*;
        assert_eq!(
            classes,
            [
                Preamble, Content, Content, Content, Preamble, Preamble, Preamble, Content,
                Preamble
            ]
        );
        assert_eq!(e.finish(&mut out), Done);
        assert!(e.ended());
        let c = chunks(&out, framing);
        assert_eq!(c.len(), 5, "{c:?}");
        assert_eq!(
            c[0]["candidates"][0]["content"]["parts"][0],
            json!({"text": "hmm", "thought": true})
        );
        assert_eq!(
            c[1]["candidates"][0]["content"]["parts"][0],
            json!({"text": "Hel"})
        );
        assert_eq!(c[1]["responseId"], "r1");
        assert_eq!(c[1]["modelVersion"], "m1");
        assert_eq!(
            c[3]["candidates"][0]["content"]["parts"][0],
            json!({"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}})
        );
        assert_eq!(c[4]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(c[4]["usageMetadata"]["promptTokenCount"], 5);
        assert!(c[..4]
            .iter()
            .all(|x| x["candidates"][0].get("finishReason").is_none()));
        let mut more = Vec::new();
        assert_eq!(e.finish(&mut more), Done);
        assert!(more.is_empty());
    }
}

#[test]
fn a_cut_stream_and_errors_end_in_both_framings() {
    for framing in [Framing::Sse, Framing::JsonArray] {
        let mut e = ChunkEncoder::new("id".into(), "m".into(), framing);
        let mut out = Vec::new();
        for ev in events().into_iter().take(3) {
            e.encode(ev, &mut out);
        }
        assert_eq!(e.finish(&mut out), EventClass::Error);
        let c = chunks(&out, framing);
        assert_eq!(c.len(), 3);
        assert_eq!(c[2]["error"]["status"], "INTERNAL", "{}", c[2]);
        if framing == Framing::Sse {
            let text = String::from_utf8(out.clone()).unwrap();
            assert!(
                text.starts_with("data: {") && text.ends_with("}\r\n\r\n"),
                "{text}"
            );
            assert_eq!(text.matches("\r\n\r\n").count(), 3);
        }
        assert!(c
            .iter()
            .all(|x| x["candidates"][0].get("finishReason").is_none()));

        // An upstream error event.
        let mut e = ChunkEncoder::new("id".into(), "m".into(), framing);
        let mut out = Vec::new();
        let err = ProviderError::new(ErrorKind::RateLimit, "slow down");
        assert_eq!(
            e.encode(StreamEvent::Error(err.clone()), &mut out),
            EventClass::Error
        );
        let c = chunks(&out, framing);
        assert_eq!(
            c,
            [
                json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
            ]
        );
        assert_eq!(e.encode(StreamEvent::Done, &mut out), EventClass::Preamble);

        // The standalone error.
        let mut out = Vec::new();
        encode_stream_error(&err, framing, &mut out);
        assert_eq!(chunks(&out, framing).len(), 1);
    }
}

fn sse(raw: &str) -> Vec<SseEvent> {
    let mut p = SseParser::new(1 << 20);
    p.push(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        out.push(e);
    }
    out.extend(p.finish());
    out
}

const UPSTREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"abc\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 4,\"candidatesTokenCount\": 2,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"abc\"}\r\n\r\n";

#[test]
fn passthrough_forwards_sse_and_reframes_arrays() {
    let ctx = |framing| TranslateContext {
        include_usage: false,
        requested_model: "m".into(),
        created: 1,
        nonce: "n".into(),
        gemini_framing: framing,
    };
    for framing in [Framing::Sse, Framing::JsonArray] {
        let mut t = StreamTranslator::new(Format::Gemini, ClientFormat::Gemini, &ctx(framing));
        let mut out = Vec::new();
        let classes: Vec<EventClass> = sse(UPSTREAM).iter().map(|e| t.push(e, &mut out)).collect();
        assert_eq!(classes, [EventClass::Content, EventClass::Content]);
        assert_eq!(t.finish(&mut out), EventClass::Done);
        assert_eq!(t.usage().input_tokens, 4);
        assert_eq!(t.model(), Some("gemini-2.5-flash"));
        match framing {
            Framing::Sse => assert_eq!(out, UPSTREAM.as_bytes()),
            Framing::JsonArray => {
                let c = chunks(&out, framing);
                let upstream: Vec<Value> = sse(UPSTREAM)
                    .iter()
                    .map(|e| serde_json::from_str(&e.data).unwrap())
                    .collect();
                assert_eq!(c, upstream);
                assert_eq!(t.content_type(), Some("application/json"));
            }
        }
        // Cut short: the error, in the framing.
        let mut t = StreamTranslator::new(Format::Gemini, ClientFormat::Gemini, &ctx(framing));
        let mut out = Vec::new();
        t.push(&sse(UPSTREAM)[0], &mut out);
        assert_eq!(t.finish(&mut out), EventClass::Error);
        let c = chunks(&out, framing);
        assert_eq!(c.len(), 2);
        assert!(c[1]["error"].is_object());
        // Aborted after the commit point: the error continues (and closes) the array.
        let mut t = StreamTranslator::new(Format::Gemini, ClientFormat::Gemini, &ctx(framing));
        let mut out = Vec::new();
        t.push(&sse(UPSTREAM)[0], &mut out);
        t.abort(&ProviderError::new(ErrorKind::Timeout, "late"), &mut out);
        assert_eq!(chunks(&out, framing).len(), 2);
        // An upstream error chunk ends the stream.
        let mut t = StreamTranslator::new(Format::Gemini, ClientFormat::Gemini, &ctx(framing));
        let mut out = Vec::new();
        let err = sse(
            "data: {\"error\": {\"code\": 500, \"message\": \"x\", \"status\": \"INTERNAL\"}}\n\n",
        );
        assert_eq!(t.push(&err[0], &mut out), EventClass::Error);
        assert_eq!(chunks(&out, framing).len(), 1);
    }
}

#[test]
fn a_translated_whole_response_round_trips_through_the_decoder() {
    // A Gemini response from an OpenAI one, via the public entry point.
    let openai = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
    let ctx = TranslateContext {
        include_usage: false,
        requested_model: "m".into(),
        created: 1,
        nonce: "n".into(),
        gemini_framing: Framing::Sse,
    };
    let t = super::super::super::translate_response(
        Format::OpenAi,
        ClientFormat::Gemini,
        Bytes::from(openai.to_string()),
        &ctx,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&t.body).unwrap();
    let back = super::super::decode_response(&v, "x").unwrap();
    assert_eq!(back.choices[0].text.as_deref(), Some("Hi"));
    assert_eq!(back.usage.unwrap().input_tokens, 3);
}

#[test]
fn array_streams_have_their_own_cache_key() {
    let p = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    assert_eq!(cache_path(p, Some("alt=sse")), p);
    assert_eq!(cache_path(p, None), format!("{p}#array"));
    assert_eq!(
        cache_path("/v1beta/models/g:generateContent", None),
        "/v1beta/models/g:generateContent"
    );
}

#[test]
fn thoughts_streamed_in_pieces_join_until_their_signature() {
    let r = decode(json!({"contents": [{"role": "model", "parts": [
        {"text": "step 1", "thought": true},
        {"text": " step 2", "thought": true},
        {"text": "", "thought": true, "thoughtSignature": "sig"},
        {"text": "second", "thought": true, "thoughtSignature": "sig2"},
        {"thought": true},
        {"text": "third", "thought": true},
        {"thoughtSignature": "sig3"},
        {},
        {"text": "answer"}
    ]}]}));
    assert_eq!(
        r.messages[0].content,
        [
            ContentPart::Thinking {
                text: "step 1 step 2".into(),
                signature: Some("sig".into())
            },
            ContentPart::Thinking {
                text: "second".into(),
                signature: Some("sig2".into())
            },
            ContentPart::Thinking {
                text: "third".into(),
                signature: Some("sig3".into())
            },
            ContentPart::Text("answer".into()),
        ]
    );
}
