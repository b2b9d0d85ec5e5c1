//! A TCP stream that keeps `TCP_QUICKACK` armed.
//!
//! SMTP is a ping-pong of small writes. A client that does not set `TCP_NODELAY` holds its next
//! small segment back (Nagle) until our ACK of the previous one arrives, and Linux delays that ACK
//! up to 40 ms when it thinks the connection is interactive — so each command can stall 40 ms.
//! Linux clears `TCP_QUICKACK` by itself after a while, so it is set again after every read that
//! returned data: the client's segments are acknowledged at once. On other systems the option
//! does not exist and the wrapper only delegates.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose delayed-ACK behaviour can be switched to immediate ACKs.
pub trait QuickAckSocket {
    /// Asks the kernel to acknowledge received data immediately (Linux `TCP_QUICKACK`); a no-op
    /// where the option does not exist.
    fn arm_quick_ack(&self) -> io::Result<()>;
}

impl QuickAckSocket for tokio::net::TcpStream {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn arm_quick_ack(&self) -> io::Result<()> {
        rustix::net::sockopt::set_tcp_quickack(self, true).map_err(io::Error::from)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn arm_quick_ack(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Wraps a stream and re-arms quick ACKs after each read that returned data; reads and writes
/// are otherwise delegated unchanged.
#[derive(Debug)]
pub struct QuickAckStream<S> {
    inner: S,
    /// Set after the first failure, so a socket that refuses the option is not asked (and does
    /// not log) on every read.
    disabled: bool,
}

impl<S: QuickAckSocket> QuickAckStream<S> {
    /// Wraps `inner` and arms quick ACKs once right away.
    pub fn new(inner: S) -> QuickAckStream<S> {
        let mut stream = QuickAckStream {
            inner,
            disabled: false,
        };
        stream.rearm();
        stream
    }

    fn rearm(&mut self) {
        if self.disabled {
            return;
        }
        if let Err(error) = self.inner.arm_quick_ack() {
            tracing::debug!(%error, "cannot set TCP_QUICKACK; delayed ACKs stay in effect");
            self.disabled = true;
        }
    }
}

impl<S> QuickAckStream<S> {
    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + QuickAckSocket + Unpin> AsyncRead for QuickAckStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.rearm();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for QuickAckStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// In-memory stream that counts re-arms.
    struct Counting {
        stream: tokio::io::DuplexStream,
        arms: Arc<AtomicUsize>,
    }

    impl QuickAckSocket for Counting {
        fn arm_quick_ack(&self) -> io::Result<()> {
            self.arms.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl AsyncRead for Counting {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn rearms_after_each_read_with_data_only() {
        let (mut client, server) = tokio::io::duplex(1024);
        let arms = Arc::new(AtomicUsize::new(0));
        let mut stream = QuickAckStream::new(Counting {
            stream: server,
            arms: Arc::clone(&arms),
        });
        assert_eq!(arms.load(Ordering::SeqCst), 1, "armed at creation");
        let mut buffer = [0u8; 16];
        for round in 0..3 {
            client.write_all(b"EHLO x\r\n").await.expect("write");
            let read = stream.read(&mut buffer).await.expect("read");
            assert_eq!(&buffer[..read], b"EHLO x\r\n");
            assert_eq!(arms.load(Ordering::SeqCst), 2 + round);
        }
        drop(client);
        assert_eq!(stream.read(&mut buffer).await.expect("eof"), 0);
        assert_eq!(arms.load(Ordering::SeqCst), 4, "no re-arm on EOF");
    }

    #[tokio::test]
    async fn tcp_round_trip_keeps_quickack_set() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let mut server = QuickAckStream::new(accepted);
        let mut buffer = [0u8; 64];
        for _ in 0..3 {
            client.write_all(b"NOOP\r\n").await.expect("client write");
            let read = server.read(&mut buffer).await.expect("server read");
            assert_eq!(&buffer[..read], b"NOOP\r\n");
            #[cfg(any(target_os = "linux", target_os = "android"))]
            assert!(rustix::net::sockopt::tcp_quickack(server.get_ref()).expect("getsockopt"));
            server
                .write_all(b"250 2.0.0 OK\r\n")
                .await
                .expect("server write");
            server.flush().await.expect("flush");
            let read = client.read(&mut buffer).await.expect("client read");
            assert_eq!(&buffer[..read], b"250 2.0.0 OK\r\n");
        }
    }
}
