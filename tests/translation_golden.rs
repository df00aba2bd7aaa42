//! Golden translation tests for every client → provider pair, both directions: request
//! translation, whole-response translation, stream translation (with the commit-point class
//! of every upstream event), and error translation.
//!
//! Fixtures live in `tests/golden/<client>-to-<provider>/`:
//! - `<case>.request.in.json` → `<case>.request.out.json` (optional
//!   `<case>.request.overrides.json`: the target's `override_params`);
//! - `<case>.response.in.json` → `<case>.response.out.json`;
//! - `<case>.stream.in.sse` → `<case>.stream.out.sse` and `<case>.stream.classes.txt` (one class
//!   per upstream event, then `finish: <class>`); optional `<case>.stream.ctx.json`
//!   (`include_usage`, `requested_model`).
//!
//! Errors: `tests/golden/errors/<provider>.<status>.json` → `….to-openai.txt` and
//! `….to-anthropic.txt` (first line of each expected file: the status).
//!
//! Inputs are modelled on the examples in the OpenAI, Anthropic and Gemini API references.
//! `UPDATE_GOLDEN=1 cargo test --test translation_golden` rewrites the expected files (review
//! the diff!).

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Map, Value};
use switchyard::config::ProviderKind;
use switchyard::providers::gemini::client::Framing;
use switchyard::providers::request::PathCall;
use switchyard::providers::{
    decode_error, encode_error, translate_error, translate_response, ClientFormat, DecodedRequest,
    EventClass, Format, StreamTranslator, TranslateContext,
};
use switchyard::upstream::sse::{SseEvent, SseParser};

struct Pair {
    dir: &'static str,
    client: ClientFormat,
    kind: ProviderKind,
}

const PAIRS: &[Pair] = &[
    Pair {
        dir: "openai-to-openai",
        client: ClientFormat::OpenAi,
        kind: ProviderKind::OpenAi,
    },
    Pair {
        dir: "openai-to-anthropic",
        client: ClientFormat::OpenAi,
        kind: ProviderKind::Anthropic,
    },
    Pair {
        dir: "openai-to-gemini",
        client: ClientFormat::OpenAi,
        kind: ProviderKind::Gemini,
    },
    Pair {
        dir: "anthropic-to-anthropic",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::Anthropic,
    },
    Pair {
        dir: "anthropic-to-openai",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::OpenAi,
    },
    Pair {
        dir: "anthropic-to-gemini",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::Gemini,
    },
    // Thinking and reasoning across formats (issue 23): Anthropic extended thinking,
    // OpenAI `reasoning_effort` / `reasoning_content`, Gemini thoughts.
    Pair {
        dir: "anthropic-thinking-to-anthropic",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::Anthropic,
    },
    Pair {
        dir: "anthropic-thinking-to-openai",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::OpenAiCompatible,
    },
    Pair {
        dir: "openai-reasoning-to-anthropic",
        client: ClientFormat::OpenAi,
        kind: ProviderKind::Anthropic,
    },
    Pair {
        dir: "anthropic-thinking-to-gemini",
        client: ClientFormat::Anthropic,
        kind: ProviderKind::Gemini,
    },
    Pair {
        dir: "openai-reasoning-to-gemini",
        client: ClientFormat::OpenAi,
        kind: ProviderKind::Gemini,
    },
];

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `<case>` names in `dir` having a file `<case><suffix>`.
fn cases(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(suffix))
                .map(str::to_string)
        })
        .collect();
    out.sort();
    out
}

