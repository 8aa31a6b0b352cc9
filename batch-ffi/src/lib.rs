//! C interface to mdbatch.
#![warn(missing_docs)]
