//! The journal: `.mdbatch/<file name>/journal.jsonl`, an append-only, versioned JSON-lines
//! record of every run and attempt.
//!
//! Only the executor's dispatcher writes it ([`Journal::append`]); anyone may
//! read it ([`read`], then [`JournalSummary::from_entries`]). Each line is one
//! [`JournalEntry`]:
//!
//! ```json
//! {"v":1,"ts":"2026-11-25T09:00:00.000Z","run_id":"…","type":"attempt_end","id":"T003","attempt":1,"outcome":"failed","kind":"transient","message":"…","duration_ms":1200,"pid":4242,"session_id":null,"usage":null,"text_hash":"9f0c…"}
//! ```
//!
//! Record types: `run_start`, `attempt_start`, `attempt_info` (a subagent pid
//! or agent session id learnt mid-attempt), `attempt_end`, `task_skipped`,
//! `task_reset` (written by `mdbatch reset`), `run_end`. Readers skip lines they do not understand (a newer `type`, a
//! torn last line left by a killed run) and count them; `v` is bumped when the
//! meaning of a field changes.
//!
//! An attempt with an `attempt_start` and no `attempt_end` was cut short by a
//! killed run: [`JournalSummary::unfinished`] lists them so the next run can
//! report and retry them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::doc::fxhash::{FxHashMap, FxHashSet};
use crate::error::{ErrorKind, StoreError};
use crate::events::RunSummary;
use crate::runner::Usage;

/// The journal's file name inside the state folder.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The journal's schema version.
pub const JOURNAL_VERSION: u32 = 1;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The subagent (and the verify command) succeeded.
    Succeeded,
    /// It failed; `kind` says how.
    Failed,
    /// The run was interrupted while it ran.
    Interrupted,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalEntry {
    /// [`JOURNAL_VERSION`] when written.
    pub v: u32,
    /// RFC 3339 UTC time stamp.
    pub ts: String,
    /// The run that wrote it.
    pub run_id: String,
    /// What happened.
    #[serde(flatten)]
    pub record: JournalRecord,
}

/// What a journal line records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalRecord {
    /// A run started.
    RunStart {
        /// The task file.
        file: String,
        /// mdbatch's pid.
        pid: u32,
        /// The runner's name.
        runner: String,
        /// Tasks to run.
        total: usize,
    },
    /// An attempt started.
    AttemptStart {
        /// Task id.
        id: String,
        /// 1-based attempt number within the run.
        attempt: u32,
        /// A hash of the task text ([`text_hash`]).
        text_hash: String,
    },
    /// Something learnt while the attempt runs.
    AttemptInfo {
        /// Task id.
        id: String,
        /// Attempt.
        attempt: u32,
        /// The subagent's pid (its process group id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// The agent's session id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// What the runner changed for this attempt (a resumed session, more
        /// turns, a trimmed prompt), from [`Progress::Adjusted`](crate::Progress::Adjusted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adjusted: Option<String>,
    },
    /// An attempt ended.
    AttemptEnd {
        /// Task id.
        id: String,
        /// Attempt.
        attempt: u32,
        /// How it ended.
        outcome: AttemptOutcome,
        /// The error kind when it failed.
        kind: Option<ErrorKind>,
        /// The error message when it failed.
        message: Option<String>,
        /// Wall time of the attempt.
        duration_ms: u64,
        /// The subagent's pid, when known.
        pid: Option<u32>,
        /// The agent session, when known.
        session_id: Option<String>,
        /// Usage, when reported.
        usage: Option<Usage>,
        /// A hash of the task text.
        text_hash: String,
    },
    /// A task was skipped.
    TaskSkipped {
        /// Task id.
        id: String,
        /// Why.
        reason: String,
    },
    /// `mdbatch reset` forgot the task's history: readers drop what came
    /// before for this id (attempts, failures, sessions, unfinished attempts).
    TaskReset {
        /// Task id.
        id: String,
    },
    /// With worktree isolation: the task's commit landed (before its box is
    /// checked).
    Landed {
        /// Task id.
        id: String,
        /// The attempt whose change landed.
        attempt: u32,
        /// The commit on the integration branch.
        commit: String,
    },
    /// A run ended.
    RunEnd {
        /// Its totals.
        summary: RunSummary,
    },
}

/// A stable hash of a task's text (FNV-1a 64, hex), to tell whether a journal
/// record is about the same text as the task now in the file.
pub fn text_hash(text: &str) -> String {
    let h = text_hash_value(text);
    // `format!("{h:016x}")`, without the formatter (once per task of a run).
    let hex = |d: u64| b"0123456789abcdef"[(d & 0xf) as usize] as char;
    (0..16).rev().map(|k| hex(h >> (4 * k))).collect()
}

/// [`text_hash`] as the number its sixteen hex digits spell.
pub(crate) fn text_hash_value(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The number a [`text_hash`] spells: `None` for anything but sixteen
/// lowercase hex digits (which no text hashes to).
pub(crate) fn parse_text_hash(hash: &str) -> Option<u64> {
    let ok = hash.len() == 16
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| u64::from_str_radix(hash, 16).ok()).flatten()
}

/// The journal open for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    run_id: String,
    restored: usize,
}

impl Journal {
    /// Opens (creating) the journal in `state_dir` for run `run_id`.
    pub fn open(state_dir: &Path, run_id: impl Into<String>) -> Result<Journal, StoreError> {
        super::make_state_dir(state_dir)?;
        let path = state_dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| StoreError::io(&path, "cannot open the journal", e))?;
        // A run killed mid-line left a torn last line: end it so our first
        // record starts on a line of its own.
        let mut last = [0u8; 1];
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0
            && std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1).is_ok()
            && last[0] != b'\n'
        {
            let _ = file.write_all(b"\n");
        }
        Ok(Journal {
            file,
            path,
            run_id: run_id.into(),
            restored: 0,
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line (one `write`, so lines never interleave).
    pub fn append(&mut self, record: JournalRecord) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(256);
        self.encode(record, &mut buf);
        self.write_raw(&buf)
    }

    /// Appends `record` to `buf` as one line.
    fn encode(&self, record: JournalRecord, buf: &mut Vec<u8>) {
        let entry = JournalEntry {
            v: JOURNAL_VERSION,
            ts: crate::util::now_rfc3339(),
            run_id: self.run_id.clone(),
            record,
        };
        serde_json::to_writer(&mut *buf, &entry).expect("journal records serialise to JSON");
        buf.push(b'\n');
    }

    fn write_raw(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(buf)
            .map_err(|e| StoreError::io(&self.path, "cannot append to the journal", e))
    }

    /// Flushes the journal to disk. A journal deleted during the run (its
    /// state folder removed: `rm -rf .mdbatch`) is first written back whole
    /// ([`Journal::restore_if_removed`]).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.restore_if_removed()?;
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.path, "cannot sync the journal", e))
    }

    /// How many times the journal was written back after it was deleted.
    pub fn restored(&self) -> usize {
        self.restored
    }

    /// When the journal file was deleted under the run, makes its folder
    /// again and writes the journal back whole, from the open file (a
    /// deleted file stays readable through it): earlier runs' history and
    /// this run's records alike. Returns whether it did.
    pub fn restore_if_removed(&mut self) -> Result<bool, StoreError> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let gone = self.file.metadata().is_ok_and(|m| m.nlink() == 0);
        if !gone {
            return Ok(false);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        super::make_state_dir(dir)?;
        let mut new = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|e| StoreError::io(&self.path, "cannot write the deleted journal back", e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        loop {
            let n = match self.file.read_at(&mut buf, at) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::io(
                        &self.path,
                        "cannot read the deleted journal back",
                        e,
                    ));
                }
            };
            new.write_all(&buf[..n]).map_err(|e| {
                StoreError::io(&self.path, "cannot write the deleted journal back", e)
            })?;
            at += n as u64;
        }
        self.file = new;
        self.restored += 1;
        Ok(true)
    }
}