fn ctx(include_usage: bool, model: &str) -> TranslateContext {
    TranslateContext {
        include_usage,
        requested_model: model.to_string(),
        created: 1_700_000_000,
        nonce: "golden0000".into(),
        gemini_framing: Default::default(),
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// Compares (or, when updating, writes) a JSON result.
fn check_json(path: &Path, actual: &Value) {
    if updating() {
        fs::write(path, pretty(actual)).unwrap();
        return;
    }
    let expected = json(path);
    assert_eq!(
        &expected,
        actual,
        "{}:\n--- actual ---\n{}",
        path.display(),
        pretty(actual)
    );
}

fn check_text(path: &Path, actual: &str) {
    if updating() {
        fs::write(path, actual).unwrap();
        return;
    }
    assert_eq!(read(path), actual, "{}", path.display());
}

#[test]
fn requests() {
    let mut n = 0;
    for pair in PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".request.in.json") {
            let input = read(&dir.join(format!("{case}.request.in.json")));
            let overrides_path = dir.join(format!("{case}.request.overrides.json"));
            let overrides: Map<String, Value> = if overrides_path.exists() {
                json(&overrides_path)
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            } else {
                Map::new()
            };
            let decoded = DecodedRequest::decode(pair.client, Bytes::from(input.clone()))
                .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            let encoded = decoded
                .encode(pair.kind, &overrides, None)
                .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            assert_eq!(encoded.format, Format::of(pair.kind));
            let actual: Value = serde_json::from_slice(&encoded.body).unwrap();
            check_json(&dir.join(format!("{case}.request.out.json")), &actual);
            if encoded.passthrough {
                assert_eq!(encoded.body, Bytes::from(input), "{}/{case}", pair.dir);
            }
            n += 1;
        }
    }
    assert!(n >= 12, "only {n} request cases");
}

#[test]
fn responses() {
    let mut n = 0;
    for pair in PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".response.in.json") {
            let input = read(&dir.join(format!("{case}.response.in.json")));
            let t = translate_response(
                Format::of(pair.kind),
                pair.client,
                Bytes::from(input.clone()),
                &ctx(false, "requested-model"),
            )
            .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            assert!(t.usage.is_some(), "{}/{case}: no usage", pair.dir);
            if Format::of(pair.kind) == pair.client.format() {
                assert_eq!(t.body, Bytes::from(input), "{}/{case}", pair.dir);
            }
            let actual: Value = serde_json::from_slice(&t.body).unwrap();
            check_json(&dir.join(format!("{case}.response.out.json")), &actual);
            n += 1;
        }
    }
    assert!(n >= 12, "only {n} response cases");
}

/// Parses SSE text into (event name, data as JSON if it is JSON else text) pairs.
fn sse_events(text: &str) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::new(1 << 20);
    p.push(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        out.push(e);
    }
    out.extend(p.finish());
    out.into_iter()
        .map(|e| {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data));
            (e.event, data)
        })
        .collect()
}

fn class_name(c: EventClass) -> &'static str {
    match c {
        EventClass::Preamble => "preamble",
        EventClass::Content => "content",
        EventClass::Error => "error",
        EventClass::Done => "done",
    }
}

/// Runs a stream through a translator, reading the input in `chunk`-byte pieces.
fn run_stream(
    input: &str,
    upstream: Format,
    client: ClientFormat,
    ctx: &TranslateContext,
    chunk: usize,
) -> (String, Vec<String>, StreamTranslator) {
    let mut t = StreamTranslator::new(upstream, client, ctx);
    let mut parser = SseParser::new(1 << 20);
    let mut out = Vec::new();
    let mut classes = Vec::new();
    let mut feed = |e: SseEvent, t: &mut StreamTranslator, out: &mut Vec<u8>| {
        classes.push(class_name(t.push(&e, out)).to_string());
    };
    for piece in input.as_bytes().chunks(chunk.max(1)) {
        parser.push(piece).unwrap();
        while let Some(e) = parser.next_event() {
            feed(e, &mut t, &mut out);
        }
    }
    if let Some(e) = parser.finish() {
        feed(e, &mut t, &mut out);
    }
    let end = t.finish(&mut out);
    classes.push(format!("finish: {}", class_name(end)));
    (String::from_utf8(out).unwrap(), classes, t)
}

