//! Liste blanche parsing, limits and checksum.

use super::*;

fn certs(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("certs")
        .join(relative)
}

fn document(domains: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListeBlancheMSSante xmlns=\"https://listeblanche.mssante.fr/schema\">\n\
         <DateDeGeneration>2025-06-01T00:00:00Z</DateDeGeneration>\n\
         <ListeDomaines>{domains}</ListeDomaines></ListeBlancheMSSante>"
    )
}

fn domain(name: &str, dn: &str) -> String {
    format!(
        "<Domaine><Nom>{name}</Nom><Description>x</Description>\
         <DNCertificatOperateur>{dn}</DNCertificatOperateur>\
         <ResponsableContact>r@x</ResponsableContact><DateMAJ>2025</DateMAJ></Domaine>"
    )
}

fn parse(xml: &str) -> Result<Whitelist, WhitelistError> {
    Whitelist::parse(xml.as_bytes())
}

fn subject_of(name: &str) -> Option<String> {
    let pem = std::fs::read(certs(&format!("tls/{name}.pem"))).ok()?;
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    Some(
        crate::peer::PeerIdentity::from_der(&parsed.contents)
            .ok()?
            .subject,
    )
}

#[test]
fn loads_the_test_list_with_its_checksum() {
    let xml = certs("listeblanche/listeblanchemssante.xml");
    let checksum = certs("listeblanche/listeblanchemssante.xml.sha256");
    let (Some(hopital), Some(labo)) = (subject_of("hopital-a"), subject_of("labo-b")) else {
        eprintln!("skipped: certs/ not generated");
        return;
    };
    let list = Whitelist::load(&xml, Some(&checksum)).expect("load");
    assert_eq!(list.domain_count(), 3);
    assert!(list.skipped().is_empty());
    assert_eq!(list.generated_at(), Some("2025-06-01T00:00:00Z"));
    assert!(list.permits("hopital-a.mssante.test", &hopital));
    assert!(list.permits("HOPITAL-A.mssante.test.", &hopital));
    assert!(list.permits("labo-b.mssante.test", &labo));
    assert!(!list.permits("labo-b.mssante.test", &hopital));
    assert!(!list.permits("unknown.mssante.test", &hopital));
    assert!(list.permits_any(&labo));
    assert!(list.contains_domain("gateway.mssante.test"));
}

#[test]
fn one_domain_many_operators() {
    let xml = document(&format!(
        "{}{}{}",
        domain("15-20.mssante.fr", "CN=mta1.op-a.fr,O=OP A,C=FR"),
        domain("15-20.mssante.fr", "CN=mta2.op-b.fr,O=OP B,C=FR"),
        domain("Hôpital.MSSANTE.fr", "CN=mx.h,O=H,C=FR"),
    ));
    let list = parse(&xml).expect("parse");
    assert_eq!(list.domain_count(), 2);
    assert!(list.permits("15-20.mssante.fr", "cn=MTA1.op-a.fr, o=op a, c=fr"));
    assert!(list.permits("15-20.mssante.fr", "CN=mta2.op-b.fr,O=OP B,C=FR"));
    assert!(!list.permits("15-20.mssante.fr", "CN=mta3.op-b.fr,O=OP B,C=FR"));
    assert!(list.permits("hôpital.mssante.fr", "CN=mx.h,O=H,C=FR"));
    assert!(list.permits("HÔPITAL.mssante.fr", "CN=mx.h,O=H,C=FR"));
    assert!(!list.permits("15-20.mssante.fr", "not a dn"));
}

#[test]
fn entities_prefixes_and_cdata() {
    let xml = "<?xml version='1.0'?><ls:ListeBlancheMSSante xmlns:ls='https://listeblanche.mssante.fr/schema'>\
        <ls:ListeDomaines><ls:Domaine><ls:Nom>a&#46;test</ls:Nom>\
        <ls:DNCertificatOperateur>CN=x,O=A &amp; B,C=FR</ls:DNCertificatOperateur></ls:Domaine>\
        <ls:Domaine><ls:Nom><![CDATA[b.test]]></ls:Nom>\
        <ls:DNCertificatOperateur>CN=y,C=FR</ls:DNCertificatOperateur></ls:Domaine>\
        </ls:ListeDomaines></ls:ListeBlancheMSSante>";
    let list = parse(xml).expect("parse");
    assert!(list.permits("a.test", "CN=x,O=A & B,C=FR"));
    assert!(list.permits("b.test", "CN=y,C=FR"));
}

