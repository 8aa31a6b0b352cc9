//! The tools' arguments, their schemas, and their validation.
//!
//! Each tool's `inputSchema` is generated (schemars) from the same struct
//! its arguments are parsed into, with `deny_unknown_fields`, so the schema
//! a client sees and the check the server makes cannot drift apart. Bounds
//! that a type cannot say (ranges) are in the schema *and* checked by
//! [`Validate`]. A failed check is a tool error result naming the field and
//! what to send instead — never a protocol error, so the model reads it and
//! can correct itself.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::backend::{PlanOptions, RunOptions};

/// Longest `wait` a client may ask for, in seconds: hosts time tool calls
/// out after about a minute.
pub const MAX_WAIT_SECS: u32 = 50;
/// `wait`'s timeout when none is given, in seconds.
pub const DEFAULT_WAIT_SECS: u32 = 30;
/// Most lines `logs` returns.
pub const MAX_TAIL: u32 = 2000;
/// `logs`' tail when none is given.
pub const DEFAULT_TAIL: u32 = 200;

/// Arguments of `plan`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
    /// Options that change the plan.
    #[serde(default)]
    pub options: PlanOptions,
}

/// Arguments of tools that take only the task file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
}

/// Arguments of `run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
    /// Run options.
    #[serde(default)]
    pub options: RunOptions,
}

/// Arguments of `logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
    /// The task's id, as `status` lists it.
    pub task: String,
    /// 1-based attempt; the latest when left out.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub attempt: Option<u32>,
    /// How many of the last lines to return (default 200, at most 2000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 2000))]
    pub tail: Option<u32>,
}

/// Arguments of `wait`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
    /// Longest wait in seconds (default 30, at most 50); call again to keep
    /// waiting.
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub timeout_secs: Option<u32>,
}

/// Arguments of `stop`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopArgs {
    /// The task file, relative to the server's root folder (or absolute
    /// inside it).
    pub file: String,
    /// End running tasks at once instead of giving them the grace period.
    #[serde(default)]
    pub now: bool,
}

/// Checks a schema states but serde cannot make.
pub trait Validate {
    /// The first violated bound, as `field: what is wrong; what to send`.
    fn validate(&self) -> Result<(), String>;
}

fn in_range(field: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), String> {
    match value {
        Some(v) if v < min || v > max => Err(format!(
            "{field}: {v} is out of range; send a whole number from {min} to {max}"
        )),
        _ => Ok(()),
    }
}

fn run_options(o: &RunOptions) -> Result<(), String> {
    in_range("options.jobs", o.jobs.map(u64::from), 1, 256)?;
    in_range("options.retries", o.retries.map(u64::from), 0, 20)?;
    in_range("options.max_tokens", o.max_tokens, 1, u64::MAX)?;
    if let Some(c) = o.max_cost_usd
        && !(c.is_finite() && c >= 0.0)
    {
        return Err(format!(
            "options.max_cost_usd: {c} is not a cost; send a number of dollars, 0 or more"
        ));
    }
    if let Some(a) = &o.agent
        && a.trim().is_empty()
    {
        return Err("options.agent: empty; name an agent such as `claude` or leave it out".into());
    }
    if let Some(at) = &o.at_cap
        && at != "finish"
        && at != "stop"
    {
        return Err(format!(
            "options.at_cap: `{at}` is not a choice; send `finish` or `stop`"
        ));
    }
    if let Some(c) = &o.cmd
        && c.trim().is_empty()
    {
        return Err("options.cmd: empty; give a command template or leave it out".into());
    }
    if let Some(ids) = &o.only {
        only_ids(ids)?;
    }
    Ok(())
}

fn only_ids(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("options.only: empty list; name task ids or leave it out".into());
    }
    if ids.iter().any(|i| i.trim().is_empty()) {
        return Err("options.only: an empty task id; use the ids `status` lists".into());
    }
    Ok(())
}

