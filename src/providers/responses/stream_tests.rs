//! Stream tests: the client event sequences, the upstream decoder, passthrough, and usage.

use bytes::Bytes;
use serde_json::{json, Value};

use super::tests::{ev, events, names};
use super::*;
use crate::providers::canonical::*;
use crate::providers::{ErrorKind, EventClass, ProviderError};

fn encode_all(events: Vec<StreamEvent>) -> (Vec<(String, Value)>, Vec<EventClass>, EventClass) {
    let mut e = EventEncoder::new("resp_1".into(), "m".into(), 1);
    let mut out = Vec::new();
    let classes = events.into_iter().map(|x| e.encode(x, &mut out)).collect();
    let end = e.finish(&mut out);
    (self::events(&out), classes, end)
}

fn assert_numbered(evs: &[(String, Value)]) {
    for (i, (name, v)) in evs.iter().enumerate() {
        assert_eq!(v["sequence_number"], i as u64, "{name}");
        assert_eq!(v["type"], name.as_str());
    }
}

#[test]
fn a_text_stream_is_the_full_event_sequence() {
    let (evs, classes, end) = encode_all(vec![
        StreamEvent::Start {
            id: Some("chatcmpl-9".into()),
            model: Some("gpt".into()),
        },
        StreamEvent::Text {
            choice: 0,
            text: "Hel".into(),
        },
        StreamEvent::Text {
            choice: 0,
            text: "lo".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 2,
            ..Usage::default()
        }),
        StreamEvent::Done,
    ]);
    assert_eq!(
        classes,
        [
            EventClass::Preamble,
            EventClass::Content,
            EventClass::Content,
            EventClass::Preamble,
            EventClass::Preamble,
            EventClass::Done
        ]
    );
    assert_eq!(end, EventClass::Done);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_numbered(&evs);
    assert_eq!(evs[0].1["response"]["id"], "resp_chatcmpl-9");
    assert_eq!(evs[0].1["response"]["status"], "in_progress");
    assert_eq!(evs[6].1["text"], "Hello");
    let done = &evs[9].1["response"];
    assert_eq!(
        (done["model"].clone(), done["status"].clone()),
        (json!("gpt"), json!("completed"))
    );
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 5);
    assert_eq!(evs[4].1["item_id"], done["output"][0]["id"]);
}

#[test]
fn a_function_call_stream() {
    let (evs, classes, _) = encode_all(vec![
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "call_1".into(),
            name: "get".into(),
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
        StreamEvent::Done,
    ]);
    assert_eq!(classes[..3], [EventClass::Content; 3]);
    assert_eq!(
        names(&evs)[2..],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_numbered(&evs);
    assert_eq!(evs[2].1["item"]["arguments"], "");
    assert_eq!(evs[5].1["arguments"], "{\"a\":1}");
    let item = &evs[7].1["response"]["output"][0];
    assert_eq!(
        (
            item["call_id"].clone(),
            item["arguments"].clone(),
            item["status"].clone()
        ),
        (json!("call_1"), json!("{\"a\":1}"), json!("completed"))
    );
}

#[test]
fn reasoning_then_text() {
    let (evs, classes, _) = encode_all(vec![
        StreamEvent::Thinking {
            choice: 0,
            text: "Let me ".into(),
        },
        StreamEvent::Thinking {
            choice: 0,
            text: "think".into(),
        },
        StreamEvent::ThinkingSignature {
            choice: 0,
            signature: "sig".into(),
        },
        StreamEvent::Text {
            choice: 0,
            text: "42".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop,
        },
    ]);
    assert_eq!(classes[0], EventClass::Content);
    assert_eq!(
        names(&evs)[2..10],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
        ]
    );
    assert_numbered(&evs);
    let out = &evs.last().unwrap().1["response"]["output"];
    assert_eq!(
        out[0],
        json!({"id": out[0]["id"], "type": "reasoning", "summary": [{"type": "summary_text", "text": "Let me think"}], "encrypted_content": "sig"})
    );
    assert_eq!(out[1]["content"][0]["text"], "42");
    assert_eq!(out[1]["status"], "completed");
}

