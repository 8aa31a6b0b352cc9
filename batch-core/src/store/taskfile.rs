//! Writing the task file: checking (and unchecking) boxes, one byte each.
//!
//! This is the only code that writes the task file. It never reserialises
//! markdown and never creates a file: a box is flipped by writing its one
//! byte in place (`pwrite` at `marker.start + 1`, then `fdatasync`), after
//! the three bytes there were read back as `[ ]`. Every other byte, including
//! edits the user made during the run, a BOM and CRLF line ends, is kept, and
//! so are the file's owner, mode, hard links and (when the task file was
//! given as a symlink) the link.
//!
//! [`TaskFile`] is the writer a run keeps: it resolves the path once, opens
//! it for each write with `O_NOFOLLOW` (a symlink planted in its place later
//! is refused, never followed) and refuses anything but a regular file. It
//! re-reads and re-parses the file only when the file's identity, length or
//! time stamps differ from what its own last write left, so a run whose file
//! nobody else touches parses it once.
//!
//! # What is guaranteed about edits made during a run
//!
//! - A single-byte write in a sector is atomic: after a crash or power loss
//!   the file is the one the user last saved, with each box either flipped or
//!   not — never torn, never truncated.
//! - An editor that saves by writing a new file and renaming it over the task
//!   file never loses the save: mdbatch's byte either went into the file the
//!   save replaced (then mdbatch sees the file changed, parses the new one and
//!   checks the box again there) or into the saved file.
//! - A program that rewrites the file in place (truncate, then write, possibly
//!   in several chunks) never loses its writes either: mdbatch only changes a
//!   byte that it has just read back as the middle of `[ ]`, at an offset
//!   found by parsing what was in the file; nothing is truncated or replaced.
//!   A read that caught such a save half-way is not believed when it lost
//!   tasks, changed a task's text, does not parse or ends mid-line: the file
//!   is read again every 100 ms until it has held the same bytes for 500 ms,
//!   so a half-written file neither drops a task that has not started nor
//!   leaves a finished task's box open. A file saved over and over for 3 s
//!   without such a pause is not read at all that time: the write fails as
//!   "kept changing", and the box is checked by the next run.
//! - What is not guaranteed: an editor holding the file in a buffer from
//!   before mdbatch checked a box writes that box back open when it saves.
//!   mdbatch checks it again at its next write and at the end of the run
//!   (boxes of tasks that succeeded in this run are re-checked when found open
//!   with the same text); a box unchecked by hand during a run is therefore
//!   checked again — use `mdbatch reset` after the run to run a task again.
//!   A rewrite in place that lands in the microseconds between mdbatch's
//!   read-back of `[ ]` and its one-byte write could see that byte land in
//!   its text; no file system offers a compare-and-swap to close it. And a
//!   save that stops half-way for longer than the confirmation is taken as
//!   the file's new text.
//!
//! # The right box
//!
//! The executor names each task with the hash of the text that ran
//! ([`Want::text_hash`]). A task is found again by id; if its text changed
//! during the run, it is not checked (the work that ran was for other text).
//! If several open tasks now have the same text and they are not the ones
//! the file had when the run started (someone added a copy of the task), the
//! box is not checked either: mdbatch cannot tell which one ran. Both are
//! reported as problems and the task ends unchecked, to run again.
//!
//! A parent task is checked in the same write once all its required children
//! (not optional, not `skip`) are checked.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::doc::{Document, ParseOptions};
use crate::error::StoreError;
use crate::store::journal::{parse_text_hash, text_hash_value};

/// What a write did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteOutcome {
    /// Tasks whose box was flipped, in the order asked.
    pub changed: Vec<String>,
    /// Tasks that were already in the wanted state (nothing to do).
    pub unchanged: Vec<String>,
    /// Parents flipped as a consequence.
    pub parents: Vec<String>,
    /// Tasks that could not be flipped (gone, not `[ ]` / `[x]`, their text
    /// changed, ambiguous), with why.
    pub problems: Vec<StoreError>,
    /// Boxes of earlier writes found open again (an editor saved a buffer
    /// older than the write) and checked again.
    pub rechecked: Vec<String>,
    /// The file had to be read and parsed again (someone else changed it).
    pub reparsed: bool,
}

