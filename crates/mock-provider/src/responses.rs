//! The OpenAI Responses API (`POST /v1/responses`): what it answers, the `response` object and
//! its output items. The stream's events are built here too; `stream` paces and faults them.

use super::*;

/// The answer to a Responses request: a call to the first declared function tool (or the one
/// `tool_choice` names) when the input ends with a user message, the tool's output in text when
/// it ends with a `function_call_output`, else the default text.
pub(crate) fn responses_answer(request: &serde_json::Value) -> Answer {
    let last = match request.get("input") {
        Some(serde_json::Value::String(_)) => None,
        Some(serde_json::Value::Array(items)) => match items.last() {
            Some(item) => Some(item),
            None => return Answer::Default,
        },
        _ => return Answer::Default,
    };
    if let Some(item) = last {
        let kind = item
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("message");
        if kind == "function_call_output" {
            let output = match item.get("output") {
                Some(serde_json::Value::String(s)) => s.clone(),
                other => plain_text(other),
            };
            return tool_result_text(&output);
        }
        if kind != "message" || item.get("role").and_then(|r| r.as_str()) != Some("user") {
            return Answer::Default;
        }
    }
    let choice = request.get("tool_choice");
    if choice.and_then(|c| c.as_str()) == Some("none") {
        return Answer::Default;
    }
    let forced = choice
        .filter(|c| c.get("type").and_then(|t| t.as_str()) == Some("function"))
        .and_then(|c| c.get("name"))
        .and_then(|n| n.as_str());
    let declared = request
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(|t| t.as_str()) == Some("function"))
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?.to_string();
            Some((name, t.get("parameters").cloned().unwrap_or_default()))
        })
        .collect();
    call_tool(declared, forced).unwrap_or(Answer::Default)
}

pub(crate) fn response_id(id: u64) -> String {
    format!("resp_mock_{id}")
}

pub(crate) fn message_item_id(id: u64) -> String {
    format!("msg_mock_{id}")
}

pub(crate) fn function_item_id(id: u64) -> String {
    format!("fc_mock_{id}")
}

pub(crate) fn reasoning_item_id(id: u64) -> String {
    format!("rs_mock_{id}")
}

/// The Responses usage object.
pub(crate) fn responses_usage(input: usize, output: usize, reasoning: usize) -> serde_json::Value {
    serde_json::json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output + reasoning,
    })
}

/// The `reasoning` output item (its summary only when the request asked for one).
pub(crate) fn reasoning_item(id: u64, thinking: Thinking, done: bool) -> serde_json::Value {
    let summary = if thinking.visible && done {
        serde_json::json!([{"type": "summary_text", "text": THINKING_TEXT}])
    } else {
        serde_json::json!([])
    };
    serde_json::json!({"type": "reasoning", "id": reasoning_item_id(id), "summary": summary})
}

/// The answer's output item: a `message` with one `output_text` part, or a `function_call`;
/// `done` false is its in-progress shape (no text, no arguments).
pub(crate) fn answer_item(id: u64, answer: &Answer, text: &str, done: bool) -> serde_json::Value {
    let status = if done { "completed" } else { "in_progress" };
    match answer {
        Answer::ToolCall { name, args } => serde_json::json!({
            "type": "function_call", "id": function_item_id(id), "call_id": format!("call_mock_{id}"),
            "name": name, "arguments": if done { args.to_string() } else { String::new() }, "status": status,
        }),
        _ => {
            let content = if done {
                serde_json::json!([output_text_part(text)])
            } else {
                serde_json::json!([])
            };
            serde_json::json!({
                "type": "message", "id": message_item_id(id), "status": status, "role": "assistant",
                "content": content,
            })
        }
    }
}

pub(crate) fn output_text_part(text: &str) -> serde_json::Value {
    serde_json::json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `response` object: `output` and `usage` as given, the rest echoed from the request.
pub(crate) fn response_object(
    request: &serde_json::Value,
    id: u64,
    status: &str,
    output: Vec<serde_json::Value>,
    usage: Option<serde_json::Value>,
) -> serde_json::Value {
    let echo =
        |name: &str, default: serde_json::Value| request.get(name).cloned().unwrap_or(default);
    let null = serde_json::Value::Null;
    serde_json::json!({
        "id": response_id(id),
        "object": "response",
        "created_at": now(),
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": echo("instructions", null.clone()),
        "max_output_tokens": echo("max_output_tokens", null.clone()),
        "model": model_of(request),
        "output": output,
        "parallel_tool_calls": echo("parallel_tool_calls", true.into()),
        "previous_response_id": echo("previous_response_id", null.clone()),
        "reasoning": echo("reasoning", serde_json::json!({"effort": null, "summary": null})),
        "store": echo("store", true.into()),
        "temperature": echo("temperature", 1.0.into()),
        "text": echo("text", serde_json::json!({"format": {"type": "text"}})),
        "tool_choice": echo("tool_choice", "auto".into()),
        "tools": echo("tools", serde_json::json!([])),
        "top_p": echo("top_p", 1.0.into()),
        "truncation": echo("truncation", "disabled".into()),
        "usage": usage,
        "user": echo("user", null.clone()),
        "metadata": echo("metadata", serde_json::json!({})),
    })
}

/// The whole (non-streaming) answer.
pub(crate) fn responses(
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    answer: &Answer,
) -> serde_json::Value {
    let thinking = responses_thinking(request);
    let mut output = Vec::new();
    if thinking.on {
        output.push(reasoning_item(id, thinking, true));
    }
    output.push(answer_item(id, answer, &answer.text(fault), true));
    let usage = responses_usage(
        prompt_tokens(request),
        answer.tokens(fault),
        thinking.tokens(),
    );
    response_object(request, id, "completed", output, Some(usage))
}
