//! The routes: the request handler, the control endpoints and the OpenAI bodies.

use super::*;

pub(crate) fn full(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

pub(crate) fn error_body(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": message, "type": if status == 429 { "rate_limit_error" } else { "server_error" }, "code": status.to_string()}})
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Splits `/fault/<spec>/rest` into the spec and `/rest`.
pub(crate) fn split_fault_prefix(path: &str) -> (Option<&str>, &str) {
    match path.strip_prefix("/fault/") {
        Some(rest) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None => (None, path),
    }
}

pub(crate) async fn handle(
    state: Arc<MockState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let full_path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    if let Some(control) = full_path.strip_prefix("/_mock/") {
        return Ok(control_route(&state, control, body));
    }
    let (prefix_spec, path) = split_fault_prefix(&full_path);
    let path = path.to_string();
    let route = path.split('?').next().unwrap_or("").to_string();
    // Azure OpenAI's paths answer like the OpenAI routes they stand for.
    let azure = azure_route(&route);
    let route = azure.as_ref().map_or(route, |a| a.route.clone());
    let wire = if parts.method == hyper::Method::POST {
        wire_of(&route)
    } else {
        Wire::OpenAi
    };
    let fault = match fault_of(&state, &parts.headers, prefix_spec) {
        Ok(f) => f,
        Err(e) => return Ok(wire_error(wire, 400, &e)),
    };
    record(&state, &parts, &path, &body);
    if let Some(early) = head_faults(&state, &fault, wire).await {
        return early;
    }
    let mut request: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if let Some(azure) = &azure {
        if let Some(refused) = azure_check(azure, &parts.headers, &path) {
            return Ok(refused);
        }
        // The model a deployment answers with, when the body names none.
        if let (Some(deployment), Some(obj)) = (&azure.deployment, request.as_object_mut()) {
            obj.entry("model").or_insert(deployment.clone().into());
        }
    }
    let answer_override = parts
        .headers
        .get("x-mock-answer")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    Ok(match wire {
        Wire::Anthropic => anthropic_route(
            &state,
            &fault,
            &parts.headers,
            &request,
            id,
            answer_override.as_deref(),
        ),
        Wire::Gemini => gemini_route(&state, &fault, &path, &parts.headers, &request, id),
        Wire::OpenAi => {
            let call = OpenAiCall {
                fault: &fault,
                request: &request,
                id,
                answer_override: answer_override.as_deref(),
            };
            openai_route(&state, &call, parts.method.as_str(), &route, &path, &body)
        }
    })
}

/// The request's fault spec: its `x-mock-fault` header, else its path prefix, else the default
/// set by `set_fault`. A spec that does not parse is the error.
fn fault_of(
    state: &MockState,
    headers: &hyper::HeaderMap,
    prefix_spec: Option<&str>,
) -> Result<FaultSpec, String> {
    let header_spec = headers
        .get("x-mock-fault")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match header_spec.or(prefix_spec.map(str::to_string)) {
        Some(text) => text.parse::<FaultSpec>(),
        None => Ok(state
            .default_fault
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default()),
    }
}

/// Records the request for `/_mock/requests` (bounded, so a long benchmark soak does not grow
/// the mock without end).
fn record(state: &MockState, parts: &hyper::http::request::Parts, path: &str, body: &Bytes) {
    state
        .requests
        .lock()
        .map(|mut r| {
            if r.len() >= MAX_RECORDED_REQUESTS {
                r.drain(..MAX_RECORDED_REQUESTS / 2);
            }
            r.push(RecordedRequest {
                method: parts.method.to_string(),
                path: path.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.clone(),
            })
        })
        .ok();
}

/// The faults that act before any answer: `cut=headers`, `headers_delay_ms`, and `status` (with
/// `retry_after`, `fail_first`). `Some` is the response (or the cut) to give instead.
async fn head_faults(
    state: &MockState,
    fault: &FaultSpec,
    wire: Wire,
) -> Option<Result<Response<Body>, std::io::Error>> {
    if fault.cut_headers {
        return Some(Err(std::io::Error::other("mock fault: cut before headers")));
    }
    if let Some(d) = fault.headers_delay {
        tokio::time::sleep(d).await;
    }
    let status = fault.status?;
    if !state.should_fail(fault) {
        return None;
    }
    let mut resp = wire_error(
        wire,
        status,
        &format!("mock provider fault: status {status}"),
    );
    if let Some(ra) = fault.retry_after.as_deref().and_then(|r| r.parse().ok()) {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, ra);
    }
    Some(Ok(resp))
}

/// What an OpenAI-format answer is built from.
struct OpenAiCall<'a> {
    fault: &'a FaultSpec,
    request: &'a serde_json::Value,
    id: u64,
    answer_override: Option<&'a str>,
}

