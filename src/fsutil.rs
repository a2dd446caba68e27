//! Atomic file replacement, the one routine behind every tmp-and-rename write (stores, caches,
//! converted weights, bundles, downloads): a `tempfile::NamedTempFile` in the target's folder,
//! written, fsync'd, renamed over the target (`persist`), then the folder fsync'd, so that a
//! crash leaves either the old or the new file and never a torn one. A failed write removes the
//! temporary file. A leaf: std, `tempfile` and `anyhow` only.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |f| {
        f.write_all(bytes)?;
        Ok(())
    })
}

/// Replace `path` with what `write` puts into the (empty) temporary file. An error from `write`
/// (returned as it is) leaves `path` as it was.
pub fn replace_with(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut p = Pending::create(path)?;
    write(p.file())?;
    p.persist()
}

/// Replace `path` through a writer that takes a path (`safetensors::save`, ...): `write` gets the
/// temporary file's path and may recreate the file there.
pub fn replace_via_path(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let p = Pending::create(path)?;
    write(p.tmp.path())?;
    p.persist()
}

/// A replacement of `path` being written over time (an upload): a temporary file beside it,
/// removed if this is dropped before `persist`.
pub struct Pending {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl Pending {
    /// An empty temporary file in `path`'s folder (created if missing), named after it
    /// (`.<name>.<random>.tmp`), with the permissions a plain `File::create` would give.
    pub fn create(path: &Path) -> Result<Pending> {
        let dir = folder_of(path);
        let name = path
            .file_name()
            .with_context(|| format!("{} has no file name", path.display()))?
            .to_string_lossy();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let prefix = format!(".{name}.");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Like `File::create`: 0o666 less the umask (tempfile's default is owner-only).
            b.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = b
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(Pending {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The temporary file, to write into.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// fsync the temporary file, rename it over the target, fsync the folder.
    pub fn persist(self) -> Result<()> {
        let Pending { path, tmp } = self;
        // `replace_via_path` writers may have recreated the file at the temporary path: sync
        // what is there now, not the handle opened first.
        File::open(tmp.path())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming to {}", path.display()))?;
        sync_dir(&path)
    }
}

/// fsync the folder holding `path`, so that a new name in it survives a power loss (a no-op
/// where folders cannot be opened as files).
pub fn sync_dir(path: &Path) -> Result<()> {
    sync_folder(folder_of(path))
}

/// The folder holding `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn sync_folder(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("triage-fsutil-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = scratch("replace");
        let p = dir.join("sub").join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_ne!(
                mode & 0o044,
                0,
                "readable like a File::create file: {mode:o}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = scratch("fail");
        let p = dir.join("x.bin");
        write_atomic(&p, b"old").unwrap();
        let r = replace_with(&p, |f| {
            f.write_all(b"half")?;
            anyhow::bail!("disk full")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        replace_via_path(&p, |t| Ok(std::fs::write(t, b"via path")?)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"via path");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
