//! Durable spool: round trips, recovery after reopen, group commit under concurrency, cleanup,
//! disk-full classification.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use smtp_in::envelope::{BodyType, Envelope};
use smtp_in::peer::PeerIdentity;
use smtp_in::spool::{Spool, SpoolError};

fn envelope(recipient: &str) -> Envelope {
    Envelope {
        helo: "mx.hopital-a.mssante.test".to_owned(),
        client_addr: "192.0.2.10:41234".parse().expect("literal address"),
        peer: Some(PeerIdentity {
            subject: "CN=mx.hopital-a.mssante.test,OU=10000000010001,O=HOPITAL A TEST,C=FR"
                .to_owned(),
            issuer: "CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,C=FR".to_owned(),
            serial: "70fd029bdadea905".to_owned(),
            sha256_fingerprint: "0f".repeat(32),
        }),
        mail_from: Some("secretariat@hopital-a.mssante.test".to_owned()),
        recipients: vec![recipient.to_owned()],
        body: BodyType::EightBitMime,
        declared_size: Some(1234),
        received_at: UNIX_EPOCH + Duration::new(1_765_000_000, 42),
    }
}

fn message(tag: usize) -> Vec<u8> {
    format!(
        "Subject: test {tag}\r\nFrom: <a@b>\r\n\r\n{}\r\n",
        "x".repeat(tag * 97 % 5000)
    )
    .into_bytes()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
}

async fn spool_message(
    spool: &Spool,
    envelope: &Envelope,
    body: &[u8],
) -> smtp_in::spool::SpooledMessage {
    let mut writer = spool.create(envelope).await.expect("create");
    // Uneven chunks exercise the buffering and the streaming hash.
    for chunk in body.chunks(777) {
        writer.write(chunk).await.expect("write");
    }
    writer.finish().await.expect("finish")
}

#[tokio::test]
async fn round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    let envelope = envelope("dr.x@gateway.mssante.test");
    let body = message(7);
    let spooled = spool_message(&spool, &envelope, &body).await;
    assert_eq!(spooled.size, body.len() as u64);
    assert_eq!(spooled.sha256, <[u8; 32]>::from(Sha256::digest(&body)));
    assert_eq!(spooled.read_body().await.expect("read"), body);
    assert!(spooled.path().starts_with(dir.path().join("tmp")));
    // Finished but uncommitted: not in the queue.
    assert!(spool.pending().expect("pending").is_empty());

    let committed = spool.commit(spooled).await.expect("commit");
    assert_eq!(committed.envelope, envelope);
    assert_eq!(committed.size, body.len() as u64);
    assert_eq!(committed.read_body().await.expect("read"), body);
    assert_eq!(
        files_in(&dir.path().join("queue")),
        vec![committed.path.clone()]
    );
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(spool.directory_syncs() >= 1);

    let pending = spool.pending().expect("pending");
    assert_eq!(pending, vec![committed.clone()]);
    spool.remove(&committed).await.expect("remove");
    assert!(spool.pending().expect("pending").is_empty());
}

#[tokio::test]
async fn modes_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(&dir.path().join("spool")).expect("open");
    for sub in ["", "tmp", "queue"] {
        let mode = std::fs::metadata(dir.path().join("spool").join(sub))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
    let spooled = spool_message(&spool, &envelope("a@b"), b"x\r\n").await;
    let mode = std::fs::metadata(spooled.path())
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn pending_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut expected = Vec::new();
    {
        let spool = Spool::open(dir.path()).expect("open");
        for tag in 0..5 {
            let envelope = envelope(&format!("r{tag}@gateway.mssante.test"));
            let spooled = spool_message(&spool, &envelope, &message(tag)).await;
            expected.push(spool.commit(spooled).await.expect("commit"));
        }
        // A message in progress at "crash" time: never acknowledged.
        let unfinished = spool_message(&spool, &envelope("lost@b"), b"partial").await;
        std::mem::forget(unfinished);
    }
    assert_eq!(files_in(&dir.path().join("tmp")).len(), 1);
    let spool = Spool::open(dir.path()).expect("reopen");
    assert!(
        files_in(&dir.path().join("tmp")).is_empty(),
        "stale tmp file removed"
    );
    let pending = spool.pending().expect("pending");
    assert_eq!(pending, expected, "same messages, oldest first");
    for (tag, committed) in pending.iter().enumerate() {
        assert_eq!(committed.read_body().await.expect("read"), message(tag));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_directory_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    let tasks: Vec<_> = (0..100)
        .map(|tag| {
            let spool = spool.clone();
            tokio::spawn(async move {
                let envelope = envelope(&format!("r{tag}@gateway.mssante.test"));
                let spooled = spool_message(&spool, &envelope, &message(tag)).await;
                spool.commit(spooled).await.expect("commit")
            })
        })
        .collect();
    let mut committed = Vec::new();
    for task in tasks {
        committed.push(task.await.expect("task"));
    }
    let syncs = spool.directory_syncs();
    println!("100 commits, {syncs} directory fsyncs");
    assert!((1..=100).contains(&syncs));
    let pending = spool.pending().expect("pending");
    assert_eq!(pending.len(), 100);
    committed.sort_by(|left, right| left.queue_id.cmp(&right.queue_id));
    assert_eq!(pending, committed);
}

#[tokio::test]
async fn discard_and_drop_remove_temporary_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    let spooled = spool_message(&spool, &envelope("a@b"), b"rejected\r\n").await;
    let path = spooled.path().to_owned();
    spool.discard(spooled).await;
    assert!(!path.exists());

    let writer = spool.create(&envelope("a@b")).await.expect("create");
    drop(writer);
    let spooled = spool_message(&spool, &envelope("a@b"), b"dropped\r\n").await;
    drop(spooled);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(spool.pending().expect("pending").is_empty());
}

