//! Distinguished-name normalisation for comparing a certificate subject with a liste blanche entry.
//!
//! Input is an RFC 4514 string (`CN=mx.example,OU=123,O=Example,C=FR`, backslash escapes, `\xx`
//! hex bytes, `#hex` BER values). The canonical form:
//! - attribute types: case-insensitive; long names and OIDs mapped to short names (`commonName`,
//!   `2.5.4.3` → `CN`; `emailAddress`, `E`, `1.2.840.113549.1.9.1` → `E`); unknown OIDs stay dotted;
//! - values: unescaped, trimmed, inner whitespace runs collapsed to one space, lowercased (the list
//!   is typed by people; case and spacing are not what identifies an operator);
//! - RDN order is kept **as written**: the list and our peer rendering both use RFC 4514's
//!   most-specific-first order, and sorting would equate names that X.500 distinguishes. The
//!   attributes *inside* a multi-valued RDN (`A=x+B=y`) are sorted, since they form a set;
//! - re-serialised with escaping, so `normalize(normalize(x)) == normalize(x)`.

use std::fmt::Write as _;

/// A DN that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid distinguished name {dn:?}: {reason}")]
pub struct DnError {
    /// The input.
    pub dn: String,
    /// What is wrong.
    pub reason: String,
}

/// Returns the canonical form of an RFC 4514 DN (see the module documentation).
pub fn normalize_dn(dn: &str) -> Result<String, DnError> {
    let fail = |reason: &str| DnError {
        dn: dn.to_owned(),
        reason: reason.to_owned(),
    };
    if dn.trim().is_empty() {
        return Err(fail("empty"));
    }
    let mut rdns: Vec<Vec<String>> = vec![Vec::new()];
    let mut chars = dn.chars().peekable();
    loop {
        // Attribute type, up to '='.
        let mut attribute_type = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                Some(character) => attribute_type.push(character),
                None => return Err(fail("attribute without '='")),
            }
        }
        let attribute_type =
            canonical_type(attribute_type.trim()).map_err(|reason| fail(&reason))?;
        while chars
            .next_if(|character| character.is_whitespace())
            .is_some()
        {}
        // Value, up to an unescaped ',' or '+'.
        let value = if chars.next_if_eq(&'#').is_some() {
            let mut hex = String::new();
            while let Some(character) = chars.next_if(|character| !matches!(character, ',' | '+')) {
                hex.push(character);
            }
            let hex = hex.trim_end().to_ascii_lowercase();
            if hex.is_empty()
                || !hex.len().is_multiple_of(2)
                || !hex.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(fail("'#' value is not an even number of hex digits"));
            }
            format!("#{hex}")
        } else {
            let mut bytes = Vec::new();
            while let Some(character) = chars.next_if(|character| !matches!(character, ',' | '+')) {
                if character != '\\' {
                    let mut buffer = [0u8; 4];
                    bytes.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                    continue;
                }
                match chars.next() {
                    None => return Err(fail("dangling '\\' at end")),
                    Some(high) if high.is_ascii_hexdigit() => {
                        let low = chars
                            .next()
                            .filter(char::is_ascii_hexdigit)
                            .ok_or_else(|| fail("'\\' followed by a single hex digit"))?;
                        let pair = [high as u8, low as u8];
                        let text =
                            std::str::from_utf8(&pair).map_err(|_| fail("bad hex escape"))?;
                        bytes.push(
                            u8::from_str_radix(text, 16).map_err(|_| fail("bad hex escape"))?,
                        );
                    }
                    Some(escaped) => {
                        let mut buffer = [0u8; 4];
                        bytes.extend_from_slice(escaped.encode_utf8(&mut buffer).as_bytes());
                    }
                }
            }
            let text = String::from_utf8(bytes).map_err(|_| fail("escaped bytes are not UTF-8"))?;
            escape(&canonical_value(&text))
        };
        let current = rdns.last_mut().ok_or_else(|| fail("internal: no RDN"))?;
        current.push(format!("{attribute_type}={value}"));
        match chars.next() {
            None => break,
            Some('+') => {}
            Some(_) => rdns.push(Vec::new()),
        }
    }
    let mut out = String::with_capacity(dn.len());
    for (index, mut rdn) in rdns.into_iter().enumerate() {
        rdn.sort();
        if index > 0 {
            out.push(',');
        }
        out.push_str(&rdn.join("+"));
    }
    Ok(out)
}

