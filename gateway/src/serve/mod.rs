//! `gateway run`: open the spool, start the SMTP listeners, stop cleanly on SIGTERM/SIGINT.
//!
//! Start-up order matters: everything that can fail because of the configuration or the disk
//! (files, spool, ports) fails before the first connection is accepted, with an error naming
//! what failed.

mod limits;
mod prepare;
mod recovery;
mod services;
mod signals;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use smtp_in::server::{Listener, ListenerConfig, ListenerMode, Shutdown};
use smtp_in::spool::{Spool, SpoolError};
use tokio::task::{Id, JoinError, JoinSet};

use crate::config::{Config, ListenMode};

pub use prepare::{Prepared, prepare};

/// Why the gateway could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The state directory could not be created.
    #[error("cannot create the state directory {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The spool could not be opened or read.
    #[error("spool {}: {source}", path.display())]
    Spool {
        /// The spool directory.
        path: PathBuf,
        /// The spool's error.
        source: SpoolError,
    },
    /// A listening socket could not be opened (port in use, address not local, privilege).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers: {source}")]
    Signals {
        /// The I/O error.
        source: io::Error,
    },
    /// A listener stopped with an error.
    #[error("listener {address} failed: {source}")]
    Listener {
        /// The listener's bound address.
        address: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The ledger could not be opened.
    #[error("ledger: {source}")]
    Ledger {
        /// The ledger's error.
        source: crate::ledger::LedgerError,
    },
    /// A service behind the listeners could not start (queue, DMP connector, CRL fetcher).
    #[error("{what}: {detail}")]
    Service {
        /// Which service.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A listener task panicked or was cancelled.
    #[error("listener {address} stopped abnormally: {source}")]
    ListenerTask {
        /// The listener's bound address.
        address: SocketAddr,
        /// The task's failure.
        source: tokio::task::JoinError,
    },
}

/// Runs the gateway until SIGTERM or SIGINT, then lets open sessions finish within
/// `limits.shutdown_grace` (a second signal cuts the grace short) and returns.
///
/// Every message goes through the [`crate::pipeline`]: checked before `250`, then deposited
/// and relayed by the workers started in [`services::Services`].
pub async fn run(config: Config, prepared: Prepared) -> Result<(), ServeError> {
    let mut signals =
        signals::Signals::install().map_err(|source| ServeError::Signals { source })?;
    match limits::raise_open_files() {
        Ok(limit) => tracing::info!(open_files = limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }

    let state_dir = &config.server.state_dir;
    std::fs::create_dir_all(state_dir).map_err(|source| ServeError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let spool_dir = &config.server.spool_dir;
    let spool_error = |source| ServeError::Spool {
        path: spool_dir.clone(),
        source,
    };
    let spool = Spool::open(spool_dir).map_err(spool_error)?;
    tracing::info!(path = %spool_dir.display(), "spool open");
    recovery::report_pending(&spool).map_err(spool_error)?;
    if let Some(whitelist) = prepared.whitelist() {
        tracing::info!(
            domains = whitelist.domain_count(),
            generated_at = whitelist.generated_at().unwrap_or("unknown"),
            skipped = whitelist.skipped().len(),
            "whitelist loaded"
        );
        // A skipped entry only ever denies; say which, so the operator can fix the list.
        for entry in whitelist.skipped() {
            tracing::warn!(
                index = entry.index,
                domain = entry.domain.as_deref().unwrap_or("(none)"),
                reason = %entry.reason,
                "whitelist entry skipped"
            );
        }
    }

    let mut listeners = Vec::with_capacity(config.listeners.len());
    for settings in &config.listeners {
        let bind_error = |source| ServeError::Bind {
            address: settings.address,
            source,
        };
        // `prepare` built one TLS configuration per requirement in use, so this cannot miss;
        // a missing one would be a bug, reported as a bind failure rather than a panic.
        let tls = prepared
            .tls(settings.require_client_certificate)
            .ok_or_else(|| bind_error(io::Error::other("no TLS configuration prepared")))?;
        let listener = Listener::bind(ListenerConfig {
            address: settings.address,
            mode: match settings.mode {
                ListenMode::StartTls => ListenerMode::StartTls,
                ListenMode::Implicit => ListenerMode::Implicit,
            },
            hostname: config.server.hostname.clone(),
            tls,
            require_client_certificate: settings.require_client_certificate,
            limits: config.limits.clone(),
            whitelist: settings
                .whitelist
                .then(|| prepared.whitelist().cloned())
                .flatten(),
        })
        .map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        tracing::info!(%address, mode = %settings.mode, "listening");
        listeners.push((address, listener));
    }

    let mut services = services::Services::start(&config, &prepared, spool.clone()).await?;
    let shutdown = Shutdown::new();
    let handler = Arc::clone(&services.pipeline);
    let mut tasks = JoinSet::new();
    let mut addresses = HashMap::new();
    for (address, listener) in listeners {
        let (spool, handler, shutdown) = (spool.clone(), handler.clone(), shutdown.clone());
        let task = tasks.spawn(listener.serve(spool, handler, shutdown));
        addresses.insert(task.id(), address);
    }
    let (ready, ready_watch) = tokio::sync::watch::channel(false);
    if config.admin.enabled {
        let (address, task) = crate::admin::spawn(
            config.admin.listen,
            prepared.admin_token().cloned(),
            Arc::clone(&services.pipeline),
            ready_watch,
        )
        .await
        .map_err(|source| ServeError::Bind {
            address: config.admin.listen,
            source,
        })?;
        tracing::info!(%address, "admin endpoint listening (/healthz, /readyz, /metrics)");
        services.add_background(task);
    }
    let _ = ready.send(true);
    tracing::info!(summary = %config.listeners_summary(), "gateway ready");

    let mut failure = None;
    tokio::select! {
        name = signals.next() => tracing::info!(signal = name, "shutting down"),
        Some(ended) = tasks.join_next_with_id() => {
            failure = listener_failure(ended, &addresses);
            tracing::error!("a listener stopped unexpectedly; shutting down");
        }
    }
    let _ = ready.send(false);
    shutdown.begin();
    loop {
        tokio::select! {
            ended = tasks.join_next_with_id() => {
                let Some(ended) = ended else { break };
                if let Some(error) = listener_failure(ended, &addresses) {
                    tracing::error!(%error, "listener failed during shutdown");
                    failure.get_or_insert(error);
                }
            }
            // An operator who signals again does not want to wait for the grace period.
            name = signals.next() => {
                tracing::info!(signal = name, "second signal: closing every session now");
                shutdown.force();
            }
        }
    }
    services.stop().await;
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// The error of a listener task that ended, if it ended badly.
fn listener_failure(
    ended: Result<(Id, io::Result<()>), JoinError>,
    addresses: &HashMap<Id, SocketAddr>,
) -> Option<ServeError> {
    // Every task id was recorded at spawn; the fallback only keeps the error message usable.
    let address_of = |id: Id| {
        addresses
            .get(&id)
            .copied()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    };
    match ended {
        Ok((_, Ok(()))) => None,
        Ok((id, Err(source))) => Some(ServeError::Listener {
            address: address_of(id),
            source,
        }),
        Err(source) => Some(ServeError::ListenerTask {
            address: address_of(source.id()),
            source,
        }),
    }
}
