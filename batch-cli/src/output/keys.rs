//! Key presses during a live run: any key asks for a dump of every running
//! subagent's output so far.
//!
//! The terminal is switched out of canonical mode and echo (so a single key
//! arrives at once and is not printed into the display) but keeps `ISIG`, so
//! Ctrl-C and Ctrl-Z still raise their signals. Only a process in the
//! terminal's foreground group does this (changing a terminal from the
//! background would stop the process with SIGTTOU). Dropping the watcher stops
//! its thread and restores the saved settings.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Watches stdin for key presses.
pub struct KeyWatch {
    saved: libc::termios,
    wake: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl KeyWatch {
    /// Starts watching; `None` when stdin is not a terminal this process may change.
    pub fn start(pressed: Arc<AtomicBool>) -> Option<Self> {
        let fd = libc::STDIN_FILENO;
        // SAFETY: plain libc calls on fd 0 and on a termios value we own.
        let saved = unsafe {
            if libc::isatty(fd) != 1 || libc::tcgetpgrp(fd) != libc::getpgrp() {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            t
        };
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: pipe() just returned these descriptors; each is owned once.
        let (wake_r, wake_w) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: `raw` is a valid termios derived from the terminal's own.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        let thread = std::thread::Builder::new()
            .name("mdbatch-keys".into())
            .spawn(move || watch(fd, wake_r, pressed))
            .ok();
        if thread.is_none() {
            // SAFETY: restoring the settings read above.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
            return None;
        }
        Some(Self {
            saved,
            wake: wake_w,
            thread,
        })
    }
}

fn watch(fd: libc::c_int, wake: OwnedFd, pressed: Arc<AtomicBool>) {
    let mut buf = [0u8; 64];
    loop {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: reading into a buffer we own, within its length.
            let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if got <= 0 {
                return;
            }
            pressed.store(true, Ordering::Release);
        } else if fds[0].revents != 0 {
            // Hang-up or error on the terminal: nothing more to read.
            return;
        }
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        // SAFETY: writing one byte from a live buffer to our own pipe.
        unsafe { libc::write(self.wake.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // SAFETY: restoring the settings read in `start`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}
