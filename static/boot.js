// Restora's start-up: loads the wasm with a progress bar, then registers the service worker.
// A file, not an inline script, so the Content-Security-Policy can forbid inline scripts.
// Every URL is relative, so the site works from any sub-path.
import init from "./restora_web.js";

const bar = document.getElementById("loading-progress");

// The wasm with a progress bar; still compiled while streaming.
async function fetchWasm(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("content-length")) || 0;
  if (!response.body || !total) return response;
  bar.max = total;
  let loaded = 0;
  const counted = response.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      loaded += chunk.byteLength;
      bar.value = loaded;
      controller.enqueue(chunk);
    },
  }));
  return new Response(counted, { headers: { "content-type": "application/wasm" } });
}

try {
  await init({ module_or_path: fetchWasm(new URL("restora_web_bg.wasm", import.meta.url)) });
  document.getElementById("loading").remove();
} catch (error) {
  document.getElementById("loading").textContent = `Restora could not start: ${error}`;
  console.error(error);
}

// Offline after the first visit (weights are cached by the app itself). `?nosw` skips it.
if ("serviceWorker" in navigator && !new URLSearchParams(location.search).has("nosw")) {
  navigator.serviceWorker.register("sw.js").catch((error) => console.warn("no service worker:", error));
}