/// Short canonical name for an attribute type (case-insensitive name or dotted OID).
fn canonical_type(raw: &str) -> Result<String, String> {
    let stripped = raw
        .strip_prefix("oid.")
        .or_else(|| raw.strip_prefix("OID."))
        .unwrap_or(raw);
    if stripped.starts_with(|character: char| character.is_ascii_digit()) {
        let valid = stripped.split('.').count() >= 2
            && stripped
                .split('.')
                .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(format!("bad attribute OID {raw:?}"));
        }
        let known = match crate::peer::short_name(stripped) {
            Some("emailAddress") => Some("E"),
            other => other,
        };
        return Ok(known.map_or_else(|| stripped.to_owned(), str::to_owned));
    }
    let valid = stripped.starts_with(|character: char| character.is_ascii_alphabetic())
        && stripped
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    if !valid {
        return Err(format!("bad attribute type {raw:?}"));
    }
    let lower = stripped.to_ascii_lowercase();
    let short = match lower.as_str() {
        "cn" | "commonname" => "CN",
        "ou" | "organizationalunitname" => "OU",
        "o" | "organizationname" => "O",
        "l" | "localityname" => "L",
        "st" | "s" | "stateorprovincename" => "ST",
        "c" | "countryname" => "C",
        "street" | "streetaddress" => "STREET",
        "dc" | "domaincomponent" => "DC",
        "uid" | "userid" => "UID",
        "e" | "email" | "emailaddress" => "E",
        // Names our peer rendering writes as dotted OIDs (not in RFC 4514's short list).
        "serialnumber" => "2.5.4.5",
        "sn" | "surname" => "2.5.4.4",
        "givenname" | "gn" => "2.5.4.42",
        "title" => "2.5.4.12",
        "organizationidentifier" => "2.5.4.97",
        _ => return Ok(stripped.to_ascii_uppercase()),
    };
    Ok(short.to_owned())
}

/// Trimmed, whitespace runs collapsed, lowercased.
fn canonical_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (index, word) in value.split_whitespace().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// RFC 4514 escaping of a canonical value (no leading or trailing spaces remain after trimming).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (index, character) in value.chars().enumerate() {
        match character {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(character);
            }
            '#' if index == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    let _ = write!(out, "\\{byte:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn normal(dn: &str) -> String {
        normalize_dn(dn).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn case_spacing_and_names_do_not_matter() {
        let listed =
            "CN=mx.hopital-a.mssante.test,OU=10000000010001,O=HOPITAL A TEST,ST=Paris (75),C=FR";
        let variants = [
            "cn=MX.Hopital-A.mssante.test, ou=10000000010001, o=hopital  a test, st=Paris (75), c=fr",
            "commonName=mx.hopital-a.mssante.test,organizationalUnitName=10000000010001,organizationName=HOPITAL A TEST,stateOrProvinceName=Paris (75),countryName=FR",
            "2.5.4.3=mx.hopital-a.mssante.test,OID.2.5.4.11=10000000010001,O=HOPITAL\\20A TEST,S=Paris (75),C= FR ",
        ];
        for variant in variants {
            assert_eq!(normal(variant), normal(listed), "{variant}");
        }
        assert_eq!(
            normal(listed),
            "CN=mx.hopital-a.mssante.test,OU=10000000010001,O=hopital a test,ST=paris (75),C=fr"
        );
    }

    #[test]
    fn order_and_values_matter() {
        assert_ne!(normal("CN=a,O=b"), normal("O=b,CN=a"));
        assert_ne!(normal("CN=a,O=b"), normal("CN=a,O=c"));
        assert_ne!(normal("CN=a\\,O=b"), normal("CN=a,O=b"));
        assert_eq!(normal("CN=a+UID=1,O=b"), normal("UID=1+cn=A,O=b"));
    }

    #[test]
    fn email_spellings_agree() {
        let expected = normal("E=x@y.test,CN=a");
        for variant in [
            "emailAddress=x@y.test,CN=a",
            "1.2.840.113549.1.9.1=X@y.test,CN=a",
        ] {
            assert_eq!(normal(variant), expected);
        }
    }

    #[test]
    fn escapes_and_hex() {
        assert_eq!(normal("CN=C\\C3\\B4te"), normal("CN=côte"));
        assert_eq!(normal("CN=\\#x"), "CN=\\#x");
        assert_eq!(normal("CN=#0C03414243"), "CN=#0c03414243");
        assert_eq!(normal("1.3.6.1.4.1.1=v"), "1.3.6.1.4.1.1=v");
        assert_eq!(normal("serialNumber=12,CN=a"), normal("2.5.4.5=12,CN=a"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "CN",
            "CN=a,",
            "CN=a,,O=b",
            "CN=a\\",
            "CN=\\4",
            "CN=#abc",
            "C N=x",
            "1..2=x",
            "CN=\\ff",
        ] {
            assert!(normalize_dn(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(dn in "\\PC{0,60}") {
            if let Ok(once) = normalize_dn(&dn) {
                prop_assert_eq!(normalize_dn(&once), Ok(once.clone()));
            }
        }

        #[test]
        fn structured_names_are_idempotent(
            parts in proptest::collection::vec(
                ("(cn|O|ou|st|C|emailAddress|2\\.5\\.4\\.5)", "[ -~éÔ\\t]{0,12}"),
                1..6,
            ),
            join_plus in proptest::bool::ANY,
        ) {
            let dn = parts
                .iter()
                .map(|(name, value)| format!("{name}={}", crate::peer::escape_value(value)))
                .collect::<Vec<_>>()
                .join(if join_plus { "+" } else { "," });
            let once = normalize_dn(&dn).map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(normalize_dn(&once), Ok(once.clone()));
        }
    }
}
