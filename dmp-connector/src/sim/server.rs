//! HTTPS serving of the simulator: mutual TLS (rustls, client CA bundle and CRLs), one axum
//! router, fault injection, and the ITI-41 handler that runs the checks and stores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use openssl::ssl::SslFiletype;
use openssl::x509::X509;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

use super::metadata_check::{self, CheckedDocument};
use super::query;
use super::store::Store;
use super::{Faults, Refusal, SimConfig, SimError, vihf_check};
use crate::xds::dom::{self, Element};
use crate::xds::query::{ACTION_RETRIEVE, ACTION_STORED_QUERY};
use crate::xds::response::{self, RegistryError, RegistryResponse, ResponseStatus};
use crate::xds::{ACTION_PROVIDE_AND_REGISTER, mtom, ns};

/// The largest request accepted (documents are at most a few tens of MB in MSSanté).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

struct Shared {
    store: Store,
    /// Serialises check-then-store of uniqueIds so two concurrent identical submissions store
    /// one copy and a conflicting one sees the first.
    store_lock: Mutex<()>,
    trust: X509Store,
    environment: super::Environment,
    require_signature: bool,
    faults: Faults,
    started: Instant,
}

/// The TLS client's certificate, as seen by the handler.
#[derive(Clone, Debug)]
struct Peer {
    organizational_unit: Option<String>,
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    /// The bound address.
    pub local_addr: SocketAddr,
    /// The store, to read back deposited documents.
    pub store: Store,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// The ITI-41 endpoint URL (`https://localhost:<port>/repository`).
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}/repository", self.local_addr.port())
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
    let context = context.into();
    move |source| SimError::Io { context, source }
}

fn tls_config(config: &SimConfig) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = |e: &dyn std::fmt::Display| SimError::Tls(e.to_string());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&config.tls_certificate)
            .map_err(|e| tls(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_file(&config.tls_key).map_err(|e| tls(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&config.client_ca).map_err(|e| tls(&e))? {
        roots
            .add(certificate.map_err(|e| tls(&e))?)
            .map_err(|e| tls(&e))?;
    }
    let mut crls = Vec::new();
    for path in &config.crls {
        crls.push(CertificateRevocationListDer::from_pem_file(path).map_err(|e| tls(&e))?);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| tls(&e))?;
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    Ok(Arc::new(server))
}

fn trust_store(config: &SimConfig) -> Result<X509Store, SimError> {
    let pem =
        std::fs::read(&config.client_ca).map_err(io(config.client_ca.display().to_string()))?;
    let certificates = X509::stack_from_pem(&pem).map_err(|e| SimError::Tls(e.to_string()))?;
    let mut builder = X509StoreBuilder::new().map_err(|e| SimError::Tls(e.to_string()))?;
    for certificate in certificates {
        builder
            .add_cert(certificate)
            .map_err(|e| SimError::Tls(e.to_string()))?;
    }
    // The VIHF signer is checked against the same CRLs as TLS clients: a revoked "cachet"
    // certificate must not vouch for a structure. OpenSSL fails closed when a CRL is missing.
    if !config.crls.is_empty() {
        let lookup = builder
            .add_lookup(X509Lookup::file())
            .map_err(|e| SimError::Tls(e.to_string()))?;
        for crl in &config.crls {
            lookup
                .load_crl_file(crl, SslFiletype::PEM)
                .map_err(|e| SimError::Tls(format!("CRL {}: {e}", crl.display())))?;
        }
        builder
            .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
            .map_err(|e| SimError::Tls(e.to_string()))?;
    }
    Ok(builder.build())
}

/// Binds and starts the simulator on the current tokio runtime.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let tls = tokio_rustls::TlsAcceptor::from(tls_config(&config)?);
    let store = Store::open(&config.store)?;
    let shared = Arc::new(Shared {
        store: store.clone(),
        store_lock: Mutex::new(()),
        trust: trust_store(&config)?,
        environment: config.environment,
        require_signature: config.require_submission_signature,
        faults: config.faults,
        started: Instant::now(),
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("bind {}", config.listen)))?;
    let local_addr = listener.local_addr().map_err(io("local address"))?;
    let router = Router::new()
        .route("/repository", post(iti41))
        .route("/", post(iti41))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(shared);
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.changed() => break,
            };
            let Ok((tcp, _)) = accepted else {
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let organizational_unit = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| X509::from_der(leaf).ok())
                    .and_then(|leaf| vihf_check::organizational_unit(&leaf));
                let service = router.layer(Extension(Peer {
                    organizational_unit,
                }));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    Ok(SimHandle {
        local_addr,
        store,
        shutdown,
        task,
    })
}

