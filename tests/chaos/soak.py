"""The long chaos run (not in CI): ``python -m tests.chaos.soak --rounds 500 [--seed N]``.

Runs the rounds of :mod:`tests.chaos.rounds` in a temporary local home, stops at the first failed
check (exit 1, with the seed and round to replay), and prints what the jobs saw. At the end every
pod and gateway must be gone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from airflow_ais_etl.service import AisEtl
from tests.chaos.rounds import ETL, Chaos
from tests.local.conftest import processes_under


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ais-etl-soak-") as tmp:
        home = Path(tmp) / "home"
        api = AisEtl.local(str(home))
        chaos = Chaos(api, Path(tmp), args.seed)
        index = 0
        try:
            for index in range(args.rounds):
                chaos.round(index)
                if index % 25 == 24:
                    print(f"[{time.monotonic() - started:.0f}s] {chaos.tally.line()}", flush=True)
        except AssertionError as err:
            print(f"FAILED in round {index} (seed {args.seed}): {err}", file=sys.stderr)
            return 1
        finally:
            api.delete(ETL, force=True)
            api.backend.shutdown()  # type: ignore[attr-defined]
        left = processes_under(home)
    print(f"seed {args.seed}: {chaos.tally.line()} in {time.monotonic() - started:.0f}s")
    if left:
        print(f"FAILED: processes left running: {[p.cmdline() for p in left]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
