//! Streams: the SSE producer of all three formats, paced and faulted per the spec.

use super::*;

#[derive(Clone)]
pub(crate) enum StreamKind {
    Chat,
    Completion,
    Anthropic,
    /// `sse`: `?alt=sse` framing; otherwise one JSON array, streamed.
    Gemini {
        model: String,
        sse: bool,
    },
}

impl StreamKind {
    fn wire(&self) -> Wire {
        match self {
            StreamKind::Chat | StreamKind::Completion => Wire::OpenAi,
            StreamKind::Anthropic => Wire::Anthropic,
            StreamKind::Gemini { .. } => Wire::Gemini,
        }
    }
}

/// What the producer task sends: an SSE event, or the instruction to cut the connection.
pub(crate) type Frames = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

pub(crate) fn start_stream(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    kind: StreamKind,
    answer: Answer,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(4);
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    }));
    state.streams_started.fetch_add(1, Ordering::SeqCst);
    let content_type = match kind {
        StreamKind::Gemini { sse: false, .. } => "application/json",
        _ => "text/event-stream",
    };
    let producer = StreamProducer {
        state: state.clone(),
        fault: fault.clone(),
        model: model_of(request),
        prompt_tokens: match kind {
            StreamKind::Gemini { .. } => gemini_prompt_tokens(request),
            _ => prompt_tokens(request),
        },
        include_usage: request
            .pointer("/stream_options/include_usage")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        id,
        kind,
        answer,
    };
    tokio::spawn(producer.run(tx));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}

pub(crate) struct StreamProducer {
    state: Arc<MockState>,
    fault: FaultSpec,
    model: String,
    prompt_tokens: usize,
    include_usage: bool,
    id: u64,
    kind: StreamKind,
    answer: Answer,
}

/// The stream ended early because the peer went away.
pub(crate) struct Cancelled;

/// One event: its SSE `event:` name (if any) and its data.
pub(crate) type Event = (Option<&'static str>, String);

/// Writes events in the stream's framing: SSE, or the elements of one JSON array.
pub(crate) struct Out<'a> {
    tx: &'a Frames,
    json_array: bool,
    started: bool,
}

impl Out<'_> {
    async fn send(&mut self, (name, data): &Event) -> Result<(), Cancelled> {
        let text = if self.json_array {
            let sep = if self.started { ",\r\n" } else { "[" };
            format!("{sep}{data}")
        } else {
            match name {
                Some(name) => format!("event: {name}\ndata: {data}\n\n"),
                None => format!("data: {data}\n\n"),
            }
        };
        self.started = true;
        self.tx
            .send(Ok(Frame::data(Bytes::from(text))))
            .await
            .map_err(|_| Cancelled)
    }

    async fn send_all(&mut self, events: Vec<Event>) -> Result<(), Cancelled> {
        for event in &events {
            self.send(event).await?;
        }
        Ok(())
    }

    /// Closes the JSON array; nothing for SSE.
    async fn end(&mut self) -> Result<(), Cancelled> {
        if !self.json_array {
            return Ok(());
        }
        let close = if self.started { "]" } else { "[]" };
        self.tx
            .send(Ok(Frame::data(Bytes::from(close))))
            .await
            .map_err(|_| Cancelled)
    }
}

pub(crate) fn data(value: serde_json::Value) -> Event {
    (None, value.to_string())
}

pub(crate) fn named(name: &'static str, value: serde_json::Value) -> Event {
    (Some(name), value.to_string())
}

