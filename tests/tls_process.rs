//! The real `triage serve` process with `[server.tls]`: HTTPS with a self-signed certificate
//! made here (rcgen), answered JSON errors over TLS, no plain HTTP on that port, a clear start
//! error for a bad key, and exit 0 on SIGTERM. No model is needed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(d: &Path, cert: &str, key: &str) -> PathBuf {
    let cfg = d.join("triage.toml");
    std::fs::write(
        &cfg,
        format!(
            "default_model = \"multilingual-e5-small\"\n[server.tls]\ncert = {cert:?}\nkey = {key:?}\n\
             [store]\npath = {:?}\n[[models]]\nname = \"multilingual-e5-small\"\nsource = {:?}\nprefix = \"query: \"\n",
            d.join("triage.sqlite"),
            d.join("no-model")
        ),
    )
    .unwrap();
    cfg
}

fn serve(cfg: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage"));
    c.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(cfg)
        .env_remove("TRIAGE_API_KEYS")
        .stdout(Stdio::null());
    c
}

/// A ureq agent that trusts only `cert` (DER).
fn agent(cert: &[u8]) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls))
        .timeout(Duration::from_secs(10))
        .build()
}

#[test]
fn serves_https_with_a_self_signed_certificate() {
    let d = std::env::temp_dir().join(format!("triage-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(d.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    // Relative to the config file's folder.
    let cfg = config(&d, "cert.pem", "key.pem");
    let port = free_port();
    let mut server = Server(serve(&cfg, port).stderr(Stdio::null()).spawn().unwrap());
    let https = agent(ck.cert.der());
    let base = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        match https.get(&format!("{base}/health")).call() {
            Ok(r) => break r,
            Err(e) => {
                assert!(server.0.try_wait().unwrap().is_none(), "server exited: {e}");
                assert!(Instant::now() < deadline, "no HTTPS answer: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(health.status(), 200);
    // Errors are the same JSON over TLS.
    let err = https
        .post(&format!("{base}/v1/embed"))
        .send_string("{\"texts\": [")
        .unwrap_err();
    match err {
        ureq::Error::Status(400, r) => {
            let j: serde_json::Value = r.into_json().unwrap();
            assert_eq!(j["field"], "body", "{j}");
        }
        other => panic!("{other:?}"),
    }
    // A client that does not trust the certificate is refused by its own TLS check.
    assert!(ureq::get(&format!("{base}/health")).call().is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(!out.starts_with(b"HTTP/1.1 200"), "{out:?}");

    let t = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = loop {
        if let Some(st) = server.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}");

    // A key that is not a key: the start fails naming it.
    std::fs::write(d.join("bad.pem"), "not a key").unwrap();
    let cfg = config(&d, "cert.pem", "bad.pem");
    let out = serve(&cfg, free_port()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("server.tls.key"), "{err}");
    let _ = std::fs::remove_dir_all(d);
}