fn soap(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=UTF-8")],
        xml,
    )
        .into_response()
}

fn refusal(refusal: Refusal, relates_to: Option<&str>) -> Response {
    match refusal {
        Refusal::Fault { subcode, reason } => soap(
            // SOAP 1.2 HTTP binding: a Sender fault travels with 400.
            StatusCode::BAD_REQUEST,
            response::build_fault(false, &subcode, &reason, relates_to),
        ),
        Refusal::Registry(errors) => soap(
            StatusCode::OK,
            response::build_registry_response(
                &RegistryResponse {
                    status: ResponseStatus::Failure,
                    errors,
                },
                relates_to,
            ),
        ),
    }
}

fn unavailable(reason: &str) -> Response {
    soap(
        StatusCode::SERVICE_UNAVAILABLE,
        response::build_fault(true, "wsa:EndpointUnavailable", reason, None),
    )
}

async fn iti41(
    State(shared): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = shared.faults;
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    if shared.started.elapsed() < faults.down_for {
        return unavailable("simulated outage");
    }
    if faults.fail_rate > 0.0 && rand::random::<f64>() < faults.fail_rate {
        return unavailable("simulated failure");
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (envelope, parts) = if content_type.starts_with("multipart/related") {
        match mtom::parse(content_type, &body) {
            Ok(message) => (message.root.data, message.parts),
            Err(e) => {
                return refusal(
                    Refusal::Fault {
                        subcode: "soap:Sender".into(),
                        reason: format!("unreadable MTOM body: {e}"),
                    },
                    None,
                );
            }
        }
    } else {
        (body.to_vec(), Vec::new())
    };
    let root = match dom::parse(&envelope) {
        Ok(root) if root.is(ns::SOAP, "Envelope") => root,
        _ => {
            return refusal(
                Refusal::Fault {
                    subcode: "soap:Sender".into(),
                    reason: "body is not a SOAP 1.2 envelope".into(),
                },
                None,
            );
        }
    };
    let message_id = root
        .child(ns::SOAP, "Header")
        .and_then(|h| h.child(ns::WSA, "MessageID"))
        .map(Element::text);
    let outcome = process(&shared, &peer, &root, &parts).await;
    match outcome {
        Ok(Some((action, body))) => soap(
            StatusCode::OK,
            query::envelope(action, message_id.as_deref(), &body),
        ),
        Ok(None) => soap(
            StatusCode::OK,
            response::build_registry_response(
                &RegistryResponse {
                    status: ResponseStatus::Success,
                    errors: Vec::new(),
                },
                message_id.as_deref(),
            ),
        ),
        Err(r) => refusal(r, message_id.as_deref()),
    }
}

/// Runs one request: `None` = ITI-41 stored (plain success), `Some((action, body))` = a
/// read-back answer.
async fn process(
    shared: &Shared,
    peer: &Peer,
    root: &Element,
    parts: &[mtom::Part],
) -> Result<Option<(&'static str, String)>, Refusal> {
    let header = root
        .child(ns::SOAP, "Header")
        .ok_or_else(|| Refusal::Fault {
            subcode: "wsse:InvalidSecurity".into(),
            reason: "no SOAP header".into(),
        })?;
    let action = header
        .child(ns::WSA, "Action")
        .map(Element::text)
        .unwrap_or_default();
    let supported = [
        ACTION_PROVIDE_AND_REGISTER,
        ACTION_STORED_QUERY,
        ACTION_RETRIEVE,
    ];
    if !supported.contains(&action.as_str()) {
        return Err(Refusal::Fault {
            subcode: "wsa:ActionNotSupported".into(),
            reason: format!("action {action:?} is not supported by this endpoint"),
        });
    }
    let facts = vihf_check::check(header, &shared.trust, peer.organizational_unit.as_deref())?;
    let body = root.child(ns::SOAP, "Body").ok_or_else(|| Refusal::Fault {
        subcode: "soap:Sender".into(),
        reason: "no SOAP body".into(),
    })?;
    if action == ACTION_STORED_QUERY {
        let answer = query::find_documents(body, &shared.store, &facts.resource_id)?;
        return Ok(Some((
            "urn:ihe:iti:2007:RegistryStoredQueryResponse",
            answer,
        )));
    }
    if action == ACTION_RETRIEVE {
        let answer = query::retrieve(body, &shared.store, &facts.resource_id)?;
        return Ok(Some((
            "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
            answer,
        )));
    }
    let request = body
        .child(ns::XDSB, "ProvideAndRegisterDocumentSetRequest")
        .ok_or_else(|| {
            Refusal::registry(
                "XDSRegistryMetadataError",
                "no ProvideAndRegisterDocumentSetRequest",
            )
        })?;
    let document = |id: &str| document_bytes(request, parts, id);
    let checked =
        metadata_check::check(request, &document, &facts.resource_id, shared.environment)?;
    super::signature_check::check(request, &checked, &shared.trust, shared.require_signature)?;
    store(shared, checked).await?;
    Ok(None)
}

fn document_bytes(
    request: &Element,
    parts: &[mtom::Part],
    id: &str,
) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(document) = request
        .children_named(ns::XDSB, "Document")
        .find(|d| d.attr("id") == Some(id))
    else {
        return Ok(None);
    };
    if let Some(include) = document.child(ns::XOP, "Include") {
        let href = include.attr("href").unwrap_or_default();
        let href = href.strip_prefix("cid:").unwrap_or(href);
        return Ok(parts
            .iter()
            .find(|p| p.content_id == href)
            .map(|p| p.data.clone()));
    }
    let text: String = document.text().split_whitespace().collect();
    BASE64.decode(text).map(Some).map_err(|_| {
        Refusal::registry(
            "XDSMissingDocument",
            format!("document {id} is not valid base64"),
        )
    })
}

