//! In-memory session tests: reply codes, STARTTLS and implicit TLS (real rustls handshakes over
//! `tokio::io::duplex`), pipelining, the liste blanche, handler and spool outcomes, shutdown.
//! Limits, timeouts and smuggling are in `limits.rs`.

mod common;

use common::harness::{FROM, TO, start, start_with, tls_session, tls_session_with};
use common::{Client, client_addr, files_in};
use smtp_in::envelope::BodyType;
use smtp_in::handler::Verdict;
use smtp_in::limits::Limits;
use smtp_in::reply::{EnhancedCode, Reply};
use smtp_in::server::{ListenerConfig, ListenerMode};

// ---- greeting, EHLO, TLS ----

#[tokio::test]
async fn greeting_and_ehlo_keywords_in_clear() {
    let (mut client, _harness) = start(Limits::default());
    let greeting = client.reply().await;
    assert_eq!(greeting.code, 220);
    assert!(greeting.text().starts_with("gateway.mssante.test ESMTP"));
    let ehlo = client.command("EHLO mta.hopital-a.test").await;
    assert_eq!(ehlo.code, 250);
    for keyword in [
        "SIZE 26214400",
        "8BITMIME",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(
            ehlo.lines.iter().any(|l| l == keyword),
            "{keyword} in {ehlo:?}"
        );
    }
    client
        .command("HELO mta.hopital-a.test")
        .await
        .assert(250, "");
}

#[tokio::test]
async fn mail_in_clear_text_is_refused_530() {
    let (mut client, harness) = start(Limits::default());
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(530, "5.7.0");
    client
        .command("RCPT TO:<x@y.test>")
        .await
        .assert(503, "5.5.1");
    client.command("DATA").await.assert(503, "5.5.1");
    assert_eq!(harness.queued(), 0);
}

#[tokio::test]
async fn starttls_resets_state_and_hides_keyword() {
    let (mut client, _harness) = start(Limits::default());
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    let mut client = client.starttls(Some("hopital-a")).await;
    // RFC 3207 §4.2: the SMTP state is discarded; EHLO is needed again.
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(503, "5.5.1");
    let ehlo = client.command("EHLO mta.hopital-a.test").await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    client.command("STARTTLS").await.assert(503, "5.5.1");
}

#[tokio::test]
async fn starttls_discards_pipelined_injection() {
    let (mut client, harness) = start(Limits::default());
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    // CVE-2011-0411: commands sent in clear behind STARTTLS must not run inside TLS.
    client
        .send(format!(
            "STARTTLS\r\nMAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\n"
        ))
        .await;
    client.reply().await.assert(220, "2.0.0");
    assert!(client.leftover().is_empty());
    let tls = common::connect_tls(client.stream, Some("hopital-a"))
        .await
        .unwrap();
    let mut client = Client::new(tls);
    client
        .command("EHLO mta.hopital-a.test")
        .await
        .assert(250, "");
    // Had the injected MAIL run, this would be "503 nested MAIL".
    let reply = client
        .send_message(FROM, &[TO], "Subject: t\r\n\r\nhello\r\n")
        .await;
    reply.assert(250, "2.0.0");
    assert_eq!(harness.queued(), 1);
    let checked = harness.handler.checked.lock().unwrap().clone();
    assert_eq!(checked[0].envelope.recipients, vec![TO.to_owned()]);
}

