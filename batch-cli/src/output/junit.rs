//! `--junit FILE`: the run as a JUnit XML report for CI dashboards.
//!
//! One `<testsuite>` named after the task file; one `<testcase>` per task the
//! run planned (tasks already checked before the run are not in it), in plan
//! order, with `classname` = `wave/group` (just the wave for tasks directly
//! under a wave heading) and `name` = `id: text`. Then:
//! - failed: `<failure type="{kind}" message="{first line}">` with the full
//!   message and the attempt count; earlier attempts as `<rerunFailure>`;
//! - flaky (succeeded after a retry): `<property name="flaky" value="true"/>`
//!   and each failed attempt as `<flakyFailure>` (the Maven Surefire format
//!   Jenkins, GitLab and most dashboards read);
//! - landed (worktree isolation, `--commit`): `<property name="commit" value="{sha}"/>`;
//! - skipped: `<skipped message="{reason}"/>`;
//! - interrupted: `<error type="cancelled">`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use batch_core::Document;
use batch_core::exec::{Outcome, RunReport, TaskReport};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::state::{RetryRecord, first_line};

/// Retried attempts per task id, as collected by [`super::Output::retries`].
pub type Retries = BTreeMap<String, Vec<RetryRecord>>;

/// Writes the report for a finished run of `task_file`: the file is read
/// again for the wave and group of each task (ids are stable across the
/// checkmarks the run wrote). A file that no longer parses still gets a report,
/// with every task in one class.
pub fn write_for_run(
    path: &Path,
    task_file: &Path,
    options: &batch_core::ParseOptions,
    report: &RunReport,
    retries: &Retries,
) -> io::Result<()> {
    let doc = Document::read(task_file, options).ok();
    std::fs::write(path, render(report, doc.as_ref(), retries)?)
}

