// Restora's service worker: the app shell (page, script, wasm, styles, samples, model list)
// keeps working offline after a first visit. Network first, so a rebuilt site is used at once;
// the cached copy only when the network fails. Weights (*.safetensors) are cached by the app
// itself with the Cache API and pass through here untouched.
const CACHE = "restora-shell-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

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
      if (response.ok) {
        event.waitUntil(cache.put(request, response.clone()));
      }
      return response;
    } catch (error) {
      const cached = await cache.match(request, { ignoreSearch: true });
      if (cached) {
        return cached;
      }
      throw error;
    }
  })());
});
