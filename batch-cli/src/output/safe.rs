//! Untrusted text made safe for a terminal: the one function every printer uses.
//!
//! Task text, ids, hint values, agent output and error messages that quote
//! them come from files and processes mdbatch does not control. Printed raw,
//! an `ESC ]0;…BEL` sets the window title, `ESC [2J` clears the screen, an
//! OSC 52 writes the clipboard, a `\r` overwrites what was printed before it,
//! and a bidi override reorders what the user reads. [`text`] keeps newlines
//! and tabs and shows every other control character visibly instead
//! (`^[`, `^G`, `\u{9b}`, `\u{202e}`), so the user sees that something odd is
//! there and the terminal never acts on it.
//!
//! Machine output (`--json`, `plan --format json`) is not passed through
//! here: JSON escapes control characters itself. `mdbatch logs --raw`
//! prints the bytes as they were written, on request.

use std::borrow::Cow;

use batch_core::exec::{Envelope, RunReport};

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        // C0, DEL, C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings, overrides and isolates; line/paragraph separators.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' => true,
        _ => false,
    }
}

/// Whether `s` holds a character [`unsafe_char`] refuses, read from its
/// UTF-8 bytes: C0 controls but `\n` and `\t`, DEL, C1 (`C2 80`–`C2 9F`),
/// U+2028–U+202E (`E2 80 A8`–`E2 80 AE`) and U+2066–U+2069
/// (`E2 81 A6`–`E2 81 A9`). No char decoding: plan output costs a byte
/// compare per byte.
fn has_unsafe_bytes(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| match c {
        b'\n' | b'\t' => false,
        0x00..=0x1f | 0x7f => true,
        0xc2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        0xe2 => match (b.get(i + 1), b.get(i + 2)) {
            (Some(0x80), Some(n)) => (0xa8..=0xae).contains(n),
            (Some(0x81), Some(n)) => (0xa6..=0xa9).contains(n),
            _ => false,
        },
        _ => false,
    })
}

/// The length in bytes of the colour code (`ESC [ 1;31 m`, SGR) at the
/// start of `s`, if there is one.
fn colour_code(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let params = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    (rest.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// `s` with every control character except `\n` and `\t` made visible:
/// C0 and DEL in caret notation (`ESC` → `^[`), the rest as `\u{…}`.
/// Colour codes (SGR: agents colour their output) are dropped rather than
/// shown: they only colour text, and dropping them keeps output readable.
/// Borrows when there is nothing to change.
pub fn text(s: &str) -> Cow<'_, str> {
    clean(s, false)
}

/// [`text`] for output mdbatch has already coloured: colour codes are kept
/// (ours, and any in the untrusted parts, which can only colour text);
/// every other control is shown visibly.
pub fn styled(s: &str) -> Cow<'_, str> {
    clean(s, true)
}

fn clean(s: &str, keep_colour: bool) -> Cow<'_, str> {
    // The usual case, byte by byte (a 100,000-task plan is 7 MB of text).
    if !has_unsafe_bytes(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\u{1b}'
            && let Some(len) = colour_code(&s[i..])
        {
            // Skip the rest of the code (all ASCII: one char per byte).
            if keep_colour {
                out.push_str(&s[i..i + len]);
            }
            for _ in 1..len {
                chars.next();
            }
            continue;
        }
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x20 {
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        } else if c == '\u{7f}' {
            out.push_str("^?");
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A diagnostic's message, help and quoted source line made safe (its
/// label and caret are ours, added when it is formatted).
pub fn diagnostic(d: &mut batch_core::Diagnostic) {
    for s in [&mut d.message, &mut d.source_line]
        .into_iter()
        .chain(d.help.as_mut())
    {
        if let Cow::Owned(c) = text(s) {
            *s = c;
        }
    }
}

/// Every string inside `value` passed through [`text`]; whether any changed.
fn clean_value(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => match text(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(clean) => {
                *s = clean;
                true
            }
        },
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, v| clean_value(v) | c),
        serde_json::Value::Object(map) => map.values_mut().fold(false, |c, v| clean_value(v) | c),
        _ => false,
    }
}

/// Whether the JSON text `json` may hold a string [`text`] would change:
/// JSON escapes `\r`, `\b`, `\f` and other C0 controls as `\u00XX` (a
/// `\n` or `\t` is kept by [`text`]) and leaves DEL, C1 and the bidi and
/// separator characters as they are. May say yes for text that is safe
/// (an ESC of a colour code); never says no for text that is not.
fn json_may_be_unsafe(json: &[u8]) -> bool {
    // The usual event: ASCII with no backslash and no DEL, found 16 bytes
    // at a time (a loop without an early exit is vectorised).
    let suspect = |c: &[u8]| c.iter().fold(false, |a, &b| a | (b == b'\\') | (b == 0x7f));
    if json.is_ascii() && !json.chunks(16).any(suspect) {
        return false;
    }
    let mut bytes = json.iter().copied();
    while let Some(b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'"' | b'\\' | b'/' | b'n' | b't')) {
            return true;
        }
    }
    // Raw controls cannot be in JSON text; the others are checked as bytes.
    std::str::from_utf8(json).is_ok_and(has_unsafe_bytes)
}

