#!/usr/bin/python3
"""Executes notebooks in real Jupyter and checks them in headless Chromium, offline.

For each notebook (default: every notebooks/*.ipynb, sorted):
  1. `/usr/bin/jupyter nbconvert --to notebook --execute` with the .NET Interactive kernel (.net-csharp) into
     OUT/executed/NAME.ipynb. The source notebook is never written; nbconvert starts the kernel in the notebook's own
     folder, so a notebook's relative paths (`#i "nuget: ../artifacts/packages"`) resolve as they do in Jupyter.
  2. `nbconvert --to html` into OUT/html/NAME.html, with a small error collector injected as the first script of <head>:
     it records uncaught script errors and unhandled promise rejections (and, apart from those, resources that failed
     to load) into attributes of <html>, so they survive into the DOM dump.
  3. Headless Chromium with no network (proxy to a closed port, loopback included, every host name unresolvable) loads
     the page, runs its scripts under a virtual-time budget and dumps the DOM (OUT/dom/NAME.html); a second run saves a
     full-page screenshot (OUT/screenshots/NAME.png) at the page height the first run measured.

Writes OUT/results.json (one entry per notebook: exit codes, paths, timings) and OUT/timings.json, and prints a summary.
Cold start = seconds from launching nbconvert (kernel not yet started) to the reply of the first cell whose output
holds a chart (plotly or an image). Exit status: 0 when every step ran (the checks of the contents are the tests' job),
1 when some notebook failed to execute or render, 2 on bad usage or a missing tool.

Usage: /usr/bin/python3 scripts/run_notebooks.py [--out DIR] [--timeout SECONDS] [NOTEBOOK.ipynb ...]
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JUPYTER = "/usr/bin/jupyter"
KERNEL = ".net-csharp"
WIDTH = 1280
MAX_HEIGHT = 16000  # beyond this Chromium's compositor tiles get unreliable; long pages are cut there

# First script of <head>: anything that goes wrong later is recorded on <html> where --dump-dom can see it.
COLLECTOR = """<script>/* steplab: error collector injected by scripts/run_notebooks.py */
(function () {
  var root = document.documentElement, errors = [], failed = [];
  function put() {
    root.setAttribute('data-steplab-script-errors', JSON.stringify(errors));
    root.setAttribute('data-steplab-failed-resources', JSON.stringify(failed));
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && t.nodeType === 1) failed.push(t.tagName.toLowerCase() + ' ' + (t.src || t.href || ''));
    else errors.push((e.message || String(e.error)) + (e.filename ? ' at ' + e.filename + ':' + e.lineno + ':' + e.colno : ''));
    put();
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    errors.push('unhandled rejection: ' + (r && (r.stack || r.message) || String(r)));
    put();
  });
  function measure() { root.setAttribute('data-steplab-height', String(Math.ceil(root.scrollHeight))); }
  new ResizeObserver(measure).observe(root);
  window.addEventListener('load', measure);
  put();
})();
</script>
"""

CHART = re.compile(r"Plotly\.(newPlot|react)\(|class=\\?\"plotly-figure|<svg|<img[^>]+src=\\?\"data:image/", re.I)


def log(msg):
    print(msg, flush=True)


def run(cmd, log_path, timeout, cwd=None, env=None):
    """Runs cmd with stdout+stderr into log_path; returns (exit code, seconds). A timeout counts as exit code 124."""
    t0 = time.monotonic()
    with open(log_path, "wb") as out:
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n[run_notebooks] killed after {timeout} s\n".encode())
            code = 124
    return code, time.monotonic() - t0


def parse_time(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def cell_timings(executed_path, started):
    """From nbclient's per-cell timing metadata: kernel-ready and first-chart times, seconds after `started`."""
    with open(executed_path, encoding="utf-8") as f:
        nb = json.load(f)
    first_busy = first_chart = None
    code_cells = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_cells += 1
        ex = cell.get("metadata", {}).get("execution", {})
        if first_busy is None and "iopub.status.busy" in ex:
            first_busy = parse_time(ex["iopub.status.busy"]) - started
        if first_chart is None and "shell.execute_reply" in ex:
            for o in cell.get("outputs", []):
                data = o.get("data", {})
                html = data.get("text/html", "")
                html = "".join(html) if isinstance(html, list) else html
                if "image/png" in data or "image/svg+xml" in data or CHART.search(html):
                    first_chart = parse_time(ex["shell.execute_reply"]) - started
                    break
    return {"code_cells": code_cells, "kernel_ready_s": first_busy, "first_chart_s": first_chart}


