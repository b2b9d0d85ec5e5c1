//! The [`Relayer`]: route lookup and one delivery attempt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::extension::ClientId;
use smtp_in::whitelist::Whitelist;

use super::config::resolve;
use super::smtp::{SmtpContext, SmtpRoute};
use super::tls::NextHopTls;
use super::{RelayConfig, RelayError, RelayJob, RouteKind};

/// A successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `"smtp <host>:<port>"` or `"maildir"`.
    pub route: String,
    /// The next hop's final reply, or the paths written.
    pub detail: String,
    /// The next hop's certificate subject DN (smtp).
    pub peer_subject: Option<String>,
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// May succeed later: 4xx, connection, timeout, transient TLS failure, local I/O.
    #[error("transient: {reason}")]
    Transient {
        /// What happened.
        reason: String,
    },
    /// Will fail again: 5xx, untrusted or not whitelisted next hop, no route, bad address.
    #[error("permanent: {reason}")]
    Permanent {
        /// What happened.
        reason: String,
    },
}

impl DeliveryFailure {
    /// The reason, without the class.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryFailure::Transient { reason } | DeliveryFailure::Permanent { reason } => reason,
        }
    }
}

#[derive(Debug)]
enum Route {
    Smtp(Box<SmtpRoute>),
    Maildir(PathBuf),
}

/// Delivers relay jobs along the configured routes. Built once; `Send + Sync`.
#[derive(Debug)]
pub struct Relayer {
    routes: HashMap<String, Route>,
    default: Option<Route>,
    tls: Option<NextHopTls>,
    whitelist: Option<Arc<Whitelist>>,
    hostname: String,
    hello: ClientId,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Relayer {
    /// Validates `config`, loads its TLS files (when a route is smtp) and builds the routes.
    /// `whitelist` is required when `check_whitelist` is on and a route is smtp.
    pub fn new(
        config: &RelayConfig,
        whitelist: Option<Arc<Whitelist>>,
        default_hostname: &str,
        config_dir: &Path,
    ) -> Result<Relayer, RelayError> {
        config.validate()?;
        let has_smtp = config
            .routes
            .iter()
            .any(|route| route.kind == RouteKind::Smtp);
        let tls = if has_smtp {
            Some(NextHopTls::load(config, config_dir)?)
        } else {
            None
        };
        let whitelist = if config.check_whitelist && has_smtp {
            Some(whitelist.ok_or_else(|| RelayError::Config {
                key: "relay.check_whitelist".into(),
                reason: "needs the [whitelist] file (or set it to false)".into(),
            })?)
        } else {
            None
        };
        let hostname = config
            .hostname
            .clone()
            .unwrap_or_else(|| default_hostname.to_owned());
        let mut routes = HashMap::new();
        let mut default = None;
        for entry in &config.routes {
            let route = match (entry.kind, &tls) {
                (RouteKind::Smtp, Some(tls)) => Route::Smtp(Box::new(SmtpRoute {
                    host: entry.host.clone().unwrap_or_default(),
                    port: entry.port.unwrap_or(25),
                    mode: entry.tls.unwrap_or_default(),
                    server_name: entry.server_name().to_owned(),
                    parameters: tls.parameters(entry.server_name())?,
                })),
                (RouteKind::Smtp, None) => {
                    return Err(RelayError::Tls("smtp route without TLS material".into()));
                }
                (RouteKind::Maildir, _) => {
                    let dir = entry.maildir.as_deref().unwrap_or(Path::new("."));
                    Route::Maildir(resolve(config_dir, dir))
                }
            };
            if entry.domain == "*" {
                default = Some(route);
            } else {
                routes.insert(entry.domain.to_ascii_lowercase(), route);
            }
        }
        Ok(Relayer {
            routes,
            default,
            tls,
            whitelist,
            hello: ClientId::Domain(hostname.clone()),
            hostname,
            connect_timeout: Duration::from_secs(config.connect_timeout_secs),
            command_timeout: Duration::from_secs(config.command_timeout_secs),
        })
    }

    /// Whether mail for `domain` can be routed (its own route or the `"*"` route).
    pub fn has_route(&self, domain: &str) -> bool {
        self.route(domain).is_some()
    }

    /// The EHLO name.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    fn route(&self, domain: &str) -> Option<&Route> {
        self.routes
            .get(&domain.to_ascii_lowercase())
            .or(self.default.as_ref())
    }

    /// One delivery attempt of `message` for `job`.
    pub async fn deliver(
        &self,
        job: &RelayJob,
        message: &[u8],
    ) -> Result<Delivery, DeliveryFailure> {
        let permanent = |reason: String| DeliveryFailure::Permanent { reason };
        if job.recipients.is_empty() {
            return Err(permanent("job has no recipients".into()));
        }
        for recipient in &job.recipients {
            let in_domain = recipient
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&job.domain));
            if !in_domain {
                return Err(permanent(format!(
                    "recipient {recipient:?} is not in domain {}",
                    job.domain
                )));
            }
        }
        let Some(route) = self.route(&job.domain) else {
            return Err(permanent(format!("no route for domain {}", job.domain)));
        };
        match route {
            Route::Maildir(root) => {
                let unique = format!("{}.{}", sanitize(&job.queue_id), job.kind.as_str());
                super::maildir::deliver(root, &job.domain, &job.recipients, &unique, message).await
            }
            Route::Smtp(route) => {
                let Some(tls) = &self.tls else {
                    return Err(permanent("smtp route without TLS material".into()));
                };
                let context = SmtpContext {
                    tls,
                    whitelist: self.whitelist.as_deref(),
                    hello: &self.hello,
                    connect_timeout: self.connect_timeout,
                    command_timeout: self.command_timeout,
                };
                route
                    .deliver(
                        &context,
                        &job.domain,
                        job.mail_from.as_deref(),
                        &job.recipients,
                        message,
                    )
                    .await
            }
        }
    }
}

/// Keeps letters, digits, `-` and `_` (queue ids are like that already; this makes sure).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
