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
    /// The Responses API's typed events (`response.created` … `response.completed`).
    Responses,
}

impl StreamKind {
    fn wire(&self) -> Wire {
        match self {
            StreamKind::Chat | StreamKind::Completion | StreamKind::Responses => Wire::OpenAi,
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
    let thinking = match &kind {
        StreamKind::Chat => chat_thinking(request),
        StreamKind::Completion => Thinking::default(),
        StreamKind::Anthropic => anthropic_thinking(request),
        StreamKind::Gemini { .. } => gemini_thinking(request),
        StreamKind::Responses => responses_thinking(request),
    };
    let producer = StreamProducer {
        state: state.clone(),
        request: match kind {
            StreamKind::Responses => request.clone(),
            _ => serde_json::Value::Null,
        },
        thinking,
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
    /// The request, kept only for the Responses API (its `response` objects echo it).
    request: serde_json::Value,
    thinking: Thinking,
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

/// Writes events in the stream's framing: SSE, or the elements of one JSON array. With
/// `sequence`, each JSON object event gets the next `sequence_number` (the Responses API).
pub(crate) struct Out<'a> {
    tx: &'a Frames,
    json_array: bool,
    started: bool,
    sequence: Option<u64>,
}

impl Out<'_> {
    async fn send(&mut self, (name, data): &Event) -> Result<(), Cancelled> {
        let mut numbered = None;
        if let Some(n) = self.sequence {
            if let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str(data) {
                obj.insert("sequence_number".into(), n.into());
                numbered = Some(serde_json::Value::Object(obj).to_string());
                self.sequence = Some(n + 1);
            }
        }
        let data = numbered.as_deref().unwrap_or(data);
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
            StreamKind::Responses => vec![named(
                "error",
                serde_json::json!({"type": "error", "code": "server_error", "message": message, "param": null}),
            )],
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
            StreamKind::Completion => vec![],
            StreamKind::Gemini { model, .. } => match self.thinking.visible {
                true => vec![data(gemini_response(
                    model,
                    self.id,
                    serde_json::json!([gemini_thought_part()]),
                    None,
                    None,
                ))],
                false => vec![],
            },
            StreamKind::Anthropic => self.anthropic_prelude(),
            StreamKind::Responses => self.responses_prelude(),
        }
    }

    /// `message_start`, the thinking blocks (thinking deltas, then the signature), the
    /// answer's `content_block_start`; `ping` after the first block starts.
    fn anthropic_prelude(&self) -> Vec<Event> {
        let start = |index: usize, block: serde_json::Value| {
            named(
                "content_block_start",
                serde_json::json!({"type": "content_block_start", "index": index, "content_block": block}),
            )
        };
        let delta = |index: usize, delta: serde_json::Value| {
            named(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": index, "delta": delta}),
            )
        };
        let stop = |index: usize| {
            named(
                "content_block_stop",
                serde_json::json!({"type": "content_block_stop", "index": index}),
            )
        };
        let mut events = vec![named(
            "message_start",
            serde_json::json!({"type": "message_start", "message": {
                "id": format!("msg_mock_{}", self.id), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
            }}),
        )];
        let ping = named("ping", serde_json::json!({"type": "ping"}));
        let blocks = anthropic_thinking_blocks(self.thinking);
        for (index, block) in blocks.iter().enumerate() {
            if block["type"] == "thinking" {
                events.push(start(
                    index,
                    serde_json::json!({"type": "thinking", "thinking": "", "signature": ""}),
                ));
                for piece in split_even(THINKING_TEXT, 2) {
                    events.push(delta(
                        index,
                        serde_json::json!({"type": "thinking_delta", "thinking": piece}),
                    ));
                }
                events.push(delta(
                    index,
                    serde_json::json!({"type": "signature_delta", "signature": ANTHROPIC_SIGNATURE}),
                ));
            } else {
                events.push(start(index, block.clone()));
            }
            events.push(stop(index));
            if index == 0 {
                events.insert(2, ping.clone());
            }
        }
        let block = match self.tool_call() {
            Some((name, _)) => {
                serde_json::json!({"type": "tool_use", "id": format!("toolu_mock_{}", self.id), "name": name, "input": {}})
            }
            None => serde_json::json!({"type": "text", "text": ""}),
        };
        events.push(start(blocks.len(), block));
        if blocks.is_empty() {
            events.push(ping);
        }
        events
    }

    /// The index of the Anthropic block carrying the answer (after the thinking blocks).
    fn anthropic_index(&self) -> usize {
        anthropic_thinking_blocks(self.thinking).len()
    }

    /// The `output_index` of the Responses item carrying the answer (after a reasoning item).
    fn responses_index(&self) -> usize {
        usize::from(self.thinking.on)
    }

    fn responses_item_id(&self) -> String {
        match self.tool_call() {
            Some(_) => function_item_id(self.id),
            None => message_item_id(self.id),
        }
    }

    /// `response.created`, `response.in_progress`, the reasoning item (with its summary events
    /// when asked for), the answer's `output_item.added` (and `content_part.added` for text).
    fn responses_prelude(&self) -> Vec<Event> {
        let response = response_object(&self.request, self.id, "in_progress", vec![], None);
        let mut events = vec![
            named(
                "response.created",
                serde_json::json!({"type": "response.created", "response": response}),
            ),
            named(
                "response.in_progress",
                serde_json::json!({"type": "response.in_progress", "response": response}),
            ),
        ];
        if self.thinking.on {
            let item_id = reasoning_item_id(self.id);
            events.push(named(
                "response.output_item.added",
                serde_json::json!({"type": "response.output_item.added", "output_index": 0,
                    "item": reasoning_item(self.id, self.thinking, false)}),
            ));
            if self.thinking.visible {
                let at =
                    serde_json::json!({"item_id": item_id, "output_index": 0, "summary_index": 0});
                let with = |kind: &str, extra: serde_json::Value| {
                    let mut v = at.clone();
                    v["type"] = kind.into();
                    for (k, x) in extra.as_object().into_iter().flatten() {
                        v[k] = x.clone();
                    }
                    v
                };
                events.extend([
                    named(
                        "response.reasoning_summary_part.added",
                        with(
                            "response.reasoning_summary_part.added",
                            serde_json::json!({"part": {"type": "summary_text", "text": ""}}),
                        ),
                    ),
                    named(
                        "response.reasoning_summary_text.delta",
                        with(
                            "response.reasoning_summary_text.delta",
                            serde_json::json!({"delta": THINKING_TEXT}),
                        ),
                    ),
                    named(
                        "response.reasoning_summary_text.done",
                        with(
                            "response.reasoning_summary_text.done",
                            serde_json::json!({"text": THINKING_TEXT}),
                        ),
                    ),
                    named(
                        "response.reasoning_summary_part.done",
                        with(
                            "response.reasoning_summary_part.done",
                            serde_json::json!({"part": {"type": "summary_text", "text": THINKING_TEXT}}),
                        ),
                    ),
                ]);
            }
            events.push(named(
                "response.output_item.done",
                serde_json::json!({"type": "response.output_item.done", "output_index": 0,
                    "item": reasoning_item(self.id, self.thinking, true)}),
            ));
        }
        let index = self.responses_index();
        events.push(named(
            "response.output_item.added",
            serde_json::json!({"type": "response.output_item.added", "output_index": index,
                "item": answer_item(self.id, &self.answer, "", false)}),
        ));
        if self.tool_call().is_none() {
            events.push(named(
                "response.content_part.added",
                serde_json::json!({"type": "response.content_part.added", "item_id": self.responses_item_id(),
                    "output_index": index, "content_index": 0, "part": output_text_part("")}),
            ));
        }
        events
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
                    serde_json::json!({"type": "content_block_delta", "index": self.anthropic_index(), "delta": delta}),
                )
            }
            StreamKind::Responses => match tool {
                Some(_) => named(
                    "response.function_call_arguments.delta",
                    serde_json::json!({"type": "response.function_call_arguments.delta",
                        "item_id": self.responses_item_id(), "output_index": self.responses_index(), "delta": piece}),
                ),
                None => named(
                    "response.output_text.delta",
                    serde_json::json!({"type": "response.output_text.delta", "item_id": self.responses_item_id(),
                        "output_index": self.responses_index(), "content_index": 0, "delta": piece, "logprobs": []}),
                ),
            },
            StreamKind::Gemini { model, .. } => {
                let part = match tool {
                    Some(_) => gemini_part(&self.answer, &self.fault, self.thinking),
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

    /// The events after the content events that carried `pieces`.
    fn epilogue(&self, pieces: &[String]) -> Vec<Event> {
        let sent = pieces.len();
        let tool = self.tool_call().is_some();
        match &self.kind {
            StreamKind::Chat | StreamKind::Completion => {
                let finish = if tool { "tool_calls" } else { "stop" };
                let mut events = vec![data(self.chunk(serde_json::json!({}), Some(finish)))];
                if self.include_usage {
                    let mut last = self.chunk(serde_json::json!({}), None);
                    last["choices"] = serde_json::json!([]);
                    last["usage"] =
                        with_reasoning(usage(self.prompt_tokens, sent), self.thinking.tokens());
                    events.push(data(last));
                }
                events.push((None, "[DONE]".to_string()));
                events
            }
            StreamKind::Anthropic => vec![
                named(
                    "content_block_stop",
                    serde_json::json!({"type": "content_block_stop", "index": self.anthropic_index()}),
                ),
                named(
                    "message_delta",
                    serde_json::json!({"type": "message_delta",
                        "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null},
                        "usage": {"output_tokens": sent + self.thinking.tokens()}}),
                ),
                named("message_stop", serde_json::json!({"type": "message_stop"})),
            ],
            StreamKind::Gemini { model, .. } => vec![data(gemini_response(
                model,
                self.id,
                serde_json::json!([{"text": ""}]),
                Some("STOP"),
                Some(with_thoughts(
                    gemini_usage(self.prompt_tokens, sent),
                    self.thinking.tokens(),
                )),
            ))],
            StreamKind::Responses => self.responses_epilogue(pieces),
        }
    }

    /// The answer item's `…done` events, then `response.completed` with the whole output and
    /// the usage.
    fn responses_epilogue(&self, pieces: &[String]) -> Vec<Event> {
        let text = pieces.concat();
        let (item_id, index) = (self.responses_item_id(), self.responses_index());
        let mut item = answer_item(self.id, &self.answer, &text, true);
        let mut events = Vec::new();
        if self.tool_call().is_some() {
            item["arguments"] = text.clone().into();
            events.push(named(
                "response.function_call_arguments.done",
                serde_json::json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                    "output_index": index, "arguments": text}),
            ));
        } else {
            events.push(named(
                "response.output_text.done",
                serde_json::json!({"type": "response.output_text.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
            ));
            events.push(named(
                "response.content_part.done",
                serde_json::json!({"type": "response.content_part.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "part": output_text_part(&text)}),
            ));
        }
        events.push(named(
            "response.output_item.done",
            serde_json::json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        ));
        let mut output = Vec::new();
        if self.thinking.on {
            output.push(reasoning_item(self.id, self.thinking, true));
        }
        output.push(item);
        let usage = responses_usage(self.prompt_tokens, pieces.len(), self.thinking.tokens());
        let response = response_object(&self.request, self.id, "completed", output, Some(usage));
        events.push(named(
            "response.completed",
            serde_json::json!({"type": "response.completed", "response": response}),
        ));
        events
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
            sequence: matches!(self.kind, StreamKind::Responses).then_some(0),
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
        out.send_all(self.epilogue(&pieces)).await?;
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
