"""What every training script shares: flags, the KD objective switch, devices and DDP, presets, the setup phases of
main(), the loop's bookkeeping (run log, grids, atomic checkpoints, Ctrl-C), EMA."""
import contextlib
import copy
import csv
import glob
import json
import math
import os
import random
import shlex
import shutil
import signal
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from data import cache_latents, to_model_range
from lift import lift_loss, outkd_loss
from metrics import FIDUnavailable
from models import (Distillee, FeatureHooks, count_params, depth_teacher_student, encode_latents, feature_kd_loss,
                    percent)
from place import place_loss


KD_METHODS = ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"]
FEATURE_KD = ("featkd", "outkd+featkd")   # the methods that match features
LOG_COLUMNS = ["step", "loss", "diffusion", "kd", "coarse", "fine", "w", "slope", "intercept", "grad_norm_max", "lr",
               "steps_per_s"]


# ---------------------------------------------------------------- flags every script has
def add_training_args(parser, teacher_help, presets=("paper", "tiny", "smoke")):
    """The flags the three scripts share; each script adds its own student, sampler and data flags."""
    add = parser.add_argument
    add("--preset", choices=list(presets), default="paper", help="fills every flag not given")
    add("--out", help="run dir: log.csv, samples, checkpoints, student/, metrics.json")
    add("--resume", action="store_true", help="continue from OUT's last checkpoint (fresh if none)")
    add("--teacher", help=teacher_help)
    add("--data-dir", help="training images (see the script's docstring); default: the embedded shapes dataset")
    add("--n-embedded", type=int, help="images of the embedded dataset")
    add("--kd", choices=KD_METHODS, default="place", help="place = LIFT with PLACE grouping (paper's Ours)")
    add("--group-size", type=int, default=16, help="PLACE's K (16 in every table of the paper)")
    add("--kd-weight", type=float, help="lambda (Sec. 4.1: 1)")
    add("--loss-scale", choices=["sum", "mean"],
        help="sum per sample then batch mean (the released DDPM code), or per-element mean (their DiT and SD code)")
    add("--coarse", choices=["l1", "l2"], help="LIFT's coarse term: |b0| + |b1 - 1| (the authors' DDPM and SD code) "
        "or b0^2 + (b1 - 1)^2 (their DiT code)")
    add("--steps", type=int)
    add("--batch-size", type=int, help="global batch (split over torchrun processes)")
    add("--lr", type=float)
    add("--lr-schedule", choices=["constant", "cosine"], default="constant",
        help="--lr throughout, or decayed from --lr to 0 along a half cosine over --steps")
    add("--ema", type=float, help="EMA decay")
    add("--clip", type=float, help="gradient-norm clip")
    add("--seed", type=int, default=0)
    add("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    add("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    add("--log-every", type=int)
    add("--sample-every", type=int)
    add("--ckpt-every", type=int)
    add("--fid-samples", type=int, help="samples for the final metric (0: skip)")
    add("--fid-mode", choices=["legacy_pytorch", "legacy_tensorflow", "clean"],
        help="clean-fid mode (legacy_pytorch = pytorch-fid; legacy_tensorflow = the TF Inception of ADM's evaluator)")
    add("--fid-stats", help=".npz with the reference mu, sigma")
    add("--fid-inception", help="local Inception weights file, copied to where clean-fid looks")
    add("--eval-teacher", type=int, choices=[0, 1], help="also score the teacher's samples (offline)")
    add("--grad-accum", type=int, default=1, help="split each step's batch into N parts, one backward each: the same "
        "update as one batch (LIFT's w and PLACE's groups per part, as per process under torchrun), less memory; "
        "the log shows the last part's losses")
    add("--tracker", choices=["none", "tensorboard"], default="none", help="also send the log's columns to "
        "TensorBoard (OUT/tensorboard/; needs the tensorboard package); log.csv stays the record")
    add("--compile", type=int, choices=[0, 1], default=0, help="torch.compile the trained student (and adapters) in "
        "place: the same computation up to float rounding and the same random stream; faster steps on a GPU")


def kd_loss(args, eps_s, eps_t, feats_s=(), feats_t=(), feat_weight=1.0):
    """(KD loss to add, the LIFT/PLACE result with its diagnostics or None) for --kd, on the --loss-scale scale.

    Feature KD (given features) counts alone for --kd featkd and with weight feat_weight beside an output loss (the
    U-Net script passes the authors' 1e-6 for outkd+featkd and for their "Ours", place + FitNet).
    """
    fit = None
    if args.kd == "lift":
        fit = lift_loss(eps_s, eps_t, reduction=args.loss_scale, coarse=args.coarse)
        kd = fit.loss
    elif args.kd == "place":
        fit = place_loss(eps_s, eps_t, args.group_size, reduction=args.loss_scale, coarse=args.coarse)
        kd = fit.loss
    elif args.kd in ("outkd", "outkd+featkd"):
        kd = outkd_loss(eps_s, eps_t, reduction=args.loss_scale).loss
    else:                                            # none, or featkd: no output term
        kd = eps_s.new_zeros((), dtype=torch.float32)
    if len(feats_s):
        weight = 1.0 if args.kd == "featkd" else feat_weight
        kd = kd + weight * feature_kd_loss(feats_s, feats_t, reduction=args.loss_scale)
    return kd, fit


def diffusion_loss(prediction, target, reduction):
    """The diffusion (or flow-matching) MSE of the prediction against its target on the --loss-scale scale: mean
    over elements, or sum per sample; then the batch mean. The same squared error as OutKD's, so one implementation."""
    return outkd_loss(prediction, target, reduction=reduction).loss


@torch.no_grad()
def teacher_prediction(args, teacher, hooks, *inputs, channels=None, **kwargs):
    """(the frozen teacher's prediction, its hooked features) on the student's inputs, no grad; (None, []) for --kd
    none. channels: keep the first N output channels (DiT's eps, not its variance)."""
    if args.kd == "none":
        return None, []
    out = teacher(*inputs, **kwargs).sample[:, :channels]
    return out, hooks.pop() if hooks is not None else []


def log_row(args, step, lr, loss, diffusion, kd, fit, eps_s, eps_t, seconds, grad_norm_max=None):
    """One CSV/progress-bar row; methods without their own fit log LIFT's per-(sample, channel) fit as a probe.
    lr: the optimizer's at the step; grad_norm_max: the largest pre-clip gradient norm since the previous row."""
    row = dict(step=step, loss=loss.item(), diffusion=diffusion.item(), kd=kd.item(), lr=lr,
               steps_per_s=args.log_every / max(seconds, 1e-9))
    if grad_norm_max is not None:
        row["grad_norm_max"] = grad_norm_max.item()
    if fit is None and eps_t is not None:
        fit = lift_loss(eps_s.detach(), eps_t, reduction=args.loss_scale)
    if fit is not None:
        row.update(coarse=fit.coarse.item(), fine=fit.fine.item(), w=float(fit.weight), slope=fit.slope.item(),
                   intercept=fit.intercept.item())
    return row


# ---------------------------------------------------------------- errors, presets, devices
def fail(message):
    """Print a one-line reason and exit non-zero (bad input, missing data or weights)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


# What a preset does not set: the loss and metric settings of the authors' DDPM code, the paper's lambda
DEFAULTS = dict(kd_weight=1.0, loss_scale="sum", coarse="l1", clip=1.0, fid_mode="legacy_pytorch")


# (flag, test, range in words) of the flags every script has; each script adds its own
SHARED_RANGES = [("steps", lambda v: v >= 1, ">= 1"), ("batch_size", lambda v: v >= 1, ">= 1"),
                 ("lr", lambda v: v > 0, "> 0"), ("ema", lambda v: 0 <= v < 1, "in [0, 1)"),
                 ("kd_weight", lambda v: v >= 0, ">= 0"), ("group_size", lambda v: v >= 1, ">= 1"),
                 ("clip", lambda v: v > 0, "> 0"), ("seed", lambda v: v >= 0, ">= 0"),
                 ("threads", lambda v: v >= 0, ">= 0"), ("n_embedded", lambda v: v >= 0, ">= 0"),
                 ("log_every", lambda v: v >= 1, ">= 1"), ("sample_every", lambda v: v >= 1, ">= 1"),
                 ("ckpt_every", lambda v: v >= 1, ">= 1"), ("fid_samples", lambda v: v >= 0, ">= 0"),
                 ("grad_accum", lambda v: v >= 1, ">= 1")]


def check_flags(args, ranges=()):
    """Flags out of range (the shared ones, then the script's `ranges`) or an --out that is a file: one line naming
    the flag and its range, exit 2. Flags left unset (None) are not checked."""
    for name, ok, rule in SHARED_RANGES + list(ranges):
        value = getattr(args, name, None)
        if value is not None and not ok(value):
            fail(f"--{name.replace('_', '-')} {value} must be {rule}")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"--out {args.out} is a file, not a run directory")


def add_depth_args(parser, blocks, example):
    """The flags the transformer scripts share: a student of fewer blocks (`blocks` names the teacher's; `example`: a
    --keep-blocks value), its initialisation, sampling steps and batch, and --sample-from."""
    student = parser.add_mutually_exclusive_group()
    student.add_argument("--student-depth", type=int, help=f"keep this many evenly spaced {blocks}")
    student.add_argument("--keep-blocks", type=lambda s: [int(i) for i in s.split(",")],
                         help=f"explicit {blocks} to keep, e.g. {example}")
    parser.add_argument("--init", choices=["teacher", "random"], default="teacher",
                        help="student weights from the kept teacher blocks, or random (to train a teacher)")
    parser.add_argument("--sample-batch-size", type=int, help="images per sampling call and per VAE call (memory); "
                        "the samples do not depend on it")
    parser.add_argument("--sample-steps", type=int)
    parser.add_argument("--sample-from", help="only sample: a saved student directory; writes OUT/samples.png")


def check_depth_args(args, presets, ranges):
    """A transformer script's flags once parsed: the preset filled in, --keep-blocks over --student-depth, the flags'
    ranges (the shared ones, these scripts' and `ranges`) and --fid-stats checked (one line, exit 2)."""
    apply_preset(args, presets)
    if args.keep_blocks:
        args.student_depth = None
    check_flags(args, [("student_depth", lambda v: v >= 1, ">= 1"), ("sample_steps", lambda v: v >= 1, ">= 1"),
                       ("sample_batch_size", lambda v: v >= 1, ">= 1"), ("guidance", lambda v: v >= 0, ">= 0"),
                       *ranges])
    check_fid_stats(args)
    return args


def check_fid_stats(args):
    """A latent script's FID needs --fid-stats (there are no standard statistics to fall back on): say so before
    training, not after it."""
    if args.fid_samples and args.fid_stats and not os.path.isfile(args.fid_stats):
        fail(f"--fid-stats {args.fid_stats} is not a file (an .npz with the reference mu and sigma)")
    if args.fid_samples and args.data_dir and not args.fid_stats:
        fail("FID needs reference statistics: pass --fid-stats (an .npz with mu and sigma), or --fid-samples 0")


def apply_preset(args, presets):
    """Fill every flag left at None from presets[args.preset], then from DEFAULTS: an explicit flag always wins."""
    for key, value in {**DEFAULTS, **presets[args.preset]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def setup_device(requested):
    """(rank, world size, device): DDP over NCCL/gloo when torchrun set RANK, else one process on `requested`."""
    if "RANK" in os.environ:
        rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
        use_cuda = torch.cuda.is_available() and requested != "cpu"
        dist.init_process_group("nccl" if use_cuda else "gloo")
        device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(device)
        return rank, world, device
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {requested} asked for, but torch sees no CUDA device")
    return 0, 1, torch.device(requested)


def start_run(args):
    """(rank, world, device) of a training run: devices and DDP, seed + rank, threads, OUT with args.json (rank 0)."""
    rank, world, device = setup_device(args.device)
    seed_everything(args.seed + rank)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if rank == 0:
        print(json.dumps(vars(args), indent=1))
        write_json(os.path.join(args.out, "args.json"), vars(args))
    if args.batch_size % (world * args.grad_accum):
        fail(f"--batch-size {args.batch_size} is not divisible by the {world} processes x --grad-accum "
             f"{args.grad_accum}")
    return rank, world, device


def seed_everything(seed):
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- EMA
@torch.no_grad()
def ema_update(ema, model, decay, step, warmup=True):
    """ema <- d * ema + (1 - d) * model. With warmup, d = min(decay, (1 + step) / (10 + step)) (diffusers' EMAModel);
    without it d = decay from the first step, as the authors' DDIM EMA helper (started from the pruned weights)."""
    d = min(decay, (1 + step) / (10 + step)) if warmup else decay
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - d)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


# ---------------------------------------------------------------- the authors' DDPM recipe (Diff-Pruning / DDIM code)
def antithetic_timesteps(n, num_timesteps, device):
    """n timesteps drawn in antithetic pairs (t, T - 1 - t), as the authors' DDIM-based training code draws them."""
    t = torch.randint(0, num_timesteps, (n // 2 + 1,), device=device)
    return torch.cat([t, num_timesteps - 1 - t])[:n]


def random_flip(x):
    """Mirror each image of a batch (B, C, H, W) left-right with probability 1/2 (DDIM's and DiT's augmentation)."""
    flip = torch.rand(len(x), device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


# ---------------------------------------------------------------- run log
class CSVLog:
    """Rows of training diagnostics appended to OUT/log.csv (the record); on resume, rows after the resumed step are
    dropped. With tracker "tensorboard" every numeric column also goes to OUT/tensorboard/ as scalar PREFIX/column
    at the row's step (tensorboard imported only then)."""

    def __init__(self, path, columns, resume_step=0, tracker="none", prefix="train"):
        self.path, self.columns, self.prefix, self.writer = path, columns, prefix, None
        if tracker == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                fail("--tracker tensorboard needs the tensorboard package: pip install tensorboard")
            self.writer = SummaryWriter(os.path.join(os.path.dirname(path), "tensorboard"))
        rows = []
        if resume_step and os.path.exists(path):
            with open(path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row):
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: row.get(k, "") for k in self.columns})
        if self.writer is not None:
            for k in self.columns:
                if k != "step" and row.get(k, "") != "":
                    self.writer.add_scalar(f"{self.prefix}/{k}", float(row[k]), int(row["step"]))
            self.writer.flush()


def write_json(path, obj):
    """Write JSON atomically (temp file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


# ---------------------------------------------------------------- checkpoints
def rng_state():
    """Every RNG the loop draws from: python, numpy, torch CPU and CUDA."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def process_rank():
    """(rank, world size) of this process: those of the torchrun process group, else (0, 1)."""
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def save_checkpoint(out, step, model, ema, optimizer, args, keep=2):
    """OUT/ckpt_STEP/{model,ema}.safetensors + state.pt, written to a temp dir and renamed; then OUT/latest points
    to it.

    Every process calls it: each one's RNG state is gathered into state.pt's rng_ranks (rng: rank 0's, for older
    readers), rank 0 writes, and no process goes on before the checkpoint is complete. A kill at any moment leaves the
    previous checkpoint and `latest` intact; only the last `keep` are kept.
    """
    rank, world = process_rank()
    states = [rng_state()] * world                   # every process's own, once gathered
    if world > 1:
        dist.all_gather_object(states, states[rank])
    if rank == 0:
        final = os.path.join(out, f"ckpt_{step:08d}")
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for name, net in (("model", model), ("ema", ema)):
            save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()},
                      os.path.join(tmp, f"{name}.safetensors"))
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "rng": states[0], "rng_ranks": states,
                    "args": vars(args)}, os.path.join(tmp, "state.pt"))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        with open(os.path.join(out, "latest.tmp"), "w") as f:
            f.write(os.path.basename(final))
        os.replace(os.path.join(out, "latest.tmp"), os.path.join(out, "latest"))
        for old in sorted(glob.glob(os.path.join(out, "ckpt_*[0-9]")))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    if world > 1:
        dist.barrier()