#[tokio::test]
async fn full_transaction_spools_with_trace_header_and_identity() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    let reply = client
        .send_message(
            FROM,
            &[TO],
            "Subject: test\r\n\r\n..leading dot\r\nline two\r\n",
        )
        .await;
    reply.assert(250, "2.0.0");
    assert!(reply.text().ends_with("queued"), "{reply:?}");
    assert_eq!(harness.queued(), 1);
    assert_eq!(harness.temporary(), 0);

    let checked = harness.handler.checked.lock().unwrap().clone();
    assert_eq!(checked.len(), 1);
    let envelope = &checked[0].envelope;
    assert_eq!(envelope.mail_from.as_deref(), Some(FROM));
    assert_eq!(envelope.helo, "mta.hopital-a.test");
    assert_eq!(envelope.client_addr, client_addr());
    let peer = envelope.peer.as_ref().expect("peer identity captured");
    assert!(peer.subject.contains("HOPITAL A TEST"), "{peer:?}");

    let body = String::from_utf8(checked[0].body.clone()).unwrap();
    assert!(
        body.starts_with("Received: from mta.hopital-a.test ([192.0.2.10])"),
        "{body}"
    );
    assert!(body.contains("by gateway.mssante.test"));
    assert!(body.contains("with ESMTPS id"));
    assert!(body.contains("version=TLSv1.3"));
    assert!(body.contains("verified)"));
    assert!(body.contains(&format!("for <{TO}>;")));
    // Dot-stuffing undone.
    assert!(
        body.ends_with("Subject: test\r\n\r\n.leading dot\r\nline two\r\n"),
        "{body}"
    );

    let accepted = harness.handler.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    assert!(reply.text().contains(&accepted[0].queue_id.to_string()));
    client.command("QUIT").await.assert(221, "2.0.0");
    assert!(client.closed().await);
}

#[tokio::test]
async fn implicit_tls_session() {
    let config = common::listener_config(ListenerMode::Implicit, Limits::default());
    let (client, harness) = start_with(config);
    let tls = common::connect_tls(client.stream, Some("labo-b"))
        .await
        .unwrap();
    let mut client = Client::new(tls);
    assert_eq!(client.reply().await.code, 220);
    let ehlo = client.command("EHLO mta.labo-b.test").await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"));
    client.command("STARTTLS").await.assert(503, "5.5.1");
    client
        .send_message("x@labo-b.mssante.test", &[TO], "Subject: x\r\n\r\nx\r\n")
        .await
        .assert(250, "2.0.0");
    assert_eq!(harness.queued(), 1);
}

#[tokio::test]
async fn implicit_tls_without_client_certificate_fails_handshake() {
    let config = common::listener_config(ListenerMode::Implicit, Limits::default());
    let (client, harness) = start_with(config);
    let outcome = async {
        let tls = common::connect_tls(client.stream, None).await?;
        let mut client = Client::new(tls);
        // TLS 1.3: the client learns of the refusal on its first read.
        Ok::<_, std::io::Error>(client.try_reply().await)
    }
    .await;
    assert!(matches!(outcome, Err(_) | Ok(None)), "{outcome:?}");
    harness.task.await.unwrap();
}

// ---- simple commands ----

#[tokio::test]
async fn vrfy_expn_help_noop_rset_quit() {
    let (mut client, _harness) = start(Limits::default());
    client.reply().await;
    let vrfy = client.command("VRFY postmaster").await;
    vrfy.assert(252, "2.5.0");
    assert!(!vrfy.text().contains("postmaster"), "no leak: {vrfy:?}");
    client.command("EXPN staff").await.assert(502, "5.5.1");
    client.command("HELP").await.assert(214, "2.0.0");
    client.command("NOOP").await.assert(250, "2.0.0");
    client.command("RSET").await.assert(250, "2.0.0");
    client.command("QUIT").await.assert(221, "2.0.0");
    assert!(client.closed().await);
}

#[tokio::test]
async fn syntax_errors_have_enhanced_codes() {
    let (mut client, _harness) = tls_session(Limits::default()).await;
    client.command("FOO bar").await.assert(500, "5.5.2");
    client.command("EHLO").await.assert(501, "5.5.4");
    client
        .command("MAIL TO:<a@b.test>")
        .await
        .assert(501, "5.5.4");
    client
        .command("MAIL FROM:<not an address>")
        .await
        .assert(501, "5.1.7");
    client
        .command(&format!("MAIL FROM:<{FROM}> SMTPUTF8"))
        .await
        .assert(555, "5.5.4");
    client
        .command(&format!("MAIL FROM:<{FROM}> BODY=BINARYMIME"))
        .await
        .assert(501, "5.5.4");
    client
        .command(&format!("MAIL FROM:<{FROM}> SIZE=12x"))
        .await
        .assert(501, "5.5.4");
}