/// The report as XML text.
pub fn render(report: &RunReport, doc: Option<&Document>, retries: &Retries) -> io::Result<String> {
    let count = |o: Outcome| report.tasks.iter().filter(|t| t.outcome == o).count();
    let tests = report.tasks.len().to_string();
    let failures = count(Outcome::Failed).to_string();
    let errors = count(Outcome::Interrupted).to_string();
    let skipped = count(Outcome::Skipped).to_string();
    let time = seconds(report.summary.duration_ms);
    let suite_name = doc
        .and_then(|d| d.path.as_deref())
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tasks".into());

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let counts = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ];
    w.create_element("testsuites")
        .with_attribute(("name", "mdbatch"))
        .with_attributes(counts)
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attribute(("name", xml_text(&suite_name).as_str()))
                .with_attributes(counts)
                .write_inner_content(|w| {
                    w.create_element("properties").write_inner_content(|w| {
                        property(w, "run_id", &report.run_id)?;
                        if let Some(p) = doc.and_then(|d| d.path.as_ref()) {
                            property(w, "file", &p.display().to_string())?;
                        }
                        Ok(())
                    })?;
                    for t in &report.tasks {
                        testcase(w, t, doc, retries.get(&t.id).map(Vec::as_slice))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut out = String::from_utf8(w.into_inner())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    out.push('\n');
    Ok(out)
}

fn testcase(
    w: &mut Writer<Vec<u8>>,
    t: &TaskReport,
    doc: Option<&Document>,
    retries: Option<&[RetryRecord]>,
) -> io::Result<()> {
    let (classname, title) = place(doc, &t.id);
    let name = if title.is_empty() {
        t.id.clone()
    } else {
        format!("{}: {title}", t.id)
    };
    let retries = retries.unwrap_or(&[]);
    w.create_element("testcase")
        .with_attribute(("classname", xml_text(&classname).as_str()))
        .with_attribute(("name", xml_text(&name).as_str()))
        .with_attribute(("time", seconds(t.duration_ms).as_str()))
        .write_inner_content(|w| {
            w.create_element("properties").write_inner_content(|w| {
                property(w, "id", &t.id)?;
                property(w, "attempts", &t.attempts.to_string())?;
                if t.flaky {
                    property(w, "flaky", "true")?;
                }
                if let Some(c) = &t.commit {
                    property(w, "commit", c)?;
                }
                if let Some(u) = &t.usage {
                    property(w, "tokens", &(u.input_tokens + u.output_tokens).to_string())?;
                    if let Some(c) = u.cost_usd {
                        property(w, "cost_usd", &format!("{c:.4}"))?;
                    }
                }
                Ok(())
            })?;
            let message = t.message.as_deref().unwrap_or("");
            match t.outcome {
                Outcome::Failed => {
                    let kind = t
                        .kind
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "failed".into());
                    w.create_element("failure")
                        .with_attribute(("type", kind.as_str()))
                        .with_attribute(("message", xml_text(&first_line(message)).as_str()))
                        .write_text_content(BytesText::new(&xml_text(&format!(
                            "{kind}: {message}\nafter {} attempt(s); see `mdbatch logs {}`",
                            t.attempts, t.id
                        ))))?;
                    for r in retries {
                        attempt_element(w, "rerunFailure", r)?;
                    }
                }
                Outcome::Skipped => {
                    w.create_element("skipped")
                        .with_attribute(("message", xml_text(message).as_str()))
                        .write_empty()?;
                }
                Outcome::Succeeded => {
                    for r in retries {
                        attempt_element(w, "flakyFailure", r)?;
                    }
                }
                _ => {
                    w.create_element("error")
                        .with_attribute(("type", "cancelled"))
                        .with_attribute((
                            "message",
                            xml_text(if message.is_empty() {
                                "interrupted"
                            } else {
                                message
                            })
                            .as_str(),
                        ))
                        .write_empty()?;
                }
            }
            if t.flaky {
                w.create_element("system-out")
                    .write_text_content(BytesText::new(&format!(
                        "flaky: succeeded on attempt {} after {} failed attempt(s)",
                        t.attempts,
                        t.attempts.saturating_sub(1)
                    )))?;
            }
            Ok(())
        })?;
    Ok(())
}

fn attempt_element(w: &mut Writer<Vec<u8>>, tag: &str, r: &RetryRecord) -> io::Result<()> {
    w.create_element(tag)
        .with_attribute(("type", r.kind.as_str()))
        .with_attribute(("message", xml_text(&first_line(&r.message)).as_str()))
        .write_text_content(BytesText::new(&xml_text(&format!(
            "attempt {}: {}: {}",
            r.attempt, r.kind, r.message
        ))))?;
    Ok(())
}

fn property(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element("property")
        .with_attribute(("name", name))
        .with_attribute(("value", xml_text(value).as_str()))
        .write_empty()?;
    Ok(())
}

/// `wave/group` (or just the wave for its lead group) and the task text.
fn place(doc: Option<&Document>, id: &str) -> (String, String) {
    let Some((doc, task)) = doc.and_then(|d| Some((d, d.task_by_id(id)?))) else {
        return ("tasks".into(), String::new());
    };
    let wave = task.wave.and_then(|w| doc.waves.get(w));
    let group = task.group.and_then(|g| doc.groups.get(g));
    let classname = match (wave, group) {
        (Some(w), Some(g)) if g.section.is_some() => format!("{}/{}", w.title, g.title),
        (Some(w), _) => w.title.clone(),
        (None, Some(g)) => g.title.clone(),
        (None, None) => "tasks".into(),
    };
    (classname, first_line(&task.text))
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Text XML 1.0 can carry: escape codes (from a subagent's output, which
/// error messages quote) are removed, and so are the characters XML 1.0
/// forbids (control characters other than tab, newline and carriage return;
/// U+FFFE, U+FFFF) and the C1 controls, so a CI dashboard shows the words.
fn xml_text(s: &str) -> String {
    console::strip_ansi_codes(s)
        .chars()
        .filter(|&c| match c {
            '\t' | '\n' | '\r' => true,
            '\u{FFFE}' | '\u{FFFF}' => false,
            c => !c.is_control(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(
            xml_text("a\x1b[31mb\x1b[0m\tc\x01\x02\x1b\u{9b}\u{FFFF}\n"),
            "ab\tc\n"
        );
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(2345), "2.345");
        assert_eq!(seconds(7), "0.007");
    }
}
