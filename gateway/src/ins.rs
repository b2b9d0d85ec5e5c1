//! INS (Identifiant National de Santé) as a validated type.
//!
//! An [`Ins`] can only be built from a 15-character matricule whose key is right and whose
//! assigning authority (OID) is allowed in the configured [`InsEnvironment`] (DOMAIN.md §3):
//! production accepts INS-NIR and INS-NIA; test accepts the test and demo NIR OIDs only, so a
//! test gateway can never deposit for a real patient and a production one never for a fictitious
//! one. Calendar semantics of the NIR (month, département) are deliberately not checked: real
//! NIRs carry months 20–42 or 50+, and test identities do not match their traits.
//!
//! Errors never carry the matricule itself, only positions and keys, because they end up in
//! logs and SMTP replies.

use dmp_connector::deposit::{InsAuthority, PatientIdentity, PatientTraits};
use serde::Deserialize;
use thiserror::Error;

/// Number of characters of an INS matricule (13 + 2-digit key).
pub const INS_LENGTH: usize = 15;

/// Which patients the gateway may identify: real ones or fictitious test/demo ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsEnvironment {
    /// Real patients: INS-NIR and INS-NIA OIDs only.
    #[default]
    Production,
    /// Fictitious patients: the test and demo NIR OIDs only.
    Test,
}

impl InsEnvironment {
    /// Whether an INS of this authority may be used in this environment.
    pub fn accepts(self, authority: InsAuthority) -> bool {
        match self {
            InsEnvironment::Production => authority.is_production(),
            InsEnvironment::Test => !authority.is_production(),
        }
    }
}

impl std::fmt::Display for InsEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InsEnvironment::Production => "production",
            InsEnvironment::Test => "test",
        })
    }
}

/// Why a value is not a valid INS.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InsError {
    /// The matricule is not 15 characters long.
    #[error("INS matricule has {length} characters, expected {INS_LENGTH}")]
    WrongLength {
        /// Characters found.
        length: usize,
    },
    /// A character is not allowed at its position (digits, `2A`/`2B` at positions 6–7 only).
    #[error("INS matricule has an invalid character at position {position}")]
    InvalidCharacter {
        /// 1-based position.
        position: usize,
    },
    /// The control key does not match the number.
    #[error("INS key is {found:02}, the number requires {expected:02}")]
    BadKey {
        /// Key computed from the 13 first characters.
        expected: u8,
        /// Key written in the matricule.
        found: u8,
    },
    /// The OID is not an INS assigning authority.
    #[error("OID {oid} is not an INS authority (INS-NIR, INS-NIA, test or demo NIR)")]
    UnknownAuthority {
        /// The OID found.
        oid: String,
    },
    /// The OID is an INS authority, but not one this environment accepts.
    #[error("INS authority {oid} is refused in the {environment} environment")]
    WrongEnvironment {
        /// The OID found.
        oid: &'static str,
        /// The configured environment.
        environment: InsEnvironment,
    },
    /// A CX value (`id^^^&OID&ISO^NH`) could not be read.
    #[error("patient identifier is not an INS CX (`id^^^&OID&ISO^NH`): {reason}")]
    MalformedCx {
        /// What is wrong.
        reason: &'static str,
    },
}

/// A validated INS: matricule with a correct key and an authority allowed in the environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ins {
    matricule: String,
    authority: InsAuthority,
}

impl Ins {
    /// Validates a matricule and its authority OID for an environment.
    pub fn new(matricule: &str, oid: &str, environment: InsEnvironment) -> Result<Ins, InsError> {
        let authority = InsAuthority::from_oid(oid).ok_or_else(|| InsError::UnknownAuthority {
            oid: oid.chars().take(64).collect(),
        })?;
        if !environment.accepts(authority) {
            return Err(InsError::WrongEnvironment {
                oid: authority.oid(),
                environment,
            });
        }
        check_matricule(matricule)?;
        Ok(Ins {
            matricule: matricule.to_ascii_uppercase(),
            authority,
        })
    }

