//! The server's root folder: every path a client names must resolve inside
//! it.
//!
//! Paths are canonicalised before the check, so `..` and symbolic links that
//! lead out of the root are refused like any other outside path. The check
//! runs at each call (not once at startup for a list of files), so a link
//! changed while the server runs is judged by where it points now.

use std::path::{Component, Path, PathBuf};

/// Why a client's path was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path was empty.
    #[error("the path is empty; name a task file inside {root}")]
    Empty {
        /// The root folder.
        root: String,
    },
    /// The path does not exist (or cannot be reached).
    #[error("{path}: {source}; name an existing task file inside {root}")]
    Missing {
        /// The path as given.
        path: String,
        /// The root folder.
        root: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The path resolves outside the root (directly, by `..` or by a link).
    #[error(
        "{path}: resolves to {resolved}, outside the server's root folder {root}; only files inside it can be used (start the server with --root to change it)"
    )]
    Outside {
        /// The path as given.
        path: String,
        /// Where it led.
        resolved: String,
        /// The root folder.
        root: String,
    },
    /// The path is a folder or something else that is not a regular file.
    #[error("{path}: not a regular file; name a task file such as task.md")]
    NotAFile {
        /// The path as given.
        path: String,
    },
}

/// The canonical root folder.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// Canonicalise `dir` (which must exist) as the root.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        Ok(Self(dir.canonicalize()?))
    }

    /// The canonical root folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Resolve a client's `path` (relative to the root, or absolute) to the
    /// canonical path of an existing regular file inside the root.
    pub fn resolve_file(&self, path: &str) -> Result<PathBuf, PathError> {
        let root = self.0.display().to_string();
        if path.trim().is_empty() {
            return Err(PathError::Empty { root });
        }
        let joined = self.0.join(path);
        let resolved = joined.canonicalize().map_err(|source| PathError::Missing {
            path: path.to_owned(),
            root: root.clone(),
            source,
        })?;
        if !resolved.starts_with(&self.0) {
            return Err(PathError::Outside {
                path: path.to_owned(),
                resolved: resolved.display().to_string(),
                root,
            });
        }
        if !resolved.is_file() {
            return Err(PathError::NotAFile {
                path: path.to_owned(),
            });
        }
        Ok(resolved)
    }

    /// `path` (canonical, inside the root) relative to the root, with `/`
    /// separators: the form used in resource URIs.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.0).ok()?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
                _ => return None,
            }
        }
        Some(parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("sub")).expect("mkdir");
        std::fs::write(root_dir.join("task.md"), "- [ ] a\n").expect("write");
        std::fs::write(root_dir.join("sub/t.md"), "- [ ] a\n").expect("write");
        std::fs::write(dir.path().join("secret.md"), "- [ ] a\n").expect("write");
        let root = Root::new(&root_dir).expect("root");
        (dir, root)
    }

    #[test]
    fn relative_and_absolute_paths_inside_the_root_resolve() {
        let (_dir, root) = setup();
        let a = root.resolve_file("task.md").expect("relative");
        let b = root
            .resolve_file(root.path().join("sub/../task.md").to_str().expect("utf-8"))
            .expect("absolute");
        assert_eq!(a, b);
        assert_eq!(
            root.relative(&root.resolve_file("sub/t.md").expect("sub"))
                .as_deref(),
            Some("sub/t.md")
        );
    }

    #[test]
    fn dot_dot_and_absolute_paths_outside_are_refused() {
        let (dir, root) = setup();
        for p in [
            "../secret.md",
            dir.path().join("secret.md").to_str().expect("utf-8"),
        ] {
            let err = root.resolve_file(p).expect_err("outside");
            assert!(matches!(err, PathError::Outside { .. }), "{p}: {err}");
            assert!(err.to_string().contains("outside the server's root folder"));
        }
    }

    #[test]
    fn a_symlink_leading_out_is_refused_and_one_staying_in_is_followed() {
        let (dir, root) = setup();
        std::os::unix::fs::symlink(dir.path().join("secret.md"), root.path().join("out.md"))
            .expect("symlink");
        std::os::unix::fs::symlink(dir.path(), root.path().join("up")).expect("symlink");
        std::os::unix::fs::symlink(root.path().join("task.md"), root.path().join("in.md"))
            .expect("symlink");
        assert!(matches!(
            root.resolve_file("out.md"),
            Err(PathError::Outside { .. })
        ));
        assert!(matches!(
            root.resolve_file("up/secret.md"),
            Err(PathError::Outside { .. })
        ));
        assert_eq!(
            root.resolve_file("in.md").expect("inside"),
            root.path().join("task.md")
        );
    }

    #[test]
    fn empty_missing_and_folder_paths_are_refused_with_what_to_do() {
        let (_dir, root) = setup();
        assert!(matches!(
            root.resolve_file(" "),
            Err(PathError::Empty { .. })
        ));
        let missing = root.resolve_file("nope.md").expect_err("missing");
        assert!(missing.to_string().starts_with("nope.md: "), "{missing}");
        assert!(matches!(
            root.resolve_file("sub"),
            Err(PathError::NotAFile { .. })
        ));
    }
}
