//! Property tests for translation: stream translation never panics on arbitrary or garbled
//! upstream input and never emits an event sequence the client's format forbids (checked by a
//! small validator per client format); passthrough streams only ever forward whole upstream
//! events; request, response and error decoding never panic on arbitrary JSON or bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use switchyard::config::ProviderKind;
use switchyard::providers::{
    decode_error, decode_response, translate_response, ClientFormat, DecodedRequest, ErrorKind,
    Format, ProviderError, StreamTranslator, TranslateContext,
};
use switchyard::upstream::sse::{SseEvent, SseParser};

mod responses_stream;
use responses_stream::validate_responses;

// ---------------------------------------------------------------------------------------------
// Validators

fn parse_sse(bytes: &[u8]) -> Vec<SseEvent> {
    let mut p = SseParser::new(1 << 24);
    p.push(bytes).expect("our own events are small");
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        out.push(e);
    }
    assert!(
        p.finish().is_none(),
        "output does not end on an event boundary: {:?}",
        String::from_utf8_lossy(bytes)
    );
    out
}

#[derive(Default)]
struct OaChoice {
    role: bool,
    finished: bool,
    tools: BTreeSet<u64>,
}

/// Checks an OpenAI `chat.completion.chunk` stream as a client sees it.
fn validate_openai(bytes: &[u8], include_usage: bool) -> Result<(), String> {
    let mut id: Option<String> = None;
    let mut choices: BTreeMap<u64, OaChoice> = BTreeMap::new();
    let mut usage_chunks = 0;
    let mut ended = false;
    let mut done = false;
    for e in parse_sse(bytes) {
        if e.event.is_none() && e.data.is_empty() {
            continue; // a comment
        }
        if ended {
            return Err(format!("event after the end: {:?}", e.data));
        }
        if e.event.is_some() {
            return Err(format!("OpenAI streams have no event names: {:?}", e.event));
        }
        if e.is_done() {
            ended = true;
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(&e.data).map_err(|x| format!("not JSON: {x}"))?;
        if let Some(err) = v.get("error") {
            if !err.get("message").is_some_and(Value::is_string) {
                return Err(format!("error without a message: {v}"));
            }
            ended = true;
            continue;
        }
        if v["object"] != "chat.completion.chunk" {
            return Err(format!("not a chunk: {v}"));
        }
        let this_id = v["id"].as_str().ok_or("chunk without id")?.to_string();
        match &id {
            None => id = Some(this_id),
            Some(first) if *first != this_id => {
                return Err(format!("id changed: {first} → {this_id}"))
            }
            _ => {}
        }
        let cs = v["choices"].as_array().ok_or("chunk without choices")?;
        if cs.is_empty() {
            if !v["usage"].is_object() {
                return Err("empty choices without usage".into());
            }
            if !include_usage {
                return Err("usage chunk the client did not ask for".into());
            }
            if choices.values().any(|c| !c.finished) {
                return Err("usage chunk before every choice finished".into());
            }
            usage_chunks += 1;
            continue;
        }
        if usage_chunks > 0 {
            return Err("choice chunk after the usage chunk".into());
        }
        for c in cs {
            let index = c["index"].as_u64().ok_or("choice without index")?;
            let state = choices.entry(index).or_default();
            if state.finished {
                return Err(format!("choice {index} continued after its finish"));
            }
            let delta = c["delta"].as_object().ok_or("choice without delta")?;
            if delta.contains_key("role") {
                if state.role {
                    return Err(format!("choice {index}: role sent twice"));
                }
                if delta["role"] != "assistant" {
                    return Err("role is not assistant".into());
                }
                state.role = true;
            } else if !state.role {
                return Err(format!("choice {index}: content before role"));
            }
            if let Some(calls) = delta.get("tool_calls") {
                for call in calls.as_array().ok_or("tool_calls not an array")? {
                    let ti = call["index"].as_u64().ok_or("tool call without index")?;
                    let first = state.tools.insert(ti);
                    let has_id = call.get("id").is_some_and(Value::is_string);
                    let has_name = call["function"]["name"].is_string();
                    if first && !(has_id && has_name && call["type"] == "function") {
                        return Err(format!("first delta of tool {ti} lacks id/name/type"));
                    }
                    if !first && (has_id || has_name) {
                        return Err(format!("tool {ti} announced twice"));
                    }
                }
            }
            match &c["finish_reason"] {
                Value::Null => {}
                Value::String(r) => {
                    if !["stop", "length", "tool_calls", "content_filter"].contains(&r.as_str()) {
                        return Err(format!("unknown finish_reason {r}"));
                    }
                    state.finished = true;
                }
                other => return Err(format!("finish_reason {other}")),
            }
        }
    }
    if !ended {
        return Err("stream ends without [DONE] or an error".into());
    }
    if done {
        if choices.is_empty() {
            return Err("[DONE] without any choice".into());
        }
        if choices.values().any(|c| !c.finished) {
            return Err("[DONE] before every choice finished".into());
        }
        if usage_chunks != usize::from(include_usage) {
            return Err(format!("{usage_chunks} usage chunks"));
        }
    }
    Ok(())
}

/// Checks an Anthropic Messages stream as a client sees it.
fn validate_anthropic(bytes: &[u8]) -> Result<(), String> {
    let mut started = false;
    let mut next_block = 0u64;
    let mut open: Option<(u64, String)> = None;
    let mut delta_seen = false;
    let mut ended = false;
    for e in parse_sse(bytes) {
        if e.event.is_none() && e.data.is_empty() {
            continue;
        }
        if ended {
            return Err(format!("event after the end: {:?}", e.data));
        }
        let v: Value = serde_json::from_str(&e.data).map_err(|x| format!("not JSON: {x}"))?;
        let kind = v["type"].as_str().ok_or("event without type")?;
        if e.event.as_deref() != Some(kind) {
            return Err(format!("event name {:?} ≠ type {kind}", e.event));
        }
        if kind == "error" {
            if !v["error"]["type"].is_string() || !v["error"]["message"].is_string() {
                return Err(format!("malformed error: {v}"));
            }
            ended = true;
            continue;
        }
        if kind != "message_start" && kind != "ping" && !started {
            return Err(format!("{kind} before message_start"));
        }
        match kind {
            "message_start" => {
                if started {
                    return Err("message_start twice".into());
                }
                let m = &v["message"];
                if m["role"] != "assistant" || !m["id"].is_string() || !m["usage"].is_object() {
                    return Err(format!("malformed message_start: {v}"));
                }
                started = true;
            }
            "ping" => {}
            "content_block_start" => {
                if delta_seen {
                    return Err("block after message_delta".into());
                }
                if let Some((i, _)) = &open {
                    return Err(format!("block started while block {i} is open"));
                }
                let index = v["index"].as_u64().ok_or("start without index")?;
                if index != next_block {
                    return Err(format!("block index {index}, expected {next_block}"));
                }
                let bt = v["content_block"]["type"]
                    .as_str()
                    .ok_or("block without type")?;
                match bt {
                    "text" | "thinking" => {}
                    "redacted_thinking" => {
                        if !v["content_block"]["data"].is_string() {
                            return Err(format!("malformed redacted_thinking start: {v}"));
                        }
                    }
                    "tool_use" => {
                        let b = &v["content_block"];
                        if !b["id"].is_string() || !b["name"].is_string() || !b["input"].is_object()
                        {
                            return Err(format!("malformed tool_use start: {v}"));
                        }
                    }
                    other => return Err(format!("unexpected block type {other}")),
                }
                open = Some((index, bt.to_string()));
                next_block += 1;
            }
            "content_block_delta" => {
                let index = v["index"].as_u64().ok_or("delta without index")?;
                let Some((oi, bt)) = &open else {
                    return Err("delta with no open block".into());
                };
                if *oi != index {
                    return Err(format!("delta for block {index}, open is {oi}"));
                }
                let dt = v["delta"]["type"].as_str().ok_or("delta without type")?;
                let ok = match (bt.as_str(), dt) {
                    ("text", "text_delta") => v["delta"]["text"].is_string(),
                    ("tool_use", "input_json_delta") => v["delta"]["partial_json"].is_string(),
                    ("thinking", "thinking_delta") => v["delta"]["thinking"].is_string(),
                    ("thinking", "signature_delta") => v["delta"]["signature"].is_string(),
                    _ => false,
                };
                if !ok {
                    return Err(format!("{dt} in a {bt} block"));
                }
            }
            "content_block_stop" => {
                let index = v["index"].as_u64().ok_or("stop without index")?;
                match &open {
                    Some((oi, _)) if *oi == index => open = None,
                    _ => return Err(format!("stop for block {index} that is not open")),
                }
            }
            "message_delta" => {
                if open.is_some() {
                    return Err("message_delta with a block open".into());
                }
                if delta_seen {
                    return Err("message_delta twice".into());
                }
                let r = v["delta"]["stop_reason"].as_str().ok_or("no stop_reason")?;
                if ![
                    "end_turn",
                    "max_tokens",
                    "stop_sequence",
                    "tool_use",
                    "refusal",
                    "pause_turn",
                ]
                .contains(&r)
                {
                    return Err(format!("unknown stop_reason {r}"));
                }
                if !v["usage"]["output_tokens"].is_u64() {
                    return Err("message_delta without output_tokens".into());
                }
                delta_seen = true;
            }
            "message_stop" => {
                if !delta_seen {
                    return Err("message_stop before message_delta".into());
                }
                ended = true;
            }
            other => return Err(format!("unknown event {other}")),
        }
    }
    if !ended {
        return Err("stream ends without message_stop or an error".into());
    }
    Ok(())
}

fn validate(client: ClientFormat, bytes: &[u8], include_usage: bool) -> Result<(), String> {
    match client {
        ClientFormat::OpenAi => validate_openai(bytes, include_usage),
        ClientFormat::Anthropic => validate_anthropic(bytes),
        ClientFormat::Gemini => validate_gemini(bytes).map(|_| ()),
        ClientFormat::Responses => validate_responses(bytes).map(|_| ()),
    }
}

/// The elements of a Gemini client stream, whichever its framing (an array starts with `[`
/// and must be one complete JSON document; SSE events must be whole, unnamed JSON objects).
fn gemini_elements(bytes: &[u8]) -> Result<Vec<Value>, String> {
    if bytes.first() == Some(&b'[') {
        return match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(other) => Err(format!("not an array: {other}")),
            Err(e) => Err(format!("the array is not a complete JSON document: {e}")),
        };
    }
    let mut out = Vec::new();
    for e in parse_sse(bytes) {
        if e.event.is_some() {
            return Err(format!("Gemini streams have no event names: {:?}", e.event));
        }
        match serde_json::from_str::<Value>(&e.data) {
            Ok(v @ Value::Object(_)) => out.push(v),
            _ => return Err(format!("not a JSON object: {:?}", e.data)),
        }
    }
    Ok(out)
}

