"""Distil a pixel-space DDPM U-Net into a very small student with LIFT + PLACE (or a baseline KD method).

The paper's DDPM setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026, Table 1) on CIFAR-10: teacher
google/ddpm-cifar10-32 (35.7 M parameters); `--student-width 0.125` gives a 0.565 M student (1.58 %), the
paper's extreme ratio; `--prune-ratio R` prunes the teacher by weight magnitude as Diff-Pruning does.

    # offline, CPU, ~10 minutes: tiny shipped teacher, embedded shapes dataset, 1/8-width student (1.73 %)
    python train_unet_cifar.py --preset tiny --out runs/tiny_place
    # the paper setting on a GPU (CIFAR-10 python tarball, FID with clean-fid on 50k samples)
    python train_unet_cifar.py --preset paper --data-dir cifar-10-python.tar.gz --out runs/cifar_place
    torchrun --nproc_per_node 8 train_unet_cifar.py --preset paper --data-dir cifar-10-python.tar.gz --out runs/c
    # resume after a crash, sample from a saved student
    python train_unet_cifar.py --preset tiny --out runs/tiny_place --resume
    python train_unet_cifar.py --sample-from runs/tiny_place/student --n-samples 64 --out runs/grid
    # re-train the shipped tiny teacher (no teacher needed with --kd none; width 1 = its own architecture; a GPU: 7 min)
    python train_unet_cifar.py --preset tiny --kd none --student-width 1 --steps 10000 --batch-size 64 --lr 5e-4 \
        --loss-scale mean --n-embedded 50000 --out runs/tiny_teacher
"""
import argparse
import copy
import json
import math
import os
import signal
import time

import torch
from tqdm import tqdm

from common import (LOG_COLUMNS, CSVLog, add_training_args, apply_preset, ema_update, fail, kd_loss,
                    load_checkpoint, log_row, save_checkpoint, save_grid, setup_device, start_run, write_json)
from data import batch_indices, load_images, to_model_range
from lift import outkd_loss
from metrics import cached_reference, ddim_sample, fid, load_classifier, shape_metrics
from models import (Distillee, FeatureHooks, LoadError, count_macs, count_params, load_pretrained, load_unet, percent,
                    prune_unet, set_dropout, unet_feature_layers, width_student)
from place import check_group_size

HERE = os.path.dirname(os.path.abspath(__file__))
# The DDPM schedule google/ddpm-cifar10-32 was trained with (Ho et al. 2020): 1000 steps, linear betas.
DDPM_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                     prediction_type="epsilon", clip_sample=True, variance_type="fixed_small")
PRESETS = {
    # Diff-Pruning's CIFAR-10 recipe (PAPER.md): Adam 2e-4, batch 128, EMA 0.9999, clip 1, dropout 0.1, 100k steps;
    # sampler and metric as the paper's Table 1: 100 DDIM steps (eta 0), FID on 50k samples.
    "paper": dict(teacher="google/ddpm-cifar10-32", steps=100_000, batch_size=128, lr=2e-4, ema=0.9999, dropout=0.1,
                  log_every=100, sample_every=5000, ckpt_every=5000, fid_samples=50_000, ddim_steps=100,
                  n_embedded=50_000, eval_teacher=0),
    "tiny": dict(teacher=os.path.join(HERE, "assets", "tiny_unet"), steps=1500, batch_size=64, lr=1e-3, ema=0.999,
                 dropout=0.0, log_every=25, sample_every=500, ckpt_every=500, fid_samples=1000, ddim_steps=50,
                 n_embedded=20_000, eval_teacher=1),
    "smoke": dict(teacher=os.path.join(HERE, "assets", "tiny_unet"), steps=4, batch_size=8, lr=1e-3, ema=0.999,
                  dropout=0.0, log_every=1, sample_every=2, ckpt_every=2, fid_samples=16, ddim_steps=4,
                  n_embedded=256, eval_teacher=1),
}


def make_student(args, teacher, teacher_config):
    """The student: the teacher's architecture narrowed by --student-width, or the teacher pruned by --prune-ratio."""
    if args.prune_ratio is not None:
        return set_dropout(prune_unet(teacher, args.prune_ratio), args.dropout)
    return width_student(teacher_config, args.student_width, args.dropout)


