//! The master's pidfile: refuses to start over a live master, replaces a stale file, writes
//! atomically (temp file + rename), and removes the file only if it still holds our pid.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum PidfileError {
    /// Another live process owns the pidfile.
    Running {
        pid: i32,
        path: PathBuf,
    },
    NoDirectory(PathBuf),
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for PidfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfileError::Running { pid, path } => write!(
                f,
                "Already running on PID {pid} (pidfile {}); stop that server first, or remove the file if that process is not ferrocorn",
                path.display()
            ),
            PidfileError::NoDirectory(dir) => write!(f, "{} doesn't exist. Can't create pidfile.", dir.display()),
            PidfileError::Io { path, source } => write!(f, "cannot write pidfile {}: {source}", path.display()),
        }
    }
}

/// `name` + `suffix` (`app.pid` -> `app.pid.2` for a master started by USR2).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub struct Pidfile {
    path: PathBuf,
    pid: i32,
}

/// The pid recorded in `path` if that process is alive.
fn live_owner(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

impl Pidfile {
    pub fn create(path: &Path, pid: i32) -> Result<Pidfile, PidfileError> {
        if let Some(owner) = live_owner(path) {
            if owner != pid {
                return Err(PidfileError::Running { pid: owner, path: path.to_path_buf() });
            }
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(PidfileError::NoDirectory(dir));
        }
        let io = |source| PidfileError::Io { path: path.to_path_buf(), source };
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        tmp.write_all(format!("{pid}\n").as_bytes()).map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(Pidfile { path: path.to_path_buf(), pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it still names this process.
    pub fn unlink(&self) {
        let ours = std::fs::read_to_string(&self.path).ok().and_then(|t| t.trim().parse::<i32>().ok()) == Some(self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Moves the pidfile to `path` (a promoted USR2 master takes over the original name).
    pub fn rename(&mut self, path: &Path) -> Result<(), PidfileError> {
        self.unlink();
        let new = Pidfile::create(path, self.pid)?;
        *self = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_file_is_replaced_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        // A pid that cannot be alive.
        std::fs::write(&path, "999999999\n").unwrap();
        let me = std::process::id() as i32;
        let p = Pidfile::create(&path, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        // The file now names a live process (us), so another pid is refused.
        assert!(matches!(Pidfile::create(&path, me + 1), Err(PidfileError::Running { .. })));
        p.unlink();
        assert!(!path.exists());
    }

    #[test]
    fn unlink_leaves_a_file_that_names_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.pid");
        let p = Pidfile::create(&path, 12345).unwrap();
        std::fs::write(&path, "54321\n").unwrap();
        p.unlink();
        assert!(path.exists());
    }

    #[test]
    fn suffix() {
        assert_eq!(with_suffix(Path::new("/run/app.pid"), ".2"), PathBuf::from("/run/app.pid.2"));
    }
}
