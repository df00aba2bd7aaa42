//! Tests of the Anthropic wire format: tool results through decode and encode, and usage.

use serde_json::{json, Value};

use super::*;

#[test]
fn tool_results_split_and_merge_back() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "25C"}], "is_error": false},
                {"type": "text", "text": "Thanks"}
            ]}
        ],
        "metadata": {"user_id": "u-1"},
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
    });
    let req = decode_request(body.as_object().unwrap()).unwrap();
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Tool,
            Role::User
        ]
    );
    assert_eq!(req.user.as_deref(), Some("u-1"));
    assert_eq!(req.parallel_tool_calls, Some(false));
    let out = Value::Object(encode_request(&req).unwrap());
    assert_eq!(out["system"], "You are terse.");
    let msgs = out["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(msgs[2]["content"][1]["content"], "25C");
    assert_eq!(msgs[2]["content"][2]["text"], "Thanks");
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
}

#[test]
fn usage_counts_cache_as_input() {
    let u = decode_usage(&json!({
        "input_tokens": 10, "output_tokens": 5,
        "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20
    }));
    assert_eq!(u.input_tokens, 130);
    assert_eq!(u.cached_tokens, 100);
    assert_eq!(encode_usage(&u)["input_tokens"], 10);
}

mod thinking {
    use serde_json::{json, Value};

    use super::super::stream::{EventDecoder, EventEncoder};
    use super::super::*;
    use crate::providers::{openai, EventClass};
    use crate::upstream::sse::SseEvent;

    fn openai_req(body: Value) -> ChatRequest {
        openai::decode_request(body.as_object().unwrap()).unwrap()
    }

    fn encode(req: &ChatRequest) -> Value {
        Value::Object(encode_request(req).unwrap())
    }

