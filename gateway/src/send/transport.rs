//! SMTP submission over mutual TLS with lettre: the client certificate of the sending structure,
//! the server verified against a given CA bundle for a given name (TLS 1.2 or 1.3), STARTTLS or
//! implicit TLS, and the message bytes sent exactly as built (lettre only dot-stuffs them).
//!
//! lettre sends only the leaf of the client certificate, so the server must hold the
//! intermediate CA (the gateway's `tls.client_ca_bundle` does).

use std::path::PathBuf;
use std::time::Duration;

use lettre::Transport;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, Tls, TlsParameters, TlsVersion,
};
use lettre::transport::smtp::extension::ClientId;

use super::SendError;
use super::sign::load_certificates;
use crate::config::error_chain as describe;

/// How TLS starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (RFC 3207); refused if the server does not offer it.
    StartTls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// `host:port`.
    pub server: String,
    /// Name the server certificate must carry; the host by default.
    pub server_name: Option<String>,
    /// STARTTLS or implicit TLS.
    pub mode: TlsMode,
    /// PEM client certificate (leaf first).
    pub client_certificate: PathBuf,
    /// PEM private key of the client certificate.
    pub client_key: PathBuf,
    /// PEM CA certificates the server certificate must chain to (nothing else is trusted).
    pub ca: PathBuf,
    /// EHLO name; the From domain is a sensible choice.
    pub hello_name: Option<String>,
    /// Timeout of each SMTP exchange.
    pub timeout: Duration,
    /// PEM CRLs of the CAs of `ca`: when given, the server's chain is checked against them on a
    /// first connection (see `revocation`), as lettre takes no CRLs.
    pub crl_files: Vec<PathBuf>,
}

/// The server's positive answer to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The queue id of a `250 2.0.0 <id> queued` reply, when the server gives one.
    pub queue_id: Option<String>,
    /// The reply: code and text.
    pub reply: String,
}

/// Sends `message` from `mail_from` to every recipient and returns the server's reply.
pub fn send(
    settings: &TransportSettings,
    mail_from: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<Queued, SendError> {
    let (host, port) = split_server(&settings.server)?;
    let envelope = envelope(mail_from, recipients)?;
    let tls = tls_parameters(settings, &host)?;
    if !settings.crl_files.is_empty() {
        super::revocation::check(settings, &host, port, &settings.crl_files)?;
    }
    let mut builder = SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(settings.timeout))
        .tls(match settings.mode {
            TlsMode::StartTls => Tls::Required(tls),
            TlsMode::Implicit => Tls::Wrapper(tls),
        });
    if let Some(name) = &settings.hello_name {
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    let transport = builder.build();
    // lettre always ends DATA with CRLF "." CRLF, so a message already ending with CRLF would
    // gain an empty line; without its last CRLF the server receives exactly `message`.
    let data = message.strip_suffix(b"\r\n").unwrap_or(message);
    let result = transport.send_raw(&envelope, data);
    transport.shutdown();
    match result {
        Ok(response) => {
            let lines: Vec<&str> = response.message().collect();
            Ok(Queued {
                queue_id: lines.first().and_then(|line| queue_id(line)),
                reply: format!("{} {}", response.code(), lines.join(" ")),
            })
        }
        Err(error) => Err(classify(&settings.server, &error)),
    }
}

/// The queue id in the text of a `250 2.0.0 <id> queued` reply.
pub fn queue_id(text: &str) -> Option<String> {
    let mut words = text.split_whitespace().peekable();
    if words.peek().is_some_and(|word| {
        word.split('.').count() == 3 && word.split('.').all(|part| part.parse::<u16>().is_ok())
    }) {
        words.next();
    }
    let id = words.next()?;
    (words.next() == Some("queued")).then(|| id.to_owned())
}

fn classify(server: &str, error: &lettre::transport::smtp::Error) -> SendError {
    match error.status() {
        Some(code) => {
            // The source of a negative-reply error is the reply text, every line joined.
            let text = std::error::Error::source(error)
                .map(ToString::to_string)
                .unwrap_or_default();
            SendError::Refused {
                server: server.to_owned(),
                reply: format!("{code} {text}").trim_end().to_owned(),
            }
        }
        None => SendError::Transport {
            server: server.to_owned(),
            reason: describe(error),
        },
    }
}

fn split_server(server: &str) -> Result<(String, u16), SendError> {
    let bad = || SendError::Usage(format!("--server {server:?} is not host:port"));
    let (host, port) = server.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((host.to_owned(), port))
}

fn envelope(mail_from: &str, recipients: &[String]) -> Result<Envelope, SendError> {
    let parse = |address: &str, option: &str| {
        address.parse::<Address>().map_err(|error| {
            SendError::Usage(format!(
                "{option} {address:?} is not a mail address: {error}"
            ))
        })
    };
    let from = parse(mail_from, "--from")?;
    let to = recipients
        .iter()
        .map(|recipient| parse(recipient, "--to"))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|error| SendError::Usage(error.to_string()))
}

