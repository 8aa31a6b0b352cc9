//! What people and scripts see.
//!
//! - [`mode`]: the pure display decision (terminal, `NO_COLOR`, `CI`,
//!   `--json`, `--color`, `-v`).
//! - [`Output`] ([`reporter`]): what `mdbatch run` feeds with every event;
//!   it drives [`term`] (the live display), [`plain`] (timestamped lines) and
//!   [`json`] (events on stdout), over the event model in [`state`].
//! - [`junit`]: the `--junit FILE` report.
//! - [`safe`]: untrusted text made safe for a terminal (every human printer
//!   passes task text, ids, agent output and messages through it).
//! - [`error`]: how an error that ends a command is printed.

pub mod error;
pub mod json;
pub mod junit;
mod keys;
pub mod mode;
pub mod plain;
pub mod reporter;
pub mod safe;
pub mod state;
pub mod style;
pub mod summary;
pub mod term;

pub use reporter::Output;

#[cfg(test)]
pub mod testing;