/// Checks a Gemini client stream (`GenerateContentResponse` chunks, either framing): every
/// chunk well formed, finish reasons only in the last chunk and exactly one per candidate
/// there, or a final `{"error": {code, message, status}}`. Returns the answer's text (choice
/// 0, thoughts excluded) as reassembled from the chunks.
fn validate_gemini(bytes: &[u8]) -> Result<String, String> {
    let elements = gemini_elements(bytes)?;
    if elements.is_empty() {
        return Err("an empty stream".into());
    }
    let mut text = String::new();
    let last = elements.len() - 1;
    for (i, v) in elements.iter().enumerate() {
        if let Some(err) = v.get("error") {
            let ok =
                err["code"].is_u64() && err["message"].is_string() && err["status"].is_string();
            if !ok || v.as_object().map_or(0, |o| o.len()) != 1 {
                return Err(format!("a malformed error: {v}"));
            }
            if i != last {
                return Err("an element after the error".into());
            }
            return Ok(text);
        }
        let candidates = v["candidates"]
            .as_array()
            .ok_or_else(|| format!("no candidates: {v}"))?;
        if !v["responseId"].is_string() || !v["modelVersion"].is_string() {
            return Err(format!("no responseId/modelVersion: {v}"));
        }
        if let Some(u) = v.get("usageMetadata") {
            if !u["promptTokenCount"].is_u64() || !u["totalTokenCount"].is_u64() {
                return Err(format!("malformed usageMetadata: {u}"));
            }
        }
        let mut seen = BTreeSet::new();
        for c in candidates {
            let index = c["index"]
                .as_u64()
                .ok_or_else(|| format!("no index: {c}"))?;
            if !seen.insert(index) {
                return Err(format!("candidate {index} twice in a chunk"));
            }
            if c["content"]["role"] != "model" {
                return Err(format!("not a model content: {c}"));
            }
            let parts = c["content"]["parts"]
                .as_array()
                .ok_or_else(|| format!("no parts: {c}"))?;
            for p in parts {
                if let Some(call) = p.get("functionCall") {
                    if !call["name"].is_string() || !call["args"].is_object() {
                        return Err(format!("a malformed functionCall: {p}"));
                    }
                } else if let Some(t) = p["text"].as_str() {
                    if index == 0 && p.get("thought").is_none() {
                        text.push_str(t);
                    }
                } else {
                    return Err(format!("a part that is neither text nor a call: {p}"));
                }
            }
            let finish = c.get("finishReason");
            match (finish, i == last) {
                (Some(f), true) if f.is_string() => {}
                (None, true) => return Err(format!("candidate {index} not finished at the end")),
                (Some(_), _) => return Err(format!("a finishReason before the last chunk: {v}")),
                (None, false) => {}
            }
        }
        if i == last && candidates.is_empty() {
            return Err("the last chunk finishes no candidate".into());
        }
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Upstream events as (event name, data).
type Pool = Vec<(Option<String>, String)>;

/// Realistic upstream events of `format`, from the golden fixtures.
fn pool(format: Format) -> Pool {
    static POOLS: OnceLock<Vec<Pool>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        [
            Format::OpenAi,
            Format::Anthropic,
            Format::Gemini,
            Format::Responses,
        ]
        .into_iter()
        .map(read_pool)
        .collect()
    });
    match format {
        Format::OpenAi => pools[0].clone(),
        Format::Anthropic => pools[1].clone(),
        Format::Gemini => pools[2].clone(),
        Format::Responses => pools[3].clone(),
    }
}

fn read_pool(format: Format) -> Pool {
    // Each format's upstream streams, thinking/reasoning ones included.
    let dirs: &[&str] = match format {
        Format::OpenAi => &["anthropic-to-openai", "anthropic-thinking-to-openai"],
        Format::Anthropic => &["openai-to-anthropic", "openai-reasoning-to-anthropic"],
        Format::Gemini => &["openai-to-gemini", "anthropic-thinking-to-gemini"],
        Format::Responses => &["responses-to-responses"],
    };
    let mut out = Vec::new();
    for dir in dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(golden().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            if path.to_string_lossy().ends_with(".stream.in.sse") {
                for e in parse_sse(&std::fs::read(&path).unwrap()) {
                    out.push((e.event, e.data));
                }
            }
        }
    }
    assert!(!out.is_empty());
    out
}

