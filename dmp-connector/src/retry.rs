//! Retry policy as pure functions: classification of deposit outcomes and the backoff schedule.
//!
//! Nothing here reads a clock or a global RNG: callers pass the elapsed time and an RNG (seed
//! it in tests), so the schedule is checked exactly. The worker applies [`decide`] after each
//! failed attempt.

use std::time::Duration;

use rand::Rng;

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The same request may succeed later (DMP busy or down, network, timeout).
    Transient,
    /// The same request will fail again (metadata, patient, hash, duplicate): dead-letter now.
    Permanent,
}

/// The classification of one attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Deposited (or recognised as an identical resubmission).
    Success,
    /// Failed, retry later.
    Transient,
    /// Failed for good.
    Permanent,
}

impl From<FailureClass> for Outcome {
    fn from(class: FailureClass) -> Outcome {
        match class {
            FailureClass::Transient => Outcome::Transient,
            FailureClass::Permanent => Outcome::Permanent,
        }
    }
}

/// The severity of an XDS `RegistryError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XdsSeverity {
    /// `urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error`.
    Error,
    /// `urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning`.
    Warning,
}

/// One `RegistryError` of a `RegistryErrorList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsError {
    /// `errorCode`, e.g. `XDSRegistryBusy`, `XDSNonIdenticalHash`.
    pub code: String,
    /// `severity`.
    pub severity: XdsSeverity,
    /// `codeContext`, the human-readable detail.
    pub context: Option<String>,
    /// `location`, when given.
    pub location: Option<String>,
}

/// The overall `RegistryResponse` status of a refused submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistryStatus {
    /// `…:ResponseStatusType:Failure`.
    Failure,
    /// `…:ResponseStatusType:PartialSuccess` (treated as a failure of the document).
    PartialSuccess,
}

/// Why one deposit attempt failed; produced by the ITI-41 client, classified by [`Self::class`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DepositFailure {
    /// The DMP answered with a non-success HTTP status.
    #[error("DMP answered HTTP {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// No complete answer within the timeout.
    #[error("DMP did not answer within {after:?} ({during})")]
    Timeout {
        /// The step that timed out (connect, TLS, request, response).
        during: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The connection could not be made or broke (refused, reset, TLS handshake failure).
    #[error("connection to the DMP failed: {detail}")]
    Connection {
        /// What happened.
        detail: String,
    },
    /// The registry refused the submission with a `RegistryErrorList`.
    #[error("DMP registry answered {status:?}: {}", codes(errors))]
    Registry {
        /// The response status.
        status: RegistryStatus,
        /// The listed errors.
        errors: Vec<XdsError>,
    },
    /// The answer could not be understood (not SOAP, not a RegistryResponse).
    #[error("unreadable DMP response: {detail}")]
    InvalidResponse {
        /// What was wrong.
        detail: String,
    },
    /// The request could not be built from the job (missing certificate, invalid metadata).
    #[error("deposit request could not be built: {detail}")]
    InvalidRequest {
        /// What was wrong.
        detail: String,
    },
}

fn codes(errors: &[XdsError]) -> String {
    let codes: Vec<&str> = errors.iter().map(|error| error.code.as_str()).collect();
    codes.join(", ")
}

impl DepositFailure {
    /// Whether retrying may help.
    pub fn class(&self) -> FailureClass {
        match self {
            DepositFailure::Http { status } => classify_http_status(*status),
            DepositFailure::Timeout { .. } | DepositFailure::Connection { .. } => {
                FailureClass::Transient
            }
            // A garbled answer is most often a proxy or an overloaded front end; the DMP's
            // idempotency by uniqueId makes the retry harmless.
            DepositFailure::InvalidResponse { .. } => FailureClass::Transient,
            DepositFailure::InvalidRequest { .. } => FailureClass::Permanent,
            DepositFailure::Registry { errors, .. } => classify_registry_errors(errors),
        }
    }

