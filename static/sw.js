// Restora's service worker: the app shell (page, scripts, wasm, styles, samples, model list)
// keeps working offline after a first visit.
// - Install: every file of `shell.json` (written by `cargo xtask build`) is cached at once, so
//   the first visit's files are kept although they were loaded before this worker existed.
// - Fetch: network first, so a rebuilt site is used at once; the cached copy when the network
//   fails. Every page of the app (any query: `?backend=cpu`, `?nosw`...) is answered offline with
//   the cached page.
// Weights (*.safetensors) are cached by the app itself with the Cache API and pass through here
// untouched.
const CACHE = "restora-shell-v2";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const response = await fetch("shell.json", { cache: "no-cache" });
    if (!response.ok) throw new Error(`shell.json: HTTP ${response.status}`);
    const shell = await response.json();
    // `cache: "no-cache"`: revalidated, never an older copy from the HTTP cache.
    await cache.addAll(shell.map((url) => new Request(url, { cache: "no-cache" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("restora-shell-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.endsWith(".safetensors")) {
    return;
  }
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok && !url.search) {
        event.waitUntil(cache.put(request, response.clone()));
      }
      return response;
    } catch (error) {
      const cached = await cache.match(request, { ignoreSearch: true })
        ?? (request.mode === "navigate" ? await cache.match("./") : undefined);
      if (cached) return cached;
      throw error;
    }
  })());
});
