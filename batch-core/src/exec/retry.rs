//! Retry policy and backoff.