#[tokio::test]
async fn bad_sequences_are_503() {
    let (mut client, _harness) = start(Limits::default());
    client.reply().await;
    client
        .command("MAIL FROM:<a@b.test>")
        .await
        .assert(503, "5.5.1");
    let (mut client, _harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(503, "5.5.1");
    client.command("DATA").await.assert(503, "5.5.1");
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(503, "5.5.1");
    // MAIL accepted but no recipient: DATA gets 554 5.5.1 (RFC 2920 §3.1).
    client.command("DATA").await.assert(554, "5.5.1");
}

#[tokio::test]
async fn rset_abandons_the_transaction() {
    let (mut client, _harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client.command("RSET").await.assert(250, "2.0.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(503, "5.5.1");
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
}

#[tokio::test]
async fn mail_parameters_reach_the_envelope() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}> SIZE=20 BODY=8BITMIME"))
        .await
        .assert(250, "2.1.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send("Subject: \u{e9}\r\n\r\nx\r\n.\r\n").await;
    client.reply().await.assert(250, "2.0.0");
    let checked = harness.handler.checked.lock().unwrap().clone();
    assert_eq!(checked[0].envelope.body, BodyType::EightBitMime);
    assert_eq!(checked[0].envelope.declared_size, Some(20));
}

#[tokio::test]
async fn null_sender_is_accepted() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    client.command("MAIL FROM:<>").await.assert(250, "2.1.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send("Subject: DSN\r\n\r\nx\r\n.\r\n").await;
    client.reply().await.assert(250, "2.0.0");
    let checked = harness.handler.checked.lock().unwrap().clone();
    assert_eq!(checked[0].envelope.mail_from, None);
}

// ---- pipelining ----

#[tokio::test]
async fn pipelined_commands_are_answered_in_order_in_one_flush() {
    let (mut client, _harness) = start(Limits::default());
    client.reply().await;
    client.send("NOOP\r\nNOOP\r\nHELP\r\nNOOP\r\n").await;
    // The session flushes once, when its input is drained: one read gets every reply.
    let mut chunk = vec![0u8; 4096];
    let count = tokio::io::AsyncReadExt::read(&mut client.stream, &mut chunk)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&chunk[..count]);
    assert_eq!(text.matches("250 2.0.0").count(), 3, "{text}");
    assert!(text.contains("214 2.0.0"), "{text}");
}

#[tokio::test]
async fn pipelined_transaction_over_tls() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    client
        .send(format!(
            "MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nRCPT TO:<second@gateway.mssante.test>\r\nDATA\r\n"
        ))
        .await;
    client.reply().await.assert(250, "2.1.0");
    client.reply().await.assert(250, "2.1.5");
    client.reply().await.assert(250, "2.1.5");
    client.reply().await.assert(354, "2.0.0");
    // End of data and QUIT in one segment.
    client.send("Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n").await;
    client.reply().await.assert(250, "2.0.0");
    client.reply().await.assert(221, "2.0.0");
    assert_eq!(harness.queued(), 1);
}

// ---- handler and spool outcomes ----

#[tokio::test]
async fn handler_rejection_is_sent_and_nothing_kept() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    let refusal = Reply::new(554, EnhancedCode::new(5, 7, 5), "Bad S/MIME signature");
    *harness.handler.verdict.lock().unwrap() = Verdict::Reject(refusal);
    let reply = client
        .send_message(FROM, &[TO], "Subject: x\r\n\r\nx\r\n")
        .await;
    reply.assert(554, "5.7.5");
    assert!(reply.text().contains("Bad S/MIME signature"));
    assert_eq!(harness.queued(), 0);
    assert_eq!(harness.temporary(), 0);
    assert!(harness.handler.accepted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn spool_failure_is_451_and_session_continues() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    // Break the spool: its temporary directory disappears.
    std::fs::remove_dir_all(harness.dir.path().join("tmp")).unwrap();
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(451, "4.3.0");
    client.command("NOOP").await.assert(250, "2.0.0");
    let _ = &harness.spool;
}

