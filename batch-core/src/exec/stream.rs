//! A run's events as a [`Stream`](futures::Stream): [`EventStream`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::events::{Envelope, RunEvent};
use crate::runner::{LineBudget, Progress};

/// How many output-line events may wait in one stream before more are dropped.
const STREAM_LINES: usize = 1024;

/// The events of one run, in order, as a [`futures::Stream`] (or one by one
/// with [`blocking_next`](Self::blocking_next) from a plain thread).
///
/// Got from [`Executor::events`](super::Executor::events) before the run
/// starts; it ends after `run_finished` (or when the run could not start:
/// then it yields nothing). The dispatcher never waits for the stream: a
/// consumer that falls behind loses only `task_progress` events carrying
/// output lines (counted by [`dropped`](Self::dropped); `seq` then has
/// gaps); every other event is queued until read.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Envelope>,
    lines: Arc<LineBudget>,
    dropped: Arc<AtomicU64>,
}

/// The dispatcher's end of an [`EventStream`].
#[derive(Debug)]
pub(crate) struct EventSender {
    tx: mpsc::UnboundedSender<Envelope>,
    lines: Arc<LineBudget>,
    dropped: Arc<AtomicU64>,
}

fn is_line(e: &Envelope) -> bool {
    matches!(
        &e.event,
        RunEvent::TaskProgress {
            progress: Progress::Output { .. },
            ..
        }
    )
}

/// A connected sender and stream.
pub(crate) fn channel() -> (EventSender, EventStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let lines = LineBudget::new(STREAM_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        EventSender {
            tx,
            lines: lines.clone(),
            dropped: dropped.clone(),
        },
        EventStream { rx, lines, dropped },
    )
}

impl EventSender {
    /// Sends a copy of `e`; never waits.
    pub(crate) fn send(&self, e: &Envelope) {
        let line = is_line(e);
        if line && !self.lines.take() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(e.clone()).is_err() && line {
            self.lines.release();
        }
    }
}

impl EventStream {
    /// Output-line events dropped because this stream's consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits for the next event from a thread outside any async runtime;
    /// `None` once the run is over.
    ///
    /// # Panics
    ///
    /// When called from inside an async runtime (use the stream there).
    pub fn blocking_next(&mut self) -> Option<Envelope> {
        let e = self.rx.blocking_recv()?;
        if is_line(&e) {
            self.lines.release();
        }
        Some(e)
    }
}

impl futures::Stream for EventStream {
    type Item = Envelope;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(e)) = &polled
            && is_line(e)
        {
            self.lines.release();
        }
        polled
    }
}