/// A task to check: its id and, when known, the hash of the text that ran
/// ([`text_hash`](super::journal::text_hash)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Want {
    /// The task id.
    pub id: String,
    /// The hash of the task text that ran; `None` finds the task by id alone.
    pub text_hash: Option<String>,
}

impl Want {
    /// A task found by id alone.
    pub fn id(id: impl Into<String>) -> Self {
        Want {
            id: id.into(),
            text_hash: None,
        }
    }

    /// A task found by id and checked only while its text hashes to `hash`.
    pub fn with_hash(id: impl Into<String>, hash: impl Into<String>) -> Self {
        Want {
            id: id.into(),
            text_hash: Some(hash.into()),
        }
    }
}

/// How many times a write is retried when the file is replaced under it.
const MAX_RACES: usize = 32;

/// How often a suspicious read (one that lost tasks: see
/// [`TaskFile::sync_index`]) is read again to confirm it.
const CONFIRM: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a suspicious read must stay the same to be believed.
const STABLE: std::time::Duration = std::time::Duration::from_millis(500);

/// How long reads go on at most: a file still changing then is an error
/// ("kept changing"), as when a write loses every race with an editor.
const CONFIRM_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// Checks the boxes of `ids` (and of parents whose required children are now
/// all checked), each one byte written in place.
///
/// Returns `Err` only when nothing could be written (the file cannot be read,
/// is not a regular file, no longer parses); per-task problems are in
/// [`WriteOutcome::problems`].
pub fn check_boxes(
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
) -> Result<WriteOutcome, StoreError> {
    let wants: Vec<Want> = ids.iter().map(Want::id).collect();
    TaskFile::open(path, options)?.check(&wants)
}

/// Unchecks the boxes of `ids` (for `mdbatch reset`), and of their checked
/// ancestors.
pub fn uncheck(
    path: &Path,
    options: &ParseOptions,
    ids: &[String],
) -> Result<WriteOutcome, StoreError> {
    let wants: Vec<Want> = ids.iter().map(Want::id).collect();
    TaskFile::open(path, options)?.apply(&wants, false)
}

/// Fails unless the task file can be written: a regular file (not a device,
/// a FIFO or a folder) that opens for reading and writing and parses.
pub fn ensure_writable(path: &Path) -> Result<(), StoreError> {
    TaskFile::open(path, &ParseOptions::with_path(path)).map(drop)
}

/// Identity, length and time stamps of a file: evidence that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The stamp of the file at `path` (`None`: it cannot be stat'ed).
    pub(crate) fn at(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }
}

/// What one parse of the file told us.
#[derive(Debug)]
struct Index {
    stamp: Stamp,
    /// Shared with the run that plans from it ([`TaskFile::shared_document`]).
    doc: Arc<Document>,
    /// Each task's text hash ([`text_hash_value`]), by task index.
    hashes: Vec<u64>,
    /// Box state per task, kept current by our writes.
    state: Vec<bool>,
    /// `(text hash, task index)` sorted: the tasks of a text in document
    /// order. No allocation per task, unlike a map of lists.
    by_hash: Vec<(u64, usize)>,
    mark: u8,
}

impl Index {
    /// The tasks whose text hashes to `h`, in document order.
    fn same_text(&self, h: u64) -> &[(u64, usize)] {
        let from = self.by_hash.partition_point(|&(k, _)| k < h);
        let to = from + self.by_hash[from..].partition_point(|&(k, _)| k == h);
        &self.by_hash[from..to]
    }
}

/// The task file as a run writes it: resolved once, parsed again only when
/// someone else changed it. Blocking: call it off the async runtime.
#[derive(Debug)]
pub struct TaskFile {
    shown: PathBuf,
    real: PathBuf,
    options: ParseOptions,
    index: Option<Index>,
    /// The file changed under a write: read it again, whatever its stamp
    /// (the last parse stays as what a new read is checked against).
    must_read: bool,
    /// Tasks with the same text, by hash, as the first parse found them.
    first_dups: Option<HashMap<u64, Vec<String>>>,
    /// Boxes this writer checked: id → text hash.
    ours: HashMap<String, u64>,
}

