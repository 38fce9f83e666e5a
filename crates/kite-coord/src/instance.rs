//! One daemon per home. The home directory is made private (0700) so only its user can reach the
//! socket; a pidfile held with an exclusive `flock` marks the running daemon, and a second daemon
//! is refused with the pid of the first. The lock dies with the process, so a daemon killed with
//! -9 never leaves a stale lock behind; a stale socket file is removed at start.

use crate::DaemonError;
use rustix::fs::{flock, FlockOperation};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Holds the pidfile lock for as long as it lives.
pub struct InstanceGuard {
    file: File,
    path: PathBuf,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs::remove_file(&self.path);
    }
}

/// Creates `home` with mode 0700 (tightening it if it exists) and returns it.
pub fn private_dir(home: &Path) -> Result<(), DaemonError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(DaemonError::io(format!("cannot create {}", home.display())))?;
    fs::set_permissions(home, fs::Permissions::from_mode(0o700))
        .map_err(DaemonError::io(format!("cannot make {} private", home.display())))
}

/// Takes the home's pidfile lock or says who holds it.
pub fn acquire(home: &Path) -> Result<InstanceGuard, DaemonError> {
    let path = crate::Home::new(home).pidfile();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(DaemonError::io(format!("cannot open {}", path.display())))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(DaemonError::AlreadyRunning {
            pid: if pid.trim().is_empty() { "unknown".into() } else { pid.trim().to_string() },
            home: home.display().to_string(),
        });
    }
    file.set_len(0).map_err(DaemonError::io("cannot write the pidfile"))?;
    file.rewind().map_err(DaemonError::io("cannot write the pidfile"))?;
    write!(file, "{}", std::process::id()).map_err(DaemonError::io("cannot write the pidfile"))?;
    file.flush().map_err(DaemonError::io("cannot write the pidfile"))?;
    Ok(InstanceGuard { file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_guard_on_the_same_home_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        private_dir(&home).unwrap();
        let mode = fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let _g = acquire(&home).unwrap();
        match acquire(&home) {
            Err(DaemonError::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("second guard acquired"),
        }
    }
}
