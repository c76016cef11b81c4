#!/usr/bin/env python3
"""What counting costs, in time, pass by pass.

Starts the same workload in two `tally` builds at once, the default (counters on, every
kernel call recorded) and `--features uncounted` (counters compiled out), each as
`tally bench ... --lockstep`: both load and warm up, then run one forward pass whenever
this driver sends a line. The driver alternates them pass by pass (counted first in even
pairs, uncounted first in odd ones), so drift in the machine hits both alike and every
pair is two warm passes a few milliseconds apart.

Two processes differ by more than their code: where their weights landed in physical
memory (pages, huge pages, cache sets) is fixed for a process's life, and the same binary
against itself reads 0.7% apart on a memory-bound SmolLM2 decode step with a tight
interval. So a workload runs in ROUNDS rounds, each with two fresh processes for
SECONDS; a round's ratio is the median of its per-pair ratios (counted / uncounted), the
workload's ratio the median of its rounds, and its 95% interval a bootstrap over rounds
(2000 resamples, fixed seed), which carries the process-to-process spread. Prints per
workload that ratio, the interval, the rounds' range, pairs, and each build's median pass.

Usage: counting_lockstep.py [--rounds N] COUNTED_TALLY UNCOUNTED_TALLY
                            [SECONDS_PER_ROUND [NAME...]]
(N: rounds per workload, default 1; NAME: run only the workloads whose name contains one
of these.) Standard library only. Pointed at two builds of anything (new and old), the
ratio column reads new / old.
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
    ("minilm 1x512", "minilm --seq 512", "all-minilm-l6-v2"),
    ("smollm2 prefill 1x128", "smollm2 --seq 128", "smollm2"),
    ("smollm2 decode after 128", "smollm2 --past 128 --seq 1", "smollm2"),
    ("minilm 1x128 bf16", "minilm --seq 128 --dtype bf16", "all-minilm-l6-v2"),
    ("minilm 8x128 bf16", "minilm --batch 8 --seq 128 --dtype bf16", "all-minilm-l6-v2"),
    ("minilm 1x512 bf16", "minilm --seq 512 --dtype bf16", "all-minilm-l6-v2"),
    ("smollm2 prefill 1x128 bf16", "smollm2 --seq 128 --dtype bf16", "smollm2"),
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


def one_round(on_exe, off_exe, args, budget):
    """Two fresh processes alternated pass by pass for `budget` seconds (at least
    MIN_PAIRS pairs): each build's passes, in pair order."""
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
    return ons, offs


def bootstrap(values, resamples=2000):
    """A 95% interval of the median of `values` (resampled with a fixed seed)."""
    rng = random.Random(1)
    boot = sorted(st.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return boot[int(0.025 * resamples)], boot[int(0.975 * resamples) - 1]


def main():
    argv = sys.argv[1:]
    rounds = 1
    if argv[:1] == ["--rounds"]:
        if len(argv) < 2 or not argv[1].isdigit() or int(argv[1]) < 1:
            sys.exit("--rounds takes a whole number of at least 1\n" + __doc__)
        rounds, argv = int(argv[1]), argv[2:]
    if len(argv) < 2:
        sys.exit(__doc__)
    on_exe, off_exe = argv[0], argv[1]
    budget = float(argv[2]) if len(argv) > 2 else 20.0
    only = argv[3:]
    cache = os.environ.get("TALLY_CACHE", os.path.expanduser("~/.cache/tally"))
    print(f"{rounds} round(s) of fresh processes per workload, {budget:g} s each")
    print("| workload | counted / uncounted | 95% interval | rounds [range] | pairs | counted | uncounted |")
    print("|---|---|---|---|---|---|---|")
    for name, args, need in WORKLOADS:
        if only and not any(o in name for o in only):
            continue
        if need and not os.path.isdir(os.path.join(cache, need)):
            print(f"skipping {name}: {cache}/{need} not found; run models/fetch all")
            continue
        per_round, ons, offs = [], [], []
        for _ in range(rounds):
            a, b = one_round(on_exe, off_exe, args, budget)
            per_round.append(st.median(x / y for x, y in zip(a, b)))
            ons += a
            offs += b
        if rounds > 1:
            ratio, values = st.median(per_round), per_round
            spread = f"{rounds} [{min(per_round):.4f}–{max(per_round):.4f}]"
        else:
            # One round: the interval can only come from its pairs (process spread unseen).
            values = [x / y for x, y in zip(ons, offs)]
            ratio, spread = st.median(values), "1"
        lo, hi = bootstrap(values)
        print(
            f"| {name} | {ratio:.4f} | {lo:.4f}–{hi:.4f} | {spread} | {len(ons)} | "
            f"{fmt(st.median(ons))} | {fmt(st.median(offs))} |",
            flush=True,
        )
    print("ratio: median over rounds of each round's median counted / uncounted per pass; 1.01 = 1% overhead")


if __name__ == "__main__":
    main()
