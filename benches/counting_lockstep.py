#!/usr/bin/env python3
"""What counting costs, in time, pass by pass.

Starts the same workload in two `tally` builds at once, the default (counters on, every
kernel call recorded) and `--features uncounted` (counters compiled out), each as
`tally bench ... --lockstep`: both load and warm up, then run one forward pass whenever
this driver sends a line. The driver alternates them pass by pass (counted first in even
pairs, uncounted first in odd ones), so drift in the machine hits both alike and every
pair is two warm passes a few milliseconds apart. Prints per workload the median of the
per-pair ratios (counted / uncounted), a 95% bootstrap interval of that median (2000
resamples, fixed seed), the number of pairs and each build's median pass.

Usage: counting_lockstep.py COUNTED_TALLY UNCOUNTED_TALLY [SECONDS_PER_WORKLOAD [NAME...]]
(NAME: run only the workloads whose name contains one of these.) Standard library only.
"""

import os
import random
import statistics as st
import subprocess
import sys
import time

# name, tally arguments, folder in the cache it needs ("" = ships in models/)
WORKLOADS = [
    ("digits-mlp batch 360", "digits-mlp", ""),
    ("digits-mlp batch 1", "digits-mlp --batch 1", ""),
    ("minilm 1x128", "minilm --seq 128", "all-minilm-l6-v2"),
    ("minilm 8x128", "minilm --batch 8 --seq 128", "all-minilm-l6-v2"),
    ("smollm2 prefill 1x128", "smollm2 --seq 128", "smollm2"),
    ("smollm2 decode after 128", "smollm2 --past 128 --seq 1", "smollm2"),
    ("minilm 1x128 bf16", "minilm --seq 128 --dtype bf16", "all-minilm-l6-v2"),
    ("minilm 8x128 bf16", "minilm --batch 8 --seq 128 --dtype bf16", "all-minilm-l6-v2"),
    ("minilm 1x512 bf16", "minilm --seq 512 --dtype bf16", "all-minilm-l6-v2"),
    ("smollm2 decode after 128 bf16", "smollm2 --past 128 --seq 1 --dtype bf16", "smollm2"),
    ("mobilenet 1x224", "mobilenet", "mobilenet-v2"),
]
MIN_PAIRS = 20
MAX_PAIRS = 100_000


class Arm:
    """One `tally bench --lockstep` process."""

    def __init__(self, exe, args):
        cmd = [exe, "bench", *args.split(), "--repeat", str(MAX_PAIRS), "--lockstep"]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def one_pass(self):
        """Runs one pass; its wall-clock seconds as the process measured them."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("pass_s="):
                return float(line.split("=", 1)[1])
        raise RuntimeError(f"{self.proc.args} ended: exit {self.proc.wait()}")

    def close(self):
        self.proc.stdin.close()
        self.proc.stdout.read()
        if self.proc.wait() != 0:
            raise RuntimeError(f"{self.proc.args} failed: exit {self.proc.returncode}")


def fmt(seconds):
    return f"{seconds * 1e3:.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    on_exe, off_exe = sys.argv[1], sys.argv[2]
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    only = sys.argv[4:]
    cache = os.environ.get("TALLY_CACHE", os.path.expanduser("~/.cache/tally"))
    print(f"| workload | counted / uncounted | 95% interval | pairs | counted | uncounted |")
    print(f"|---|---|---|---|---|---|")
    for name, args, need in WORKLOADS:
        if only and not any(o in name for o in only):
            continue
        if need and not os.path.isdir(os.path.join(cache, need)):
            print(f"skipping {name}: {cache}/{need} not found; run models/fetch all")
            continue
        on, off = Arm(on_exe, args), Arm(off_exe, args)
        ons, offs = [], []
        deadline = None
        while len(ons) < MAX_PAIRS:
            if len(ons) % 2 == 0:
                ons.append(on.one_pass())
                offs.append(off.one_pass())
            else:
                offs.append(off.one_pass())
                ons.append(on.one_pass())
            if deadline is None:
                # Both processes are loaded and warm once the first pair is back.
                deadline = time.monotonic() + budget
            elif len(ons) >= MIN_PAIRS and time.monotonic() > deadline:
                break
        on.close()
        off.close()
        ratios = [a / b for a, b in zip(ons, offs)]
        rng = random.Random(1)
        boot = sorted(st.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
        print(
            f"| {name} | {st.median(ratios):.4f} | {boot[50]:.4f}–{boot[1949]:.4f} | "
            f"{len(ratios)} | {fmt(st.median(ons))} | {fmt(st.median(offs))} |",
            flush=True,
        )
    print("ratio: median over pairs of counted / uncounted wall-clock per pass; 1.01 = 1% overhead")


if __name__ == "__main__":
    main()
