//! Deposit requests: what the gateway hands to the connector for one document.
//!
//! The gateway builds a [`DepositRequest`] per document it extracted from a trusted message
//! (IHE XDM package or bare CDA). Everything the ITI-41 request needs is here and already
//! checked by the gateway (INS key and OID, hash and size, one patient per message), so the
//! connector only maps these fields onto ebRIM. Times are XDS `DTM` strings in UTC
//! (`YYYYMMDDhhmmss`, possibly shorter), as ITI-41 carries them.

use serde::{Deserialize, Serialize};

/// One document to deposit in the patient's DMP, with everything needed to build ITI-41.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRequest {
    /// The document bytes exactly as received (the hash and size below are of these bytes).
    pub document: Vec<u8>,
    /// The XDS DocumentEntry metadata.
    pub entry: DocumentEntry,
    /// The submission set the document travelled in (or one derived for a bare CDA).
    pub submission_set: SubmissionSet,
    /// The patient: validated INS and identity traits.
    pub patient: PatientIdentity,
    /// The document this one replaces (CDA `relatedDocument typeCode="RPLC"` / XDS RPLC).
    pub replaces: Option<ReplacementTarget>,
    /// Which received message the document came from, for the ledger and the sender's notice.
    pub source: SourceMessage,
}

/// The identity of the received message a document was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMessage {
    /// The spool queue id of the message.
    pub queue_id: String,
    /// The `Message-ID` header, without angle brackets, when present.
    pub message_id: Option<String>,
}

/// A coded value as XDS carries it in a Classification (`nodeRepresentation`, `codingScheme`,
/// `Name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The code (`nodeRepresentation`).
    pub code: String,
    /// The code system OID or name (`codingScheme` slot).
    pub scheme: String,
    /// The display name, when known.
    pub display_name: Option<String>,
}

/// An XDS author: person (XCN), institutions (XON), roles and specialties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// `authorPerson` as an XCN, e.g. `899700367909^NOM^Prénom^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`.
    pub person: Option<String>,
    /// `authorInstitution` values as XON, e.g. `NOM^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^<IdNat_Struct>`.
    pub institutions: Vec<String>,
    /// `authorRole` values.
    pub roles: Vec<String>,
    /// `authorSpecialty` values (CE-like `code^label^scheme`).
    pub specialties: Vec<String>,
}

/// Visibility codes of the French JDV_J58 (`1.2.250.1.213.1.1.4.13`), carried as extra
/// confidentiality codes on the entry.
pub const MASKING_CODE_SYSTEM: &str = "1.2.250.1.213.1.1.4.13";

/// The XDS DocumentEntry metadata of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// `entryUUID` (`urn:uuid:…`): the symbolic or UUID id of the ExtrinsicObject.
    pub entry_uuid: String,
    /// `uniqueId`: the CDA `id` (`root` or `root^extension`); makes the deposit idempotent.
    pub unique_id: String,
    /// `classCode` (TRE_A03).
    pub class_code: Code,
    /// `typeCode` (mostly LOINC).
    pub type_code: Code,
    /// `formatCode` (TRE_A11 / TRE_A06).
    pub format_code: Code,
    /// `confidentialityCode` values: the CDA's N/R/V first, then masking codes if any.
    pub confidentiality_codes: Vec<Code>,
    /// `healthcareFacilityTypeCode` (SAxx, `1.2.250.1.71.4.2.4`).
    pub healthcare_facility_type_code: Code,
    /// `practiceSettingCode` (`1.2.250.1.213.1.1.4.9`).
    pub practice_setting_code: Code,
    /// `eventCodeList`.
    pub event_codes: Vec<Code>,
    /// `languageCode`, e.g. `fr-FR`.
    pub language_code: String,
    /// `mimeType` of the document, e.g. `text/xml`.
    pub mime_type: String,
    /// `creationTime` (UTC DTM).
    pub creation_time: String,
    /// `serviceStartTime` (UTC DTM).
    pub service_start_time: Option<String>,
    /// `serviceStopTime` (UTC DTM).
    pub service_stop_time: Option<String>,
    /// `title` (ebRIM `Name`).
    pub title: Option<String>,
    /// `comments` (ebRIM `Description`).
    pub comments: Option<String>,
    /// `author` classifications.
    pub authors: Vec<Author>,
    /// `legalAuthenticator` as an XCN.
    pub legal_authenticator: Option<String>,
    /// `sourcePatientId` (local IPP or the INS) as a CX.
    pub source_patient_id: Option<String>,
    /// `sourcePatientInfo` values (`PID-5|…`, `PID-7|…`, `PID-8|…`, `PID-11|…`).
    pub source_patient_info: Vec<String>,
    /// `hash`: SHA-1 of [`DepositRequest::document`], lowercase hex.
    pub hash_sha1: String,
    /// `size`: byte count of [`DepositRequest::document`].
    pub size: u64,
}

impl DocumentEntry {
    /// The masking (visibility) codes among the confidentiality codes.
    pub fn masking_codes(&self) -> impl Iterator<Item = &Code> {
        self.confidentiality_codes
            .iter()
            .filter(|code| code.scheme == MASKING_CODE_SYSTEM)
    }
}

