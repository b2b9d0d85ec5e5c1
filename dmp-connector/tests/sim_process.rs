//! The `dmp-sim` binary as a separate process: starts from its command line, accepts a
//! deposit, applies `--fail-rate`.

mod xds_support;
use xds_support as support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dmp_connector::retry::FailureClass;

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with its endpoint.
fn spawn(store: &std::path::Path, extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmp-sim"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--store")
        .arg(store)
        .arg("--tls-cert")
        .arg(support::cert("tls/gateway.pem"))
        .arg("--tls-key")
        .arg(support::cert("tls/gateway.key"))
        .arg("--client-ca")
        .arg(support::cert("ca/bundle.pem"))
        .arg("--crl")
        .arg(support::cert("crl/org.crl.pem"))
        .arg("--crl")
        .arg(support::cert("crl/root.crl.pem"))
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn dmp-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let address = line.trim().rsplit(' ').next().expect("address").to_owned();
    let port = address.rsplit(':').next().expect("port");
    (Sim(child), format!("https://localhost:{port}/repository"))
}

#[tokio::test]
async fn the_binary_serves_deposits_and_injects_failures() {
    let dir = tempfile::tempdir().expect("tmp");
    let (sim, endpoint) = spawn(dir.path(), &[]);
    let client = support::labo_b_client(&endpoint);
    let request = support::request(1, 2_990_175_123_001);
    client
        .provide_and_register(&request)
        .await
        .expect("deposit");
    drop(sim);
    // Durable: a new process on the same store still has the document.
    let store = dmp_connector::sim::Store::open(dir.path()).expect("store");
    assert_eq!(
        store
            .retrieve(&request.entry.unique_id)
            .expect("get")
            .as_deref(),
        Some(request.document.as_slice())
    );

    let (_sim, endpoint) = spawn(dir.path(), &["--fail-rate", "1"]);
    let client = support::labo_b_client(&endpoint);
    let failure = client
        .provide_and_register(&support::request(2, 2_990_175_123_001))
        .await
        .expect_err("injected");
    assert_eq!(failure.class(), FailureClass::Transient);
}
