//! TODO(doc helper): see doc/mod.rs.