def evaluate(args, unet, sched_config, images_are_cifar, device, n):
    """Metrics of n DDIM samples from unet: FID (clean-fid) on real data, shape-FD + accuracy on the embedded set."""
    settings = dict(sampler="DDIM", ddim_steps=args.ddim_steps, eta=args.eta, timestep_spacing="leading",
                    n_samples=n, sample_seed=args.seed)
    if images_are_cifar or args.fid_stats:
        calls = iter(range(1 << 62))

        def generate(b):                             # clean-fid asks for batches; each batch has its own seed
            seed = args.seed * 1_000_003 + next(calls)
            return ddim_sample(unet, sched_config, b, args.ddim_steps, args.eta, seed=seed, device=device).to(device)
        value = fid(generate, n, mode=args.fid_mode, stats=args.fid_stats, inception=args.fid_inception,
                    device=str(device))
        return dict(settings, fid=value, fid_mode=args.fid_mode, fid_reference=args.fid_stats or "cifar10 train (clean-fid)")
    samples = ddim_sample(unet, sched_config, n, args.ddim_steps, args.eta, seed=args.seed, device=device)
    return dict(settings, **shape_metrics(samples, load_classifier(device=device)))


def teacher_reference(args, teacher, device):
    """The teacher's shape-FD with the same sampler settings (cached in TEACHER/reference_metrics.json)."""
    settings = dict(ddim_steps=args.ddim_steps, eta=args.eta, n_samples=args.fid_samples, sample_seed=args.seed)
    return cached_reference(args.teacher, settings,
                            lambda: evaluate(args, teacher, DDPM_SCHEDULE, False, device, args.fid_samples))["shape_fd"]


def sample_only(args):
    """--sample-from DIR: load a saved student (or any UNet2DModel) and write a grid of DDIM samples."""
    device = setup_device(args.device)[2]
    unet = load_unet(args.sample_from).to(device)
    samples = ddim_sample(unet, DDPM_SCHEDULE, args.n_samples, args.ddim_steps, args.eta, seed=args.seed, device=device)
    os.makedirs(args.out, exist_ok=True)
    save_grid(to_model_range(samples), os.path.join(args.out, "samples.png"), nrow=int(math.sqrt(len(samples))) or 1)
    print(f"wrote {len(samples)} samples to {os.path.join(args.out, 'samples.png')}")


