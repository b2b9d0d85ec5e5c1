//! Process resource limits.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard limit and returns the new soft limit.
///
/// Each SMTP connection holds a socket and, during DATA, a spool file; the usual soft limit of
/// 1024 would cap the gateway well below `limits.max_connections`. Raising the soft limit up
/// to the hard one needs no privilege.
pub fn raise_open_files() -> std::io::Result<Option<u64>> {
    let current = getrlimit(Resource::Nofile);
    if current.current == current.maximum {
        return Ok(current.current);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: current.maximum,
            maximum: current.maximum,
        },
    )?;
    Ok(current.maximum)
}