impl Validate for PlanArgs {
    fn validate(&self) -> Result<(), String> {
        match &self.options.only {
            Some(ids) => only_ids(ids),
            None => Ok(()),
        }
    }
}
impl Validate for FileArgs {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
impl Validate for RunArgs {
    fn validate(&self) -> Result<(), String> {
        run_options(&self.options)
    }
}
impl Validate for LogsArgs {
    fn validate(&self) -> Result<(), String> {
        if self.task.trim().is_empty() {
            return Err("task: empty; send a task id as `status` lists it".into());
        }
        in_range(
            "attempt",
            self.attempt.map(u64::from),
            1,
            u64::from(u32::MAX),
        )?;
        in_range("tail", self.tail.map(u64::from), 1, u64::from(MAX_TAIL))
    }
}
impl Validate for WaitArgs {
    fn validate(&self) -> Result<(), String> {
        in_range(
            "timeout_secs",
            self.timeout_secs.map(u64::from),
            1,
            u64::from(MAX_WAIT_SECS),
        )
    }
}
impl Validate for StopArgs {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Parse and validate a tool's arguments. `None` (no `arguments` at all) is
/// read as `{}`, so a missing required field is reported by name.
pub fn parse<T: DeserializeOwned + Validate>(
    tool: &str,
    arguments: Option<JsonObject>,
) -> Result<T, String> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    let args: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("invalid arguments for `{tool}`: {inner}; see the tool's inputSchema")
        } else {
            format!("invalid arguments for `{tool}`: {path}: {inner}; see the tool's inputSchema")
        }
    })?;
    args.validate()
        .map_err(|m| format!("invalid arguments for `{tool}`: {m}"))?;
    Ok(args)
}

fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    // Our argument structs all derive an object schema; the only way this
    // fails is a programming error caught by the tool-list test.
    rmcp::handler::server::common::schema_for_input::<T>().expect("argument structs are objects")
}

fn tool<T: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, Cow::Borrowed(description), schema::<T>()).with_annotations(annotations)
}

/// Every tool the server offers, in a stable order.
pub fn all() -> Vec<Tool> {
    let read_only = ToolAnnotations::new().read_only(true).destructive(false);
    vec![
        tool::<PlanArgs>(
            "plan",
            "Plan a markdown task file: its waves and groups as JSON (mdbatch plan --format json). Runs nothing.",
            read_only.clone(),
        ),
        tool::<FileArgs>(
            "check",
            "Check a task file and list every problem with line and column. Runs nothing.",
            read_only.clone(),
        ),
        tool::<RunArgs>(
            "run",
            "Start a detached batch run of a task file and return its run id at once; the run goes on in the background (it spends money: each task runs a coding agent). Follow it with `status` or `wait`.",
            ToolAnnotations::new().read_only(false).destructive(false),
        ),
        tool::<FileArgs>(
            "status",
            "The latest run of a task file, task by task, with each failed attempt and its kind.",
            read_only.clone(),
        ),
        tool::<LogsArgs>(
            "logs",
            "The output of one attempt of a task (the latest by default), last lines only.",
            read_only.clone(),
        ),
        tool::<WaitArgs>(
            "wait",
            "Wait for the run of a task file to end, at most timeout_secs (default 30, max 50); answers `finished` or `timeout` with a summary, and sends progress notifications while it waits. Call again to keep waiting.",
            read_only,
        ),
        tool::<StopArgs>(
            "stop",
            "Stop the run of a task file: running tasks get a grace period, or end at once with now=true.",
            ToolAnnotations::new().read_only(false).destructive(true),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Option<JsonObject> {
        match v {
            serde_json::Value::Object(o) => Some(o),
            _ => None,
        }
    }

    #[test]
    fn every_schema_is_a_closed_object_with_its_required_fields() {
        for t in all() {
            let s = &t.input_schema;
            assert_eq!(s.get("type"), Some(&json!("object")), "{}", t.name);
            assert_eq!(
                s.get("additionalProperties"),
                Some(&json!(false)),
                "{}",
                t.name
            );
            let req = s
                .get("required")
                .and_then(|r| r.as_array())
                .expect("required");
            assert!(req.contains(&json!("file")), "{}", t.name);
        }
    }

    #[test]
    fn errors_name_the_field_and_the_tool() {
        let e = parse::<RunArgs>(
            "run",
            obj(json!({"file": "t.md", "options": {"jobs": "4"}})),
        )
        .expect_err("wrong type");
        assert!(
            e.starts_with("invalid arguments for `run`: options.jobs: invalid type"),
            "{e}"
        );
        let e = parse::<FileArgs>("check", None).expect_err("missing");
        assert!(e.contains("missing field `file`"), "{e}");
        let e = parse::<StopArgs>("stop", obj(json!({"file": "t.md", "force": true})))
            .expect_err("extra");
        assert!(e.contains("unknown field `force`"), "{e}");
        let e = parse::<WaitArgs>("wait", obj(json!({"file": "t.md", "timeout_secs": 3600})))
            .expect_err("range");
        assert!(e.contains("timeout_secs: 3600 is out of range"), "{e}");
        let e = parse::<RunArgs>(
            "run",
            obj(json!({"file": "t.md", "options": {"max_cost_usd": -1}})),
        )
        .expect_err("negative");
        assert!(e.contains("options.max_cost_usd"), "{e}");
    }
}
