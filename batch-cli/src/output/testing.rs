//! Test helpers: envelopes from compact JSON.

use batch_core::exec::Envelope;
use serde_json::{Value, json};

/// An envelope of `type` with `data`, sequence `seq`.
pub fn env(seq: u64, ty: &str, data: Value) -> Envelope {
    serde_json::from_value(json!({
        "v": 1,
        "seq": seq,
        "ts": format!("2026-11-25T09:00:{:02}.000Z", seq % 60),
        "run_id": "run-1",
        "type": ty,
        "data": data,
    }))
    .expect("a valid test envelope")
}

/// A realistic event sequence: three tasks in two waves, one retried then
/// succeeding (flaky), one failing, one skipped.
pub fn sample_run() -> Vec<Envelope> {
    let evs = [
        (
            "run_started",
            json!({"file":"task.md","total":4,"waves":2,"jobs":2,"runner":"command","unfinished":[]}),
        ),
        (
            "task_started",
            json!({"id":"T001","title":"Create the model","attempt":1,"wave":0,"group":"Setup"}),
        ),
        (
            "task_started",
            json!({"id":"T002","title":"Parse hints","attempt":1,"wave":0,"group":"Setup"}),
        ),
        (
            "task_progress",
            json!({"id":"T001","attempt":1,"progress":{"kind":"output","stream":"stdout","line":"writing model.rs"}}),
        ),
        (
            "task_progress",
            json!({"id":"T002","attempt":1,"progress":{"kind":"tool_call","tool":"Write","arg":"src/hints.rs"}}),
        ),
        (
            "task_retrying",
            json!({"id":"T001","attempt":1,"kind":"failed","message":"exit status 1\nmore","delay_ms":1000,"counts":true}),
        ),
        (
            "task_started",
            json!({"id":"T001","title":"Create the model","attempt":2,"wave":0,"group":"Setup"}),
        ),
        (
            "task_progress",
            json!({"id":"T001","attempt":2,"progress":{"kind":"usage","usage":{"input_tokens":1000,"output_tokens":200,"cost_usd":0.25,"turns":3}}}),
        ),
        (
            "task_succeeded",
            json!({"id":"T001","attempt":2,"duration_ms":2300,"flaky":true,"usage":{"input_tokens":1500,"output_tokens":300,"cost_usd":0.3,"turns":5},"parents_checked":[]}),
        ),
        (
            "task_failed",
            json!({"id":"T002","attempt":1,"kind":"fatal","message":"claude: not found","duration_ms":40}),
        ),
        (
            "task_skipped",
            json!({"id":"T003","reason":"dependency T002 failed"}),
        ),
        (
            "task_started",
            json!({"id":"T004","title":"Docs","attempt":1,"wave":1,"group":"Wrap up"}),
        ),
        (
            "task_succeeded",
            json!({"id":"T004","attempt":1,"duration_ms":500,"flaky":false,"usage":null,"parents_checked":["T000"]}),
        ),
        (
            "run_finished",
            json!({"summary":{"total":4,"succeeded":2,"flaky":1,"failed":1,"skipped":1,"interrupted":0,"duration_ms":3100,"usage":null,"cancelled":false}}),
        ),
    ];
    evs.into_iter()
        .enumerate()
        .map(|(i, (t, d))| env(i as u64, t, d))
        .collect()
}

/// The report matching [`sample_run`].
pub fn sample_report() -> batch_core::exec::RunReport {
    serde_json::from_value(json!({
        "run_id": "run-1",
        "summary": {"total":4,"succeeded":2,"flaky":1,"failed":1,"skipped":1,"interrupted":0,"duration_ms":3100,
                    "usage":{"input_tokens":1500,"output_tokens":300,"cost_usd":0.3,"turns":5},"cancelled":false},
        "tasks": [
            {"id":"T001","outcome":"succeeded","attempts":2,"kind":null,"message":null,"duration_ms":2300,
             "usage":{"input_tokens":1500,"output_tokens":300,"cost_usd":0.3,"turns":5},"flaky":true},
            {"id":"T002","outcome":"failed","attempts":1,"kind":"fatal","message":"claude: not found","duration_ms":40,"usage":null,"flaky":false},
            {"id":"T003","outcome":"skipped","attempts":0,"kind":null,"message":"dependency T002 failed","duration_ms":0,"usage":null,"flaky":false},
            {"id":"T004","outcome":"succeeded","attempts":1,"kind":null,"message":null,"duration_ms":500,"usage":null,"flaky":false}
        ]
    }))
    .expect("a valid test report")
}