enum Msg {
    Record(JournalRecord),
    /// Write what came before, `fdatasync`, then answer (`true`: durable).
    Sync(std::sync::mpsc::SyncSender<bool>),
}

/// The journal written by a thread of its own, so that appends (and the
/// fsyncs) never run on the async runtime's workers. Records are written in
/// the order they were appended, those queued together in one `write`; the
/// first error is kept for the caller to report.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    tx: Option<std::sync::mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    error: std::sync::Arc<std::sync::Mutex<Option<StoreError>>>,
    /// How many times the journal was written back after being deleted.
    restored: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The count [`JournalWriter::take_restored`] last saw.
    restored_seen: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Record(_) => "Record",
            Msg::Sync(_) => "Sync",
        })
    }
}

/// A handle that makes every record queued so far durable
/// ([`JournalSync::sync`]); cheap to clone and send to a blocking task.
#[derive(Debug, Clone)]
pub(crate) struct JournalSync(std::sync::mpsc::Sender<Msg>);

impl JournalSync {
    /// Blocks until every record queued before this call is written and
    /// `fdatasync`ed. `false` when it could not be (the journal failed;
    /// its error is reported by the writer).
    pub(crate) fn sync(&self) -> bool {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.0.send(Msg::Sync(tx)).is_err() {
            return false;
        }
        rx.recv().unwrap_or(false)
    }
}

impl JournalWriter {
    /// Starts the writer thread over an open journal.
    pub(crate) fn spawn(mut journal: Journal) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = error.clone();
        let path = journal.path.clone();
        let restored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let restored_count = restored.clone();
        let thread = std::thread::Builder::new()
            .name("mdbatch-journal".into())
            .spawn(move || {
                let mut failed = false;
                let keep = |e: StoreError| {
                    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                };
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut waiting: Vec<std::sync::mpsc::SyncSender<bool>> = Vec::new();
                while let Ok(first) = rx.recv() {
                    // Everything already queued goes out in one write and,
                    // when asked, one fdatasync (group commit).
                    let mut next = Some(first);
                    while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
                        match msg {
                            Msg::Record(r) if !failed => journal.encode(r, &mut buf),
                            Msg::Record(_) => {}
                            Msg::Sync(reply) => waiting.push(reply),
                        }
                        if buf.len() >= 1 << 20 {
                            break;
                        }
                    }
                    if !failed
                        && !buf.is_empty()
                        && let Err(e) = journal.write_raw(&buf)
                    {
                        failed = true;
                        keep(e);
                    }
                    buf.clear();
                    if !waiting.is_empty() {
                        let ok = !failed
                            && match journal.sync() {
                                Ok(()) => true,
                                Err(e) => {
                                    failed = true;
                                    keep(e);
                                    false
                                }
                            };
                        restored_count
                            .store(journal.restored(), std::sync::atomic::Ordering::Release);
                        for w in waiting.drain(..) {
                            let _ = w.send(ok);
                        }
                    }
                }
                if !failed && let Err(e) = journal.sync() {
                    keep(e);
                }
            })
            .map_err(|e| StoreError::io(&path, "cannot start the journal writer", e))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            error,
            restored,
            restored_seen: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Whether the journal was written back (its state folder deleted during
    /// the run) since the last call.
    pub(crate) fn take_restored(&self) -> bool {
        let now = self.restored.load(std::sync::atomic::Ordering::Acquire);
        let before = self
            .restored_seen
            .swap(now, std::sync::atomic::Ordering::AcqRel);
        now != before
    }

    /// Queues a record; never blocks.
    pub(crate) fn append(&self, record: JournalRecord) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Record(record));
        }
    }

    /// A handle to make what is queued durable.
    pub(crate) fn syncer(&self) -> Option<JournalSync> {
        self.tx.clone().map(JournalSync)
    }

    /// The first write error, once.
    pub(crate) fn take_error(&self) -> Option<StoreError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Writes what is queued, syncs and ends the thread (blocks: call it
    /// off the runtime). Returns the first error not yet taken.
    pub(crate) fn close(mut self) -> Option<StoreError> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.take_error()
    }
}

/// What [`read`] found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JournalRead {
    /// The records, in file order.
    pub entries: Vec<JournalEntry>,
    /// Lines that could not be read (a torn last line, a newer record type).
    pub skipped_lines: usize,
}

/// Reads the journal of `state_dir` (empty when there is none).
pub fn read(state_dir: &Path) -> Result<JournalRead, StoreError> {
    let path = state_dir.join(JOURNAL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalRead::default()),
        Err(e) => return Err(StoreError::io(&path, "cannot read the journal", e)),
    };
    Ok(parse(&bytes))
}

/// Parses journal bytes, skipping lines that do not parse.
pub fn parse(bytes: &[u8]) -> JournalRead {
    let mut out = JournalRead::default();
    for line in lines(bytes) {
        match read_line(line) {
            Some(e) => out.entries.push(e),
            None => out.skipped_lines += 1,
        }
    }
    out
}

/// Parses journal bytes keeping only the records of task `id` and the ends
/// of runs (what `mdbatch logs` looks for), without an owned entry for every
/// other line. Lines that cannot be read are counted as by [`parse`].
pub fn parse_task(bytes: &[u8], id: &str) -> JournalRead {
    let mut out = JournalRead::default();
    for line in lines(bytes) {
        match LineRead::of(line) {
            None => out.skipped_lines += 1,
            Some(l) if l.id() == Some(id) || matches!(l.record(), RecordRef::RunEnd { .. }) => {
                out.entries.extend(l.into_entry());
            }
            Some(_) => {}
        }
    }
    out
}

/// One line: read into fixed fields first (fast), and through the derived
/// reader when that fails (a field of an unexpected type on a record that
/// does not use it), so both accept the same lines.
fn read_line(line: &[u8]) -> Option<JournalEntry> {
    LineRead::of(line)?.into_entry()
}

