"""The staff inbox, measured in a real browser and over the event stream.

    .venv/bin/python -m benchmarks.inbox [--messages 60] [--loads 15] [--clients 50]
        [--events 40] [--json var/bench-inbox.json]

Starts a switchboard in a child process (uvicorn, fresh SQLite in a temp dir, the trained triage
model from models/triage/) on a free 127.0.0.1 port with Rasa pointed at a closed port: a safety
message skips the bot and is assigned to the one person online, and while a person owns the
thread the fan's messages go straight to them. Three parts, then everything stops:

(a) fan message -> visible in the assignee's open inbox page. Noor signs in through the form in
    headless Chromium (Debian's /usr/bin/chromium), goes online, and opens the conversation a
    safety message assigned to her. Each further fan message is POSTed to the REST webhook from
    the browser (``credentials: "omit"``, like a fan) and a MutationObserver notes when its text
    appears in the transcript: both timestamps are the page's own ``performance.now()``.
(b) page weight and load time of ``/inbox/login`` and ``/inbox``: a fresh browser context per
    load (nothing cached); bytes are the Resource Timing ``transferSize`` (headers + body) of the
    document, scripts and stylesheets; times are navigation start -> DOMContentLoaded / load.
(c) ``--clients`` SSE connections to ``/api/v1/events`` (httpx, bearer tokens of the seven
    demo staff, several sessions each) at once; a supervisor toggles her presence ``--events``
    times and each ``staff.presence_changed`` frame is timed from just before the PUT until the
    last connection has it. Every connection must see every event once (no loss, no duplicate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import free_port, pct, wait_http_ok

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "aurora-demo"
HANDLES = ["laura", "tom", "giulia", "noor", "karim", "marta", "sam"]
SAFETY = "I can't find my friend and she isn't answering"

# Runs in the page: send one fan message, resolve when its text is in the transcript.
SEND_AND_WAIT = """async ([sender, text]) => {
  const list = document.querySelector('#pane .transcript');
  const seen = () => [...list.querySelectorAll('.msg-text')].some((e) => e.textContent === text);
  let done;
  const shown = new Promise((resolve) => { done = resolve; });
  const obs = new MutationObserver(() => { if (seen()) done(performance.now()); });
  obs.observe(document.getElementById('pane'), { childList: true, subtree: true });
  const t0 = performance.now();
  const posted = fetch('/webhooks/rest/webhook', { method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sender, message: text }) })
    .then((r) => { if (!r.ok) throw new Error('webhook ' + r.status); return performance.now(); });
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('not shown')), 10000));
  try {
    const t1 = await Promise.race([shown, timeout]);
    const t2 = await posted;
    return { shown_ms: t1 - t0, post_ms: t2 - t0 };
  } finally { obs.disconnect(); }
}"""

PAGE_TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const kinds = { script: 0, css: 0, other: 0 };
  for (const r of res) {
    const k = r.initiatorType === 'script' ? 'script'
      : (r.initiatorType === 'link' || r.initiatorType === 'css') ? 'css' : 'other';
    kinds[k] += r.transferSize;
  }
  return { html: nav.transferSize, js: kinds.script, css: kinds.css, other: kinds.other,
           dcl_ms: nav.domContentLoadedEventEnd - nav.startTime,
           load_ms: nav.loadEventEnd - nav.startTime };
}"""




def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p99": pct(values, 0.99),
            "max": max(values)}


# -- the switchboard, in its own process -------------------------------------------------------
def serve(port: int, database_url: str) -> None:
    import uvicorn

    from api.main import create_app
    from api.settings import Settings
    from api.triage import Triage

    dead = f"http://127.0.0.1:{free_port()}"
    settings = Settings(_env_file=None, APP_ENV="local", DATABASE_URL=database_url,
                        RASA_URL=dead, ACTION_SERVER_URL=dead, LOG_LEVEL="warning",
                        STAFF_FILE=str(ROOT / "data" / "staff.yml"), RELAY_POLL_S=5)
    app = create_app(settings, triage=Triage.load(ROOT / "models" / "triage"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                ws_max_size=settings.websocket_max_bytes)


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    db = f"sqlite:///{tmp / 'switchboard.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.inbox", "--serve", str(port),
                             "--database-url", db], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(url + "/inbox/login", proc, timeout=90, interval=0.2)
    return proc, url