#[test]
fn refuses_doctype_and_unknown_entities() {
    let doctype = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]>\
        <ListeBlancheMSSante><ListeDomaines>\
        <Domaine><Nom>&e;</Nom><DNCertificatOperateur>CN=x</DNCertificatOperateur></Domaine>\
        </ListeDomaines></ListeBlancheMSSante>";
    assert!(matches!(parse(doctype), Err(WhitelistError::Doctype)));
    let entity = document(&domain("a.test&e;", "CN=x"));
    assert!(matches!(
        parse(&entity),
        Err(WhitelistError::UnknownEntity { name }) if name == "e"
    ));
}

#[test]
fn refuses_wrong_documents() {
    assert!(matches!(
        parse("<Other><ListeDomaines/></Other>"),
        Err(WhitelistError::WrongRoot { .. })
    ));
    assert!(matches!(parse(""), Err(WhitelistError::WrongRoot { .. })));
    assert!(matches!(
        parse(&document("")),
        Err(WhitelistError::NoDomains { skipped: 0 })
    ));
    assert!(matches!(
        parse("<ListeBlancheMSSante><ListeDomaines></ListeBlancheMSSante>"),
        Err(WhitelistError::Xml { .. })
    ));
    assert!(matches!(
        Whitelist::parse(b"<ListeBlancheMSSante>\xff</ListeBlancheMSSante>"),
        Err(WhitelistError::Encoding { .. })
    ));
    let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ListeBlancheMSSante/>";
    assert!(matches!(
        parse(latin1),
        Err(WhitelistError::Encoding { .. })
    ));
    let deep = format!(
        "<ListeBlancheMSSante>{}{}</ListeBlancheMSSante>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    assert!(matches!(parse(&deep), Err(WhitelistError::TooDeep { .. })));
}

#[test]
fn skips_unusable_entries() {
    let xml = document(&format!(
        "{}{}{}<Domaine><Nom>nodn.test</Nom></Domaine>",
        domain("good.test", "CN=g,C=FR"),
        domain("", "CN=h,C=FR"),
        domain("bad.test", "CN=#zz"),
    ));
    let list = parse(&xml).expect("parse");
    assert_eq!(list.domain_count(), 1);
    let skipped: Vec<usize> = list.skipped().iter().map(|entry| entry.index).collect();
    assert_eq!(skipped, vec![2, 3, 4]);
    assert!(!list.contains_domain("bad.test"));
}

#[test]
fn enforces_limits() {
    let xml = document(&domain("a.test", "CN=a").repeat(5));
    let small = Limits {
        file_size: MAX_FILE_SIZE,
        entries: 4,
    };
    assert!(matches!(
        parse_with(xml.as_bytes(), small),
        Err(WhitelistError::TooManyEntries { limit: 4 })
    ));
    let tiny = Limits {
        file_size: 100,
        entries: MAX_ENTRIES,
    };
    assert!(matches!(
        parse_with(xml.as_bytes(), tiny),
        Err(WhitelistError::TooLarge { limit: 100, .. })
    ));
}

#[test]
fn checksum_formats_and_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xml_path = dir.path().join("listeblanchemssante.xml");
    let xml = document(&domain("a.test", "CN=a"));
    std::fs::write(&xml_path, &xml).expect("write");
    let digest = hex::encode(Sha256::digest(xml.as_bytes()));

    let bare = dir.path().join("checksum");
    std::fs::write(&bare, format!("{}\n", digest.to_uppercase())).expect("write");
    Whitelist::load(&xml_path, Some(&bare)).expect("bare hex");

    let sum = dir.path().join("sum");
    std::fs::write(&sum, format!("{digest}  listeblanchemssante.xml\n")).expect("write");
    Whitelist::load(&xml_path, Some(&sum)).expect("sha256sum format");

    std::fs::write(&xml_path, xml.replace("a.test", "b.test")).expect("tamper");
    match Whitelist::load(&xml_path, Some(&sum)) {
        Err(WhitelistError::ChecksumMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, digest);
            assert_ne!(actual, digest);
            assert_eq!(actual.len(), 64);
        }
        other => panic!("expected mismatch, got {other:?}"),
    }

    std::fs::write(&sum, "nonsense").expect("write");
    assert!(matches!(
        Whitelist::load(&xml_path, Some(&sum)),
        Err(WhitelistError::ChecksumFile { .. })
    ));
    assert!(matches!(
        Whitelist::load(&dir.path().join("absent.xml"), None),
        Err(WhitelistError::Read { .. })
    ));
}
