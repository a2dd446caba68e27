//! The listening socket, plain or TLS (rustls with the ring provider), as `axum::serve`
//! listeners. When graceful shutdown drops one, the connections the kernel has already queued
//! (and TLS handshakes still running) are answered 503 `shutting_down` with `Retry-After`
//! instead of being reset; after that the socket is closed and new connections are refused.

use super::tracker::Tracker;
use crate::config::TlsConfig;
use crate::error::AppError;
use anyhow::{ensure, Context, Result};
use axum::response::IntoResponse;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{rustls, TlsAcceptor};

/// Longest TLS handshake; a client slower than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The raw HTTP/1.1 answer given to connections queued at shutdown (from the one error enum).
pub async fn refusal(retry_after: u64) -> Arc<Vec<u8>> {
    let resp = AppError::ShuttingDown { retry_after }.into_response();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (k, v) in &parts.headers {
        if let Ok(v) = v.to_str() {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Arc::new(bytes)
}

/// Shared by both listeners: who answers refused connections, and with what.
#[derive(Clone)]
pub struct Drain {
    pub tracker: Arc<Tracker>,
    pub answer: Arc<Vec<u8>>,
}

impl Drain {
    /// Answer `s` with the refusal in a tracked task.
    fn refuse<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, s: S) {
        let (guard, answer) = (self.tracker.enter(), self.answer.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                refuse(s, &answer).await;
                drop(guard);
            });
        }
    }
}

/// Read the request (so that closing does not reset it), write `answer`, close politely.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, answer: &[u8]) {
    let mut buf = vec![0u8; 16 << 10];
    let mut head: Vec<u8> = Vec::new();
    let read_request = async {
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let mut left = content_length(&head[..end]).saturating_sub(head.len() - end - 4);
                while left > 0 {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    left = left.saturating_sub(n);
                }
                return Ok(());
            }
            if head.len() > 64 << 10 {
                return Ok(());
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), read_request).await;
    if s.write_all(answer).await.is_err() || s.flush().await.is_err() {
        return;
    }
    let _ = s.shutdown().await;
    // Let the client read the answer and close first (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Connections the kernel has queued but nobody accepted yet (never waits).
fn backlog(tcp: &TcpListener) -> Vec<TcpStream> {
    let mut cx = TaskContext::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Ok((s, _))) = tcp.poll_accept(&mut cx) {
        out.push(s);
    }
    out
}

/// Log and pause on errors that are not about one connection (EMFILE: wait for descriptors).
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Plain HTTP.
pub struct Plain {
    tcp: TcpListener,
    drain: Drain,
}

impl Plain {
    pub fn new(tcp: TcpListener, drain: Drain) -> Self {
        Plain { tcp, drain }
    }
}

impl axum::serve::Listener for Plain {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.tcp.accept().await {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    return (s, addr);
                }
                Err(e) => accept_error(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        for s in backlog(&self.tcp) {
            self.drain.refuse(s);
        }
    }
}

/// Load `[server.tls]`: the certificate chain and key, TLS 1.2 and 1.3, HTTP/1.1.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("server.tls.cert: cannot read {}", cfg.cert.display()))?;
    ensure!(
        !certs.is_empty(),
        "server.tls.cert: no certificate in {}",
        cfg.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .with_context(|| format!("server.tls.key: cannot read {}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("server.tls")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("server.tls: the key does not fit the certificate")?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(sc)))
}

type Handshaken = (TlsStream<TcpStream>, SocketAddr);

/// HTTPS: a task accepts TCP connections and runs each handshake in its own task, so a slow
/// client never holds up the others; finished handshakes are handed to `accept`.
pub struct Tls {
    rx: mpsc::Receiver<Handshaken>,
    local: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    drain: Drain,
}

impl Tls {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor, drain: Drain) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(accept_loop(tcp, acceptor, tx, stopped, drain.clone()));
        Ok(Tls {
            rx,
            local,
            stop: Some(stop),
            drain,
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<Handshaken>,
    mut stopped: oneshot::Receiver<()>,
    drain: Drain,
) {
    loop {
        tokio::select! {
            r = tcp.accept() => match r {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    let (acceptor, tx, drain) = (acceptor.clone(), tx.clone(), drain.clone());
                    let guard = drain.tracker.enter();
                    tokio::spawn(async move {
                        let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await;
                        if let Ok(Ok(tls)) = hs {
                            if let Err(mpsc::error::SendError((tls, _))) = tx.send((tls, addr)).await {
                                drain.refuse(tls);
                            }
                        }
                        drop(guard);
                    });
                }
                Err(e) => accept_error(e).await,
            },
            _ = &mut stopped => break,
        }
    }
    for s in backlog(&tcp) {
        let (acceptor, drain) = (acceptor.clone(), drain.clone());
        let guard = drain.tracker.enter();
        tokio::spawn(async move {
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                drain.refuse(tls);
            }
            drop(guard);
        });
    }
}

impl axum::serve::Listener for Tls {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends before this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Handshakes finished but not yet accepted: answer them too.
        self.rx.close();
        while let Ok((tls, _)) = self.rx.try_recv() {
            self.drain.refuse(tls);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_request_is_read_then_answered_503_with_retry_after() {
        let answer = refusal(3).await;
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let body = r#"{"text": "hello"}"#;
        let req = format!(
            "POST /v1/triage HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(req.as_bytes()).await.unwrap();
        let task = tokio::spawn(async move { refuse(server, &answer).await });
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        task.await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("retry-after: 3\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        let (_, json) = text.split_once("\r\n\r\n").unwrap();
        let j: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(j["kind"], "shutting_down");
    }

    #[test]
    fn content_length_is_read_from_the_head() {
        assert_eq!(content_length(b"POST / HTTP/1.1\r\ncontent-length: 12"), 12);
        assert_eq!(content_length(b"GET / HTTP/1.1\r\nHost: x"), 0);
    }
}