def restore_rng(state):
    """This process's RNG state from a checkpoint's state.pt: its own of rng_ranks, or rank 0's from a checkpoint
    older than rng_ranks; from another number of processes, fresh streams seeded by (seed, rank, step), with a
    warning."""
    rank, world = process_rank()
    ranks = state.get("rng_ranks", [state["rng"]] * world)
    if len(ranks) == world:
        set_rng_state(ranks[rank])
        return
    if rank == 0:
        print(f"warning: the checkpoint of step {state['step']} was written by {len(ranks)} processes, not {world}: "
              "the random streams are reseeded, not continued", file=sys.stderr)
    seed = hash((state["args"].get("seed", 0), rank, state["step"])) % 2 ** 32    # a tuple of ints: the same every run
    seed_everything(seed)


def load_checkpoint(out, model, ema, optimizer, device):
    """Restore the newest readable checkpoint in OUT; returns its step (0 when there is none: a fresh start).

    A checkpoint that cannot be read (a truncated file, a disk or copy error) is skipped with a one-line warning
    naming it, and the one before it is used; when none can be read the run stops with one line.
    """
    folders = sorted(glob.glob(os.path.join(out, "ckpt_*[0-9]")), reverse=True)
    for folder in folders:
        try:                                         # read everything before changing anything
            weights = load_file(os.path.join(folder, "model.safetensors"), device=str(device))
            ema_weights = load_file(os.path.join(folder, "ema.safetensors"), device=str(device))
            state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=False)
        except Exception as e:
            print(f"warning: checkpoint {folder} is unreadable ({type(e).__name__}): trying the one before it",
                  file=sys.stderr)
            continue
        model.load_state_dict(weights)
        ema.load_state_dict(ema_weights)
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state)                           # this process's own RNG state
        return state["step"]
    if folders:
        fail(f"no readable checkpoint in {out} (tried {len(folders)}): start afresh without --resume")
    return 0