def main(args):
    from diffusers import DDPMScheduler, UNet2DModel
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)

    # ---- teacher (frozen), student, EMA
    needs_teacher = args.kd != "none" or args.prune_ratio is not None
    if needs_teacher:
        teacher = load_unet(args.teacher).to(device)
        teacher.requires_grad_(False).eval()
        teacher_config = dict(teacher.config)
    else:
        teacher, teacher_config = None, load_pretrained(UNet2DModel, args.teacher, subfolder="unet", config_only=True)
    size = teacher_config["sample_size"]
    images, labels = load_images(args.data_dir, size, args.n_embedded, seed=args.seed)   # at the teacher's size
    check_group_size(size * size, args.group_size) if args.kd == "place" else None
    student = make_student(args, teacher, teacher_config).to(device)
    example = ((torch.zeros(1, 3, size, size, device=device), torch.zeros(1, device=device, dtype=torch.long)), {})
    feature_kd = "featkd" in args.kd
    teacher_hooks = FeatureHooks(unet_feature_layers(teacher)) if feature_kd else None
    if feature_kd:
        teacher(*example[0])
    model = Distillee(student, unet_feature_layers(student) if feature_kd else (),
                      teacher_hooks.pop() if feature_kd else None, example).to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    teacher_params = count_params(teacher) if teacher is not None else count_params(UNet2DModel.from_config(teacher_config))
    sizes = dict(student_params=count_params(student), teacher_params=teacher_params,
                 student_macs=count_macs(student, *example[0]),
                 percent_of_teacher=percent(count_params(student), teacher_params))
    if rank == 0:
        print(f"student {sizes['student_params'] / 1e6:.3f} M parameters ({sizes['percent_of_teacher']} % of the "
              f"teacher's {teacher_params / 1e6:.3f} M), {sizes['student_macs'] / 1e9:.3f} G MACs per image")
        width, channels = student.config.block_out_channels[0], student.config.in_channels
        if width < channels:                          # 2 x H x W numbers cannot hold 3 x H x W of noise
            print(f"warning: the student's full-resolution blocks have {width} channels, fewer than the image's "
                  f"{channels}: it cannot represent per-pixel noise, and its samples stay noisy (README, study)")

    # ---- optimizer, resume
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = load_checkpoint(args.out, model, ema, optimizer, device) if args.resume else 0
    if rank == 0 and start:
        print(f"resumed from step {start}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scheduler = DDPMScheduler(**DDPM_SCHEDULE)
    alphas = scheduler.alphas_cumprod.to(device)
    log = CSVLog(os.path.join(args.out, "log.csv"), LOG_COLUMNS, start) if rank == 0 else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    # ---- training loop
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, disable=rank != 0, desc=args.kd)
    busy = 0.0                                       # seconds spent in training steps since the last log row
    for step in bar:
        tic = time.time()
        idx = batch_indices(len(images), args.batch_size, step, args.seed, rank, world)
        x0 = to_model_range(images[idx]).to(device)
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise                          # q(x_t | x_0), DDPM Eq. 4
        with autocast:
            eps_s, feats_s = train_model(xt, t)
            eps_t, feats_t = None, []
            if teacher is not None and args.kd != "none":
                with torch.no_grad():
                    eps_t = teacher(xt, t).sample
                    feats_t = teacher_hooks.pop() if feature_kd else []
        diffusion = outkd_loss(eps_s, noise, reduction=args.loss_scale).loss    # diffusion MSE on the KD scale
        kd, fit = kd_loss(args, eps_s, eps_t, feats_s, feats_t) if eps_t is not None else (diffusion.new_zeros(()), None)
        loss = diffusion + args.kd_weight * kd
        if not torch.isfinite(loss):
            fail(f"loss is {loss.item()} at step {step}: training diverged (try a lower --lr or --kd-weight)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        ema_update(ema, model, args.ema, step)
        done, busy = step + 1, busy + time.time() - tic
        if os.environ.get("LIFT_KILL_AT_STEP") == str(done):    # fault injection for the resume test
            os.kill(os.getpid(), signal.SIGKILL)

        if rank == 0 and (done % args.log_every == 0 or done == args.steps):
            row = log_row(args, done, loss, diffusion, kd, fit, eps_s, eps_t, busy)
            log.write({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("diffusion", "kd", "w", "slope") if k in row})
            busy = 0.0
        if rank == 0 and done % args.sample_every == 0:
            grid = ddim_sample(ema.student, DDPM_SCHEDULE, 64, args.ddim_steps, args.eta, seed=0, device=device)
            save_grid(to_model_range(grid), os.path.join(args.out, f"samples_{done:08d}.png"))
        if rank == 0 and (done % args.ckpt_every == 0 or done == args.steps):
            save_checkpoint(args.out, done, model, ema, optimizer, args)
        if world > 1 and done % args.ckpt_every == 0:
            torch.distributed.barrier()

    # ---- final save and evaluation
    if rank == 0:
        ema.student.save_pretrained(os.path.join(args.out, "student"))
        metrics = dict(method=args.kd, steps=args.steps, **sizes)
        if args.fid_samples:
            metrics.update(evaluate(args, ema.student, DDPM_SCHEDULE, args.data_dir is not None, device, args.fid_samples))
            if args.eval_teacher and teacher is not None and args.data_dir is None:
                metrics["teacher_shape_fd"] = teacher_reference(args, teacher, device)
        metrics["args"] = vars(args)
        write_json(os.path.join(args.out, "metrics.json"), metrics)
        print(json.dumps({k: v for k, v in metrics.items() if k != "args"}, indent=1))
    if world > 1:
        torch.distributed.destroy_process_group()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of a DDPM U-Net (paper Table 1 setting).")
    add_training_args(parser, teacher_help="hub id or local directory of a UNet2DModel (or a pipeline holding one)")
    parser.set_defaults(out="runs/unet")
    student = parser.add_mutually_exclusive_group()
    student.add_argument("--student-width", type=float, default=0.125, help="width factor (0.125: 1.6 %% of the teacher)")
    student.add_argument("--prune-ratio", type=float, help="prune this share of the teacher's channels instead")
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--ddim-steps", type=int, help="DDIM sampling steps (paper: 100)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta (paper: 0)")
    parser.add_argument("--sample-from", help="only sample: a saved student directory; writes OUT/samples.png")
    parser.add_argument("--n-samples", type=int, default=64, help="with --sample-from")
    args = parser.parse_args(argv)
    if args.sample_from:
        args.ddim_steps = args.ddim_steps or 100
        return args
    apply_preset(args, PRESETS)
    if args.preset == "paper" and args.data_dir is None:
        fail("--preset paper trains on CIFAR-10: pass --data-dir cifar-10-python.tar.gz (or use --preset tiny)")
    return args


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:            # bad input (DataError is a ValueError): one line, exit 2
        fail(str(e))
