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


def rows(out):
    """The rows of OUT/log.csv."""
    with open(os.path.join(out, "log.csv")) as f:
        return list(csv.DictReader(f))


def assert_one_line_error(p, message):
    """A non-zero exit whose last stderr line is `error: ...message...`, with no traceback."""
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in p.stderr


def assert_ddp_smoke(script, out, port):
    """Two CPU processes (torchrun, gloo) through the smoke preset with OutKD + feature KD (hooks under DDP): four
    logged steps with a KD loss, and a saved student."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    p = run_script(script, "--kd", "outkd+featkd", "--device", "cpu", "--threads", "1", "--fid-samples", "0",
                   "--out", out, launcher=launcher)
    assert p.returncode == 0, p.stderr[-2000:]
    assert [int(r["step"]) for r in rows(out)] == [1, 2, 3, 4] and float(rows(out)[-1]["kd"]) > 0
    assert os.path.exists(os.path.join(out, "student", "config.json"))