#[test]
fn length_error_and_cut_streams() {
    let (evs, _, end) = encode_all(vec![
        StreamEvent::Text {
            choice: 0,
            text: "abc".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Length,
        },
    ]);
    assert_eq!(end, EventClass::Done);
    let last = &evs.last().unwrap();
    assert_eq!(last.0, "response.incomplete");
    assert_eq!(
        last.1["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );

    let err = ProviderError::new(ErrorKind::RateLimit, "slow down");
    let (evs, classes, _) = encode_all(vec![
        StreamEvent::Text {
            choice: 0,
            text: "a".into(),
        },
        StreamEvent::Error(err),
        StreamEvent::Done,
    ]);
    assert_eq!(
        classes,
        [EventClass::Content, EventClass::Error, EventClass::Preamble]
    );
    let last = evs.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["message"], "slow down");
    assert_numbered(&evs);
    assert!(!names(&evs).contains(&"response.completed"));

    let (evs, _, end) = encode_all(vec![StreamEvent::Text {
        choice: 0,
        text: "Hel".into(),
    }]);
    assert_eq!(end, EventClass::Error);
    assert_eq!(evs.last().unwrap().0, "error");
    assert_numbered(&evs);
}

#[test]
fn upstream_streams_decode() {
    let mut d = EventDecoder::default();
    let mut out = Vec::new();
    for raw in [
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
        "event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"item_id\":\"rs_1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"hm\",\"sequence_number\":1}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"delta\":\"Hi\",\"sequence_number\":2}\n\n",
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"\"},\"sequence_number\":3}\n\n",
        "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"{}\",\"sequence_number\":4}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":5,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":4,\"output_tokens\":6,\"output_tokens_details\":{\"reasoning_tokens\":2}}}}\n\n",
    ] {
        d.decode(&ev(raw), &mut out);
    }
    assert_eq!(
        out,
        vec![
            StreamEvent::Start {
                id: Some("resp_1".into()),
                model: Some("gpt-5".into())
            },
            StreamEvent::Thinking {
                choice: 0,
                text: "hm".into()
            },
            StreamEvent::Text {
                choice: 0,
                text: "Hi".into()
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "call_1".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallArgs {
                choice: 0,
                index: 0,
                arguments: "{}".into()
            },
            StreamEvent::Usage(Usage {
                input_tokens: 4,
                output_tokens: 6,
                reasoning_tokens: 2,
                ..Usage::default()
            }),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls
            },
            StreamEvent::Done,
        ]
    );
    // Arguments given whole in their `done` (no deltas) arrive once.
    let mut d = EventDecoder::default();
    let mut out = Vec::new();
    for raw in [
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_2\",\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"g\",\"arguments\":\"\"}}\n\n",
        "event: response.function_call_arguments.done\ndata: {\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_2\",\"output_index\":0,\"arguments\":\"{\\\"x\\\":1}\"}\n\n",
        "event: response.function_call_arguments.done\ndata: {\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_2\",\"output_index\":0,\"arguments\":\"{\\\"x\\\":1}\"}\n\n",
    ] {
        d.decode(&ev(raw), &mut out);
    }
    assert_eq!(
        out[1],
        StreamEvent::ToolCallArgs {
            choice: 0,
            index: 0,
            arguments: "{\"x\":1}".into()
        }
    );
    assert_eq!(out.len(), 2);
    let mut out = Vec::new();
    EventDecoder::default().decode(&ev("event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n"), &mut out);
    assert!(matches!(&out[0], StreamEvent::Error(e) if e.message == "boom"));
}

#[test]
fn passthrough_forwards_and_watches() {
    let mut p = Passthrough::default();
    let mut out = Vec::new();
    let created = ev("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n");
    let step = p.push(&created, &mut out);
    assert_eq!(
        (step.class, step.model.as_deref(), step.usage),
        (EventClass::Preamble, Some("gpt-5"), None)
    );
    let delta = ev("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\",\"sequence_number\":1}\n\n");
    assert_eq!(p.push(&delta, &mut out).class, EventClass::Content);
    assert_eq!(out, [created.raw.as_ref(), delta.raw.as_ref()].concat());
    // Cut: an error event numbered after the last one.
    let mut tail = Vec::new();
    assert_eq!(p.finish(&mut tail), EventClass::Error);
    let evs = events(&tail);
    assert_eq!(
        (evs[0].0.as_str(), evs[0].1["sequence_number"].clone()),
        ("error", json!(2))
    );

    let mut p = Passthrough::default();
    let done = ev("event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":4,\"output_tokens\":6,\"input_tokens_details\":{\"cached_tokens\":1}}}}\n\n");
    let step = p.push(&done, &mut Vec::new());
    assert_eq!(step.class, EventClass::Done);
    assert_eq!(
        step.usage
            .map(|u| (u.input_tokens, u.output_tokens, u.cached_tokens)),
        Some((4, 6, 1))
    );
    let mut tail = Vec::new();
    assert_eq!(p.finish(&mut tail), EventClass::Done);
    assert!(tail.is_empty());
    for (raw, class) in [
        ("event: response.failed\ndata: {\"type\":\"response.failed\"}\n\n", EventClass::Error),
        ("event: error\ndata: {\"type\":\"error\",\"message\":\"x\"}\n\n", EventClass::Error),
        ("event: response.incomplete\ndata: {\"type\":\"response.incomplete\"}\n\n", EventClass::Done),
        ("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"\"}\n\n", EventClass::Preamble),
        ("data: not json\n\n", EventClass::Preamble),
    ] {
        assert_eq!(Passthrough::default().push(&ev(raw), &mut Vec::new()).class, class, "{raw}");
    }
}

#[test]
fn the_standalone_error_event() {
    let mut out = Vec::new();
    let mut err = ProviderError::new(ErrorKind::Timeout, "late");
    err.code = Some("timeout".into());
    encode_stream_error(&err, &mut out);
    let evs = events(&out);
    assert_eq!(evs[0].0, "error");
    assert_eq!(
        evs[0].1,
        json!({"type": "error", "code": "timeout", "message": "late", "param": null, "sequence_number": 0})
    );
}

/// Usage (and so cost) flows from every Responses path: a same-format body's facts, a
/// passthrough stream's `response.completed`, a translated response and stream.
#[test]
fn usage_and_cost_flow_for_responses_clients() {
    use crate::providers::{
        facts_of_response, translate_response, StreamTranslator, TranslateContext,
    };
    let body = br#"{"id":"resp_1","object":"response","model":"gpt-4o-2024-08-06","status":"completed","output":[],"usage":{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":50},"total_tokens":1200}}"#;
    let want = Usage {
        input_tokens: 1000,
        output_tokens: 200,
        cached_tokens: 400,
        cache_creation_tokens: 0,
        reasoning_tokens: 50,
    };
    let (usage, model) = facts_of_response(Format::Responses, body);
    assert_eq!(
        (usage, model.as_deref()),
        (Some(want), Some("gpt-4o-2024-08-06"))
    );
    let ctx = TranslateContext {
        include_usage: false,
        requested_model: "gpt-4o".into(),
        created: 1,
        nonce: "n".into(),
        gemini_framing: Default::default(),
    };
    let t = translate_response(
        Format::Responses,
        ClientFormat::Responses,
        Bytes::from_static(body),
        &ctx,
    )
    .unwrap();
    assert_eq!((t.usage, t.body.as_ref()), (Some(want), body.as_slice()));
    let t = translate_response(
        Format::Responses,
        ClientFormat::Anthropic,
        Bytes::from_static(body),
        &ctx,
    )
    .unwrap();
    assert_eq!(t.usage, Some(want));
    let cost = crate::telemetry::cost::PriceTable::embedded()
        .unwrap()
        .cost("openai", model.as_deref().unwrap(), &want);
    assert!(cost.is_some_and(|c| c > 0.0), "{cost:?}");

    // Passthrough stream: the usage of response.completed, the model of response.created.
    let mut s = StreamTranslator::new(Format::Responses, ClientFormat::Responses, &ctx);
    let mut out = Vec::new();
    s.push(&ev("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-4o-2024-08-06\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n"), &mut out);
    let completed = format!("event: response.completed\ndata: {{\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{}}}\n\n", std::str::from_utf8(body).unwrap());
    assert_eq!(s.push(&ev(&completed), &mut out), EventClass::Done);
    assert_eq!((s.usage(), s.model()), (want, Some("gpt-4o-2024-08-06")));

    // Translated stream (Anthropic upstream): its usage, and the same in response.completed.
    let mut s = StreamTranslator::new(Format::Anthropic, ClientFormat::Responses, &ctx);
    let mut out = Vec::new();
    for raw in [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ] {
        s.push(&ev(raw), &mut out);
    }
    let u = s.usage();
    assert_eq!(
        (u.input_tokens, u.cached_tokens, u.output_tokens),
        (10, 3, 4)
    );
    let evs = events(&out);
    let last = evs.last().unwrap();
    assert_eq!(last.0, "response.completed");
    assert_eq!(last.1["response"]["usage"]["input_tokens"], 10);
    assert_eq!(
        last.1["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        3
    );
    assert_eq!(last.1["response"]["model"], "claude");
}
