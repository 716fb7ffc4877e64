#!/usr/bin/env python3
"""End-to-end latency as `vigie verify` reports it, against a running `vigie demo`.

For each load (the demo's --rate), starts a release `vigie demo` on free loopback ports in a
fresh data dir, lets it warm up, runs `vigie verify --cleanup` N times one after another and
collects the figures verify prints: interaction -> each event in the XDR, -> each alert, ->
the SOC notification delivered, and the whole run's wall time. Prints medians and maxima.

    python3 scripts/e2e_verify.py --bin target/release/vigie --runs 15 --rates 0.2,5,100
"""
import argparse, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run_load(binary, rate, runs, warmup):
    d = tempfile.mkdtemp(prefix="vigie-e2e-")
    fw, xdr = free_port(), free_port()
    env = dict(os.environ, VIGIE_ADMIN_PASSWORD="e2e measurement password")
    demo = subprocess.Popen([binary, "demo", "--rate", str(rate), "--firewall-addr", f"127.0.0.1:{fw}",
                             "--xdr-addr", f"127.0.0.1:{xdr}", "--data-dir", f"{d}/data"],
                            stdout=subprocess.PIPE, stderr=open(f"{d}/demo.err", "w"), text=True, env=env)
    key = None
    deadline = time.time() + 120
    while key is None and time.time() < deadline:
        line = demo.stdout.readline()
        if line.startswith("XDR key:"):
            key = line.split()[2]
    if key is None:
        demo.kill(); sys.exit("the demo printed no key")
    # Drain the demo's output so it never blocks.
    import threading
    threading.Thread(target=lambda: [None for _ in demo.stdout], daemon=True).start()
    time.sleep(warmup)
    figures = {"events": [], "alerts": [], "notification": [], "wall": []}
    failed = 0
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([binary, "verify", "--firewall-url", f"http://127.0.0.1:{fw}", "--xdr-url",
                              f"http://127.0.0.1:{xdr}", "--cleanup"], capture_output=True, text=True,
                             env=dict(env, VIGIE_XDR_KEY=key))
        wall = (time.time() - t0) * 1000
        if out.returncode != 0:
            failed += 1
            print(out.stdout, file=sys.stderr)
            continue
        text = out.stdout
        ev = [int(m) for m in re.findall(r"(?:interaction\.[a-z_]+|alert\.severity_\w+) after (\d+) ms", text)]
        al = [int(m) for m in re.findall(r"\((?:critical|high|medium|low), after (\d+) ms\)", text)]
        no = [int(m) for m in re.findall(r"\((?:email|slack|teams|webhook), (\d+) ms after the alert\)", text)]
        figures["events"].append(max(ev)); figures["alerts"].append(max(al))
        figures["notification"].append(max(al) + no[0] if no else None)
        figures["wall"].append(wall)
    demo.send_signal(signal.SIGINT)
    try:
        demo.wait(timeout=30)
    except subprocess.TimeoutExpired:
        demo.kill()
    return figures, failed

def first_minute(binary, rounds):
    """Fresh demo (default rate) -> seconds from its welcome text to: the correlation alert on
    the offender, the default playbook's case with its review task, the manager's e-mail."""
    import json, urllib.request
    rows = []
    for _ in range(rounds):
        d = tempfile.mkdtemp(prefix="vigie-first-")
        fw, xdr = free_port(), free_port()
        demo = subprocess.Popen([binary, "demo", "--firewall-addr", f"127.0.0.1:{fw}", "--xdr-addr", f"127.0.0.1:{xdr}",
                                 "--data-dir", f"{d}/data"], stdout=subprocess.PIPE, stderr=open(f"{d}/demo.err", "w"),
                                text=True, env=dict(os.environ, VIGIE_ADMIN_PASSWORD="e2e measurement password"))
        key = None
        while True:
            line = demo.stdout.readline()
            if line.startswith("XDR key:"):
                key = line.split()[2]
            if line.startswith("Sending "):
                break
        t0 = time.time()
        import threading
        threading.Thread(target=lambda: [None for _ in demo.stdout], daemon=True).start()
        def get(path):
            r = urllib.request.Request(f"http://127.0.0.1:{xdr}{path}", headers={"authorization": f"Bearer {key}"})
            return json.load(urllib.request.urlopen(r, timeout=10))
        seen = {}
        while len(seen) < 3 and time.time() - t0 < 120:
            if "correlation" not in seen and any(a["rule"]["name"] == "Repeated high-risk interactions" for a in get("/api/v1/alerts?limit=500")["items"]):
                seen["correlation"] = time.time() - t0
            if "case" not in seen:
                for c in get("/api/v1/cases?tag=ai-platform&limit=100")["items"]:
                    if any(t["title"].startswith("Security review with") for t in get(f"/api/v1/cases/{c['id']}")["tasks"]):
                        seen["case"] = time.time() - t0
                        break
            if "email" not in seen and any(n["status"] == "succeeded" and n.get("source") != "test" and "sent classified data" in (n.get("subject") or "")
                                           for n in get("/api/v1/notifications?limit=500")["items"]):
                seen["email"] = time.time() - t0
            time.sleep(0.1)
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
        rows.append(seen)
        print(f"  round: {', '.join(f'{k} {v:.1f} s' for k, v in seen.items())}", flush=True)
    for k in ("correlation", "case", "email"):
        v = [r[k] for r in rows if k in r]
        print(f"{k:>12}: median {statistics.median(v):.1f} s, max {max(v):.1f} s ({len(v)}/{len(rows)} rounds)" if v else f"{k}: never")

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--bin", default="target/release/vigie")
    a.add_argument("--runs", type=int, default=15)
    a.add_argument("--rates", default="0.2,5,100")
    a.add_argument("--warmup", type=float, default=15)
    a.add_argument("--first-minute", type=int, default=0, help="instead: this many fresh demos, time to the story's parts")
    o = a.parse_args()
    if o.first_minute:
        return first_minute(o.bin, o.first_minute)
    print(f"{'rate/s':>7} {'runs':>5} {'fail':>5} | {'to last event':>14} {'to last alert':>14} {'to SOC e-mail':>14} {'verify wall':>12}  (median / max, ms)")
    for rate in o.rates.split(","):
        f, failed = run_load(o.bin, float(rate), o.runs, o.warmup)
        def cell(k):
            v = [x for x in f[k] if x is not None]
            return f"{statistics.median(v):>6.0f} / {max(v):>5.0f}" if v else "-"
        print(f"{rate:>7} {len(f['wall']):>5} {failed:>5} | {cell('events'):>14} {cell('alerts'):>14} {cell('notification'):>14} {cell('wall'):>12}", flush=True)

main()
