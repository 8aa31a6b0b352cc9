//! Helpers shared by the test modules: calling the exports the way C does.

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::Mutex;

use mdbatch::*;

/// A task file in a fresh temp folder (the run writes `.mdbatch/` beside it).
pub struct TaskFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TaskFile {
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("task.md");
        std::fs::write(&path, text).expect("write task file");
        Self { dir, path }
    }

    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read task file")
    }

    pub fn c_path(&self) -> CString {
        CString::new(self.path.to_str().expect("UTF-8 temp path")).expect("no NUL")
    }
}

/// Takes an error's message and frees it.
pub fn take_error(err: *mut mdbatch_error) -> String {
    assert!(!err.is_null(), "a failure must come with an error object");
    let message = unsafe { CStr::from_ptr(mdbatch_error_message(err)) }
        .to_str()
        .expect("UTF-8 message")
        .to_string();
    unsafe { mdbatch_error_free(err) };
    message
}

/// Takes a returned string and frees it with `mdbatch_string_free`.
pub fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }
        .to_str()
        .expect("UTF-8")
        .to_string();
    unsafe { mdbatch_string_free(s) };
    text
}

/// Parses `text`, panicking with the library's message on failure.
pub fn parse(text: &str) -> *mut mdbatch_doc {
    let mut doc = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe { mdbatch_doc_parse(text.as_ptr().cast(), text.len(), &mut doc, &mut err) };
    if status != mdbatch_status::Ok {
        panic!("parse failed: {status:?}: {}", take_error(err));
    }
    assert!(err.is_null());
    doc
}

/// The plan JSON of `doc` with `options` (None = NULL).
pub fn plan_json(
    doc: *const mdbatch_doc,
    options: Option<&str>,
) -> Result<String, (mdbatch_status, String)> {
    let options = options.map(|o| CString::new(o).unwrap());
    let mut out = ptr::null_mut();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_doc_plan_json(
            doc,
            options.as_ref().map_or(ptr::null(), |o| o.as_ptr()),
            &mut out,
            &mut err,
        )
    };
    if status == mdbatch_status::Ok {
        Ok(take_string(out))
    } else {
        assert!(out.is_null(), "no output on failure");
        Err((status, take_error(err)))
    }
}

/// Collects events (as parsed JSON) and the threads they arrived on.
#[derive(Default)]
pub struct Events {
    pub items: Mutex<Vec<serde_json::Value>>,
    pub threads: Mutex<Vec<std::thread::ThreadId>>,
}

impl Events {
    pub fn of_type(&self, ty: &str) -> Vec<serde_json::Value> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == ty)
            .cloned()
            .collect()
    }

    pub fn types(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

/// An `mdbatch_event_fn` collecting into an [`Events`] passed as user_data.
pub unsafe extern "C-unwind" fn collect_event(user_data: *mut c_void, event_json: *const c_char) {
    let events = unsafe { &*(user_data as *const Events) };
    let json = unsafe { CStr::from_ptr(event_json) }
        .to_str()
        .expect("UTF-8 event");
    let value: serde_json::Value = serde_json::from_str(json).expect("event is JSON");
    events.items.lock().unwrap().push(value);
    events
        .threads
        .lock()
        .unwrap()
        .push(std::thread::current().id());
}

/// Runs `file` with `options` and `runner`, collecting events; returns the
/// status and the error message (if any).
pub fn run_file(
    file: &TaskFile,
    options: &str,
    runner: Option<&mdbatch_runner>,
    events: &Events,
) -> (mdbatch_status, Option<String>) {
    let options = CString::new(options).unwrap();
    let mut err = ptr::null_mut();
    let status = unsafe {
        mdbatch_run_file(
            file.c_path().as_ptr(),
            options.as_ptr(),
            runner.map_or(ptr::null(), |r| r as *const _),
            Some(collect_event),
            events as *const Events as *mut c_void,
            &mut err,
        )
    };
    let message = (status != mdbatch_status::Ok).then(|| take_error(err));
    (status, message)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The folder holding the freshest `libmdbatch.so` of this build profile:
/// `target/<profile>/deps` (next to this test binary) or `target/<profile>`;
/// builds it with `cargo build -p batch-ffi` when neither has it.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps folder").to_path_buf();
    let profile = deps.parent().expect("profile folder").to_path_buf();
    let find = || {
        [deps.clone(), profile.clone()]
            .into_iter()
            .filter_map(|dir| {
                let modified = std::fs::metadata(dir.join("libmdbatch.so"))
                    .and_then(|m| m.modified())
                    .ok()?;
                Some((modified, dir))
            })
            .max_by_key(|(modified, _)| *modified)
            .map(|(_, dir)| dir)
    };
    if let Some(dir) = find() {
        return dir;
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let status = Command::new(cargo)
        .args(["build", "-p", "batch-ffi"])
        .current_dir(repo_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p batch-ffi failed");
    find().expect("libmdbatch.so after cargo build -p batch-ffi")
}
