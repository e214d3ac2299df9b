//! Weights over the network: streamed with progress, kept in the Cache API so a second visit
//! (offline included) reads them from disk.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response};

use crate::dom::{self, js_error};

/// Bump when the cached format changes.
const CACHE_NAME: &str = "restora-weights-v1";

/// Where the bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Network,
}

/// The weights file at `url` (relative to the page). `expected` is the manifest's size, if any:
/// a cached copy of another size is fetched again. `progress(received, total)` is called as
/// bytes arrive.
pub async fn load(
    url: &str,
    expected: Option<u64>,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<(Vec<u8>, Source), String> {
    let cache = open_cache().await;
    if let Some(cache) = &cache {
        if let Some(bytes) = cached(cache, url).await {
            if expected.is_none_or(|n| n == bytes.len() as u64) {
                progress(bytes.len() as u64, Some(bytes.len() as u64));
                return Ok((bytes, Source::Cache));
            }
        }
    }
    let response = dom::fetch(url).await?;
    // The manifest's size first: a server sending a compressed copy gives the compressed length.
    let total = expected
        .or_else(|| response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok()));
    let bytes = stream(&response, total, &mut progress).await?;
    if let Some(n) = expected.filter(|&n| n != bytes.len() as u64) {
        return Err(format!("{url}: received {} bytes, the manifest says {n}", bytes.len()));
    }
    if let Some(cache) = &cache {
        store(cache, url, &bytes).await;
    }
    Ok((bytes, Source::Network))
}

/// Reads the body chunk by chunk, reporting progress.
async fn stream(
    response: &Response,
    total: Option<u64>,
    progress: &mut impl FnMut(u64, Option<u64>),
) -> Result<Vec<u8>, String> {
    let Some(body) = response.body() else {
        let bytes = dom::response_bytes(response).await?;
        progress(bytes.len() as u64, total);
        return Ok(bytes);
    };
    let reader: ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| "cannot read the response body".to_string())?;
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    progress(0, total);
    loop {
        let chunk =
            JsFuture::from(reader.read()).await.map_err(|e| format!("download interrupted: {}", js_error(&e)))?;
        if dom::get_path(&chunk, &["done"]).as_bool().unwrap_or(true) {
            break;
        }
        let value = dom::get_path(&chunk, &["value"]);
        let array: Uint8Array = value.dyn_into().map_err(|_| "unexpected chunk in the response body".to_string())?;
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
        progress(bytes.len() as u64, total);
    }
    Ok(bytes)
}

/// Whether weights can be kept on this device (the Cache API needs a secure context).
pub async fn can_cache() -> bool {
    open_cache().await.is_some()
}

async fn open_cache() -> Option<Cache> {
    // Missing outside secure contexts (plain http on another host than localhost).
    let caches = dom::window().caches().ok()?;
    let cache = JsFuture::from(caches.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into().ok()
}

async fn cached(cache: &Cache, url: &str) -> Option<Vec<u8>> {
    let found = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let response: Response = found.dyn_into().ok()?;
    dom::response_bytes(&response).await.ok()
}

async fn store(cache: &Cache, url: &str, bytes: &[u8]) {
    let mut copy = bytes.to_vec();
    let stored = match Response::new_with_opt_u8_array(Some(&mut copy)) {
        Ok(response) => JsFuture::from(cache.put_with_str(url, &response)).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        web_sys::console::warn_1(
            &format!("could not cache {url} (it will be downloaded again): {}", js_error(&e)).into(),
        );
    }
}