/// A line read by one of the two readers (see [`read_line`]).
// One lives at a time, on the stack; boxing the common variant would
// allocate per line.
#[allow(clippy::large_enum_variant)]
enum LineRead<'a> {
    /// Read into fixed fields; its record is known to be whole.
    Raw(RawLine<'a>),
    /// Read by the derived reader (rare).
    Entry(JournalEntry),
}

impl<'a> LineRead<'a> {
    /// `None` when neither reader takes the line.
    fn of(line: &'a [u8]) -> Option<Self> {
        match raw_line(line) {
            Ok(raw) => raw.record().is_some().then_some(LineRead::Raw(raw)),
            Err(()) => serde_json::from_slice(line).ok().map(LineRead::Entry),
        }
    }

    fn ts(&self) -> &str {
        match self {
            LineRead::Raw(r) => &r.ts,
            LineRead::Entry(e) => &e.ts,
        }
    }

    fn run_id(&self) -> &str {
        match self {
            LineRead::Raw(r) => &r.run_id,
            LineRead::Entry(e) => &e.run_id,
        }
    }

    /// The task the record is about, as [`JournalRecord::id`] says.
    fn id(&self) -> Option<&str> {
        self.record().id()
    }

    fn record(&self) -> RecordRef<'_> {
        match self {
            LineRead::Raw(r) => r.record().expect("checked when read"),
            LineRead::Entry(e) => e.record.as_ref(),
        }
    }

    fn into_entry(self) -> Option<JournalEntry> {
        match self {
            LineRead::Raw(r) => r.into_entry(),
            LineRead::Entry(e) => Some(e),
        }
    }
}

/// A journal read into its summary.
#[derive(Debug, Default)]
pub(crate) struct Summarized {
    pub(crate) summary: JournalSummary,
    /// The attempts the last run ended as interrupted (id, attempt).
    pub(crate) interrupted: Vec<(String, u32)>,
    /// Lines that could not be read.
    pub(crate) skipped_lines: usize,
}

/// The journal of `state_dir` summarised, read without building an entry
/// per line.
pub(crate) fn summarize(state_dir: &Path) -> Result<Summarized, StoreError> {
    use std::io::Read;
    let path = state_dir.join(JOURNAL_FILE);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Summarized::default());
        }
        Err(e) => return Err(StoreError::io(&path, "cannot read the journal", e)),
    };
    let mut fold = Fold::default();
    let mut skipped = 0;
    let mut fold_lines = |bytes: &[u8]| {
        for line in lines(bytes) {
            match LineRead::of(line) {
                Some(l) => fold.push(l.ts(), l.run_id(), l.record()),
                None => skipped += 1,
            }
        }
    };
    // A chunk at a time (whole lines; the rest carried to the next chunk):
    // a journal of 100,000 tasks is 60 MB, never held whole.
    const CHUNK: usize = 1 << 20;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = match file.read(&mut buf[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(start);
                continue;
            }
            Err(e) => return Err(StoreError::io(&path, "cannot read the journal", e)),
        };
        buf.truncate(start + n);
        if n == 0 {
            // The end: a last line without its newline (torn) included.
            fold_lines(&buf);
            break;
        }
        if let Some(end) = memchr::memrchr(b'\n', &buf) {
            fold_lines(&buf[..end]);
            buf.drain(..=end);
        }
    }
    let (summary, interrupted) = fold.finish();
    Ok(Summarized {
        summary,
        interrupted,
        skipped_lines: skipped,
    })
}

/// One journal line as read, borrowing its strings from the line where it
/// can: the fast path of [`parse`] and [`JournalSummary::load`]. Serde's
/// internally tagged enum with a flattened envelope buffers every line into a
/// generic tree first; this reads the line once, into fixed fields.
#[derive(Deserialize, Default, Debug, PartialEq)]
struct RawLine<'a> {
    v: u32,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    run_id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind_of: Cow<'a, str>,
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(borrow, default)]
    runner: Option<Cow<'a, str>>,
    #[serde(default)]
    total: Option<usize>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(borrow, default)]
    text_hash: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    adjusted: Option<Cow<'a, str>>,
    #[serde(default)]
    outcome: Option<AttemptOutcome>,
    #[serde(default)]
    kind: Option<ErrorKind>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    commit: Option<Cow<'a, str>>,
    #[serde(default)]
    summary: Option<RunSummary>,
}

/// A line read into fixed fields: by [`flat_line`] when it has the shape the
/// writer gives every common record, else by serde.
fn raw_line(line: &[u8]) -> Result<RawLine<'_>, ()> {
    match flat_line(line) {
        Some(raw) => Ok(raw),
        None => serde_json::from_slice::<RawLine<'_>>(line).map_err(|_| ()),
    }
}

