//! `cargo xtask serve`: a small static file server for `dist/` (std only, one thread per
//! connection, GET and HEAD, `Connection: close`), bound to localhost.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

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
    let _ = std::io::stdout().flush();
    accept(listener, dist, options.quiet);
    Ok(())
}

/// Serves `dist` on a free localhost port from a background thread, quietly; returns the URL.
pub fn spawn(dist: &Path) -> Result<String, String> {
    let (listener, dist) = bind(dist, "127.0.0.1", 0)?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || accept(listener, dist, true));
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

/// One thread per connection, forever.
fn accept(listener: TcpListener, dist: PathBuf, quiet: bool) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let dist = dist.clone();
        std::thread::spawn(move || {
            if let Err(e) = handle(stream, &dist, quiet) {
                if !quiet {
                    eprintln!("[xtask] connection error: {e}");
                }
            }
        });
    }
}

fn handle(stream: TcpStream, dist: &Path, quiet: bool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.by_ref().take(8192).read_line(&mut request_line)?;
    // Drain the headers (no body is expected for GET and HEAD).
    let mut line = String::new();
    loop {
        line.clear();
        if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut out = stream;
    let status = match method {
        "GET" | "HEAD" => match resolve(dist, target) {
            Some(path) => {
                let mut file = File::open(&path)?;
                let len = file.metadata()?.len();
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nCache-Control: no-cache\r\n\
                     X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                    mime(&path)
                )?;
                if method == "GET" {
                    std::io::copy(&mut file, &mut out)?;
                }
                200
            }
            None => {
                let body = b"not found\n";
                write!(
                    out,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                )?;
                if method == "GET" {
                    out.write_all(body)?;
                }
                404
            }
        },
        _ => {
            write!(
                out,
                "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            405
        }
    };
    out.flush()?;
    if !quiet {
        eprintln!("[xtask] {method} {target} {status}");
    }
    Ok(())
}

/// The file a request target names inside `dist`: query and fragment dropped, percent-decoded,
/// no `..`, folders answered with their `index.html`. `None` when there is no such file.
fn resolve(dist: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let decoded = percent_decode(path)?;
    let mut file = dist.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    // Symlinks must not lead out of dist/.
    let file = file.canonicalize().ok()?;
    (file.starts_with(dist) && file.is_file()).then_some(file)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    (!decoded.contains('\0') && !decoded.contains('\\')).then_some(decoded)
}

/// Content type by extension.
fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_inside_dist_only() {
        let dir = std::env::temp_dir().join(format!("xtask-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub dir")).unwrap();
        std::fs::write(dir.join("index.html"), "i").unwrap();
        std::fs::write(dir.join("sub dir/a.wasm"), "w").unwrap();
        let dist = dir.canonicalize().unwrap();
        assert_eq!(resolve(&dist, "/"), Some(dist.join("index.html")));
        assert_eq!(resolve(&dist, "/?backend=cpu"), Some(dist.join("index.html")));
        assert_eq!(resolve(&dist, "/sub%20dir/a.wasm"), Some(dist.join("sub dir/a.wasm")));
        assert_eq!(resolve(&dist, "/../Cargo.toml"), None);
        assert_eq!(resolve(&dist, "/sub%20dir/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(&dist, "/missing.js"), None);
        assert_eq!(mime(Path::new("x.wasm")), "application/wasm");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
