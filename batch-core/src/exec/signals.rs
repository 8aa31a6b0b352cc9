//! SIGINT/SIGTERM handling, when the caller asked for it
//! ([`ExecutorBuilder::handle_signals`](super::ExecutorBuilder::handle_signals)).

/// SIGINT/SIGTERM, when the caller asked for signal handling.
pub(super) struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    pub(super) error: Option<String>,
}

impl Signals {
    pub(super) fn new(enabled: bool) -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        if !enabled {
            return Self {
                int: None,
                term: None,
                error: None,
            };
        }
        let mut error = None;
        let mut get = |kind| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                error = Some(format!("cannot handle signals: {e}"));
                None
            }
        };
        let int = get(SignalKind::interrupt());
        let term = get(SignalKind::terminate());
        Self { int, term, error }
    }

    pub(super) async fn recv(&mut self) {
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = int => {}
            _ = term => {}
        }
    }
}
