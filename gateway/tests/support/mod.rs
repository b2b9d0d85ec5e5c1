//! Test helpers: the repository's files, free ports, a running `gateway` process with its log,
//! and a small SMTP client over rustls with a client certificate.
// Each test crate uses a different part of this module.
#![allow(dead_code)]

pub mod smtp;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The workspace root (the gateway crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway crate lives in the workspace")
        .to_path_buf()
}

/// A file of the committed test PKI, e.g. `certs("tls/gateway.pem")`.
pub fn certs(relative: &str) -> PathBuf {
    workspace_root().join("certs").join(relative)
}

/// A TCP port free at the time of the call (the kernel's choice for port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether `port` on 127.0.0.1 can be bound now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Settings of a test configuration.
pub struct TestConfig {
    /// Port of the STARTTLS listener.
    pub starttls_port: u16,
    /// Port of the implicit-TLS listener.
    pub implicit_port: u16,
    /// State directory.
    pub state_dir: PathBuf,
    /// Spool directory, if not `<state_dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// `limits.shutdown_grace`, seconds.
    pub shutdown_grace: u64,
    /// `limits.max_message_size`, bytes.
    pub max_message_size: u64,
    /// `admin.listen` port.
    pub admin_port: u16,
}

impl TestConfig {
    /// Fresh ports, state in `dir/var`, a one-second shutdown grace.
    pub fn new(dir: &Path) -> TestConfig {
        TestConfig {
            starttls_port: free_port(),
            implicit_port: free_port(),
            state_dir: dir.join("var"),
            spool_dir: None,
            shutdown_grace: 1,
            max_message_size: 10 * 1024 * 1024,
            admin_port: free_port(),
        }
    }

    /// The STARTTLS listener's address.
    pub fn starttls_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.starttls_port))
    }

    /// The spool directory the gateway will use.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("spool"))
    }

    /// Writes the configuration as `dir/gateway.toml` (certificates by absolute path) and
    /// returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = |p: &Path| toml_string(p);
        let spool = self
            .spool_dir
            .as_ref()
            .map(|dir| format!("spool_dir = {}\n", path(dir)))
            .unwrap_or_default();
        let text = format!(
            r#"[server]
hostname = "localhost"
state_dir = {state}
{spool}
[[listeners]]
address = "127.0.0.1:{starttls}"
mode = "starttls"

[[listeners]]
address = "127.0.0.1:{implicit}"
mode = "implicit"

[tls]
certificate = {cert}
private_key = {key}
client_ca_bundle = {bundle}
crl_files = [{org_crl}, {root_crl}]

[whitelist]
file = {list}
checksum_file = {checksum}

[limits]
shutdown_grace = {grace}
max_message_size = {max_size}

[logging]
format = "text"
level = "info"

# Unsigned test mail from hopital-a is accepted on transport trust (mutual TLS + liste blanche).
[[smime.senders]]
domain = "hopital-a.mssante.test"
allow_transport_only = true

[trust]
anchors = [{root}]
intermediates = [{org}]
crl_dir = {crl_dir}

[ledger]
dir = {ledger}
checkpoint_key = {ledger_key}

[queue]
dir = {queue}

[admin]
enabled = true
listen = "127.0.0.1:{admin_port}"

[dmp]
enabled = false

# Every domain goes to a next hop that is never up: accepted messages stay in the spool, retried.
[relay]
client_certificate = {cert}
client_key = {key}
server_trust = [{root}]
server_intermediates = [{org}]
crl_files = [{org_crl}, {root_crl}]
retry_base_secs = 600
retry_cap_secs = 600

[[relay.routes]]
domain = "*"
kind = "smtp"
host = "127.0.0.1"
port = {dead_port}
"#,
            state = path(&self.state_dir),
            starttls = self.starttls_port,
            implicit = self.implicit_port,
            cert = path(&certs("tls/gateway.pem")),
            key = path(&certs("tls/gateway.key")),
            bundle = path(&certs("ca/bundle.pem")),
            org_crl = path(&certs("crl/org.crl.pem")),
            root_crl = path(&certs("crl/root.crl.pem")),
            list = path(&certs("listeblanche/listeblanchemssante.xml")),
            checksum = path(&certs("listeblanche/listeblanchemssante.xml.sha256")),
            grace = self.shutdown_grace,
            root = path(&certs("ca/root.pem")),
            org = path(&certs("ca/org.pem")),
            crl_dir = path(&certs("crl")),
            ledger = path(&self.state_dir.join("ledger")),
            ledger_key = path(&self.state_dir.join("ledger/checkpoint.key")),
            queue = path(&self.state_dir.join("queue")),
            dead_port = free_port(),
            admin_port = self.admin_port,
            max_size = self.max_message_size,
        );
        let file = dir.join("gateway.toml");
        std::fs::write(&file, text).expect("write test config");
        file
    }
}

/// A path as a TOML basic string.
pub fn toml_string(path: &Path) -> String {
    toml_quote(&path.display().to_string())
}

fn toml_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `gateway` process whose standard error is collected line by line.
pub struct Gateway {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `gateway run --config <config>`; `RUST_LOG` is cleared so the file decides.
    pub fn start(config: &Path) -> Gateway {
        Gateway::spawn(&["run", "--config", &config.display().to_string()], None)
    }

    /// Starts the binary with `args` in `dir` (the test's current directory by default).
    pub fn spawn(args: &[&str], dir: Option<&Path>) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().expect("spawn gateway");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Echo for the test's own output (shown when a test fails).
                eprintln!("[gateway] {line}");
                sink.lock().expect("log lock").push(line);
            }
        });
        Gateway { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A copy of the log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a log line contains every one of `needles`; returns that line.
    pub fn wait_for_log(&mut self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .log()
                .into_iter()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
            {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader thread a moment to collect the last lines.
                thread::sleep(Duration::from_millis(200));
                panic!(
                    "gateway exited ({status}) before logging {needles:?}; log:\n{}",
                    self.log().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?} within {timeout:?}; log:\n{}",
                self.log().join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the "gateway ready" line.
    pub fn wait_ready(&mut self) {
        self.wait_for_log(&["gateway ready"], Duration::from_secs(30));
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("non-zero pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway still running after {timeout:?}; log:\n{}",
                self.log().join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Never leave a gateway behind a failed test.
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Runs the binary to completion with `args`; returns (status, stdout, stderr).
pub fn run_cli(args: &[&str], dir: Option<&Path>) -> (ExitStatus, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command.args(args).env_remove("RUST_LOG");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().expect("run gateway");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