impl StreamProducer {
    fn chunk(&self, delta: serde_json::Value, finish: Option<&str>) -> serde_json::Value {
        let created = now();
        match self.kind {
            StreamKind::Completion => serde_json::json!({
                "id": format!("cmpl-mock-{}", self.id), "object": "text_completion", "created": created,
                "model": self.model,
                "choices": [{"index": 0, "text": delta.get("content").and_then(|c| c.as_str()).unwrap_or(""), "logprobs": null, "finish_reason": finish}],
            }),
            _ => serde_json::json!({
                "id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion.chunk", "created": created,
                "model": self.model, "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
        }
    }

    fn tool_call(&self) -> Option<(&str, &serde_json::Value)> {
        match &self.answer {
            Answer::ToolCall { name, args } => Some((name, args)),
            _ => None,
        }
    }

    /// The in-stream error that `error_event` sends, and what follows it.
    fn error_events(&self) -> Vec<Event> {
        let message = "mock provider fault: error event";
        match &self.kind {
            StreamKind::Chat | StreamKind::Completion => {
                vec![data(error_body(500, message)), (None, "[DONE]".to_string())]
            }
            StreamKind::Anthropic => vec![named("error", anthropic_error(529, message))],
            StreamKind::Gemini { .. } => vec![data(gemini_error(500, message))],
        }
    }

    /// The events before the content events.
    fn prelude(&self) -> Vec<Event> {
        match &self.kind {
            StreamKind::Chat => {
                let delta = match self.tool_call() {
                    Some((name, _)) => {
                        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{
                            "index": 0, "id": format!("call_mock_{}", self.id), "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }]})
                    }
                    None => serde_json::json!({"role": "assistant", "content": ""}),
                };
                vec![data(self.chunk(delta, None))]
            }
            StreamKind::Completion | StreamKind::Gemini { .. } => vec![],
            StreamKind::Anthropic => {
                let block = match self.tool_call() {
                    Some((name, _)) => {
                        serde_json::json!({"type": "tool_use", "id": format!("toolu_mock_{}", self.id), "name": name, "input": {}})
                    }
                    None => serde_json::json!({"type": "text", "text": ""}),
                };
                vec![
                    named(
                        "message_start",
                        serde_json::json!({"type": "message_start", "message": {
                            "id": format!("msg_mock_{}", self.id), "type": "message", "role": "assistant",
                            "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
                        }}),
                    ),
                    named(
                        "content_block_start",
                        serde_json::json!({"type": "content_block_start", "index": 0, "content_block": block}),
                    ),
                    named("ping", serde_json::json!({"type": "ping"})),
                ]
            }
        }
    }

    /// One content event carrying `piece` (of the text, or of a tool call's arguments).
    fn content_event(&self, piece: &str) -> Event {
        let tool = self.tool_call();
        match &self.kind {
            StreamKind::Chat if tool.is_some() => data(self.chunk(
                serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
            )),
            StreamKind::Chat | StreamKind::Completion => {
                data(self.chunk(serde_json::json!({"content": piece}), None))
            }
            StreamKind::Anthropic => {
                let delta = match tool {
                    Some(_) => {
                        serde_json::json!({"type": "input_json_delta", "partial_json": piece})
                    }
                    None => serde_json::json!({"type": "text_delta", "text": piece}),
                };
                named(
                    "content_block_delta",
                    serde_json::json!({"type": "content_block_delta", "index": 0, "delta": delta}),
                )
            }
            StreamKind::Gemini { model, .. } => {
                let part = match tool {
                    Some((name, args)) => {
                        serde_json::json!({"functionCall": {"name": name, "args": args}})
                    }
                    None => serde_json::json!({"text": piece}),
                };
                data(gemini_response(
                    model,
                    self.id,
                    serde_json::json!([part]),
                    None,
                    None,
                ))
            }
        }
    }

    /// The events after `sent` content events.
    fn epilogue(&self, sent: usize) -> Vec<Event> {
        let tool = self.tool_call().is_some();
        match &self.kind {
            StreamKind::Chat | StreamKind::Completion => {
                let finish = if tool { "tool_calls" } else { "stop" };
                let mut events = vec![data(self.chunk(serde_json::json!({}), Some(finish)))];
                if self.include_usage {
                    let mut last = self.chunk(serde_json::json!({}), None);
                    last["choices"] = serde_json::json!([]);
                    last["usage"] = usage(self.prompt_tokens, sent);
                    events.push(data(last));
                }
                events.push((None, "[DONE]".to_string()));
                events
            }
            StreamKind::Anthropic => vec![
                named(
                    "content_block_stop",
                    serde_json::json!({"type": "content_block_stop", "index": 0}),
                ),
                named(
                    "message_delta",
                    serde_json::json!({"type": "message_delta",
                        "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null},
                        "usage": {"output_tokens": sent}}),
                ),
                named("message_stop", serde_json::json!({"type": "message_stop"})),
            ],
            StreamKind::Gemini { model, .. } => vec![data(gemini_response(
                model,
                self.id,
                serde_json::json!([{"text": ""}]),
                Some("STOP"),
                Some(gemini_usage(self.prompt_tokens, sent)),
            ))],
        }
    }

    async fn run(self, tx: Frames) {
        match self.produce(&tx).await {
            Ok(()) => {
                self.state.streams_completed.fetch_add(1, Ordering::SeqCst);
            }
            Err(Cancelled) => {
                self.state.streams_cancelled.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    async fn produce(&self, tx: &Frames) -> Result<(), Cancelled> {
        let f = &self.fault;
        let mut out = Out {
            tx,
            json_array: matches!(self.kind, StreamKind::Gemini { sse: false, .. }),
            started: false,
        };
        if let Some(d) = f.first_chunk_delay {
            pause(tx, d).await?;
        }
        if f.error_event {
            out.send_all(self.error_events()).await?;
            return out.end().await;
        }
        out.send_all(self.prelude()).await?;
        let chunks = if f.empty_stream {
            0
        } else {
            f.chunks.unwrap_or(5)
        };
        let pieces = self.answer.pieces(chunks, self.kind.wire());
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                if let Some(d) = f.chunk_delay {
                    pause(tx, d).await?;
                }
            }
            if f.stall_after == Some(i) {
                tx.closed().await;
                return Err(Cancelled);
            }
            if f.cut_after == Some(i) {
                let _ = tx.send(Err(std::io::Error::other("mock fault: cut"))).await;
                return Err(Cancelled);
            }
            if f.malformed && i == 1 {
                let (name, _) = self.content_event(piece);
                out.send(&(name, "{not json".to_string())).await?;
                continue;
            }
            out.send(&self.content_event(piece)).await?;
        }
        if f.stall_after.is_some_and(|k| k >= pieces.len()) {
            tx.closed().await;
            return Err(Cancelled);
        }
        out.send_all(self.epilogue(pieces.len())).await?;
        out.end().await
    }
}

/// Sleeps, noticing a peer that went away meanwhile.
pub(crate) async fn pause(tx: &Frames, d: Duration) -> Result<(), Cancelled> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = tx.closed() => Err(Cancelled),
    }
}
