//! Message classifiers shared by the preset parsers: statuses, waits and
//! reset times, usage limits, connection and auth errors, tool-call
//! arguments.

use std::time::Duration;

/// The first line of `s`, cut to `max` characters with `…`.
pub(crate) fn summary_line(s: &str, max: usize) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= max {
        let more = s.trim().lines().nth(1).is_some();
        if more && line.chars().count() < max {
            return format!("{line} …");
        }
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The last `max` characters of `s` (on a char boundary).
pub(crate) fn tail_chars(s: &str, max: usize) -> &str {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    let skip = n - max;
    let idx = s.char_indices().nth(skip).map(|(i, _)| i).unwrap_or(0);
    &s[idx..]
}

/// The main argument of a tool call: a path, a command, a pattern, a URL.
pub(crate) fn main_arg(input: &serde_json::Value) -> Option<String> {
    const KEYS: &[&str] = &[
        "file_path",
        "path",
        "notebook_path",
        "absolute_path",
        "command",
        "cmd",
        "pattern",
        "url",
        "query",
        "description",
        "prompt",
        "dir_path",
    ];
    let obj = input.as_object()?;
    for k in KEYS {
        if let Some(v) = obj.get(*k) {
            if let Some(s) = v.as_str() {
                return Some(summary_line(s, 120));
            }
            if let Some(arr) = v.as_array() {
                let parts: Vec<&str> = arr.iter().filter_map(|x| x.as_str()).collect();
                if !parts.is_empty() {
                    return Some(summary_line(&parts.join(" "), 120));
                }
            }
        }
    }
    None
}

/// A 3-digit HTTP status mentioned in `msg` (`429`, `unexpected status 503`).
pub(crate) fn http_status_in(msg: &str) -> Option<u16> {
    let b = msg.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let boundary_before = i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.';
        let digits = b[i..i + 3].iter().all(u8::is_ascii_digit);
        let boundary_after =
            i + 3 == b.len() || !b[i + 3].is_ascii_alphanumeric() && b[i + 3] != b'.';
        if boundary_before && digits && boundary_after {
            let n: u16 = msg[i..i + 3].parse().ok()?;
            if (400..600).contains(&n) {
                return Some(n);
            }
        }
        i += 1;
    }
    None
}

/// A wait the message asks for: `retry in 2.5s`, `retry after 2s`,
/// `try again in 1 hour 5 minutes`, `retry-after: 30`.
pub(crate) fn retry_in(msg: &str) -> Option<Duration> {
    let lower = msg.to_ascii_lowercase();
    const CUES: &[&str] = &[
        "retry in ",
        "retry after ",
        "try again in ",
        "try again after ",
        "retry-after: ",
        "retry_after: ",
    ];
    CUES.iter()
        .filter_map(|cue| lower.find(cue).map(|i| &lower[i + cue.len()..]))
        .find_map(parse_spoken_duration)
}

/// `2.5s`, `2s`, `30`, `1 hour 5 minutes`, `2 days, 3 hours`.
fn parse_spoken_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut any = false;
    let mut rest = s.trim_start();
    loop {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            break;
        }
        let Ok(n) = rest[..num_len].trim_end_matches('.').parse::<f64>() else {
            break;
        };
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "ms" | "millisecond" | "milliseconds" => 0.001,
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            _ => break,
        };
        total += n * secs;
        any = true;
        rest = rest[unit_len..].trim_start_matches([' ', ',']);
        rest = rest.strip_prefix("and ").unwrap_or(rest);
        if unit.is_empty() {
            break;
        }
    }
    (any && total.is_finite() && total >= 0.0)
        .then(|| Duration::from_secs_f64(total.min(7.0 * 86400.0)))
}

/// When a usage limit resets, as a wait from now: `limit reached|1767000000`
/// (epoch seconds), `resets 3pm`, `resets at 3:30 pm`, `reset at 15:00`,
/// `try again at 4:05 PM`. Clock times are read in the local time zone (the
/// CLI prints the user's zone) and mean their next occurrence.
pub(crate) fn reset_wait(msg: &str, now_epoch: i64) -> Option<Duration> {
    if let Some(i) = msg.find('|') {
        let digits: String = msg[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.len() >= 9
            && let Ok(at) = digits.parse::<i64>()
        {
            return Some(Duration::from_secs(
                at.saturating_sub(now_epoch).max(0) as u64
            ));
        }
    }
    let lower = msg.to_ascii_lowercase();
    const CUES: &[&str] = &[
        "resets at ",
        "resets ",
        "reset at ",
        "try again at ",
        "available again at ",
    ];
    let rest = CUES
        .iter()
        .find_map(|c| lower.find(c).map(|i| &lower[i + c.len()..]))?;
    let (hour, minute) = parse_clock(rest)?;
    local_wait_until(now_epoch, hour, minute)
}

/// `3pm`, `3:30 pm`, `15:00` → (hour, minute) on a 24-hour clock.
fn parse_clock(s: &str) -> Option<(u32, u32)> {
    let s = s.trim_start();
    let h_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if h_len == 0 || h_len > 2 {
        return None;
    }
    let mut hour: u32 = s[..h_len].parse().ok()?;
    let mut rest = &s[h_len..];
    let mut minute = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let m_len = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if m_len != 2 {
            return None;
        }
        minute = r[..2].parse().ok()?;
        rest = &r[2..];
    }
    let rest = rest.trim_start();
    let had_ampm = if rest.starts_with("am") || rest.starts_with("a.m") {
        if hour == 12 {
            hour = 0;
        }
        true
    } else if rest.starts_with("pm") || rest.starts_with("p.m") {
        if hour < 12 {
            hour += 12;
        }
        true
    } else {
        false
    };
    if !had_ampm && !s[h_len..].starts_with(':') {
        return None;
    }
    (hour < 24 && minute < 60).then_some((hour, minute))
}

