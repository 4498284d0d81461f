"""A clinic day, end to end, through the running services' public interfaces.

    bin/clinic-day-demo            (or: python -m demo.clinic_day)

It starts the clinic (demo/clinic.py: ``clinic run all`` on fresh SQLite
files with a mail catcher and an SMS-provider stand-in), plays a day only
through the gateway's HTTP API (demo/story.py) and prints what each service
did and how long the chains took (demo/report.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from common.config import PROJECT_ROOT
from demo.clinic import running_clinic
from demo.report import build_report, render
from demo.story import PATIENTS, TREATED_TODAY, ClinicDay, Progress


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="clinic-day-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="where the SQLite files, logs and caught messages go "
                                           "(default: a new folder under var/)")
    parser.add_argument("--report-json", help="also write the report as JSON here")
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args(argv)

    from common.service import broker_reachable

    if not broker_reachable(args.amqp_uri, timeout=3):
        print("RabbitMQ is not reachable; start it (Debian: `rabbitmq-server -detached`) or set AMQP_URI.",
              file=sys.stderr)
        return 3
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="demo-", dir=PROJECT_ROOT / "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Starting the clinic (data, logs and caught messages in {data_dir}) …", file=sys.stderr, flush=True)
    with running_clinic(data_dir, args.amqp_uri) as clinic:
        progress = Progress(total=1 + len(PATIENTS) + 10 + TREATED_TODAY + 10 + 1)
        day = ClinicDay(clinic, progress)
        try:
            day.run()
        finally:
            progress.finish()
        report = build_report(day)
    print(render(report))
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