/// Reads a line of the shape the writer gives the common records: one flat
/// object, no white space, keys among [`RawLine`]'s at most once each,
/// strings without escapes or control characters, unsigned integers
/// without leading zeros, `null`, and the three attempt outcomes. `None`
/// for anything else (an escape, a nested `usage`, an error `kind`, a key it
/// does not know): serde reads those, so the two always agree (checked
/// against serde on every line of the tests' journals).
fn flat_line<'a>(line: &'a [u8]) -> Option<RawLine<'a>> {
    /// The keys it reads, by the bit that marks each seen: the four serde
    /// requires first, then [`RawLine`]'s others (`kind`, `usage` and
    /// `summary` only as `null`).
    const KEYS: [&str; 21] = [
        "v",
        "ts",
        "run_id",
        "type",
        "file",
        "pid",
        "runner",
        "total",
        "id",
        "attempt",
        "text_hash",
        "session_id",
        "adjusted",
        "outcome",
        "message",
        "duration_ms",
        "reason",
        "commit",
        "kind",
        "usage",
        "summary",
    ];
    enum Value<'a> {
        Str(&'a str),
        Num(u64),
        Null,
    }
    let text = std::str::from_utf8(line).ok()?;
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = RawLine::default();
    let mut seen: u32 = 0;
    // A string at b[i] (its opening quote): its contents, i past its close.
    let string = |i: &mut usize| -> Option<&str> {
        if b.get(*i) != Some(&b'"') {
            return None;
        }
        let start = *i + 1;
        let len = memchr::memchr(b'"', b.get(start..)?)?;
        let s = &b[start..start + len];
        if s.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        *i = start + len + 1;
        text.get(start..start + len)
    };
    if b.first() != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        let key = string(&mut i)?;
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        let value = match b.get(i)? {
            b'"' => Value::Str(string(&mut i)?),
            b'n' if b.get(i..i + 4) == Some(b"null") => {
                i += 4;
                Value::Null
            }
            b'0' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
            c if c.is_ascii_digit() => {
                let len = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                let n: u64 = text.get(i..i + len)?.parse().ok()?;
                i += len;
                Value::Num(n)
            }
            _ => return None,
        };
        let str_of = |v: &Value<'a>| match v {
            Value::Str(s) => Some(Cow::Borrowed(*s)),
            _ => None,
        };
        let opt_str = |v: &Value<'a>| match v {
            Value::Str(s) => Some(Some(Cow::Borrowed(*s))),
            Value::Null => Some(None),
            Value::Num(_) => None,
        };
        let opt_num = |v: &Value<'_>| match v {
            Value::Num(n) => Some(Some(*n)),
            Value::Null => Some(None),
            Value::Str(_) => None,
        };
        // Each key at most once (serde refuses a repeated field).
        let bit = KEYS.iter().position(|k| *k == key)?;
        if seen & (1 << bit) != 0 {
            return None;
        }
        seen |= 1 << bit;
        match key {
            "v" => out.v = u32::try_from(opt_num(&value)??).ok()?,
            "ts" => out.ts = str_of(&value)?,
            "run_id" => out.run_id = str_of(&value)?,
            "type" => out.kind_of = str_of(&value)?,
            "file" => out.file = opt_str(&value)?,
            "pid" => out.pid = opt_num(&value)?.map(u32::try_from).transpose().ok()?,
            "runner" => out.runner = opt_str(&value)?,
            "total" => out.total = opt_num(&value)?.map(usize::try_from).transpose().ok()?,
            "id" => out.id = opt_str(&value)?,
            "attempt" => out.attempt = opt_num(&value)?.map(u32::try_from).transpose().ok()?,
            "text_hash" => out.text_hash = opt_str(&value)?,
            "session_id" => out.session_id = opt_str(&value)?,
            "adjusted" => out.adjusted = opt_str(&value)?,
            "outcome" => {
                out.outcome = match value {
                    Value::Null => None,
                    Value::Str("succeeded") => Some(AttemptOutcome::Succeeded),
                    Value::Str("failed") => Some(AttemptOutcome::Failed),
                    Value::Str("interrupted") => Some(AttemptOutcome::Interrupted),
                    _ => return None,
                }
            }
            "message" => out.message = opt_str(&value)?,
            "duration_ms" => out.duration_ms = opt_num(&value)?,
            "reason" => out.reason = opt_str(&value)?,
            "commit" => out.commit = opt_str(&value)?,
            // Absent, as the writer leaves them on success; serde reads
            // the others.
            _ if matches!(value, Value::Null) => {}
            _ => return None,
        }
        match b.get(i)? {
            b',' => i += 1,
            b'}' if i + 1 == b.len() => break,
            _ => return None,
        }
    }
    // Required by serde: v, ts, run_id, type.
    (seen & 0b1111 == 0b1111).then_some(out)
}

/// A journal record borrowed from a [`JournalEntry`] or a [`RawLine`]: what
/// the summary folds.
enum RecordRef<'a> {
    RunStart {
        pid: u32,
        runner: &'a str,
    },
    AttemptStart {
        id: &'a str,
        attempt: u32,
        text_hash: &'a str,
    },
    AttemptInfo {
        id: &'a str,
        pid: Option<u32>,
        session_id: Option<&'a str>,
    },
    AttemptEnd {
        id: &'a str,
        attempt: u32,
        outcome: AttemptOutcome,
        kind: Option<ErrorKind>,
        message: Option<&'a str>,
        duration_ms: u64,
        pid: Option<u32>,
        session_id: Option<&'a str>,
        usage: Option<&'a Usage>,
    },
    TaskSkipped {
        id: &'a str,
        reason: &'a str,
    },
    TaskReset {
        id: &'a str,
    },
    Landed {
        id: &'a str,
        commit: &'a str,
    },
    RunEnd {
        summary: &'a RunSummary,
    },
}

impl<'a> RecordRef<'a> {
    /// The task the record is about (`None` for the start and end of a run).
    fn id(&self) -> Option<&'a str> {
        match *self {
            RecordRef::AttemptStart { id, .. }
            | RecordRef::AttemptInfo { id, .. }
            | RecordRef::AttemptEnd { id, .. }
            | RecordRef::TaskSkipped { id, .. }
            | RecordRef::TaskReset { id }
            | RecordRef::Landed { id, .. } => Some(id),
            RecordRef::RunStart { .. } | RecordRef::RunEnd { .. } => None,
        }
    }
}

impl<'a> RawLine<'a> {
    /// The record, or `None` when the type is unknown or a field it needs is
    /// missing (the line is skipped, as [`JournalEntry`]'s reader would).
    fn record(&self) -> Option<RecordRef<'_>> {
        let id = || self.id.as_deref();
        Some(match &*self.kind_of {
            "run_start" => {
                self.file.as_ref()?;
                self.total?;
                RecordRef::RunStart {
                    pid: self.pid?,
                    runner: self.runner.as_deref()?,
                }
            }
            "attempt_start" => RecordRef::AttemptStart {
                id: id()?,
                attempt: self.attempt?,
                text_hash: self.text_hash.as_deref()?,
            },
            "attempt_info" => {
                self.attempt?;
                RecordRef::AttemptInfo {
                    id: id()?,
                    pid: self.pid,
                    session_id: self.session_id.as_deref(),
                }
            }
            "attempt_end" => {
                self.text_hash.as_ref()?;
                RecordRef::AttemptEnd {
                    id: id()?,
                    attempt: self.attempt?,
                    outcome: self.outcome?,
                    kind: self.kind,
                    message: self.message.as_deref(),
                    duration_ms: self.duration_ms?,
                    pid: self.pid,
                    session_id: self.session_id.as_deref(),
                    usage: self.usage.as_ref(),
                }
            }
            "task_skipped" => RecordRef::TaskSkipped {
                id: id()?,
                reason: self.reason.as_deref()?,
            },
            "task_reset" => RecordRef::TaskReset { id: id()? },
            "landed" => {
                self.attempt?;
                RecordRef::Landed {
                    id: id()?,
                    commit: self.commit.as_deref()?,
                }
            }
            "run_end" => RecordRef::RunEnd {
                summary: self.summary.as_ref()?,
            },
            _ => return None,
        })
    }

    /// The owned entry, or `None` as for [`RawLine::record`].
    fn into_entry(self) -> Option<JournalEntry> {
        let own = |s: Option<Cow<'a, str>>| s.map(Cow::into_owned);
        let record = match self.record()? {
            RecordRef::RunStart { pid, runner } => JournalRecord::RunStart {
                file: own(self.file.clone())?,
                pid,
                runner: runner.to_owned(),
                total: self.total?,
            },
            RecordRef::AttemptStart {
                id,
                attempt,
                text_hash,
            } => JournalRecord::AttemptStart {
                id: id.to_owned(),
                attempt,
                text_hash: text_hash.to_owned(),
            },
            RecordRef::AttemptInfo { id, pid, .. } => JournalRecord::AttemptInfo {
                id: id.to_owned(),
                attempt: self.attempt?,
                pid,
                session_id: own(self.session_id.clone()),
                adjusted: own(self.adjusted.clone()),
            },
            RecordRef::AttemptEnd {
                id,
                attempt,
                outcome,
                kind,
                duration_ms,
                pid,
                ..
            } => JournalRecord::AttemptEnd {
                id: id.to_owned(),
                attempt,
                outcome,
                kind,
                message: own(self.message.clone()),
                duration_ms,
                pid,
                session_id: own(self.session_id.clone()),
                usage: self.usage,
                text_hash: own(self.text_hash.clone())?,
            },
            RecordRef::TaskSkipped { id, reason } => JournalRecord::TaskSkipped {
                id: id.to_owned(),
                reason: reason.to_owned(),
            },
            RecordRef::TaskReset { id } => JournalRecord::TaskReset { id: id.to_owned() },
            RecordRef::Landed { id, commit } => JournalRecord::Landed {
                id: id.to_owned(),
                attempt: self.attempt?,
                commit: commit.to_owned(),
            },
            RecordRef::RunEnd { summary } => JournalRecord::RunEnd {
                summary: summary.clone(),
            },
        };
        Some(JournalEntry {
            v: self.v,
            ts: self.ts.into_owned(),
            run_id: self.run_id.into_owned(),
            record,
        })
    }
}

