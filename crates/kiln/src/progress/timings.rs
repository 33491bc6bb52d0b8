//! The build's reporter: passes every event on to the renderer the user chose, notes per
//! stage which steps ran, how they ended and how long they took (`kiln build --graph`), and
//! holds events back while a debug shell has the terminal (`--on-error=shell`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use kiln_build::{Event, Reporter, StepId};

use super::Render;
use crate::graph::{StageRun, StepRun};

/// Wraps the reporter the user chose.
pub(crate) struct Timings {
    inner: Box<dyn Render>,
    state: Mutex<State>,
    /// `Some` while paused: the events held back.
    held: Mutex<Option<Vec<Event>>>,
}

#[derive(Default)]
struct State {
    /// Step id -> (stage label, position in `runs[stage].steps`, when it started).
    steps: Steps,
    runs: BTreeMap<String, StageRun>,
}

impl Timings {
    pub(crate) fn new(inner: Box<dyn Render>) -> Self {
        Self {
            inner,
            state: Mutex::new(State::default()),
            held: Mutex::new(None),
        }
    }

    /// Stops the renderer and holds events back until [`Timings::resume`].
    pub(crate) fn pause(&self) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.get_or_insert_with(Vec::new);
        self.inner.pause(true);
    }

    /// Restarts the renderer with the events held back.
    pub(crate) fn resume(&self) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.pause(false);
        for e in held.take().unwrap_or_default() {
            self.inner.event(e);
        }
    }

    /// What each stage's steps did, by stage label.
    pub(crate) fn runs(&self) -> BTreeMap<String, StageRun> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.runs.clone()
    }

    fn note(&self, event: &Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let State { steps, runs } = &mut *state;
        match event {
            Event::StepStarted {
                id,
                stage,
                index,
                name,
                ..
            } => {
                let run = runs.entry(stage.clone()).or_default();
                run.steps.push(StepRun {
                    index: *index,
                    name: name.clone(),
                    status: "started",
                    seconds: 0.0,
                });
                steps.insert(*id, (stage.clone(), run.steps.len() - 1, Instant::now()));
            }
            // A cached step is done too: `StepDone` follows with its time.
            Event::StepCached { id } => {
                if let Some((run, at, _)) = step(steps, runs, *id) {
                    run.steps[at].status = "cached";
                }
            }
            Event::StepDone { id, elapsed } => {
                if let Some((run, at, _)) = step(steps, runs, *id) {
                    let s = &mut run.steps[at];
                    if s.status == "started" {
                        s.status = "done";
                    }
                    s.seconds = elapsed.as_secs_f64();
                    run.seconds += s.seconds;
                }
            }
            Event::StepFailed { id, .. } => {
                if let Some((run, at, started)) = step(steps, runs, *id) {
                    let s = &mut run.steps[at];
                    s.status = "failed";
                    s.seconds = started.elapsed().as_secs_f64();
                    run.seconds += s.seconds;
                    run.failed = true;
                }
            }
            Event::CacheMiss { .. } | Event::Log { .. } | Event::StageDone { .. } => {}
        }
    }
}

type Steps = HashMap<StepId, (String, usize, Instant)>;

/// Step `id`'s stage run, its position there and when it started.
fn step<'a>(
    steps: &Steps,
    runs: &'a mut BTreeMap<String, StageRun>,
    id: StepId,
) -> Option<(&'a mut StageRun, usize, Instant)> {
    let (stage, at, started) = steps.get(&id)?;
    let run = runs.get_mut(stage)?;
    Some((run, *at, *started))
}

impl Reporter for Timings {
    fn event(&self, event: Event) {
        self.note(&event);
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *held {
            Some(events) => events.push(event),
            None => self.inner.event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_build::{Event, Reporter as _};

    use super::Timings;

    #[test]
    fn notes_each_stages_steps_and_times() {
        let t = Timings::new(Box::new(crate::progress::Quiet));
        let started = |id, stage: &str, index| Event::StepStarted {
            id,
            stage: stage.into(),
            index,
            total: 2,
            name: format!("STEP {index}"),
        };
        t.event(started(1, "a", 1));
        t.event(started(2, "b", 1));
        t.event(Event::StepDone {
            id: 1,
            elapsed: Duration::from_millis(1500),
        });
        t.event(Event::StepCached { id: 2 });
        t.event(Event::StepDone {
            id: 2,
            elapsed: Duration::from_millis(2),
        });
        t.event(started(3, "a", 2));
        t.event(Event::StepFailed {
            id: 3,
            message: "exit code: 1".into(),
        });
        let runs = t.runs();
        let a = &runs["a"];
        assert!(a.failed);
        let statuses: Vec<_> = a.steps.iter().map(|s| (s.index, s.status)).collect();
        assert_eq!(statuses, [(1, "done"), (2, "failed")]);
        assert!(a.seconds >= 1.5 && a.seconds < 10.0, "{}", a.seconds);
        assert!(!runs["b"].failed);
        assert_eq!(runs["b"].steps[0].status, "cached");
    }
}
