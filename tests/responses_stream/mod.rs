//! A validator of a Responses API client stream (as the OpenAI SDK's stream accumulator reads
//! it), shared by the property tests: event names match their `type`, `sequence_number`s
//! strictly increase, `response.created` comes first, every item added is done before the
//! response completes, deltas belong to an open item of the right kind, the `.done` texts and
//! arguments and the final response equal what the deltas assembled, and exactly one terminal
//! event (`response.completed`, `response.incomplete` or `error`) ends the stream.

use serde_json::Value;
use switchyard::upstream::sse::{SseEvent, SseParser};

#[derive(Debug, Default)]
struct Item {
    id: String,
    kind: String,
    done: bool,
    /// A content or summary part was added (and not yet done).
    part_open: bool,
    part_done: bool,
    text_done: bool,
    /// What the deltas assembled (text, summary or arguments).
    acc: String,
}

/// What a valid stream told: the text of its messages, reasoning summaries and function-call
/// arguments, in output order.
#[derive(Debug, Default, PartialEq)]
pub struct Assembled {
    pub text: String,
    pub reasoning: String,
    pub arguments: Vec<String>,
    pub terminal: String,
}

fn parse(bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
    let mut p = SseParser::new(1 << 24);
    p.push(bytes).map_err(|e| format!("unparsable: {e:?}"))?;
    let mut out = Vec::new();
    while let Some(e) = p.next_event() {
        out.push(e);
    }
    if p.finish().is_some() {
        return Err("output does not end on an event boundary".into());
    }
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key]
        .as_str()
        .ok_or_else(|| format!("{key} missing in {v}"))
}

fn u64_of(v: &Value, key: &str) -> Result<u64, String> {
    v[key]
        .as_u64()
        .ok_or_else(|| format!("{key} missing in {v}"))
}

struct State {
    items: Vec<Item>,
    started: bool,
    last_seq: Option<u64>,
    terminal: Option<String>,
}

impl State {
    /// The open item `v` names (`output_index` and `item_id` agreeing), of `kind`.
    fn item(&mut self, v: &Value, kind: &str) -> Result<&mut Item, String> {
        let index = u64_of(v, "output_index")? as usize;
        let id = str_of(v, "item_id")?.to_string();
        let item = self
            .items
            .get_mut(index)
            .ok_or_else(|| format!("no item at output_index {index}"))?;
        if item.id != id || item.kind != kind || item.done {
            return Err(format!("{v} does not name an open {kind} item"));
        }
        Ok(item)
    }

    fn event(&mut self, kind: &str, v: &Value) -> Result<(), String> {
        match kind {
            "response.created" => {
                if self.started || !self.items.is_empty() {
                    return Err("response.created twice or late".into());
                }
                self.started = true;
                if v["response"]["status"] != "in_progress" || !v["response"]["id"].is_string() {
                    return Err(format!("bad created response {v}"));
                }
                return Ok(());
            }
            "error" => {
                if !v["message"].is_string() {
                    return Err(format!("error without message {v}"));
                }
                self.terminal = Some(kind.into());
                return Ok(());
            }
            _ => {}
        }
        if !self.started {
            return Err(format!("{kind} before response.created"));
        }
        match kind {
            "response.in_progress" => Ok(()),
            "response.output_item.added" => self.added(v),
            "response.output_item.done" => self.item_done(v),
            "response.content_part.added" | "response.reasoning_summary_part.added" => {
                let k = if kind.contains("reasoning") {
                    "reasoning"
                } else {
                    "message"
                };
                let item = self.item(v, k)?;
                if item.part_open || item.part_done {
                    return Err(format!("second part in {}", item.id));
                }
                item.part_open = true;
                Ok(())
            }
            "response.output_text.delta" | "response.reasoning_summary_text.delta" => {
                let k = if kind.contains("reasoning") {
                    "reasoning"
                } else {
                    "message"
                };
                let item = self.item(v, k)?;
                if !item.part_open || item.text_done {
                    return Err(format!("delta outside a part in {}", item.id));
                }
                item.acc.push_str(str_of(v, "delta")?);
                Ok(())
            }
            "response.output_text.done" | "response.reasoning_summary_text.done" => {
                let k = if kind.contains("reasoning") {
                    "reasoning"
                } else {
                    "message"
                };
                let item = self.item(v, k)?;
                if !item.part_open || item.text_done || str_of(v, "text")? != item.acc {
                    return Err(format!("bad {kind} for {}", item.id));
                }
                item.text_done = true;
                Ok(())
            }
            "response.content_part.done" | "response.reasoning_summary_part.done" => {
                let k = if kind.contains("reasoning") {
                    "reasoning"
                } else {
                    "message"
                };
                let item = self.item(v, k)?;
                if !item.text_done || v["part"]["text"] != item.acc.as_str() {
                    return Err(format!("bad {kind} for {}", item.id));
                }
                item.part_open = false;
                item.part_done = true;
                Ok(())
            }
            "response.function_call_arguments.delta" => {
                let item = self.item(v, "function_call")?;
                if item.text_done {
                    return Err("arguments after their done".into());
                }
                item.acc.push_str(str_of(v, "delta")?);
                Ok(())
            }
            "response.function_call_arguments.done" => {
                let item = self.item(v, "function_call")?;
                if str_of(v, "arguments")? != item.acc {
                    return Err(format!("arguments.done differs from the deltas: {v}"));
                }
                item.text_done = true;
                Ok(())
            }
            "response.completed" | "response.incomplete" => self.complete(kind, v),
            other => Err(format!("unexpected event {other}")),
        }
    }