impl TaskFile {
    /// Resolves `path` (a symlink given by the user is followed, once) and
    /// checks that it is a regular file open for reading and writing. Removes
    /// the temp files older mdbatch versions' killed runs left beside it.
    pub fn open(path: &Path, options: &ParseOptions) -> Result<TaskFile, StoreError> {
        let real = std::fs::canonicalize(path)
            .map_err(|e| StoreError::io(path, "the task file is not writable", e))?;
        let f = TaskFile {
            shown: path.to_path_buf(),
            real,
            options: options.clone(),
            index: None,
            must_read: false,
            first_dups: None,
            ours: HashMap::new(),
        };
        let mut f = f;
        let (mut file, meta) = f.open_rw()?;
        // The first parse: what the file was when the run started.
        f.sync_index(&mut file, &mut Stamp::of(&meta))?;
        remove_stale_temps(&f.real);
        Ok(f)
    }

    /// The document as last parsed (the file when opened, or after someone
    /// else's change).
    pub fn document(&self) -> &Document {
        &self.index.as_ref().expect("parsed when opened").doc
    }

    /// [`document`](Self::document), shared rather than copied: a run plans
    /// from the writer's parse without holding the file's tasks twice.
    pub fn shared_document(&self) -> Arc<Document> {
        Arc::clone(&self.index.as_ref().expect("parsed when opened").doc)
    }

