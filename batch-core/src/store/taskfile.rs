//! TODO(engine helper).
