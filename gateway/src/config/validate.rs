//! [`RawConfig`] → [`Config`]: defaults, parsing of values, existence of files, cross-checks.
//!
//! Every check records its problem and carries on, so that one run lists everything. One
//! function per section; a new section (`[smime]`, `[trust]`) gets its own function here, or
//! its own module when it grows, called from [`validate`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smtp_in::limits::Limits;

use super::error::ConfigProblem;
use super::raw::{
    RawConfig, RawLimits, RawListener, RawListenerMode, RawLogFormat, RawLogging, RawServer,
    RawTls, RawWhitelist,
};
use super::types::{
    Config, ListenMode, ListenerSettings, LogFormat, LoggingSettings, ServerSettings, TlsFiles,
    WhitelistFiles,
};

/// Default of `server.state_dir`, relative to the configuration file's directory.
const DEFAULT_STATE_DIR: &str = "../var";
/// Default of `logging.level`.
const DEFAULT_LOG_LEVEL: &str = "info";
/// RFC 5321 §4.5.3.1.4: a server must accept command lines of 512 octets.
const MIN_COMMAND_LINE: u64 = 512;
/// RFC 5321 §4.5.3.1.6: a server must accept text lines of 1000 octets.
const MIN_TEXT_LINE: u64 = 1000;

/// Validates `raw`; `base` is the configuration file's directory, against which paths resolve.
pub(crate) fn validate(
    raw: RawConfig,
    file: &Path,
    base: &Path,
    removed: &HashSet<String>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<Config> {
    let mut checker = Checker {
        base,
        removed,
        problems,
    };
    let server = checker.server(raw.server.unwrap_or_default());
    let (listeners, needs) = checker.listeners(raw.listeners);
    let tls = checker.tls(raw.tls.unwrap_or_default(), needs);
    let whitelist = checker.whitelist(raw.whitelist, needs);
    let limits = checker.limits(raw.limits.unwrap_or_default());
    let logging = checker.logging(raw.logging.unwrap_or_default());
    if !checker.problems.is_empty() {
        return None;
    }
    Some(Config {
        file: file.to_path_buf(),
        server: server?,
        listeners,
        tls: tls?,
        whitelist,
        limits,
        logging: logging?,
        smime: raw.smime.unwrap_or_default(),
        trust: raw.trust.unwrap_or_default(),
        documents: raw.documents.unwrap_or_default(),
        ledger: raw.ledger.unwrap_or_default(),
        admin: raw.admin.unwrap_or_default(),
        pipeline: raw.pipeline.unwrap_or_default(),
        queue: raw.queue.unwrap_or_default(),
        dmp: raw.dmp.unwrap_or_default(),
        relay: raw.relay.unwrap_or_default(),
        directory: base.to_path_buf(),
    })
}

/// What the listeners ask of the other sections, counting entries that have errors too, so that
/// one broken listener does not hide the problems of the sections it depends on.
#[derive(Debug, Clone, Copy, Default)]
struct ListenerNeeds {
    client_ca_bundle: bool,
    whitelist: bool,
}

/// Collects problems while sections are validated.
struct Checker<'a> {
    base: &'a Path,
    removed: &'a HashSet<String>,
    problems: &'a mut Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn server(&mut self, raw: RawServer) -> Option<ServerSettings> {
        let hostname = self.required("server.hostname", raw.hostname);
        if let Some(name) = &hostname
            && let Err(reason) = check_hostname(name)
        {
            self.invalid(
                "server.hostname",
                format!("invalid host name {name:?}: {reason}"),
            );
        }
        let state_dir = self.resolve(raw.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR));
        self.not_a_file("server.state_dir", &state_dir);
        let spool_dir = match raw.spool_dir {
            Some(dir) => self.resolve(&dir),
            None => state_dir.join("spool"),
        };
        self.not_a_file("server.spool_dir", &spool_dir);
        Some(ServerSettings {
            hostname: hostname?,
            state_dir,
            spool_dir,
        })
    }

    fn listeners(
        &mut self,
        raw: Option<Vec<RawListener>>,
    ) -> (Vec<ListenerSettings>, ListenerNeeds) {
        let raw = raw.unwrap_or_default();
        if raw.is_empty() && !self.was_removed("listeners") {
            self.invalid(
                "listeners",
                "at least one [[listeners]] entry is required".into(),
            );
        }
        let mut listeners: Vec<ListenerSettings> = Vec::new();
        let mut seen: Vec<(SocketAddr, usize)> = Vec::new();
        let mut needs = ListenerNeeds::default();
        for (index, entry) in raw.into_iter().enumerate() {
            let key = |name: &str| format!("listeners[{index}].{name}");
            let address = self
                .required(&key("address"), entry.address)
                .and_then(|text| match text.parse::<SocketAddr>() {
                    Ok(address) => Some(address),
                    Err(_) => {
                        self.invalid(&key("address"), format!("invalid socket address {text:?}"));
                        None
                    }
                });
            if let Some(address) = address {
                // Port 0 asks the system for a free port each time; two of them never collide.
                if address.port() != 0
                    && let Some((_, first)) = seen.iter().find(|(other, _)| *other == address)
                {
                    self.invalid(
                        &key("address"),
                        format!("address \"{address}\" is already used by listeners[{first}]"),
                    );
                }
                seen.push((address, index));
            }
            let mode = self
                .required(&key("mode"), entry.mode)
                .map(|mode| match mode {
                    RawListenerMode::Starttls => ListenMode::StartTls,
                    RawListenerMode::Implicit => ListenMode::Implicit,
                });
            let require_client_certificate = entry.require_client_certificate.unwrap_or(true);
            let whitelist = entry.whitelist.unwrap_or(true);
            needs.client_ca_bundle |= require_client_certificate;
            needs.whitelist |= whitelist;
            if whitelist && !require_client_certificate {
                self.invalid(
                    &key("whitelist"),
                    "the whitelist is checked against the client certificate: it needs \
                     require_client_certificate = true"
                        .into(),
                );
            }
            if let (Some(address), Some(mode)) = (address, mode) {
                listeners.push(ListenerSettings {
                    address,
                    mode,
                    require_client_certificate,
                    whitelist,
                });
            }
        }
        (listeners, needs)
    }

    fn tls(&mut self, raw: RawTls, needs: ListenerNeeds) -> Option<TlsFiles> {
        let certificate = self.file("tls.certificate", raw.certificate, true);
        let private_key = self.file("tls.private_key", raw.private_key, true);
        let client_ca_bundle = self.file(
            "tls.client_ca_bundle",
            raw.client_ca_bundle,
            needs.client_ca_bundle,
        );
        let crl_entries = raw.crl_files.unwrap_or_default();
        if client_ca_bundle.is_some()
            && crl_entries.is_empty()
            && !self.was_removed("tls.crl_files")
        {
            // Revocation is checked for every certificate of the chain; with no CRL every client fails.
            self.invalid(
                "tls.crl_files",
                "at least one CRL is required when client certificates are verified".into(),
            );
        }
        let mut crl_files = Vec::new();
        for (index, entry) in crl_entries.into_iter().enumerate() {
            if let Some(path) = self.file(&format!("tls.crl_files[{index}]"), Some(entry), true) {
                crl_files.push(path);
            }
        }
        Some(TlsFiles {
            certificate: certificate?,
            private_key: private_key?,
            client_ca_bundle,
            crl_files,
        })
    }

    fn whitelist(
        &mut self,
        raw: Option<RawWhitelist>,
        needs: ListenerNeeds,
    ) -> Option<WhitelistFiles> {
        if raw.is_none() && !needs.whitelist {
            return None;
        }
        let raw = raw.unwrap_or_default();
        let file = self.file("whitelist.file", raw.file, true);
        let checksum_file = self.file("whitelist.checksum_file", raw.checksum_file, false);
        Some(WhitelistFiles {
            file: file?,
            checksum_file,
        })
    }

    fn limits(&mut self, raw: RawLimits) -> Limits {
        let defaults = Limits::default();
        let size = |value: Option<u64>, default: u64| value.unwrap_or(default);
        let max_message_size = size(raw.max_message_size, defaults.max_message_size);
        self.at_least("limits.max_message_size", max_message_size, 1);
        let max_command_line = self.count(
            "limits.max_command_line",
            raw.max_command_line,
            defaults.max_command_line,
            MIN_COMMAND_LINE,
        );
        let max_text_line = self.count(
            "limits.max_text_line",
            raw.max_text_line,
            defaults.max_text_line,
            MIN_TEXT_LINE,
        );
        Limits {
            max_message_size,
            max_recipients: self.count(
                "limits.max_recipients",
                raw.max_recipients,
                defaults.max_recipients,
                1,
            ),
            max_command_line,
            max_text_line,
            idle_timeout: self.seconds(
                "limits.idle_timeout",
                raw.idle_timeout,
                defaults.idle_timeout,
                1,
            ),
            session_timeout: self.seconds(
                "limits.session_timeout",
                raw.session_timeout,
                defaults.session_timeout,
                1,
            ),
            max_connections: self.count(
                "limits.max_connections",
                raw.max_connections,
                defaults.max_connections,
                1,
            ),
            max_connections_per_ip: self.count(
                "limits.max_connections_per_ip",
                raw.max_connections_per_ip,
                defaults.max_connections_per_ip,
                1,
            ),
            max_bad_commands: self.count(
                "limits.max_bad_commands",
                raw.max_bad_commands,
                defaults.max_bad_commands,
                1,
            ),
            max_messages_per_session: self.count(
                "limits.max_messages_per_session",
                raw.max_messages_per_session,
                defaults.max_messages_per_session,
                1,
            ),
            // Zero is allowed: open sessions are then answered 421 as soon as shutdown begins.
            shutdown_grace: self.seconds(
                "limits.shutdown_grace",
                raw.shutdown_grace,
                defaults.shutdown_grace,
                0,
            ),
        }
    }

    fn logging(&mut self, raw: RawLogging) -> Option<LoggingSettings> {
        let format = match raw.format {
            Some(RawLogFormat::Json) => LogFormat::Json,
            Some(RawLogFormat::Text) | None => LogFormat::Text,
        };
        let level = raw.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&level) {
            self.invalid(
                "logging.level",
                format!("invalid filter {level:?}: {error}"),
            );
            return None;
        }
        Some(LoggingSettings { format, level })
    }

    // --- helpers -------------------------------------------------------------------------

    /// The value, or a "missing" problem unless the key was already reported and removed.
    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.was_removed(key) {
            self.problems.push(ConfigProblem::Missing {
                key: key.to_owned(),
            });
        }
        value
    }

    /// A path that must name an existing regular file; `required` says whether it may be absent.
    fn file(&mut self, key: &str, value: Option<String>, required: bool) -> Option<PathBuf> {
        let value = if required {
            self.required(key, value)?
        } else {
            value?
        };
        if value.is_empty() {
            self.invalid(key, "empty path".into());
            return None;
        }
        let path = self.resolve(&value);
        if !path.is_file() {
            self.problems.push(ConfigProblem::MissingFile {
                key: key.to_owned(),
                path,
            });
            return None;
        }
        Some(path)
    }

    /// Directories are created at start; a regular file in their place is an error now.
    fn not_a_file(&mut self, key: &str, path: &Path) {
        if path.exists() && !path.is_dir() {
            self.invalid(
                key,
                format!("{} exists and is not a directory", path.display()),
            );
        }
    }

    fn count<T: TryFrom<u64> + Copy>(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: T,
        minimum: u64,
    ) -> T {
        let Some(value) = value else {
            return default;
        };
        if !self.at_least(key, value, minimum) {
            return default;
        }
        T::try_from(value).unwrap_or_else(|_| {
            self.invalid(key, format!("{value} is too large"));
            default
        })
    }

    fn seconds(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: Duration,
        minimum: u64,
    ) -> Duration {
        match value {
            Some(value) if self.at_least(key, value, minimum) => Duration::from_secs(value),
            _ => default,
        }
    }

    fn at_least(&mut self, key: &str, value: u64, minimum: u64) -> bool {
        if value < minimum {
            self.invalid(key, format!("{value} is below the minimum of {minimum}"));
            return false;
        }
        true
    }

    fn invalid(&mut self, key: &str, message: String) {
        self.problems.push(ConfigProblem::Invalid {
            key: key.to_owned(),
            message,
        });
    }

    /// Whether `key` or one of its parents was removed by the parser because of an error.
    fn was_removed(&self, key: &str) -> bool {
        self.removed.iter().any(|removed| {
            key == removed
                || key
                    .strip_prefix(removed.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }

    fn resolve(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }
}

/// RFC 1035 host name syntax (letters, digits, hyphens; labels of 1–63 octets).
fn check_hostname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label cannot start or end with a hyphen");
        }
    }
    Ok(())
}
