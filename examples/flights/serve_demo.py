"""Serve the flights model over HTTP and ask it about a few real flights.

Run after ``examples/flights/demo.py`` (which builds the store and registers the model)::

    .venv/bin/python examples/flights/serve_demo.py --root .fti-demo

Starts ``fti serve --model flight_delays@production`` on a loopback port, sends one prediction
per flight, prints each with its latency, stops the server with SIGTERM (it finishes requests
in flight and flushes the prediction log), reads the logged predictions back, and runs a skew
monitor over them (every logged feature vector recomputed offline as known at its request time),
adding its result to the HTML report ``demo.py`` wrote.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

import fti

sys.path.insert(0, str(Path(__file__).parent))

from monitoring import skew_monitor
from report import add_section, skew_section

MODEL = "flight_delays"
console = Console()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".fti-demo", help="store folder built by demo.py")
    parser.add_argument("-n", type=int, default=5, help="flights to ask about")
    parser.add_argument(
        "--more", type=int, default=200, help="flights also asked about, 10 a request"
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    root = Path(args.root)

    fs = fti.connect(root)
    mv = fs.models.get(MODEL, alias="production")
    flights_fg = fs.get_feature_group("flights", version=1)
    latest = flights_fg.read().tail(2000)
    recent = latest.sample(args.n, random_state=7)
    more = [int(f) for f in latest.sample(min(args.more, len(latest)), random_state=8)["flight_id"]]
    fv_ref = mv.spec.feature_view
    fs.close()

    port = args.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    console.rule(f"[bold]fti serve --model {MODEL}@production[/] on {url}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fti",
            "serve",
            "--model",
            f"{MODEL}@production",
            "--root",
            str(root),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start; see its output above")
            time.sleep(0.2)
        table = Table(title=f"Predictions of {mv.name} v{mv.version} over HTTP")
        for col in (
            "flight",
            "carrier",
            "route",
            "scheduled",
            "P(delayed)",
            "delayed?",
            "actual",
            "latency",
        ):
            table.add_column(col)
        with httpx.Client(base_url=url, timeout=10) as client:
            client.post(
                f"/v1/models/{MODEL}/predict",  # warm-up (first request)
                json={"entities": [{"flight_id": int(recent.iloc[0]["flight_id"])}]},
            )
            for row in recent.itertuples(index=False):
                body = {"entities": [{"flight_id": int(row.flight_id)}]}
                started = time.perf_counter()
                r = client.post(f"/v1/models/{MODEL}/predict", json=body)
                elapsed = time.perf_counter() - started
                r.raise_for_status()
                out = r.json()
                proba = (out.get("probabilities") or [None])[0]
                table.add_row(
                    str(row.flight_id),
                    row.carrier,
                    f"{row.origin}->{row.dest}",
                    f"{row.sched_dep:%Y-%m-%d %H:%M}",
                    "-" if proba is None else f"{proba:.2f}",
                    str(out["predictions"][0]),
                    str(row.delayed),
                    f"{elapsed * 1000:.1f} ms",
                )
            for i in range(0, len(more), 10):  # more traffic for the skew check
                entities = [{"flight_id": f} for f in more[i : i + 10]]
                client.post(
                    f"/v1/models/{MODEL}/predict", json={"entities": entities}
                ).raise_for_status()
        console.print(table)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    console.print(f"Server stopped cleanly (exit code {rc}) after flushing its prediction log.")
    if fv_ref is not None:
        fs = fti.connect(root)
        log = fs.get_feature_view(fv_ref.name, version=fv_ref.version).read_log(model=MODEL)
        console.print(
            f"Prediction log {fv_ref.name}_log v{fv_ref.version}: {len(log)} rows; "
            "read it with fv.read_log(start, end, model=...)."
        )
        run = skew_monitor(fs)
        summary = run["skew"]
        console.print(
            f"Skew monitor {run['monitor']} (fti monitor run {run['monitor']}): "
            f"{summary['checked']} logged request row(s) recomputed offline as known at their "
            f"time: {'ALERT ' + ', '.join(run['drifted']) if run['alert'] else 'no skew'} "
            f"({summary['findings_total']} finding(s))."
        )
        report = root / "report.html"
        if report.exists():
            add_section(report, skew_section(run))
            console.print(f"Skew section added to the HTML report: {report.resolve()}")
        fs.close()
    console.print(
        f"Browse the demo store in a web browser: fti ui --root {root} (then open http://127.0.0.1:8080/)"
    )


if __name__ == "__main__":
    main()