/// The XDS SubmissionSet the document travelled in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionSet {
    /// `uniqueId` of the sender's submission set, when it came from an XDM package.
    pub unique_id: Option<String>,
    /// `sourceId` of the sender.
    pub source_id: Option<String>,
    /// `submissionTime` (UTC DTM).
    pub submission_time: Option<String>,
    /// `contentTypeCode` (JDV_J59), when present.
    pub content_type_code: Option<Code>,
    /// `title` of the submission set.
    pub title: Option<String>,
    /// `author` classifications of the submission set.
    pub authors: Vec<Author>,
    /// `intendedRecipient` values (XDM).
    pub intended_recipients: Vec<String>,
}

/// Which INS assigning authority a matricule belongs to (DOMAIN §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InsAuthority {
    /// INS-NIR, production (`1.2.250.1.213.1.4.8`).
    Nir,
    /// INS-NIA, production temporary number (`1.2.250.1.213.1.4.9`).
    Nia,
    /// INS-NIR of fictitious test patients (`1.2.250.1.213.1.4.10`).
    TestNir,
    /// INS-NIR of fictitious demonstration patients (`1.2.250.1.213.1.4.11`).
    DemoNir,
}

impl InsAuthority {
    /// Every authority, in OID order.
    pub const ALL: [InsAuthority; 4] = [
        InsAuthority::Nir,
        InsAuthority::Nia,
        InsAuthority::TestNir,
        InsAuthority::DemoNir,
    ];

    /// The authority's OID.
    pub fn oid(self) -> &'static str {
        match self {
            InsAuthority::Nir => "1.2.250.1.213.1.4.8",
            InsAuthority::Nia => "1.2.250.1.213.1.4.9",
            InsAuthority::TestNir => "1.2.250.1.213.1.4.10",
            InsAuthority::DemoNir => "1.2.250.1.213.1.4.11",
        }
    }

    /// The authority whose OID this is, if any.
    pub fn from_oid(oid: &str) -> Option<InsAuthority> {
        InsAuthority::ALL
            .into_iter()
            .find(|authority| authority.oid() == oid)
    }

    /// Whether the authority identifies real (production) patients.
    pub fn is_production(self) -> bool {
        matches!(self, InsAuthority::Nir | InsAuthority::Nia)
    }
}

/// The patient a document belongs to, as the gateway validated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientIdentity {
    /// The 15-character INS matricule (13 digits or Corsica letters + 2-digit key), key checked.
    pub matricule: String,
    /// The assigning authority, checked against the gateway's environment.
    pub authority: InsAuthority,
    /// The identity traits read from the CDA `recordTarget`.
    pub traits: PatientTraits,
}

impl PatientIdentity {
    /// The INS as an XDS CX: `<matricule>^^^&<OID>&ISO^NH`.
    pub fn to_cx(&self) -> String {
        format!("{}^^^&{}&ISO^NH", self.matricule, self.authority.oid())
    }
}

/// Administrative sex as the INS carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
    /// `U` or anything else the CDA states.
    Unknown,
}

/// The "traits stricts" of the INS (DOMAIN §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientTraits {
    /// Nom de naissance.
    pub birth_name: String,
    /// Prénoms de naissance, in order.
    pub birth_given_names: Vec<String>,
    /// Premier prénom de naissance.
    pub first_given_name: String,
    /// Sexe.
    pub sex: Sex,
    /// Date de naissance, `YYYYMMDD` (or shorter when only partly known).
    pub birth_date: String,
    /// Lieu de naissance: INSEE (COG) code of the commune or country, when present.
    pub birthplace_insee: Option<String>,
}

/// The document a new one replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacementTarget {
    /// The replaced document's uniqueId (CDA `relatedDocument/parentDocument/id`).
    pub unique_id: Option<String>,
    /// The replaced entry's entryUUID, when the XDM package carried an RPLC association.
    pub entry_uuid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_round_trip_through_their_oids() {
        for authority in InsAuthority::ALL {
            assert_eq!(InsAuthority::from_oid(authority.oid()), Some(authority));
        }
        assert_eq!(InsAuthority::from_oid("1.2.250.1.213.1.4.2"), None);
        assert!(InsAuthority::Nir.is_production() && !InsAuthority::TestNir.is_production());
    }

    #[test]
    fn patient_identity_renders_the_xds_cx() {
        let patient = PatientIdentity {
            // Synthetic: 13 digits and the key computed for them (97 − N mod 97).
            matricule: format!("2990175123001{:02}", 97 - 2_990_175_123_001u64 % 97),
            authority: InsAuthority::TestNir,
            traits: PatientTraits {
                birth_name: "TESTNOM".to_owned(),
                birth_given_names: vec!["ANNE".to_owned()],
                first_given_name: "ANNE".to_owned(),
                sex: Sex::Female,
                birth_date: "19990101".to_owned(),
                birthplace_insee: None,
            },
        };
        assert!(patient.to_cx().ends_with("^^^&1.2.250.1.213.1.4.10&ISO^NH"));
        assert_eq!(
            patient.to_cx().len(),
            15 + "^^^&1.2.250.1.213.1.4.10&ISO^NH".len()
        );
    }
}