/// The OpenAI routes (and the JSON echo of any other path).
fn openai_route(
    state: &Arc<MockState>,
    call: &OpenAiCall,
    method: &str,
    route: &str,
    path: &str,
    body: &Bytes,
) -> Response<Body> {
    let (fault, request, id) = (call.fault, call.request, call.id);
    let answer = || {
        let answer = match route {
            "/v1/responses" => responses_answer(request),
            _ => openai_answer(request),
        };
        with_override(answer, call.answer_override)
    };
    let stream = request
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    match (method, route) {
        ("POST", "/v1/chat/completions") if stream => {
            start_stream(state, fault, request, id, StreamKind::Chat, answer())
        }
        ("POST", "/v1/completions") if stream => start_stream(
            state,
            fault,
            request,
            id,
            StreamKind::Completion,
            Answer::Default,
        ),
        ("POST", "/v1/chat/completions") => json(
            StatusCode::OK,
            chat_completion(fault, request, id, &answer()),
        ),
        ("POST", "/v1/completions") => json(StatusCode::OK, completion(fault, request, id)),
        ("POST", "/v1/embeddings") => json(StatusCode::OK, embeddings(request)),
        ("POST", "/v1/responses") if stream => {
            start_stream(state, fault, request, id, StreamKind::Responses, answer())
        }
        ("POST", "/v1/responses") => json(StatusCode::OK, responses(fault, request, id, &answer())),
        ("GET", "/v1/models") => json(StatusCode::OK, models()),
        (method, _) => json(
            StatusCode::OK,
            serde_json::json!({"echo": {"method": method, "path": path, "body": String::from_utf8_lossy(body)}}),
        ),
    }
}

pub(crate) fn control_route(state: &MockState, route: &str, body: Bytes) -> Response<Body> {
    match route {
        "requests" => {
            let list: Vec<serde_json::Value> = state
                .requests
                .lock()
                .map(|r| r.iter().map(RecordedRequest::to_json).collect())
                .unwrap_or_default();
            json(StatusCode::OK, serde_json::Value::Array(list))
        }
        "stats" => {
            let s = state.stats();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "open_connections": s.open_connections,
                    "total_connections": s.total_connections,
                    "streams_started": s.streams_started,
                    "streams_completed": s.streams_completed,
                    "streams_cancelled": s.streams_cancelled,
                    "tls_handshakes_full": s.tls_handshakes_full,
                    "tls_handshakes_resumed": s.tls_handshakes_resumed,
                    "h2_connections": s.h2_connections,
                    "h1_connections": s.h1_connections,
                    "max_concurrent_streams": s.max_concurrent_streams,
                    "streams_reset": s.streams_reset,
                }),
            )
        }
        "fault" => {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let parsed = if text.is_empty() {
                Ok(None)
            } else {
                text.parse::<FaultSpec>().map(Some)
            };
            match parsed {
                Ok(f) => {
                    if let Ok(mut d) = state.default_fault.lock() {
                        *d = f;
                    }
                    json(StatusCode::OK, serde_json::json!({"fault": text}))
                }
                Err(e) => json(StatusCode::BAD_REQUEST, error_body(400, &e)),
            }
        }
        "clear" => {
            if let Ok(mut r) = state.requests.lock() {
                r.clear();
            }
            json(StatusCode::OK, serde_json::json!({"cleared": true}))
        }
        _ => json(
            StatusCode::NOT_FOUND,
            error_body(404, "unknown control route"),
        ),
    }
}

pub(crate) fn model_of(request: &serde_json::Value) -> String {
    request
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("mock-model")
        .to_string()
}

pub(crate) fn prompt_tokens(request: &serde_json::Value) -> usize {
    let text = request
        .get("messages")
        .map(|m| m.to_string())
        .or_else(|| request.get("prompt").map(|p| p.to_string()))
        .or_else(|| request.get("input").map(|p| p.to_string()))
        .unwrap_or_default();
    text.split_whitespace().count().max(1)
}

pub(crate) fn content(fault: &FaultSpec) -> String {
    let base = "Hello from the mock provider.";
    match fault.content_bytes {
        Some(n) if n > base.len() => format!("{base}{}", "x".repeat(n - base.len())),
        _ => base.to_string(),
    }
}

