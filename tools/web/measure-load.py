#!/usr/bin/env python3
"""Bytes on the wire and time until the page can restore, first and second visit.

Puts a byte-counting (optionally bandwidth-limited) TCP proxy in front of a running site
(`cargo xtask serve --port 0` prints its URL), drives headless Chromium through chromedriver
with the browser tests' flags, and for each visit reports:
  - bytes: everything the server sent through the proxy (HTTP headers and bodies, every request
    of the page, its service worker and workers), and the number of requests;
  - ready: `performance.now()` in the page (ms since navigation start) when the loading overlay is
    gone and the Restore button is enabled.
Visit 1 uses a fresh profile; visit 2 navigates again in the same browser (HTTP cache and service
worker as a returning visitor has them).

  tools/web/measure-load.py --site http://127.0.0.1:8080/ [--rate-mbit 20] [--rtt-ms 40] [--repeat 3]

With `--restore STEM`, after the second visit it also opens that sample, picks `--task` and
restores `--restore-runs` times, printing the page's own time of each run (`data-elapsed-ms` of
the result: the first includes loading the weights and starting the CPU worker).

Standard library only (no pip install). Prints one JSON line per visit and a Markdown row per run.
"""
import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

FLAGS = [
    "--headless", "--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader",
    "--enable-features=Vulkan", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run", "--window-size=1280,1000",
]


class Proxy:
    """Forwards 127.0.0.1:<port> to the site, counting what the site sends back. With a rate, a
    shared token bucket limits the downstream bandwidth; with an RTT, each request waits that long
    before it reaches the site (a round trip's worth of latency per request)."""

    def __init__(self, target_host, target_port, rate_bytes_per_s=None, rtt_s=0.0):
        self.target = (target_host, target_port)
        self.rate = rate_bytes_per_s
        self.rtt = rtt_s
        self.bytes_down = 0
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.next_free = 0.0  # when the shared link is free again (loop time)
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def reset(self):
        self.bytes_down = 0
        self.requests = 0

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def upstream():
            while data := await reader.read(65536):
                # Request heads start with a method; bodies (none here) would be miscounted.
                self.requests += sum(data.count(m) for m in (b"GET /", b"HEAD /"))
                if self.rtt:
                    await asyncio.sleep(self.rtt)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream():
            while data := await up_reader.read(16384):
                self.bytes_down += len(data)
                if self.rate:
                    now = self.loop.time()
                    start = max(now, self.next_free)
                    self.next_free = start + len(data) / self.rate
                    await asyncio.sleep(self.next_free - now)
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


def webdriver(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=900) as response:
        value = json.load(response)["value"]
    if isinstance(value, dict) and "error" in value:
        raise RuntimeError(f"{method} {path}: {value['error']}: {value.get('message')}")
    return value


READY = """
const done = arguments[arguments.length - 1];
const check = () => {
  const run = document.querySelector('[data-testid="run"]');
  if (!document.getElementById('loading') && run && !run.disabled) return done(performance.now());
  const failed = document.getElementById('loading')?.textContent?.includes('could not start');
  if (failed) return done(-1);
  setTimeout(check, 10);
};
check();
"""


def visit(driver, session, url, proxy, settle_s):
    proxy.reset()
    webdriver(driver, "POST", f"/session/{session}/url", {"url": url})
    ready = webdriver(driver, "POST", f"/session/{session}/execute/async", {"script": READY, "args": []})
    # Whatever the page still fetches right after start-up (service worker, manifests) counts too.
    last, quiet_since = proxy.bytes_down, time.time()
    while time.time() - quiet_since < settle_s:
        time.sleep(0.1)
        if proxy.bytes_down != last:
            last, quiet_since = proxy.bytes_down, time.time()
    return {"ready_ms": round(ready), "bytes": proxy.bytes_down, "requests": proxy.requests}


