//! The liste blanche the harness writes: the committed one plus one `<Domaine>` per test sink
//! domain naming the sink's certificate, with its `.sha256` file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use openssl::x509::X509;

use super::paths::cert;

/// The subject DN of the first certificate of a PEM file, as RFC 4514 writes it (most specific
/// first: `CN=…,OU=…,O=…,ST=…,C=FR`), which is how the liste blanche lists operators.
pub fn subject_dn(pem_file: &Path) -> anyhow::Result<String> {
    let pem = std::fs::read(pem_file).with_context(|| format!("read {}", pem_file.display()))?;
    let certificate = X509::from_pem(&pem)?;
    let mut parts = Vec::new();
    for entry in certificate.subject_name().entries() {
        let name = entry.object().nid().short_name()?;
        let value = entry.data().to_string()?;
        if value.contains([',', '+', '"', '\\', '<', '>', ';', '=']) {
            bail!("DN value {value:?} needs RFC 4514 escaping, which this helper does not do");
        }
        parts.push(format!("{name}={value}"));
    }
    parts.reverse();
    Ok(parts.join(","))
}

/// Writes `<dir>/listeblanche.xml` and its checksum file; returns both paths.
pub fn write(dir: &Path, sink_domains: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let committed = cert("listeblanche/listeblanchemssante.xml");
    let xml = std::fs::read_to_string(&committed)
        .with_context(|| format!("read {}", committed.display()))?;
    let dn = subject_dn(&cert("tls/gateway.pem"))?;
    let mut added = String::new();
    for domain in sink_domains {
        added.push_str(&format!(
            "    <Domaine>\n      <Nom>{domain}</Nom>\n      <Description>test sink (synthetique)</Description>\n      <DNCertificatOperateur>{dn}</DNCertificatOperateur>\n      <ResponsableContact>responsable@{domain}</ResponsableContact>\n      <SupportContact>support@{domain}</SupportContact>\n      <DateMAJ>2025-06-01T00:00:00Z</DateMAJ>\n    </Domaine>\n"
        ));
    }
    let Some(at) = xml.find("  </ListeDomaines>") else {
        bail!("{} has no </ListeDomaines>", committed.display());
    };
    let xml = format!("{}{added}{}", &xml[..at], &xml[at..]);
    let path = dir.join("listeblanche.xml");
    std::fs::write(&path, &xml)?;
    let digest = hex::encode(openssl::sha::sha256(xml.as_bytes()));
    let checksum = dir.join("listeblanche.xml.sha256");
    std::fs::write(&checksum, format!("{digest}  listeblanche.xml\n"))?;
    Ok((path, checksum))
}
