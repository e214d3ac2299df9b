//! A small synchronous W3C WebDriver client for chromedriver on localhost: just what the browser
//! tests use (sessions, navigation, elements, scripts, pointer actions, screenshots). Plain
//! HTTP/1.1 over a `TcpStream`, so the tests need no async runtime.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The key W3C WebDriver uses for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Flags for headless Chromium with WebGPU on SwiftShader (DEVELOPERS.md, ../shared/NOTES.md).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--use-webgpu-adapter=swiftshader",
    "--enable-features=Vulkan",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1280,1000",
];

/// One request to chromedriver; returns the `value` of its JSON answer, or its error message.
fn request(server: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let address = server.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).map_err(|e| format!("chromedriver at {address}: {e}"))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).map_err(|e| e.to_string())?;
    // chromedriver may keep the connection open: read the header, then exactly the body.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    let split = loop {
        if let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
        let n = stream.read(&mut buffer).map_err(|e| format!("{method} {path}: {e}"))?;
        if n == 0 {
            return Err(format!("{method} {path}: the connection closed before a header"));
        }
        answer.extend_from_slice(&buffer[..n]);
    };
    let header = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let mut payload = answer[split + 4..].to_vec();
    let length =
        header.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = header.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(length) => payload.len() >= length,
            None => chunked && payload.windows(5).any(|w| w == b"0\r\n\r\n"),
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buffer).map_err(|e| format!("{method} {path}: {e}"))?;
        if n == 0 {
            break;
        }
        payload.extend_from_slice(&buffer[..n]);
    }
    if chunked {
        payload = dechunk(&payload)?;
    }
    let value: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("{method} {path}: {e}: {}", String::from_utf8_lossy(&payload)))?;
    let value = value.get("value").cloned().unwrap_or(Value::Null);
    match value.get("error") {
        Some(error) => Err(format!("{method} {path}: {error}: {}", value["message"])),
        None => Ok(value),
    }
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// A browser session; closed (and the browser quit) on drop.
pub struct Session {
    server: String,
    id: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element(String);

impl Session {
    /// A new headless Chromium with a fresh profile.
    pub fn new(server: &str) -> Self {
        Self::with_args(server, &[])
    }

