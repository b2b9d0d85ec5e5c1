//! The ITI-41 client: builds the request (metadata, VIHF, envelope, MTOM), sends it over HTTPS
//! with the gateway's client certificate and maps the answer onto the worker's outcome types.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::envelope::{self, DocumentPayload, EnvelopeParts};
use super::metadata::{self, MetadataError, SubmissionProfile};
use super::mtom::{self, Attachment};
use super::response::{self, RegistryResponse, ResponseStatus, SoapResponse};
use super::vihf::{self, VihfProfile};
use super::xmldsig::{SignatureError, SigningIdentity};
use super::{ACTION_PROVIDE_AND_REGISTER, new_urn_uuid};
use crate::deposit::DepositRequest;
use crate::retry::{DepositFailure, RegistryStatus, XdsError, XdsSeverity};

/// Client settings (paths are relative to the process's working directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The repository endpoint, e.g. `https://…/si-dmp-server/v2/services/repository`.
    pub endpoint: String,
    /// PEM certificate chain of the TLS client certificate (ORG AUTH_CLI), leaf first.
    pub tls_certificate: PathBuf,
    /// PEM private key of the TLS client certificate.
    pub tls_key: PathBuf,
    /// PEM trust anchors for the DMP's server certificate (only these are trusted).
    pub trust_anchors: PathBuf,
    /// PEM certificate that signs the VIHF (ORG SIGN of the structure).
    pub signing_certificate: PathBuf,
    /// PEM private key of the signing certificate.
    pub signing_key: PathBuf,
    /// Connection (TCP + TLS) timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Send documents as MTOM parts (the DMP requires MTOM support, EX_2.1-1260); `false`
    /// inlines them as base64.
    pub mtom: bool,
    /// What the VIHF states.
    pub vihf: VihfProfile,
    /// How submission sets are authored.
    pub submission: SubmissionProfile,
}

/// Why the client could not be set up or a request built or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// reqwest refused the TLS material or the client settings.
    #[error("HTTP client setup: {0}")]
    Setup(reqwest::Error),
    /// The VIHF could not be signed.
    #[error("VIHF signature: {0}")]
    Signature(#[from] SignatureError),
    /// The metadata could not be built.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
}

/// A built request, ready to send.
#[derive(Debug, Clone)]
pub struct BuiltRequest {
    /// `wsa:MessageID`.
    pub message_id: String,
    /// HTTP `Content-Type`.
    pub content_type: String,
    /// HTTP body.
    pub body: Vec<u8>,
    /// The submission set uniqueId minted for this attempt.
    pub submission_set_unique_id: String,
}