    /// The stamp the file had after the last parse or write.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        self.index.as_ref().map(|i| i.stamp)
    }

    fn open_rw(&self) -> Result<(File, std::fs::Metadata), StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.real)
            .map_err(|e| {
                let why = if e.raw_os_error() == Some(libc::ELOOP) {
                    "the task file was replaced by a symbolic link; refusing to follow it"
                } else {
                    "the task file is not writable"
                };
                StoreError::io(&self.real, why, e)
            })?;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io(&self.real, "cannot stat the task file", e))?;
        if !meta.is_file() {
            return Err(StoreError::io(
                &self.real,
                "the task file is not writable",
                std::io::Error::other("not a regular file"),
            ));
        }
        Ok((file, meta))
    }

    /// Reads and parses the file if it changed since the last look. Returns
    /// whether it did.
    ///
    /// `stamp` is the file's stamp before the read; a read that may have
    /// caught a save half-way is confirmed by another read, and `stamp` is
    /// updated to the one the parsed text goes with.
    fn sync_index(&mut self, file: &mut File, stamp: &mut Stamp) -> Result<bool, StoreError> {
        if !self.must_read && self.index.as_ref().is_some_and(|i| i.stamp == *stamp) {
            return Ok(false);
        }
        self.must_read = false;
        // The read to believe, and the bytes of the suspicious read before it.
        let started = std::time::Instant::now();
        let mut before: Option<(Vec<u8>, std::time::Instant)> = None;
        let index = loop {
            let mut bytes = Vec::with_capacity(stamp.len as usize);
            read_whole(file, &mut bytes)
                .map_err(|e| StoreError::io(&self.real, "cannot read the task file", e))?;
            let parsed = Document::parse_bytes(&bytes, &self.options).map(|doc| {
                let hashes: Vec<u64> = doc.tasks.iter().map(|t| text_hash_value(&t.text)).collect();
                (doc, hashes)
            });
            // A program saving in place truncates the file and writes it in
            // chunks: a read between two chunks sees the start of the file.
            // Such a read is suspicious when it lost tasks, changed their
            // text, does not parse, or does not end a line: it is only
            // believed once reads find the same bytes for [`STABLE`].
            let suspicious = match (&parsed, &self.index) {
                (_, None) => false,
                (Ok((doc, hashes)), Some(ix)) => {
                    !keeps_every_task(ix, doc, hashes)
                        || !(bytes.is_empty() || bytes.ends_with(b"\n"))
                }
                (Err(_), Some(_)) => true,
            };
            let same_since = match &before {
                Some((b, since)) if b[..] == bytes[..] => Some(*since),
                _ => None,
            };
            if suspicious
                && same_since.is_none_or(|t| t.elapsed() < STABLE)
                && started.elapsed() >= CONFIRM_MAX
            {
                // Saved over and over for [`CONFIRM_MAX`] without a pause:
                // no read of it is believed (a torn one would drop tasks or
                // change their text); the next write reads it again.
                self.must_read = true;
                return Err(self.kept_changing());
            }
            if !suspicious || same_since.is_some_and(|t| t.elapsed() >= STABLE) {
                let (doc, hashes) = parsed.map_err(|_| StoreError::Unparsable {
                    path: self.shown.clone(),
                })?;
                break (doc, hashes, bytes);
            }
            before = Some((bytes, same_since.unwrap_or_else(std::time::Instant::now)));
            std::thread::sleep(CONFIRM);
            *stamp = Stamp::of(
                &file
                    .metadata()
                    .map_err(|e| StoreError::io(&self.real, "cannot stat the task file", e))?,
            );
        };
        let (doc, hashes, bytes) = index;
        let mut by_hash: Vec<(u64, usize)> = hashes.iter().copied().zip(0..).collect();
        by_hash.sort_unstable();
        let state = doc.tasks.iter().map(|t| t.checked).collect();
        let mark = checked_mark(&doc, &bytes);
        if self.first_dups.is_none() {
            self.first_dups = Some(duplicates(&doc, &by_hash));
        }
        self.index = Some(Index {
            stamp: *stamp,
            doc: Arc::new(doc),
            hashes,
            state,
            by_hash,
            mark,
        });
        Ok(true)
    }

    /// Which ids are checked in the file now, if it changed since the last
    /// look (`Ok(None)`: unchanged).
    pub fn refresh(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        let (mut file, meta) = self.open_rw()?;
        if !self.sync_index(&mut file, &mut Stamp::of(&meta))? {
            return Ok(None);
        }
        Ok(Some(self.checked_ids()))
    }

    /// The ids checked in the file as last parsed or written.
    pub fn checked_ids(&self) -> Vec<String> {
        self.index.as_ref().map_or_else(Vec::new, |ix| {
            ix.doc
                .tasks
                .iter()
                .filter(|t| ix.state[t.index])
                .map(|t| t.id.clone())
                .collect()
        })
    }

    /// Checks the boxes of `wants` (and of parents whose required children
    /// are now all checked); boxes this writer checked before and finds open
    /// again are checked again. One `fdatasync` for all of them.
    pub fn check(&mut self, wants: &[Want]) -> Result<WriteOutcome, StoreError> {
        self.apply(wants, true)
    }

    fn apply(&mut self, wants: &[Want], to_checked: bool) -> Result<WriteOutcome, StoreError> {
        for _ in 0..MAX_RACES {
            let (mut file, meta) = self.open_rw()?;
            let mut stamp = Stamp::of(&meta);
            let reparsed = self.sync_index(&mut file, &mut stamp)?;
            let (mut outcome, flips) = self.plan_flips(wants, to_checked, reparsed);
            outcome.reparsed = reparsed;
            if flips.is_empty() {
                self.remember(wants, &outcome);
                return Ok(outcome);
            }
            let ix = self.index.as_mut().expect("parsed above");
            let want_now: &[u8; 3] = if to_checked { b"[ ]" } else { b"[x]" };
            let mut stale = false;
            for &t in &flips {
                let at = ix.doc.tasks[t].marker.start as u64;
                let mut now = [0u8; 3];
                let read = file.read_exact_at(&mut now, at);
                let ok = read.is_ok()
                    && (now == *want_now || (!to_checked && now == *b"[X]"))
                    && stamp.len == ix.stamp.len;
                if !ok {
                    stale = true;
                    break;
                }
                let byte = if to_checked { ix.mark } else { b' ' };
                file.write_all_at(&[byte], at + 1)
                    .map_err(|e| StoreError::io(&self.real, "cannot write the task file", e))?;
                ix.state[t] = to_checked;
            }
            if stale {
                // Changed under us between the stat and the read-back: parse again.
                self.must_read = true;
                continue;
            }
            // Replaced (an editor's rename) while we wrote: our bytes went to
            // the file the save displaced; do it again in the saved one.
            // Checked before the sync, so the window is the few microseconds
            // since the read-back; a save that lands after it read the file
            // with our bytes in it (or is a stale buffer: see the module docs).
            let here = std::fs::symlink_metadata(&self.real).ok();
            if here.is_none_or(|h| h.ino() != meta.ino() || h.dev() != meta.dev()) {
                self.must_read = true;
                continue;
            }
            file.sync_data()
                .map_err(|e| StoreError::io(&self.real, "cannot sync the task file", e))?;
            if let Ok(m) = file.metadata() {
                ix.stamp = Stamp::of(&m);
            } else {
                self.must_read = true;
            }
            self.remember(wants, &outcome);
            return Ok(outcome);
        }
        Err(self.kept_changing())
    }

    /// The error of a file that would not hold still long enough to be
    /// read or written (an editor saving over and over).
    fn kept_changing(&self) -> StoreError {
        StoreError::io(
            &self.real,
            "the file kept changing while its boxes were being checked",
            std::io::Error::other("concurrent modification"),
        )
    }

    fn remember(&mut self, wants: &[Want], outcome: &WriteOutcome) {
        let failed: std::collections::HashSet<&str> = outcome
            .problems
            .iter()
            .filter_map(|p| match p {
                StoreError::TaskGone { id, .. }
                | StoreError::MarkerMismatch { id, .. }
                | StoreError::TextChanged { id, .. }
                | StoreError::Ambiguous { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        for w in wants {
            if let Some(h) = w.text_hash.as_deref().and_then(parse_text_hash)
                && !failed.contains(w.id.as_str())
            {
                self.ours.insert(w.id.clone(), h);
            }
        }
    }

    /// Which tasks to flip; pure over the index.
    fn plan_flips(
        &self,
        wants: &[Want],
        to_checked: bool,
        reparsed: bool,
    ) -> (WriteOutcome, Vec<usize>) {
        let ix = self.index.as_ref().expect("parsed before planning");
        let mut outcome = WriteOutcome::default();
        let mut state = ix.state.clone();
        let mut flipped: Vec<usize> = Vec::new();
        let mut in_write: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for w in wants {
            let t = match self.locate(w) {
                Ok(t) => t,
                Err(e) => {
                    outcome.problems.push(e);
                    continue;
                }
            };
            if state[t] != to_checked {
                state[t] = to_checked;
                flipped.push(t);
                in_write.insert(t);
                outcome.changed.push(w.id.clone());
            } else if in_write.contains(&t) {
                outcome.problems.push(StoreError::Ambiguous {
                    path: self.shown.clone(),
                    id: w.id.clone(),
                    count: 2,
                });
            } else {
                outcome.unchanged.push(w.id.clone());
            }
        }
        // Our earlier boxes an editor's stale save opened again.
        if to_checked && reparsed {
            for (id, &h) in &self.ours {
                if let Ok(t) = self.locate_text(id, Some(h))
                    && !state[t]
                {
                    state[t] = true;
                    flipped.push(t);
                    outcome.rechecked.push(id.clone());
                }
            }
        }
        // Parents: walk up from every flipped task.
        let mut i = 0;
        while i < flipped.len() {
            let Some(parent) = ix.doc.tasks[flipped[i]].parent else {
                i += 1;
                continue;
            };
            i += 1;
            if state[parent] == to_checked {
                continue;
            }
            let p = &ix.doc.tasks[parent];
            let ready = !to_checked
                || p.children()
                    .iter()
                    .map(|&c| &ix.doc.tasks[c])
                    .filter(|c| !c.optional && !c.skip)
                    .all(|c| state[c.index]);
            if ready {
                state[parent] = to_checked;
                flipped.push(parent);
                outcome.parents.push(p.id.clone());
            }
        }
        (outcome, flipped)
    }

    /// Finds the task `w` names, checking that its text is the one that ran.
    fn locate(&self, w: &Want) -> Result<usize, StoreError> {
        match &w.text_hash {
            // A hash that is not sixteen hex digits is no text's.
            Some(h) => self.locate_text(&w.id, parse_text_hash(h)),
            None => {
                let ix = self.index.as_ref().expect("parsed before locating");
                ix.doc
                    .task_by_id(&w.id)
                    .map(|t| t.index)
                    .ok_or_else(|| StoreError::TaskGone {
                        path: self.shown.clone(),
                        id: w.id.clone(),
                    })
            }
        }
    }

    /// Finds task `id` whose text ran with hash `h` (`None`: a hash no text
    /// has).
    fn locate_text(&self, id: &str, h: Option<u64>) -> Result<usize, StoreError> {
        let ix = self.index.as_ref().expect("parsed before locating");
        let by_id = ix.doc.task_by_id(id).map(|t| t.index);
        let same = h.map_or(&[][..], |h| ix.same_text(h));
        match (same, by_id) {
            ([], Some(_)) => Err(StoreError::TextChanged {
                path: self.shown.clone(),
                id: id.to_string(),
            }),
            ([], None) => Err(StoreError::TaskGone {
                path: self.shown.clone(),
                id: id.to_string(),
            }),
            // One task with that text: it is the one, whatever its id now.
            ([(_, t)], _) => Ok(*t),
            (many, by_id) => {
                let ids: Vec<&str> = many
                    .iter()
                    .map(|&(_, t)| ix.doc.tasks[t].id.as_str())
                    .collect();
                let as_before = h
                    .and_then(|h| self.first_dups.as_ref()?.get(&h))
                    .is_some_and(|before| {
                        before.iter().map(String::as_str).eq(ids.iter().copied())
                    });
                match by_id {
                    Some(t) if as_before && many.iter().any(|&(_, m)| m == t) => Ok(t),
                    _ => Err(StoreError::Ambiguous {
                        path: self.shown.clone(),
                        id: id.to_string(),
                        count: many.len(),
                    }),
                }
            }
        }
    }
}

/// Whether `doc` still has every task of `before`, each with the same text.
fn keeps_every_task(before: &Index, doc: &Document, hashes: &[u64]) -> bool {
    // Most saves keep the tasks where they were: compare in place first.
    let in_place = before.doc.tasks.iter().enumerate().all(|(i, t)| {
        doc.tasks.get(i).is_some_and(|now| now.id == t.id) && hashes.get(i) == before.hashes.get(i)
    });
    in_place
        || before.doc.tasks.iter().all(|t| {
            doc.task_by_id(&t.id)
                .is_some_and(|now| hashes[now.index] == before.hashes[t.index])
        })
}

/// Reads `file` from its start to its end into `bytes` (whatever the file
/// position: a file is read again from the start when it did not settle).
fn read_whole(file: &File, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let filled = bytes.len();
        if bytes.capacity() - filled < 4096 {
            bytes.reserve(64 * 1024);
        }
        bytes.resize(bytes.capacity(), 0);
        let read = file.read_at(&mut bytes[filled..], filled as u64);
        match read {
            Ok(n) => {
                bytes.truncate(filled + n);
                if n == 0 {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => bytes.truncate(filled),
            Err(e) => {
                bytes.truncate(filled);
                return Err(e);
            }
        }
    }
}

/// Ids of the tasks sharing a text, by text hash (groups of two or more).
fn duplicates(doc: &Document, by_hash: &[(u64, usize)]) -> HashMap<u64, Vec<String>> {
    by_hash
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|same| same.len() > 1)
        .map(|same| {
            let ids = same.iter().map(|&(_, t)| doc.tasks[t].id.clone()).collect();
            (same[0].0, ids)
        })
        .collect()
}

/// `X` when most checked boxes in the file use `X`, else `x`.
fn checked_mark(doc: &Document, bytes: &[u8]) -> u8 {
    let (mut upper, mut lower) = (0usize, 0usize);
    for t in &doc.tasks {
        match bytes.get(t.marker.start + 1) {
            Some(b'X') => upper += 1,
            Some(b'x') => lower += 1,
            _ => {}
        }
    }
    if upper > lower { b'X' } else { b'x' }
}

/// Removes `.<name>.mdbatch-<pid>.tmp` files that runs of older versions
/// (which replaced the file by rename) left when killed: only regular files
/// of ours, never through a symlink, and only when that pid is gone.
fn remove_stale_temps(real: &Path) {
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return;
    };
    let prefix = format!(".{}.mdbatch-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_file() && m.uid() == me && !pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
