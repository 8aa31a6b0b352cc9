//! SIGINT/SIGTERM/SIGHUP handling, when the caller asked for it
//! ([`ExecutorBuilder::handle_signals`](super::ExecutorBuilder::handle_signals)).
//!
//! SIGHUP (the terminal closed, the SSH session dropped) is handled like
//! SIGTERM: the run stops its subagents, records itself and reports. When
//! SIGHUP is ignored on entry (`nohup mdbatch run`), it stays ignored: the
//! user asked for the run to outlive the terminal.
//!
//! The handlers are installed with `sigaction(2)` when the first such run
//! starts and the previous dispositions are put back when the last one ends,
//! so after a run the host is interruptible as before (tokio's signal
//! streams, by contrast, stay installed for the life of the process). The
//! handler only writes a byte to a pipe; one thread (started once, parked in
//! `read`) forwards each signal to every run that asked for signals.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::mpsc;

/// The pipe's write end, for the handler (`-1` until the thread runs).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

struct Registry {
    next: u64,
    subscribers: Vec<(u64, mpsc::UnboundedSender<()>)>,
    /// The dispositions found when ours were installed.
    previous: Option<[libc::sigaction; 3]>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    subscribers: Vec::new(),
    previous: None,
});

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only async-signal-safe calls here: write(2), and errno kept as found.
    let saved = errno();
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: writes one byte from a live local to our own pipe; a full
        // pipe (the write end is non-blocking) just loses a redundant byte.
        unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    set_errno(saved);
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_errno(v: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = v };
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn set_errno(v: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__error() = v };
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
fn set_errno(_v: i32) {}

/// Creates the pipe and the forwarding thread, once per process.
fn start() -> Result<(), String> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: pipe(2) fills the two-element array.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(format!(
                    "cannot create a pipe: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let [read_fd, write_fd] = fds;
            // SAFETY: fcntl on the descriptors just created.
            unsafe {
                libc::fcntl(read_fd, libc::F_SETFD, libc::FD_CLOEXEC);
                libc::fcntl(write_fd, libc::F_SETFD, libc::FD_CLOEXEC);
                let flags = libc::fcntl(write_fd, libc::F_GETFL);
                libc::fcntl(write_fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            std::thread::Builder::new()
                .name("mdbatch-signals".into())
                .spawn(move || forward(read_fd))
                .map_err(|e| format!("cannot start the signal thread: {e}"))?;
            WRITE_FD.store(write_fd, Ordering::Relaxed);
            Ok(())
        })
        .clone()
}

/// The forwarding thread: one notification per byte read.
fn forward(read_fd: libc::c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live local buffer of the given length.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..n {
            for (_, tx) in &registry.subscribers {
                let _ = tx.send(());
            }
        }
    }
}

/// One run's subscription to SIGINT/SIGTERM/SIGHUP; ending it (drop) puts the
/// previous handlers back when no other run holds one.
pub(super) struct Signals {
    rx: Option<mpsc::UnboundedReceiver<()>>,
    id: u64,
    /// Why signals could not be handled, if they could not.
    pub(super) error: Option<String>,
}

impl Signals {
    pub(super) fn new(enabled: bool) -> Self {
        let mut s = Self {
            rx: None,
            id: 0,
            error: None,
        };
        if !enabled {
            return s;
        }
        if let Err(e) = start() {
            s.error = Some(format!("cannot handle signals: {e}"));
            return s;
        }
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if registry.previous.is_none() {
            match install() {
                Ok(previous) => registry.previous = Some(previous),
                Err(e) => {
                    s.error = Some(format!("cannot handle signals: {e}"));
                    return s;
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        registry.next += 1;
        s.id = registry.next;
        registry.subscribers.push((s.id, tx));
        s.rx = Some(rx);
        s
    }

    /// The next SIGINT, SIGTERM or SIGHUP (never, when not handling signals).
    pub(super) async fn recv(&mut self) {
        match self.rx.as_mut() {
            Some(rx) => {
                if rx.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if self.rx.is_none() {
            return;
        }
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.subscribers.retain(|(id, _)| *id != self.id);
        if registry.subscribers.is_empty()
            && let Some(previous) = registry.previous.take()
        {
            for (signal, old) in SIGNALS.iter().zip(previous.iter()) {
                // SAFETY: puts back the disposition sigaction(2) gave us.
                unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
            }
        }
    }
}

/// Installs `on_signal` for SIGINT, SIGTERM and SIGHUP (unless SIGHUP is
/// ignored: `nohup`); returns the previous dispositions.
fn install() -> Result<[libc::sigaction; 3], String> {
    // SAFETY: zeroed sigaction structs are valid; sigaction(2) reads `new`
    // and fills `old`.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        new.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut new.sa_mask);
        let mut previous: [libc::sigaction; 3] = std::mem::zeroed();
        for (i, signal) in SIGNALS.iter().enumerate() {
            if *signal == libc::SIGHUP
                && libc::sigaction(*signal, std::ptr::null(), &mut previous[i]) == 0
                && previous[i].sa_sigaction == libc::SIG_IGN
            {
                continue;
            }
            if libc::sigaction(*signal, &new, &mut previous[i]) != 0 {
                let e = std::io::Error::last_os_error();
                for (j, s) in SIGNALS.iter().enumerate().take(i) {
                    libc::sigaction(*s, &previous[j], std::ptr::null_mut());
                }
                return Err(e.to_string());
            }
        }
        Ok(previous)
    }
}
