//! What people and scripts see. Owned by the display work (issue 6):
//! `term` (live display), `plain` (timestamped lines), `json` (events).
