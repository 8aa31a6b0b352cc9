//! Child processes in their own process group: spawn, stream, TERM, KILL.