#[test]
fn streams() {
    let mut n = 0;
    for pair in PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".stream.in.sse") {
            let input = read(&dir.join(format!("{case}.stream.in.sse")));
            let ctx_path = dir.join(format!("{case}.stream.ctx.json"));
            let (include_usage, model) = if ctx_path.exists() {
                let c = json(&ctx_path);
                (
                    c["include_usage"].as_bool().unwrap_or(false),
                    c["requested_model"]
                        .as_str()
                        .unwrap_or("requested-model")
                        .to_string(),
                )
            } else {
                (false, "requested-model".to_string())
            };
            let ctx = ctx(include_usage, &model);
            let upstream = Format::of(pair.kind);
            let (out, classes, t) = run_stream(&input, upstream, pair.client, &ctx, usize::MAX);
            // Reading in small pieces changes nothing.
            let (out_small, classes_small, _) = run_stream(&input, upstream, pair.client, &ctx, 7);
            assert_eq!(out, out_small, "{}/{case}", pair.dir);
            assert_eq!(classes, classes_small, "{}/{case}", pair.dir);
            assert!(!t.usage().is_empty(), "{}/{case}: no usage", pair.dir);

            let out_path = dir.join(format!("{case}.stream.out.sse"));
            if updating() {
                fs::write(&out_path, &out).unwrap();
            } else if upstream == pair.client.format() {
                // Passthrough: byte for byte.
                assert_eq!(read(&out_path), out, "{}", out_path.display());
            } else {
                assert_eq!(
                    sse_events(&read(&out_path)),
                    sse_events(&out),
                    "{}:\n--- actual ---\n{out}",
                    out_path.display()
                );
            }
            let mut classes_text = classes.join("\n");
            classes_text.push('\n');
            check_text(
                &dir.join(format!("{case}.stream.classes.txt")),
                &classes_text,
            );
            n += 1;
        }
    }
    assert!(n >= 12, "only {n} stream cases");
}

