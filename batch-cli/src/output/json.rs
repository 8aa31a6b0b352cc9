//! `--json`: every [`Envelope`] as one line on stdout, flushed at once so a
//! consumer sees each event live. Stdout carries nothing else. The schema is
//! documented in `docs/events.md` and on `batch_core::exec::RunEvent`.

use std::io::Write;

use batch_core::exec::Envelope;

/// Writes events as JSON lines.
pub struct Json {
    out: Box<dyn Write + Send>,
    /// Set once a write failed (a consumer closed the pipe): later events are dropped.
    broken: bool,
}

impl Json {
    /// Lines to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out, broken: false }
    }

    /// Writes one event.
    pub fn event(&mut self, env: &Envelope) {
        if self.broken {
            return;
        }
        let mut line = env.to_json();
        line.push('\n');
        if self.out.write_all(line.as_bytes()).is_err() || self.out.flush().is_err() {
            self.broken = true;
        }
    }
}
