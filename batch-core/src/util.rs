//! Small shared helpers: durations (`90s`, `30m`, `1h30m`), time stamps.

use std::time::Duration;

use crate::error::DurationError;

/// Parses a duration written as `90s`, `30m`, `1h`, `1h30m`, `500ms` or a bare
/// number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = num
            .parse()
            .map_err(|_| DurationError::Malformed(text.to_string()))?;
        num.clear();
        let secs = match unit.as_str() {
            "ms" => value / 1000.0,
            "s" | "sec" | "secs" => value,
            "m" | "min" | "mins" => value * 60.0,
            "h" | "hr" | "hours" => value * 3600.0,
            _ => {
                return Err(DurationError::Unit {
                    unit,
                    text: text.to_string(),
                });
            }
        };
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(DurationError::OutOfRange(text.to_string()));
        }
        total += Duration::from_secs_f64(secs);
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(DurationError::Malformed(text.to_string()));
    }
    Ok(total)
}

/// The last line of `text` that is not blank, trimmed: what a failed
/// command's output tail says last.
#[cfg(feature = "exec")]
pub(crate) fn last_line(text: &str) -> Option<&str> {
    last_of(text.lines())
}

/// The last of `lines` that is not blank, trimmed.
#[cfg(feature = "exec")]
pub(crate) fn last_of<'a>(lines: impl DoubleEndedIterator<Item = &'a str>) -> Option<&'a str> {
    lines.rev().map(str::trim).find(|l| !l.is_empty())
}

/// Whether a process exists (signal 0 probes without sending anything).
#[cfg(all(feature = "exec", unix))]
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Formats a duration the way users write them (`1m30s`, `2.5s`, `120ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else {
        format!("{m}m{s:02}s")
    }
}

/// The current UTC time as RFC 3339 with milliseconds.
#[cfg(feature = "exec")]
pub fn now_rfc3339() -> String {
    crate::events::rfc3339_millis(std::time::SystemTime::now())
}

/// Serde for `Duration` as a string such as `"90s"` (also accepts seconds as a number).
#[cfg(feature = "exec")]
pub(crate) mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration_exact(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) if (0.0..1e9).contains(&n) => Ok(Duration::from_secs_f64(n)),
            Raw::Num(n) => Err(serde::de::Error::custom(format!(
                "duration {n} is out of range"
            ))),
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde for `Option<Duration>`.
#[cfg(feature = "exec")]
pub(crate) mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::duration")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// `Duration` as an exact string that round-trips through [`parse_duration`].
#[cfg(feature = "exec")]
pub(crate) fn format_duration_exact(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An error with its causes, `message: cause: cause`, for one-line reports
/// (a warning, `error:` in the CLI) that must not drop the OS's reason (`No
/// space left on device`). Causes whose text the message already ends with
/// are not repeated.
#[cfg(feature = "exec")]
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "exec")]
    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[cfg(feature = "exec")]
    #[test]
    fn the_last_line_skips_trailing_blank_lines_and_trims() {
        assert_eq!(last_line("one\n  two  \n\n   \n"), Some("two"));
        assert_eq!(last_line(" \n\t\n"), None);
        assert_eq!(last_of(["a", "b ", ""].into_iter()), Some("b"));
    }

    #[test]
    fn durations_parse_in_the_units_users_write() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("12").unwrap(), Duration::from_secs(12));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
    }
}
