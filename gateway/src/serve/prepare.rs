//! Loading what the configuration points to — TLS identity, client CAs and CRLs, whitelist,
//! S/MIME decryption identity and signer trust — so that a bad file is found by `check-config`
//! and before any socket is opened.

use std::collections::HashMap;
use std::sync::Arc;

use smtp_in::tls::{TlsSettings, server_config};
use smtp_in::whitelist::Whitelist;

use crate::admin::Token;
use crate::config::error_chain;
use crate::config::{Config, ConfigErrors, ConfigProblem, TlsFiles};
use crate::relay::Relayer;
use crate::smime::SmimeVerifier;

/// The loaded material the listeners are built from.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One rustls configuration per value of `require_client_certificate` in use.
    tls: HashMap<bool, Arc<rustls::ServerConfig>>,
    /// The whitelist, when a listener enforces it.
    whitelist: Option<Arc<Whitelist>>,
    /// The S/MIME verifier built from `[smime]` and `[trust]`.
    smime: Arc<SmimeVerifier>,
    /// The relay built from `[relay]` (routes, next-hop TLS).
    relayer: Arc<Relayer>,
    /// The admin endpoint's bearer token, if configured.
    admin_token: Option<Token>,
}

impl Prepared {
    /// The TLS configuration for a listener with this client-certificate requirement.
    pub fn tls(&self, require_client_certificate: bool) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.get(&require_client_certificate).cloned()
    }

    /// The loaded whitelist, if the configuration names one.
    pub fn whitelist(&self) -> Option<&Arc<Whitelist>> {
        self.whitelist.as_ref()
    }

    /// The S/MIME verifier (decryption key, trust anchors, CRLs, sender policies).
    pub fn smime(&self) -> &Arc<SmimeVerifier> {
        &self.smime
    }

    /// The admin endpoint's bearer token, if configured.
    pub fn admin_token(&self) -> Option<&Token> {
        self.admin_token.as_ref()
    }

    /// The relay (routes and the next-hop TLS configuration).
    pub fn relayer(&self) -> &Arc<Relayer> {
        &self.relayer
    }
}

/// Loads every file the configuration names; all problems are reported together, by key.
pub fn prepare(config: &Config) -> Result<Prepared, ConfigErrors> {
    // Builders panic when more than one rustls provider is compiled in and none is chosen;
    // choosing ours explicitly makes that impossible. An error only means one is installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let mut problems = Vec::new();
    let mut tls = HashMap::new();
    for listener in &config.listeners {
        let require = listener.require_client_certificate;
        if tls.contains_key(&require) {
            continue;
        }
        match server_config(&tls_settings(&config.tls, require)) {
            Ok(server) => {
                tls.insert(require, server);
            }
            Err(error) => {
                problems.push(ConfigProblem::Unusable {
                    key: "tls".to_owned(),
                    message: error_chain(&error),
                });
                // The same files fail the same way for the other variant; report once.
                break;
            }
        }
    }

    let mut whitelist = None;
    if let Some(files) = &config.whitelist {
        match Whitelist::load(&files.file, files.checksum_file.as_deref()) {
            Ok(list) => whitelist = Some(Arc::new(list)),
            Err(error) => problems.push(ConfigProblem::Unusable {
                key: "whitelist.file".to_owned(),
                message: error_chain(&error),
            }),
        }
    }

    let smime = match SmimeVerifier::from_config(&config.smime, &config.trust, &config.directory) {
        Ok(verifier) => Some(Arc::new(verifier)),
        Err(error) => {
            // The error names its own key (`trust.anchors`, `smime.decryption_key`, ...).
            problems.push(ConfigProblem::Unusable {
                key: "smime/trust".to_owned(),
                message: error_chain(&error),
            });
            None
        }
    };

    if let Err(error) = config.ledger.validate() {
        problems.push(ConfigProblem::Unusable {
            key: "ledger".to_owned(),
            message: error_chain(&error),
        });
    }

    let relayer = match Relayer::new(
        &config.relay,
        whitelist.clone(),
        &config.server.hostname,
        &config.directory,
    ) {
        Ok(relayer) => Some(Arc::new(relayer)),
        Err(error) => {
            problems.push(ConfigProblem::Unusable {
                key: "relay".to_owned(),
                message: error_chain(&error),
            });
            None
        }
    };

    let admin_token = match config.admin.token(&config.directory) {
        Ok(token) => token,
        Err(message) => {
            problems.push(ConfigProblem::Unusable {
                key: "admin.token_file".to_owned(),
                message,
            });
            None
        }
    };

    let module_checks = [
        ("pipeline", config.pipeline.validate()),
        ("queue", config.queue.validate()),
        ("dmp", config.dmp.validate()),
    ];
    for (key, outcome) in module_checks {
        if let Err(message) = outcome {
            problems.push(ConfigProblem::Unusable {
                key: key.to_owned(),
                message,
            });
        }
    }

    match (smime, relayer) {
        (Some(smime), Some(relayer)) if problems.is_empty() => Ok(Prepared {
            tls,
            whitelist,
            smime,
            relayer,
            admin_token,
        }),
        _ => Err(ConfigErrors::new(config.file.clone(), problems)),
    }
}

fn tls_settings(files: &TlsFiles, require_client_certificate: bool) -> TlsSettings {
    TlsSettings {
        certificate_chain: files.certificate.clone(),
        private_key: files.private_key.clone(),
        client_ca_bundle: files.client_ca_bundle.clone(),
        crl_files: files.crl_files.clone(),
        require_client_certificate,
    }
}