async fn store(shared: &Shared, checked: Vec<CheckedDocument>) -> Result<(), Refusal> {
    let _guard = shared.store_lock.lock().await;
    let store_error = |e: super::store::StoreError| {
        Refusal::registry("XDSRepositoryError", format!("store: {e}"))
    };
    let mut new = Vec::new();
    for document in checked {
        match shared
            .store
            .get(&document.record.unique_id)
            .map_err(store_error)?
        {
            Some(existing) if existing.hash_sha1 == document.record.hash_sha1 => {}
            Some(_) => {
                // Whatever the sizes, the hash differs: that is the code IHE lists for it.
                return Err(Refusal::Registry(vec![RegistryError::error(
                    "XDSNonIdenticalHash",
                    format!(
                        "uniqueId {} already holds a different document",
                        document.record.unique_id
                    ),
                )]));
            }
            None => new.push(document),
        }
    }
    // Blocking file I/O with fsync: keep it off the async worker threads.
    let store = shared.store.clone();
    tokio::task::spawn_blocking(move || {
        for document in new {
            store.put(&document.record, &document.bytes)?;
        }
        Ok::<_, super::store::StoreError>(())
    })
    .await
    .map_err(|e| Refusal::registry("XDSRepositoryError", format!("store task: {e}")))?
    .map_err(store_error)
}
