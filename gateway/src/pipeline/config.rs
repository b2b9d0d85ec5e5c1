//! The `[pipeline]` configuration section: how many end-of-DATA checks run at once.

use serde::Deserialize;

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Messages checked at once (S/MIME, documents); 0 = one per CPU.
    pub workers: usize,
    /// Messages that may wait for a checking slot; beyond, `451 4.3.2` at once.
    pub max_waiting: usize,
    /// How long a message waits for a slot before `451 4.3.2`.
    pub max_wait_secs: u64,
    /// How often messages with jobs still open are compared with the ledger (final states
    /// recorded by another node of a multi-node setup, jobs whose enqueue failed).
    pub sweep_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            max_waiting: 64,
            max_wait_secs: 30,
            sweep_secs: 10,
        }
    }
}

impl PipelineConfig {
    /// The number of checking slots.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers > 1024 || self.max_waiting > 100_000 {
            return Err(
                "pipeline.workers must be <= 1024 and pipeline.max_waiting <= 100000".into(),
            );
        }
        if self.max_wait_secs == 0 || self.sweep_secs == 0 {
            return Err("pipeline.max_wait_secs and pipeline.sweep_secs must be > 0".into());
        }
        Ok(())
    }
}
