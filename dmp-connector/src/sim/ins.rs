//! INS checks the DMP applies to `patientId` (DOMAIN §3.1, §3.2, §3.5).
//!
//! The gateway has the same key check (`gateway::ins`), but `dmp-connector` must not depend
//! on `gateway` (dependencies point gateway → dmp-connector), and the simulator should check
//! independently of the code it tests anyway; the check is a dozen lines.

use crate::deposit::InsAuthority;

/// Which INS authorities a DMP environment accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum Environment {
    /// Test/homologation: fictitious patients only (`.10` test NIR, `.11` demo NIR).
    #[default]
    Test,
    /// Production: INS-NIR `.8` and INS-NIA `.9` only.
    Production,
}

impl Environment {
    /// Whether `authority` is accepted here.
    pub fn accepts(self, authority: InsAuthority) -> bool {
        match self {
            Environment::Test => !authority.is_production(),
            Environment::Production => authority.is_production(),
        }
    }
}

/// Why a `patientId` CX is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsError {
    /// Not `<matricule>^^^&<OID>&ISO^NH`.
    #[error("patientId {0:?} is not an INS CX (matricule^^^&OID&ISO^NH)")]
    NotCx(String),
    /// The matricule is not 13 characters + 2 digits, or bad characters.
    #[error("INS matricule has an invalid format")]
    Format,
    /// The key does not match.
    #[error("INS key {found:02} does not match the computed key {expected:02}")]
    Key {
        /// The key in the matricule.
        found: u64,
        /// The computed key.
        expected: u64,
    },
    /// The OID is not an INS authority.
    #[error("assigning authority {0} is not an INS OID")]
    UnknownAuthority(String),
    /// The authority is not accepted in this environment.
    #[error("assigning authority {oid} is not accepted in the {environment:?} environment")]
    WrongEnvironment {
        /// The OID.
        oid: String,
        /// The environment.
        environment: Environment,
    },
}

/// The expected key of a 13-character number: `97 − (N mod 97)`, with `2A` → `19` and
/// `2B` → `18` at the département position (characters 6–7) only.
pub fn ins_key(number: &str) -> Option<u64> {
    if number.len() != 13 || !number.is_ascii() {
        return None;
    }
    let digits = match &number[5..7] {
        "2A" | "2a" => format!("{}19{}", &number[..5], &number[7..]),
        "2B" | "2b" => format!("{}18{}", &number[..5], &number[7..]),
        _ => number.to_owned(),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(97 - n % 97)
}

/// Checks a `patientId` CX: syntax, key, authority and environment.
pub fn check_patient_cx(cx: &str, environment: Environment) -> Result<InsAuthority, InsError> {
    let not_cx = || InsError::NotCx(cx.to_owned());
    let fields: Vec<&str> = cx.split('^').collect();
    if fields.len() != 5 || fields[4] != "NH" || !fields[1].is_empty() || !fields[2].is_empty() {
        return Err(not_cx());
    }
    let authority_parts: Vec<&str> = fields[3].split('&').collect();
    if authority_parts.len() != 3 || authority_parts[2] != "ISO" {
        return Err(not_cx());
    }
    let oid = authority_parts[1];
    let matricule = fields[0];
    if matricule.len() != 15 || !matricule.is_ascii() {
        return Err(InsError::Format);
    }
    let expected = ins_key(&matricule[..13]).ok_or(InsError::Format)?;
    let found: u64 = matricule[13..].parse().map_err(|_| InsError::Format)?;
    if found != expected {
        return Err(InsError::Key { found, expected });
    }
    let authority =
        InsAuthority::from_oid(oid).ok_or_else(|| InsError::UnknownAuthority(oid.to_owned()))?;
    if !environment.accepts(authority) {
        return Err(InsError::WrongEnvironment {
            oid: oid.to_owned(),
            environment,
        });
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_published_test_identities() {
        assert_eq!(ins_key("2790351215189"), Some(89));
        assert_eq!(ins_key("1620188850453"), Some(27));
        // Corsica: computed here with the substitution.
        let corsica = format!("1800{}", "12A123456");
        let expected = 97 - 1_800_119_123_456u64 % 97;
        assert_eq!(ins_key(&corsica), Some(expected));
        assert_eq!(
            check_patient_cx(
                "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH",
                Environment::Test
            ),
            Ok(InsAuthority::TestNir)
        );
        assert!(matches!(
            check_patient_cx(
                "279035121518988^^^&1.2.250.1.213.1.4.10&ISO^NH",
                Environment::Test
            ),
            Err(InsError::Key { .. })
        ));
        assert!(matches!(
            check_patient_cx(
                "279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH",
                Environment::Test
            ),
            Err(InsError::WrongEnvironment { .. })
        ));
    }
}
