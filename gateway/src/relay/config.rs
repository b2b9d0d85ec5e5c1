//! The `[relay]` configuration section and its `[[relay.routes]]`.
//!
//! Relative paths are relative to the configuration file's directory; they are resolved when the
//! [`Relayer`](super::Relayer) is built, which also loads and checks the files.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::RelayError;
pub(crate) use crate::config::resolve_path as resolve;

/// The `[relay]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// PEM certificate presented to next hops (the leaf is sent; the next hop holds the CAs).
    pub client_certificate: Option<PathBuf>,
    /// PEM PKCS#8 private key of `client_certificate`.
    pub client_key: Option<PathBuf>,
    /// PEM files of the anchors that next hops' server certificates must chain to.
    pub server_trust: Vec<PathBuf>,
    /// PEM files of intermediate CAs, for next hops that send only their leaf.
    pub server_intermediates: Vec<PathBuf>,
    /// PEM CRLs, one per CA of the chain: a CA without a CRL makes every check fail (fail closed).
    pub crl_files: Vec<PathBuf>,
    /// The next hop's certificate subject DN must be listed for the recipient domain.
    pub check_whitelist: bool,
    /// TCP connect, greeting, EHLO and TLS handshake, in seconds.
    pub connect_timeout_secs: u64,
    /// The whole transaction (MAIL, RCPT, DATA and the final reply), in seconds.
    pub command_timeout_secs: u64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// First retry delay of a transient failure, in seconds.
    pub retry_base_secs: u64,
    /// Longest retry delay, in seconds.
    pub retry_cap_secs: u64,
    /// Give up (and send a DSN) when the next attempt would fall this long after the first one.
    pub retry_horizon_secs: u64,
    /// Domains of patient mailboxes: masked documents are never sent there.
    pub patient_domains: Vec<String>,
    /// EHLO name; `server.hostname` when absent.
    pub hostname: Option<String>,
    /// Routes by recipient domain; `"*"` is the default route.
    pub routes: Vec<RouteConfig>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            client_certificate: None,
            client_key: None,
            server_trust: Vec::new(),
            server_intermediates: Vec::new(),
            crl_files: Vec::new(),
            check_whitelist: true,
            connect_timeout_secs: 30,
            command_timeout_secs: 120,
            concurrency: 4,
            retry_base_secs: 60,
            retry_cap_secs: 3600,
            retry_horizon_secs: 432_000,
            patient_domains: vec!["patient.mssante.fr".into()],
            hostname: None,
            routes: Vec::new(),
        }
    }
}

/// One `[[relay.routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Exact recipient domain, or `"*"`.
    pub domain: String,
    /// SMTP next hop or local Maildir.
    pub kind: RouteKind,
    /// Next hop host (smtp).
    #[serde(default)]
    pub host: Option<String>,
    /// Next hop port (smtp; default 25).
    #[serde(default)]
    pub port: Option<u16>,
    /// How TLS starts (smtp; default STARTTLS).
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Name checked in the next hop's certificate (smtp; default `host`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Maildir root (maildir): `<maildir>/<domain>/<local-part>/{tmp,new,cur}`.
    #[serde(default)]
    pub maildir: Option<PathBuf>,
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// SMTP over mutual TLS to a next hop.
    Smtp,
    /// Local Maildir delivery.
    Maildir,
}

/// How TLS starts toward a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain greeting, then `STARTTLS` (RFC 3207); a next hop without it is not used.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

