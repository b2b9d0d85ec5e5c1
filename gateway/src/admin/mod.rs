//! The admin HTTP endpoint (loopback by default): `/healthz` (the process answers), `/readyz`
//! (listeners open and not draining), `/metrics` (Prometheus text: the pipeline's counters, the
//! messages with open jobs and the queues' jobs per state). With `token_file` set, every request
//! needs `Authorization: Bearer <token>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dmp_connector::queue::Queue;
use serde::Deserialize;
use tokio::sync::watch;

use crate::pipeline::Pipeline;

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the endpoint at all (off unless configured: several gateways on one machine, or
    /// tests, would otherwise fight for one port).
    pub enabled: bool,
    /// Where (keep it on loopback or a management network).
    pub listen: SocketAddr,
    /// A file holding the bearer token required on every request (none: no token).
    pub token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            token_file: None,
        }
    }
}

/// The admin bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Token {
    /// The token text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl AdminConfig {
    /// Reads the token file, if one is configured.
    pub fn token(&self, config_dir: &Path) -> Result<Option<Token>, String> {
        let Some(file) = &self.token_file else {
            return Ok(None);
        };
        let path = crate::deposit::resolve(config_dir, file);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("admin.token_file {}: {error}", path.display()))?;
        let token = text.trim().to_owned();
        if token.len() < 16 {
            return Err(format!(
                "admin.token_file {}: the token must be at least 16 characters",
                path.display()
            ));
        }
        Ok(Some(Token(token)))
    }
}

#[derive(Clone)]
struct AdminState {
    pipeline: Arc<Pipeline>,
    ready: watch::Receiver<bool>,
    token: Option<Arc<str>>,
}

/// Binds the endpoint and serves it in the background until the process ends.
pub async fn spawn(
    listen: SocketAddr,
    token: Option<Token>,
    pipeline: Arc<Pipeline>,
    ready: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let state = AdminState {
        pipeline,
        ready,
        token: token.map(|token| Arc::from(token.0)),
    };
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "admin endpoint stopped");
        }
    });
    Ok((address, task))
}

fn authorised(state: &AdminState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

/// Compares without stopping at the first difference (the token is a secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response()
}

async fn healthz(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return unauthorised();
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return unauthorised();
    }
    if *state.ready.borrow() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return unauthorised();
    }
    let pipeline = &state.pipeline;
    let mut out = String::new();
    pipeline.metrics().render(&mut out);
    out.push_str("# HELP gateway_open_messages Accepted messages with jobs not final yet.\n");
    out.push_str("# TYPE gateway_open_messages gauge\n");
    out.push_str(&format!(
        "gateway_open_messages {}\n",
        pipeline.open_messages()
    ));
    out.push_str("# HELP gateway_queue_jobs Jobs per queue and state.\n");
    out.push_str("# TYPE gateway_queue_jobs gauge\n");
    let (deposits, relays) = pipeline.queues();
    let queues = deposits
        .map(|queue| ("deposits", queue))
        .into_iter()
        .chain([("relay", relays)]);
    for (name, queue) in queues {
        match queue.counts().await {
            Ok(counts) => {
                for (job_state, value) in [
                    ("ready", counts.ready),
                    ("delayed", counts.delayed),
                    ("leased", counts.leased),
                    ("dead", counts.dead),
                ] {
                    out.push_str(&format!(
                        "gateway_queue_jobs{{queue=\"{name}\",state=\"{job_state}\"}} {value}\n"
                    ));
                }
            }
            Err(error) => tracing::warn!(queue = name, %error, "queue counts unavailable"),
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abcdef0123456789", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456789", b"abcdef012345678x"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn a_short_token_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("t"), "short\n").expect("write");
        let config = AdminConfig {
            token_file: Some(PathBuf::from("t")),
            ..AdminConfig::default()
        };
        assert!(
            config
                .token(dir.path())
                .unwrap_err()
                .contains("16 characters")
        );
        std::fs::write(dir.path().join("t"), "0123456789abcdef0123\n").expect("write");
        let token = config
            .token(dir.path())
            .expect("token")
            .expect("configured");
        assert_eq!(token.expose(), "0123456789abcdef0123");
        assert_eq!(format!("{token:?}"), "Token(redacted)");
    }
}
