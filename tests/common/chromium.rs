//! Headless Chromium for the page tests: the browser process (killed with its group), a scratch
//! folder, and a Chrome DevTools Protocol client over tungstenite.

use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A child process (leader of its own process group) killed with its whole group on drop.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch folder removed on drop (declared first, so it goes after the processes using it).
pub struct TempDir(pub PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn spawn(cmd: &mut Command) -> Proc {
    use std::os::unix::process::CommandExt;
    Proc(cmd.process_group(0).spawn().expect("spawn"))
}

/// Chromium for a page test and a scratch folder for it (`tag` in its name); None, with a
/// note, without Chromium (a panic when TRIAGE_REQUIRE_MODELS=1).
pub fn chromium_and_scratch(tag: &str) -> Option<(PathBuf, TempDir)> {
    let Some(chromium) = find_chromium() else {
        if std::env::var("TRIAGE_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
            panic!("no chromium on PATH: install chromium (scripts/deps.sh)");
        }
        eprintln!("SKIPPED: no chromium, chromium-browser or google-chrome on PATH");
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        TempDir(std::env::temp_dir().join(format!("triage-{tag}-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    Some((chromium, dir))
}

pub fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(3000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_string()
}

/// A Chrome DevTools Protocol connection; `session` (once attached) routes calls to the page.
pub struct Cdp {
    pub ws: WebSocket<TcpStream>,
    pub next_id: u64,
    pub session: Option<String>,
    /// Page JS exceptions and console/log errors seen so far, for failure messages.
    pub page_errors: Vec<String>,
}

impl Cdp {
    pub fn connect(ws_url: &str) -> Cdp {
        let addr = ws_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap();
        let stream = TcpStream::connect(addr).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(ws_url, stream).expect("DevTools websocket handshake");
        Cdp {
            ws,
            next_id: 0,
            session: None,
            page_errors: Vec::new(),
        }
    }

    /// Send a command; skip events (noting page errors) until its answer: the result, or the error.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let sent = self.ws.send(Message::Text(msg.to_string().into()));
        sent.unwrap_or_else(|e| panic!("CDP send {method}: {e}"));
        loop {
            let m = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("CDP read (waiting for {method}): {e}"));
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("CDP message is JSON");
            if v["id"] == json!(self.next_id) {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
            let p = &v["params"];
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.page_errors.push(format!(
                    "exception: {}",
                    p["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .unwrap_or(p["exceptionDetails"]["text"].as_str().unwrap_or("?"))
                )),
                Some("Runtime.consoleAPICalled")
                    if p["type"] == "error" || p["type"] == "warning" =>
                {
                    self.page_errors.push(format!(
                        "console.{}: {}",
                        p["type"].as_str().unwrap_or(""),
                        p["args"]
                    ))
                }
                Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                    self.page_errors.push(format!(
                        "log: {} {}",
                        p["entry"]["text"].as_str().unwrap_or(""),
                        p["entry"]["url"].as_str().unwrap_or("")
                    ))
                }
                _ => {}
            }
        }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("CDP {method} failed: {e}"))
    }

    /// The value of a JS expression in the page, or why there is none (e.g. mid-navigation).
    pub fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let params = json!({"expression": expr, "returnByValue": true, "awaitPromise": true});
        let r = self
            .try_call("Runtime.evaluate", params)
            .map_err(|e| e.to_string())?;
        match r.get("exceptionDetails") {
            Some(ex) => Err(format!("`{expr}` threw: {ex}")),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Poll `expr` until it is `true`; whether it became so within `timeout`.
    pub fn wait_for(&mut self, expr: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(expr) == Ok(json!(true)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn text(&mut self, expr: &str) -> String {
        match self.eval(expr) {
            Ok(Value::String(s)) => s,
            other => format!("{other:?}"),
        }
    }
}

/// `triage serve` on a free loopback port with `config` (TOML text, written to `dir`), once
/// `/ready`: the process and its port. Its log is `dir/server.log`.
pub fn serve(dir: &Path, config: &str) -> (Proc, u16) {
    let cfg = dir.join("triage.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = dir.join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = spawn(
        Command::new(env!("CARGO_BIN_EXE_triage"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&cfg)
            .env_remove("TRIAGE_CONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(st) = server.0.try_wait().unwrap() {
            panic!("server exited ({st}) before ready; log:\n{}", tail(&log));
        }
        match super::http(port, "GET", "/ready", "") {
            Some((200, _)) => break,
            _ if Instant::now() > deadline => {
                panic!("server not ready in 180 s; log:\n{}", tail(&log))
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    (server, port)
}

/// Headless Chromium (profile in `dir/chromium`) with one page attached by a flat session,
/// navigated to `url`: the browser process and the page's DevTools client.
pub fn open_page(chromium: &Path, dir: &Path, url: &str) -> (Proc, Cdp) {
    use std::io::BufRead;
    let mut browser = spawn(
        Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium").display()
            ))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = browser.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        // Keep draining stderr for the browser's whole life.
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let ws_url = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => match line.split_once("DevTools listening on ") {
                Some((_, u)) => break u.trim().to_string(),
                None => seen.push(line),
            },
            Err(e) => panic!(
                "no DevTools address from {} ({e}); stderr:\n{}",
                chromium.display(),
                seen.join("\n")
            ),
        }
    };
    let mut cdp = Cdp::connect(&ws_url);
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}));
    let attached = cdp.call(
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    cdp.session = Some(
        attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string(),
    );
    cdp.call("Runtime.enable", json!({}));
    cdp.call("Log.enable", json!({}));
    let nav = cdp.call("Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "navigate to {url}: {nav}");
    (browser, cdp)
}