impl RelayConfig {
    /// Checks what serde cannot; the error names the key at fault.
    pub fn validate(&self) -> Result<(), RelayError> {
        let positive = [
            ("relay.connect_timeout_secs", self.connect_timeout_secs),
            ("relay.command_timeout_secs", self.command_timeout_secs),
            ("relay.retry_base_secs", self.retry_base_secs),
            ("relay.retry_cap_secs", self.retry_cap_secs),
            ("relay.retry_horizon_secs", self.retry_horizon_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(config(key, "must be at least 1"));
            }
        }
        if self.concurrency == 0 {
            return Err(config("relay.concurrency", "must be at least 1"));
        }
        if self.retry_cap_secs < self.retry_base_secs {
            return Err(config(
                "relay.retry_cap_secs",
                "must not be smaller than relay.retry_base_secs",
            ));
        }
        if let Some(name) = &self.hostname
            && !is_domain_like(name)
        {
            return Err(config(
                "relay.hostname",
                format!("invalid host name {name:?}"),
            ));
        }
        for (index, domain) in self.patient_domains.iter().enumerate() {
            if !is_domain_like(domain) {
                return Err(config(
                    &format!("relay.patient_domains[{index}]"),
                    format!("invalid domain {domain:?}"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            route.validate(index)?;
            if !seen.insert(route.domain.to_ascii_lowercase()) {
                return Err(config(
                    &format!("relay.routes[{index}].domain"),
                    format!("domain {:?} has two routes", route.domain),
                ));
            }
        }
        if self
            .routes
            .iter()
            .any(|route| route.kind == RouteKind::Smtp)
        {
            let smtp = "is required when a route has kind = \"smtp\"";
            if self.client_certificate.is_none() {
                return Err(config("relay.client_certificate", smtp));
            }
            if self.client_key.is_none() {
                return Err(config("relay.client_key", smtp));
            }
            if self.server_trust.is_empty() {
                return Err(config("relay.server_trust", smtp));
            }
            // Without CRLs revocation would go unchecked: refuse rather than fail open.
            if self.crl_files.is_empty() {
                return Err(config("relay.crl_files", smtp));
            }
        }
        Ok(())
    }

    /// Whether `domain` holds patient mailboxes.
    pub fn is_patient_domain(&self, domain: &str) -> bool {
        self.patient_domains
            .iter()
            .any(|patient| patient.eq_ignore_ascii_case(domain))
    }

    /// The retry policy of transient failures (full jitter).
    pub fn retry_policy(&self) -> dmp_connector::retry::RetryPolicy {
        dmp_connector::retry::RetryPolicy {
            base: Duration::from_secs(self.retry_base_secs),
            cap: Duration::from_secs(self.retry_cap_secs),
            horizon: Duration::from_secs(self.retry_horizon_secs),
            max_attempts: None,
            jitter: dmp_connector::retry::Jitter::Full,
        }
    }
}

impl RouteConfig {
    fn validate(&self, index: usize) -> Result<(), RelayError> {
        let key = |name: &str| format!("relay.routes[{index}].{name}");
        if self.domain != "*" && !is_domain_like(&self.domain) {
            return Err(config(
                &key("domain"),
                format!("{:?} is neither a domain nor \"*\"", self.domain),
            ));
        }
        match self.kind {
            RouteKind::Smtp => {
                match &self.host {
                    None => return Err(config(&key("host"), "is required for kind = \"smtp\"")),
                    Some(host) if host.is_empty() || host.contains(char::is_whitespace) => {
                        return Err(config(&key("host"), format!("invalid host {host:?}")));
                    }
                    Some(_) => {}
                }
                if self.port == Some(0) {
                    return Err(config(&key("port"), "must not be 0"));
                }
                if let Some(name) = &self.server_name
                    && rustls::pki_types::ServerName::try_from(name.as_str()).is_err()
                {
                    return Err(config(
                        &key("server_name"),
                        format!("invalid server name {name:?}"),
                    ));
                }
                if self.maildir.is_some() {
                    return Err(config(&key("maildir"), "only for kind = \"maildir\""));
                }
            }
            RouteKind::Maildir => {
                if self.maildir.is_none() {
                    return Err(config(
                        &key("maildir"),
                        "is required for kind = \"maildir\"",
                    ));
                }
                let smtp_only = [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("tls", self.tls.is_some()),
                    ("server_name", self.server_name.is_some()),
                ];
                for (name, set) in smtp_only {
                    if set {
                        return Err(config(&key(name), "only for kind = \"smtp\""));
                    }
                }
            }
        }
        Ok(())
    }

    /// The name checked in the next hop's certificate.
    pub fn server_name(&self) -> &str {
        self.server_name
            .as_deref()
            .or(self.host.as_deref())
            .unwrap_or_default()
    }
}

fn config(key: &str, reason: impl Into<String>) -> RelayError {
    RelayError::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// A plausible DNS name: labels of letters, digits and hyphens (IDNs arrive as A-labels).
fn is_domain_like(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RelayConfig, toml::de::Error> {
        toml::from_str(text)
    }

    const SMTP: &str = r#"
        client_certificate = "tls/gateway.pem"
        client_key = "tls/gateway.key"
        server_trust = ["ca/root.pem"]
        crl_files = ["crl/root.crl.pem"]
        [[routes]]
        domain = "cabinet-c.mssante.test"
        kind = "smtp"
        host = "127.0.0.1"
        port = 2526
        tls = "implicit"
        [[routes]]
        domain = "*"
        kind = "maildir"
        maildir = "../var/mailboxes"
    "#;

    #[test]
    fn defaults_and_full_section_parse() {
        let empty = parse("").unwrap();
        assert_eq!(empty, RelayConfig::default());
        assert!(empty.validate().is_ok());
        let config = parse(SMTP).unwrap();
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        assert_eq!(config.routes[0].tls, Some(TlsMode::Implicit));
        assert_eq!(config.routes[0].server_name(), "127.0.0.1");
        assert!(config.is_patient_domain("PATIENT.mssante.fr"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = parse("client_cert = \"x\"").unwrap_err().to_string();
        assert!(error.contains("client_cert"), "{error}");
        let error = parse("[[routes]]\ndomain = \"*\"\nkind = \"maildir\"\nmaildr = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("maildr"), "{error}");
    }

    fn key_of(config: &RelayConfig) -> String {
        match config.validate() {
            Err(RelayError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn validate_names_the_bad_key() {
        let base = parse(SMTP).unwrap();
        let mut config = base.clone();
        config.routes[0].host = None;
        assert_eq!(key_of(&config), "relay.routes[0].host");
        let mut config = base.clone();
        config.routes[1].port = Some(25);
        assert_eq!(key_of(&config), "relay.routes[1].port");
        let mut config = base.clone();
        config.routes[1].domain = "cabinet-c.mssante.test".into();
        assert_eq!(key_of(&config), "relay.routes[1].domain");
        let mut config = base.clone();
        config.crl_files.clear();
        assert_eq!(key_of(&config), "relay.crl_files");
        let mut config = base.clone();
        config.retry_cap_secs = 1;
        assert_eq!(key_of(&config), "relay.retry_cap_secs");
        let mut config = base.clone();
        config.routes[0].domain = "a b".into();
        assert_eq!(key_of(&config), "relay.routes[0].domain");
        let mut config = base;
        config.concurrency = 0;
        assert_eq!(key_of(&config), "relay.concurrency");
    }
}
