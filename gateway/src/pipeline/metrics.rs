//! Counters of what the pipeline did, for `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The pipeline's counters; cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    accepted_bytes: AtomicU64,
    /// Refusals by SMTP reply code and enhanced code, e.g. `("550", "5.7.1")`.
    rejected: Mutex<BTreeMap<(String, String), u64>>,
    deposited: AtomicU64,
    deposit_dead: AtomicU64,
    deposit_retries: AtomicU64,
    relayed: AtomicU64,
    relay_dead: AtomicU64,
    relay_retries: AtomicU64,
    notifications: AtomicU64,
    finished: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A document is in the DMP.
    Deposited,
    /// A deposit was given up.
    DepositDead,
    /// A deposit attempt failed and will be retried.
    DepositRetry,
    /// A relay reached its next hop.
    Relayed,
    /// A relay was given up.
    RelayDead,
    /// A relay attempt failed and will be retried.
    RelayRetry,
    /// A notification (MDN, DSN, error mail) was delivered.
    Notification,
    /// A message's every job is final and its spool file removed.
    Finished,
}

impl Metrics {
    /// A message was accepted (`250`).
    pub fn accepted(&self, size: u64) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.accepted_bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// A message was refused with `code` and `enhanced` (e.g. `550`, `5.7.1`).
    pub fn rejected(&self, code: u16, enhanced: &str) {
        let mut rejected = self
            .rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *rejected
            .entry((code.to_string(), enhanced.to_owned()))
            .or_default() += 1;
    }

    /// Bumps one counter.
    pub fn count(&self, what: Count) {
        let counter = match what {
            Count::Deposited => &self.deposited,
            Count::DepositDead => &self.deposit_dead,
            Count::DepositRetry => &self.deposit_retries,
            Count::Relayed => &self.relayed,
            Count::RelayDead => &self.relay_dead,
            Count::RelayRetry => &self.relay_retries,
            Count::Notification => &self.notifications,
            Count::Finished => &self.finished,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        counter(
            out,
            "gateway_messages_accepted_total",
            "Messages answered 250.",
            get(&self.accepted),
        );
        counter(
            out,
            "gateway_message_bytes_accepted_total",
            "Bytes of the messages answered 250.",
            get(&self.accepted_bytes),
        );
        out.push_str(
            "# HELP gateway_messages_rejected_total Messages refused at end of DATA, by reply.\n",
        );
        out.push_str("# TYPE gateway_messages_rejected_total counter\n");
        let rejected = self
            .rejected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for ((code, enhanced), count) in rejected.iter() {
            out.push_str(&format!(
                "gateway_messages_rejected_total{{code=\"{code}\",enhanced=\"{enhanced}\"}} {count}\n"
            ));
        }
        drop(rejected);
        labelled(
            out,
            "gateway_deposits_total",
            "Deposit outcomes.",
            &[
                ("deposited", get(&self.deposited)),
                ("retried", get(&self.deposit_retries)),
                ("dead_lettered", get(&self.deposit_dead)),
            ],
        );
        labelled(
            out,
            "gateway_relays_total",
            "Relay outcomes.",
            &[
                ("relayed", get(&self.relayed)),
                ("retried", get(&self.relay_retries)),
                ("dead_lettered", get(&self.relay_dead)),
            ],
        );
        counter(
            out,
            "gateway_notifications_delivered_total",
            "MDNs, DSNs and error mails delivered.",
            get(&self.notifications),
        );
        counter(
            out,
            "gateway_messages_finished_total",
            "Messages whose every job is final (spool file removed).",
            get(&self.finished),
        );
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    out.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
    ));
}

fn labelled(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
    for (outcome, value) in values {
        out.push_str(&format!("{name}{{outcome=\"{outcome}\"}} {value}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_prometheus_text() {
        let metrics = Metrics::default();
        metrics.accepted(100);
        metrics.rejected(550, "5.7.1");
        metrics.rejected(550, "5.7.1");
        metrics.count(Count::Deposited);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("gateway_messages_accepted_total 1\n"));
        assert!(out.contains("gateway_message_bytes_accepted_total 100\n"));
        assert!(
            out.contains("gateway_messages_rejected_total{code=\"550\",enhanced=\"5.7.1\"} 2\n")
        );
        assert!(out.contains("gateway_deposits_total{outcome=\"deposited\"} 1\n"));
        assert!(out.contains("# TYPE gateway_relays_total counter\n"));
    }
}
