//! What runs behind the listeners: the ledger, the CRL fetcher, the job queues, the pipeline,
//! the deposit worker (with the in-process DMP simulator of the embedded default), the relay
//! worker and the sweeper. Started before the first connection is accepted, stopped after the
//! last session ended.

use std::sync::Arc;

use smtp_in::spool::Spool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Prepared, ServeError};
use crate::config::Config;
use crate::deposit::{self, DepositService, QueueBackend};
use crate::ledger::Ledger;
use crate::pipeline::sinks::{DepositOutcomes, RelayOutcomes, SpoolSource};
use crate::pipeline::{Pipeline, PipelineParts};
use crate::relay::{RelayWorker, RelayWorkerConfig};
use crate::trust::CrlFetcher;

/// The running services.
pub struct Services {
    /// The pipeline, the listeners' message handler.
    pub pipeline: Arc<Pipeline>,
    deposits: Option<DepositService>,
    relay_worker: JoinHandle<()>,
    relay_stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

impl Services {
    /// Opens and starts everything; resumes the messages left in the spool.
    pub async fn start(
        config: &Config,
        prepared: &Prepared,
        spool: Spool,
    ) -> Result<Services, ServeError> {
        let dir = &config.directory;
        let ledger = Arc::new(
            Ledger::open(&config.ledger, dir)
                .await
                .map_err(|source| ServeError::Ledger { source })?,
        );
        tracing::info!(backend = ?config.ledger.backend, "ledger open");
        let mut background = Vec::new();
        background.extend(ledger.spawn_checkpoint_timer());

        let fetcher = CrlFetcher::from_config(prepared.smime().trust(), &config.trust, dir)
            .map_err(|source| ServeError::Service {
                what: "CRL fetcher",
                detail: source.to_string(),
            })?;
        if let Some(fetcher) = fetcher {
            background.push(Arc::new(fetcher).spawn());
        }

        let service_error = |what: &'static str| {
            move |error: deposit::DepositSetupError| ServeError::Service {
                what,
                detail: error.to_string(),
            }
        };
        let deposit_queue = if config.dmp.enabled {
            Some(Arc::new(
                deposit::open_queue(&config.queue, "deposits", dir, deposit::Opener::Owner)
                    .await
                    .map_err(service_error("deposit queue"))?,
            ))
        } else {
            tracing::warn!("[dmp] enabled = false: documents are checked but not deposited");
            None
        };
        let relay_queue = Arc::new(
            deposit::open_queue(&config.queue, "relay", dir, deposit::Opener::Owner)
                .await
                .map_err(service_error("relay queue"))?,
        );
        tracing::info!(backend = ?config.queue.backend, "job queues open");

        let relayer = prepared.relayer().clone();
        let pipeline = Pipeline::new(PipelineParts {
            verifier: prepared.smime().clone(),
            policy: config.documents.clone(),
            whitelist: prepared.whitelist().cloned(),
            ledger,
            config: config.pipeline.clone(),
            deposits: deposit_queue.clone(),
            relays: Arc::clone(&relay_queue),
            relayer: Arc::clone(&relayer),
            relay_config: config.relay.clone(),
            shared_queue: config.queue.backend == QueueBackend::Amqp,
            spool,
            hostname: config.server.hostname.clone(),
        });
        pipeline
            .resume_spooled()
            .await
            .map_err(|source| ServeError::Spool {
                path: config.server.spool_dir.clone(),
                source,
            })?;

        let deposits = match deposit_queue {
            Some(queue) => Some(
                DepositService::start(
                    &config.dmp,
                    queue,
                    Arc::new(DepositOutcomes(Arc::clone(&pipeline))),
                    dir,
                )
                .await
                .map_err(service_error("DMP connector"))?,
            ),
            None => None,
        };
        let (relay_stop, relay_stopped) = watch::channel(false);
        let relay_worker = RelayWorker::new(
            relay_queue,
            relayer,
            Arc::new(SpoolSource(Arc::clone(&pipeline))),
            Arc::new(RelayOutcomes(Arc::clone(&pipeline))),
            RelayWorkerConfig::from_config(&config.relay),
        );
        let relay_worker = tokio::spawn(relay_worker.run(relay_stopped));
        background.push(pipeline.spawn_sweeper());
        Ok(Services {
            pipeline,
            deposits,
            relay_worker,
            relay_stop,
            background,
        })
    }

    /// Adds a task to stop with the services.
    pub fn add_background(&mut self, task: JoinHandle<()>) {
        self.background.push(task);
    }

    /// Stops the workers (waiting for the jobs in flight) and the background tasks, and signs
    /// a last ledger checkpoint.
    pub async fn stop(self) {
        let _ = self.relay_stop.send(true);
        if let Some(deposits) = self.deposits {
            deposits.stop().await;
        }
        let _ = self.relay_worker.await;
        for task in self.background {
            task.abort();
        }
        if let Err(error) = self.pipeline.ledger().checkpoint().await {
            tracing::warn!(%error, "last ledger checkpoint failed");
        }
        tracing::info!(
            open = self.pipeline.open_messages(),
            "services stopped; open messages resume at the next start"
        );
    }
}
