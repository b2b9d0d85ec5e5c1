//! Sampling a server's resident memory from /proc while a load runs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Memory figures of a process (or a sum over processes), in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Current resident set size (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set size over the process's life (VmHWM).
    pub hwm_kib: u64,
    /// Proportional set size (Pss from /proc/PID/smaps_rollup): shared pages divided among the
    /// processes sharing them, so sums over a process tree stay honest. 0 when unreadable.
    pub pss_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`, and its Pss when the kernel exposes it.
pub fn read_status(pid: u32) -> io::Result<MemoryStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut status = parse_status(&text);
    if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        status.pss_kib = kib_field(&rollup, "Pss:");
    }
    Ok(status)
}

/// Sums VmRSS and VmHWM over `pids`, and over all their descendants when `children` is set (a
/// multi-process server such as Postfix, whose smtpd processes are children of master). Shared pages
/// are counted once per process, so the sum overstates what a multi-process server really uses.
pub fn read_total(pids: &[u32], children: bool) -> io::Result<MemoryStatus> {
    let mut total = MemoryStatus::default();
    for pid in pids {
        let status = read_status(*pid)?;
        total.add(status);
        if children {
            for child in descendants(*pid) {
                // A child may exit between listing and reading: it then no longer counts.
                if let Ok(status) = read_status(child) {
                    total.add(status);
                }
            }
        }
    }
    Ok(total)
}

/// All descendants of `pid`, from /proc/PID/task/TID/children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(parent) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

impl MemoryStatus {
    fn add(&mut self, other: MemoryStatus) {
        self.rss_kib += other.rss_kib;
        self.hwm_kib += other.hwm_kib;
        self.pss_kib += other.pss_kib;
    }
}

fn parse_status(text: &str) -> MemoryStatus {
    MemoryStatus {
        rss_kib: kib_field(text, "VmRSS:"),
        hwm_kib: kib_field(text, "VmHWM:"),
        pss_kib: 0,
    }
}

/// The number after `name` on its line ("VmRSS:   1234 kB"), 0 when absent.
fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

/// What a [`RssWatcher`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssReport {
    /// Summed VmRSS when watching started.
    pub start_kib: u64,
    /// Largest summed VmRSS sampled during the run.
    pub peak_kib: u64,
    /// Summed VmRSS when watching stopped.
    pub end_kib: u64,
    /// Summed VmHWM when watching stopped (includes peaks between samples, and before the run).
    pub hwm_kib: u64,
    /// Largest summed Pss sampled during the run.
    pub peak_pss_kib: u64,
}

/// Samples the summed RSS of some processes at a fixed interval until stopped.
#[derive(Debug)]
pub struct RssWatcher {
    pids: Vec<u32>,
    children: bool,
    start_kib: u64,
    peak: Arc<AtomicU64>,
    peak_pss: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RssWatcher {
    /// Starts sampling `pids` (with their descendants if `children`) every `interval`; fails if a
    /// process cannot be read now.
    pub fn start(pids: Vec<u32>, children: bool, interval: Duration) -> io::Result<Self> {
        let start = read_total(&pids, children)?;
        let start_kib = start.rss_kib;
        let peak = Arc::new(AtomicU64::new(start.rss_kib));
        let peak_pss = Arc::new(AtomicU64::new(start.pss_kib));
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn({
            let pids = pids.clone();
            let peak = Arc::clone(&peak);
            let peak_pss = Arc::clone(&peak_pss);
            async move {
                let mut ticker = tokio::time::interval(interval);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = ticker.tick() => {
                            // A process that exited mid-run simply stops contributing.
                            if let Ok(status) = read_total(&pids, children) {
                                peak.fetch_max(status.rss_kib, Ordering::Relaxed);
                                peak_pss.fetch_max(status.pss_kib, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        });
        Ok(Self {
            pids,
            children,
            start_kib,
            peak,
            peak_pss,
            stop,
            task,
        })
    }

    /// The current summed status, without stopping.
    pub fn now(&self) -> io::Result<MemoryStatus> {
        read_total(&self.pids, self.children)
    }

    /// Stops sampling and reports.
    pub async fn stop(self) -> RssReport {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let last = read_total(&self.pids, self.children).unwrap_or_default();
        RssReport {
            start_kib: self.start_kib,
            peak_kib: self.peak.load(Ordering::Relaxed).max(last.rss_kib),
            end_kib: last.rss_kib,
            hwm_kib: last.hwm_kib,
            peak_pss_kib: self.peak_pss.load(Ordering::Relaxed).max(last.pss_kib),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tgateway\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_status(text),
            MemoryStatus {
                rss_kib: 10240,
                hwm_kib: 20480,
                pss_kib: 0,
            }
        );
    }

    #[test]
    fn counts_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let own = std::process::id();
        assert!(descendants(own).contains(&child.id()));
        let alone = read_total(&[own], false).unwrap();
        let with_children = read_total(&[own], true).unwrap();
        assert!(with_children.rss_kib > alone.rss_kib);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reads_own_status() {
        let status = read_status(std::process::id()).unwrap();
        assert!(status.rss_kib > 0 && status.hwm_kib >= status.rss_kib);
    }
}