async def token_for(client: httpx.AsyncClient, handle: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"handle": handle, "password": PASSWORD})
    r.raise_for_status()
    return r.json()["access_token"]


# -- (a) and (b): the browser ---------------------------------------------------------------------
async def browser_parts(url: str, args) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            out["pages"] = await page_weight(browser, url, args.loads)
            out["fan_to_page"] = await fan_to_page(browser, url, args)
        finally:
            await browser.close()
    return out


async def sign_in(page, url: str, handle: str) -> None:
    await page.goto(url + "/inbox/login")
    await page.fill('input[name="handle"]', handle)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(url + "/inbox")


async def page_weight(browser, url: str, loads: int) -> dict:
    results: dict[str, list[dict]] = {"login": [], "inbox": []}
    for _ in range(loads):
        ctx = await browser.new_context()
        page = await ctx.new_page()
        await page.goto(url + "/inbox/login", wait_until="load")
        results["login"].append(await page.evaluate(PAGE_TIMING))
        await page.fill('input[name="handle"]', "laura")
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button[type="submit"]')
        await page.wait_for_url(url + "/inbox", wait_until="load")
        await page.goto("about:blank")
        # Load the app again, signed in, with a cold HTTP cache (cleared over DevTools).
        cdp = await ctx.new_cdp_session(page)
        await cdp.send("Network.clearBrowserCache")
        await page.goto(url + "/inbox", wait_until="load")
        await page.locator("#live.on").wait_for(timeout=10_000)
        results["inbox"].append(await page.evaluate(PAGE_TIMING))
        await ctx.close()
    out = {}
    for name, rows in results.items():
        out[name] = {
            "loads": len(rows),
            "html_bytes": pct([r["html"] for r in rows], 0.5),
            "js_bytes": pct([r["js"] for r in rows], 0.5),
            "css_bytes": pct([r["css"] for r in rows], 0.5),
            "dcl_ms": summary([r["dcl_ms"] for r in rows]),
            "load_ms": summary([r["load_ms"] for r in rows]),
        }
        out[name]["total_bytes"] = (out[name]["html_bytes"] + out[name]["js_bytes"]
                                    + out[name]["css_bytes"])
    return out


async def fan_to_page(browser, url: str, args) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        ctx = await browser.new_context()
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await sign_in(page, url, "noor")
        await page.select_option("#presence", "online")
        # An attribute selector, not wait_for_function: the inbox's CSP forbids the eval that
        # Playwright's in-page polling needs, so that raced (passed only when already true).
        await page.locator("#presence[data-current='online']").wait_for(state="attached")
        sender = f"bench-fan-{os.getpid()}"
        r = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": SAFETY})
        handoff = next(it["custom"]["handoff"] for it in r.json()
                       if "handoff" in (it.get("custom") or {}))
        assert handoff["status"] == "assigned", handoff
        cid = handoff["conversation_id"]
        item = page.locator(f'#list-mine .conv[data-id="{cid}"]')
        await item.wait_for(timeout=10_000)  # arrived live
        await item.click()
        await page.locator("#pane .transcript .msg-text", has_text=SAFETY).wait_for()
        await page.locator("#live.on").wait_for(timeout=10_000)
        shown: list[float] = []
        posted: list[float] = []
        for i in range(args.warmup + args.messages):
            text = f"still looking for her, update {i} ({os.urandom(3).hex()})"
            r = await page.evaluate(SEND_AND_WAIT, [sender, text])
            if i >= args.warmup:
                shown.append(r["shown_ms"])
                posted.append(r["post_ms"])
            await asyncio.sleep(0.1)
        await ctx.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return {"conversation_id": cid, "shown_ms": summary(shown), "post_ms": summary(posted)}