impl JournalRecord {
    /// The task the record is about (`None` for the start and end of a run).
    pub fn id(&self) -> Option<&str> {
        self.as_ref().id()
    }

    fn as_ref(&self) -> RecordRef<'_> {
        match self {
            JournalRecord::RunStart { pid, runner, .. } => {
                RecordRef::RunStart { pid: *pid, runner }
            }
            JournalRecord::AttemptStart {
                id,
                attempt,
                text_hash,
            } => RecordRef::AttemptStart {
                id,
                attempt: *attempt,
                text_hash,
            },
            JournalRecord::AttemptInfo {
                id,
                pid,
                session_id,
                ..
            } => RecordRef::AttemptInfo {
                id,
                pid: *pid,
                session_id: session_id.as_deref(),
            },
            JournalRecord::AttemptEnd {
                id,
                attempt,
                outcome,
                kind,
                message,
                duration_ms,
                pid,
                session_id,
                usage,
                ..
            } => RecordRef::AttemptEnd {
                id,
                attempt: *attempt,
                outcome: *outcome,
                kind: *kind,
                message: message.as_deref(),
                duration_ms: *duration_ms,
                pid: *pid,
                session_id: session_id.as_deref(),
                usage: usage.as_ref(),
            },
            JournalRecord::TaskSkipped { id, reason } => RecordRef::TaskSkipped { id, reason },
            JournalRecord::TaskReset { id } => RecordRef::TaskReset { id },
            JournalRecord::Landed { id, commit, .. } => RecordRef::Landed { id, commit },
            JournalRecord::RunEnd { summary } => RecordRef::RunEnd { summary },
        }
    }
}

/// The non-blank lines of `bytes`.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    ends.map(move |end| {
        let line = &bytes[start..end];
        start = end + 1;
        line
    })
    .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// Folds records into a [`JournalSummary`], and keeps the attempts the last
/// run ended as interrupted. Tasks and runs are numbered as first seen, so a
/// record costs one lookup of its id and no string copies but the ones the
/// summary keeps.
#[derive(Default)]
struct Fold {
    summary: JournalSummary,
    /// Task id to its slot in `tasks` (sorted into the summary's map once,
    /// at the end). `mdbatch reset` unmaps the id; a later record of it gets
    /// a new slot.
    slots: FxHashMap<String, usize>,
    tasks: Vec<Slot>,
    /// Run id to its number, and the last one looked up.
    runs: FxHashMap<String, u32>,
    run_ids: Vec<String>,
    last_lookup: Option<u32>,
    /// (run, slot) of tasks that failed an attempt in that run, for flakiness.
    failed_in_run: FxHashSet<(u32, usize)>,
    /// The last run started, and what it ended as interrupted.
    last_run: Option<u32>,
    interrupted: Vec<(String, u32)>,
}

/// A task's history, and its attempt started and not ended (if any).
#[derive(Default)]
struct Slot {
    history: TaskHistory,
    open: Option<OpenAttempt>,
}

struct OpenAttempt {
    attempt: u32,
    run: u32,
    pid: Option<u32>,
    session_id: Option<String>,
}

impl Fold {
    fn slot(&mut self, id: &str) -> usize {
        match self.slots.get(id) {
            Some(&slot) => slot,
            None => {
                self.tasks.push(Slot::default());
                let slot = self.tasks.len() - 1;
                self.slots.insert(id.to_owned(), slot);
                slot
            }
        }
    }

    fn run(&mut self, run_id: &str) -> u32 {
        if let Some(n) = self
            .last_lookup
            .filter(|&n| self.run_ids.get(n as usize).is_some_and(|r| r == run_id))
        {
            return n;
        }
        let n = match self.runs.get(run_id) {
            Some(&n) => n,
            None => {
                let n = u32::try_from(self.run_ids.len()).unwrap_or(u32::MAX);
                self.run_ids.push(run_id.to_owned());
                self.runs.insert(run_id.to_owned(), n);
                n
            }
        };
        self.last_lookup = Some(n);
        n
    }

