//! `mdbatch mcp`: an MCP server on stdio that lets an agent host plan,
//! check, start, follow and stop mdbatch runs.
//!
//! The server ([`server`]) speaks MCP through the official Rust SDK
//! (`rmcp`); what it does is behind the [`backend::Backend`] trait, and
//! [`core::CoreBackend`] is mdbatch itself. `run` starts a detached run and
//! returns its id at once (hosts time tool calls out after about a minute);
//! `wait` is bounded and sends progress notifications.

pub mod backend;
pub mod core;
pub mod root;
pub mod server;
pub mod tools;

use crate::args::McpArgs;
use crate::exit;

/// Runs `mdbatch mcp` until the client closes stdin.
pub fn run(args: &McpArgs) -> anyhow::Result<u8> {
    let dir = match &args.root {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let root =
        root::Root::new(&dir).map_err(|e| anyhow::anyhow!("--root {}: {e}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(server::serve_stdio(core::CoreBackend, root))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(exit::SUCCESS)
}