pub(crate) fn usage(prompt: usize, completion: usize) -> serde_json::Value {
    serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

pub(crate) fn chat_completion(
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    answer: &Answer,
) -> serde_json::Value {
    let (message, finish) = match answer {
        Answer::ToolCall { name, args } => (
            serde_json::json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                "id": format!("call_mock_{id}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()},
            }]}),
            "tool_calls",
        ),
        _ => (
            serde_json::json!({"role": "assistant", "content": answer.text(fault), "refusal": null}),
            "stop",
        ),
    };
    serde_json::json!({
        "id": format!("chatcmpl-mock-{id}"),
        "object": "chat.completion",
        "created": now(),
        "model": model_of(request),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": with_reasoning(
            usage(prompt_tokens(request), answer.tokens(fault)),
            chat_thinking(request).tokens(),
        ),
        "system_fingerprint": "fp_mock",
    })
}

pub(crate) fn completion(
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
) -> serde_json::Value {
    let text = content(fault);
    serde_json::json!({
        "id": format!("cmpl-mock-{id}"),
        "object": "text_completion",
        "created": now(),
        "model": model_of(request),
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(prompt_tokens(request), text.split_whitespace().count()),
    })
}

pub(crate) fn embeddings(request: &serde_json::Value) -> serde_json::Value {
    let inputs: Vec<String> = match request.get("input") {
        Some(serde_json::Value::Array(items)) => items.iter().map(|i| i.to_string()).collect(),
        Some(other) => vec![other.to_string()],
        None => vec![],
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            if let Some(vector) = chosen_vector(text) {
                return serde_json::json!({"object": "embedding", "index": i, "embedding": vector});
            }
            let seed = text
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            let vector: Vec<f64> = (0..8)
                .map(|k| ((seed.rotate_left(k * 4) % 1000) as f64) / 1000.0)
                .collect();
            serde_json::json!({"object": "embedding", "index": i, "embedding": vector})
        })
        .collect();
    let tokens: usize = inputs
        .iter()
        .map(|t| t.split_whitespace().count().max(1))
        .sum();
    serde_json::json!({"object": "list", "data": data, "model": model_of(request), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

/// The vector an input names with `[[emb:x,y,...]]`, if it does.
pub(crate) fn chosen_vector(text: &str) -> Option<Vec<f64>> {
    let start = text.find("[[emb:")? + "[[emb:".len();
    let len = text[start..].find("]]")?;
    text[start..start + len]
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok())
        .collect()
}

pub(crate) fn models() -> serde_json::Value {
    let data: Vec<serde_json::Value> = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mock"}))
        .collect();
    serde_json::json!({"object": "list", "data": data})
}

/// An Azure OpenAI path: the OpenAI route it stands for and the deployment it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzureRoute {
    pub route: String,
    pub deployment: Option<String>,
}

/// `/openai/deployments/{deployment}/{chat/completions|completions|embeddings|responses}`,
/// `/openai/v1/{rest}` and `/openai/responses`.
pub(crate) fn azure_route(route: &str) -> Option<AzureRoute> {
    let rest = route.strip_prefix("/openai/")?;
    if let Some(rest) = rest.strip_prefix("deployments/") {
        let (deployment, op) = rest.split_once('/')?;
        let known = matches!(
            op,
            "chat/completions" | "completions" | "embeddings" | "responses"
        );
        return (known && !deployment.is_empty()).then(|| AzureRoute {
            route: format!("/v1/{op}"),
            deployment: Some(deployment.to_string()),
        });
    }
    let route = match rest.strip_prefix("v1/") {
        Some(v1) => format!("/v1/{v1}"),
        None if rest == "responses" => "/v1/responses".to_string(),
        None => return None,
    };
    Some(AzureRoute {
        route,
        deployment: None,
    })
}

/// Azure's own refusals: no `api-key` (or `Authorization`) header is a 401; a deployment path
/// without `api-version` a 404, as Azure answers them.
fn azure_check(
    azure: &AzureRoute,
    headers: &hyper::HeaderMap,
    path: &str,
) -> Option<Response<Body>> {
    let azure_error = |status: StatusCode, code: &str, message: &str| {
        json(
            status,
            serde_json::json!({"error": {"code": code, "message": message}}),
        )
    };
    if header(headers, "api-key").is_none() && header(headers, "authorization").is_none() {
        return Some(azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        ));
    }
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let versioned = query.split('&').any(|p| {
        p.strip_prefix("api-version=")
            .is_some_and(|v| !v.is_empty())
    });
    if azure.deployment.is_some() && !versioned {
        return Some(azure_error(
            StatusCode::NOT_FOUND,
            "404",
            "Resource not found (the api-version query parameter is required).",
        ));
    }
    None
}