    /// The XDS error codes, if the registry gave any (for the ledger and the sender's notice).
    pub fn xds_codes(&self) -> Vec<&str> {
        match self {
            DepositFailure::Registry { errors, .. } => {
                errors.iter().map(|error| error.code.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// HTTP 5xx, 408 and 429 are transient; other statuses are permanent.
pub fn classify_http_status(status: u16) -> FailureClass {
    match status {
        408 | 429 | 500..=599 => FailureClass::Transient,
        _ => FailureClass::Permanent,
    }
}

/// The class of one XDS error code: the busy, not-available and out-of-resources codes are
/// transient; everything else (metadata, patient, hash, size, non-identical duplicate, and
/// unknown codes, so that an unexpected refusal is not hammered) is permanent.
pub fn classify_xds_code(code: &str) -> FailureClass {
    match code {
        "XDSRegistryBusy" | "XDSRepositoryBusy" | "XDSRegistryNotAvailable" => {
            FailureClass::Transient
        }
        _ if code.ends_with("OutOfResources") => FailureClass::Transient,
        _ => FailureClass::Permanent,
    }
}

/// A list is transient only when it has errors of severity Error and all of them are transient
/// (one permanent error means the same submission fails again).
pub fn classify_registry_errors(errors: &[XdsError]) -> FailureClass {
    let mut severe = errors
        .iter()
        .filter(|error| error.severity == XdsSeverity::Error)
        .peekable();
    if severe.peek().is_none() {
        return FailureClass::Permanent;
    }
    if severe.all(|error| classify_xds_code(&error.code) == FailureClass::Transient) {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    }
}

/// How the exponential delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// No jitter: `min(cap, base·2^(n−1))` exactly.
    None,
    /// Full jitter: uniform in `[0, min(cap, base·2^(n−1))]`.
    Full,
    /// Decorrelated jitter: uniform in `[base, 3·previous]`, capped.
    Decorrelated,
}

/// The retry policy of transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay (before jitter).
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// Give up when the next attempt would start later than this after the first one.
    pub horizon: Duration,
    /// Give up after this many attempts, if set.
    pub max_attempts: Option<u32>,
    /// The jitter.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 30 s doubling up to 1 h, for at most 48 h, full jitter.
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
            horizon: Duration::from_secs(48 * 3600),
            max_attempts: None,
            jitter: Jitter::Full,
        }
    }
}

/// Why the policy stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// The failure is permanent.
    Permanent,
    /// The next attempt would fall past the horizon.
    HorizonReached,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop: dead-letter the job.
    GiveUp(GiveUp),
}

