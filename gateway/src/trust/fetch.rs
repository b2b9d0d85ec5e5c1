//! Keeps CRLs fresh: downloads HTTP distribution points into an on-disk cache on a schedule.
//!
//! A download replaces the held CRL only if it decodes, verifies against a configured CA and is not older
//! than what is held; any failure keeps the last valid CRL (SC.MSS/CONF.22), so an outage of the
//! distribution point or a replayed old CRL cannot weaken revocation checking.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssl::x509::X509;
use sha2::{Digest, Sha256};

use super::TrustValidator;
use super::config::{self, ConfigError, TrustConfig};
use super::crl::{CrlOrigin, CrlStore, HeldCrl};
use super::time::Timestamp;

/// What one download gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchOutcome {
    /// A newer CRL was stored and cached.
    Updated {
        /// The distribution point.
        url: String,
        /// thisUpdate of the new CRL.
        this_update: Timestamp,
    },
    /// The CRL served is the one already held (or older): nothing changed.
    Unchanged {
        /// The distribution point.
        url: String,
    },
    /// The download or the CRL was refused; the last valid CRL is kept.
    Failed {
        /// The distribution point.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Downloads CRLs into the store and the cache directory.
pub struct CrlFetcher {
    store: Arc<CrlStore>,
    client: reqwest::Client,
    cache_dir: PathBuf,
    configured_urls: Vec<String>,
    issuers: Vec<X509>,
    interval: Duration,
    retry: Duration,
    max_bytes: u64,
}

impl CrlFetcher {
    /// A fetcher feeding the CRL store of `validator` (whose CAs vouch for downloaded CRLs), or None when
    /// no cache directory is configured (fetching disabled).
    pub fn from_config(
        validator: &TrustValidator,
        config: &TrustConfig,
        config_dir: &Path,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(cache_dir) = &config.crl_cache_dir else {
            return Ok(None);
        };
        let cache_dir = config::resolve(config_dir, cache_dir);
        std::fs::create_dir_all(&cache_dir).map_err(|source| ConfigError::Io {
            key: "trust.crl_cache_dir",
            path: cache_dir.clone(),
            source,
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.crl_fetch_timeout_secs))
            // Fetches are hours apart: a pooled connection would only go stale.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| ConfigError::Value {
                key: "trust.crl_fetch_timeout_secs",
                reason: e.to_string(),
            })?;
        Ok(Some(Self {
            store: validator.crl_store().clone(),
            client,
            cache_dir,
            configured_urls: config.crl_urls.clone(),
            issuers: validator.authorities().to_vec(),
            interval: Duration::from_secs(config.crl_refresh_interval_secs.max(1)),
            retry: Duration::from_secs(config.crl_retry_secs.max(1)),
            max_bytes: config.crl_max_bytes,
        }))
    }

    /// Downloads every configured and seen distribution point once.
    pub async fn refresh_once(&self) -> Vec<FetchOutcome> {
        let mut urls = self.configured_urls.clone();
        for url in self.store.seen_urls() {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let mut outcomes = Vec::with_capacity(urls.len());
        for url in urls {
            let outcome = match self.fetch(&url).await {
                Ok(outcome) => outcome,
                Err(reason) => FetchOutcome::Failed {
                    url: url.clone(),
                    reason,
                },
            };
            match &outcome {
                FetchOutcome::Failed { url, reason } => {
                    tracing::warn!(%url, %reason, "CRL fetch failed, keeping the last valid CRL")
                }
                FetchOutcome::Updated { url, this_update } => {
                    tracing::info!(%url, %this_update, "CRL updated")
                }
                FetchOutcome::Unchanged { .. } => {}
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Runs [`Self::refresh_once`] forever on the schedule of [`next_refresh`]; abort the handle to stop.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let outcomes = self.refresh_once().await;
                let failed = outcomes
                    .iter()
                    .any(|o| matches!(o, FetchOutcome::Failed { .. }));
                let delay = next_refresh(
                    Timestamp::now(),
                    &self.store.next_updates(),
                    self.interval,
                    self.retry,
                    failed,
                );
                tokio::time::sleep(delay).await;
            }
        })
    }

    async fn fetch(&self, url: &str) -> Result<FetchOutcome, String> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("download: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(format!("larger than {} bytes", self.max_bytes));
        }
        // Streamed with a cap: a chunked response announces no length.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("download: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.max_bytes {
                return Err(format!("larger than {} bytes", self.max_bytes));
            }
        }
        let origin = CrlOrigin::Url(url.to_owned());
        let held = HeldCrl::parse(&body, origin.clone())?;
        let verified = self.verify_signature(&held)?;
        if self
            .store
            .newest_from(&origin)
            .is_some_and(|newest| newest >= held.this_update)
        {
            return Ok(FetchOutcome::Unchanged {
                url: url.to_owned(),
            });
        }
        let der = held.crl.to_der().map_err(|e| e.to_string())?;
        write_cache(&self.cache_dir, url, &der).map_err(|e| format!("cache: {e}"))?;
        let this_update = held.this_update;
        if verified {
            self.store.replace_from_origin(held);
        } else {
            self.store.insert(held);
        }
        Ok(FetchOutcome::Updated {
            url: url.to_owned(),
            this_update,
        })
    }

    /// Ok(true) if a configured CA signed it, Ok(false) if its issuer is not configured (checked at use),
    /// Err if a configured CA of that name did not sign it.
    fn verify_signature(&self, held: &HeldCrl) -> Result<bool, String> {
        let mut named = false;
        for issuer in &self.issuers {
            if !matches!(
                held.crl.issuer_name().try_cmp(issuer.subject_name()),
                Ok(std::cmp::Ordering::Equal)
            ) {
                continue;
            }
            named = true;
            if issuer
                .public_key()
                .and_then(|key| held.crl.verify(&key))
                .unwrap_or(false)
            {
                return Ok(true);
            }
        }
        if named {
            Err(format!(
                "signature of the CRL of {} does not verify",
                held.issuer
            ))
        } else {
            Ok(false)
        }
    }
}