#[test]
fn errors() {
    let dir = golden().join("errors");
    let mut n = 0;
    for case in cases(&dir, ".json") {
        let (provider, status) = case.split_once('.').unwrap();
        let format = match provider {
            "openai" => Format::OpenAi,
            "anthropic" => Format::Anthropic,
            "gemini" => Format::Gemini,
            other => panic!("unknown provider {other}"),
        };
        let status: u16 = status.parse().unwrap();
        let body = fs::read(dir.join(format!("{case}.json"))).unwrap();
        let err = decode_error(format, status, &body);
        // What the gateway sends: same-format errors are not re-encoded.
        if let Some(client) = [ClientFormat::OpenAi, ClientFormat::Anthropic]
            .into_iter()
            .find(|c| c.format() == format)
        {
            let (s, b) = translate_error(format, client, status, Bytes::from(body.clone()));
            assert_eq!((s, b.as_ref()), (status, body.as_slice()), "{case}");
        }
        for (client, name) in [
            (ClientFormat::OpenAi, "openai"),
            (ClientFormat::Anthropic, "anthropic"),
        ] {
            let (client_status, out) = encode_error(client, &err);
            let v: Value = serde_json::from_slice(&out).unwrap();
            let actual = format!("{client_status}\n{}", pretty(&v));
            check_text(&dir.join(format!("{case}.to-{name}.txt")), &actual);
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} error cases");
}

// ---------------------------------------------------------------------------------------------
// Gemini clients (`google-genai`): the model and the stream flag come from the path
// (`<case>.request.call.json`: `{"model", "stream"}`, else `gemini-2.5-flash`, not streaming);
// each stream is written in both framings: `<case>.stream.out.sse` (`alt=sse`) and
// `<case>.stream.out.json` (the JSON array, compared as a JSON document), with one
// `<case>.stream.classes.txt` (the classes do not depend on the framing). A `cut` case is a
// stream that ends before its finish: it must end with the error.

const GEMINI_PAIRS: &[(&str, ProviderKind)] = &[
    ("gemini-to-openai", ProviderKind::OpenAi),
    ("gemini-to-anthropic", ProviderKind::Anthropic),
    ("gemini-to-gemini", ProviderKind::Gemini),
];

fn gemini_ctx(framing: Framing) -> TranslateContext {
    TranslateContext {
        gemini_framing: framing,
        ..ctx(false, "gemini-2.5-flash")
    }
}

#[test]
fn gemini_client_requests() {
    let mut n = 0;
    for (dir_name, kind) in GEMINI_PAIRS {
        let dir = golden().join(dir_name);
        for case in cases(&dir, ".request.in.json") {
            let input = read(&dir.join(format!("{case}.request.in.json")));
            let call_path = dir.join(format!("{case}.request.call.json"));
            let call = if call_path.exists() {
                let c = json(&call_path);
                PathCall {
                    model: c["model"].as_str().unwrap().to_string(),
                    stream: c["stream"].as_bool().unwrap_or(false),
                }
            } else {
                PathCall {
                    model: "gemini-2.5-flash".into(),
                    stream: false,
                }
            };
            let stream = call.stream;
            let overrides_path = dir.join(format!("{case}.request.overrides.json"));
            let overrides: Map<String, Value> = if overrides_path.exists() {
                json(&overrides_path).as_object().cloned().unwrap()
            } else {
                Map::new()
            };
            let decoded = DecodedRequest::decode_route(
                ClientFormat::Gemini,
                Bytes::from(input.clone()),
                Some(call),
            )
            .unwrap_or_else(|e| panic!("{dir_name}/{case}: {e}"));
            assert_eq!(decoded.is_stream(), stream, "{dir_name}/{case}");
            let encoded = decoded
                .encode(*kind, &overrides, None)
                .unwrap_or_else(|e| panic!("{dir_name}/{case}: {e}"));
            assert_eq!(encoded.stream, stream, "{dir_name}/{case}");
            let actual: Value = serde_json::from_slice(&encoded.body).unwrap();
            check_json(&dir.join(format!("{case}.request.out.json")), &actual);
            if *kind == ProviderKind::Gemini {
                // Gemini to Gemini: the client's bytes, unchanged.
                assert!(encoded.passthrough, "{dir_name}/{case}");
                assert_eq!(encoded.body, Bytes::from(input), "{dir_name}/{case}");
                assert_eq!(encoded.model, "gemini-2.5-flash");
            }
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} Gemini request cases");
}

#[test]
fn gemini_client_responses() {
    let mut n = 0;
    for (dir_name, kind) in GEMINI_PAIRS {
        let dir = golden().join(dir_name);
        for case in cases(&dir, ".response.in.json") {
            let input = read(&dir.join(format!("{case}.response.in.json")));
            let t = translate_response(
                Format::of(*kind),
                ClientFormat::Gemini,
                Bytes::from(input.clone()),
                &gemini_ctx(Framing::Sse),
            )
            .unwrap_or_else(|e| panic!("{dir_name}/{case}: {e}"));
            assert!(t.usage.is_some(), "{dir_name}/{case}: no usage");
            if *kind == ProviderKind::Gemini {
                assert_eq!(t.body, Bytes::from(input), "{dir_name}/{case}");
            }
            let actual: Value = serde_json::from_slice(&t.body).unwrap();
            check_json(&dir.join(format!("{case}.response.out.json")), &actual);
            n += 1;
        }
    }
    assert!(n >= 7, "only {n} Gemini response cases");
}

#[test]
fn gemini_client_streams() {
    let mut n = 0;
    for (dir_name, kind) in GEMINI_PAIRS {
        let dir = golden().join(dir_name);
        let upstream = Format::of(*kind);
        for case in cases(&dir, ".stream.in.sse") {
            let input = read(&dir.join(format!("{case}.stream.in.sse")));
            let mut all_classes = Vec::new();
            for framing in [Framing::Sse, Framing::JsonArray] {
                let ctx = gemini_ctx(framing);
                let (out, classes, t) =
                    run_stream(&input, upstream, ClientFormat::Gemini, &ctx, usize::MAX);
                let (out_small, classes_small, _) =
                    run_stream(&input, upstream, ClientFormat::Gemini, &ctx, 7);
                assert_eq!(out, out_small, "{dir_name}/{case}");
                assert_eq!(classes, classes_small, "{dir_name}/{case}");
                let last = classes.last().unwrap();
                if case.starts_with("cut") {
                    assert_eq!(last, "finish: error", "{dir_name}/{case}");
                } else {
                    assert!(!t.usage().is_empty(), "{dir_name}/{case}: no usage");
                }
                match framing {
                    Framing::Sse => {
                        assert_eq!(t.content_type(), None);
                        let out_path = dir.join(format!("{case}.stream.out.sse"));
                        if updating() {
                            fs::write(&out_path, &out).unwrap();
                        } else if upstream == Format::Gemini {
                            assert_eq!(read(&out_path), out, "{}", out_path.display());
                        } else {
                            assert_eq!(
                                sse_events(&read(&out_path)),
                                sse_events(&out),
                                "{}:\n--- actual ---\n{out}",
                                out_path.display()
                            );
                        }
                    }
                    Framing::JsonArray => {
                        assert_eq!(t.content_type(), Some("application/json"));
                        let doc: Value = serde_json::from_str(&out)
                            .unwrap_or_else(|e| panic!("{dir_name}/{case}: {e}\n{out}"));
                        check_json(&dir.join(format!("{case}.stream.out.json")), &doc);
                    }
                }
                all_classes.push(classes);
            }
            assert_eq!(all_classes[0], all_classes[1], "{dir_name}/{case}");
            let mut classes_text = all_classes[0].join("\n");
            classes_text.push('\n');
            check_text(
                &dir.join(format!("{case}.stream.classes.txt")),
                &classes_text,
            );
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} Gemini stream cases");
}

// ---------------------------------------------------------------------------------------------
// Responses API clients (issue 23): `responses-to-openai` is an OpenAI-compatible target (Chat
// Completions), `responses-to-responses` an `openai` provider asked natively (passthrough).

const RESPONSES_PAIRS: &[Pair] = &[
    Pair {
        dir: "responses-to-responses",
        client: ClientFormat::Responses,
        kind: ProviderKind::OpenAi,
    },
    Pair {
        dir: "responses-to-openai",
        client: ClientFormat::Responses,
        kind: ProviderKind::OpenAiCompatible,
    },
    Pair {
        dir: "responses-to-anthropic",
        client: ClientFormat::Responses,
        kind: ProviderKind::Anthropic,
    },
    Pair {
        dir: "responses-to-gemini",
        client: ClientFormat::Responses,
        kind: ProviderKind::Gemini,
    },
];

fn upstream_of(pair: &Pair) -> Format {
    Format::upstream(pair.kind, Some(pair.client))
}

#[test]
fn responses_client_requests() {
    let mut n = 0;
    for pair in RESPONSES_PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".request.in.json") {
            let input = read(&dir.join(format!("{case}.request.in.json")));
            let overrides_path = dir.join(format!("{case}.request.overrides.json"));
            let overrides: Map<String, Value> = if overrides_path.exists() {
                json(&overrides_path)
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            } else {
                Map::new()
            };
            let decoded = DecodedRequest::decode(pair.client, Bytes::from(input.clone()))
                .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            let encoded = decoded
                .encode(pair.kind, &overrides, None)
                .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            assert_eq!(encoded.format, upstream_of(pair), "{}/{case}", pair.dir);
            let actual: Value = serde_json::from_slice(&encoded.body).unwrap();
            check_json(&dir.join(format!("{case}.request.out.json")), &actual);
            if upstream_of(pair) == Format::Responses && overrides.is_empty() {
                // Same format, nothing changed: the client's bytes.
                assert!(encoded.passthrough, "{}/{case}", pair.dir);
                assert_eq!(encoded.body, Bytes::from(input), "{}/{case}", pair.dir);
            }
            n += 1;
        }
    }
    assert!(n >= 12, "only {n} request cases");
}

#[test]
fn responses_client_stateful_requests_need_a_responses_upstream() {
    let input = read(&golden().join("responses-to-responses/stateful.request.in.json"));
    let decoded = DecodedRequest::decode(ClientFormat::Responses, Bytes::from(input)).unwrap();
    // `openai` and `azure-openai` take the Responses API natively (the request goes as sent).
    for kind in [ProviderKind::OpenAi, ProviderKind::AzureOpenAi] {
        let native = decoded.encode(kind, &Map::new(), Some("gpt-4o")).unwrap();
        assert_eq!(
            native.format,
            switchyard::providers::Format::Responses,
            "{kind:?}"
        );
    }
    for kind in [
        ProviderKind::OpenAiCompatible,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ] {
        let err = decoded.encode(kind, &Map::new(), None).unwrap_err();
        assert!(
            matches!(
                err,
                switchyard::providers::TranslateError::Unsupported { .. }
            ),
            "{kind:?}: {err}"
        );
        assert!(err.to_string().contains("previous_response_id"), "{err}");
    }
}

#[test]
fn responses_client_responses() {
    let mut n = 0;
    for pair in RESPONSES_PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".response.in.json") {
            let input = read(&dir.join(format!("{case}.response.in.json")));
            let upstream = upstream_of(pair);
            let t = translate_response(
                upstream,
                pair.client,
                Bytes::from(input.clone()),
                &ctx(false, "requested-model"),
            )
            .unwrap_or_else(|e| panic!("{}/{case}: {e}", pair.dir));
            let usage = t
                .usage
                .unwrap_or_else(|| panic!("{}/{case}: no usage", pair.dir));
            assert!(usage.input_tokens > 0, "{}/{case}", pair.dir);
            assert!(t.model.is_some(), "{}/{case}: no model", pair.dir);
            if upstream == pair.client.format() {
                assert_eq!(t.body, Bytes::from(input), "{}/{case}", pair.dir);
            }
            let actual: Value = serde_json::from_slice(&t.body).unwrap();
            check_json(&dir.join(format!("{case}.response.out.json")), &actual);
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} response cases");
}

