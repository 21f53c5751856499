//! One writer per run folder. Two runs into the same folder would interleave their checkpoints
//! and logs; a run therefore owns its folder through a lock file holding its process id,
//! refused to others while that process lives and taken over once it is gone (killed, or its
//! machine restarted). Taking a folder over also removes the temporary files a killed writer
//! left behind (see [`crate::atomic`]).
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const LOCK_FILE: &str = ".wcmi.lock";

/// Folders this process holds: its own process id in a lock file is then a live lock, not the
/// stale one of an earlier process that had the same id.
static HELD: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The lock on a run folder, released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    dir: PathBuf,
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 only checks that the process exists (EPERM: it exists, owned by another user).
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

fn held() -> std::sync::MutexGuard<'static, Option<HashSet<PathBuf>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

impl FolderLock {
    /// Creates `dir` if needed and takes it for this process; `what` names the folder in
    /// errors (e.g. "run folder").
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let key = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
        let path = key.join(LOCK_FILE);
        let in_use = |owner: &str| {
            Error::invalid(
                "run_folder",
                format!(
                    "{what} {} is in use by {owner}; wait for it to finish or choose another folder",
                    dir.display()
                ),
            )
        };
        if held().get_or_insert_with(HashSet::new).contains(&key) {
            return Err(in_use("another run of this process"));
        }
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id())
                        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                    held().get_or_insert_with(HashSet::new).insert(key.clone());
                    remove_stale_temporaries(&key);
                    return Ok(Self { dir: key });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    match owner.trim().parse::<u32>() {
                        Ok(pid) if pid != std::process::id() && alive(pid) => {
                            return Err(in_use(&format!("wcmi process {pid}")));
                        }
                        // A stale lock (its owner is gone) or a half-written one.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::io(format!("cannot create {}", path.display()), e));
                }
            }
        }
        Err(in_use("another process that keeps re-creating its lock"))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
        if let Some(set) = held().as_mut() {
            set.remove(&self.dir);
        }
    }
}

/// Removes `.NAME.PID.tmp` files of writers that are no longer running.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_suffix(".tmp")
            .and_then(|stem| stem.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid == std::process::id() || !alive(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_folder_is_refused_and_a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let lock = FolderLock::acquire(&run, "run folder").unwrap();
        let e = FolderLock::acquire(&run, "run folder")
            .unwrap_err()
            .to_string();
        assert!(e.contains("run_folder") && e.contains("in use"), "{e}");
        drop(lock);
        assert!(!run.join(LOCK_FILE).exists());

        // A live process (this test's parent shell is not ours, so use pid 1) holds it.
        std::fs::write(run.join(LOCK_FILE), "1\n").unwrap();
        let e = FolderLock::acquire(&run, "run folder")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wcmi process 1"), "{e}");

        // A dead owner's lock and temporary files are cleaned up.
        let dead = u32::MAX - 1;
        std::fs::write(run.join(LOCK_FILE), format!("{dead}\n")).unwrap();
        let stale = run.join(format!(".model.safetensors.{dead}.tmp"));
        std::fs::write(&stale, b"half").unwrap();
        let _lock = FolderLock::acquire(&run, "run folder").unwrap();
        assert!(!stale.exists());
        let owner = std::fs::read_to_string(run.join(LOCK_FILE)).unwrap();
        assert_eq!(owner.trim(), std::process::id().to_string());
    }
}
