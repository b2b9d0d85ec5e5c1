//! `gateway send` on the command line: arguments, then compose, sign, and send or write.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::compose::{self, Compose, Content};
use super::sign::{Signer, load_certificates};
use super::transport::{self, TlsMode, TransportSettings};
use super::{NamedFile, SendError};

/// Exit status when the server refused the message or could not be reached.
const EXIT_NOT_SENT: u8 = 1;
/// Exit status for a command line or file problem.
const EXIT_USAGE: u8 = 2;

/// `gateway send` arguments.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// SMTP server, `host:port`. Not needed with --output.
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "output")]
    pub server: Option<String>,
    /// TLS from the first byte (port 465 style) instead of STARTTLS.
    #[arg(long)]
    pub implicit_tls: bool,
    /// Name the server certificate must carry (default: the host of --server).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Client certificate (PEM) presented to the server: the sending structure's TLS identity.
    #[arg(long, value_name = "FILE", required_unless_present = "output")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM, unencrypted).
    #[arg(long, value_name = "FILE", required_unless_present = "output")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) the server certificate must chain to.
    #[arg(long, value_name = "FILE", required_unless_present = "output")]
    pub ca: Option<PathBuf>,
    /// CRL (PEM) of a CA of --ca; the server's chain is then checked for revocation, every CA
    /// needing its CRL. Repeat for several.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Sender address: From and envelope MAIL FROM.
    #[arg(long, value_name = "ADDRESS")]
    pub from: String,
    /// Recipient address (To and RCPT TO); repeat for several.
    #[arg(long, value_name = "ADDRESS", required = true)]
    pub to: Vec<String>,
    /// S/MIME signing certificate (PEM: signer first, then its intermediates).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["no_sign", "message"])]
    pub sign_cert: Option<PathBuf>,
    /// Private key of --sign-cert (PEM, unencrypted).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["no_sign", "message"])]
    pub sign_key: Option<PathBuf>,
    /// Send the message unsigned (the gateway refuses it unless the sender's policy allows it).
    #[arg(long, conflicts_with_all = ["sign_cert", "sign_key", "encrypt_to"])]
    pub no_sign: bool,
    /// Encrypt the signed message to this certificate (PEM), e.g. the gateway's ORG CONF one;
    /// repeat for several recipients.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to: Vec<PathBuf>,
    /// CDA R2 document for the IHE_XDM.ZIP (the patient's INS is read from it); repeat for several.
    #[arg(long, value_name = "FILE", conflicts_with = "attach", required_unless_present_any = ["attach", "message"])]
    pub cda: Vec<PathBuf>,
    /// PDF rendering, put in the XDM package and attached beside it; needs --cda.
    #[arg(long, value_name = "FILE", requires = "cda")]
    pub pdf: Vec<PathBuf>,
    /// File attached as is (a bare CDA, a PDF, a ready-made XDM zip); repeat for several.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Subject (default: the MSSanté `XDM/1.0/DDM+…` subject, or the attachment names).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    /// Text of the message body.
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// Ask for a disposition notification (Disposition-Notification-To = --from).
    #[arg(long)]
    pub notify: bool,
    /// Write the RFC 5322 message to FILE instead of sending it.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Send this ready-made RFC 5322 message (e.g. written by --output) exactly as it is.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["cda", "attach", "output", "sign_cert", "sign_key", "encrypt_to", "subject", "body", "notify"]
    )]
    pub message: Option<PathBuf>,
    /// Seconds to wait for each SMTP reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

/// Runs `gateway send`: 0 sent (or written), 1 refused or not delivered, 2 usage or file error.
pub fn run(args: &SendArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_delivery_failure() => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_NOT_SENT)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn execute(args: &SendArgs) -> Result<(), SendError> {
    let message = match &args.message {
        Some(path) => read(path)?,
        None => compose::build(&composition(args)?)?,
    };
    if let Some(path) = &args.output {
        std::fs::write(path, &message).map_err(|source| SendError::Write {
            path: path.clone(),
            source,
        })?;
        println!("written {} ({} bytes)", path.display(), message.len());
        return Ok(());
    }
    let settings = transport_settings(args)?;
    let queued = transport::send(&settings, &args.from, &args.to, &message)?;
    match &queued.queue_id {
        Some(id) => println!("queued {id}"),
        None => println!("accepted: {}", queued.reply),
    }
    Ok(())
}

/// The composition the arguments describe.
pub fn composition(args: &SendArgs) -> Result<Compose, SendError> {
    let signer = match (&args.sign_cert, &args.sign_key, args.no_sign) {
        (_, _, true) => None,
        (Some(cert), Some(key), false) => Some(Signer::load(cert, key)?),
        _ => {
            return Err(SendError::Usage(
                "--sign-cert and --sign-key are required (or --no-sign)".to_owned(),
            ));
        }
    };
    let mut encrypt_to = Vec::new();
    for path in &args.encrypt_to {
        encrypt_to.push(load_certificates(path)?.remove(0));
    }
    let content = if args.cda.is_empty() {
        Content::Attachments(read_all(&args.attach)?)
    } else {
        Content::Xdm {
            cda: read_all(&args.cda)?,
            pdf: read_all(&args.pdf)?,
        }
    };
    Ok(Compose {
        from: args.from.clone(),
        to: args.to.clone(),
        subject: args.subject.clone(),
        body: args.body.clone(),
        content,
        notify: args.notify,
        signer,
        encrypt_to,
        source_id: None,
        date: None,
        message_id: None,
    })
}

fn transport_settings(args: &SendArgs) -> Result<TransportSettings, SendError> {
    let required = |value: &Option<PathBuf>, option: &str| {
        value
            .clone()
            .ok_or_else(|| SendError::Usage(format!("{option} is required to send")))
    };
    Ok(TransportSettings {
        server: args
            .server
            .clone()
            .ok_or_else(|| SendError::Usage("--server is required to send".to_owned()))?,
        server_name: args.server_name.clone(),
        mode: if args.implicit_tls {
            TlsMode::Implicit
        } else {
            TlsMode::StartTls
        },
        client_certificate: required(&args.tls_cert, "--tls-cert")?,
        client_key: required(&args.tls_key, "--tls-key")?,
        ca: required(&args.ca, "--ca")?,
        hello_name: args
            .from
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase()),
        timeout: Duration::from_secs(args.timeout.max(1)),
        crl_files: args.crl.clone(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, SendError> {
    std::fs::read(path).map_err(|source| SendError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<NamedFile>, SendError> {
    paths.iter().map(|path| NamedFile::read(path)).collect()
}
