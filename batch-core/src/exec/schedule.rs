//! The ready set and the limits.