    fn push(&mut self, ts: &str, run_id: &str, record: RecordRef<'_>) {
        let run = self.run(run_id);
        match record {
            RecordRef::RunStart { pid, runner } => {
                self.summary.runs.push(RunInfo {
                    run_id: run_id.to_owned(),
                    started: ts.to_owned(),
                    ended: None,
                    pid,
                    runner: runner.to_owned(),
                    summary: None,
                });
                self.last_run = Some(run);
                self.interrupted.clear();
            }
            RecordRef::RunEnd { summary } => {
                if let Some(r) = self
                    .summary
                    .runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.run_id == run_id)
                {
                    r.ended = Some(ts.to_owned());
                    r.summary = Some(summary.clone());
                }
            }
            RecordRef::Landed { id, commit } => {
                let slot = self.slot(id);
                let t = &mut self.tasks[slot].history;
                t.landed_commit = Some(commit.to_owned());
                t.landed_run = Some(run_id.to_owned());
            }
            RecordRef::AttemptStart {
                id,
                attempt,
                text_hash,
            } => {
                let slot = self.slot(id);
                let Slot { history: t, open } = &mut self.tasks[slot];
                t.attempts += 1;
                t.unfinished = true;
                t.skipped = None;
                if t.text_hash.as_deref() != Some(text_hash) {
                    t.text_hash = Some(text_hash.to_owned());
                }
                *open = Some(OpenAttempt {
                    attempt,
                    run,
                    pid: None,
                    session_id: None,
                });
            }
            RecordRef::AttemptInfo {
                id,
                pid,
                session_id,
            } => {
                let slot = self.slot(id);
                let Slot { history: t, open } = &mut self.tasks[slot];
                if pid.is_some() {
                    t.last_pid = pid;
                }
                if let Some(s) = session_id {
                    t.last_session = Some(s.to_owned());
                }
                if let Some(u) = open {
                    if pid.is_some() {
                        u.pid = pid;
                    }
                    if let Some(s) = session_id {
                        u.session_id = Some(s.to_owned());
                    }
                }
            }
            RecordRef::AttemptEnd {
                id,
                attempt,
                outcome,
                kind,
                message,
                duration_ms,
                pid,
                session_id,
                usage,
            } => {
                if outcome == AttemptOutcome::Interrupted && self.last_run == Some(run) {
                    self.interrupted.push((id.to_owned(), attempt));
                }
                let slot = self.slot(id);
                let failed_before = match outcome {
                    AttemptOutcome::Succeeded => self.failed_in_run.contains(&(run, slot)),
                    AttemptOutcome::Failed | AttemptOutcome::Interrupted => {
                        self.failed_in_run.insert((run, slot));
                        false
                    }
                };
                let Slot { history: t, open } = &mut self.tasks[slot];
                *open = None;
                t.unfinished = false;
                t.last_outcome = Some(outcome);
                t.duration_ms += duration_ms;
                if pid.is_some() {
                    t.last_pid = pid;
                }
                if let Some(s) = session_id {
                    t.last_session = Some(s.to_owned());
                }
                if let Some(u) = usage {
                    t.usage.get_or_insert_with(Usage::default).add(u);
                }
                match outcome {
                    AttemptOutcome::Succeeded => {
                        t.flaky = failed_before;
                        t.last_kind = None;
                        t.last_message = None;
                    }
                    AttemptOutcome::Failed | AttemptOutcome::Interrupted => {
                        t.last_kind = kind;
                        t.last_message = message.map(str::to_owned);
                    }
                }
            }
            RecordRef::TaskSkipped { id, reason } => {
                let slot = self.slot(id);
                self.tasks[slot].history.skipped = Some(reason.to_owned());
            }
            RecordRef::TaskReset { id } => {
                // Its slot is dropped with its open attempt and failures.
                if let Some(slot) = self.slots.remove(id) {
                    self.failed_in_run.retain(|&(_, s)| s != slot);
                }
            }
        }
    }

    fn finish(self) -> (JournalSummary, Vec<(String, u32)>) {
        let mut s = self.summary;
        let mut ids: Vec<(String, usize)> = self.slots.into_iter().collect();
        ids.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut tasks = self.tasks;
        let run_ids = self.run_ids;
        for (id, slot) in &ids {
            if let Some(u) = tasks[*slot].open.take() {
                s.unfinished.push(UnfinishedAttempt {
                    id: id.clone(),
                    attempt: u.attempt,
                    run_id: run_ids.get(u.run as usize).cloned().unwrap_or_default(),
                    pid: u.pid,
                    session_id: u.session_id,
                });
            }
        }
        // Journal order of runs is not id order: sort as before, by run id
        // then task id (a stable sort keeps the id order within a run).
        s.unfinished.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        s.tasks = ids
            .into_iter()
            .map(|(id, slot)| (id, std::mem::take(&mut tasks[slot].history)))
            .collect();
        (s, self.interrupted)
    }
}

/// One run as the journal saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// Its id.
    pub run_id: String,
    /// When it started.
    pub started: String,
    /// When it ended (`None`: it was killed, or it is still running).
    pub ended: Option<String>,
    /// mdbatch's pid.
    pub pid: u32,
    /// The runner's name.
    pub runner: String,
    /// Its totals, when it ended.
    pub summary: Option<RunSummary>,
}

/// One task's history over every run in the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskHistory {
    /// Attempts started, all runs.
    pub attempts: u32,
    /// How its last finished attempt ended.
    pub last_outcome: Option<AttemptOutcome>,
    /// The last failure's kind.
    pub last_kind: Option<ErrorKind>,
    /// The last failure's message.
    pub last_message: Option<String>,
    /// The last agent session id seen.
    pub last_session: Option<String>,
    /// The last subagent pid seen.
    pub last_pid: Option<u32>,
    /// The text hash of its last attempt.
    pub text_hash: Option<String>,
    /// It succeeded after a failed attempt in the same run.
    pub flaky: bool,
    /// Its last attempt started and never ended.
    pub unfinished: bool,
    /// The last skip reason, if its last record is a skip.
    pub skipped: Option<String>,
    /// Summed attempt durations.
    pub duration_ms: u64,
    /// Summed usage.
    pub usage: Option<Usage>,
    /// With worktree isolation: the commit its change last landed as.
    pub landed_commit: Option<String>,
    /// The run that landed it.
    pub landed_run: Option<String>,
}

/// An attempt that started and never ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnfinishedAttempt {
    /// Task id.
    pub id: String,
    /// Attempt number in its run.
    pub attempt: u32,
    /// The run it belonged to.
    pub run_id: String,
    /// The subagent pid, if it was recorded (it may have outlived its run).
    pub pid: Option<u32>,
    /// Its agent session, if known (to resume with `--resume-sessions`).
    pub session_id: Option<String>,
}

/// The journal's view of a task file, for `mdbatch status` and the next run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalSummary {
    /// Every run, oldest first.
    pub runs: Vec<RunInfo>,
    /// Per task id.
    pub tasks: BTreeMap<String, TaskHistory>,
    /// Attempts started and never ended, in journal order.
    pub unfinished: Vec<UnfinishedAttempt>,
}

impl JournalSummary {
    /// Folds journal entries into a summary.
    pub fn from_entries(entries: &[JournalEntry]) -> JournalSummary {
        let mut fold = Fold::default();
        for e in entries {
            fold.push(&e.ts, &e.run_id, e.record.as_ref());
        }
        fold.finish().0
    }

    /// Reads and summarises the journal of `state_dir`.
    pub fn load(state_dir: &Path) -> Result<JournalSummary, StoreError> {
        Ok(summarize(state_dir)?.summary)
    }

    /// The last run, if any.
    pub fn last_run(&self) -> Option<&RunInfo> {
        self.runs.last()
    }

