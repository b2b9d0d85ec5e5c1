//! Unit tests of parsing and validation on synthetic files in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Config, ConfigErrors, ListenMode, LogFormat};

/// A config directory `<tmp>/config` with empty placeholder PEM and XML files next to it.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("config");
    fs::create_dir(&config_dir).expect("config dir");
    for name in [
        "chain.pem",
        "key.pem",
        "bundle.pem",
        "org.crl.pem",
        "list.xml",
        "list.sha256",
    ] {
        fs::write(dir.path().join(name), b"").expect("placeholder file");
    }
    let file = config_dir.join("gateway.toml");
    (dir, file)
}

const VALID: &str = r#"
[server]
hostname = "mx.gateway.mssante.test"

[[listeners]]
address = "127.0.0.1:2525"
mode = "starttls"

[tls]
certificate = "../chain.pem"
private_key = "../key.pem"
client_ca_bundle = "../bundle.pem"
crl_files = ["../org.crl.pem"]

[whitelist]
file = "../list.xml"
"#;

fn messages(errors: &ConfigErrors) -> Vec<String> {
    errors.problems().iter().map(ToString::to_string).collect()
}

fn errors_of(text: &str, file: &Path) -> Vec<String> {
    match Config::from_toml(text, file) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => messages(&errors),
    }
}

#[test]
fn minimal_file_gets_the_defaults() {
    let (dir, file) = fixture();
    let config = Config::from_toml(VALID, &file).expect("valid");
    let root = std::path::absolute(dir.path()).expect("absolute");
    assert_eq!(config.server.state_dir, root.join("config").join("../var"));
    assert_eq!(config.server.spool_dir, root.join("config/../var/spool"));
    assert_eq!(config.listeners.len(), 1);
    let listener = &config.listeners[0];
    assert_eq!(listener.mode, ListenMode::StartTls);
    assert!(listener.require_client_certificate);
    assert!(listener.whitelist);
    assert_eq!(
        config.tls.crl_files,
        vec![root.join("config/../org.crl.pem")]
    );
    assert_eq!(config.limits, smtp_in::limits::Limits::default());
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.logging.level, "info");
}

#[test]
fn every_unknown_key_and_type_error_is_listed_with_its_path() {
    let (_dir, file) = fixture();
    let text = format!(
        "{VALID}\n[[listeners]]\naddress = 7\nmode = \"smtps\"\nport = 25\n\n[limits]\nmax_recipients = \"many\"\nidle = 5\n\n[bogus]\nx = 1\n"
    );
    let text = text.replace("[server]\n", "[server]\nhost = \"x\"\n");
    let errors = errors_of(&text, &file);
    let expected = [
        "bogus: unknown key",
        "limits.idle: unknown key",
        "limits.max_recipients: invalid type: string \"many\"",
        "listeners[1].address: invalid type: integer `7`",
        "listeners[1].mode: unknown variant `smtps`",
        "listeners[1].port: unknown key",
        "server.host: unknown key",
    ];
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "no error starting with {prefix:?} in {errors:#?}"
        );
    }
    // One line per problem: the deserializer's own location suffix is not repeated.
    assert!(!errors.iter().any(|e| e.contains('\n')), "{errors:#?}");
    // Removing a broken key must not also report it as missing.
    assert!(!errors.iter().any(|e| e.contains("missing")), "{errors:#?}");
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn unknown_key_names_the_accepted_keys() {
    let (_dir, file) = fixture();
    let errors = errors_of(
        &VALID.replace("[server]\n", "[server]\nhostnam = \"a\"\n"),
        &file,
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("server.hostnam: unknown key (expected one of"));
    assert!(errors[0].contains("`hostname`"));
}

#[test]
fn bad_array_element_is_reported_once_without_missing_noise() {
    let (_dir, file) = fixture();
    let text = VALID.replace(
        r#"crl_files = ["../org.crl.pem"]"#,
        r#"crl_files = ["../org.crl.pem", 5]"#,
    );
    let errors = errors_of(&text, &file);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("tls.crl_files[1]: invalid type"),
        "{errors:#?}"
    );
}

