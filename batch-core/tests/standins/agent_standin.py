#!/usr/bin/env python3
"""Stand-in for the real agent CLIs (claude, codex, gemini) in mdbatch's tests.

Installed on a temporary PATH under the CLI's name (a symlink), it replays the
output shapes captured from the real CLIs (../shared/agents/) line for line:
same event types, same keys, same exit codes. Which scenario an invocation
plays is the next entry of $STANDIN_SCENARIOS (comma-separated; the last one
repeats; $STANDIN_SCENARIOS_<task id> gives a task its own list). Every invocation appends its argv and the environment variables the
presets set to $STANDIN_DIR/calls.jsonl.
"""
import json
import os
import sys
import time
import uuid

NAME = os.path.basename(sys.argv[0])
STATE = os.environ.get("STANDIN_DIR", ".")
SCENARIOS = os.environ.get("STANDIN_SCENARIOS", "success").split(",")


def next_scenario():
    # $STANDIN_SCENARIOS_<task id> (from $MDBATCH_TASK_ID) overrides the shared list.
    task = "".join(c if c.isalnum() else "_" for c in os.environ.get("MDBATCH_TASK_ID", ""))
    own = os.environ.get("STANDIN_SCENARIOS_" + task)
    scenarios = own.split(",") if own else SCENARIOS
    path = os.path.join(STATE, "count-" + NAME + ("-" + task if own else ""))
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return scenarios[min(n, len(scenarios) - 1)]


def log_call(scenario):
    keys = ["CLAUDE_CODE_MAX_RETRIES", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "MDBATCH_TASK_ID", "MDBATCH_ATTEMPT"]
    rec = {"cli": NAME, "argv": sys.argv[1:], "scenario": scenario, "cwd": os.getcwd(), "pid": os.getpid(),
           "env": {k: os.environ[k] for k in keys if k in os.environ}}
    with open(os.path.join(STATE, "calls.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")


def out(obj):
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))) + "\n")
    sys.stdout.flush()


