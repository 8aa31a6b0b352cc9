//! The raw file around the markdown: BOM, front matter, line ends, and the
//! mapping from byte offsets to `line:col`.
//!
//! pulldown-cmark parses [`Source::body`]: the file without its BOM and with
//! its front matter blanked to spaces (newlines kept), so every offset into
//! the body is an offset into the original file minus [`Source::bom`]. That is
//! what keeps a task's marker range exact in files that start with a BOM or
//! with YAML front matter.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use super::model::Pos;

/// The UTF-8 byte order mark.
const BOM: &str = "\u{feff}";

/// A task file's text prepared for parsing.
pub(crate) struct Source<'a> {
    /// The original file, BOM included.
    original: &'a str,
    /// Bytes stripped from the front (3 for a BOM, else 0).
    pub(crate) bom: usize,
    /// The text pulldown-cmark sees: BOM stripped, front matter blanked.
    /// Borrowed from the original unless there is front matter to blank.
    pub(crate) body: Cow<'a, str>,
    /// The front matter between its `---` fences, when there is one.
    pub(crate) front_matter: Option<String>,
    /// Where the front matter ends in the body (0 without front matter).
    pub(crate) front_matter_end: usize,
    /// Most line ends are CRLF.
    pub(crate) crlf: bool,
    /// Byte offset (in the original) where each line starts.
    line_starts: Vec<usize>,
    /// The last column computed: (offset, col). Diagnostics on one long line
    /// come in order, so counting resumes from here instead of the line start.
    last_col: Cell<(usize, usize)>,
    /// The last line found (1-based; 0: none yet). Offsets asked for in a
    /// row are mostly on it or a neighbour (the tasks, forwards or
    /// backwards), which saves a binary search over every line start.
    last_line: Cell<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(original: &'a str) -> Self {
        let bom = if original.starts_with(BOM) {
            BOM.len()
        } else {
            0
        };
        let rest = &original[bom..];
        let mut line_starts = vec![0];
        let (mut crlf_count, mut lf_count) = (0usize, 0usize);
        // One SIMD scan for every line end (a `find` per line cost 200
        // instructions a line, most of it starting the search).
        let bytes = original.as_bytes();
        for i in memchr::memchr_iter(b'\n', bytes) {
            line_starts.push(i + 1);
            if i > 0 && bytes[i - 1] == b'\r' {
                crlf_count += 1;
            } else {
                lf_count += 1;
            }
        }
        let (front_matter, front_matter_end) = match find_front_matter(rest) {
            Some((inner, end)) => (Some(rest[inner].to_string()), end),
            None => (None, 0),
        };
        let body = if front_matter_end > 0 {
            // Blank the front matter byte for byte: offsets stay valid and the
            // markdown parser sees only blank lines there.
            let mut bytes = rest.as_bytes().to_vec();
            for b in &mut bytes[..front_matter_end] {
                if *b != b'\n' && *b != b'\r' {
                    *b = b' ';
                }
            }
            // Only ASCII bytes were replaced by ASCII bytes, and whole UTF-8
            // sequences are replaced (every byte of a multi-byte character is
            // non-ASCII and gets blanked), so the result is valid UTF-8.
            Cow::Owned(
                String::from_utf8(bytes).expect("blanking whole characters keeps UTF-8 valid"),
            )
        } else {
            Cow::Borrowed(rest)
        };
        Source {
            original,
            bom,
            body,
            front_matter,
            front_matter_end,
            crlf: crlf_count > 0 && crlf_count >= lf_count,
            line_starts,
            last_col: Cell::new((usize::MAX, 0)),
            last_line: Cell::new(0),
        }
    }

    /// The original file text.
    #[cfg(test)]
    pub(crate) fn original(&self) -> &'a str {
        self.original
    }

    /// Converts a body offset into an original-file offset.
    pub(crate) fn orig(&self, body_offset: usize) -> usize {
        body_offset + self.bom
    }

    /// A body range as an original-file range.
    pub(crate) fn orig_range(&self, r: &Range<usize>) -> Range<usize> {
        self.orig(r.start)..self.orig(r.end)
    }

    /// 1-based line of an original-file offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let last = self.last_line.get();
        for line in [last, last.wrapping_sub(1), last.wrapping_add(1)] {
            if self.line_holds(line, offset) {
                self.last_line.set(line);
                return line;
            }
        }
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.last_line.set(line);
        line
    }

    /// Whether the 1-based `line` exists and holds `offset`.
    fn line_holds(&self, line: usize, offset: usize) -> bool {
        line >= 1
            && self.line_starts.get(line - 1).is_some_and(|&s| s <= offset)
            && self.line_starts.get(line).is_none_or(|&next| offset < next)
    }

    /// Line, column (in characters, 1-based) and offset of an original-file offset.
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.original.len());
        let line = self.line_of(offset);
        let start = self.line_starts[line - 1];
        let mut from = start;
        // The BOM is not a visible column.
        if start == 0 {
            from = self.bom.min(offset);
        }
        let mut base_col = 0;
        let (last_offset, last_col) = self.last_col.get();
        if last_offset != usize::MAX && last_offset >= from && last_offset <= offset {
            from = last_offset;
            base_col = last_col - 1;
        }
        let col = base_col
            + self
                .original
                .get(from..offset)
                .map_or(offset - from, |s| s.chars().count())
            + 1;
        self.last_col.set((offset, col));
        Pos { offset, line, col }
    }

    /// The text of a 1-based line, without its line end (and without the BOM).
    pub(crate) fn line_text(&self, line: usize) -> &'a str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let start = if start == 0 { self.bom } else { start };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.original.len());
        let s = self.original.get(start..end).unwrap_or("");
        s.trim_end_matches(['\n', '\r'])
    }

    /// The body offset where the line holding `body_offset` starts.
    pub(crate) fn body_line_start(&self, body_offset: usize) -> usize {
        let line = self.line_of(self.orig(body_offset));
        self.line_starts[line - 1].saturating_sub(self.bom)
    }
}

