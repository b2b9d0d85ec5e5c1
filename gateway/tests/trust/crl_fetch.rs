//! CRL fetching from a local axum server: fetch, on-disk cache, refresh, outage, expiry, replay.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway::trust::CrlFetcher;
use gateway::trust::fetch::FetchOutcome;

use super::*;

#[derive(Clone, Default)]
struct Served(Arc<Mutex<Option<Vec<u8>>>>);

impl Served {
    fn set(&self, body: Option<&str>) {
        *self.0.lock().unwrap() =
            body.map(|name| std::fs::read(certs().join("crl").join(name)).unwrap());
    }
}

async fn crl(State(served): State<Served>) -> Response {
    match served.0.lock().unwrap().clone() {
        Some(body) => (
            StatusCode::OK,
            [("content-type", "application/pkix-crl")],
            body,
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn start_server(served: Served) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/org.crl", listener.local_addr().unwrap());
    let app = Router::new().route("/org.crl", get(crl)).with_state(served);
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, handle)
}

/// A config whose only CRL directory holds the root CRL: the org CRL must come from the server.
fn fetch_config(dir: &Path, url: &str) -> TrustConfig {
    let crl_dir = dir.join("crl");
    std::fs::create_dir_all(&crl_dir).unwrap();
    std::fs::copy(
        certs().join("crl/root.crl.pem"),
        crl_dir.join("root.crl.pem"),
    )
    .unwrap();
    TrustConfig {
        anchors: vec![certs().join("ca/root.pem")],
        intermediates: vec![certs().join("ca/org.pem")],
        crl_dir: Some(crl_dir),
        crl_cache_dir: Some(dir.join("cache")),
        crl_urls: vec![url.to_owned()],
        fetch_distribution_points: false,
        ..TrustConfig::default()
    }
}

fn setup(config: &TrustConfig, dir: &Path) -> (Arc<TrustValidator>, CrlFetcher) {
    let validator = Arc::new(TrustValidator::from_config(config, dir).unwrap());
    let fetcher = CrlFetcher::from_config(&validator, config, dir)
        .unwrap()
        .unwrap();
    (validator, fetcher)
}

fn signer_check(
    validator: &TrustValidator,
    name: &str,
) -> Result<gateway::trust::ValidatedChain, TrustError> {
    let (leaf, chain) = leaf_and_chain(name);
    validator.validate(&leaf, &chain, Usage::SmimeSigning, ValidationTimes::now())
}

#[tokio::test]
async fn crl_fetch_cache_refresh_and_outage() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::default();
    let (url, server) = start_server(served.clone()).await;
    let config = fetch_config(dir.path(), &url);
    let (validator, fetcher) = setup(&config, dir.path());

    // Nothing fetched yet: the status is unknown, which is transient.
    let error = signer_check(&validator, "smime/sign-hopital-a.pem").unwrap_err();
    assert!(
        matches!(error, TrustError::CrlUnavailable { .. }) && error.is_transient(),
        "{error:?}"
    );

    // Fetch: stored, cached on disk, used.
    served.set(Some("org.crl"));
    let outcomes = fetcher.refresh_once().await;
    assert!(
        matches!(&outcomes[..], [FetchOutcome::Updated { this_update, .. }] if this_update.to_string() == "2025-06-01T00:00:00Z"),
        "{outcomes:?}"
    );
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 2, "{cached:?}");
    signer_check(&validator, "smime/sign-hopital-a.pem").unwrap();
    assert!(matches!(
        signer_check(&validator, "smime/sign-revoked.pem"),
        Err(TrustError::Revoked { .. })
    ));

    // Refresh with the same CRL: nothing changes.
    assert!(matches!(
        &fetcher.refresh_once().await[..],
        [FetchOutcome::Unchanged { .. }]
    ));

    // An older (replayed) CRL is not taken over the newer one.
    served.set(Some("org-expired.crl"));
    assert!(matches!(
        &fetcher.refresh_once().await[..],
        [FetchOutcome::Unchanged { .. }]
    ));
    signer_check(&validator, "smime/sign-hopital-a.pem").unwrap();

    // Server errors, then server gone: the last valid CRL is kept.
    served.set(None);
    assert!(
        matches!(&fetcher.refresh_once().await[..], [FetchOutcome::Failed { reason, .. }] if reason.contains("503"))
    );
    server.abort();
    let _ = server.await;
    assert!(matches!(
        &fetcher.refresh_once().await[..],
        [FetchOutcome::Failed { .. }]
    ));
    signer_check(&validator, "smime/sign-hopital-a.pem").unwrap();

    // A restart reads the cache: valid without any fetch.
    let restarted = TrustValidator::from_config(&config, dir.path()).unwrap();
    signer_check(&restarted, "smime/sign-hopital-a.pem").unwrap();
    assert!(matches!(
        signer_check(&restarted, "smime/sign-revoked.pem"),
        Err(TrustError::Revoked { .. })
    ));
}

