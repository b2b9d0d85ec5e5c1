//! The configuration file through the library's public API: the shipped file, broken files,
//! path resolution.

mod support;

use std::fs;
use std::path::Path;

use gateway::config::{Config, ConfigErrors, ListenMode};
use support::{TestConfig, workspace_root};

fn shipped() -> std::path::PathBuf {
    workspace_root().join("config/gateway.toml")
}

fn messages(errors: &ConfigErrors) -> Vec<String> {
    errors.problems().iter().map(ToString::to_string).collect()
}

fn assert_listed(errors: &[String], expected: &[&str]) {
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "no error starting with {prefix:?} in {errors:#?}"
        );
    }
}

#[test]
fn shipped_configuration_is_valid_and_its_files_load() {
    let config = Config::load(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    gateway::serve::prepare(&config).unwrap_or_else(|e| panic!("{e}"));
    let addresses: Vec<String> = config
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    assert_eq!(addresses, ["127.0.0.1:2525", "127.0.0.1:4465"]);
    assert_eq!(config.listeners[0].mode, ListenMode::StartTls);
    assert_eq!(config.listeners[1].mode, ListenMode::Implicit);
    let config_dir = std::path::absolute(workspace_root().join("config")).expect("absolute");
    assert_eq!(config.server.state_dir, config_dir.join("../var"));
    assert_eq!(
        config.tls.certificate,
        config_dir.join("../certs/tls/gateway.pem")
    );
}

#[test]
fn shipped_configuration_states_the_real_defaults() {
    // The file documents the defaults by stating them; they must be the code's defaults.
    let config = Config::load(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.limits, smtp_in::limits::Limits::default());
    assert_eq!(config.logging.level, "info");
    assert!(
        config
            .listeners
            .iter()
            .all(|l| l.require_client_certificate && l.whitelist)
    );
}

#[test]
fn shipped_configuration_has_every_key() {
    let text = fs::read_to_string(shipped()).expect("read");
    let keys = [
        "hostname",
        "state_dir",
        "spool_dir",
        "address",
        "mode",
        "require_client_certificate",
        "whitelist",
        "certificate",
        "private_key",
        "client_ca_bundle",
        "crl_files",
        "file",
        "checksum_file",
        "max_message_size",
        "max_recipients",
        "max_command_line",
        "max_text_line",
        "idle_timeout",
        "session_timeout",
        "max_connections",
        "max_connections_per_ip",
        "max_bad_commands",
        "max_messages_per_session",
        "shutdown_grace",
        "format",
        "level",
    ];
    for key in keys {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{key} = "))),
            "config/gateway.toml does not set {key}"
        );
    }
    assert!(text.contains("NOT FOR PRODUCTION"));
}

#[test]
fn broken_configuration_lists_every_error_with_its_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = TestConfig::new(dir.path()).write(dir.path());
    let text = fs::read_to_string(&good)
        .expect("read")
        .replace(
            "hostname = \"localhost\"",
            "hostname = \"local host\"\nport = 25",
        )
        .replace("mode = \"implicit\"", "mode = \"tls\"\naddres = \"x\"")
        .replace(
            "shutdown_grace = 1",
            "shutdown_grace = -1\nmax_text_line = 80",
        )
        .replace("format = \"text\"", "format = \"xml\"");
    let text =
        format!("{text}\n[[listeners]]\naddress = \"127.0.0.1:99999\"\nmode = \"starttls\"\n");
    let errors = Config::from_toml(&text, &good).expect_err("broken");
    let errors = messages(&errors);
    let expected = [
        "server.port: unknown key (expected one of `hostname`, `state_dir`, `spool_dir`)",
        "server.hostname: invalid host name \"local host\"",
        "listeners[1].mode: unknown variant `tls`",
        "listeners[1].addres: unknown key",
        "listeners[2].address: invalid socket address \"127.0.0.1:99999\"",
        "limits.shutdown_grace: invalid value: integer `-1`",
        "limits.max_text_line: 80 is below the minimum of 1000",
        "logging.format: unknown variant `xml`",
    ];
    assert_listed(&errors, &expected);
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn missing_files_are_named_with_their_key_and_resolved_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("etc");
    fs::create_dir(&config_dir).expect("mkdir");
    let text = r#"
[server]
hostname = "localhost"
[[listeners]]
address = "127.0.0.1:0"
mode = "starttls"
[tls]
certificate = "tls/gateway.pem"
private_key = "tls/gateway.key"
client_ca_bundle = "ca/bundle.pem"
crl_files = ["crl/org.crl.pem"]
[whitelist]
file = "lb.xml"
checksum_file = "lb.xml.sha256"
"#;
    let file = config_dir.join("gateway.toml");
    fs::write(&file, text).expect("write");
    let errors = messages(&Config::load(&file).expect_err("files missing"));
    let base = std::path::absolute(&config_dir).expect("absolute");
    for (key, path) in [
        ("tls.certificate", "tls/gateway.pem"),
        ("tls.private_key", "tls/gateway.key"),
        ("tls.client_ca_bundle", "ca/bundle.pem"),
        ("tls.crl_files[0]", "crl/org.crl.pem"),
        ("whitelist.file", "lb.xml"),
        ("whitelist.checksum_file", "lb.xml.sha256"),
    ] {
        let expected = format!("{key}: file not found: {}", base.join(path).display());
        assert!(
            errors.contains(&expected),
            "{expected:?} not in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn relative_paths_resolve_against_the_configuration_directory() {
    // The same file content, valid only when read from its own directory: copy the shipped
    // file next to a copy of certs/ and check it from an unrelated current directory.
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&workspace_root().join("certs"), &dir.path().join("certs"));
    let config_dir = dir.path().join("config");
    fs::create_dir(&config_dir).expect("mkdir");
    let file = config_dir.join("gateway.toml");
    fs::copy(shipped(), &file).expect("copy config");
    let config = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let base = std::path::absolute(&config_dir).expect("absolute");
    assert_eq!(config.server.spool_dir, base.join("../var/spool"));
    assert_eq!(
        config.whitelist.expect("whitelist").file,
        base.join("../certs/listeblanche/listeblanchemssante.xml")
    );
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