/// Finds YAML front matter: a first line `---`, up to the next line that is
/// exactly `---` (or `...`). Blank lines inside are allowed. Returns the
/// range of the text between the fences and where the closing fence's line
/// ends.
fn find_front_matter(text: &str) -> Option<(Range<usize>, usize)> {
    let first_end = text.find('\n')?;
    if text[..first_end].trim_end_matches('\r').trim_end() != "---" {
        return None;
    }
    let inner_start = first_end + 1;
    let mut at = inner_start;
    while at < text.len() {
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
        let line = text[at..end].trim_end_matches(['\n', '\r']).trim_end();
        if line == "---" || line == "..." {
            return Some((inner_start..at, end));
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_same_in_any_order_of_asking() {
        let text = "a\n\nbc\r\nd\n\n\nlast line";
        let s = Source::new(text);
        let expected = |offset: usize| 1 + text[..offset.min(text.len())].matches('\n').count();
        let n = text.len() + 2;
        // Forwards, backwards, and jumping about.
        let orders: [Vec<usize>; 3] = [
            (0..n).collect(),
            (0..n).rev().collect(),
            (0..n).map(|i| (i * 7) % n).collect(),
        ];
        for order in orders {
            for o in order {
                assert_eq!(s.line_of(o), expected(o), "offset {o}");
            }
        }
    }

    #[test]
    fn bom_is_stripped_and_offsets_shift_by_three() {
        let s = Source::new("\u{feff}# T\n- [ ] a\n");
        assert_eq!(s.bom, 3);
        assert_eq!(s.body, "# T\n- [ ] a\n");
        let marker = s.orig(s.body.find('[').unwrap());
        assert_eq!(&s.original()[marker..marker + 3], "[ ]");
        assert_eq!(s.pos(marker).line, 2);
        assert_eq!(s.pos(marker).col, 3);
        assert_eq!(s.pos(3).col, 1, "the BOM is not a column");
        assert_eq!(s.line_text(1), "# T");
    }

    #[test]
    fn front_matter_with_blank_lines_is_blanked_keeping_offsets() {
        let text = "---\n\ndescription: x\n---\n# Tasks\n";
        let s = Source::new(text);
        assert_eq!(s.front_matter.as_deref(), Some("\ndescription: x\n"));
        assert_eq!(s.body.len(), text.len());
        assert_eq!(&s.body[s.front_matter_end..], "# Tasks\n");
        assert!(s.body[..s.front_matter_end].trim().is_empty());
        assert_eq!(s.body.matches('\n').count(), text.matches('\n').count());
    }

    #[test]
    fn an_unclosed_front_matter_fence_is_not_front_matter() {
        let s = Source::new("---\n# Tasks\n- [ ] a\n");
        assert!(s.front_matter.is_none());
        assert_eq!(s.front_matter_end, 0);
    }

    #[test]
    fn front_matter_with_multibyte_text_stays_valid_utf8() {
        let s = Source::new("---\ntitle: café ✅\n---\nbody\n");
        assert_eq!(s.front_matter.as_deref(), Some("title: café ✅\n"));
        assert!(s.body.ends_with("body\n"));
    }

    #[test]
    fn crlf_files_are_recognised_and_lines_exclude_the_cr() {
        let s = Source::new("# T\r\n- [ ] a\r\n");
        assert!(s.crlf);
        assert_eq!(s.line_text(2), "- [ ] a");
        assert!(!Source::new("a\nb\n").crlf);
    }

    #[test]
    fn columns_are_right_in_any_order_of_lookups() {
        let s = Source::new("ab\né é é\nxyz");
        let fresh = |o| Source::new("ab\né é é\nxyz").pos(o);
        for o in [8, 3, 9, 6, 12, 1, 9, 14, 3, 5] {
            assert_eq!(s.pos(o), fresh(o), "offset {o}");
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let s = Source::new("é x\n");
        assert_eq!(s.pos(2).col, 2, "the space after the 2-byte é");
        assert_eq!(s.pos(3).col, 3);
    }
}