    /// A session whose Chromium also gets `extra` command-line flags.
    pub fn with_args(server: &str, extra: &[String]) -> Self {
        let profile = tempfile::TempDir::new().expect("a temporary profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 600_000, "pageLoad": 60_000},
        }}});
        let value = request(server, "POST", "/session", Some(&capabilities)).expect("chromedriver starts Chromium");
        let id = value["sessionId"].as_str().expect("a session id").to_string();
        Self { server: server.to_string(), id, _profile: profile }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        request(&self.server, method, &format!("/session/{}{path}", self.id), body.as_ref())
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url }))).expect("navigation");
    }

    /// The element matching a CSS selector, if there is one now.
    pub fn find(&self, css: &str) -> Option<Element> {
        let value = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).ok()?;
        Some(Element(value[ELEMENT_KEY].as_str()?.to_string()))
    }

    /// The element with `data-testid="<id>"`, waiting up to `timeout` for it.
    pub fn testid(&self, id: &str, timeout: Duration) -> Element {
        let css = format!("[data-testid=\"{id}\"]");
        self.wait(timeout, &format!("element {id}"), || self.find(&css))
    }

    /// Polls `probe` until it gives a value; panics with what it waited for and the page's
    /// status and error texts after `timeout`.
    pub fn wait<T>(&self, timeout: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        if let Some(value) = self.try_wait(timeout, probe) {
            return value;
        }
        let page = self.script(
            "const t = id => document.querySelector(`[data-testid=\"${id}\"]`)?.textContent ?? '(none)';
             return ['status', 'gpu-status', 'notice', 'error'].map(id => id + ': ' + t(id)).join('\\n');",
            json!([]),
        );
        panic!("waited {timeout:?} for {what}; page says:\n{}\nconsole:\n{}", page, self.console());
    }

    /// Polls `probe` until it gives a value or `timeout` passes.
    pub fn try_wait<T>(&self, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(value) = probe() {
                return Some(value);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn click(&self, element: &Element) {
        self.call("POST", &format!("/element/{}/click", element.0), Some(json!({}))).expect("click");
    }

    /// Types into an element; for `<input type=file>`, the text is the path of the file to open.
    pub fn send_keys(&self, element: &Element, text: &str) {
        self.call("POST", &format!("/element/{}/value", element.0), Some(json!({ "text": text }))).expect("send keys");
    }

    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let value = self.call("GET", &format!("/element/{}/attribute/{name}", element.0), None).ok()?;
        value.as_str().map(str::to_string)
    }

    pub fn text(&self, element: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", element.0), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs a script (a function body; `arguments` holds `args`) and returns what it returns.
    pub fn script(&self, body: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": body, "args": args}))).expect("script runs")
    }

    /// Runs an asynchronous script: its last argument is the callback that gives the result.
    pub fn script_async(&self, body: &str, args: Value) -> Value {
        self.call("POST", "/execute/async", Some(json!({"script": body, "args": args}))).expect("script runs")
    }

    /// Sets a `<select>` or range input by test id and fires the events Leptos listens to.
    pub fn set_value(&self, id: &str, value: &str) {
        let ok = self.script(
            "const el = document.querySelector(`[data-testid=\"${arguments[0]}\"]`);
             if (!el) return false;
             el.value = arguments[1];
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true}));
             return el.value === arguments[1];",
            json!([id, value]),
        );
        assert_eq!(ok, json!(true), "could not set {id} to {value}");
    }

    /// Drags the (left) mouse through `points`, given as fractions of the element's box.
    pub fn drag(&self, element: &Element, points: &[(f64, f64)]) {
        let rect = self.call("GET", &format!("/element/{}/rect", element.0), None).expect("element rect");
        let (w, h) = (rect["width"].as_f64().unwrap_or(0.0), rect["height"].as_f64().unwrap_or(0.0));
        // Offsets are from the element's centre.
        let at = |(fx, fy): (f64, f64)| {
            json!({"type": "pointerMove", "duration": 20,
            "origin": {ELEMENT_KEY: element.0}, "x": ((fx - 0.5) * w) as i64, "y": ((fy - 0.5) * h) as i64})
        };
        let mut actions = vec![at(points[0]), json!({"type": "pointerDown", "button": 0})];
        actions.extend(points[1..].iter().map(|&p| at(p)));
        actions.push(json!({"type": "pointerUp", "button": 0}));
        let body = json!({"actions": [{"type": "pointer", "id": "mouse",
            "parameters": {"pointerType": "mouse"}, "actions": actions}]});
        self.call("POST", "/actions", Some(body)).expect("pointer actions");
    }

    /// The bytes behind a `blob:` (or same-origin) URL of the page.
    pub fn fetch_bytes(&self, url: &str) -> Vec<u8> {
        let value = self.script_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.blob()).then(b => {
               const reader = new FileReader();
               reader.onload = () => done(reader.result.split(',')[1] ?? '');
               reader.onerror = () => done(null);
               reader.readAsDataURL(b);
             }).catch(e => done(null));",
            json!([url]),
        );
        let text = value.as_str().unwrap_or_else(|| panic!("could not read {url} in the page"));
        base64::engine::general_purpose::STANDARD.decode(text).expect("base64 from the page")
    }

    pub fn screenshot(&self, path: &Path) {
        let value = self.call("GET", "/screenshot", None).expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or("")).expect("base64");
        std::fs::write(path, png).expect("screenshot written");
    }

    /// The browser console so far, one line per message.
    pub fn console(&self) -> String {
        let Ok(Value::Array(entries)) = self.call("POST", "/se/log", Some(json!({"type": "browser"}))) else {
            return "(no console log)".into();
        };
        entries.iter().map(|e| format!("{} {}", e["level"], e["message"])).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
    }
}
