//! The deposit side of `gateway run`: the job queues (embedded or RabbitMQ), the ITI-41 client,
//! the in-process DMP simulator of the embedded default, and the deposit worker.
//!
//! The pipeline enqueues one job per document; the worker deposits it and reports every attempt
//! and the final state to an [`OutcomeSink`] (the pipeline's, which writes the ledger) before it
//! acks, so a crash replays a job rather than losing its outcome.

pub mod config;
pub mod status;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dmp_connector::queue::QueueError;
use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};
use dmp_connector::queue::any::AnyQueue;
use dmp_connector::queue::embedded::SqliteQueue;
use dmp_connector::sim::{self, Faults, SimConfig, SimHandle};
use dmp_connector::worker::{OutcomeSink, Worker, WorkerConfig};
use dmp_connector::xds::client::XdsClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{DmpConfig, QueueBackend, QueueConfig, resolve};

/// Why the deposit side could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DepositSetupError {
    /// A queue could not be opened or reached.
    #[error("{name} queue: {source}")]
    Queue {
        /// Which queue (`deposits`, `relay`).
        name: &'static str,
        /// The backend's error.
        source: QueueError,
    },
    /// The queue directory could not be created.
    #[error("cannot create the queue directory {}: {source}", path.display())]
    QueueDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The in-process simulator could not start.
    #[error("DMP simulator: {0}")]
    Simulator(#[from] dmp_connector::sim::SimError),
    /// The ITI-41 client could not be built (certificates, keys).
    #[error("DMP client: {0}")]
    Client(#[from] dmp_connector::xds::client::ClientError),
}

/// Who opens a queue: the gateway that owns it, or a tool that only looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// `gateway run`: the sole owner of an embedded queue (releases a crashed run's leases).
    Owner,
    /// `gateway queue ...`: reads beside a running gateway, changes nothing by opening.
    Observer,
}

/// Opens the queue `name` (`deposits` or `relay`) on the configured backend.
pub async fn open_queue(
    config: &QueueConfig,
    name: &'static str,
    config_dir: &Path,
    opener: Opener,
) -> Result<AnyQueue, DepositSetupError> {
    let queue_error = |source| DepositSetupError::Queue { name, source };
    match config.backend {
        QueueBackend::Embedded => {
            let dir = config.dir_in(config_dir);
            std::fs::create_dir_all(&dir).map_err(|source| DepositSetupError::QueueDir {
                path: dir.clone(),
                source,
            })?;
            let path = dir.join(format!("{name}.sqlite"));
            let queue = tokio::task::spawn_blocking(move || SqliteQueue::open(&path))
                .await
                .map_err(|error| queue_error(QueueError::Task(error.to_string())))?
                .map_err(queue_error)?;
            // One gateway process owns the state directory (the spool lock): leases still
            // held were held by a run that crashed, so its jobs can go at once.
            if opener == Opener::Owner {
                let released = queue.release_leases().await.map_err(queue_error)?;
                if released > 0 {
                    tracing::info!(
                        queue = name,
                        released,
                        "jobs leased by the previous run released"
                    );
                }
            }
            Ok(AnyQueue::Embedded(queue))
        }
        QueueBackend::Amqp => {
            let mut amqp = AmqpConfig::new(
                config.amqp_uri.clone(),
                format!("{}-{name}", config.amqp_prefix),
            );
            amqp.prefetch = config.amqp_prefetch;
            Ok(AnyQueue::Amqp(
                AmqpQueue::connect(amqp).await.map_err(queue_error)?,
            ))
        }
    }
}

/// The running deposit side.
pub struct DepositService {
    simulator: Option<SimHandle>,
    worker: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl DepositService {
    /// Starts the simulator (when configured) and the deposit worker on `queue`.
    pub async fn start<S: OutcomeSink>(
        config: &DmpConfig,
        queue: Arc<AnyQueue>,
        sink: Arc<S>,
        config_dir: &Path,
    ) -> Result<DepositService, DepositSetupError> {
        let simulator = if config.simulator {
            let handle = sim::start(SimConfig {
                listen: config.simulator_listen,
                store: resolve(config_dir, &config.simulator_store),
                tls_certificate: resolve(config_dir, &config.simulator_certificate),
                tls_key: resolve(config_dir, &config.simulator_key),
                client_ca: resolve(config_dir, &config.simulator_client_ca),
                crls: config
                    .simulator_crls
                    .iter()
                    .map(|crl| resolve(config_dir, crl))
                    .collect(),
                environment: sim::Environment::Test,
                faults: Faults::default(),
                require_submission_signature: false,
            })
            .await?;
            tracing::info!(endpoint = %handle.endpoint(), "dmp simulator listening");
            Some(handle)
        } else {
            None
        };
        let endpoint = match &simulator {
            Some(handle) => handle.endpoint(),
            None => config.endpoint.clone(),
        };
        let client = XdsClient::new(config.client_config(endpoint.clone(), config_dir))?;
        tracing::info!(%endpoint, concurrency = config.concurrency, "deposit worker starting");
        let (stop, stopped) = watch::channel(false);
        let worker = Worker::new(
            queue,
            Arc::new(client),
            sink,
            WorkerConfig {
                concurrency: config.concurrency,
                // Longer than one attempt with its timeouts, so a live attempt keeps its lease.
                lease_for: Duration::from_secs(
                    config.connect_timeout_secs + config.request_timeout_secs + 60,
                ),
                poll: Duration::from_millis(500),
                policy: config.retry_policy(),
                seed: None,
                remember_deposited: 10_000,
            },
        );
        let worker = tokio::spawn(worker.run(stopped));
        Ok(DepositService {
            simulator,
            worker,
            stop,
        })
    }

    /// Stops taking jobs, waits for the deposits in flight, then stops the simulator.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
        if let Some(simulator) = self.simulator {
            simulator.shutdown().await;
        }
    }
}