const KEYS: &[&str] = &[
    "type",
    "index",
    "delta",
    "choices",
    "content",
    "content_block",
    "text",
    "partial_json",
    "tool_calls",
    "id",
    "name",
    "function",
    "arguments",
    "finish_reason",
    "stop_reason",
    "usage",
    "error",
    "message",
    "candidates",
    "parts",
    "functionCall",
    "args",
    "finishReason",
    "usageMetadata",
    "role",
    "model",
    "input_tokens",
    "output_tokens",
    "prompt_tokens",
    "promptTokenCount",
    "thought",
    "promptFeedback",
    "blockReason",
    "responseId",
    "thinking",
    "signature",
    "data",
    "reasoning_content",
    "reasoning",
    "thoughtSignature",
    "thoughtsTokenCount",
];

const WORDS: &[&str] = &[
    "text",
    "tool_use",
    "text_delta",
    "input_json_delta",
    "message_start",
    "message_delta",
    "message_stop",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "ping",
    "error",
    "stop",
    "length",
    "tool_calls",
    "end_turn",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "assistant",
    "thinking",
    "redacted_thinking",
    "thinking_delta",
    "signature_delta",
    "[DONE]",
    "",
    "{\"a\":",
    "x",
];

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..5).prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e3f64..1e3).prop_map(|f| json!(f)),
        proptest::sample::select(WORDS).prop_map(|w| json!(w)),
        ".{0,8}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(|kvs| {
                Value::Object(
                    kvs.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Sets `key = value` in the object reached by following the first object-valued child
/// `depth` times (or the deepest object on the way).
fn mutate(v: &mut Value, depth: usize, key: &str, value: Value) {
    let has_child = |c: &Value| c.is_object() || c.is_array();
    if depth > 0 {
        match v {
            Value::Object(m) => {
                if let Some(child) = m.values_mut().find(|c| has_child(c)) {
                    return mutate(child, depth - 1, key, value);
                }
            }
            Value::Array(a) => {
                if let Some(child) = a.iter_mut().find(|c| has_child(c)) {
                    return mutate(child, depth - 1, key, value);
                }
            }
            _ => {}
        }
    }
    match v {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => a.push(value),
        other => *other = value,
    }
}

/// One upstream event, as SSE text.
fn arb_event(pool: Pool) -> impl Strategy<Value = String> {
    let n = pool.len();
    let pool2 = pool.clone();
    let names = prop::option::of(proptest::sample::select(WORDS));
    prop_oneof![
        // A realistic event.
        4 => (0..n).prop_map(move |i| sse(&pool[i].0, &pool[i].1)),
        // A realistic event with one field changed.
        4 => (0..n, 0usize..4, proptest::sample::select(KEYS), arb_json()).prop_map(
            move |(i, depth, key, value)| {
                let (name, data) = &pool2[i];
                match serde_json::from_str::<Value>(data) {
                    Ok(mut v) => {
                        mutate(&mut v, depth, key, value);
                        sse(name, &v.to_string())
                    }
                    Err(_) => sse(name, data),
                }
            }
        ),
        // Random JSON, with or without an event name.
        2 => (names, arb_json()).prop_map(|(name, v)| sse(&name.map(str::to_string), &v.to_string())),
        // Random text.
        1 => ".{0,40}".prop_map(|s| format!("data: {s}\n\n")),
        1 => Just("data: [DONE]\n\n".to_string()),
        1 => Just(": keep-alive\n\n".to_string()),
    ]
}

fn sse(name: &Option<String>, data: &str) -> String {
    let mut s = String::new();
    if let Some(n) = name {
        s.push_str("event: ");
        s.push_str(&n.replace(['\n', '\r'], ""));
        s.push('\n');
    }
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line.trim_end_matches('\r'));
        s.push('\n');
    }
    s.push('\n');
    s
}

struct Run {
    out: Vec<u8>,
    usage_ok: bool,
}

/// Feeds `input` in `chunk`-byte reads; aborts before event `abort_at` if given.
fn run(
    upstream: Format,
    client: ClientFormat,
    include_usage: bool,
    input: &[u8],
    chunk: usize,
    abort_at: Option<usize>,
) -> Run {
    let ctx = TranslateContext {
        include_usage,
        requested_model: "m".into(),
        created: 1,
        nonce: "n".into(),
        gemini_framing: Default::default(),
    };
    let mut t = StreamTranslator::new(upstream, client, &ctx);
    let mut parser = SseParser::new(1 << 20);
    let mut out = Vec::new();
    let mut seen = 0usize;
    let passthrough = t.is_passthrough();
    let mut push = |e: SseEvent, t: &mut StreamTranslator, out: &mut Vec<u8>| {
        if abort_at == Some(seen) {
            t.abort(&ProviderError::new(ErrorKind::Timeout, "idle timeout"), out);
        }
        seen += 1;
        let ended_before = t.is_ended();
        let before = out.len();
        t.push(&e, out);
        let written = &out[before..];
        if passthrough {
            // Whole upstream events or nothing.
            assert!(
                written.is_empty() || written == e.raw.as_ref(),
                "passthrough wrote something else than the event"
            );
            if include_usage && !ended_before {
                assert_eq!(written, e.raw.as_ref(), "passthrough dropped an event");
            }
        }
    };
    for piece in input.chunks(chunk.max(1)) {
        if parser.push(piece).is_err() {
            break;
        }
        while let Some(e) = parser.next_event() {
            push(e, &mut t, &mut out);
        }
    }
    if let Some(e) = parser.finish() {
        push(e, &mut t, &mut out);
    }
    t.finish(&mut out);
    // Finishing twice writes nothing more.
    let len = out.len();
    t.finish(&mut out);
    assert_eq!(out.len(), len);
    let u = t.usage();
    Run {
        out,
        usage_ok: u.cached_tokens <= u.input_tokens.max(u.cached_tokens)
            && u.total_tokens() >= u.output_tokens,
    }
}

const TRANSLATED: &[(Format, ClientFormat)] = &[
    (Format::Anthropic, ClientFormat::OpenAi),
    (Format::Gemini, ClientFormat::OpenAi),
    (Format::OpenAi, ClientFormat::Anthropic),
    (Format::Gemini, ClientFormat::Anthropic),
    (Format::OpenAi, ClientFormat::Responses),
    (Format::Anthropic, ClientFormat::Responses),
    (Format::Gemini, ClientFormat::Responses),
    (Format::Responses, ClientFormat::OpenAi),
    (Format::Responses, ClientFormat::Anthropic),
];