/// The ITI-41 client.
#[derive(Debug, Clone)]
pub struct XdsClient {
    http: reqwest::Client,
    config: ClientConfig,
    signer: SigningIdentity,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl XdsClient {
    /// Loads the certificates and builds the HTTPS client.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let signer = SigningIdentity::load(&config.signing_certificate, &config.signing_key)?;
        // reqwest wants one PEM holding the chain and the unencrypted key (CRATES.md).
        let mut identity_pem = read(&config.tls_certificate)?;
        identity_pem.push(b'\n');
        identity_pem.extend_from_slice(&read(&config.tls_key)?);
        let identity = reqwest::Identity::from_pem(&identity_pem).map_err(ClientError::Setup)?;
        let anchors = reqwest::Certificate::from_pem_bundle(&read(&config.trust_anchors)?)
            .map_err(ClientError::Setup)?;
        let http = reqwest::Client::builder()
            .tls_certs_only(anchors)
            .identity(identity)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(ClientError::Setup)?;
        Ok(Self {
            http,
            config,
            signer,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Builds the ITI-41 request for `request` at time `now`.
    pub fn build_request(
        &self,
        request: &DepositRequest,
        now: SystemTime,
    ) -> Result<BuiltRequest, ClientError> {
        let submission =
            metadata::build_signed(&self.config.submission, request, now, &self.signer)?;
        let assertion = vihf::build_assertion(
            &self.config.vihf,
            &self.signer,
            &request.patient.to_cx(),
            now,
        )?;
        let message_id = new_urn_uuid();
        let content_id = "0.2";
        let payload = if self.config.mtom {
            DocumentPayload::Xop(content_id)
        } else {
            DocumentPayload::Inline(&request.document)
        };
        let signature_content_id = "0.3";
        let mut parts = EnvelopeParts::provide_and_register(
            &message_id,
            &self.config.endpoint,
            Some(&assertion),
            &submission.registry_object_list,
            &submission.document_id,
            payload,
        );
        parts.signature = submission.signature.as_ref().map(|signature| {
            let payload = if self.config.mtom {
                DocumentPayload::Xop(signature_content_id)
            } else {
                DocumentPayload::Inline(&signature.bytes)
            };
            (signature.id.as_str(), payload)
        });
        let xml = envelope::build(&parts);
        let (content_type, body) = if self.config.mtom {
            let mut attachments = vec![Attachment {
                content_id,
                content_type: &request.entry.mime_type,
                data: &request.document,
            }];
            if let Some(signature) = &submission.signature {
                attachments.push(Attachment {
                    content_id: signature_content_id,
                    content_type: "text/xml",
                    data: &signature.bytes,
                });
            }
            let built = mtom::build(&xml, ACTION_PROVIDE_AND_REGISTER, &attachments);
            (built.content_type, built.body)
        } else {
            (
                format!(
                    "application/soap+xml; charset=UTF-8; action=\"{ACTION_PROVIDE_AND_REGISTER}\""
                ),
                xml.into_bytes(),
            )
        };
        Ok(BuiltRequest {
            message_id,
            content_type,
            body,
            submission_set_unique_id: submission.submission_set_unique_id,
        })
    }

    /// Sends a built request; returns the HTTP status and the parsed SOAP answer.
    pub async fn send(&self, built: BuiltRequest) -> Result<(u16, SoapResponse), DepositFailure> {
        let (status, envelope) = self.post(built.content_type, built.body).await?;
        match response::parse(&envelope) {
            Ok(answer) => Ok((status, answer)),
            Err(_) if status >= 400 => Err(DepositFailure::Http { status }),
            Err(e) => Err(invalid_response(e.to_string())),
        }
    }

    /// The VIHF signing identity.
    pub fn signing_identity(&self) -> &SigningIdentity {
        &self.signer
    }

    /// POSTs a SOAP body to the endpoint; returns the HTTP status and the response envelope
    /// (the root part when the answer is MTOM).
    pub async fn post(
        &self,
        content_type: String,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), DepositFailure> {
        let response = self
            .http
            .post(&self.config.endpoint)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("MIME-Version", "1.0")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(e))?;
        // Responses may come back as MTOM too; the SOAP envelope is then the root part.
        let envelope = if content_type.starts_with("multipart/related") {
            mtom::parse(&content_type, &body)
                .map_err(|e| invalid_response(e.to_string()))?
                .root
                .data
        } else {
            body.to_vec()
        };
        Ok((status, envelope))
    }

    /// One ITI-41 attempt: the registry response when the status is Success, a classified
    /// [`DepositFailure`] otherwise.
    pub async fn provide_and_register(
        &self,
        request: &DepositRequest,
    ) -> Result<RegistryResponse, DepositFailure> {
        let built = self
            .build_request(request, SystemTime::now())
            .map_err(|e| DepositFailure::InvalidRequest {
                detail: e.to_string(),
            })?;
        let (status, answer) = self.send(built).await?;
        match answer {
            SoapResponse::Registry(registry) => match registry.status {
                ResponseStatus::Success => Ok(registry),
                ResponseStatus::PartialSuccess => Err(DepositFailure::Registry {
                    status: RegistryStatus::PartialSuccess,
                    errors: xds_errors(&registry),
                }),
                _ => Err(DepositFailure::Registry {
                    status: RegistryStatus::Failure,
                    errors: xds_errors(&registry),
                }),
            },
            SoapResponse::Fault(fault) => Err(fault_failure(status, fault)),
        }
    }

    fn transport_failure(&self, error: reqwest::Error) -> DepositFailure {
        if error.is_timeout() {
            DepositFailure::Timeout {
                during: "request".to_owned(),
                after: self.config.request_timeout,
            }
        } else {
            // Include the source chain: reqwest's top-level message hides the TLS reason.
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            DepositFailure::Connection { detail }
        }
    }
}

/// Maps a SOAP fault onto the worker's failure classes.
///
/// A receiver fault or a 5xx is the server's trouble: keep the HTTP class (transient). A sender
/// fault (bad security header, bad action) is our request's fault and will not improve: its
/// subcode becomes the error code (permanent).
pub(crate) fn fault_failure(status: u16, fault: response::SoapFault) -> DepositFailure {
    if fault.is_receiver() || status >= 500 {
        return DepositFailure::Http {
            status: if status >= 400 { status } else { 500 },
        };
    }
    DepositFailure::Registry {
        status: RegistryStatus::Failure,
        errors: vec![XdsError {
            code: fault
                .subcodes
                .first()
                .cloned()
                .unwrap_or_else(|| fault.code.clone()),
            severity: XdsSeverity::Error,
            context: Some(fault.reason),
            location: None,
        }],
    }
}

pub(crate) fn invalid_response(detail: String) -> DepositFailure {
    DepositFailure::InvalidResponse { detail }
}

/// The registry's errors in the worker's vocabulary.
pub(crate) fn xds_errors(registry: &RegistryResponse) -> Vec<XdsError> {
    registry
        .errors
        .iter()
        .map(|e| XdsError {
            code: e.code.clone(),
            severity: if e.warning {
                XdsSeverity::Warning
            } else {
                XdsSeverity::Error
            },
            context: Some(e.context.clone()),
            location: e.location.clone(),
        })
        .collect()
}

/// Default timeouts: connect 10 s, whole request 60 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`DEFAULT_CONNECT_TIMEOUT`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