/// When to refresh next: after `interval`, or soon after the earliest nextUpdate if that comes first,
/// or after `retry` when the last round failed; never sooner than one minute (no hammering).
pub fn next_refresh(
    now: Timestamp,
    next_updates: &[Option<Timestamp>],
    interval: Duration,
    retry: Duration,
    last_failed: bool,
) -> Duration {
    let floor = Duration::from_secs(60);
    let mut delay = if last_failed {
        retry.min(interval)
    } else {
        interval
    };
    for next in next_updates.iter().flatten() {
        if next.0 > now.0 {
            let until = Duration::from_secs(u64::try_from(next.0 - now.0).unwrap_or(u64::MAX));
            delay = delay.min(until);
        }
    }
    delay.max(floor)
}

fn cache_stem(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

/// Writes `<hash>.crl` then `<hash>.url` atomically (temporary file + rename), so a crash leaves either
/// the old CRL or the new one, never half a file.
fn write_cache(dir: &Path, url: &str, der: &[u8]) -> std::io::Result<()> {
    let stem = cache_stem(url);
    for (extension, bytes) in [("crl", der), ("url", url.as_bytes())] {
        let target = dir.join(format!("{stem}.{extension}"));
        let temporary = dir.join(format!(".{stem}.{extension}.tmp"));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, &target)?;
    }
    Ok(())
}

/// Loads the CRLs cached by earlier runs (each `<hash>.crl` with its `<hash>.url`).
pub fn load_cache(store: &CrlStore, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|e| e != "crl") {
            continue;
        }
        let (Ok(der), Ok(url)) = (
            std::fs::read(&path),
            std::fs::read_to_string(path.with_extension("url")),
        ) else {
            continue;
        };
        match HeldCrl::parse(&der, CrlOrigin::Url(url.clone())) {
            Ok(held) => {
                store.insert(held);
                store.note_url(&url);
            }
            Err(reason) => tracing::warn!(path = %path.display(), %reason, "ignored a cached CRL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_prefers_the_nearest_next_update() {
        let hour = Duration::from_secs(3600);
        let five = Duration::from_secs(300);
        let now = Timestamp(1_000_000);
        assert_eq!(next_refresh(now, &[], hour, five, false), hour);
        assert_eq!(next_refresh(now, &[], hour, five, true), five);
        assert_eq!(
            next_refresh(now, &[Some(Timestamp(1_000_600))], hour, five, false),
            Duration::from_secs(600)
        );
        // Already expired CRLs do not make the loop spin: the retry delay and the floor apply.
        assert_eq!(
            next_refresh(now, &[Some(Timestamp(10))], hour, five, false),
            hour
        );
        assert_eq!(
            next_refresh(now, &[Some(Timestamp(1_000_001))], hour, five, false),
            Duration::from_secs(60)
        );
    }
}