# -- (c): the event stream with many staff connected ---------------------------------------------
async def sse_part(url: str, args) -> dict:
    limits = httpx.Limits(max_connections=args.clients + 10)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None),
                                 limits=limits) as client:
        tokens = [await token_for(client, HANDLES[i % len(HANDLES)])
                  for i in range(args.clients)]
        actor = await token_for(client, "laura")
        received: list[dict[int, float]] = [{} for _ in range(args.clients)]
        dupes = [0]
        ready = [asyncio.Event() for _ in range(args.clients)]
        waiters: dict[int, asyncio.Event] = {}

        async def listen(i: int) -> None:
            async with client.stream("GET", "/api/v1/events",
                                     headers={"Authorization": f"Bearer {tokens[i]}"}) as r:
                r.raise_for_status()
                kind = None
                event_id = ""
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                        if kind == "hello":
                            ready[i].set()
                    elif line.startswith("id: ") and kind is None:
                        event_id = line[4:]  # "5", or a Redis stream id "ms-seq"
                    elif line == "" and kind == "staff.presence_changed":
                        stamp = time.perf_counter()
                        k = ids.setdefault(event_id, state["event"])
                        if k in received[i]:
                            dupes[0] += 1
                        else:
                            received[i][k] = stamp
                        if k in waiters and all(k in rec for rec in received):
                            waiters[k].set()
                        kind = None
                    elif line == "":
                        kind = None

        state = {"event": -1}
        ids: dict[str, int] = {}  # bus event id -> the k-th toggle
        tasks = [asyncio.create_task(listen(i)) for i in range(args.clients)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
        latencies: list[float] = []
        lost = 0
        headers = {"Authorization": f"Bearer {actor}"}
        for k in range(args.events):
            waiters[k] = asyncio.Event()
            state["event"] = k
            presence = "away" if k % 2 == 0 else "online"
            t0 = time.perf_counter()
            r = await client.put("/api/v1/staff/me/presence", json={"presence": presence},
                                 headers=headers)
            r.raise_for_status()
            try:
                await asyncio.wait_for(waiters[k].wait(), 10)
                latencies.append((max(rec[k] for rec in received) - t0) * 1000)
            except TimeoutError:
                lost += sum(1 for rec in received if k not in rec)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # late duplicates would show here
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delivered = sum(len(rec) for rec in received)
    return {"clients": args.clients, "events": args.events, "all_received_ms":
            summary(latencies), "delivered": delivered,
            "expected": args.clients * args.events, "lost": lost, "duplicates": dupes[0]}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench-inbox.json")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.database_url)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    print("starting the switchboard (loads the triage model) ...", flush=True)
    proc, url = start_server(tmp)
    load_before = uptime()
    try:
        result = asyncio.run(browser_parts(url, args))
        result["sse"] = asyncio.run(sse_part(url, args))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    result["uptime_before"] = load_before
    result["uptime_after"] = uptime()
    result["cpus"] = os.cpu_count()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    a = result["fan_to_page"]
    print(f"| fan message -> shown in the assignee's open page | {a['shown_ms']['n']} msgs | "
          f"p50 {a['shown_ms']['p50']:.1f} ms | p99 {a['shown_ms']['p99']:.1f} ms | "
          f"max {a['shown_ms']['max']:.1f} ms | (webhook answered: p50 "
          f"{a['post_ms']['p50']:.1f} ms) |")
    for name, pg in result["pages"].items():
        print(f"| /inbox{'/login' if name == 'login' else ''} | {pg['total_bytes']} B "
              f"(HTML {pg['html_bytes']}, JS {pg['js_bytes']}, CSS {pg['css_bytes']}) | "
              f"DOMContentLoaded p50 {pg['dcl_ms']['p50']:.1f} / p99 {pg['dcl_ms']['p99']:.1f} ms"
              f" | load p50 {pg['load_ms']['p50']:.1f} / p99 {pg['load_ms']['p99']:.1f} ms |")
    s = result["sse"]
    print(f"| {s['clients']} SSE clients, {s['events']} events | all received p50 "
          f"{s['all_received_ms']['p50']:.1f} ms / p99 {s['all_received_ms']['p99']:.1f} ms | "
          f"delivered {s['delivered']}/{s['expected']}, lost {s['lost']}, "
          f"duplicates {s['duplicates']} |")
    print(f"{result['cpus']} CPUs; before: {result['uptime_before']}")
    print(f"after: {result['uptime_after']}")
    return 0 if s["lost"] == 0 and s["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