# ---------------------------------------------------------------- Ctrl-C
def catch_interrupts():
    """Make Ctrl-C (SIGINT) and SIGTERM set a flag instead of killing the loop mid-step; a second Ctrl-C still stops
    at once. The loop reads it with interrupted() after each step. Returns the flag (a dict)."""
    flag = {"stop": False}

    def handler(signum, frame):
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return flag


def interrupted(flag, world, device):
    """Whether any process was interrupted during this step (all processes agree, so they stop together)."""
    if world == 1:
        return flag["stop"]
    stop = torch.tensor(float(flag["stop"]), device=device)
    dist.all_reduce(stop, op=dist.ReduceOp.MAX)
    return bool(stop.item())


def release_interrupts():
    """Ctrl-C and SIGTERM act at once again (after the training loop: sampling and FID can be stopped)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def inject_faults(step):
    """Fault injection for the resume tests: after step N, LIFT_KILL_AT_STEP=N kills this process (SIGKILL, no
    checkpoint) and LIFT_INTERRUPT_AT_STEP=N sends it Ctrl-C (SIGINT)."""
    for name, sig in (("LIFT_KILL_AT_STEP", signal.SIGKILL), ("LIFT_INTERRUPT_AT_STEP", signal.SIGINT)):
        if os.environ.get(name) == str(step):
            os.kill(os.getpid(), sig)


def stop_interrupted(step):
    """After the checkpoint of an interrupted run: one line saying where it stopped and how to go on; exit 130."""
    print(f"interrupted after step {step}; its checkpoint is written: run the same command with --resume to go on",
          file=sys.stderr)
    sys.exit(130)


# ---------------------------------------------------------------- a training step
def backward(loss, args, step):
    """Backpropagate one part's loss / --grad-accum; a loss that is not finite stops the run with one line."""
    if not torch.isfinite(loss):
        fail(f"loss is {loss.item()} at step {step}: training diverged (try a lower --lr or --kd-weight)")
    (loss / args.grad_accum).backward()