fn tls_parameters(settings: &TransportSettings, host: &str) -> Result<TlsParameters, SendError> {
    let invalid = |path: &PathBuf, error: lettre::transport::smtp::Error| SendError::InvalidFile {
        path: path.clone(),
        reason: describe(&error),
    };
    // Checked here with OpenSSL first so that a bad file is named with a clear reason.
    let leaf = load_certificates(&settings.client_certificate)?.remove(0);
    let key_pem = std::fs::read(&settings.client_key).map_err(|source| SendError::Read {
        path: settings.client_key.clone(),
        source,
    })?;
    let key = openssl::pkey::PKey::private_key_from_pem(&key_pem).map_err(|error| {
        SendError::InvalidFile {
            path: settings.client_key.clone(),
            reason: format!("not an unencrypted PEM private key ({error})"),
        }
    })?;
    let matches = leaf
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(SendError::InvalidFile {
            path: settings.client_key.clone(),
            reason: format!(
                "private key does not match the certificate {}",
                settings.client_certificate.display()
            ),
        });
    }
    // lettre's rustls identity takes the leaf as DER (a PEM there fails as "BadEncoding").
    let leaf_der = leaf
        .to_der()
        .map_err(SendError::build("encoding the client certificate"))?;
    let identity = Identity::from_pem(&leaf_der, &key_pem)
        .map_err(|error| invalid(&settings.client_key, error))?;
    let mut builder = TlsParameters::builder(
        settings
            .server_name
            .clone()
            .unwrap_or_else(|| host.to_owned()),
    )
    // Only the given CAs: a public root store has no business vouching for an MSSanté server.
    .certificate_store(CertificateStore::None)
    .set_min_tls_version(TlsVersion::Tlsv12)
    .identify_with(identity);
    for certificate in load_certificates(&settings.ca)? {
        let der = certificate
            .to_der()
            .map_err(SendError::build("encoding a CA certificate"))?;
        let certificate =
            Certificate::from_der(der).map_err(|error| invalid(&settings.ca, error))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|error| invalid(&settings.ca, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_id_is_read_from_the_queued_reply() {
        assert_eq!(queue_id("2.0.0 ABC123 queued").as_deref(), Some("ABC123"));
        assert_eq!(queue_id("ABC123 queued").as_deref(), Some("ABC123"));
        assert_eq!(queue_id("2.0.0 OK"), None);
        assert_eq!(queue_id(""), None);
    }

    #[test]
    fn server_is_host_and_port() {
        assert_eq!(
            split_server("127.0.0.1:2525").unwrap(),
            ("127.0.0.1".to_owned(), 2525)
        );
        assert_eq!(split_server("[::1]:25").unwrap(), ("::1".to_owned(), 25));
        assert!(split_server("localhost").is_err());
        assert!(split_server(":25").is_err());
        assert!(split_server("host:99999").is_err());
    }
}
