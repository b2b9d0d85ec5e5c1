//! Our ITI-41 request compared structurally with the ANS DRIM-M sample (element names,
//! attributes, slot names, classification and identification schemes — not bytes).

mod xds_support;
use xds_support as support;

use std::collections::BTreeSet;
use std::time::SystemTime;

use dmp_connector::xds::dom::{self, Element};
use dmp_connector::xds::{mtom, ns};

fn names(element: &Element) -> BTreeSet<String> {
    element
        .elements()
        .map(|e| format!("{{{}}}{}", e.ns, e.local))
        .collect()
}

fn attributes(element: &Element) -> BTreeSet<String> {
    element.attributes.iter().map(|a| a.local.clone()).collect()
}

fn slots(element: &Element) -> BTreeSet<String> {
    element
        .children_named(ns::RIM, "Slot")
        .filter_map(|s| s.attr("name").map(str::to_owned))
        .collect()
}

fn schemes(element: &Element, child: &str, attribute: &str) -> BTreeSet<String> {
    element
        .children_named(ns::RIM, child)
        .filter_map(|c| c.attr(attribute).map(str::to_owned))
        .collect()
}

fn vihf_attribute_names(envelope: &Element) -> BTreeSet<String> {
    envelope
        .find(ns::SAML2, "AttributeStatement")
        .expect("attribute statement")
        .children_named(ns::SAML2, "Attribute")
        .filter_map(|a| a.attr("Name").map(str::to_owned))
        .collect()
}

fn ours() -> Element {
    let client = support::labo_b_client("https://localhost:1/repository");
    let built = client
        .build_request(&support::request(1, 2_990_175_123_001), SystemTime::now())
        .expect("build");
    let message = mtom::parse(&built.content_type, &built.body).expect("mtom");
    dom::parse(&message.root.data).expect("envelope")
}

fn golden() -> Element {
    let bytes = std::fs::read(support::fixture("drim-m-XDS.xml")).expect("fixture");
    dom::parse(&bytes).expect("fixture parses")
}

#[test]
fn header_and_vihf_match_the_sample() {
    let (ours, golden) = (ours(), golden());
    let header = |e: &Element| names(e.child(ns::SOAP, "Header").expect("header"));
    assert_eq!(header(&ours), header(&golden));
    let assertion = |e: &Element| e.find(ns::SAML2, "Assertion").expect("assertion").clone();
    let (a, g) = (assertion(&ours), assertion(&golden));
    assert_eq!(attributes(&a), attributes(&g));
    // We add Conditions (validity window); everything the sample has, we have.
    let extra: BTreeSet<String> = names(&a).difference(&names(&g)).cloned().collect();
    assert_eq!(
        extra,
        BTreeSet::from([format!("{{{}}}Conditions", ns::SAML2)])
    );
    assert!(names(&g).is_subset(&names(&a)));
    assert_eq!(vihf_attribute_names(&ours), vihf_attribute_names(&golden));
    let signed_info = |e: &Element| e.find(ns::DS, "SignedInfo").expect("si").clone();
    let (si, sg) = (signed_info(&a), signed_info(&g));
    assert_eq!(names(&si), names(&sg));
    let transforms = |e: &Element| -> Vec<String> {
        e.find(ns::DS, "Transforms")
            .expect("transforms")
            .elements()
            .filter_map(|t| t.attr("Algorithm").map(str::to_owned))
            .collect()
    };
    assert_eq!(transforms(&si), transforms(&sg));
    assert_eq!(
        si.child(ns::DS, "CanonicalizationMethod")
            .and_then(|c| c.attr("Algorithm")),
        sg.child(ns::DS, "CanonicalizationMethod")
            .and_then(|c| c.attr("Algorithm"))
    );
}

#[test]
fn metadata_matches_the_sample() {
    let (ours, golden) = (ours(), golden());
    let list = |e: &Element| e.find(ns::RIM, "RegistryObjectList").expect("list").clone();
    let (lo, lg) = (list(&ours), list(&golden));
    let package = |l: &Element| l.child(ns::RIM, "RegistryPackage").expect("ss").clone();
    let (po, pg) = (package(&lo), package(&lg));
    assert_eq!(attributes(&po), attributes(&pg));
    assert!(
        slots(&pg).is_subset(&slots(&po)),
        "{:?} vs {:?}",
        slots(&pg),
        slots(&po)
    );
    for (child, attribute) in [
        ("Classification", "classificationScheme"),
        ("Classification", "classificationNode"),
        ("ExternalIdentifier", "identificationScheme"),
    ] {
        assert_eq!(
            schemes(&po, child, attribute),
            schemes(&pg, child, attribute)
        );
    }
    // The sample's first entry (KOS) against ours. URI (XDM-only) and referenceIdList (imaging
    // accession numbers) have no source in a deposit request.
    let entry = |l: &Element| l.child(ns::RIM, "ExtrinsicObject").expect("entry").clone();
    let (eo, eg) = (entry(&lo), entry(&lg));
    assert_eq!(attributes(&eo), attributes(&eg));
    let mut golden_slots = slots(&eg);
    golden_slots.remove("URI");
    golden_slots.remove("urn:ihe:iti:xds:2013:referenceIdList");
    assert_eq!(slots(&eo), golden_slots);
    for (child, attribute) in [
        ("Classification", "classificationScheme"),
        ("ExternalIdentifier", "identificationScheme"),
    ] {
        assert_eq!(
            schemes(&eo, child, attribute),
            schemes(&eg, child, attribute)
        );
    }
    // Coded classifications carry the same attributes, a codingScheme slot and a Name.
    let coded = |e: &Element| {
        e.children_named(ns::RIM, "Classification")
            .find(|c| c.attr("nodeRepresentation").is_some_and(|n| !n.is_empty()))
            .expect("coded")
            .clone()
    };
    let (co, cg) = (coded(&eo), coded(&eg));
    assert_eq!(attributes(&co), attributes(&cg));
    assert_eq!(slots(&co), slots(&cg));
    assert_eq!(names(&co), names(&cg));
    // HasMember association.
    let association = |l: &Element| l.child(ns::RIM, "Association").expect("assoc").clone();
    let (ao, ag) = (association(&lo), association(&lg));
    assert_eq!(attributes(&ao), attributes(&ag));
    assert_eq!(slots(&ao), slots(&ag));
    assert_eq!(ao.attr("associationType"), ag.attr("associationType"));
    // Documents by XOP reference.
    let document = |e: &Element| e.find(ns::XDSB, "Document").expect("document").clone();
    let (dout, dg) = (document(&ours), document(&golden));
    assert_eq!(attributes(&dout), attributes(&dg));
    assert_eq!(names(&dout), names(&dg));
}
