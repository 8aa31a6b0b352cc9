//! [`Output`]: what `mdbatch run` (and `mdbatch demo`) feed with every event.
//!
//! Lifecycle: [`Output::new`] decides the mode ([`super::mode::decide`]),
//! starts a ticker thread (redraws the live display, watches for SIGUSR1) and,
//! on an interactive terminal, a key watcher; [`Output::on_event`] gives the
//! callback for `ExecutorBuilder::on_event`; [`Output::finish`] prints the
//! summary and stops the threads. Dropping an `Output` without finishing
//! clears the display and restores the terminal.
//!
//! All state sits behind one mutex: the executor's callback thread, the ticker
//! and the key watcher each take it briefly; none of them blocks on I/O other
//! than writing to the terminal while holding it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use batch_core::exec::{Envelope, RunReport};

use super::json::Json;
use super::keys::KeyWatch;
use super::mode::{Env, Human, Mode, Request, decide};
use super::plain::Plain;
use super::state::{RetryRecord, RunState};
use super::style::Paint;
use super::term::{Live, TICK};
use crate::args::ColorChoice;

/// The human reporter on stderr.
enum HumanOut {
    Live(Box<Live>),
    Plain(Plain),
}

struct Shared {
    state: RunState,
    human: HumanOut,
    json: Option<Json>,
}

impl Shared {
    fn event(&mut self, env: &Envelope) {
        let now = Instant::now();
        if let Some(j) = &mut self.json {
            j.event(env);
        }
        // Ids, task text, agent output and messages reach the terminal only
        // through `safe` (the state feeds the display and the summary).
        let env = &*super::safe::event(env);
        let change = self.state.apply(env, now);
        match &mut self.human {
            HumanOut::Live(l) => l.event(env, &self.state, &change, now),
            HumanOut::Plain(p) => p.event(env, &self.state, &change),
        }
    }

    fn dump(&mut self) {
        let now = Instant::now();
        match &mut self.human {
            HumanOut::Live(l) => l.dump(&self.state, now),
            HumanOut::Plain(p) => p.dump(&self.state, now),
        }
    }
}

/// The run's display: live, plain or quiet on stderr, plus JSON on stdout.
pub struct Output {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
    signal: Option<signal_hook::SigId>,
    keys: Option<KeyWatch>,
    finished: bool,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A reporter that panicked mid-draw leaves consistent-enough state to go on drawing.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Output {
    /// The display for this process's terminal and environment.
    pub fn new(json: bool, verbose: bool, color: ColorChoice) -> Self {
        let mode = decide(
            Env::detect(),
            Request {
                json,
                color,
                verbose,
            },
        );
        Self::with_mode(mode)
    }

    /// The display for an already-decided mode.
    pub fn with_mode(mode: Mode) -> Self {
        let paint = Paint { on: mode.color };
        let human = match mode.human {
            Human::Live => HumanOut::Live(Box::new(Live::stderr(paint, mode.tag_output))),
            Human::Plain | Human::Quiet => HumanOut::Plain(Plain::new(
                Box::new(std::io::stderr()),
                paint,
                mode.tag_output,
                mode.human == Human::Quiet,
            )),
        };
        let json = mode.json.then(|| Json::new(Box::new(std::io::stdout())));
        let shared = Arc::new(Mutex::new(Shared {
            state: RunState::new(),
            human,
            json,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let dump = Arc::new(AtomicBool::new(false));

        // SIGUSR1 asks for a dump (nextest's SIGINFO idea), in every mode but quiet.
        let signal = if mode.human != Human::Quiet {
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&dump)).ok()
        } else {
            None
        };
        // A key press asks for one too, when the live display owns an interactive terminal.
        let keys = if mode.human == Human::Live && std::io::stdin().is_terminal() {
            KeyWatch::start(Arc::clone(&dump))
        } else {
            None
        };

        let ticker = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let live = mode.human == Human::Live;
            std::thread::Builder::new()
                .name("mdbatch-display".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        // Woken at once by `stop_threads`: the run does not
                        // wait out a tick at its end.
                        std::thread::park_timeout(TICK);
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let mut s = lock(&shared);
                        if dump.swap(false, Ordering::AcqRel) {
                            s.dump();
                        }
                        if live {
                            let Shared { state, human, .. } = &mut *s;
                            if let HumanOut::Live(l) = human {
                                l.tick(state, Instant::now());
                            }
                        }
                    }
                })
                .ok()
        };
        Self {
            shared,
            stop,
            ticker,
            signal,
            keys,
            finished: false,
        }
    }

    /// The event callback for `ExecutorBuilder::on_event`.
    pub fn on_event(&self) -> impl FnMut(&Envelope) + Send + 'static {
        let shared = Arc::clone(&self.shared);
        move |env: &Envelope| lock(&shared).event(env)
    }

    /// Failed attempts that were retried, per task id (for the JUnit report).
    pub fn retries(&self) -> std::collections::BTreeMap<String, Vec<RetryRecord>> {
        lock(&self.shared).state.retries.clone()
    }

    /// Prints the summary and stops the display.
    pub fn finish(mut self, report: &RunReport) {
        self.stop_threads();
        self.finished = true;
        let mut s = lock(&self.shared);
        let Shared { state, human, .. } = &mut *s;
        let report = &*super::safe::report(report);
        match human {
            HumanOut::Live(l) => l.finish(report, state),
            HumanOut::Plain(p) => p.finish(report, state),
        }
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.ticker.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Some(id) = self.signal.take() {
            signal_hook::low_level::unregister(id);
        }
        // Dropping the watcher restores the terminal.
        self.keys.take();
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.stop_threads();
        if self.finished {
            return;
        }
        if let HumanOut::Live(l) = &mut lock(&self.shared).human {
            l.clear();
        }
    }
}
