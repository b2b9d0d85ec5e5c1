//! An IHE XDM package (ITI-32, DOMAIN.md §5) from CDA documents, with the metadata the gateway's
//! extractor reads back: an ebRS 3.0 `SubmitObjectsRequest` with one SubmissionSet, one
//! DocumentEntry per file (SHA-1, size and URI slots) and a HasMember association for each.
//!
//! Every code comes from the CDA header through [`crate::documents::cda::derive`], the same
//! derivation the gateway applies to a bare CDA: a document the gateway could not deposit is
//! refused here, before it travels.

mod metadata;

use std::io::Write;
use std::time::SystemTime;

use dmp_connector::deposit::InsAuthority;
use zip::write::SimpleFileOptions;

use super::{NamedFile, SendError};
use crate::documents::cda::{self, CdaHeader, derive};
use crate::documents::time::to_xds_utc;
use crate::documents::{DocumentError, DocumentPolicy};
use crate::ins::{Ins, InsEnvironment};

/// The subset folder; one submission set per package.
const SUBSET: &str = "SUBSET01";

/// The patient of a package, as the CDA recordTarget names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePatient {
    /// The validated INS.
    pub ins: Ins,
    /// Nom de naissance.
    pub birth_name: String,
    /// Premier prénom de naissance.
    pub first_given_name: String,
    /// `YYYYMMDD`.
    pub birth_date: String,
    /// `M`, `F` or another HL7 code.
    pub sex: String,
    /// INSEE code of the birthplace, if given.
    pub birthplace_insee: Option<String>,
}

impl PackagePatient {
    /// The CX patient id of XDS metadata: `<matricule>^^^&<oid>&ISO^NH`.
    pub fn cx(&self) -> String {
        self.ins.to_cx()
    }
}

/// A built package and what the message around it needs to say.
#[derive(Debug, Clone)]
pub struct XdmPackage {
    /// The zip (`IHE_XDM.ZIP`).
    pub zip: Vec<u8>,
    /// The METADATA.XML it holds (kept for tests and diagnostics).
    pub metadata: String,
    /// The patient, identical in every CDA.
    pub patient: PackagePatient,
    /// The CDA `code@code` of each CDA, in order (`X-MSS-CODECDA`).
    pub type_codes: Vec<String>,
    /// The title of the first CDA (the subject's "libellé").
    pub title: String,
}

/// One CDA read and checked.
struct CdaEntry<'a> {
    file: &'a NamedFile,
    header: CdaHeader,
    /// File name in the subset folder.
    path: String,
}

/// Builds the package from CDA documents (at least one) and PDF renderings, at `now`.
///
/// `source_id` is the SubmissionSet sourceId (an OID identifying the sending system).
pub fn build(
    cdas: &[NamedFile],
    pdfs: &[NamedFile],
    source_id: &str,
    now: SystemTime,
) -> Result<XdmPackage, SendError> {
    if cdas.is_empty() {
        return Err(SendError::Usage(
            "an XDM package needs at least one CDA document".to_owned(),
        ));
    }
    let limits = DocumentPolicy::default().xml_limits();
    let mut entries = Vec::with_capacity(cdas.len());
    let mut patient: Option<(PackagePatient, &str)> = None;
    for (index, file) in cdas.iter().enumerate() {
        if !cda::looks_like_cda(&file.bytes) {
            return Err(SendError::Patient {
                document: file.name.clone(),
                reason: "not a CDA R2 document (no urn:hl7-org:v3 ClinicalDocument)".to_owned(),
            });
        }
        let header = cda::parse(&file.bytes, &file.name, limits)?;
        check_derivable(&header, &file.name)?;
        let this = read_patient(&header, &file.name)?;
        match &patient {
            Some((first, first_name)) if first.ins != this.ins => {
                return Err(SendError::SeveralPatients {
                    first: (*first_name).to_owned(),
                    second: file.name.clone(),
                });
            }
            Some(_) => {}
            None => patient = Some((this, &file.name)),
        }
        entries.push(CdaEntry {
            file,
            header,
            path: format!("DOC{:04}.XML", index + 1),
        });
    }
    let Some((patient, _)) = patient else {
        return Err(SendError::Usage("no CDA document".to_owned()));
    };
    let metadata = metadata::metadata(&entries, pdfs, &patient, source_id, now);
    let index = index_htm(&entries, pdfs);
    let readme = readme_txt();
    let mut files: Vec<(String, &[u8])> = vec![
        ("INDEX.HTM".to_owned(), index.as_bytes()),
        ("README.TXT".to_owned(), readme.as_bytes()),
    ];
    files.push((
        format!("IHE_XDM/{SUBSET}/METADATA.XML"),
        metadata.as_bytes(),
    ));
    for entry in &entries {
        files.push((
            format!("IHE_XDM/{SUBSET}/{}", entry.path),
            &entry.file.bytes,
        ));
    }
    for (index, pdf) in pdfs.iter().enumerate() {
        files.push((format!("IHE_XDM/{SUBSET}/{}", pdf_path(index)), &pdf.bytes));
    }
    let zip = write_zip(&files)?;
    Ok(XdmPackage {
        zip,
        type_codes: entries
            .iter()
            .filter_map(|entry| entry.header.code.as_ref().map(|code| code.code.clone()))
            .collect(),
        title: entries
            .first()
            .and_then(|entry| entry.header.title.clone())
            .unwrap_or_else(|| "Document".to_owned()),
        metadata,
        patient,
    })
}

fn pdf_path(index: usize) -> String {
    format!("DOC{:04}.PDF", index + 1001)
}

