"""What the script tests share: run a training script through its smoke preset, read its log, check an error line."""
import csv
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(script, *args, env=None, launcher=()):
    """Run REPO/script with --preset smoke and args, offline; return the CompletedProcess."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    return subprocess.run([*(launcher or [sys.executable]), os.path.join(REPO, script), "--preset", "smoke", *args],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


def torchrun(port, processes=2):
    """A launcher for run_script: torch.distributed.run with `processes` CPU processes (gloo) on a free-ish port."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(port)]


def rows(out):
    """The rows of OUT/log.csv."""
    with open(os.path.join(out, "log.csv")) as f:
        return list(csv.DictReader(f))


def assert_one_line_error(p, message):
    """A non-zero exit whose last stderr line is `error: ...message...`, with no traceback."""
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in p.stderr