    /// Reads an XDS CX patient id (`<matricule>^^^&<OID>&ISO^NH`, DOMAIN §3.5).
    ///
    /// The identifier type (CX.5) may be absent, as some senders omit it; when present it must
    /// be `NH` (national health number).
    pub fn from_cx(cx: &str, environment: InsEnvironment) -> Result<Ins, InsError> {
        let fields: Vec<&str> = cx.trim().split('^').collect();
        if fields.len() < 4 {
            return Err(InsError::MalformedCx {
                reason: "fewer than four components",
            });
        }
        let authority = fields[3];
        let mut sub = authority.split('&');
        // HD.1 (namespace id) is ignored: the OID in HD.2 is what identifies the authority.
        let (Some(_namespace), Some(oid)) = (sub.next(), sub.next()) else {
            return Err(InsError::MalformedCx {
                reason: "assigning authority is not `&OID&ISO`",
            });
        };
        if let Some(kind) = sub.next()
            && !kind.eq_ignore_ascii_case("ISO")
        {
            return Err(InsError::MalformedCx {
                reason: "assigning authority type is not ISO",
            });
        }
        if let Some(type_code) = fields.get(4)
            && !type_code.is_empty()
            && *type_code != "NH"
        {
            return Err(InsError::MalformedCx {
                reason: "identifier type is not NH",
            });
        }
        Ins::new(fields[0], oid, environment)
    }

    /// The 15-character matricule (upper case).
    pub fn matricule(&self) -> &str {
        &self.matricule
    }

    /// The assigning authority.
    pub fn authority(&self) -> InsAuthority {
        self.authority
    }

    /// The CX form used in XDS metadata.
    pub fn to_cx(&self) -> String {
        format!("{}^^^&{}&ISO^NH", self.matricule, self.authority.oid())
    }

    /// The identity handed to the connector, with the traits read from the CDA.
    pub fn into_patient(self, traits: PatientTraits) -> PatientIdentity {
        PatientIdentity {
            matricule: self.matricule,
            authority: self.authority,
            traits,
        }
    }
}

/// Computes the key of the 13-character number: `97 − (N mod 97)`, with `2A`→`19` and
/// `2B`→`18` at positions 6–7 only (CNAM rule; DOMAIN §3.2).
pub fn compute_key(number: &str) -> Result<u8, InsError> {
    let bytes = number.as_bytes();
    if bytes.len() != INS_LENGTH - 2 {
        return Err(InsError::WrongLength {
            length: number.chars().count() + 2,
        });
    }
    let mut value: u64 = 0;
    let mut index = 0;
    while index < bytes.len() {
        // Corsica: the département `2A`/`2B` sits at positions 6–7 (index 5..7) and nowhere else.
        if index == 5 && bytes[5] == b'2' {
            let corsica = match bytes[6].to_ascii_uppercase() {
                b'A' => Some(19),
                b'B' => Some(18),
                _ => None,
            };
            if let Some(two_digits) = corsica {
                value = value * 100 + two_digits;
                index += 2;
                continue;
            }
        }
        let byte = bytes[index];
        if !byte.is_ascii_digit() {
            return Err(InsError::InvalidCharacter {
                position: index + 1,
            });
        }
        value = value * 10 + u64::from(byte - b'0');
        index += 1;
    }
    // value < 10^13, so the remainder is < 97 and the key is 1..=97: fits in u8.
    Ok((97 - value % 97) as u8)
}

/// Checks a matricule's length, characters and key.
pub fn check_matricule(matricule: &str) -> Result<(), InsError> {
    let length = matricule.chars().count();
    if length != INS_LENGTH || matricule.len() != INS_LENGTH {
        return Err(InsError::WrongLength { length });
    }
    let (number, key) = matricule.split_at(INS_LENGTH - 2);
    let expected = compute_key(number)?;
    let key_bytes = key.as_bytes();
    for (offset, byte) in key_bytes.iter().enumerate() {
        if !byte.is_ascii_digit() {
            return Err(InsError::InvalidCharacter {
                position: INS_LENGTH - 1 + offset,
            });
        }
    }
    let found = (key_bytes[0] - b'0') * 10 + (key_bytes[1] - b'0');
    if found != expected {
        return Err(InsError::BadKey { expected, found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_matricule_with_computed_key_is_valid() {
        let number = "2990175123001";
        let matricule = format!("{number}{:02}", compute_key(number).unwrap());
        check_matricule(&matricule).unwrap();
    }

    #[test]
    fn corsica_letters_only_at_positions_six_and_seven() {
        let key = compute_key("185072A123456").unwrap();
        let with_19 = compute_key("1850719123456").unwrap();
        assert_eq!(key, with_19);
        assert!(matches!(
            compute_key("1A50712123456"),
            Err(InsError::InvalidCharacter { position: 2 })
        ));
    }

    fn synthetic() -> String {
        let number = "1880299456007";
        format!("{number}{:02}", compute_key(number).unwrap())
    }

    #[test]
    fn cx_round_trip() {
        let ins = Ins::new(&synthetic(), "1.2.250.1.213.1.4.10", InsEnvironment::Test).unwrap();
        let again = Ins::from_cx(&ins.to_cx(), InsEnvironment::Test).unwrap();
        assert_eq!(ins, again);
    }
}