fn arb_stream(upstream: Format) -> impl Strategy<Value = String> {
    prop::collection::vec(arb_event(pool(upstream)), 0..24).prop_map(|evs| evs.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn translated_streams_are_always_valid(
        (pair, input) in (0..TRANSLATED.len())
            .prop_flat_map(|p| (Just(p), arb_stream(TRANSLATED[p].0))),
        include_usage in any::<bool>(),
        chunk in 1usize..64,
        abort in prop::option::of(0usize..24),
    ) {
        let (upstream, client) = TRANSLATED[pair];
        let r = run(upstream, client, include_usage, input.as_bytes(), chunk, abort);
        prop_assert!(r.usage_ok);
        if let Err(e) = validate(client, &r.out, include_usage) {
            return Err(TestCaseError::fail(format!(
                "{e}\n--- input ---\n{input}\n--- output ---\n{}",
                String::from_utf8_lossy(&r.out)
            )));
        }
    }

    #[test]
    fn garbage_bytes_never_panic(
        pair in 0..6usize,
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        include_usage in any::<bool>(),
        chunk in 1usize..32,
    ) {
        let pairs = [
            (Format::OpenAi, ClientFormat::OpenAi),
            (Format::Anthropic, ClientFormat::Anthropic),
            TRANSLATED[0], TRANSLATED[1], TRANSLATED[2], TRANSLATED[3],
        ];
        let (upstream, client) = pairs[pair];
        let r = run(upstream, client, include_usage, &bytes, chunk, None);
        if upstream != client.format() {
            prop_assert!(validate(client, &r.out, include_usage).is_ok());
        }
    }

    #[test]
    fn passthrough_streams_forward_whole_events(
        (anthropic, input) in any::<bool>().prop_flat_map(|a| {
            (Just(a), arb_stream(if a { Format::Anthropic } else { Format::OpenAi }))
        }),
        include_usage in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let (upstream, client) = if anthropic {
            (Format::Anthropic, ClientFormat::Anthropic)
        } else {
            (Format::OpenAi, ClientFormat::OpenAi)
        };
        // The assertions are inside `run`.
        run(upstream, client, include_usage, input.as_bytes(), chunk, None);
    }

    #[test]
    fn request_decoding_never_panics(body in arb_json(), messages in arb_json(), anthropic in any::<bool>()) {
        let mut obj = match body {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("x".into(), other);
                m
            }
        };
        obj.insert("messages".into(), match messages {
            Value::Array(a) => Value::Array(a),
            other => json!([other]),
        });
        let client = if anthropic { ClientFormat::Anthropic } else { ClientFormat::OpenAi };
        if let Ok(d) = DecodedRequest::decode(client, Bytes::from(Value::Object(obj).to_string())) {
            for kind in [
                ProviderKind::OpenAi,
                ProviderKind::AzureOpenAi,
                ProviderKind::OpenAiCompatible,
                ProviderKind::Anthropic,
                ProviderKind::Gemini,
            ] {
                let _ = d.encode(kind, &Map::new(), Some("m"));
            }
        }
    }

    #[test]
    fn response_and_error_decoding_never_panic(v in arb_json(), bytes in prop::collection::vec(any::<u8>(), 0..128), status in any::<u16>()) {
        let text = v.to_string();
        for format in [Format::OpenAi, Format::Anthropic, Format::Gemini] {
            let _ = decode_response(format, text.as_bytes(), "id");
            let err = decode_error(format, status, text.as_bytes());
            prop_assert!((400..=599).contains(&err.status));
            let _ = decode_error(format, status, &bytes);
            for client in [ClientFormat::OpenAi, ClientFormat::Anthropic] {
                let ctx = TranslateContext {
                    include_usage: false,
                    requested_model: "m".into(),
                    created: 1,
                    nonce: "n".into(),
                    gemini_framing: Default::default(),
                };
                if let Ok(t) = translate_response(format, client, Bytes::from(text.clone()), &ctx) {
                    prop_assert!(serde_json::from_slice::<Value>(&t.body).is_ok() || format == client.format());
                }
                let (s, _) = switchyard::providers::encode_error(client, &err);
                prop_assert!((400..=599).contains(&s));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The validators themselves, and every golden output against them.

#[test]
fn golden_outputs_pass_the_validators() {
    let mut n = 0;
    for pair in [
        "openai-to-openai",
        "openai-to-anthropic",
        "openai-to-gemini",
        "anthropic-to-anthropic",
        "anthropic-to-openai",
        "anthropic-to-gemini",
        "anthropic-thinking-to-anthropic",
        "anthropic-thinking-to-openai",
        "openai-reasoning-to-anthropic",
        "anthropic-thinking-to-gemini",
        "openai-reasoning-to-gemini",
    ] {
        let client = if pair.starts_with("openai") {
            ClientFormat::OpenAi
        } else {
            ClientFormat::Anthropic
        };
        for entry in std::fs::read_dir(golden().join(pair)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            let Some(case) = name.strip_suffix(".stream.out.sse") else {
                continue;
            };
            let ctx_path = PathBuf::from(format!("{case}.stream.ctx.json"));
            let include_usage = ctx_path.exists()
                && serde_json::from_str::<Value>(&std::fs::read_to_string(&ctx_path).unwrap())
                    .unwrap()["include_usage"]
                    == true;
            let out = std::fs::read(&path).unwrap();
            validate(client, &out, include_usage).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
    }
    assert!(n >= 12);
}

#[test]
fn the_validators_reject_forbidden_sequences() {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let role = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let text = chunk(json!({"content": "hi"}), Value::Null);
    let stop = chunk(json!({}), json!("stop"));
    let ok = format!("{role}{text}{stop}data: [DONE]\n\n");
    assert!(validate_openai(ok.as_bytes(), false).is_ok());
    for bad in [
        format!("{text}{stop}data: [DONE]\n\n"), // content before role
        format!("{role}{text}data: [DONE]\n\n"), // no finish
        format!("{role}{stop}{stop}data: [DONE]\n\n"), // two finishes
        format!("{role}{text}{stop}data: [DONE]\n\ndata: [DONE]\n\n"), // DONE twice
        format!("{role}{text}{stop}"),           // no DONE
    ] {
        assert!(validate_openai(bad.as_bytes(), false).is_err(), "{bad}");
    }
    let usage = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{}}\n\n";
    let with_usage = format!("{role}{text}{stop}{usage}data: [DONE]\n\n");
    assert!(validate_openai(with_usage.as_bytes(), true).is_ok());
    assert!(validate_openai(with_usage.as_bytes(), false).is_err());

    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let start = ev(
        json!({"type": "message_start", "message": {"id": "m", "role": "assistant", "usage": {}}}),
    );
    let bstart = ev(
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    let bdelta = ev(
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
    );
    let bstop = ev(json!({"type": "content_block_stop", "index": 0}));
    let mdelta = ev(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
    );
    let mstop = ev(json!({"type": "message_stop"}));
    let ok = format!("{start}{bstart}{bdelta}{bstop}{mdelta}{mstop}");
    assert!(validate_anthropic(ok.as_bytes()).is_ok());
    for bad in [
        format!("{bstart}{bdelta}{bstop}{mdelta}{mstop}"), // no message_start
        format!("{start}{bdelta}{bstop}{mdelta}{mstop}"),  // delta outside a block
        format!("{start}{bstart}{bdelta}{mdelta}{mstop}"), // block never stopped
        format!("{start}{bstart}{bstart}{bdelta}{bstop}{mdelta}{mstop}"), // nested start
        format!("{start}{bstart}{bdelta}{bstop}{mstop}"),  // no message_delta
        format!("{start}{bstart}{bdelta}{bstop}{mdelta}{mstop}{mstop}"), // stop twice
    ] {
        assert!(validate_anthropic(bad.as_bytes()).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini clients, in both framings.

use switchyard::providers::gemini::client::Framing;
use switchyard::providers::request::PathCall;

/// Feeds `input` to a translator for a Gemini client in `framing`; aborts before event
/// `abort_at` if given. Finishing twice writes nothing more.
fn run_gemini(
    upstream: Format,
    framing: Framing,
    input: &[u8],
    chunk: usize,
    abort_at: Option<usize>,
) -> Vec<u8> {
    let ctx = TranslateContext {
        include_usage: false,
        requested_model: "m".into(),
        created: 1,
        nonce: "n".into(),
        gemini_framing: framing,
    };
    let mut t = StreamTranslator::new(upstream, ClientFormat::Gemini, &ctx);
    let mut parser = SseParser::new(1 << 20);
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut push = |e: SseEvent, t: &mut StreamTranslator, out: &mut Vec<u8>| {
        if abort_at == Some(seen) {
            t.abort(&ProviderError::new(ErrorKind::Timeout, "idle timeout"), out);
        }
        seen += 1;
        t.push(&e, out);
    };
    for piece in input.chunks(chunk.max(1)) {
        if parser.push(piece).is_err() {
            break;
        }
        while let Some(e) = parser.next_event() {
            push(e, &mut t, &mut out);
        }
    }
    if let Some(e) = parser.finish() {
        push(e, &mut t, &mut out);
    }
    t.finish(&mut out);
    let len = out.len();
    t.finish(&mut out);
    assert_eq!(out.len(), len);
    out
}

fn framing_of(array: bool) -> Framing {
    if array {
        Framing::JsonArray
    } else {
        Framing::Sse
    }
}

/// A well-formed upstream stream of `format` whose answer is `deltas`, in order.
fn upstream_text_stream(format: Format, deltas: &[String]) -> String {
    let mut s = String::new();
    let mut ev =
        |name: Option<&str>, v: Value| s.push_str(&sse(&name.map(str::to_string), &v.to_string()));
    match format {
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            ev(
                None,
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            );
            for d in deltas {
                ev(None, chunk(json!({"content": d}), Value::Null));
            }
            ev(None, chunk(json!({}), json!("stop")));
            ev(
                None,
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt", "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
            );
            s.push_str("data: [DONE]\n\n");
        }
        Format::Anthropic => {
            ev(
                Some("message_start"),
                json!({"type": "message_start", "message": {"id": "msg", "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            );
            ev(
                Some("content_block_start"),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for d in deltas {
                ev(
                    Some("content_block_delta"),
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}),
                );
            }
            ev(
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            );
            ev(
                Some("message_delta"),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            );
            ev(Some("message_stop"), json!({"type": "message_stop"}));
        }
        Format::Gemini | Format::Responses => {
            let n = deltas.len();
            for (i, d) in deltas.iter().enumerate() {
                let mut c =
                    json!({"content": {"role": "model", "parts": [{"text": d}]}, "index": 0});
                let mut v = json!({"modelVersion": "g", "responseId": "r"});
                if i + 1 == n {
                    c["finishReason"] = json!("STOP");
                    v["usageMetadata"] = json!({"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5});
                }
                v["candidates"] = json!([c]);
                ev(None, v);
            }
        }
    }
    s
}

const GEMINI_UPSTREAMS: &[Format] = &[Format::OpenAi, Format::Anthropic, Format::Gemini];

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Translated streams for a Gemini client are valid in both framings, whatever the
    /// upstream sends, however it is cut or aborted.
    #[test]
    fn gemini_client_streams_are_always_valid(
        (upstream, input) in prop::sample::select(&[Format::OpenAi, Format::Anthropic][..])
            .prop_flat_map(|f| (Just(f), arb_stream(f))),
        array in any::<bool>(),
        chunk in 1usize..64,
        abort in prop::option::of(0usize..24),
    ) {
        let out = run_gemini(upstream, framing_of(array), input.as_bytes(), chunk, abort);
        if let Err(e) = validate(ClientFormat::Gemini, &out, false) {
            return Err(TestCaseError::fail(format!(
                "{e}\n--- input ---\n{input}\n--- output ---\n{}",
                String::from_utf8_lossy(&out)
            )));
        }
    }

    /// The text a Gemini client reassembles is exactly the upstream's, from every upstream
    /// format, in both framings: no chunk lost or reordered, one finish at the end.
    #[test]
    fn gemini_client_text_reassembles(
        upstream in prop::sample::select(GEMINI_UPSTREAMS),
        deltas in prop::collection::vec(".{1,6}", 1..10),
        array in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let input = upstream_text_stream(upstream, &deltas);
        let out = run_gemini(upstream, framing_of(array), input.as_bytes(), chunk, None);
        let text = validate_gemini(&out).map_err(|e| TestCaseError::fail(format!(
            "{e}\n--- output ---\n{}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(text, deltas.concat());
        let elements = gemini_elements(&out).map_err(TestCaseError::fail)?;
        prop_assert!(elements.iter().all(|e| e.get("error").is_none()));
        if upstream == Format::Gemini {
            // Passthrough: one element per upstream chunk.
            prop_assert_eq!(elements.len(), deltas.len());
        }
    }

    /// A Gemini → Gemini stream reframed as an array is always one complete JSON array, and an
    /// SSE one forwards whole upstream events, whatever the upstream sends.
    #[test]
    fn gemini_passthrough_is_always_well_framed(
        input in arb_stream(Format::Gemini),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        array in any::<bool>(),
        chunk in 1usize..64,
        abort in prop::option::of(0usize..24),
    ) {
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(&garbage);
        let out = run_gemini(Format::Gemini, framing_of(array), &bytes, chunk, abort);
        if array {
            prop_assert!(matches!(serde_json::from_slice::<Value>(&out), Ok(Value::Array(_))),
                "{}", String::from_utf8_lossy(&out));
        } else {
            // Whole events: the output parses to events and ends on a boundary.
            let mut p = SseParser::new(1 << 24);
            p.push(&out).unwrap();
            while p.next_event().is_some() {}
        }
    }

    #[test]
    fn gemini_request_decoding_never_panics(body in arb_json(), contents in arb_json(), stream in any::<bool>()) {
        let mut obj = match body {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("x".into(), other);
                m
            }
        };
        obj.insert("contents".into(), match contents {
            Value::Array(a) => Value::Array(a),
            other => json!([{"role": "user", "parts": [other]}]),
        });
        let call = PathCall { model: "gemini-2.5-flash".into(), stream };
        let raw = Bytes::from(Value::Object(obj).to_string());
        if let Ok(d) = DecodedRequest::decode_route(ClientFormat::Gemini, raw, Some(call)) {
            for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic, ProviderKind::Gemini] {
                let _ = d.encode(kind, &Map::new(), Some("m"));
            }
        }
    }
}

#[test]
fn gemini_golden_outputs_pass_the_validator() {
    let mut n = 0;
    for pair in [
        "gemini-to-openai",
        "gemini-to-anthropic",
        "gemini-to-gemini",
    ] {
        for entry in std::fs::read_dir(golden().join(pair)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            if !name.ends_with(".stream.out.sse") && !name.ends_with(".stream.out.json") {
                continue;
            }
            let out = std::fs::read(&path).unwrap();
            // The JSON files are pretty-printed: compact them as the array a client reads.
            let out = if name.ends_with(".json") {
                serde_json::to_vec(&serde_json::from_slice::<Value>(&out).unwrap()).unwrap()
            } else {
                out
            };
            validate(ClientFormat::Gemini, &out, false).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
    }
    assert!(n >= 16, "only {n}");
}

#[test]
fn the_gemini_validator_rejects_forbidden_sequences() {
    let chunk = |parts: Value, finish: Option<&str>| {
        let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            c["finishReason"] = json!(f);
        }
        json!({"candidates": [c], "modelVersion": "m", "responseId": "r"})
    };
    let text = chunk(json!([{"text": "hi"}]), None);
    let last = chunk(json!([]), Some("STOP"));
    let err = json!({"error": {"code": 500, "message": "x", "status": "INTERNAL"}});
    let sse_of = |items: &[&Value]| -> Vec<u8> {
        items
            .iter()
            .map(|v| format!("data: {v}\r\n\r\n"))
            .collect::<String>()
            .into_bytes()
    };
    let array_of = |items: &[&Value]| serde_json::to_vec(&json!(items)).unwrap();
    for framed in [sse_of, array_of] {
        assert_eq!(
            validate_gemini(&framed(&[&text, &last])),
            Ok("hi".to_string())
        );
        assert!(validate_gemini(&framed(&[&text, &err])).is_ok());
        for bad in [
            vec![&text],              // never finished
            vec![&last, &text],       // finish before the end
            vec![&text, &err, &last], // after the error
            vec![&last, &last],       // two finishes
            vec![],                   // nothing
        ] {
            assert!(validate_gemini(&framed(&bad)).is_err(), "{bad:?}");
        }
    }
    // An array cut short is not a JSON document.
    let mut cut = array_of(&[&text, &last]);
    cut.pop();
    assert!(validate_gemini(&cut).is_err());
}

// ---------------------------------------------------------------------------------------------
// Responses API clients (issue 23).

/// A well-formed upstream stream of `format` saying `pieces` as text, then (OpenAI and
/// Anthropic) one tool call whose arguments arrive in `args` pieces.
fn well_formed_stream(format: Format, pieces: &[String], args: &[String]) -> String {
    let mut s = String::new();
    let mut data =
        |name: Option<&str>, v: Value| s.push_str(&sse(&name.map(str::to_string), &v.to_string()));
    match format {
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            data(
                None,
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            );
            for p in pieces {
                data(None, chunk(json!({"content": p}), Value::Null));
            }
            if !args.is_empty() {
                data(
                    None,
                    chunk(
                        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
                        Value::Null,
                    ),
                );
                for a in args {
                    data(
                        None,
                        chunk(
                            json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}),
                            Value::Null,
                        ),
                    );
                }
            }
            data(
                None,
                chunk(
                    json!({}),
                    json!(if args.is_empty() {
                        "stop"
                    } else {
                        "tool_calls"
                    }),
                ),
            );
            data(
                None,
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt", "choices": [],
                              "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}),
            );
            s.push_str("data: [DONE]\n\n");
        }
        Format::Anthropic => {
            data(
                Some("message_start"),
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            );
            data(
                Some("content_block_start"),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for p in pieces {
                data(
                    Some("content_block_delta"),
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
                );
            }
            data(
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            );
            if !args.is_empty() {
                data(
                    Some("content_block_start"),
                    json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
                );
                for a in args {
                    data(
                        Some("content_block_delta"),
                        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": a}}),
                    );
                }
                data(
                    Some("content_block_stop"),
                    json!({"type": "content_block_stop", "index": 1}),
                );
            }
            data(
                Some("message_delta"),
                json!({"type": "message_delta", "delta": {"stop_reason": if args.is_empty() { "end_turn" } else { "tool_use" }}, "usage": {"output_tokens": 5}}),
            );
            data(Some("message_stop"), json!({"type": "message_stop"}));
        }
        Format::Gemini => {
            for p in pieces {
                data(
                    None,
                    json!({"candidates": [{"content": {"parts": [{"text": p}], "role": "model"}, "index": 0}], "modelVersion": "gemini"}),
                );
            }
            data(
                None,
                json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                              "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}, "modelVersion": "gemini"}),
            );
        }
        Format::Responses => unreachable!("not generated"),
    }
    s
}

const RESPONSES_UPSTREAMS: [Format; 3] = [Format::OpenAi, Format::Anthropic, Format::Gemini];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// No text or argument piece is lost, duplicated or reordered on the way to a Responses
    /// client, whichever the upstream format and however the bytes are split.
    #[test]
    fn responses_clients_get_every_piece_in_order(
        upstream in 0..3usize,
        pieces in prop::collection::vec("\\PC{1,12}", 1..8),
        args in prop::collection::vec("[ -~]{1,8}", 0..4),
        chunk in 1usize..64,
    ) {
        let format = RESPONSES_UPSTREAMS[upstream];
        let args = if format == Format::Gemini { Vec::new() } else { args };
        let input = well_formed_stream(format, &pieces, &args);
        let r = run(format, ClientFormat::Responses, false, input.as_bytes(), chunk, None);
        let a = validate_responses(&r.out).map_err(|e| TestCaseError::fail(format!(
            "{e}\n--- input ---\n{input}\n--- output ---\n{}", String::from_utf8_lossy(&r.out))))?;
        prop_assert_eq!(a.text, pieces.concat());
        let want_args: Vec<String> = if args.is_empty() { Vec::new() } else { vec![args.concat()] };
        prop_assert_eq!(a.arguments, want_args);
        prop_assert_eq!(a.terminal, "response.completed");
    }

    #[test]
    fn responses_streams_never_panic_on_garbage(
        pair in 0..6usize,
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        chunk in 1usize..32,
    ) {
        let pairs = [
            (Format::Responses, ClientFormat::Responses),
            (Format::OpenAi, ClientFormat::Responses),
            (Format::Anthropic, ClientFormat::Responses),
            (Format::Gemini, ClientFormat::Responses),
            (Format::Responses, ClientFormat::OpenAi),
            (Format::Responses, ClientFormat::Anthropic),
        ];
        let (upstream, client) = pairs[pair];
        let r = run(upstream, client, false, &bytes, chunk, None);
        if upstream != client.format() {
            prop_assert!(validate(client, &r.out, false).is_ok());
        }
    }

    #[test]
    fn responses_passthrough_forwards_whole_events(
        input in arb_stream(Format::Responses),
        chunk in 1usize..64,
        abort in prop::option::of(0usize..24),
    ) {
        // Whole events or nothing (asserted inside `run`), nothing after the end.
        run(Format::Responses, ClientFormat::Responses, true, input.as_bytes(), chunk, abort);
    }

    #[test]
    fn responses_request_decoding_never_panics(body in arb_json(), input in arb_json(), tools in arb_json()) {
        let mut obj = match body {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("x".into(), other);
                m
            }
        };
        obj.insert("input".into(), input);
        obj.insert("tools".into(), match tools {
            Value::Array(a) => Value::Array(a),
            other => json!([other]),
        });
        if let Ok(d) = DecodedRequest::decode(ClientFormat::Responses, Bytes::from(Value::Object(obj).to_string())) {
            for kind in [
                ProviderKind::OpenAi,
                ProviderKind::AzureOpenAi,
                ProviderKind::OpenAiCompatible,
                ProviderKind::Anthropic,
                ProviderKind::Gemini,
            ] {
                let _ = d.encode(kind, &Map::new(), Some("m"));
            }
        }
    }

    #[test]
    fn responses_response_decoding_never_panics(v in arb_json(), output in arb_json()) {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.insert("output".into(), json!([output]));
        }
        let text = v.to_string();
        let _ = decode_response(Format::Responses, text.as_bytes(), "id");
        let ctx = TranslateContext {
            include_usage: false,
            requested_model: "m".into(),
            created: 1,
            nonce: "n".into(),
            gemini_framing: Default::default(),
        };
        for (format, client) in [
            (Format::Responses, ClientFormat::OpenAi),
            (Format::Responses, ClientFormat::Anthropic),
            (Format::OpenAi, ClientFormat::Responses),
            (Format::Anthropic, ClientFormat::Responses),
            (Format::Gemini, ClientFormat::Responses),
        ] {
            if let Ok(t) = translate_response(format, client, Bytes::from(text.clone()), &ctx) {
                prop_assert!(serde_json::from_slice::<Value>(&t.body).is_ok());
            }
        }
    }
}

#[test]
fn responses_golden_outputs_pass_the_validator() {
    let mut n = 0;
    for pair in [
        "responses-to-responses",
        "responses-to-openai",
        "responses-to-anthropic",
        "responses-to-gemini",
    ] {
        for entry in std::fs::read_dir(golden().join(pair)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().to_string();
            if name.ends_with(".stream.out.sse") {
                validate_responses(&std::fs::read(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
    }
    assert!(n >= 8, "only {n}");
}

#[test]
fn the_responses_validator_rejects_forbidden_sequences() {
    let mut seq = 0;
    let mut ev = |v: Value| {
        let mut v = v;
        v["sequence_number"] = json!(seq);
        seq += 1;
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap())
    };
    let resp = |status: &str, output: Value| json!({"id": "resp_1", "object": "response", "status": status, "output": output});
    let msg = |text: &str| json!({"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
    let at = |v: Value| {
        let mut v = v;
        v["item_id"] = json!("msg_1");
        v["output_index"] = json!(0);
        v["content_index"] = json!(0);
        v
    };
    let created =
        ev(json!({"type": "response.created", "response": resp("in_progress", json!([]))}));
    let added =
        ev(json!({"type": "response.output_item.added", "output_index": 0, "item": msg("")}));
    let padded = ev(at(
        json!({"type": "response.content_part.added", "part": part("")}),
    ));
    let delta = ev(at(
        json!({"type": "response.output_text.delta", "delta": "Hi", "logprobs": []}),
    ));
    let tdone = ev(at(
        json!({"type": "response.output_text.done", "text": "Hi", "logprobs": []}),
    ));
    let pdone = ev(at(
        json!({"type": "response.content_part.done", "part": part("Hi")}),
    ));
    let idone =
        ev(json!({"type": "response.output_item.done", "output_index": 0, "item": msg("Hi")}));
    let completed = ev(
        json!({"type": "response.completed", "response": resp("completed", json!([msg("Hi")]))}),
    );
    let ok = [
        &created, &added, &padded, &delta, &tdone, &pdone, &idone, &completed,
    ]
    .map(String::as_str)
    .concat();
    assert_eq!(validate_responses(ok.as_bytes()).unwrap().text, "Hi");
    let wrong_text = completed.replace("\"Hi\"", "\"Ho\"");
    for bad in [
        [&added, &padded, &delta, &tdone, &pdone, &idone, &completed]
            .map(String::as_str)
            .concat(), // no created
        [&created, &added, &delta, &tdone, &pdone, &idone, &completed]
            .map(String::as_str)
            .concat(), // delta outside a part
        [
            &created, &added, &padded, &delta, &tdone, &pdone, &completed,
        ]
        .map(String::as_str)
        .concat(), // item never done
        [&created, &added, &padded, &delta, &tdone, &pdone, &idone]
            .map(String::as_str)
            .concat(), // no terminal
        [
            &created, &added, &padded, &delta, &tdone, &pdone, &idone, &completed, &completed,
        ]
        .map(String::as_str)
        .concat(), // terminal twice
        [
            &created, &added, &padded, &tdone, &pdone, &idone, &completed,
        ]
        .map(String::as_str)
        .concat(), // a delta lost
        [
            &created, &padded, &added, &delta, &tdone, &pdone, &idone, &completed,
        ]
        .map(String::as_str)
        .concat(), // reordered
        [
            &created,
            &added,
            &padded,
            &delta,
            &tdone,
            &pdone,
            &idone,
            &wrong_text,
        ]
        .map(String::as_str)
        .concat(), // final text differs
    ] {
        assert!(validate_responses(bad.as_bytes()).is_err(), "{bad}");
    }
}

/// A Responses passthrough stream cut or aborted anywhere still validates: the gateway's error
/// event is numbered after the upstream's last event, and nothing follows a terminal event.
#[test]
fn responses_passthrough_cut_or_aborted_anywhere_is_valid() {
    let dir = golden().join("responses-to-responses");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".stream.in.sse") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        let events = parse_sse(&input);
        for k in 0..=events.len() {
            // Aborted before event k.
            let r = run(
                Format::Responses,
                ClientFormat::Responses,
                true,
                &input,
                13,
                Some(k),
            );
            validate_responses(&r.out).unwrap_or_else(|e| panic!("{path:?} abort {k}: {e}"));
            // Cut after k events.
            let cut: Vec<u8> = events[..k].iter().flat_map(|e| e.raw.to_vec()).collect();
            let r = run(
                Format::Responses,
                ClientFormat::Responses,
                true,
                &cut,
                13,
                None,
            );
            if k > 0 {
                validate_responses(&r.out).unwrap_or_else(|e| panic!("{path:?} cut {k}: {e}"));
            }
            n += 1;
        }
    }
    assert!(n >= 20);
}

// ---------------------------------------------------------------------------------------------
// Thinking across formats: well-formed upstream streams mixing reasoning, answer text and tool
// calls translate with no piece lost or reordered, each reassembling on the client's side.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Thinking,
    Text,
    /// A tool call: its pieces are the name and the value of its one argument.
    Tool,
}

/// Runs of pieces (one Anthropic block / a run of deltas each).
type Segments = Vec<(Piece, Vec<String>)>;

fn arb_segments() -> impl Strategy<Value = Segments> {
    let words = || prop::collection::vec("[a-z .]{1,6}", 1..4);
    let segment = prop_oneof![
        3 => words().prop_map(|w| (Piece::Thinking, w)),
        3 => words().prop_map(|w| (Piece::Text, w)),
        1 => ("[a-z]{1,6}", "[a-z .]{0,6}").prop_map(|(n, v)| (Piece::Tool, vec![n, v])),
    ];
    prop::collection::vec(segment, 1..6)
}

/// A tool segment's name and arguments (compact JSON, as every decoder writes it back).
fn tool_of(pieces: &[String]) -> (String, String) {
    let value = pieces.get(1).cloned().unwrap_or_default();
    (pieces[0].clone(), json!({"k": value}).to_string())
}

/// Arguments in two fragments (they are ASCII).
fn halves(args: &str) -> [&str; 2] {
    let (a, b) = args.split_at(args.len() / 2);
    [a, b]
}

fn anthropic_upstream(segs: &Segments) -> String {
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let mut s = ev(
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "content": [], "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
    );
    let delta =
        |i: usize, d: Value| ev(json!({"type": "content_block_delta", "index": i, "delta": d}));
    for (i, (kind, pieces)) in segs.iter().enumerate() {
        let block = match kind {
            Piece::Thinking => json!({"type": "thinking", "thinking": ""}),
            Piece::Text => json!({"type": "text", "text": ""}),
            Piece::Tool => {
                json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": pieces[0], "input": {}})
            }
        };
        s += &ev(json!({"type": "content_block_start", "index": i, "content_block": block}));
        match kind {
            Piece::Thinking => {
                for p in pieces {
                    s += &delta(i, json!({"type": "thinking_delta", "thinking": p}));
                }
                s += &delta(
                    i,
                    json!({"type": "signature_delta", "signature": format!("sig{i}")}),
                );
            }
            Piece::Text => {
                for p in pieces {
                    s += &delta(i, json!({"type": "text_delta", "text": p}));
                }
            }
            Piece::Tool => {
                let (_, args) = tool_of(pieces);
                for h in halves(&args) {
                    s += &delta(i, json!({"type": "input_json_delta", "partial_json": h}));
                }
            }
        }
        s += &ev(json!({"type": "content_block_stop", "index": i}));
    }
    s += &ev(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
    );
    s += &ev(json!({"type": "message_stop"}));
    s
}

fn openai_upstream(segs: &Segments) -> String {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let mut tools = 0;
    for (kind, pieces) in segs {
        match kind {
            Piece::Thinking | Piece::Text => {
                let key = if *kind == Piece::Thinking {
                    "reasoning_content"
                } else {
                    "content"
                };
                for p in pieces {
                    s += &chunk(json!({ key: p }), Value::Null);
                }
            }
            Piece::Tool => {
                let (name, args) = tool_of(pieces);
                let [a, b] = halves(&args);
                s += &chunk(
                    json!({"tool_calls": [{"index": tools, "id": format!("call_{tools}"), "type": "function",
                                           "function": {"name": name, "arguments": a}}]}),
                    Value::Null,
                );
                s += &chunk(
                    json!({"tool_calls": [{"index": tools, "function": {"arguments": b}}]}),
                    Value::Null,
                );
                tools += 1;
            }
        }
    }
    s += &chunk(json!({}), json!("stop"));
    s += "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9,\"completion_tokens_details\":{\"reasoning_tokens\":4}}}\n\n";
    s += "data: [DONE]\n\n";
    s
}

fn gemini_upstream(segs: &Segments) -> String {
    let mut s = String::new();
    let mut push = |part: Value| {
        s += &format!(
            "data: {}\n\n",
            json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
                   "responseId": "r"})
        );
    };
    for (kind, pieces) in segs {
        match kind {
            Piece::Thinking => pieces
                .iter()
                .for_each(|p| push(json!({"text": p, "thought": true}))),
            Piece::Text => pieces.iter().for_each(|p| push(json!({"text": p}))),
            Piece::Tool => {
                let value = pieces.get(1).cloned().unwrap_or_default();
                push(json!({"functionCall": {"name": pieces[0], "args": {"k": value}}}));
            }
        }
    }
    s += &format!(
        "data: {}\n\n",
        json!({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "thoughtsTokenCount": 4}})
    );
    s
}

/// The reasoning, answer and tool-call pieces a client stream carries, in order (a tool call
/// as `name|arguments`).
fn client_pieces(client: ClientFormat, out: &[u8]) -> Vec<(Piece, String)> {
    let mut pieces: Vec<(Piece, String)> = Vec::new();
    let args = |pieces: &mut Vec<(Piece, String)>, a: &str| {
        if let Some((Piece::Tool, t)) = pieces.last_mut() {
            t.push_str(a);
        }
    };
    for e in parse_sse(out) {
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        match client {
            ClientFormat::Responses => match v["type"].as_str() {
                Some("response.reasoning_summary_text.delta" | "response.reasoning_text.delta") => {
                    pieces.push((Piece::Thinking, v["delta"].as_str().unwrap_or("").into()))
                }
                Some("response.output_text.delta") => {
                    pieces.push((Piece::Text, v["delta"].as_str().unwrap_or("").into()))
                }
                Some("response.output_item.added") if v["item"]["type"] == "function_call" => {
                    let name = v["item"]["name"].as_str().unwrap_or("");
                    pieces.push((Piece::Tool, format!("{name}|")));
                }
                Some("response.function_call_arguments.delta") => {
                    args(&mut pieces, v["delta"].as_str().unwrap_or(""))
                }
                _ => {}
            },
            ClientFormat::Gemini => {
                let parts = v["candidates"][0]["content"]["parts"].as_array().cloned();
                for part in parts.into_iter().flatten() {
                    if let Some(t) = part["text"].as_str().filter(|t| !t.is_empty()) {
                        let kind = match part["thought"].as_bool() {
                            Some(true) => Piece::Thinking,
                            _ => Piece::Text,
                        };
                        pieces.push((kind, t.to_string()));
                    }
                    if let Some(name) = part["functionCall"]["name"].as_str() {
                        let args = part["functionCall"]["args"].to_string();
                        pieces.push((Piece::Tool, format!("{name}|{args}")));
                    }
                }
            }
            ClientFormat::OpenAi => {
                let d = &v["choices"][0]["delta"];
                if let Some(t) = d["reasoning_content"].as_str() {
                    pieces.push((Piece::Thinking, t.to_string()));
                }
                if let Some(t) = d["content"].as_str().filter(|t| !t.is_empty()) {
                    pieces.push((Piece::Text, t.to_string()));
                }
                for call in d["tool_calls"].as_array().into_iter().flatten() {
                    if let Some(name) = call["function"]["name"].as_str() {
                        pieces.push((Piece::Tool, format!("{name}|")));
                    }
                    args(
                        &mut pieces,
                        call["function"]["arguments"].as_str().unwrap_or(""),
                    );
                }
            }
            _ => match (v["type"].as_str(), v["delta"]["type"].as_str()) {
                (_, Some("thinking_delta")) => pieces.push((
                    Piece::Thinking,
                    v["delta"]["thinking"].as_str().unwrap().into(),
                )),
                (_, Some("text_delta")) => {
                    pieces.push((Piece::Text, v["delta"]["text"].as_str().unwrap().into()))
                }
                (_, Some("input_json_delta")) => {
                    args(&mut pieces, v["delta"]["partial_json"].as_str().unwrap())
                }
                (Some("content_block_start"), _) if v["content_block"]["type"] == "tool_use" => {
                    let name = v["content_block"]["name"].as_str().unwrap();
                    pieces.push((Piece::Tool, format!("{name}|")));
                }
                _ => {}
            },
        }
    }
    pieces
}

/// Every translated pair whose upstream has a generator below: each client format, from each
/// provider format that carries reasoning.
const THINKING_PAIRS: &[(Format, ClientFormat)] = &[
    (Format::Anthropic, ClientFormat::OpenAi),
    (Format::Gemini, ClientFormat::OpenAi),
    (Format::OpenAi, ClientFormat::Anthropic),
    (Format::Gemini, ClientFormat::Anthropic),
    (Format::OpenAi, ClientFormat::Responses),
    (Format::Anthropic, ClientFormat::Responses),
    (Format::Gemini, ClientFormat::Responses),
    (Format::OpenAi, ClientFormat::Gemini),
    (Format::Anthropic, ClientFormat::Gemini),
];

/// Adjacent reasoning or answer pieces joined (tool calls stay apart).
fn merged(pieces: impl IntoIterator<Item = (Piece, String)>) -> Vec<(Piece, String)> {
    let mut out: Vec<(Piece, String)> = Vec::new();
    for (kind, text) in pieces {
        match out.last_mut() {
            Some((k, t)) if *k == kind && kind != Piece::Tool => t.push_str(&text),
            _ => out.push((kind, text)),
        }
    }
    out
}

/// What a client should assemble from `segs`.
fn expected_pieces(segs: &Segments) -> Vec<(Piece, String)> {
    merged(segs.iter().flat_map(|(k, ps)| match k {
        Piece::Tool => {
            let (name, args) = tool_of(ps);
            vec![(Piece::Tool, format!("{name}|{args}"))]
        }
        _ => ps.iter().map(|p| (*k, p.clone())).collect(),
    }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn thinking_survives_translation_in_order(
        segs in arb_segments(),
        pair in 0..THINKING_PAIRS.len(),
        include_usage in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let (upstream, client) = THINKING_PAIRS[pair];
        let input = match upstream {
            Format::Anthropic => anthropic_upstream(&segs),
            Format::OpenAi => openai_upstream(&segs),
            _ => gemini_upstream(&segs),
        };
        let r = run(upstream, client, include_usage, input.as_bytes(), chunk, None);
        if let Err(e) = validate(client, &r.out, include_usage) {
            return Err(TestCaseError::fail(format!(
                "{e}\n--- output ---\n{}", String::from_utf8_lossy(&r.out)
            )));
        }
        prop_assert_eq!(merged(client_pieces(client, &r.out)), expected_pieces(&segs));
    }
}
