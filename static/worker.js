// The CPU backend's Web Worker: the same wasm module as the page, started in worker mode
// (see web/src/worker.rs). The page waits for its "ready" message before sending work.
import init, { restora_worker_start } from "./restora_web.js";

await init({ module_or_path: new URL("restora_web_bg.wasm", import.meta.url) });
restora_worker_start();