#[tokio::test]
async fn odd_addresses_survive_the_prologue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let odd = Envelope {
        helo: "[192.0.2.1] %41 \u{7f}".to_owned(),
        client_addr: "[2001:db8::25]:2525".parse().expect("literal address"),
        mail_from: None,
        recipients: vec![
            "\"john >doe\"@example.test".to_owned(),
            "\"line\r\nX-Spool-Rcpt-To: <evil@x>\"@example.test".to_owned(),
            "médecin@hôpital.example".to_owned(),
            "<>".to_owned(),
            "%%@%".to_owned(),
        ],
        body: BodyType::SevenBit,
        declared_size: None,
        peer: Some(PeerIdentity {
            subject: "CN=a\\,b\\+c,O=\\#x".to_owned(),
            ..envelope("x").peer.expect("peer")
        }),
        ..envelope("x")
    };
    let committed = {
        let spool = Spool::open(dir.path()).expect("open");
        let spooled = spool_message(&spool, &odd, b"body\r\n").await;
        spool.commit(spooled).await.expect("commit")
    };
    let spool = Spool::open(dir.path()).expect("reopen");
    let pending = spool.pending().expect("pending");
    assert_eq!(pending, vec![committed]);
    assert_eq!(pending[0].envelope, odd);
}

#[tokio::test]
async fn corrupt_file_is_reported_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    let good = spool_message(&spool, &envelope("a@b"), b"good\r\n").await;
    let good = spool.commit(good).await.expect("commit");
    let bad = spool_message(&spool, &envelope("a@b"), b"bad\r\n").await;
    let bad = spool.commit(bad).await.expect("commit");
    let text = std::fs::read_to_string(&bad.path).expect("read");
    std::fs::write(
        &bad.path,
        text.replace("X-Spool-Body: 8BITMIME", "X-Spool-Body: ???"),
    )
    .expect("damage");
    std::fs::write(dir.path().join("queue").join("README"), "not a message").expect("write");

    let recovery = spool.recover().expect("recover");
    assert_eq!(recovery.messages, vec![good.clone()]);
    assert_eq!(recovery.unreadable.len(), 1);
    match &recovery.unreadable[0] {
        SpoolError::CorruptPrologue { path, .. } => assert_eq!(path, &bad.path),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(spool.pending().expect("pending"), vec![good]);
}

#[tokio::test]
async fn one_instance_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path()).expect("open");
    assert!(matches!(
        Spool::open(dir.path()),
        Err(SpoolError::Locked { .. })
    ));
    drop(spool);
    Spool::open(dir.path()).expect("reopen after drop");
}

#[tokio::test]
async fn foreign_message_is_refused() {
    let first_dir = tempfile::tempdir().expect("tempdir");
    let second_dir = tempfile::tempdir().expect("tempdir");
    let first = Spool::open(first_dir.path()).expect("open");
    let second = Spool::open(second_dir.path()).expect("open");
    let spooled = spool_message(&first, &envelope("a@b"), b"x\r\n").await;
    assert!(matches!(
        second.commit(spooled).await,
        Err(SpoolError::ForeignMessage { .. })
    ));
}

/// Unmounts the tmpfs even when the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn disk_full_is_classified() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: a tiny tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"])
        .arg(dir.path())
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            println!(
                "skipped: mount tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            println!("skipped: cannot run mount: {error}");
            return;
        }
    }
    let _mount = Mount(dir.path().to_owned());
    let spool = Spool::open(dir.path()).expect("open");
    let mut writer = spool.create(&envelope("a@b")).await.expect("create");
    let chunk = vec![b'x'; 64 * 1024];
    let mut failure = None;
    for _ in 0..16 {
        if let Err(error) = writer.write(&chunk).await {
            failure = Some(error);
            break;
        }
    }
    let failure = match failure {
        Some(error) => error,
        None => writer
            .finish()
            .await
            .expect_err("1 MiB cannot fit in 256 KiB"),
    };
    assert!(failure.is_disk_full(), "{failure}");
    drop(spool);
}
