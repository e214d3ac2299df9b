//! The browser tests' WebDriver client: a blocking facade over `fantoccini` (a maintained async
//! W3C WebDriver client) for chromedriver on localhost, so the tests read as plain sequential code.
//! Each session owns a single-threaded tokio runtime and blocks on it for every command; just
//! what the tests use (sessions, navigation, elements, scripts, pointer actions, screenshots, the
//! console).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::actions::{InputSource as _, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::wd::{Capabilities, Locator, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

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

/// A browser session; closed (and the browser quit) on drop.
pub struct Session {
    client: Client,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element(fantoccini::elements::Element);

/// chromedriver's own command for the browser console (`goog:loggingPrefs` turns it on): not in
/// the W3C standard, so fantoccini has no method for it.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

impl Session {
    /// A new headless Chromium with a fresh profile, through the chromedriver at `server`
    /// (`host:port`, or a URL).
    pub fn new(server: &str) -> Self {
        Self::with_args(server, &[])
    }

    /// A session whose Chromium also gets `extra` command-line flags.
    pub fn with_args(server: &str, extra: &[String]) -> Self {
        let profile = tempfile::TempDir::new().expect("a temporary profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 600_000, "pageLoad": 60_000},
        }) else {
            unreachable!("an object literal")
        };
        let capabilities: Capabilities = capabilities;
        let url = if server.contains("://") { server.to_string() } else { format!("http://{server}") };
        // Everything runs on this thread: fantoccini's connection task advances while a command
        // is awaited.
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime for WebDriver");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(ClientBuilder::new(connector).capabilities(capabilities).connect(&url))
            .unwrap_or_else(|e| panic!("chromedriver at {url} starts Chromium: {e}"));
        Self { client, runtime, _profile: profile }
    }

    /// Runs one WebDriver command to completion.
    fn block<T>(&self, command: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(command)
    }

    pub fn goto(&self, url: &str) {
        self.block(self.client.goto(url)).unwrap_or_else(|e| panic!("navigation to {url}: {e}"));
    }

    /// The element matching a CSS selector, if there is one now.
    pub fn find(&self, css: &str) -> Option<Element> {
        self.block(self.client.find(Locator::Css(css))).ok().map(Element)
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
        self.block(element.0.click()).unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// Types into an element; for `<input type=file>`, the text is the path of the file to open.
    pub fn send_keys(&self, element: &Element, text: &str) {
        self.block(element.0.send_keys(text)).unwrap_or_else(|e| panic!("send keys: {e}"));
    }

    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.block(element.0.attr(name)).ok().flatten()
    }

    pub fn text(&self, element: &Element) -> String {
        self.block(element.0.text()).unwrap_or_default()
    }

    /// Runs a script (a function body; `arguments` holds `args`, a JSON array) and returns what
    /// it returns.
    pub fn script(&self, body: &str, args: Value) -> Value {
        self.block(self.client.execute(body, arguments(args))).unwrap_or_else(|e| panic!("script runs: {e}"))
    }

    /// Runs an asynchronous script: its last argument is the callback that gives the result.
    pub fn script_async(&self, body: &str, args: Value) -> Value {
        self.block(self.client.execute_async(body, arguments(args))).unwrap_or_else(|e| panic!("script runs: {e}"))
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
        let (_, _, w, h) = self.block(element.0.rectangle()).unwrap_or_else(|e| panic!("element rect: {e}"));
        // Offsets are from the element's centre, in whole pixels.
        let at = |(fx, fy): (f64, f64)| PointerAction::MoveToElement {
            element: element.0.clone(),
            duration: Some(Duration::from_millis(20)),
            x: ((fx - 0.5) * w).trunc(),
            y: ((fy - 0.5) * h).trunc(),
        };
        let mut mouse = MouseActions::new("mouse".into())
            .then(at(points[0]))
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT });
        for &point in &points[1..] {
            mouse = mouse.then(at(point));
        }
        mouse = mouse.then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        self.block(self.client.perform_actions(mouse)).unwrap_or_else(|e| panic!("pointer actions: {e}"));
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
        let png = self.block(self.client.screenshot()).unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("screenshot written to {}: {e}", path.display()));
    }

    /// The browser console so far, one line per message.
    pub fn console(&self) -> String {
        let Ok(Value::Array(entries)) = self.block(self.client.issue_cmd(BrowserLog)) else {
            return "(no console log)".into();
        };
        entries.iter().map(|e| format!("{} {}", e["level"], e["message"])).collect::<Vec<_>>().join("\n")
    }
}

/// A script's arguments: the tests pass a JSON array.
fn arguments(args: Value) -> Vec<Value> {
    match args {
        Value::Array(items) => items,
        Value::Null => vec![],
        other => panic!("script arguments must be a JSON array, not {other}"),
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Ends the WebDriver session, which quits the browser.
        let _ = self.runtime.block_on(self.client.clone().close());
    }
}