RESTORE = """
const [stem, task, done] = arguments;
const el = id => document.querySelector(`[data-testid="${id}"]`);
const set = (id, value) => {
  const e = el(id);
  e.value = value;
  e.dispatchEvent(new Event('input', {bubbles: true}));
  e.dispatchEvent(new Event('change', {bubbles: true}));
};
const before = el('result-image')?.src;
const start = () => {
  // The sample buttons appear once samples.json has arrived.
  if (!window.__restoraSampleOpened) {
    const button = el(`sample-${stem}`);
    if (!button) return setTimeout(start, 50);
    button.click();
    window.__restoraSampleOpened = true;
  }
  // The input canvas takes the photo's size once it is decoded (a blank canvas is 300 wide).
  const canvas = el('input-image');
  if (!canvas || canvas.getAttribute('width') !== String(width) || el('run').disabled) return setTimeout(start, 50);
  set('task-select', task);
  el('run').click();
  const wait = () => {
    const result = el('result-image');
    if (result && result.src.startsWith('blob:') && result.src !== before && result.dataset.elapsedMs)
      return done({ms: Number(result.dataset.elapsedMs), backend: result.dataset.backend,
                   status: el('status')?.textContent});
    const error = el('error')?.textContent;
    if (error) return done({error});
    setTimeout(wait, 50);
  };
  wait();
};
let width;
fetch('samples/samples.json').then(r => r.json()).then(list => {
  width = list.samples.find(s => s.stem === stem)?.width;
  start();
});
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", required=True, help="URL of the running site")
    parser.add_argument("--query", default="", help="query string for the page, e.g. backend=cpu")
    parser.add_argument("--rate-mbit", type=float, default=0, help="downstream bandwidth limit (0: none)")
    parser.add_argument("--rtt-ms", type=float, default=0, help="latency added to each request")
    parser.add_argument("--repeat", type=int, default=1, help="fresh browsers, one after the other")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds without traffic that end a visit")
    parser.add_argument("--label", default="", help="first column of the Markdown rows")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--restore", metavar="STEM", help="after the visits, restore this sample")
    parser.add_argument("--task", default="denoise")
    parser.add_argument("--restore-runs", type=int, default=3)
    args = parser.parse_args()

    site = urllib.parse.urlsplit(args.site)
    proxy = Proxy(site.hostname, site.port or 80,
                  args.rate_mbit * 1e6 / 8 if args.rate_mbit else None, args.rtt_ms / 1000)
    url = f"http://127.0.0.1:{proxy.port}{site.path or '/'}" + (f"?{args.query}" if args.query else "")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver_process = subprocess.Popen([args.chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    driver = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                webdriver(driver, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        for run in range(args.repeat):
            profile = tempfile.mkdtemp(prefix="measure-load-")
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium",
                                       "args": FLAGS + [f"--user-data-dir={profile}"]},
                "timeouts": {"script": 900_000, "pageLoad": 300_000},
            }}}
            session = webdriver(driver, "POST", "/session", caps)["sessionId"]
            try:
                first = visit(driver, session, url, proxy, args.settle)
                second = visit(driver, session, url, proxy, args.settle)
                for name, v in (("first", first), ("second", second)):
                    print(json.dumps({"run": run + 1, "visit": name, **v}), flush=True)
                for i in range(args.restore_runs if args.restore else 0):
                    result = webdriver(driver, "POST", f"/session/{session}/execute/async",
                                       {"script": RESTORE, "args": [args.restore, args.task]})
                    print(json.dumps({"run": run + 1, "restore": i + 1, **result}), flush=True)
            finally:
                webdriver(driver, "DELETE", f"/session/{session}")
                shutil.rmtree(profile, ignore_errors=True)
            mb = lambda b: f"{b / 1e6:.2f} MB"
            print(f"| {args.label} | {mb(first['bytes'])} ({first['requests']} req) | {first['ready_ms']} ms "
                  f"| {mb(second['bytes'])} ({second['requests']} req) | {second['ready_ms']} ms |", flush=True)
    finally:
        driver_process.terminate()
        driver_process.wait()


if __name__ == "__main__":
    sys.exit(main())
