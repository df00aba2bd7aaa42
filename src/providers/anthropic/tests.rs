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
