//! A compact text outline of a parsed document, for snapshots and eyeballing.

use batch_core::doc::{Document, Parallelism};

/// Waves > groups > tasks with ids, state, flags, parents and dependency text.
pub fn outline(doc: &Document) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dialect: {} ({})\n",
        doc.dialect, doc.dialect_reason
    ));
    out.push_str(&format!(
        "wave level: {}; bom: {}; crlf: {}; front matter: {}\n",
        doc.wave_level,
        doc.bom,
        doc.crlf,
        doc.front_matter.is_some()
    ));
    out.push_str(&format!(
        "preamble: {} lines\n",
        doc.preamble.lines().count()
    ));
    let outside: Vec<&str> = doc
        .tasks
        .iter()
        .filter(|t| t.wave.is_none())
        .map(|t| t.id.as_str())
        .collect();
    if !outside.is_empty() {
        out.push_str(&format!("outside any wave: {}\n", outside.join(", ")));
    }
    for w in &doc.waves {
        out.push_str(&format!("wave {}: {}\n", w.index, w.title));
        for &g in &w.groups {
            let g = &doc.groups[g];
            let parallel = match g.parallel {
                Parallelism::Sequential => "sequential".to_string(),
                Parallelism::Unbounded => "unbounded".to_string(),
                Parallelism::Max(n) => format!("max {n}"),
                _ => "other".to_string(),
            };
            out.push_str(&format!(
                "  group {}: {} [module: {}; {}{}]\n",
                g.index,
                if g.section.is_none() {
                    "(lead)"
                } else {
                    g.title.as_str()
                },
                g.module.as_deref().unwrap_or("-"),
                parallel,
                if g.parallel_from_hint { " (hint)" } else { "" }
            ));
            for &t in &g.tasks {
                let t = &doc.tasks[t];
                let mut flags = Vec::new();
                if t.optional {
                    flags.push("optional".to_string());
                }
                if t.skip {
                    flags.push("skip".to_string());
                }
                if t.parallel_marker {
                    flags.push("P".to_string());
                }
                if let Some(s) = t.story() {
                    flags.push(s.to_string());
                }
                if let Some(p) = t.parent {
                    flags.push(format!("parent {}", doc.tasks[p].id));
                }
                if !t.depends_on().is_empty() {
                    flags.push(format!("depends {}", t.depends_on().join(",")));
                }
                out.push_str(&format!(
                    "    [{}] {} :{} {}{}\n",
                    if t.checked { "x" } else { " " },
                    t.id,
                    t.pos.line,
                    t.text
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(50)
                        .collect::<String>(),
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", flags.join("; "))
                    }
                ));
            }
        }
    }
    for w in &doc.warnings {
        out.push_str(&format!("warning: {}:{}: {}\n", w.line, w.col, w.message));
    }
    out
}
