//! Delivery to a next hop over SMTP with mutual TLS (lettre's connection, our checks).

use std::str::FromStr as _;
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use smtp_in::whitelist::Whitelist;

use super::TlsMode;
use super::relayer::{Delivery, DeliveryFailure};
use super::tls::NextHopTls;

/// Time allowed for `QUIT` after a delivery; its failure changes nothing.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One SMTP route, with its TLS parameters built once.
pub(crate) struct SmtpRoute {
    pub host: String,
    pub port: u16,
    pub mode: TlsMode,
    pub server_name: String,
    pub parameters: TlsParameters,
}

impl std::fmt::Debug for SmtpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpRoute")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// What a delivery needs besides the route.
pub(crate) struct SmtpContext<'a> {
    pub tls: &'a NextHopTls,
    pub whitelist: Option<&'a Whitelist>,
    pub hello: &'a ClientId,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl SmtpRoute {
    pub(crate) fn label(&self) -> String {
        format!("smtp {}:{}", self.host, self.port)
    }

    /// Delivers `message` to `recipients` (all in `domain`).
    pub(crate) async fn deliver(
        &self,
        context: &SmtpContext<'_>,
        domain: &str,
        mail_from: Option<&str>,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Delivery, DeliveryFailure> {
        let envelope = envelope(mail_from, recipients)?;
        let implicit = match self.mode {
            TlsMode::Implicit => Some(self.parameters.clone()),
            TlsMode::Starttls => None,
        };
        let connect = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(context.connect_timeout),
            context.hello,
            implicit,
            None,
        );
        let mut connection = match tokio::time::timeout(context.connect_timeout, connect).await {
            Err(_) => return Err(transient(format!("{}: connect timed out", self.label()))),
            Ok(Err(error)) => return Err(classify(&error, &format!("{} connect", self.label()))),
            Ok(Ok(connection)) => connection,
        };
        if self.mode == TlsMode::Starttls {
            if !connection.can_starttls() {
                connection.abort().await;
                // As Postfix with a mandatory TLS level: defer, it may be a passing misconfiguration.
                return Err(transient(format!(
                    "{} does not offer STARTTLS",
                    self.label()
                )));
            }
            let upgrade = connection.starttls(self.parameters.clone(), context.hello);
            match tokio::time::timeout(context.connect_timeout, upgrade).await {
                Err(_) => return Err(transient(format!("{}: STARTTLS timed out", self.label()))),
                Ok(Err(error)) => {
                    return Err(classify(&error, &format!("{} STARTTLS", self.label())));
                }
                Ok(Ok(())) => {}
            }
        }
        // Nothing of the message leaves before the next hop is known to be the right one.
        let chain = connection
            .certificate_chain()
            .map_err(|error| transient(format!("{}: {error}", self.label())))?;
        let peer = context
            .tls
            .verify(&chain, &self.server_name)
            .map_err(|reason| permanent(format!("{}: {reason}", self.label())))?;
        if let Some(whitelist) = context.whitelist
            && !whitelist.permits(domain, &peer.subject)
        {
            connection.abort().await;
            return Err(permanent(format!(
                "{}: next hop certificate subject \"{}\" is not listed for {domain} in the liste blanche",
                self.label(),
                peer.subject
            )));
        }
        // lettre always ends DATA with CRLF "." CRLF: give it the message without its last CRLF,
        // or the next hop would receive one empty line more than we were given.
        let body = message.strip_suffix(b"\r\n").unwrap_or(message);
        let send = connection.send(&envelope, body);
        let response = match tokio::time::timeout(context.command_timeout, send).await {
            Err(_) => {
                return Err(transient(format!(
                    "{}: transaction timed out after {:?}",
                    self.label(),
                    context.command_timeout
                )));
            }
            Ok(Err(error)) => {
                connection.abort().await;
                return Err(classify(&error, &self.label()));
            }
            Ok(Ok(response)) => response,
        };
        let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.quit()).await;
        let text: Vec<&str> = response.message().collect();
        Ok(Delivery {
            route: self.label(),
            detail: format!("{} {}", response.code(), text.join(" ")),
            peer_subject: Some(peer.subject),
        })
    }
}

fn envelope(mail_from: Option<&str>, recipients: &[String]) -> Result<Envelope, DeliveryFailure> {
    let from = match mail_from {
        None | Some("") => None,
        Some(address) => Some(
            Address::from_str(address)
                .map_err(|error| permanent(format!("invalid sender {address:?}: {error}")))?,
        ),
    };
    let to = recipients
        .iter()
        .map(|address| {
            Address::from_str(address)
                .map_err(|error| permanent(format!("invalid recipient {address:?}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(from, to).map_err(|error| permanent(format!("invalid envelope: {error}")))
}

fn transient(reason: String) -> DeliveryFailure {
    DeliveryFailure::Transient { reason }
}

fn permanent(reason: String) -> DeliveryFailure {
    DeliveryFailure::Permanent { reason }
}

/// 4xx, network, timeouts and other TLS failures are transient; 5xx, certificate failures
/// (ours refused or theirs untrusted) and what cannot be sent as is are permanent.
pub(crate) fn classify(error: &SmtpError, during: &str) -> DeliveryFailure {
    let reason = format!("{during}: {error}");
    if let Some(tls) = rustls_error(error) {
        return if is_certificate_problem(tls) {
            permanent(reason)
        } else {
            transient(reason)
        };
    }
    if error.is_permanent() || error.is_client() {
        permanent(reason)
    } else {
        transient(reason)
    }
}

/// The rustls error behind `error`, if any (io::Error hides its inner error from `source()`).
fn rustls_error(error: &SmtpError) -> Option<&rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = error.source();
    }
    None
}

fn is_certificate_problem(error: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                | Alert::CertificateRequired
        ),
        _ => false,
    }
}
