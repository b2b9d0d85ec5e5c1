//! In-memory tests of the limits (sizes, counts, line lengths, timeouts on a paused clock) and of
//! the SMTP smuggling defence.

mod common;

use std::time::Duration;

use common::harness::{FROM, TO, start, tls_session};
use smtp_in::limits::Limits;

fn small_limits() -> Limits {
    Limits {
        max_message_size: 1000,
        max_recipients: 2,
        max_bad_commands: 3,
        ..Limits::default()
    }
}

// ---- limits ----

#[tokio::test]
async fn declared_size_over_limit_is_552() {
    let (mut client, _harness) = tls_session(small_limits()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}> SIZE=1001"))
        .await
        .assert(552, "5.3.4");
    client
        .command(&format!("MAIL FROM:<{FROM}> SIZE=1000"))
        .await
        .assert(250, "2.1.0");
}

#[tokio::test]
async fn actual_size_over_limit_is_drained_then_552_and_nothing_stored() {
    let (mut client, harness) = tls_session(small_limits()).await;
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789012345678\r\n".repeat(100)
    );
    client
        .send_message(FROM, &[TO], &big)
        .await
        .assert(552, "5.3.4");
    assert_eq!(harness.queued(), 0);
    assert_eq!(harness.temporary(), 0);
    assert!(harness.handler.checked.lock().unwrap().is_empty());
    // The session is still in sync.
    client
        .send_message(FROM, &[TO], "Subject: small\r\n\r\nok\r\n")
        .await
        .assert(250, "2.0.0");
}

#[tokio::test]
async fn too_many_recipients_is_452() {
    let (mut client, harness) = tls_session(small_limits()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client
        .command("RCPT TO:<a@gateway.mssante.test>")
        .await
        .assert(250, "2.1.5");
    client
        .command("RCPT TO:<b@gateway.mssante.test>")
        .await
        .assert(250, "2.1.5");
    client
        .command("RCPT TO:<c@gateway.mssante.test>")
        .await
        .assert(452, "4.5.3");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send("Subject: r\r\n\r\nx\r\n.\r\n").await;
    client.reply().await.assert(250, "2.0.0");
    let checked = harness.handler.checked.lock().unwrap().clone();
    assert_eq!(checked[0].envelope.recipients.len(), 2);
}

#[tokio::test]
async fn overlong_command_line_is_500_5_5_6_and_session_resyncs() {
    let (mut client, _harness) = start(Limits::default());
    client.reply().await;
    let long = format!("NOOP {}", "x".repeat(600));
    client.command(&long).await.assert(500, "5.5.6");
    client.command("NOOP").await.assert(250, "2.0.0");
    // Exactly at the limit (510 + CRLF) is fine.
    client
        .command(&format!("NOOP {}", "x".repeat(505)))
        .await
        .assert(250, "2.0.0");
}

#[tokio::test]
async fn overlong_text_line_is_drained_then_500_5_5_6() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    let body = format!("Subject: l\r\n\r\n{}\r\n", "y".repeat(999));
    client
        .send_message(FROM, &[TO], &body)
        .await
        .assert(500, "5.5.6");
    assert_eq!(harness.queued(), 0);
    let body = format!("Subject: l\r\n\r\n{}\r\n", "y".repeat(998));
    client
        .send_message(FROM, &[TO], &body)
        .await
        .assert(250, "2.0.0");
}

#[tokio::test]
async fn bad_commands_limit_closes_with_421() {
    let (mut client, _harness) = start(small_limits());
    client.reply().await;
    for _ in 0..3 {
        client.command("BOGUS").await.assert(500, "5.5.2");
    }
    client.command("BOGUS").await.assert(421, "4.7.0");
    assert!(client.closed().await);
}

#[tokio::test]
async fn pipelined_503s_after_refused_mail_are_not_counted() {
    let limits = Limits {
        max_bad_commands: 1,
        ..Limits::default()
    };
    let (mut client, _harness) = start(limits);
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    client
        .send(format!(
            "MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n"
        ))
        .await;
    client.reply().await.assert(530, "5.7.0");
    client.reply().await.assert(503, "5.5.1");
    client.reply().await.assert(503, "5.5.1");
    client.reply().await.assert(503, "5.5.1");
    client.command("NOOP").await.assert(250, "2.0.0");
}

#[tokio::test]
async fn messages_per_session_limit_is_421() {
    let limits = Limits {
        max_messages_per_session: 1,
        ..Limits::default()
    };
    let (mut client, _harness) = tls_session(limits).await;
    client
        .send_message(FROM, &[TO], "Subject: 1\r\n\r\nx\r\n")
        .await
        .assert(250, "2.0.0");
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(421, "4.7.0");
    assert!(client.closed().await);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_is_421_4_4_2() {
    let (mut client, harness) = start(Limits::default());
    client.reply().await;
    let before = tokio::time::Instant::now();
    client.reply().await.assert(421, "4.4.2");
    assert!(before.elapsed() >= Duration::from_secs(300));
    assert!(client.closed().await);
    harness.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn session_timeout_is_421_4_4_2_even_when_active() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(50),
        session_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let (mut client, _harness) = start(limits);
    client.reply().await;
    let start = tokio::time::Instant::now();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(40)).await;
        client.command("NOOP").await.assert(250, "2.0.0");
    }
    let reply = client.reply().await;
    reply.assert(421, "4.4.2");
    assert!(reply.text().contains("Session time limit"), "{reply:?}");
    assert!(start.elapsed() >= Duration::from_secs(120));
}

// ---- smuggling ----

async fn smuggling_attempt(payload: &str) {
    let (mut client, harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send(payload).await;
    // Only the real CRLF.CRLF ends DATA; the smuggled commands are part of the refused body.
    let reply = client.reply().await;
    reply.assert(550, "5.6.0");
    assert!(reply.text().contains("SMTP smuggling"), "{reply:?}");
    client.command("NOOP").await.assert(250, "2.0.0");
    assert_eq!(harness.queued(), 0);
    assert_eq!(harness.temporary(), 0);
    assert!(harness.handler.checked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn smuggling_bare_lf_dot_lf() {
    smuggling_attempt(&format!(
        "Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<{TO}>\r\nDATA\r\nsmuggled\r\n.\r\n"
    ))
    .await;
}

#[tokio::test]
async fn smuggling_bare_lf_inside_crlf_dot() {
    smuggling_attempt("Subject: a\r\n\r\nx\r\n.\nNOOP\r\n.\r\n").await;
}

#[tokio::test]
async fn smuggling_bare_cr() {
    smuggling_attempt("Subject: a\r\n\r\nx\r.\rNOOP\r\n.\r\n").await;
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_during_data_is_421_and_nothing_stored() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(180),
        ..Limits::default()
    };
    let (mut client, harness) = tls_session(limits).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send("Subject: slow\r\n\r\nfirst part\r\n").await;
    let before = tokio::time::Instant::now();
    client.reply().await.assert(421, "4.4.2");
    assert!(before.elapsed() >= Duration::from_secs(180));
    assert!(client.closed().await);
    assert_eq!(harness.queued(), 0);
    assert_eq!(harness.temporary(), 0);
    harness.task.await.unwrap();
}
