//! `--progress=rawjson`: one JSON object per event and line, for machines.

use std::io::Write;
use std::sync::Mutex;

use kiln_build::{Event, Reporter};
use serde_json::json;

/// Writes one JSON event per line.
pub(crate) struct RawJson {
    out: Mutex<Box<dyn Write + Send>>,
}

impl RawJson {
    /// A renderer writing to `out`.
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }
}

/// The JSON form of an event.
pub(super) fn to_json(event: &Event) -> serde_json::Value {
    match event {
        Event::StepStarted {
            id,
            stage,
            index,
            total,
            name,
        } => {
            json!({"event": "step-started", "step": id, "stage": stage, "index": index, "total": total, "name": name})
        }
        Event::StepCached { id } => json!({"event": "step-cached", "step": id}),
        Event::CacheMiss { id, reason } => {
            json!({"event": "cache-miss", "step": id, "reason": reason})
        }
        Event::Log { id, stream, line } => {
            json!({"event": "log", "step": id, "stream": stream, "data": String::from_utf8_lossy(line)})
        }
        Event::StepDone { id, elapsed } => {
            json!({"event": "step-done", "step": id, "seconds": elapsed.as_secs_f64()})
        }
        Event::StepFailed { id, message } => {
            json!({"event": "step-failed", "step": id, "error": message})
        }
        Event::StageDone { stage, size } => {
            json!({"event": "stage-done", "stage": stage, "size": size})
        }
    }
}

impl Reporter for RawJson {
    fn event(&self, event: Event) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(out, "{}", to_json(&event));
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_event() {
        let v = to_json(&Event::StepCached { id: 4 });
        assert_eq!(v, json!({"event": "step-cached", "step": 4}));
        let v = to_json(&Event::Log {
            id: 1,
            stream: 2,
            line: b"oops\n".to_vec(),
        });
        assert_eq!(v["data"], "oops\n");
    }
}