def lr_at(args, step):
    """The learning rate of optimizer step `step` (from 0): a function of the step alone, so a resumed run follows the
    schedule exactly (a resume with a new --steps stretches a cosine to the new end)."""
    if args.lr_schedule == "cosine":
        return args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    return args.lr


def set_lr(optimizer, args, step):
    """Set every parameter group's learning rate to lr_at(args, step) before optimizer step `step`."""
    lr = lr_at(args, step)
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(model, args):
    """Clip the gradient norm to --clip; returns the norm before clipping."""
    return torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)


def micro_batches(model, n, *tensors):
    """--grad-accum: the tensors' n equal parts along the batch, one at a time; the caller backpropagates each part's
    loss / n, which sums to the gradient of the whole batch's mean loss. Under DDP the gradients are averaged over
    the processes once, after the last part (no_sync before it)."""
    parts = [x.chunk(n) for x in tensors]
    for i in range(n):
        last = i == n - 1 or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if last else model.no_sync():
            yield tuple(p[i] for p in parts)


def compile_in_place(model):
    """--compile: torch.compile the module's forward in place (its state dict keys unchanged), with dropout and every
    other random op drawing from torch's own generator as in eager mode, so a compiled run follows the same random
    stream (and resumes the same way) as an eager one."""
    import torch._inductor.config
    torch._inductor.config.fallback_random = True
    model.compile()
    return model


