//! `cargo xtask serve`: `dist/` over HTTP as a production static host would serve it: axum with
//! tower-http's `ServeDir`, which answers GET and HEAD with the MIME type of the extension
//! (`application/wasm` for the module), the precompressed `.br` / `.gz` copies that `cargo xtask
//! build` writes (by the request's `Accept-Encoding`), byte ranges and conditional requests
//! (`Last-Modified` / `If-Modified-Since`), and nothing outside the folder. On top of it, the cache
//! policy of the site: content-hashed files are immutable for a year, everything else is revalidated
//! on every use (`no-cache`), so a rebuilt site is seen at once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL, VARY, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// For files whose name holds a hash of their content: they never change under that name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For every other file: the browser may keep a copy but asks the server (a 304 is cheap) first.
pub const NO_CACHE: &str = "no-cache";

#[derive(clap::Args)]
pub struct Options {
    /// The folder to serve (built first when it holds no site yet).
    #[arg(long, value_name = "DIR", default_value = "dist")]
    dist: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port; 0 picks a free one (the first line printed is the URL either way).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Do not log each request.
    #[arg(long)]
    quiet: bool,
}

impl Options {
    /// The folder served, absolute.
    pub fn dist(&self, root: &Path) -> PathBuf {
        if self.dist.is_absolute() {
            self.dist.clone()
        } else {
            root.join(&self.dist)
        }
    }
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    let dist = options.dist(root);
    let (listener, dist) = bind(&dist, &options.host, options.port)?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // The first line is the URL (tests started with --port 0 read it).
    println!("http://{address}/");
    eprintln!("[xtask] serving {} (Ctrl-C stops)", dist.display());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    serve(listener, dist, options.quiet)
}

/// Serves `dist` on a free localhost port from a background thread, quietly; returns the URL.
pub fn spawn(dist: &Path) -> Result<String, String> {
    let (listener, dist) = bind(dist, "127.0.0.1", 0)?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        if let Err(e) = serve(listener, dist, true) {
            eprintln!("[xtask] the site's server stopped: {e}");
        }
    });
    Ok(format!("http://{address}/"))
}

/// Checks that `dist` is a built site and listens on `host:port`.
fn bind(dist: &Path, host: &str, port: u16) -> Result<(TcpListener, PathBuf), String> {
    if !dist.join("index.html").is_file() {
        return Err(format!("{} has no index.html: run `cargo xtask build` first", dist.display()));
    }
    let dist = dist.canonicalize().map_err(|e| format!("{}: {e}", dist.display()))?;
    let listener = TcpListener::bind((host, port)).map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    Ok((listener, dist))
}

/// The site's routes: every path is a file of `dist`.
fn app(dist: &Path, quiet: bool) -> Router {
    let files = ServeDir::new(dist)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true)
        .not_found_service(axum::routing::any(|| async { "not found\n" }));
    Router::new().fallback_service(files).layer(middleware::from_fn(move |request: Request, next: Next| async move {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let mut response = next.run(request).await;
        let status = response.status();
        let headers = response.headers_mut();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            let name = uri.path().rsplit('/').next().unwrap_or("");
            let policy = if crate::build::is_hashed(name) { IMMUTABLE } else { NO_CACHE };
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(policy));
            // The body depends on Accept-Encoding (a .br or .gz copy may be sent): caches must
            // keep one copy per encoding.
            headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if !quiet {
            let encoding = response
                .headers()
                .get(axum::http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            eprintln!("[xtask] {method} {uri} {}{encoding}", status.as_u16());
        }
        Ok::<Response, std::convert::Infallible>(response)
    }))
}

/// Runs the server on `listener` until the process ends.
fn serve(listener: TcpListener, dist: PathBuf, quiet: bool) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| format!("cannot configure the socket: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
        axum::serve(listener, app(&dist, quiet)).await.map_err(|e| format!("the server failed: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// One HTTP/1.1 request to the server; the answer's head (lower case) and body.
    fn get(url: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
        let (head, body) = get_raw(url, path, headers);
        (head.to_ascii_lowercase(), body)
    }

    /// One raw HTTP/1.1 request to the server; the answer's head as sent, and body.
    fn get_raw(url: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
        let address = url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (String::from_utf8_lossy(&answer[..split]).into_owned(), answer[split + 4..].to_vec())
    }

    #[test]
    fn serves_files_compressed_cached_and_only_inside_dist() {
        let dir = tempfile::TempDir::new().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("sub dir")).unwrap();
        std::fs::write(site.join("index.html"), "<p>i</p>").unwrap();
        std::fs::write(site.join("sub dir/a.wasm"), "wasm bytes").unwrap();
        std::fs::write(site.join("app-0123456789abcdef.js"), "plain").unwrap();
        std::fs::write(site.join("app-0123456789abcdef.js.br"), "brotli").unwrap();
        std::fs::write(site.join("app-0123456789abcdef.js.gz"), "gzip").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        let url = spawn(&site).unwrap();

        let (head, body) = get(&url, "/?backend=cpu", "");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/html") && head.contains("cache-control: no-cache"), "{head}");
        assert_eq!(body, b"<p>i</p>");

        let (head, body) = get(&url, "/sub%20dir/a.wasm", "");
        assert!(head.contains("content-type: application/wasm"), "{head}");
        assert_eq!(body, b"wasm bytes");

        let (head, body) = get(&url, "/app-0123456789abcdef.js", "Accept-Encoding: gzip, br\r\n");
        assert!(head.contains("content-encoding: br") && head.contains("immutable"), "{head}");
        assert!(head.contains("content-type: text/javascript"), "{head}");
        assert_eq!(body, b"brotli");
        let (head, body) = get(&url, "/app-0123456789abcdef.js", "Accept-Encoding: gzip\r\n");
        assert!(head.contains("content-encoding: gzip"), "{head}");
        assert_eq!(body, b"gzip");
        let (head, body) = get(&url, "/app-0123456789abcdef.js", "");
        assert!(!head.contains("content-encoding"), "{head}");
        assert_eq!(body, b"plain");

        let (head, body) = get(&url, "/sub%20dir/a.wasm", "Range: bytes=5-\r\n");
        assert!(head.starts_with("http/1.1 206"), "{head}");
        assert_eq!(body, b"bytes");

        let (head, _) = get_raw(&url, "/index.html", "");
        let modified = head.lines().find_map(|l| l.strip_prefix("last-modified: ")).unwrap().to_string();
        let (head, body) = get(&url, "/index.html", &format!("If-Modified-Since: {modified}\r\n"));
        assert!(head.starts_with("http/1.1 304") && body.is_empty(), "{head}");

        for path in ["/../secret.txt", "/sub%20dir/%2e%2e/%2e%2e/secret.txt", "/missing.js"] {
            let (head, _) = get(&url, path, "");
            assert!(head.starts_with("http/1.1 404") || head.starts_with("http/1.1 400"), "{path}: {head}");
        }
    }
}