def inject_collector(html_path):
    with open(html_path, encoding="utf-8") as f:
        html = f.read()
    m = re.search(r"<head[^>]*>", html, re.I)
    if m is None:
        raise ValueError(f"{html_path}: no <head> element to put the error collector in")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(html[: m.end()] + "\n" + COLLECTOR + html[m.end():])


def chromium_cmd(chromium, profile, url, budget_ms, action, height):
    return [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
        "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
        "--mute-audio", "--hide-scrollbars", "--allow-file-access-from-files", f"--user-data-dir={profile}",
        # offline: every request goes to a proxy on a closed port (loopback too, so a live kernel's HTTP port on this
        # machine is not reached either) and no host name resolves
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--window-size={WIDTH},{height}", f"--virtual-time-budget={budget_ms}", action, url,
    ]


def render(chromium, html_path, dom_path, png_path, log_dir, name, budget_ms):
    """DOM after scripts, then a full-page screenshot at the measured height. Returns a dict of results."""
    url = "file://" + os.path.abspath(html_path)
    res = {}
    with tempfile.TemporaryDirectory(prefix="steplab-chromium-") as profile:
        # --dump-dom writes the DOM to stdout; Chromium's own chatter goes to stderr
        t0 = time.monotonic()
        with open(dom_path, "wb") as out, open(os.path.join(log_dir, name + ".chromium-dom.log"), "wb") as err:
            try:
                code = subprocess.run(chromium_cmd(chromium, profile, url, budget_ms, "--dump-dom", 900),
                                      stdout=out, stderr=err, timeout=180).returncode
            except subprocess.TimeoutExpired:
                code = 124
        res["dom_exit"] = code
        res["dom_s"] = round(time.monotonic() - t0, 2)
        with open(dom_path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 20)
        m = re.search(r'data-steplab-height="(\d+)"', head)
        height = min(max(int(m.group(1)) if m else 0, 600), MAX_HEIGHT)
        res["page_height"] = int(m.group(1)) if m else None
    with tempfile.TemporaryDirectory(prefix="steplab-chromium-") as profile:
        if os.path.exists(png_path):
            os.remove(png_path)
        code, secs = run(chromium_cmd(chromium, profile, url, budget_ms, f"--screenshot={os.path.abspath(png_path)}", height),
                         os.path.join(log_dir, name + ".chromium-screenshot.log"), 180)
        res["screenshot_exit"] = code
        res["screenshot_s"] = round(secs, 2)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    ap.add_argument("--out", default=os.path.join(REPO, "artifacts", "notebooks"), help="output folder")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per cell (nbconvert's ExecutePreprocessor.timeout)")
    ap.add_argument("--budget-ms", type=int, default=10000, help="Chromium's virtual-time budget for the page's scripts")
    args = ap.parse_args()

    notebooks = args.notebooks or sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
    if not notebooks:
        log("no notebooks to run")
        return 2
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    for tool in (JUPYTER, chromium):
        if not os.path.exists(tool):
            log(f"{tool} is missing: scripts/setup.sh's setup_jupyter and setup_chromium install it")
            return 2

    env = dict(os.environ)
    tools = os.path.join(os.path.expanduser("~"), ".dotnet", "tools")
    # the kernelspec's argv starts with `dotnet interactive`, which needs the global tool on PATH
    env["PATH"] = tools + os.pathsep + env.get("PATH", "")
    env.setdefault("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
    env.setdefault("DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT", "1")
    env.setdefault("DOTNET_NOLOGO", "1")

    out = os.path.abspath(args.out)
    dirs = {k: os.path.join(out, k) for k in ("executed", "html", "dom", "screenshots", "logs")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)

    results, failed = {}, 0
    for nb_path in notebooks:
        nb_path = os.path.abspath(nb_path)
        name = os.path.splitext(os.path.basename(nb_path))[0]
        executed = os.path.join(dirs["executed"], name + ".ipynb")
        html = os.path.join(dirs["html"], name + ".html")
        dom = os.path.join(dirs["dom"], name + ".html")
        png = os.path.join(dirs["screenshots"], name + ".png")
        for stale in (executed, html, dom, png):
            if os.path.exists(stale):
                os.remove(stale)
        r = {"notebook": nb_path, "executed": executed, "html": html, "dom": dom, "screenshot": png}
        log(f"== {name}: executing in Jupyter (kernel {KERNEL})")
        started = time.time()
        # --allow-errors: a failing cell still yields the executed notebook, its HTML and a screenshot of the failure;
        # the tests fail on any error output. Timeouts and a dead kernel still end nbconvert with a non-zero status.
        code, secs = run([JUPYTER, "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                          f"--ExecutePreprocessor.kernel_name={KERNEL}", f"--ExecutePreprocessor.timeout={args.timeout}",
                          "--ExecutePreprocessor.startup_timeout=120",
                          "--output-dir", dirs["executed"], "--output", name + ".ipynb", nb_path],
                         os.path.join(dirs["logs"], name + ".execute.log"), timeout=max(900, args.timeout * 3), env=env)
        r["execute_exit"] = code
        r["execute_s"] = round(secs, 2)
        if code != 0 or not os.path.exists(executed):
            log(f"   nbconvert --execute failed (exit {code}); see {dirs['logs']}/{name}.execute.log")
            failed += 1
            results[name] = r
            continue
        r.update(cell_timings(executed, started))
        code, secs = run([JUPYTER, "nbconvert", "--to", "html", "--output-dir", dirs["html"], "--output", name + ".html", executed],
                         os.path.join(dirs["logs"], name + ".html.log"), timeout=300)
        r["html_exit"] = code
        if code != 0 or not os.path.exists(html):
            log(f"   nbconvert --to html failed (exit {code})")
            failed += 1
            results[name] = r
            continue
        inject_collector(html)
        r.update(render(chromium, html, dom, png, dirs["logs"], name, args.budget_ms))
        if r["dom_exit"] != 0 or r["screenshot_exit"] != 0 or not os.path.exists(png):
            failed += 1
        results[name] = r
        fc = r["first_chart_s"]
        log(f"   executed in {r['execute_s']} s ({r['code_cells']} code cells; kernel ready at {r['kernel_ready_s']:.1f} s"
            + (f", first chart at {fc:.1f} s" if fc is not None else ", no chart") + f"); "
            f"DOM {r['dom_s']} s, screenshot {r['screenshot_s']} s, page height {r['page_height']} px")

    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    timings = {name: {k: r.get(k) for k in ("execute_s", "kernel_ready_s", "first_chart_s", "code_cells")}
               for name, r in results.items()}
    quick = next((n for n in results if n.startswith("00-quickstart")), None)
    if quick is not None:
        timings["cold_start_to_first_chart_s"] = {"notebook": quick, "seconds": results[quick].get("first_chart_s"),
                                                  "target_s": 15}
    with open(os.path.join(out, "timings.json"), "w", encoding="utf-8") as f:
        json.dump(timings, f, indent=2)
    if quick is not None:
        s = results[quick].get("first_chart_s")
        log(f"cold start of {quick} to its first chart: " + (f"{s:.1f} s (target <= 15 s)" if s is not None else "no chart"))
    log(f"{len(results) - failed} of {len(results)} notebooks executed and rendered; artifacts in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