#[tokio::test]
async fn fetched_expired_crl_fails_unless_grace() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::default();
    served.set(Some("org-expired.crl"));
    let (url, _server) = start_server(served.clone()).await;
    let config = fetch_config(dir.path(), &url);
    let (validator, fetcher) = setup(&config, dir.path());
    assert!(matches!(
        &fetcher.refresh_once().await[..],
        [FetchOutcome::Updated { .. }]
    ));
    let error = signer_check(&validator, "smime/sign-hopital-a.pem").unwrap_err();
    assert!(
        matches!(&error, TrustError::CrlExpired { next_update, .. } if next_update.to_string() == "2024-02-01T00:00:00Z"),
        "{error:?}"
    );

    let graced = TrustConfig {
        crl_grace_period_secs: 20 * 365 * 86_400,
        ..config.clone()
    };
    let validator = TrustValidator::from_config(&graced, dir.path()).unwrap();
    let chain = signer_check(&validator, "smime/sign-hopital-a.pem").unwrap();
    assert!(chain.revocation[0].in_grace_period);

    // A fresh CRL then replaces the expired one.
    served.set(Some("org.crl"));
    let (validator, fetcher) = setup(&config, dir.path());
    assert!(matches!(
        &fetcher.refresh_once().await[..],
        [FetchOutcome::Updated { .. }]
    ));
    signer_check(&validator, "smime/sign-hopital-a.pem").unwrap();
}

#[tokio::test]
async fn a_crl_signed_by_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::default();
    // The rogue CA's CRL, served at the org distribution point: its issuer is not a configured CA, so it
    // is held but never used for org-issued certificates.
    served.set(Some("rogue.crl"));
    let (url, _server) = start_server(served.clone()).await;
    let config = fetch_config(dir.path(), &url);
    let (validator, fetcher) = setup(&config, dir.path());
    fetcher.refresh_once().await;
    assert!(matches!(
        signer_check(&validator, "smime/sign-hopital-a.pem"),
        Err(TrustError::CrlUnavailable { .. })
    ));
}

#[tokio::test]
async fn distribution_points_seen_in_chains_are_queued_for_fetching() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::default();
    served.set(Some("org.crl"));
    let (url, _server) = start_server(served).await;
    let mut config = fetch_config(dir.path(), &url);
    config.crl_urls.clear();
    config.fetch_distribution_points = true;
    let validator = TrustValidator::from_config(&config, dir.path()).unwrap();
    let error = signer_check(&validator, "smime/sign-hopital-a.pem").unwrap_err();
    assert!(
        matches!(&error, TrustError::CrlUnavailable { url: Some(u), .. } if u == "http://crl.test.invalid/org.crl")
    );
    // Queued for the fetcher's next round (not fetched here: tests use no network).
    assert_eq!(
        validator.crl_store().seen_urls(),
        vec!["http://crl.test.invalid/org.crl".to_owned()]
    );
}