/// The INS of the recordTarget and the four traits of a "qualified" INS (DOMAIN.md §1.7, §3.3).
fn read_patient(header: &CdaHeader, document: &str) -> Result<PackagePatient, SendError> {
    let problem = |reason: &str| SendError::Patient {
        document: document.to_owned(),
        reason: reason.to_owned(),
    };
    let id = header
        .patient
        .ids
        .iter()
        .find(|id| InsAuthority::from_oid(&id.root).is_some())
        .ok_or_else(|| problem("recordTarget carries no INS (matricule with an INS OID)"))?;
    let authority = InsAuthority::from_oid(&id.root)
        .ok_or_else(|| problem("recordTarget carries no INS authority"))?;
    // The sender does not know the gateway's environment; the OID itself tells which one it is.
    let environment = if authority.is_production() {
        InsEnvironment::Production
    } else {
        InsEnvironment::Test
    };
    let ins = Ins::new(
        id.extension.as_deref().unwrap_or_default(),
        &id.root,
        environment,
    )
    .map_err(|error| problem(&format!("invalid INS: {error}")))?;
    let patient = &header.patient;
    Ok(PackagePatient {
        ins,
        birth_name: patient
            .birth_name
            .clone()
            .ok_or_else(|| problem("patient has no birth name (family qualifier BR)"))?,
        first_given_name: patient
            .first_given_name
            .clone()
            .ok_or_else(|| problem("patient has no first given name"))?,
        birth_date: patient
            .birth_date
            .clone()
            .ok_or_else(|| problem("patient has no birthTime"))?,
        sex: patient
            .sex
            .clone()
            .ok_or_else(|| problem("patient has no administrativeGenderCode"))?,
        birthplace_insee: patient.birthplace_insee.clone(),
    })
}

/// Refuses a CDA whose DMP metadata cannot be derived: the gateway would refuse it anyway.
fn check_derivable(header: &CdaHeader, document: &str) -> Result<(), SendError> {
    let missing = |field: &'static str| {
        SendError::Document(DocumentError::MissingMetadata {
            document: document.to_owned(),
            field,
        })
    };
    let type_code = header.code.as_ref().ok_or_else(|| missing("typeCode"))?;
    derive::class_code(type_code).ok_or_else(|| missing("classCode"))?;
    derive::format_code(header).ok_or_else(|| missing("formatCode"))?;
    header
        .confidentiality
        .as_ref()
        .ok_or_else(|| missing("confidentialityCode"))?;
    header
        .healthcare_facility_type
        .as_ref()
        .ok_or_else(|| missing("healthcareFacilityTypeCode"))?;
    header
        .practice_setting
        .as_ref()
        .ok_or_else(|| missing("practiceSettingCode"))?;
    header
        .effective_time
        .as_deref()
        .and_then(to_xds_utc)
        .ok_or_else(|| missing("creationTime"))?;
    header
        .language
        .as_ref()
        .ok_or_else(|| missing("languageCode"))?;
    if derive::authors(header).is_empty() {
        return Err(missing("author"));
    }
    Ok(())
}

/// A fresh OID under `2.25` (ITU-T X.667: the decimal value of a random UUID).
pub fn random_oid() -> String {
    let mut bytes = [0u8; 16];
    // rand_bytes fails only if the OpenSSL RNG cannot be seeded; a time-derived value is then
    // still unique enough for a uniqueId.
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_be_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

/// XDS DTM in UTC (`YYYYMMDDhhmmss`).
pub(crate) fn xds_time(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default() as i64;
    let (year, month, day) = crate::calendar::civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

fn index_htm(entries: &[CdaEntry<'_>], pdfs: &[NamedFile]) -> String {
    let mut items = String::new();
    for entry in entries {
        items += &format!(
            "<li><a href=\"IHE_XDM/{SUBSET}/{path}\">{title}</a> ({name})</li>\r\n",
            path = entry.path,
            title = metadata::escape(entry.header.title.as_deref().unwrap_or("Document")),
            name = metadata::escape(&entry.file.name),
        );
    }
    for (index, pdf) in pdfs.iter().enumerate() {
        items += &format!(
            "<li><a href=\"IHE_XDM/{SUBSET}/{}\">{}</a></li>\r\n",
            pdf_path(index),
            metadata::escape(&pdf.name)
        );
    }
    format!(
        "<html><head><meta charset=\"utf-8\"><title>IHE XDM</title></head><body>\r\n<h1>Contenu du paquet IHE XDM</h1>\r\n<ul>\r\n{items}</ul>\r\n</body></html>\r\n"
    )
}

fn readme_txt() -> String {
    format!(
        "IHE XDM package (ITI-32), submission set in IHE_XDM/{SUBSET}/.\r\nCreated by gateway send {}, MSSanté relay gateway.\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn write_zip(files: &[(String, &[u8])]) -> Result<Vec<u8>, SendError> {
    let zip_error = |error: &dyn std::fmt::Display| SendError::Build {
        step: "writing the XDM zip",
        reason: error.to_string(),
    };
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer
            .start_file(name.as_str(), options)
            .map_err(|error| zip_error(&error))?;
        writer
            .write_all(content)
            .map_err(|error| zip_error(&error))?;
    }
    let cursor = writer.finish().map_err(|error| zip_error(&error))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_oids_are_distinct_2_25_oids() {
        let first = random_oid();
        let second = random_oid();
        assert!(first.starts_with("2.25."));
        assert!(first[5..].bytes().all(|byte| byte.is_ascii_digit()));
        assert_ne!(first, second);
    }

    #[test]
    fn xds_time_is_utc_seconds() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_705_311_000);
        assert_eq!(xds_time(time), "20240115093000");
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            metadata::escape(r#"A&B <"x'">"#),
            "A&amp;B &lt;&quot;x&apos;&quot;&gt;"
        );
    }
}