def err(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def arg_after(flag):
    a = sys.argv[1:]
    for i, x in enumerate(a):
        if x == "--":
            return None
        if x == flag and i + 1 < len(a):
            return a[i + 1]
        if x.startswith(flag + "="):
            return x.split("=", 1)[1]
    return None


def hang():
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------- claude

def claude(scenario):
    sid = arg_after("--session-id") or arg_after("--resume") or str(uuid.uuid4())
    cwd = os.getcwd()
    init = {"type": "system", "subtype": "init", "cwd": cwd, "session_id": sid,
            "tools": ["Task", "Bash", "Edit", "Read", "Write"], "mcp_servers": [], "model": "claude-opus-5-5",
            "permissionMode": arg_after("--permission-mode") or "default", "slash_commands": ["compact", "init"],
            "apiKeySource": "ANTHROPIC_API_KEY", "claude_code_version": "2.1.330", "output_style": "default",
            "agents": ["claude"], "skills": [], "plugins": [], "analytics_disabled": True,
            "uuid": str(uuid.uuid4()), "original_cwd": cwd, "additional_directories": []}
    usage0 = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0,
              "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0}, "service_tier": "standard"}

    def assistant(content, **extra):
        d = {"type": "assistant", "message": {"id": "msg_1", "type": "message", "role": "assistant",
             "model": "claude-opus-5-5", "content": content, "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 50, "output_tokens": 1}, "context_management": None},
             "parent_tool_use_id": None, "session_id": sid, "uuid": str(uuid.uuid4())}
        d.update(extra)
        return d

    def tool_use():
        path = os.path.join(cwd, "hello.txt")
        with open(path, "w") as f:
            f.write("hi\n")
        out(assistant([{"type": "tool_use", "id": "toolu_01", "name": "Write",
                        "input": {"file_path": path, "content": "hi\n"}}]))
        out({"type": "user", "message": {"role": "user", "content": [{"tool_use_id": "toolu_01", "type": "tool_result",
             "content": "File created successfully at: " + path}]}, "parent_tool_use_id": None, "session_id": sid,
             "uuid": str(uuid.uuid4())})

    def result(**kv):
        d = {"duration_api_ms": 50, "stop_reason": "end_turn", "session_id": sid, "total_cost_usd": 0.00086,
             "usage": dict(usage0, input_tokens=100, output_tokens=23), "modelUsage": {}, "permission_denials": [],
             "terminal_reason": "completed", "is_error": False, "num_turns": 2, "subtype": "success",
             "api_error_status": None, "result": "Done.", "type": "result", "duration_ms": 211,
             "uuid": str(uuid.uuid4())}
        d.update(kv)
        out(d)

    def api_error(status, etype, err_code, text, retry=True, reason="api_error"):
        if retry:
            out({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 1, "retry_delay_ms": 583,
                 "error_status": status, "error": err_code, "session_id": sid, "uuid": str(uuid.uuid4())})
        msg = assistant([{"type": "text", "text": text}], error=err_code, is_api_error_message=True,
                        api_error_status=status, api_error_type=etype)
        msg["message"]["model"] = "<synthetic>"
        out(msg)
        result(stop_reason="stop_sequence", total_cost_usd=0, usage=usage0, terminal_reason=reason, is_error=True,
               num_turns=1, subtype="success", api_error_status=status, api_error_type=etype, result=text)
        return 1

    out(init)
    if scenario == "success":
        tool_use()
        out(assistant([{"type": "text", "text": "Done."}]))
        result()
        return 0
    if scenario == "garbage":
        out("Warning: this line is not JSON")
        out({"type": "brand_new_event", "payload": {"x": 1}})
        out('{"type":"assistant","message":')
        out({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed", "rateLimitType": "five_hour"}})
        out(assistant([{"type": "thinking", "thinking": "hmm"}]))
        tool_use()
        out(assistant([{"type": "text", "text": "Done."}]))
        result()
        return 0
    if scenario == "rate-limited-429":
        return api_error(429, "rate_limit_error", "rate_limit",
                         "API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit")
    if scenario == "overloaded-529":
        return api_error(529, "overloaded_error", "server_error",
                         "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment.")
    if scenario == "usage-limit":
        out({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": int(time.time()) + 90,
             "rateLimitType": "five_hour", "overageStatus": "rejected", "isUsingOverage": False}})
        return api_error(429, "rate_limit_error", "rate_limit", "You've hit your limit · resets 3pm (UTC)", retry=False)
    if scenario == "invalid-api-key-401":
        return api_error(401, "authentication_error", "authentication_failed", "Invalid API key · Fix external API key")
    if scenario == "prompt-too-long-400":
        return api_error(400, "invalid_request_error", "invalid_request",
                         "Prompt is too long · the request is ~250123 tokens (limit 200000)", retry=False,
                         reason="prompt_too_long")
    if scenario == "max-turns":
        tool_use()
        turns = arg_after("--max-turns") or "1"
        result(stop_reason="tool_use", total_cost_usd=0.0006, usage=dict(usage0, input_tokens=50, output_tokens=20),
               terminal_reason="max_turns", is_error=True, num_turns=int(turns) + 1, subtype="error_max_turns",
               errors=["Reached maximum number of turns (%s)" % turns], result=None)
        return 1
    if scenario == "crash":
        tool_use()
        err("Error: ENOMEM: the agent ran out of memory")
        return 1
    if scenario == "hang":
        hang()
    raise SystemExit("unknown scenario " + scenario)


# --------------------------------------------------------------------------- codex

def codex(scenario):
    a = sys.argv[1:]
    resume = len(a) > 1 and a[0] == "exec" and a[1] == "resume"
    thread = a[a.index("--") + 1] if resume and "--" in a else "01a211dc-773e-7bb0-a3aa-c44ded8a88bb"
    err("Reading additional input from stdin...")
    out({"type": "thread.started", "thread_id": thread})
    out({"type": "turn.started"})

    def fail(msg, retries=0):
        for i in range(retries):
            out({"type": "error", "message": "Reconnecting... %d/5 (%s)" % (i + 1, msg)})
        out({"type": "error", "message": msg})
        out({"type": "turn.failed", "error": {"message": msg}})
        return 1

    if scenario == "success":
        out({"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "**Creating hello.txt**"}})
        cmd = "/bin/bash -lc \"echo 'Hello, world' > hello.txt\""
        out({"type": "item.started", "item": {"id": "item_1", "type": "command_execution", "command": cmd,
             "aggregated_output": "", "exit_code": None, "status": "in_progress"}})
        with open("hello.txt", "w") as f:
            f.write("Hello, world\n")
        out({"type": "item.completed", "item": {"id": "item_1", "type": "command_execution", "command": cmd,
             "aggregated_output": "", "exit_code": 0, "status": "completed"}})
        out({"type": "item.completed", "item": {"id": "item_2", "type": "agent_message",
             "text": "Created `hello.txt` containing \"Hello, world!\"."}})
        out({"type": "turn.completed", "usage": {"input_tokens": 18600, "cached_input_tokens": 9088,
             "cache_write_input_tokens": 0, "output_tokens": 211, "reasoning_output_tokens": 64}})
        return 0
    if scenario == "rate-limited-429":
        return fail("exceeded retry limit, last status: 429 Too Many Requests")
    if scenario == "quota-exceeded-429":
        return fail("Quota exceeded. Check your plan and billing details.")
    if scenario == "invalid-api-key-401":
        return fail("unexpected status 401 Unauthorized: Incorrect API key provided: sk-test., url: http://127.0.0.1:18080/v1/responses")
    if scenario == "overloaded-503-default-retries":
        return fail("unexpected status 503 Service Unavailable: The server is overloaded or not ready yet., url: http://127.0.0.1:18080/v1/responses", retries=5)
    if scenario == "context-too-long-400":
        return fail("Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.")
    if scenario == "unreachable":
        out({"type": "error", "message": "Reconnecting... waiting for network (Connection failed: error sending request)"})
        hang()
    raise SystemExit("unknown scenario " + scenario)


# --------------------------------------------------------------------------- gemini

def gemini(scenario):
    sid = arg_after("--session-id") or arg_after("--resume") or str(uuid.uuid4())
    prompt = arg_after("--prompt") or ""
    ts = "2026-11-25T08:39:24.728Z"
    for line in ["Warning: 256-color support not detected.",
                 "YOLO mode is enabled. All tool calls will be automatically approved.",
                 "Ripgrep is not available. Falling back to GrepTool."]:
        err(line)
    if scenario == "untrusted-folder":
        err("\x1b[31mGemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`.\x1b[0m")
        return 55
    out({"type": "init", "timestamp": ts, "session_id": sid, "model": "gemini-2.5-flash"})
    out({"type": "message", "timestamp": ts, "role": "user", "content": prompt})
    zero = {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0, "cached": 0, "input": 0, "duration_ms": 0,
            "tool_calls": 0}

    def fail(code, etype, msg, attempt_line=None):
        if attempt_line:
            err(attempt_line)
        out({"type": "result", "timestamp": ts, "status": "error", "error": {"type": etype, "message": msg},
             "stats": zero})
        return code

    if scenario == "success":
        out({"type": "message", "timestamp": ts, "role": "assistant", "content": "I'll create `hello.txt` for you.", "delta": True})
        out({"type": "tool_use", "timestamp": ts, "tool_name": "write_file", "tool_id": "write_file_1",
             "parameters": {"file_path": "hello.txt", "content": "Hello, world\n"}})
        with open("hello.txt", "w") as f:
            f.write("Hello, world\n")
        out({"type": "tool_result", "timestamp": ts, "tool_id": "write_file_1", "status": "success"})
        out({"type": "message", "timestamp": ts, "role": "assistant", "content": "Created `hello.txt`", "delta": True})
        out({"type": "message", "timestamp": ts, "role": "assistant", "content": " containing \"Hello, world\".", "delta": True})
        out({"type": "result", "timestamp": ts, "status": "success", "stats": {"total_tokens": 17052,
             "input_tokens": 16952, "output_tokens": 43, "cached": 8192, "input": 8760, "duration_ms": 123,
             "tool_calls": 1}})
        return 0
    if scenario == "rate-limited-429":
        return fail(173, "unknown", "[API Error: You exceeded your current quota, please check your plan and billing details.\nPlease retry in 2.5s.\nSuggested retry after 2s.]\nPlease wait and try again later.",
                    "Attempt 1 failed: You exceeded your current quota. Please retry in 2.5s.. Max attempts reached")
    if scenario == "invalid-api-key-401":
        return fail(145, "unknown", "[API Error: {\"error\":{\"code\":401,\"message\":\"Request had invalid authentication credentials.\",\"status\":\"UNAUTHENTICATED\"}}]")
    if scenario == "context-too-long-400":
        return fail(144, "unknown", "[API Error: {\"error\":{\"code\":400,\"message\":\"The input token count (1203847) exceeds the maximum number of tokens allowed (1048576).\",\"status\":\"INVALID_ARGUMENT\"}}]")
    if scenario == "overloaded-503":
        return fail(247, "unknown", "[API Error: The model is overloaded. Please try again later.]")
    if scenario == "max-session-turns":
        out({"type": "tool_use", "timestamp": ts, "tool_name": "write_file", "tool_id": "w1",
             "parameters": {"file_path": "hello.txt", "content": "x"}})
        out({"type": "tool_result", "timestamp": ts, "tool_id": "w1", "status": "success"})
        return fail(53, "FatalTurnLimitedError", "Reached max session turns for this session. Increase the number of turns by specifying maxSessionTurns in settings.json.")
    raise SystemExit("unknown scenario " + scenario)


VERSIONS = {"claude": "%s (Claude Code)", "codex": "codex-cli %s", "gemini": "%s"}
TESTED = {"claude": "2.1.330", "codex": "0.169.0", "gemini": "0.61.0"}
HELP_FLAGS = {
    "claude": "--print --output-format --verbose --session-id --resume --permission-mode --model",
    "codex": "--json --skip-git-repo-check --sandbox --disable --model",
    "gemini": "--prompt --output-format --skip-trust --approval-mode --session-id --resume --model",
}

if __name__ == "__main__":
    # `--version` and the help text, for `mdbatch doctor` ($STANDIN_VERSION overrides the version).
    if sys.argv[1:] == ["--version"]:
        out(VERSIONS[NAME] % os.environ.get("STANDIN_VERSION", TESTED[NAME]))
        sys.exit(0)
    if sys.argv[-1:] == ["--help"]:
        out("Usage: " + NAME + " [options]\n" + HELP_FLAGS[NAME])
        sys.exit(0)
    scenario = next_scenario()
    log_call(scenario)
    sys.exit({"claude": claude, "codex": codex, "gemini": gemini}[NAME](scenario))