/// Whether `v` may hold a string [`text`] would change, from its JSON
/// text written into a buffer kept per thread: no value tree is built for
/// the usual event, whose strings are all safe.
fn may_be_unsafe<T: serde::Serialize>(v: &T) -> bool {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let Ok(mut buf) = buf.try_borrow_mut() else {
            return true;
        };
        buf.clear();
        let unsafe_ =
            serde_json::to_writer(&mut *buf, v).map_or(true, |()| json_may_be_unsafe(&buf));
        if buf.capacity() > 1 << 16 {
            // A whole run's report: not kept for the events that follow.
            *buf = Vec::new();
        }
        unsafe_
    })
}

/// `v` with every string in it passed through [`text`] (every field of every
/// variant, including ones added later), through its JSON form. Borrows when
/// nothing needs changing or the round trip is not possible.
pub fn value<T>(v: &T) -> Cow<'_, T>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    if !may_be_unsafe(v) {
        return Cow::Borrowed(v);
    }
    let Ok(mut value) = serde_json::to_value(v) else {
        return Cow::Borrowed(v);
    };
    if !clean_value(&mut value) {
        return Cow::Borrowed(v);
    }
    match serde_json::from_value(value) {
        Ok(clean) => Cow::Owned(clean),
        Err(_) => Cow::Borrowed(v),
    }
}

/// The event with every string in it safe for a terminal (for the human
/// displays; `--json` gets the event as it is).
pub fn event(env: &Envelope) -> Cow<'_, Envelope> {
    value(env)
}

/// The run's report with every string in it safe for a terminal.
pub fn report(report: &RunReport) -> Cow<'_, RunReport> {
    value(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ASCII, Latin, the C1 controls, bidi and other format characters, up
    /// to U+30FF, the specials block, an emoji and the last code point.
    fn sample_chars() -> impl Iterator<Item = char> {
        (0..0x3100u32)
            .chain(0xfe00..0x10000)
            .chain([0x1f600, 0x10ffff])
            .filter_map(char::from_u32)
    }

    #[test]
    fn the_byte_check_refuses_exactly_the_characters_unsafe_char_does() {
        let chars = sample_chars();
        for c in chars {
            let s = format!("a{c}b");
            assert_eq!(has_unsafe_bytes(&s), unsafe_char(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn escapes_bells_carriage_returns_and_bidi_overrides_become_visible() {
        assert_eq!(
            text("a\u{1b}]0;pwned\u{7}b\u{1b}[2Jc"),
            "a^[]0;pwned^Gb^[[2Jc"
        );
        assert_eq!(text("ok\rfake"), "ok^Mfake");
        assert_eq!(text("\u{9b}31m\u{7f}"), "\\u{9b}31m^?");
        assert_eq!(text("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn styled_text_keeps_colour_codes_only() {
        assert_eq!(
            styled("\u{1b}[1mok\u{1b}[0m \u{1b}]0;t\u{7}"),
            "\u{1b}[1mok\u{1b}[0m ^[]0;t^G"
        );
    }

    #[test]
    fn colour_codes_are_dropped_and_other_sequences_shown() {
        assert_eq!(text("\u{1b}[1;31mred\u{1b}[0m ok"), "red ok");
        assert_eq!(text("\u{1b}[2J\u{1b}[m"), "^[[2J");
        assert_eq!(text("\u{1b}[31"), "^[[31");
    }

    #[test]
    fn plain_text_newlines_tabs_and_unicode_are_kept_as_they_are() {
        let s = "line one\n\tline two — ✓ naïve 日本";
        assert!(matches!(text(s), Cow::Borrowed(_)));
        assert_eq!(text(s), s);
    }

    #[test]
    fn the_json_check_finds_every_string_text_would_change() {
        let chars = sample_chars();
        for c in chars {
            let s = format!("a{c}b");
            let v = serde_json::json!({ "k": [s.clone()], "other": "x\\r\\\"" });
            if matches!(text(&s), Cow::Owned(_)) {
                assert!(may_be_unsafe(&v), "U+{:04X}", c as u32);
            }
        }
        // An escaped backslash before a letter is no escape of a control.
        assert!(!may_be_unsafe(
            &serde_json::json!({ "k": "C:\\recent\\b\\file \"q\"\n\t" })
        ));
        assert!(may_be_unsafe(&serde_json::json!({ "k": "a\rb" })));
    }

    #[test]
    fn every_string_of_an_event_is_cleaned() {
        let raw = r#"{"v":1,"seq":0,"ts":"t","run_id":"r","type":"task_started","data":{"id":"a\u001b]0;x\u0007","title":"t\u001b[2J","attempt":1,"wave":0,"group":"g"}}"#;
        let env: Envelope = serde_json::from_str(raw).unwrap();
        let clean = event(&env);
        let json = clean.to_json();
        assert!(
            !json.contains("\\u001b") && !json.contains("\\u0007"),
            "{json}"
        );
        assert!(json.contains("a^[]0;x^G"), "{json}");
    }
}