    fn added(&mut self, v: &Value) -> Result<(), String> {
        let index = u64_of(v, "output_index")? as usize;
        if index != self.items.len() {
            return Err(format!("output_index {index} out of order"));
        }
        let item = &v["item"];
        let kind = str_of(item, "type")?.to_string();
        if kind == "function_call"
            && (item["arguments"] != ""
                || !item["call_id"].is_string()
                || !item["name"].is_string())
        {
            return Err(format!("bad function_call item {item}"));
        }
        self.items.push(Item {
            id: str_of(item, "id")?.to_string(),
            kind,
            ..Item::default()
        });
        Ok(())
    }

    fn item_done(&mut self, v: &Value) -> Result<(), String> {
        let index = u64_of(v, "output_index")? as usize;
        let item_v = &v["item"];
        let item = self
            .items
            .get_mut(index)
            .ok_or_else(|| format!("done of unknown item {index}"))?;
        if item.done || item_v["id"] != item.id.as_str() || item_v["type"] != item.kind.as_str() {
            return Err(format!("bad output_item.done {v}"));
        }
        if item.part_open {
            return Err(format!("item {} done with a part open", item.id));
        }
        let whole = whole_text(item_v);
        if whole != item.acc {
            return Err(format!(
                "item {} says {whole:?}, deltas {:?}",
                item.id, item.acc
            ));
        }
        item.done = true;
        Ok(())
    }

    fn complete(&mut self, kind: &str, v: &Value) -> Result<(), String> {
        if let Some(open) = self.items.iter().find(|i| !i.done) {
            return Err(format!("{kind} with item {} open", open.id));
        }
        let r = &v["response"];
        let want = if kind == "response.completed" {
            "completed"
        } else {
            "incomplete"
        };
        if r["status"] != want {
            return Err(format!("{kind} with status {}", r["status"]));
        }
        let output = r["output"].as_array().ok_or("response without output")?;
        if output.len() != self.items.len() {
            return Err("final output differs from the items".into());
        }
        for (o, item) in output.iter().zip(&self.items) {
            if o["id"] != item.id.as_str() || whole_text(o) != item.acc {
                return Err(format!("final output item {o} differs"));
            }
        }
        self.terminal = Some(kind.into());
        Ok(())
    }
}

/// The whole text of an output item: a message's text, a reasoning item's summary, a call's
/// arguments.
fn whole_text(item: &Value) -> String {
    match item["type"].as_str() {
        Some("message") => item["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str())
            .collect(),
        Some("reasoning") => item["summary"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str())
            .collect(),
        Some("function_call") => item["arguments"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Checks a Responses client stream; what it assembled.
pub fn validate_responses(bytes: &[u8]) -> Result<Assembled, String> {
    let mut st = State {
        items: Vec::new(),
        started: false,
        last_seq: None,
        terminal: None,
    };
    for e in parse(bytes)? {
        if e.event.is_none() && e.data.is_empty() {
            continue; // a comment
        }
        if let Some(t) = &st.terminal {
            return Err(format!("event after {t}: {:?}", e.data));
        }
        let v: Value = serde_json::from_str(&e.data).map_err(|x| format!("not JSON: {x}"))?;
        let kind = str_of(&v, "type")?.to_string();
        if e.event.as_deref() != Some(kind.as_str()) {
            return Err(format!("event name {:?} ≠ type {kind}", e.event));
        }
        let seq = u64_of(&v, "sequence_number")?;
        if st.last_seq.is_some_and(|s| seq <= s) {
            return Err(format!("sequence_number {seq} after {:?}", st.last_seq));
        }
        st.last_seq = Some(seq);
        st.event(&kind, &v)?;
    }
    let Some(terminal) = st.terminal else {
        return Err("stream ends without a terminal event".into());
    };
    let mut a = Assembled {
        terminal,
        ..Assembled::default()
    };
    for item in st.items {
        match item.kind.as_str() {
            "message" => a.text.push_str(&item.acc),
            "reasoning" => a.reasoning.push_str(&item.acc),
            "function_call" => a.arguments.push(item.acc),
            _ => {}
        }
    }
    Ok(a)
}
