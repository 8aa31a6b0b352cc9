//! Built-in runners for coding-agent CLIs: `claude`, `codex`, `gemini`, `shell`.
