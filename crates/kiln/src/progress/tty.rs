//! `--progress=tty`: the build redrawn in place, like BuildKit's terminal view.
//!
//! ```text
//! [+] Building 3.4s (5/8)
//!  => [builder 2/4] WORKDIR /src                                  0.0s
//!  => [builder 3/4] RUN make                                      2.1s
//!  => => cc -o app main.c
//!  => [runtime 2/3] COPY greet.sh /usr/local/bin/                 0.1s
//! ```
//!
//! Steps of different stages run at once and show up side by side as they start. A thread
//! redraws ten times a second; lines are cut to the terminal's width so that the cursor
//! arithmetic stays right.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kiln_build::{Event, Reporter};

struct Step {
    id: usize,
    label: String,
    started: Instant,
    finished: Option<Duration>,
    cached: bool,
    failed: bool,
    logs: VecDeque<String>,
}

struct View {
    steps: Vec<Step>,
    start: Instant,
    drawn_lines: usize,
    /// While a debug shell has the terminal, nothing is drawn.
    paused: bool,
    out: Box<dyn Write + Send>,
}

/// The live renderer.
pub(crate) struct Tty {
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Tty {
    /// A renderer drawing on stderr.
    pub(crate) fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    /// A renderer drawing on `out`.
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        let view = Arc::new(Mutex::new(View {
            steps: Vec::new(),
            start: Instant::now(),
            drawn_lines: 0,
            paused: false,
            out,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let view = Arc::clone(&view);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    lock(&view).draw(width());
                }
            })
        };
        Self {
            view,
            stop,
            ticker: Some(ticker),
        }
    }
}

fn lock(view: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The terminal's width in columns (80 when unknown).
fn width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 20)
        .unwrap_or(80)
}

impl View {
    fn step(&mut self, id: usize) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    fn lines(&self, width: usize) -> Vec<String> {
        let done = self
            .steps
            .iter()
            .filter(|s| s.finished.is_some() || s.cached)
            .count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{})",
            self.start.elapsed().as_secs_f64(),
            self.steps.len()
        )];
        for s in &self.steps {
            let time = match (s.cached, s.finished) {
                (true, _) => String::new(),
                (false, Some(d)) => format!("{:.1}s", d.as_secs_f64()),
                (false, None) => format!("{:.1}s", s.started.elapsed().as_secs_f64()),
            };
            let mark = if s.cached {
                "CACHED "
            } else if s.failed {
                "ERROR "
            } else {
                ""
            };
            let left = format!(" => {mark}{}", s.label);
            lines.push(fit(&left, &time, width));
            if s.finished.is_none() && !s.cached {
                for l in &s.logs {
                    lines.push(fit(&format!(" => => {l}"), "", width));
                }
            }
        }
        lines
    }

    fn draw(&mut self, width: usize) {
        if self.paused {
            return;
        }
        let lines = self.lines(width);
        let mut buf = String::new();
        if self.drawn_lines > 0 {
            let _ = write!(buf, "\x1b[{}A", self.drawn_lines);
        }
        for l in &lines {
            buf.push_str("\x1b[2K");
            buf.push_str(l);
            buf.push('\n');
        }
        // Clear lines left over from a taller previous frame.
        for _ in lines.len()..self.drawn_lines {
            buf.push_str("\x1b[2K\n");
        }
        let extra = self.drawn_lines.saturating_sub(lines.len());
        if extra > 0 {
            let _ = write!(buf, "\x1b[{extra}A");
        }
        self.drawn_lines = lines.len();
        let _ = self.out.write_all(buf.as_bytes());
        let _ = self.out.flush();
    }
}

/// `left` and `right` on one line of `width` columns, `left` cut to fit.
fn fit(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 1);
    let mut l: String = left.chars().take(room).collect();
    let pad = room.saturating_sub(l.chars().count());
    l.push_str(&" ".repeat(pad));
    if !right.is_empty() {
        l.push(' ');
        l.push_str(right);
    }
    l.trim_end().to_owned()
}

impl Reporter for Tty {
    fn event(&self, event: Event) {
        let mut v = lock(&self.view);
        match event {
            Event::StepStarted {
                id,
                stage,
                index,
                total,
                name,
            } => v.steps.push(Step {
                id,
                label: format!("[{stage} {index}/{total}] {name}"),
                started: Instant::now(),
                finished: None,
                cached: false,
                failed: false,
                logs: VecDeque::new(),
            }),
            Event::StepCached { id } => {
                if let Some(s) = v.step(id) {
                    s.cached = true;
                }
            }
            Event::Log { id, line, .. } => {
                if let Some(s) = v.step(id) {
                    let text = String::from_utf8_lossy(&line).trim_end().replace('\t', " ");
                    s.logs.push_back(text);
                    if s.logs.len() > 3 {
                        s.logs.pop_front();
                    }
                }
            }
            Event::StepDone { id, elapsed } => {
                if let Some(s) = v.step(id) {
                    s.finished = Some(elapsed);
                }
            }
            Event::StepFailed { id, message } => {
                if let Some(s) = v.step(id) {
                    s.failed = true;
                    s.finished = Some(s.started.elapsed());
                    s.logs.push_back(message);
                }
            }
            Event::StageDone { .. } | Event::CacheMiss { .. } => {}
        }
    }
}

impl super::Render for Tty {
    /// Draws the frame once more and stops; on resuming, draws a new frame below whatever
    /// was printed meanwhile.
    fn pause(&self, paused: bool) {
        let mut v = lock(&self.view);
        if paused {
            v.draw(width());
            v.paused = true;
        } else {
            v.paused = false;
            v.drawn_lines = 0;
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        lock(&self.view).draw(width());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_shows_running_steps_with_logs_and_finished_ones_without() {
        let tty = Tty::new(Box::new(std::io::sink()));
        tty.event(Event::StepStarted {
            id: 1,
            stage: "a".into(),
            index: 1,
            total: 2,
            name: "RUN x".into(),
        });
        tty.event(Event::StepStarted {
            id: 2,
            stage: "b".into(),
            index: 1,
            total: 1,
            name: "RUN y".into(),
        });
        tty.event(Event::Log {
            id: 1,
            stream: 1,
            line: b"working\n".to_vec(),
        });
        tty.event(Event::StepDone {
            id: 2,
            elapsed: Duration::from_millis(300),
        });
        let lines = lock(&tty.view).lines(60);
        assert!(
            lines[0].starts_with("[+] Building ") && lines[0].ends_with("(1/2)"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with(" => [a 1/2] RUN x"), "{lines:?}");
        assert_eq!(lines[2], " => => working");
        assert!(
            lines[3].starts_with(" => [b 1/1] RUN y") && lines[3].ends_with("0.3s"),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 60));
    }
}