#[test]
fn invalid_values_are_all_reported() {
    let (_dir, file) = fixture();
    let text = r#"
[server]
hostname = "bad host"

[[listeners]]
address = "x"
mode = "implicit"

[[listeners]]
address = "127.0.0.1:2525"
mode = "starttls"
require_client_certificate = false

[[listeners]]
address = "127.0.0.1:2525"
mode = "starttls"

[tls]
certificate = "../nope.pem"
private_key = "../key.pem"
client_ca_bundle = "../bundle.pem"

[limits]
max_command_line = 100
max_message_size = 0

[logging]
level = "info,[[["
"#;
    let errors = errors_of(text, &file);
    let expected = [
        "server.hostname: invalid host name \"bad host\"",
        "listeners[0].address: invalid socket address \"x\"",
        "listeners[1].whitelist: the whitelist is checked against the client certificate",
        "listeners[2].address: address \"127.0.0.1:2525\" is already used by listeners[1]",
        "tls.certificate: file not found: ",
        "tls.crl_files: at least one CRL is required",
        "whitelist.file: missing (required)",
        "limits.max_message_size: 0 is below the minimum of 1",
        "limits.max_command_line: 100 is below the minimum of 512",
        "logging.level: invalid filter \"info,[[[\"",
    ];
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "no error starting with {prefix:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("nope.pem")));
}

#[test]
fn empty_file_lists_the_required_keys() {
    let (_dir, file) = fixture();
    let errors = errors_of("", &file);
    for prefix in [
        "server.hostname: missing",
        "listeners: at least one [[listeners]] entry is required",
        "tls.certificate: missing",
        "tls.private_key: missing",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "{prefix:?} in {errors:#?}"
        );
    }
}

#[test]
fn syntax_error_is_reported_alone_with_its_line() {
    let (_dir, file) = fixture();
    let errors = errors_of("[server\nhostname = 1\n", &file);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("not valid TOML"), "{errors:#?}");
    assert!(errors[0].contains("line 1"), "{errors:#?}");
}

#[test]
fn a_whole_section_of_the_wrong_type_is_one_error() {
    let (_dir, file) = fixture();
    let errors = errors_of(&format!("limits = 5\n{VALID}"), &file);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("limits: invalid type"), "{errors:#?}");
}

#[test]
fn optional_client_certificates_need_no_bundle_nor_whitelist() {
    let (_dir, file) = fixture();
    let text = r#"
[server]
hostname = "localhost"
state_dir = "/srv/gateway"
spool_dir = "spool-here"

[[listeners]]
address = "[::1]:0"
mode = "implicit"
require_client_certificate = false
whitelist = false

[[listeners]]
address = "127.0.0.1:0"
mode = "implicit"
require_client_certificate = false
whitelist = false

[tls]
certificate = "../chain.pem"
private_key = "../key.pem"

[limits]
shutdown_grace = 0
max_recipients = 5

[logging]
format = "json"
level = "debug,smtp_in=trace"
"#;
    let config = Config::from_toml(text, &file).expect("valid");
    assert!(config.whitelist.is_none());
    assert!(config.tls.client_ca_bundle.is_none());
    assert_eq!(config.server.state_dir, PathBuf::from("/srv/gateway"));
    assert!(config.server.spool_dir.ends_with("config/spool-here"));
    assert_eq!(config.limits.shutdown_grace, std::time::Duration::ZERO);
    assert_eq!(config.limits.max_recipients, 5);
    assert_eq!(config.logging.format, LogFormat::Json);
    assert!(
        config
            .listeners_summary()
            .starts_with("2 listener(s): [::1]:0 (implicit")
    );
}

#[test]
fn values_too_large_for_the_limit_type_are_refused() {
    let (_dir, file) = fixture();
    let text = format!("{VALID}\n[limits]\nmax_bad_commands = 99999999999\n");
    let errors = errors_of(&text, &file);
    assert_eq!(
        errors,
        vec!["limits.max_bad_commands: 99999999999 is too large"]
    );
}

#[test]
fn unreadable_file_is_reported() {
    let (dir, _file) = fixture();
    let missing = dir.path().join("absent.toml");
    let errors = Config::load(&missing).expect_err("missing file");
    assert!(errors.to_string().contains("absent.toml"));
    assert!(messages(&errors)[0].starts_with("cannot read the configuration file"));
}
