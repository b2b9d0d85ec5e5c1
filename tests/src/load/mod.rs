//! Measurement helpers for the load generator: latency percentiles, server memory, file limits.

pub mod rss;
pub mod stats;

/// Raises this process's open-file soft limit to its hard limit, so thousands of sessions fit.
/// Returns the limit now in force (None when unlimited).
pub fn raise_file_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit)?;
    Ok(limit.current)
}
