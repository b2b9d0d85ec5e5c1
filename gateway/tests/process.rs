//! The real `gateway` binary, started as a process on a temporary configuration and driven over
//! SMTP with STARTTLS and the test client certificate.

mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use support::smtp::{Client, synthetic_message};
use support::{Gateway, TestConfig, port_is_free, run_cli, workspace_root};

const SENDER: &str = "secretariat@hopital-a.mssante.test";
const RECIPIENT: &str = "dr.test@gateway.mssante.test";

/// Names of the files in the spool's queue directory.
fn queued_files(config: &TestConfig) -> Vec<String> {
    match fs::read_dir(config.spool_dir().join("queue")) {
        Ok(entries) => entries
            .map(|entry| {
                entry
                    .expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The queue id quoted in a `250` reply: the queued file whose name appears in the reply.
fn queue_id_of(reply_text: &str, config: &TestConfig) -> String {
    queued_files(config)
        .into_iter()
        .map(|name| name.split('.').next().unwrap_or(&name).to_owned())
        .find(|id| reply_text.contains(id.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "no queued file named in {reply_text:?}: {:?}",
                queued_files(config)
            )
        })
}

#[test]
fn accepted_message_survives_sigkill_and_is_reported_at_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(dir.path());
    let file = config.write(dir.path());
    let mut gateway = Gateway::start(&file);
    gateway.wait_ready();
    gateway.wait_for_log(
        &["listening", &config.starttls_addr().to_string()],
        Duration::from_secs(5),
    );

    let mut client = Client::connect_starttls(config.starttls_addr(), "hopital-a");
    let reply = client
        .send_message(SENDER, RECIPIENT, &synthetic_message(20_000))
        .expect("message sent");
    assert_eq!(reply.code, 250, "{reply:?}");
    let queue_id = queue_id_of(&reply.text(), &config);
    let _ = client.command("QUIT");

    gateway.signal(Signal::KILL);
    let status = gateway.wait_exit(Duration::from_secs(10));
    assert!(
        !status.success(),
        "SIGKILL must not look like a clean exit: {status}"
    );
    assert!(
        queued_files(&config)
            .iter()
            .any(|name| name.starts_with(&queue_id)),
        "{queue_id} not in the queue after SIGKILL"
    );

    // Fresh ports: the killed process's sockets need not be reusable at once.
    let restarted = TestConfig::new(dir.path());
    let restarted = TestConfig {
        state_dir: config.state_dir.clone(),
        ..restarted
    };
    let file = restarted.write(dir.path());
    let mut gateway = Gateway::start(&file);
    let line = gateway.wait_for_log(
        &["message waiting in the spool", &queue_id],
        Duration::from_secs(30),
    );
    assert!(
        line.contains("hopital-a.mssante.test"),
        "sender domain logged: {line}"
    );
    assert!(
        !line.contains("secretariat"),
        "local part must not be logged: {line}"
    );
    gateway.wait_for_log(
        &["messages waiting in the spool", "count=1"],
        Duration::from_secs(5),
    );
    gateway.wait_ready();
    gateway.signal(Signal::TERM);
    assert!(gateway.wait_exit(Duration::from_secs(15)).success());
}

#[test]
fn sigterm_refuses_new_connections_and_closes_open_sessions_at_the_grace_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(dir.path()); // shutdown_grace = 1 s
    let file = config.write(dir.path());
    let mut gateway = Gateway::start(&file);
    gateway.wait_ready();

    let mut client = Client::connect_starttls(config.starttls_addr(), "hopital-a");
    client.expect(&format!("MAIL FROM:<{SENDER}>"), 250);
    let signalled = Instant::now();
    gateway.signal(Signal::TERM);
    gateway.wait_for_log(&["shutting down"], Duration::from_secs(5));

    // New connections are refused once shutdown has begun (allow the signal to be handled).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match Client::connect(config.starttls_addr()) {
            Err(_) => break,
            Ok((_, greeting)) if greeting.code != 220 => break,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still greeting new clients after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    // The open session is told to come back later when the grace period ends.
    let reply = client.read_reply().expect("421 at the grace deadline");
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.3.2"), "{reply:?}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "421 sent before the grace period ended: {:?}",
        signalled.elapsed()
    );
    let status = gateway.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn check_config_exit_codes_and_messages() {
    let root = workspace_root();
    let shipped = root.join("config/gateway.toml");
    let (status, stdout, stderr) = run_cli(
        &["check-config", "--config", &shipped.display().to_string()],
        None,
    );
    assert!(
        status.success(),
        "shipped config: {status}\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("configuration OK\n"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:2525 (starttls"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:4465 (implicit"), "{stdout}");

    // Default path, relative to the current directory.
    let (status, stdout, _) = run_cli(&["check-config"], Some(&root));
    assert!(status.success());
    assert!(stdout.starts_with("configuration OK"));

    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.toml");
    fs::write(
        &broken,
        "[server]\nhostname = \"localhost\"\ncolour = \"blue\"\n\n[[listeners]]\naddress = \"x\"\nmode = \"starttls\"\n\n[tls]\ncertificate = \"missing.pem\"\nprivate_key = \"missing.key\"\nclient_ca_bundle = \"missing-bundle.pem\"\ncrl_files = [\"missing.crl\"]\n",
    )
    .expect("write");
    let (status, stdout, stderr) = run_cli(
        &["check-config", "--config", &broken.display().to_string()],
        None,
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for expected in [
        "server.colour: unknown key",
        "listeners[0].address: invalid socket address \"x\"",
        "tls.certificate: file not found: ",
        "tls.private_key: file not found: ",
        "tls.client_ca_bundle: file not found: ",
        "tls.crl_files[0]: file not found: ",
        "whitelist.file: missing (required)",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    assert!(stderr.contains("7 configuration errors"), "{stderr}");

    let (status, _, stderr) = run_cli(
        &["check-config", "--config", "/nonexistent/gateway.toml"],
        None,
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("cannot read the configuration file"),
        "{stderr}"
    );

    // A file that exists but is not what it claims is caught by loading it, not only by name.
    let bad_key = dir.path().join("bad.key");
    fs::write(&bad_key, "not a key\n").expect("write");
    let good = TestConfig::new(dir.path()).write(dir.path());
    let text = fs::read_to_string(&good)
        .expect("read test config")
        .replace(
            &support::toml_string(&support::certs("tls/gateway.key")),
            &support::toml_string(&bad_key),
        );
    let unusable = dir.path().join("unusable.toml");
    fs::write(&unusable, text).expect("write");
    let (status, _, stderr) = run_cli(
        &["check-config", "--config", &unusable.display().to_string()],
        None,
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tls: "), "{stderr}");

    let (status, _, _) = run_cli(&["frobnicate"], None);
    assert_eq!(status.code(), Some(2));
}

#[test]
fn port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(dir.path());
    let file = config.write(dir.path());
    let _occupied = std::net::TcpListener::bind(config.starttls_addr()).expect("occupy the port");
    let mut gateway = Gateway::start(&file);
    let status = gateway.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{status}");
    let log = gateway.log().join("\n");
    assert!(
        log.contains(&format!("cannot listen on {}", config.starttls_addr())),
        "{log}"
    );
}

#[test]
fn full_disk_gives_452_and_keeps_earlier_messages() {
    if !rustix::process::geteuid().is_root() {
        println!(
            "SKIPPED full_disk_gives_452_and_keeps_earlier_messages: not running as root (mount needs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mount_point = dir.path().join("small-disk");
    fs::create_dir(&mount_point).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount_point)
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "SKIPPED full_disk_gives_452_and_keeps_earlier_messages: mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            println!(
                "SKIPPED full_disk_gives_452_and_keeps_earlier_messages: cannot run mount: {error}"
            );
            return;
        }
    }
    let _unmount = Unmount(mount_point.clone());

    let mut config = TestConfig::new(dir.path());
    config.spool_dir = Some(mount_point.join("spool"));
    let file = config.write(dir.path());
    let mut gateway = Gateway::start(&file);
    gateway.wait_ready();

    let mut client = Client::connect_starttls(config.starttls_addr(), "hopital-a");
    let small = client
        .send_message(SENDER, RECIPIENT, &synthetic_message(10_000))
        .expect("small message");
    assert_eq!(small.code, 250, "{small:?}");
    let small_id = queue_id_of(&small.text(), &config);

    let large = client
        .send_message(SENDER, RECIPIENT, &synthetic_message(3 * 1024 * 1024))
        .expect("reply to the large message");
    assert_eq!(large.code, 452, "{large:?}");
    assert!(large.text().starts_with("4.3.1"), "{large:?}");

    assert!(
        queued_files(&config)
            .iter()
            .any(|name| name.starts_with(&small_id)),
        "the earlier message must stay in the spool"
    );
    let _ = client.command("QUIT");
    gateway.signal(Signal::TERM);
    assert!(gateway.wait_exit(Duration::from_secs(15)).success());
}

/// Unmounts the test tmpfs, even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn shipped_configuration_runs_and_listens_on_2525() {
    if !port_is_free(2525) || !port_is_free(4465) {
        println!(
            "SKIPPED shipped_configuration_runs_and_listens_on_2525: port 2525 or 4465 is in use"
        );
        return;
    }
    let root = workspace_root();
    // No --config: the default config/gateway.toml relative to the current directory.
    let mut gateway = Gateway::spawn(&["run"], Some(&root));
    gateway.wait_ready();
    gateway.wait_for_log(&["listening", "127.0.0.1:2525"], Duration::from_secs(5));
    let (mut client, greeting) =
        Client::connect("127.0.0.1:2525".parse().expect("address")).expect("connect to 2525");
    assert_eq!(greeting.code, 220, "{greeting:?}");
    let _ = client.command("QUIT");
    gateway.signal(Signal::TERM);
    assert!(gateway.wait_exit(Duration::from_secs(40)).success());
}

/// `gateway queue status` and `dead-letters` read the queues beside the running gateway: a
/// message whose next hop is down leaves one relay job waiting for its retry.
#[test]
fn queue_status_shows_a_relay_job_waiting_for_its_retry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(dir.path());
    let file = config.write(dir.path());
    let file_arg = file.display().to_string();
    let mut gateway = Gateway::start(&file);
    gateway.wait_ready();

    let mut client = Client::connect_starttls(config.starttls_addr(), "hopital-a");
    let reply = client
        .send_message(SENDER, RECIPIENT, &synthetic_message(5_000))
        .expect("message sent");
    assert_eq!(reply.code, 250, "{reply:?}");
    let _ = client.command("QUIT");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (status, out, err) = run_cli(
            &["queue", "--config", &file_arg, "status"],
            Some(dir.path()),
        );
        assert!(status.success(), "queue status failed: {err}");
        if out.contains("delayed=1") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let relay = status
        .lines()
        .find(|line| line.starts_with("relay"))
        .unwrap_or_default();
    assert!(
        relay.contains("delayed=1") && relay.contains("dead=0"),
        "relay job waits for its retry: {status}"
    );
    let (status, out, _) = run_cli(
        &["queue", "--config", &file_arg, "dead-letters"],
        Some(dir.path()),
    );
    assert!(status.success());
    assert!(out.contains("relay: 0 dead-lettered job(s)"), "{out}");
    gateway.signal(Signal::TERM);
    assert!(gateway.wait_exit(Duration::from_secs(15)).success());
}

/// One HTTP/1.1 GET on the admin endpoint; returns the status code and the body.
fn admin_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `/healthz`, `/readyz` and `/metrics` answer, and the metrics count what happened: one message
/// accepted, one refused with its reply code, the relay job waiting in its queue.
#[test]
fn admin_endpoint_reports_health_and_counts_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(dir.path());
    let file = config.write(dir.path());
    let mut gateway = Gateway::start(&file);
    gateway.wait_ready();
    assert_eq!(admin_get(config.admin_port, "/healthz").0, 200);
    assert_eq!(admin_get(config.admin_port, "/readyz").0, 200);

    let mut client = Client::connect_starttls(config.starttls_addr(), "hopital-a");
    let accepted = client
        .send_message(SENDER, RECIPIENT, &synthetic_message(5_000))
        .expect("message sent");
    assert_eq!(accepted.code, 250, "{accepted:?}");
    let _ = client.command("QUIT");
    // From a domain without a transport-only policy, unsigned mail is refused.
    let mut labo = Client::connect_starttls(config.starttls_addr(), "labo-b");
    let refused = labo
        .send_message(
            "resultats@labo-b.mssante.test",
            RECIPIENT,
            &synthetic_message(5_000),
        )
        .expect("reply");
    assert_eq!(refused.code, 550, "{refused:?}");
    let _ = labo.command("QUIT");

    let (status, metrics) = admin_get(config.admin_port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("gateway_messages_accepted_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_messages_rejected_total{code=\"550\",enhanced=\"5.7.1\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_queue_jobs{queue=\"relay\""),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_open_messages 1\n"), "{metrics}");
    gateway.signal(Signal::TERM);
    assert!(gateway.wait_exit(Duration::from_secs(15)).success());
}