// ---- shutdown ----

#[tokio::test]
async fn shutdown_closes_idle_session_with_421_4_3_2() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    harness.shutdown.begin();
    client.reply().await.assert(421, "4.3.2");
    assert!(client.closed().await);
}

#[tokio::test]
async fn shutdown_lets_a_transaction_finish_until_forced() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    harness.shutdown.begin();
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    client.command("DATA").await.assert(354, "2.0.0");
    client.send("Subject: x\r\n\r\nx\r\n.\r\n").await;
    client.reply().await.assert(250, "2.0.0");
    // Transaction over: the session is idle and is closed at once.
    client.reply().await.assert(421, "4.3.2");
    assert!(client.closed().await);
    assert_eq!(harness.queued(), 1);

    let (mut client, harness) = tls_session(Limits::default()).await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    harness.shutdown.begin();
    harness.shutdown.force();
    client.reply().await.assert(421, "4.3.2");
    assert!(client.closed().await);
}

// ---- liste blanche ----

fn whitelisted_config() -> ListenerConfig {
    let mut config = common::listener_config(ListenerMode::StartTls, Limits::default());
    config.whitelist = Some(common::whitelist());
    config
}

#[tokio::test]
async fn whitelist_permits_listed_domain() {
    let (mut client, harness) = tls_session_with(whitelisted_config()).await;
    client
        .send_message(FROM, &[TO], "Subject: w\r\n\r\nx\r\n")
        .await
        .assert(250, "2.0.0");
    assert_eq!(harness.queued(), 1);
}

#[tokio::test]
async fn whitelist_refuses_other_domain_naming_domain_and_dn() {
    let (mut client, harness) = tls_session_with(whitelisted_config()).await;
    let reply = client
        .command("MAIL FROM:<someone@labo-b.mssante.test>")
        .await;
    reply.assert(550, "5.7.1");
    let text = reply.text();
    assert!(text.contains("labo-b.mssante.test"), "{text}");
    assert!(text.contains("HOPITAL A TEST"), "{text}");
    // The pipelined follow-ups of a refused MAIL are not bad commands; the session goes on.
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(503, "5.5.1");
    client
        .command("MAIL FROM:<unknown@nowhere.test>")
        .await
        .assert(550, "5.7.1");
    assert_eq!(harness.queued(), 0);
}

#[tokio::test]
async fn whitelist_null_sender_needs_a_listed_operator() {
    let (mut client, _harness) = tls_session_with(whitelisted_config()).await;
    client.command("MAIL FROM:<>").await.assert(250, "2.1.0");

    // Implicit TLS with a certificate that is valid but not in the liste blanche: the
    // gateway's own certificate is listed only for gateway.mssante.test.
    let mut config = whitelisted_config();
    config.mode = ListenerMode::Implicit;
    let (client, _harness) = start_with(config);
    let tls = common::connect_tls(client.stream, Some("labo-b"))
        .await
        .unwrap();
    let mut client = Client::new(tls);
    client.reply().await;
    client.command("EHLO mta.labo-b.test").await;
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(550, "5.7.1");
    client.command("MAIL FROM:<>").await.assert(250, "2.1.0");
}

#[tokio::test]
async fn client_vanishing_mid_data_leaves_nothing() {
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
    client.send("Subject: partial\r\n\r\nhalf a mess").await;
    drop(client);
    harness.task.await.unwrap();
    assert_eq!(files_in(harness.dir.path(), "tmp"), 0);
    assert_eq!(files_in(harness.dir.path(), "queue"), 0);
    assert!(harness.handler.checked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn several_messages_in_one_session() {
    let (mut client, harness) = tls_session(Limits::default()).await;
    for index in 0..3 {
        client
            .send_message(FROM, &[TO], &format!("Subject: {index}\r\n\r\nx\r\n"))
            .await
            .assert(250, "2.0.0");
    }
    assert_eq!(harness.queued(), 3);
}
