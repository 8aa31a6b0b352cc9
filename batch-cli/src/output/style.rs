//! Colour and small text helpers shared by the human reporters.

use std::time::Duration;

use batch_core::Usage;
use console::Style;

/// Paints text when colour is on; returns it unchanged when off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    /// Colour on.
    pub on: bool,
}

impl Paint {
    fn with(self, style: Style, text: &str) -> String {
        if self.on {
            style.force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
    /// Success.
    pub fn green(self, t: &str) -> String {
        self.with(Style::new().green(), t)
    }
    /// Failure.
    pub fn red(self, t: &str) -> String {
        self.with(Style::new().red(), t)
    }
    /// Retries, warnings, skips.
    pub fn yellow(self, t: &str) -> String {
        self.with(Style::new().yellow(), t)
    }
    /// Ids.
    pub fn bold(self, t: &str) -> String {
        self.with(Style::new().bold(), t)
    }
    /// Secondary text (activity, durations).
    pub fn dim(self, t: &str) -> String {
        self.with(Style::new().dim(), t)
    }
    /// Headers.
    pub fn cyan(self, t: &str) -> String {
        self.with(Style::new().cyan(), t)
    }
}

/// A live elapsed time: `7s`, `1m05s`, `1h02m` (whole seconds; the display ticks).
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s / 60) % 60)
    }
}

/// A finished duration from milliseconds (`2.3s`, `1m05s`).
pub fn took(ms: u64) -> String {
    batch_core::format_duration(Duration::from_millis(ms))
}

/// A token count: `950`, `12.3k`, `4.1M`.
pub fn tokens(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        format!("{:.1}M", n as f64 / 1_000_000.0)
    }
}

/// Usage as `12.3k tokens, $0.42` (cost only when known).
pub fn usage(u: &Usage) -> String {
    let mut s = format!("{} tokens", tokens(u.input_tokens + u.output_tokens));
    if let Some(c) = u.cost_usd {
        s.push_str(&format!(", ${c:.2}"));
    }
    s
}

/// Cuts `s` to `width` display columns, ending with `…` when cut. Control
/// characters (escape codes from a subagent's output) are replaced so they can
/// never move the cursor of the live display.
pub fn fit(s: &str, width: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    console::truncate_str(&clean, width, "…").into_owned()
}

/// Pads (or cuts) to exactly `width` display columns.
pub fn column(s: &str, width: usize) -> String {
    let cut = fit(s, width);
    let w = console::measure_text_width(&cut);
    format!("{cut}{}", " ".repeat(width.saturating_sub(w)))
}

/// Removes control characters (escape codes) from a line a subagent printed.
pub fn clean(s: &str) -> String {
    let stripped = console::strip_ansi_codes(s);
    stripped
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// [`clean`] for a text of several lines: each line is cleaned, the line
/// breaks are kept.
pub fn clean_lines(s: &str) -> String {
    s.lines().map(clean).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_is_compact_and_whole_seconds() {
        assert_eq!(elapsed(Duration::from_millis(7_900)), "7s");
        assert_eq!(elapsed(Duration::from_secs(65)), "1m05s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn tokens_read_like_people_count_them() {
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(4_100_000), "4.1M");
        let mut u = Usage::default();
        u.input_tokens = 12_000;
        u.output_tokens = 345;
        u.cost_usd = Some(0.4166);
        assert_eq!(usage(&u), "12.3k tokens, $0.42");
    }

    #[test]
    fn fit_never_exceeds_the_width_and_marks_the_cut() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(console::measure_text_width(&fit("日本語のテキスト", 5)), 5);
        assert_eq!(column("ab", 4), "ab  ");
    }

    #[test]
    fn subagent_escape_codes_are_removed() {
        assert_eq!(clean("\x1b[31mred\x1b[0m\rback"), "red back");
    }

    #[test]
    fn paint_off_leaves_text_alone() {
        let p = Paint { on: false };
        assert_eq!(p.red("x"), "x");
        let p = Paint { on: true };
        assert!(p.red("x").contains("\x1b["));
    }
}