/// The un-jittered delay after `attempts` failed attempts (1 = after the first failure).
pub fn exponential_delay(policy: &RetryPolicy, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(63);
    let factor = 1u64 << doublings;
    let base = u64::try_from(policy.base.as_millis()).unwrap_or(u64::MAX);
    let cap = u64::try_from(policy.cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(base.saturating_mul(factor).min(cap))
}

/// The delay after `attempts` failed attempts; `previous` is the last delay used (for
/// decorrelated jitter).
pub fn next_delay<R: Rng + ?Sized>(
    policy: &RetryPolicy,
    attempts: u32,
    previous: Option<Duration>,
    rng: &mut R,
) -> Duration {
    let cap = u64::try_from(policy.cap.as_millis()).unwrap_or(u64::MAX);
    match policy.jitter {
        Jitter::None => exponential_delay(policy, attempts),
        Jitter::Full => {
            let ceiling =
                u64::try_from(exponential_delay(policy, attempts).as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(rng.random_range(0..=ceiling))
        }
        Jitter::Decorrelated => {
            let base = u64::try_from(policy.base.as_millis()).unwrap_or(u64::MAX);
            let previous = previous
                .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(base);
            let upper = previous.saturating_mul(3).max(base);
            Duration::from_millis(rng.random_range(base..=upper).min(cap))
        }
    }
}

/// The decision after a failed attempt of class `class`, the `attempts`-th (1-based), made
/// `elapsed` after the first attempt started.
pub fn decide<R: Rng + ?Sized>(
    policy: &RetryPolicy,
    class: FailureClass,
    attempts: u32,
    elapsed: Duration,
    previous: Option<Duration>,
    rng: &mut R,
) -> Decision {
    if class == FailureClass::Permanent {
        return Decision::GiveUp(GiveUp::Permanent);
    }
    if policy.max_attempts.is_some_and(|max| attempts >= max) {
        return Decision::GiveUp(GiveUp::AttemptsExhausted);
    }
    let delay = next_delay(policy, attempts, previous, rng);
    if elapsed.saturating_add(delay) > policy.horizon {
        return Decision::GiveUp(GiveUp::HorizonReached);
    }
    Decision::RetryAfter(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            horizon: Duration::from_secs(600),
            max_attempts: None,
            jitter,
        }
    }

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let policy = policy(Jitter::None);
        let delays: Vec<u64> = (1..=9)
            .map(|n| exponential_delay(&policy, n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(exponential_delay(&policy, 500), Duration::from_secs(60));
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_and_is_seeded() {
        let policy = policy(Jitter::Full);
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..=12)
                .map(|n| next_delay(&policy, n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        let first = draw(7);
        assert_eq!(first, draw(7), "same seed, same schedule");
        for (n, delay) in (1..).zip(&first) {
            assert!(*delay <= exponential_delay(&policy, n));
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_cap() {
        let policy = policy(Jitter::Decorrelated);
        let mut rng = StdRng::seed_from_u64(3);
        let mut previous = None;
        for n in 1..100 {
            let delay = next_delay(&policy, n, previous, &mut rng);
            assert!(delay >= policy.base && delay <= policy.cap, "{delay:?}");
            previous = Some(delay);
        }
    }

    #[test]
    fn decide_stops_at_permanent_horizon_and_attempts() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut policy = policy(Jitter::None);
        let permanent = FailureClass::Permanent;
        let transient = FailureClass::Transient;
        assert_eq!(
            decide(&policy, permanent, 1, Duration::ZERO, None, &mut rng),
            Decision::GiveUp(GiveUp::Permanent)
        );
        assert_eq!(
            decide(&policy, transient, 3, Duration::ZERO, None, &mut rng),
            Decision::RetryAfter(Duration::from_secs(4))
        );
        assert_eq!(
            decide(
                &policy,
                transient,
                9,
                Duration::from_secs(541),
                None,
                &mut rng
            ),
            Decision::GiveUp(GiveUp::HorizonReached)
        );
        policy.max_attempts = Some(3);
        assert_eq!(
            decide(&policy, transient, 3, Duration::ZERO, None, &mut rng),
            Decision::GiveUp(GiveUp::AttemptsExhausted)
        );
    }

    #[test]
    fn xds_codes_are_classified() {
        for code in [
            "XDSRegistryBusy",
            "XDSRepositoryBusy",
            "XDSRegistryOutOfResources",
            "XDSRepositoryOutOfResources",
            "XDSRegistryNotAvailable",
        ] {
            assert_eq!(classify_xds_code(code), FailureClass::Transient, "{code}");
        }
        for code in [
            "XDSRegistryMetadataError",
            "XDSRepositoryMetadataError",
            "XDSUnknownPatientId",
            "XDSPatientIdDoesNotMatch",
            "XDSNonIdenticalHash",
            "XDSNonIdenticalSize",
            "XDSDuplicateUniqueIdInRegistry",
            "SomethingNew",
        ] {
            assert_eq!(classify_xds_code(code), FailureClass::Permanent, "{code}");
        }
    }

    #[test]
    fn failures_are_classified() {
        let error = |code: &str, severity| XdsError {
            code: code.to_owned(),
            severity,
            context: None,
            location: None,
        };
        let registry = |errors| DepositFailure::Registry {
            status: RegistryStatus::Failure,
            errors,
        };
        use FailureClass::{Permanent, Transient};
        assert_eq!(DepositFailure::Http { status: 503 }.class(), Transient);
        assert_eq!(DepositFailure::Http { status: 500 }.class(), Transient);
        assert_eq!(DepositFailure::Http { status: 400 }.class(), Permanent);
        let timeout = DepositFailure::Timeout {
            during: "response".to_owned(),
            after: Duration::from_secs(30),
        };
        assert_eq!(timeout.class(), Transient);
        let refused = DepositFailure::Connection {
            detail: "refused".to_owned(),
        };
        assert_eq!(refused.class(), Transient);
        let busy = registry(vec![error("XDSRegistryBusy", XdsSeverity::Error)]);
        assert_eq!(busy.class(), Transient);
        assert_eq!(busy.xds_codes(), ["XDSRegistryBusy"]);
        let mixed = registry(vec![
            error("XDSRegistryBusy", XdsSeverity::Error),
            error("XDSUnknownPatientId", XdsSeverity::Error),
        ]);
        assert_eq!(mixed.class(), Permanent);
        let warned = registry(vec![
            error("XDSRegistryBusy", XdsSeverity::Error),
            error("XDSExtraMetadataNotSaved", XdsSeverity::Warning),
        ]);
        assert_eq!(warned.class(), Transient);
        assert_eq!(registry(Vec::new()).class(), Permanent);
    }
}
