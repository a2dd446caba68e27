//! One HTTP(S) download for the model pack, on `ureq` with rustls (it replaced a `curl`
//! subprocess and keeps what curl gave): the roots are Mozilla's (webpki-roots) plus the
//! system's CA bundle where there is one (`SSL_CERT_FILE`, else the distribution's bundle, so a
//! TLS-inspecting proxy's CA still applies); a proxy from `https_proxy`/`HTTPS_PROXY` (HTTPS)
//! or `http_proxy` (HTTP), else `ALL_PROXY`/`all_proxy`, unless `NO_PROXY`/`no_proxy` names the
//! host; redirects followed; three retries (after 1, 2 and 4 s) on transport errors and on
//! 408, 429, 500, 502, 503 and 504. The caller writes into a temporary file and renames it.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

/// Retries after the first attempt, as `curl --retry 3`.
const RETRIES: u32 = 3;

/// Fetch `url` into `out` (emptied before each attempt); returns the bytes written.
pub fn download(url: &str, out: &mut File) -> Result<u64> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url}: not a URL"))?;
    let agent = agent(&parsed)?;
    let mut attempt = 0;
    loop {
        out.set_len(0)?;
        out.seek(SeekFrom::Start(0))?;
        let why = match agent.get(url).call() {
            Ok(resp) => {
                let mut body = resp.into_reader();
                match std::io::copy(&mut body, out) {
                    Ok(n) => return Ok(n),
                    Err(e) => format!("reading the body: {e}"),
                }
            }
            Err(ureq::Error::Status(code, _)) if !matches!(code, 408 | 429 | 500 | 502..=504) => {
                bail!("{url}: HTTP {code}")
            }
            Err(ureq::Error::Status(code, _)) => format!("HTTP {code}"),
            Err(ureq::Error::Transport(t)) => t.to_string(),
        };
        if attempt == RETRIES {
            bail!("{url}: {why} (after {RETRIES} retries)");
        }
        std::thread::sleep(Duration::from_secs(1 << attempt));
        attempt += 1;
    }
}

fn agent(url: &url::Url) -> Result<ureq::Agent> {
    let mut b = ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls()?))
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120));
    if let Some(p) = proxy_for(url, &|k| std::env::var(k).ok()) {
        b = b.proxy(ureq::Proxy::new(&p).with_context(|| format!("proxy {p}"))?);
    }
    Ok(b.build())
}

/// Mozilla's roots and the system bundle's.
fn tls() -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
        });
    if let Some(Ok(certs)) = bundle.map(CertificateDer::pem_file_iter) {
        roots.add_parsable_certificates(certs.flatten());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The proxy curl would use for `url`, reading variables through `env`.
fn proxy_for(url: &url::Url, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let no = get("no_proxy")
        .or_else(|| get("NO_PROXY"))
        .unwrap_or_default();
    for entry in no.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry.trim_start_matches('.');
        if entry == "*" || host == entry || host.ends_with(&format!(".{entry}")) {
            return None;
        }
    }
    let scheme = match url.scheme() {
        "https" => get("https_proxy").or_else(|| get("HTTPS_PROXY")),
        // curl reads only the lower-case name for HTTP (the upper-case one is a CGI header).
        _ => get("http_proxy"),
    };
    scheme
        .or_else(|| get("all_proxy"))
        .or_else(|| get("ALL_PROXY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        proxy_for(&url::Url::parse(url).unwrap(), &env)
    }

    #[test]
    fn proxies_as_curl_picks_them() {
        let https = "https://files.pythonhosted.org/x.whl";
        assert_eq!(proxy(https, &[]), None);
        assert_eq!(
            proxy(https, &[("HTTPS_PROXY", "http://p:3128")]).as_deref(),
            Some("http://p:3128")
        );
        assert_eq!(
            proxy(https, &[("ALL_PROXY", "socks5://s")]).as_deref(),
            Some("socks5://s")
        );
        let both = [("https_proxy", "http://a"), ("ALL_PROXY", "http://b")];
        assert_eq!(proxy(https, &both).as_deref(), Some("http://a"));
        assert_eq!(proxy("http://h/x", &[("HTTP_PROXY", "http://p")]), None);
        assert_eq!(
            proxy("http://h/x", &[("http_proxy", "http://p")]).as_deref(),
            Some("http://p")
        );
        for no in [
            "pythonhosted.org",
            ".pythonhosted.org",
            "*",
            "x, files.pythonhosted.org",
        ] {
            assert_eq!(
                proxy(https, &[("HTTPS_PROXY", "http://p"), ("NO_PROXY", no)]),
                None,
                "{no}"
            );
        }
        let other = [("HTTPS_PROXY", "http://p"), ("no_proxy", "hosted.org")];
        assert_eq!(proxy(https, &other).as_deref(), Some("http://p"));
    }

    #[test]
    fn tls_config_builds() {
        tls().unwrap();
    }
}
