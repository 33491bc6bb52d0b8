//! `--progress=plain`: BuildKit's block format.
//!
//! ```text
//! #3 [builder 2/4] RUN make
//! #3 0.412 cc -o app main.c
//! #3 DONE 1.3s
//!
//! #4 [runtime 2/2] COPY --from=builder /app /app
//! #4 CACHED
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use kiln_build::{Event, Reporter};

/// Writes plain progress blocks.
pub(crate) struct Plain {
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    started: BTreeMap<usize, Instant>,
}

impl Plain {
    /// A renderer writing to `out`.
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            state: Mutex::new(State {
                out,
                started: BTreeMap::new(),
            }),
        }
    }
}

impl Reporter for Plain {
    fn event(&self, event: Event) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let State { out, started } = &mut *s;
        // Write errors on stderr cannot be reported anywhere better: they are dropped.
        let _ = match event {
            Event::StepStarted {
                id,
                stage,
                index,
                total,
                name,
            } => {
                started.insert(id, Instant::now());
                writeln!(out, "#{id} [{stage} {index}/{total}] {name}")
            }
            Event::StepCached { id } => writeln!(out, "#{id} CACHED\n"),
            Event::CacheMiss { id, reason } => writeln!(out, "#{id} cache miss: {reason}"),
            Event::Log { id, line, .. } => {
                let t = started.get(&id).map_or(0.0, |t| t.elapsed().as_secs_f64());
                let text = String::from_utf8_lossy(&line);
                writeln!(out, "#{id} {t:.3} {}", text.trim_end_matches('\n'))
            }
            Event::StepDone { id, elapsed } => {
                writeln!(out, "#{id} DONE {:.1}s\n", elapsed.as_secs_f64())
            }
            Event::StepFailed { id, message } => writeln!(out, "#{id} ERROR: {message}\n"),
            Event::StageDone { stage, size } => {
                writeln!(
                    out,
                    "stage {stage}: {} stored (compressed)",
                    crate::cmd::images::human_size(size)
                )
            }
        };
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn blocks_look_like_buildkit() {
        let buf = Buf::default();
        let p = Plain::new(Box::new(buf.clone()));
        p.event(Event::StepStarted {
            id: 1,
            stage: "builder".into(),
            index: 2,
            total: 3,
            name: "RUN make".into(),
        });
        p.event(Event::Log {
            id: 1,
            stream: 1,
            line: b"cc main.c\n".to_vec(),
        });
        p.event(Event::StepDone {
            id: 1,
            elapsed: Duration::from_millis(1250),
        });
        p.event(Event::StepStarted {
            id: 2,
            stage: "runtime".into(),
            index: 2,
            total: 2,
            name: "COPY --from=builder /app /app".into(),
        });
        p.event(Event::StepCached { id: 2 });
        p.event(Event::StepFailed {
            id: 3,
            message: "exit code: 1".into(),
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#1 [builder 2/3] RUN make");
        assert!(
            lines[1].starts_with("#1 0.") && lines[1].ends_with(" cc main.c"),
            "{}",
            lines[1]
        );
        assert_eq!(
            &lines[2..],
            [
                "#1 DONE 1.2s",
                "",
                "#2 [runtime 2/2] COPY --from=builder /app /app",
                "#2 CACHED",
                "",
                "#3 ERROR: exit code: 1",
                ""
            ]
        );
    }
}