def autocast(device, cpu=False):
    """bf16 autocast on a GPU (and on the CPU too with cpu=True); no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" or cpu)


# ---------------------------------------------------------------- setup phases of main()
def student_and_ema(args, student, teacher, example, layers=None, fitnet=False):
    """(model, ema, teacher hooks): the trained Distillee (the student, and for feature KD adapters to the teacher's
    widths), its frozen EMA copy (eager), and hooks on the teacher's matched layers (None without feature KD).

    layers: (the student's, the teacher's) layers that feature KD matches, or None. example: (args, kwargs) of one
    forward pass; the teacher and the student run it once, so each adapter is sized to the features it maps.
    --compile compiles the model after the EMA copy.
    """
    hooks = None
    if layers:
        hooks = FeatureHooks(layers[1])
        with torch.no_grad():
            teacher(*example[0], **example[1])
    features_t = hooks.pop() if hooks is not None else None
    model = Distillee(student, layers[0] if layers else (), features_t, example, fitnet).to(example[0][0].device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    if args.compile:                                 # after the EMA copy, which stays eager
        compile_in_place(model)
    return model, ema, hooks


def depth_models(cls, args, device, rank, count=count_params, counted=""):
    """(teacher or None, student, sizes) of a transformer script: the frozen teacher and the student of its kept
    blocks (models.depth_teacher_student); the sizes for metrics.json, printed by rank 0 (counted by `count`); no
    teacher where only its config was needed (--kd none --init random)."""
    teacher, student, keep = depth_teacher_student(cls, args, device)
    teacher_params, depth = count(teacher), teacher.config.num_layers
    sizes = dict(student_params=count(student), teacher_params=teacher_params, kept_blocks=keep,
                 percent_of_teacher=percent(count(student), teacher_params))
    if rank == 0:
        print(f"student keeps blocks {keep} of {depth}: {sizes['student_params'] / 1e6:.3f} M parameters "
              f"({sizes['percent_of_teacher']} % of the teacher's {teacher_params / 1e6:.3f} M{counted})")
    if args.kd == "none" and args.init == "random":
        teacher = None
    return teacher, student, sizes


def resume_or_start(args, model, ema, optimizer, rank, world, device):
    """(the step to start from, the module the loop trains): with --resume, OUT's newest checkpoint restored into
    model, EMA, optimizer and the random state (step 0 when there is none); under torchrun, the model in DDP."""
    start = load_checkpoint(args.out, model, ema, optimizer, device) if args.resume else 0
    if rank == 0 and start:
        print(f"resumed from step {start}")
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        return start, torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return start, model


# ---------------------------------------------------------------- the loop's bookkeeping: log, grids, checkpoints
def start_loop(args, start, rank, world, device, model, ema, optimizer, grid, heldout=None, columns=LOG_COLUMNS):
    """What the training loop carries besides the method, in one plain namespace: the progress bar over the steps
    start..--steps (shown by rank 0), OUT/log.csv (rank 0), the Ctrl-C flag (caught from here on), what a checkpoint
    saves, the script's sample grid (a function: uint8 images of the EMA) and held-out evaluation (a function of the
    step, or None), and the counters of the next log row: seconds spent in steps, the largest pre-clip gradient norm."""
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, disable=rank != 0, desc=args.kd)
    log = CSVLog(os.path.join(args.out, "log.csv"), columns, start, args.tracker) if rank == 0 else None
    return SimpleNamespace(args=args, rank=rank, world=world, device=device, model=model, ema=ema, optimizer=optimizer,
                           grid=grid, heldout=heldout, bar=bar, log=log, interrupt=catch_interrupts(), busy=0.0,
                           peak=None, tic=time.time())


def end_step(loop, step, grad_norm, loss, diffusion, kd, fit, pred_s, pred_t, **extra):
    """After optimizer step `step` (from 0), on every rank: a log row every --log-every steps and at the last (rank 0:
    OUT/log.csv and the progress bar; extra: more losses to log, as DiT's vlb), the held-out evaluation every
    --eval-every steps and an EMA sample grid every --sample-every steps (rank 0); a checkpoint every --ckpt-every
    steps, at the last and when Ctrl-C or SIGTERM came (every rank saves its own random state), after which an
    interrupted run stops with one line, exit 130. Before all that, the resume tests' fault, when asked for."""
    args, done = loop.args, step + 1
    loop.busy += time.time() - loop.tic
    loop.peak = grad_norm if loop.peak is None else torch.maximum(loop.peak, grad_norm)
    inject_faults(done)
    if loop.rank == 0 and (done % args.log_every == 0 or done == args.steps):
        row = log_row(args, done, loop.optimizer.param_groups[0]["lr"], loss, diffusion, kd, fit, pred_s, pred_t,
                      loop.busy, loop.peak)
        row.update({k: v.item() for k, v in extra.items()})
        loop.log.write({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        loop.bar.set_postfix({k: f"{row[k]:.3g}" for k in ("diffusion", "vlb", "kd", "w", "slope") if k in row})
        loop.busy, loop.peak = 0.0, None
    if loop.rank == 0 and loop.heldout is not None and done % args.eval_every == 0:
        loop.heldout(done)
    if loop.rank == 0 and done % args.sample_every == 0:
        save_grid(to_model_range(loop.grid()), os.path.join(args.out, f"samples_{done:08d}.png"))
    stop = interrupted(loop.interrupt, loop.world, loop.device)
    if done % args.ckpt_every == 0 or done == args.steps or stop:
        save_checkpoint(args.out, done, loop.model, loop.ema, loop.optimizer, args)
    if stop:
        loop.bar.close()                             # its last redraw before our one line, not after
        stop_interrupted(done)
    loop.tic = time.time()


# ---------------------------------------------------------------- grids and FID
def save_grid(images, path, nrow=8):
    """Save model-range images (B, 3, H, W) in [-1, 1] as one PNG grid."""
    from torchvision.utils import save_image
    save_image((images.float().clamp(-1, 1) + 1) / 2, path, nrow=nrow)


def fid_or_null(compute, mode):
    """{fid: compute(), fid_mode}; when the Inception weights or reference statistics cannot be had (offline), fid
    null with the reason in fid_unavailable and a one-line warning, so the run still writes its other metrics."""
    try:
        return dict(fid=compute(), fid_mode=mode)
    except FIDUnavailable as e:
        print(f"warning: no FID: {e}")
        return dict(fid=None, fid_mode=mode, fid_unavailable=str(e))


# ---------------------------------------------------------------- latent settings: training batches and sampling
def batch_latents(args, idx, latents, images, vae, device):
    """x_0 of the batch idx: rows of the latent cache (N, 2, C, h, w), each the latent of the image or, with --flip,
    with probability 1/2 the one of its mirror image (drawn from torch's RNG, which checkpoints save); or without a
    cache, the embedded images (mirrored alike) encoded now, --sample-batch-size per VAE call."""
    if latents is not None:
        side = torch.randint(0, 2, (len(idx),)) if args.flip else torch.zeros(len(idx), dtype=torch.long)
        return torch.from_numpy(np.asarray(latents[idx.numpy(), side.numpy()])).float().to(device)
    x = to_model_range(images[idx]).to(device)
    return encode_latents(vae, random_flip(x) if args.flip else x, batch_size=args.sample_batch_size)


def folder_latents(args, files, vae, image_size, path, rank, world, device):
    """The latent cache of an image folder's files at path (data.cache_latents: every rank encodes a share, once;
    an interrupted run resumes it), --sample-batch-size images per VAE call."""
    encode = lambda u, g: encode_latents(vae, to_model_range(u).to(device), g, args.sample_batch_size)
    return cache_latents(files, image_size, encode, path, rank, world)


# ---------------------------------------------------------------- what a finished run leaves
CURVES = [("losses (on the --loss-scale scale)", ["diffusion", "kd", "vlb"], "log"),
          ("LIFT's fit of the teacher on the student", ["slope", "intercept", "w"], "linear"),
          ("largest pre-clip gradient norm per row", ["grad_norm_max"], "log")]


def plot_curves(out):
    """OUT/curves.png from OUT/log.csv: the losses, LIFT's slope b1, intercept b0 and weight w, and the gradient norm
    over the steps (columns a run did not log are left out)."""
    from matplotlib.figure import Figure              # no pyplot: a notebook's backend is left as it is
    with open(os.path.join(out, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(5 * len(CURVES), 3.6))
    axes = fig.subplots(1, len(CURVES))
    for ax, (title, columns, scale) in zip(axes, CURVES):
        for column in columns:
            points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
            if points and not (scale == "log" and min(v for _, v in points) <= 0):
                ax.plot(*zip(*points), lw=1, label=column)
        ax.set(title=title, xlabel="step", yscale=scale if ax.lines else "linear")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=90)


def write_model_card(out, metrics, teacher):
    """OUT/student/README.md: what the student was distilled from, by which method, its size, its metrics with the
    settings they were measured with, and the command that made it."""
    skip = {"args", "method", "steps", "student_params", "teacher_params", "percent_of_teacher"}
    lines = [f"# A {metrics['method']} student of {teacher}", "",
             f"Distilled by `{os.path.basename(sys.argv[0])}` of the LIFT and PLACE reproduction "
             f"(Han, Yeo, Yoo, CVPR 2026) with `--kd "
             f"{metrics['method']}` for {metrics['steps']} steps: {metrics['student_params']:,} parameters, "
             f"{metrics['percent_of_teacher']} % of the teacher's {metrics['teacher_params']:,}.", "",
             "| metric or setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items() if k not in skip]
    lines += ["", "Made by:", "", "```bash", "python " + " ".join(shlex.quote(a) for a in sys.argv), "```", ""]
    with open(os.path.join(out, "student", "README.md"), "w") as f:
        f.write("\n".join(lines))


def finish_run(args, rank, world, student, metrics, evaluations):
    """The end of every run, on every rank: rank 0 saves the EMA student to OUT/student/; with --fid-samples every
    rank runs evaluations() (each rank samples its share; the metrics come back on rank 0, {} elsewhere); rank 0
    reports them (report_run); the process group closes."""
    release_interrupts()
    if rank == 0:
        student.save_pretrained(os.path.join(args.out, "student"))
    if args.fid_samples:
        metrics.update(evaluations())
    if rank == 0:
        report_run(args, metrics)
    if world > 1:
        dist.destroy_process_group()


def report_run(args, metrics):
    """What every finished run leaves beside OUT/student/: metrics.json (with every flag), curves.png and the
    student's model card; the metrics are printed too."""
    metrics["args"] = vars(args)
    write_json(os.path.join(args.out, "metrics.json"), metrics)
    plot_curves(args.out)
    write_model_card(args.out, metrics, args.teacher)
    print(json.dumps({k: v for k, v in metrics.items() if k != "args"}, indent=1))