    #[test]
    fn thinking_and_redacted_blocks_decode_and_replay_to_anthropic() {
        let body = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 16000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Use the tool.", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "enc-1"},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
            ]
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                budget_tokens: Some(10000),
                include_thoughts: Some(true),
                ..Reasoning::default()
            })
        );
        assert_eq!(
            req.messages[1].content,
            vec![
                ContentPart::Thinking {
                    text: "Use the tool.".into(),
                    signature: Some("sig-1".into())
                },
                ContentPart::RedactedThinking {
                    data: "enc-1".into()
                }
            ]
        );
        let out = encode(&req);
        assert_eq!(out["thinking"], body["thinking"]);
        assert_eq!(out["max_tokens"], 16000);
        assert_eq!(
            out["messages"][1]["content"],
            body["messages"][1]["content"]
        );
    }

    #[test]
    fn effort_becomes_a_budget_within_anthropic_rules() {
        let req = openai_req(json!({
            "model": "o3", "reasoning_effort": "high", "temperature": 0.3, "top_p": 0.5,
            "messages": [{"role": "user", "content": "Think."}]
        }));
        let out = encode(&req);
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 24576})
        );
        // No max_tokens from the client: the budget plus room for the answer.
        assert_eq!(out["max_tokens"], 24576 + DEFAULT_MAX_TOKENS);
        assert!(out.get("temperature").is_none());
        assert_eq!(out["top_p"], 0.95);

        // The client's limit is shared: the budget goes below it.
        let req = openai_req(json!({
            "model": "o3", "reasoning_effort": "high", "max_completion_tokens": 5000,
            "messages": [{"role": "user", "content": "Think."}]
        }));
        let out = encode(&req);
        assert_eq!(out["max_tokens"], 5000);
        assert_eq!(out["thinking"]["budget_tokens"], 4999);

        // Too small for the minimum budget: the limit is raised by it.
        let req = openai_req(json!({
            "model": "o3", "reasoning_effort": "low", "max_tokens": 300,
            "messages": [{"role": "user", "content": "Think."}]
        }));
        let out = encode(&req);
        assert_eq!(out["thinking"]["budget_tokens"], 1024);
        assert_eq!(out["max_tokens"], 1324);

        // `none` turns thinking off: Anthropic's default, so nothing is sent (adaptive-only
        // models refuse `{type: disabled}`).
        let req = openai_req(json!({
            "model": "gpt-5.1", "reasoning_effort": "none", "temperature": 0.3,
            "messages": [{"role": "user", "content": "Hi"}]
        }));
        assert!(req.reasoning.as_ref().unwrap().disabled);
        let out = encode(&req);
        assert!(out.get("thinking").is_none());
        assert_eq!(out["temperature"], 0.3);
    }

    #[test]
    fn adaptive_thinking_and_its_effort() {
        let body = json!({
            "model": "claude-opus-4-7", "max_tokens": 8000,
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"},
            "messages": [{"role": "user", "content": "Think."}]
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        let r = req.reasoning.clone().unwrap();
        assert_eq!((r.effort.as_deref(), r.budget_tokens), (Some("max"), None));
        // Re-encoded for Anthropic as the client wrote it.
        let out = encode(&req);
        assert_eq!(out["thinking"], body["thinking"]);
        assert_eq!(out["output_config"], body["output_config"]);
        let oa = openai::encode_request(&req, crate::vocab::ProviderKind::OpenAi).unwrap();
        assert_eq!(oa["reasoning_effort"], "high");
        // A thinking type this codec does not know stays the client's own field.
        let body = json!({
            "model": "claude-next", "max_tokens": 8000, "thinking": {"type": "auto"},
            "messages": [{"role": "user", "content": "Hi"}]
        });
        let req = decode_request(body.as_object().unwrap()).unwrap();
        assert_eq!(req.reasoning, None);
        assert_eq!(encode(&req)["thinking"], body["thinking"]);
        // An effort without thinking asks for none.
        let body = json!({
            "model": "claude-opus-4-7", "max_tokens": 8000, "output_config": {"effort": "low"},
            "messages": [{"role": "user", "content": "Hi"}]
        });
        assert_eq!(
            decode_request(body.as_object().unwrap()).unwrap().reasoning,
            None
        );
    }

    #[test]
    fn thinking_is_left_out_where_anthropic_would_refuse_it() {
        // A forced tool call.
        let req = openai_req(json!({
            "model": "o3", "reasoning_effort": "medium", "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "messages": [{"role": "user", "content": "Call f."}]
        }));
        let out = encode(&req);
        assert!(out.get("thinking").is_none());
        assert_eq!(out["tool_choice"], json!({"type": "any"}));
        assert_eq!(out["temperature"], 0.2);

        // A tool loop whose assistant turn has no (signed) thinking: the reasoning
        // OpenAI-compatible history carries is dropped.
        let req = openai_req(json!({
            "model": "o3", "reasoning_effort": "medium",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "reasoning_content": "Use w.",
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "18C"}
            ]
        }));
        assert!(matches!(
            &req.messages[1].content[0],
            ContentPart::Thinking {
                signature: None,
                ..
            }
        ));
        let out = encode(&req);
        assert!(out.get("thinking").is_none());
        assert_eq!(out["messages"][1]["content"][0]["type"], "tool_use");

        // Text after the tool results is still the same tool loop.
        let mut req = req;
        req.messages
            .push(Message::text(Role::User, "And tomorrow?"));
        assert!(encode(&req).get("thinking").is_none());
        // Once the loop is answered, a new user turn gets thinking again.
        req.messages.pop();
        req.messages
            .push(Message::text(Role::Assistant, "18C in Paris."));
        req.messages
            .push(Message::text(Role::User, "And tomorrow?"));
        let out = encode(&req);
        assert_eq!(out["thinking"]["type"], "enabled");
    }

    #[test]
    fn responses_keep_thinking_before_the_text() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "enc"},
                {"type": "text", "text": "Yes."}
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 9}
        });
        let r = decode_response(&body).unwrap();
        assert_eq!(r.choices[0].thinking.len(), 2);
        let out = encode_response(&r);
        assert_eq!(out["content"], body["content"]);
        // Reasoning without a signature (another format's) gets an empty one.
        let mut r = r;
        r.choices[0].thinking = vec![ContentPart::Thinking {
            text: "Hmm.".into(),
            signature: None,
        }];
        let out = encode_response(&r);
        assert_eq!(
            out["content"][0],
            json!({"type": "thinking", "thinking": "Hmm.", "signature": ""})
        );
    }

    fn sse(name: &str, data: Value) -> SseEvent {
        SseEvent {
            event: Some(name.into()),
            data: data.to_string(),
            id: None,
            raw: bytes::Bytes::new(),
        }
    }

    #[test]
    fn stream_thinking_decodes_and_encodes_as_blocks() {
        let mut d = EventDecoder::default();
        let mut events = Vec::new();
        for (name, data) in [
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me"}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "enc"}}),
            ),
        ] {
            d.decode(&sse(name, data), &mut events);
        }
        assert_eq!(
            events,
            vec![
                StreamEvent::Thinking {
                    choice: 0,
                    text: "Let me".into()
                },
                StreamEvent::ThinkingSignature {
                    choice: 0,
                    signature: "sig".into()
                },
                StreamEvent::RedactedThinking {
                    choice: 0,
                    data: "enc".into()
                },
            ]
        );
        let mut e = EventEncoder::new("msg_1".into(), "m".into());
        let mut out = Vec::new();
        let mut classes = Vec::new();
        events.push(StreamEvent::Thinking {
            choice: 0,
            text: "More".into(),
        });
        events.push(StreamEvent::Text {
            choice: 0,
            text: "Answer".into(),
        });
        for ev in events {
            classes.push(e.encode(ev, &mut out));
        }
        assert!(classes.iter().all(|c| *c == EventClass::Content));
        let text = String::from_utf8(out).unwrap();
        let blocks: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("data: "))
            .map(|l| &l[6..])
            .collect();
        let types: Vec<String> = blocks
            .iter()
            .map(|b| {
                let v: Value = serde_json::from_str(b).unwrap();
                format!(
                    "{}:{}{}",
                    v["type"].as_str().unwrap(),
                    v["index"],
                    v["content_block"]["type"]
                        .as_str()
                        .or(v["delta"]["type"].as_str())
                        .map(|t| format!(":{t}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            types,
            [
                "message_start:null",
                "content_block_start:0:thinking",
                "content_block_delta:0:thinking_delta",
                "content_block_delta:0:signature_delta",
                "content_block_stop:0",
                "content_block_start:1:redacted_thinking",
                "content_block_stop:1",
                "content_block_start:2:thinking",
                "content_block_delta:2:thinking_delta",
                "content_block_stop:2",
                "content_block_start:3:text",
                "content_block_delta:3:text_delta",
            ]
        );
    }

    #[test]
    fn thinking_events_commit_a_passthrough_stream() {
        let delta = sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}}),
        );
        assert_eq!(classify_event(&delta), EventClass::Content);
        let redacted = sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "e"}}),
        );
        assert_eq!(classify_event(&redacted), EventClass::Content);
        let empty = sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        );
        assert_eq!(classify_event(&empty), EventClass::Preamble);
    }
}