#[test]
fn responses_client_streams() {
    let mut n = 0;
    for pair in RESPONSES_PAIRS {
        let dir = golden().join(pair.dir);
        for case in cases(&dir, ".stream.in.sse") {
            let input = read(&dir.join(format!("{case}.stream.in.sse")));
            let ctx = ctx(false, "requested-model");
            let upstream = upstream_of(pair);
            let (out, classes, t) = run_stream(&input, upstream, pair.client, &ctx, usize::MAX);
            let (out_small, classes_small, _) = run_stream(&input, upstream, pair.client, &ctx, 7);
            assert_eq!(out, out_small, "{}/{case}", pair.dir);
            assert_eq!(classes, classes_small, "{}/{case}", pair.dir);
            let overloaded = case == "overloaded";
            assert!(
                overloaded || !t.usage().is_empty(),
                "{}/{case}: no usage",
                pair.dir
            );
            let out_path = dir.join(format!("{case}.stream.out.sse"));
            if updating() {
                fs::write(&out_path, &out).unwrap();
            } else if upstream == pair.client.format() {
                assert_eq!(read(&out_path), out, "{}", out_path.display());
            } else {
                assert_eq!(
                    sse_events(&read(&out_path)),
                    sse_events(&out),
                    "{}:\n--- actual ---\n{out}",
                    out_path.display()
                );
            }
            let mut classes_text = classes.join("\n");
            classes_text.push('\n');
            check_text(
                &dir.join(format!("{case}.stream.classes.txt")),
                &classes_text,
            );
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} stream cases");
}