/// Seconds from `now` until the next local `hour:minute`.
fn local_wait_until(now: i64, hour: u32, minute: u32) -> Option<Duration> {
    let offset = local_utc_offset(now)?;
    let local_secs = (now + offset).rem_euclid(86400);
    let target = i64::from(hour) * 3600 + i64::from(minute) * 60;
    let mut wait = target - local_secs;
    if wait <= 0 {
        wait += 86400;
    }
    Some(Duration::from_secs(wait as u64))
}

/// The local zone's offset from UTC at `epoch`, in seconds.
fn local_utc_offset(epoch: i64) -> Option<i64> {
    let t: libc::time_t = epoch as libc::time_t;
    // SAFETY: `localtime_r` writes only into the `tm` we own and is
    // thread-safe; a zeroed `tm` is a valid value of the plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then_some(tm.tm_gmtoff)
}

/// Seconds since the epoch.
pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `msg` reads like a usage/subscription limit (as opposed to a
/// per-minute rate limit).
pub(crate) fn is_usage_limit(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "usage limit",
        "hit your limit",
        "limit reached",
        "limit will reset",
        "out of extra usage",
    ]
    .iter()
    .any(|c| l.contains(c))
}

/// Whether `msg` reads like a failed connection.
pub(crate) fn is_connection_error(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "connection error",
        "connection failed",
        "connection refused",
        "econnrefused",
        "econnreset",
        "etimedout",
        "enotfound",
        "fetch failed",
        "error sending request",
        "socket hang up",
        "network error",
        "stream disconnected",
    ]
    .iter()
    .any(|c| l.contains(c))
}

/// Whether `msg` says the credentials are bad or missing, or the account has no credit.
pub(crate) fn is_auth_error(msg: &str) -> bool {
    let l = msg.to_ascii_lowercase();
    [
        "invalid api key",
        "incorrect api key",
        "api key not valid",
        "api_key_invalid",
        "invalid x-api-key",
        "authentication_error",
        "authentication failed",
        "unauthorized",
        "unauthenticated",
        "not logged in",
        "please run /login",
        "credit balance is too low",
        "insufficient_quota",
        "quota exceeded. check your plan",
        "permission_error",
        "oauth token has expired",
    ]
    .iter()
    .any(|c| l.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_are_read_from_messages() {
        assert_eq!(
            retry_in("Please retry in 2.5s.\nSuggested retry after 2s."),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            retry_in("try again in 1.4s"),
            Some(Duration::from_millis(1400))
        );
        assert_eq!(
            retry_in("or try again in 2 days 3 hours"),
            Some(Duration::from_secs(2 * 86400 + 3 * 3600))
        );
        assert_eq!(retry_in("Retry-After: 30"), Some(Duration::from_secs(30)));
        assert_eq!(retry_in("no wait here"), None);
    }

    #[test]
    fn usage_limit_reset_times_become_waits() {
        assert_eq!(
            reset_wait("Claude AI usage limit reached|1700003600", 1_700_000_000),
            Some(Duration::from_secs(3600))
        );
        let now = 1_700_000_000;
        let off = local_utc_offset(now).unwrap();
        let local = (now + off).rem_euclid(86400);
        // "resets 3pm" is the next 15:00 local, within a day.
        let w = reset_wait("You've hit your limit · resets 3pm (Europe/Berlin)", now).unwrap();
        assert!(w.as_secs() > 0 && w.as_secs() <= 86400);
        assert_eq!((local + w.as_secs() as i64).rem_euclid(86400), 15 * 3600);
        let w = reset_wait("limit will reset at 9:30 am", now).unwrap();
        assert_eq!(
            (local + w.as_secs() as i64).rem_euclid(86400),
            9 * 3600 + 30 * 60
        );
        assert_eq!(reset_wait("resets soon", now), None);
    }

    #[test]
    fn http_statuses_are_found_only_as_whole_numbers() {
        assert_eq!(
            http_status_in("unexpected status 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(http_status_in("Request rejected (429) · x"), Some(429));
        assert_eq!(http_status_in("the request is ~250123 tokens"), None);
        assert_eq!(http_status_in("127.0.0.1:18783"), None);
    }

    #[test]
    fn main_argument_of_a_tool_call_is_its_path_or_command() {
        let v = serde_json::json!({"file_path": "/p/hello.txt", "content": "hi"});
        assert_eq!(main_arg(&v).as_deref(), Some("/p/hello.txt"));
        let v = serde_json::json!({"command": "cargo test\n-- more"});
        assert_eq!(main_arg(&v).as_deref(), Some("cargo test …"));
        assert_eq!(main_arg(&serde_json::json!({"x": 1})), None);
    }
}
