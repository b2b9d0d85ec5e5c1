//! A minimal blocking SMTP client over rustls, enough to drive the gateway in tests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::certs;

/// One SMTP reply: code and the text of every line.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text after the code on each line.
    pub lines: Vec<String>,
}

impl Reply {
    /// All lines joined, for assertions on the text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only between taking the plain stream and installing the TLS one.
    Switching,
}

impl Stream {
    fn as_io(&mut self) -> io::Result<&mut dyn ReadWrite> {
        match self {
            Stream::Plain(stream) => Ok(stream),
            Stream::Tls(stream) => Ok(stream.as_mut()),
            Stream::Switching => Err(io::Error::other("stream lost during STARTTLS")),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A client connection.
pub struct Client {
    stream: Stream,
    buffer: Vec<u8>,
}

/// rustls client configuration trusting the test root, presenting `certs/tls/<identity>`.
pub fn client_config(identity: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let root = CertificateDer::from_pem_file(certs("ca/root.pem")).expect("root.pem");
    roots.add(root).expect("add root");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(certs(&format!("tls/{identity}.pem")))
            .expect("client chain")
            .collect::<Result<_, _>>()
            .expect("client chain PEM");
    let key =
        PrivateKeyDer::from_pem_file(certs(&format!("tls/{identity}.key"))).expect("client key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
    Arc::new(config)
}

impl Client {
    /// Connects in clear and reads the greeting.
    pub fn connect(address: SocketAddr) -> io::Result<(Client, Reply)> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        let mut client = Client {
            stream: Stream::Plain(stream),
            buffer: Vec::new(),
        };
        let greeting = client.read_reply()?;
        Ok((client, greeting))
    }

    /// Connects, EHLO, STARTTLS with `certs/tls/<identity>` and EHLO again; panics on any
    /// unexpected reply.
    pub fn connect_starttls(address: SocketAddr, identity: &str) -> Client {
        let (mut client, greeting) = Client::connect(address).expect("connect");
        assert_eq!(greeting.code, 220, "greeting: {greeting:?}");
        client.expect("EHLO client.hopital-a.mssante.test", 250);
        client.expect("STARTTLS", 220);
        client.start_tls(identity).expect("TLS handshake");
        client.expect("EHLO client.hopital-a.mssante.test", 250);
        client
    }

    /// Performs the TLS handshake on the plain connection (after `220` to STARTTLS).
    pub fn start_tls(&mut self, identity: &str) -> io::Result<()> {
        assert!(self.buffer.is_empty(), "bytes after the STARTTLS reply");
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Switching) else {
            return Err(io::Error::other("TLS already started"));
        };
        let name = ServerName::try_from("localhost").expect("server name");
        let connection =
            ClientConnection::new(client_config(identity), name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(connection, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Sends one command line and reads the reply.
    pub fn command(&mut self, line: &str) -> io::Result<Reply> {
        self.write_all(format!("{line}\r\n").as_bytes())?;
        self.read_reply()
    }

    /// Sends `line` and asserts the reply code.
    pub fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.command(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(reply.code, code, "{line}: {reply:?}");
        reply
    }

    /// MAIL, RCPT, DATA and the body; returns the final reply. `body` uses CRLF line ends and
    /// contains no line starting with a dot.
    pub fn send_message(&mut self, from: &str, to: &str, body: &[u8]) -> io::Result<Reply> {
        self.expect(&format!("MAIL FROM:<{from}>"), 250);
        self.expect(&format!("RCPT TO:<{to}>"), 250);
        self.expect("DATA", 354);
        self.send_data(body)
    }

    /// Sends a body after `354` and the terminating dot; returns the final reply. A write
    /// error (the server may stop reading) is ignored so the reply can still be read.
    pub fn send_data(&mut self, body: &[u8]) -> io::Result<Reply> {
        let _ = self.write_all(body).and_then(|()| self.write_all(b".\r\n"));
        self.read_reply()
    }

    /// Writes raw bytes and flushes.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let io = self.stream.as_io()?;
        io.write_all(bytes)?;
        io.flush()
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.len() < 3 {
                return Err(io::Error::other(format!("short reply line {line:?}")));
            }
            let code: u16 = line[..3]
                .parse()
                .map_err(|_| io::Error::other(format!("bad reply line {line:?}")))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let read = self.stream.as_io()?.read(&mut chunk)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// A synthetic message of about `size` bytes (headers + lines of 76 `x`), CRLF line ends.
pub fn synthetic_message(size: usize) -> Vec<u8> {
    let mut message = b"From: <secretariat@hopital-a.mssante.test>\r\n\
To: <dr.test@gateway.mssante.test>\r\n\
Subject: synthetic test message\r\n\
Message-ID: <test@hopital-a.mssante.test>\r\n\r\n"
        .to_vec();
    while message.len() < size {
        message.extend_from_slice(&[b'x'; 76]);
        message.extend_from_slice(b"\r\n");
    }
    message
}