    /// Tasks whose last attempt failed, with their history.
    pub fn failed(&self) -> impl Iterator<Item = (&String, &TaskHistory)> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.last_outcome == Some(AttemptOutcome::Failed) && !t.unfinished)
    }

    /// Tasks that succeeded only after a retry.
    pub fn flaky(&self) -> impl Iterator<Item = (&String, &TaskHistory)> {
        self.tasks.iter().filter(|(_, t)| t.flaky)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_hashes_are_fnv1a_64_in_sixteen_hex_digits_as_journals_hold_them() {
        // The published FNV-1a 64 vectors: journals of earlier runs compare
        // against these strings.
        assert_eq!(text_hash(""), "cbf29ce484222325");
        assert_eq!(text_hash("a"), "af63dc4c8601ec8c");
        assert_eq!(text_hash("foobar"), "85944171f73967e8");
    }

    fn end(id: &str, attempt: u32, outcome: AttemptOutcome) -> JournalRecord {
        JournalRecord::AttemptEnd {
            id: id.into(),
            attempt,
            outcome,
            kind: (outcome != AttemptOutcome::Succeeded).then_some(ErrorKind::Failed),
            message: (outcome != AttemptOutcome::Succeeded).then(|| "boom".to_string()),
            duration_ms: 10,
            pid: Some(7),
            session_id: None,
            usage: None,
            text_hash: text_hash("x"),
        }
    }

    fn start(id: &str, attempt: u32) -> JournalRecord {
        JournalRecord::AttemptStart {
            id: id.into(),
            attempt,
            text_hash: text_hash("x"),
        }
    }

    /// A journal of two runs with every record type, escaped ids, a reset,
    /// a line only the derived reader takes, an unknown type and a torn line.
    fn varied_journal() -> (Vec<JournalEntry>, String) {
        let entry = |run: &str, record| JournalEntry {
            v: 1,
            ts: format!("2026-11-30T09:00:{run}Z"),
            run_id: run.into(),
            record,
        };
        let run_start = |total| JournalRecord::RunStart {
            file: "task.md".into(),
            pid: 10,
            runner: "command".into(),
            total,
        };
        let mut usage_end = end("a \"quoted\" id", 2, AttemptOutcome::Succeeded);
        if let JournalRecord::AttemptEnd { usage, .. } = &mut usage_end {
            *usage = Some(Usage::new(120, 30));
        }
        let entries = vec![
            entry("r1", run_start(4)),
            entry("r1", start("a \"quoted\" id", 1)),
            entry("r1", end("a \"quoted\" id", 1, AttemptOutcome::Failed)),
            entry("r1", start("a \"quoted\" id", 2)),
            entry("r1", usage_end),
            entry("r1", start("ünï\u{7}", 1)),
            entry("r1", end("ünï\u{7}", 1, AttemptOutcome::Interrupted)),
            entry("r1", start("left", 1)),
            entry(
                "r1",
                JournalRecord::Landed {
                    id: "a \"quoted\" id".into(),
                    attempt: 2,
                    commit: "abc123".into(),
                },
            ),
            entry(
                "r1",
                JournalRecord::RunEnd {
                    summary: RunSummary {
                        total: 4,
                        succeeded: 1,
                        ..RunSummary::default()
                    },
                },
            ),
            entry("reset", JournalRecord::TaskReset { id: "left".into() }),
            entry("r2", run_start(3)),
            entry("r2", start("b", 1)),
            entry(
                "r2",
                JournalRecord::AttemptInfo {
                    id: "b".into(),
                    attempt: 1,
                    pid: Some(42),
                    session_id: Some("s-9".into()),
                    adjusted: Some("more turns".into()),
                },
            ),
            entry("r2", end("b", 1, AttemptOutcome::Interrupted)),
            entry("r2", start("c", 1)),
            entry(
                "r2",
                JournalRecord::TaskSkipped {
                    id: "d".into(),
                    reason: "its prerequisite failed".into(),
                },
            ),
        ];
        let mut text = String::new();
        for e in &entries {
            text.push_str(&serde_json::to_string(e).unwrap());
            text.push('\n');
        }
        // A field another record type uses, of the wrong type for it here:
        // the derived reader ignores it, so the fast reader must too.
        text.push_str(
            r#"{"v":1,"ts":"x","run_id":"r2","type":"task_reset","id":"zz","pid":"not a pid"}"#,
        );
        text.push('\n');
        text.push_str(r#"{"v":1,"ts":"x","run_id":"r2","type":"from_the_future","id":"c"}"#);
        text.push_str("\n\n");
        text.push_str(r#"{"v":1,"ts":"x","run_id":"r2","type":"attempt_end","id":"c","#);
        let mut all = entries.clone();
        all.push(entry("r2", JournalRecord::TaskReset { id: "zz".into() }));
        all.last_mut().unwrap().ts = "x".into();
        (all, text)
    }

    #[test]
    fn the_fast_reader_reads_every_line_as_the_derived_reader_does() {
        let (entries, text) = varied_journal();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert_eq!(
                read_line(line.as_bytes()),
                serde_json::from_str::<JournalEntry>(line).ok(),
                "{line}"
            );
        }
        let read = parse(text.as_bytes());
        assert_eq!(read.entries, entries);
        assert_eq!(read.skipped_lines, 2);
    }

    #[test]
    fn a_journal_of_several_chunks_is_summarised_whole_lines_across_the_chunk_edges() {
        let entry = |record| JournalEntry {
            v: 1,
            ts: "2026-11-30T09:00:00.000Z".into(),
            run_id: "r1".into(),
            record,
        };
        let mut text = String::new();
        let mut entries = Vec::new();
        // About 3.5 MB: lines cross the 1 MiB chunk edges at varied places.
        for i in 0..12_000 {
            let id = format!("task-{i}-{}", "x".repeat(i % 97));
            for e in [
                entry(start(&id, 1)),
                entry(end(
                    &id,
                    1,
                    if i % 3 == 0 {
                        AttemptOutcome::Failed
                    } else {
                        AttemptOutcome::Succeeded
                    },
                )),
            ] {
                text.push_str(&serde_json::to_string(&e).unwrap());
                text.push('\n');
                entries.push(e);
            }
        }
        assert!(text.len() > 3 << 20);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), &text).unwrap();
        let read = summarize(dir.path()).unwrap();
        assert_eq!(read.skipped_lines, 0);
        assert_eq!(read.summary.tasks.len(), 12_000);
        assert_eq!(read.summary, JournalSummary::from_entries(&entries));
        assert_eq!(read.summary.failed().count(), 4_000);
    }

    #[test]
    fn reading_for_one_task_keeps_its_records_and_the_run_ends_in_order() {
        let (entries, text) = varied_journal();
        let id = "a \"quoted\" id";
        let read = parse_task(text.as_bytes(), id);
        let expected: Vec<JournalEntry> = entries
            .into_iter()
            .filter(|e| {
                e.record.id() == Some(id) || matches!(e.record, JournalRecord::RunEnd { .. })
            })
            .collect();
        assert_eq!(expected.len(), 6, "4 attempt records, a landing, a run end");
        assert_eq!(read.entries, expected);
        assert_eq!(read.skipped_lines, 2);
    }

    #[test]
    fn the_flat_reader_agrees_with_serde_on_every_line_and_takes_the_common_ones() {
        let (_, text) = varied_journal();
        let odd = [
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":01,"text_hash":"h"}"#,
            r#"{"v":1, "ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","id":"b","attempt":1,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h","new":2}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a\tb","attempt":1,"text_hash":"h"}"#,
            "{\"v\":1,\"ts\":\"t\",\"run_id\":\"r\",\"type\":\"attempt_start\",\"id\":\"a\tb\",\"attempt\":1,\"text_hash\":\"h\"}",
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":-1,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1.5,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":4294967296,"text_hash":"h"}"#,
            r#"{"v":null,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h"}"#,
            r#"{"v":1,"run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_end","id":"a","attempt":1,"outcome":"odd","kind":null,"message":null,"duration_ms":3,"pid":null,"session_id":null,"usage":null,"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_end","id":"a","attempt":1,"outcome":"failed","kind":"transient","message":"m","duration_ms":3,"pid":9,"session_id":null,"usage":{"input_tokens":1,"output_tokens":2},"text_hash":"h"}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h"} "#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h"}}"#,
            r#"{"v":1,"ts":"t","run_id":"r","type":"attempt_start","id":"a","attempt":1,"text_hash":"h""#,
        ];
        let mut fast = 0;
        for line in text.lines().chain(odd).filter(|l| !l.trim().is_empty()) {
            let serde = serde_json::from_str::<RawLine<'_>>(line).ok();
            if let Some(flat) = flat_line(line.as_bytes()) {
                fast += 1;
                assert_eq!(Some(flat), serde, "{line}");
            }
            assert_eq!(
                read_line(line.as_bytes()),
                serde_json::from_str::<JournalEntry>(line).ok(),
                "{line}"
            );
        }
        // The writer's attempt starts, infos and plain ends, and the run
        // start, took the flat path.
        assert!(fast >= 8, "{fast} lines read flat");
        let start = serde_json::to_string(&JournalEntry {
            v: 1,
            ts: "2026-11-30T09:00:00.000Z".into(),
            run_id: "ab8acaa1-7496".into(),
            record: end("item-7", 1, AttemptOutcome::Succeeded),
        })
        .unwrap();
        assert!(flat_line(start.as_bytes()).is_some(), "{start}");
    }

    #[test]
    fn the_summary_read_from_the_file_is_the_summary_of_its_entries() {
        let (entries, text) = varied_journal();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), &text).unwrap();
        let Summarized {
            summary,
            interrupted,
            skipped_lines: skipped,
        } = summarize(dir.path()).unwrap();
        assert_eq!(summary, JournalSummary::from_entries(&entries));
        assert_eq!(
            interrupted,
            crate::status::interrupted_in_last_run(&entries)
        );
        assert_eq!(interrupted, [("b".to_string(), 1)]);
        assert_eq!(skipped, 2);
        // What the fold found, spelt out.
        assert!(summary.tasks["a \"quoted\" id"].flaky);
        assert_eq!(
            summary.tasks["a \"quoted\" id"].usage,
            Some(Usage::new(120, 30))
        );
        assert_eq!(
            summary.tasks["a \"quoted\" id"].landed_commit.as_deref(),
            Some("abc123")
        );
        assert!(!summary.tasks.contains_key("left"), "reset forgets it");
        assert_eq!(summary.tasks["b"].last_session.as_deref(), Some("s-9"));
        assert_eq!(
            summary
                .unfinished
                .iter()
                .map(|u| u.id.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(summary.runs.len(), 2);
        assert!(summary.runs[0].summary.is_some());
        assert_eq!(
            summary.tasks["d"].skipped.as_deref(),
            Some("its prerequisite failed")
        );
    }

    #[test]
    fn the_text_hash_is_stable_across_versions() {
        // FNV-1a 64 reference values: journals written by older builds must
        // keep matching.
        assert_eq!(text_hash(""), "cbf29ce484222325");
        assert_eq!(text_hash("a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn the_reader_skips_a_torn_last_line_and_the_writer_starts_a_fresh_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), "r1").unwrap();
        j.append(start("a", 1)).unwrap();
        drop(j);
        // A killed run left half a line.
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"v":1,"ts":"x","run_id":"r1","type":"attempt_e"#)
            .unwrap();
        let read1 = read(dir.path()).unwrap();
        assert_eq!((read1.entries.len(), read1.skipped_lines), (1, 1));

        let mut j = Journal::open(dir.path(), "r2").unwrap();
        j.append(end("a", 1, AttemptOutcome::Succeeded)).unwrap();
        let read2 = read(dir.path()).unwrap();
        assert_eq!((read2.entries.len(), read2.skipped_lines), (2, 1));
    }

    #[test]
    fn the_summary_finds_unfinished_attempts_failures_and_flaky_tasks() {
        let entry = |run: &str, record| JournalEntry {
            v: 1,
            ts: "t".into(),
            run_id: run.into(),
            record,
        };
        let entries = vec![
            entry(
                "r1",
                JournalRecord::RunStart {
                    file: "task.md".into(),
                    pid: 1,
                    runner: "command".into(),
                    total: 3,
                },
            ),
            entry("r1", start("a", 1)),
            entry("r1", end("a", 1, AttemptOutcome::Failed)),
            entry("r1", start("a", 2)),
            entry("r1", end("a", 2, AttemptOutcome::Succeeded)),
            entry("r1", start("b", 1)),
            entry("r1", end("b", 1, AttemptOutcome::Failed)),
            entry("r1", start("c", 1)),
            entry(
                "r1",
                JournalRecord::AttemptInfo {
                    id: "c".into(),
                    attempt: 1,
                    pid: Some(99),
                    session_id: Some("s-1".into()),
                    adjusted: None,
                },
            ),
        ];
        let s = JournalSummary::from_entries(&entries);
        assert_eq!(s.runs.len(), 1);
        assert_eq!(s.runs[0].ended, None);
        assert!(s.tasks["a"].flaky);
        assert_eq!(s.tasks["a"].attempts, 2);
        assert_eq!(
            s.failed().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(s.unfinished.len(), 1);
        assert_eq!(s.unfinished[0].id, "c");
        assert_eq!(s.unfinished[0].pid, Some(99));
        assert_eq!(s.unfinished[0].session_id.as_deref(), Some("s-1"));
    }

    #[test]
    fn a_sync_returns_once_every_line_queued_before_it_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = JournalWriter::spawn(Journal::open(dir.path(), "r").unwrap()).unwrap();
        for i in 0..100 {
            w.append(JournalRecord::TaskReset {
                id: format!("t{i}"),
            });
        }
        let sync = w.syncer().unwrap();
        assert!(sync.sync());
        // Still open: the lines are there because the sync waited for them.
        let read = read(dir.path()).unwrap();
        assert_eq!(read.entries.len(), 100);
        drop(sync);
        assert!(w.close().is_none());
    }
}
