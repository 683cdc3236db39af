"""Distil a pixel-space DDPM U-Net into a very small student with LIFT + PLACE (or a baseline KD method).

The paper's DDPM setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026, Table 1). Its students are pruned from the
teacher by Diff-Pruning's Taylor pruner and inherit the teacher's weights (`--prune-ratio`, PAPER.md): 90 % of the
CelebA-64 DDIM teacher (78.7 M) is 1.312 M, 90 % of google/ddpm-cifar10-32 (35.7 M) is 0.661 M, with one channel per
GroupNorm group. The paper presets fine-tune them with the authors' recipe: Adam 2e-4 (betas 0.9, 0.999, no weight
decay), grad clip 1, dropout 0.1, antithetic timesteps (t and 999 - t in pairs), random flip, EMA 0.9999 from the
pruned weights without warm-up, losses summed per sample; `--kd place` is their "Ours": LIFT + PLACE (K = 16) plus
a 1e-6 FitNet term (`--place-fitnet 0` drops it). `--student-width` is the other kind of student: a randomly
initialised narrow copy (NOT the paper's).

    # offline, CPU, ~9 minutes: the shipped tiny teacher, its shipped 70 %-pruned student, the embedded shapes
    python train_unet_cifar.py --preset tiny --out runs/tiny_place
    # the paper's Table 1 on a GPU: ermongroup/ddim's CelebA-64 checkpoint (78.7 M) -> 90 % Taylor-pruned (1.312 M)
    python train_unet_cifar.py --preset celeba --teacher ckpt.pth --data-dir img_align_celeba --out runs/celeba90
    # Table 1's other ratios and baselines
    python train_unet_cifar.py --preset celeba --teacher ckpt.pth --data-dir img_align_celeba --prune-ratio 0.7 \
        --kd none|outkd|featkd|outkd+featkd|place --out runs/celeba70_X
    # the same regime on CIFAR-10: google/ddpm-cifar10-32 (35.7 M) -> 90 % pruned (0.661 M, 1.85 %); CIFAR-10 python
    # tarball; FID against clean-fid's CIFAR-10 train statistics
    torchrun --nproc_per_node 8 train_unet_cifar.py --preset paper --data-dir cifar-10-python.tar.gz --out runs/cifar90
    # resume after a crash or Ctrl-C; sample from a saved student
    python train_unet_cifar.py --preset tiny --out runs/tiny_place --resume
    python train_unet_cifar.py --sample-from runs/tiny_place/student --n-samples 64 --out runs/grid
    # remake the shipped 70 %-pruned student (the paper's pruner, Taylor pass over every 10th t)
    python train_unet_cifar.py --preset tiny --prune-ratio 0.7 --taylor-t-stride 10 --steps 1 --fid-samples 0 \
        --out runs/p70 && cp runs/p70/pruned_init/* assets/tiny_unet_pruned70/
    # keep the CelebA teacher as a diffusers model (then --teacher celeba_teacher)
    python -c "import models; models.load_ddim_checkpoint('ckpt.pth').save_pretrained('celeba_teacher')"
    # re-train the shipped tiny teacher (no teacher needed with --kd none; width 1 = its own architecture; a GPU: 7 min)
    python train_unet_cifar.py --preset tiny --kd none --student-width 1 --steps 10000 --batch-size 64 --lr 5e-4 \
        --loss-scale mean --n-embedded 50000 --out runs/tiny_teacher

Presets fill every flag you do not give; an explicit flag always wins.

    preset  teacher; data; student; steps x batch; metric
    celeba  --teacher DDIM checkpoint (EMA entry); --data-dir CelebA, DDIM's crop, 64^2; pruned 90 % (Taylor);
            500k x 96; FID of 50k samples, 100 DDIM steps, no x0 clipping
    paper   google/ddpm-cifar10-32; --data-dir CIFAR-10; pruned 90 % (Taylor); 100k x 128; FID of 50k samples,
            100 DDIM steps, x0 clipped
    tiny    assets/tiny_unet (0.77 M); embedded shapes; assets/tiny_unet_pruned70 (70 %, 16.6 %); 1500 x 64;
            shape-FD of 1000 samples, 50 DDIM steps
    smoke   as tiny; 4 x 8; shape-FD of 16 samples, 4 DDIM steps

The paper presets follow the authors' Diff_Pruning_EXP code, read line by line (PAPER.md). FitNet (`--kd featkd`)
is theirs: a bias-free 1x1 conv per tap from the student's width to the teacher's, initialised U(-0.005, 0.005),
squared error summed over C*H*W of every down, middle and up resnet, attention and resample output (41 taps on the
CelebA U-Net, 34 on CIFAR-10's); weight lambda alone, 1e-6 beside OutKD. The loss is diffusion MSE + --kd-weight *
KD, both on --loss-scale sum (per sample, then the batch mean, as the released DDPM code) or mean. The tiny presets
start from the shipped 70 %-pruned student and keep flip, antithetic t and dropout, but scale lr (1e-3) and EMA
(0.999 with warm-up) to 1500 steps, drop the FitNet term and run the teacher's forward in bf16 (--bf16-teacher 1),
to fit a CPU budget.

Pruned students (--prune-ratio R, models.prune_unet) are made as Diff-Pruning's taylor/ours pruner makes them:
torch-pruning's dependency graph couples the layers that must lose the same channels; each coupled group is scored
by first-order Taylor importance |w * dL/dw| (--prune-importance taylor; magnitude is Diff-Pruning's L2 baseline),
the gradient of the per-sample-summed noise-prediction loss accumulated over every t = 0..999 on one batch of 64
training images with one noise draw; one step then removes C - int(C * (1 - R)) of every group's C channels,
conv_out excepted. A group feeding a GroupNorm of 32 groups loses floor(that / 32) in the same slots of every norm
group, so norm groups are kept and at 90 % each holds ONE channel (per-channel normalisation). The widths do not
depend on the importance; the sizes match the authors' (tested on the real configs, random weights):

    teacher -> student                      first-level widths        parameters  MACs / image  % of teacher
    CelebA-64 DDIM teacher                  128, 256, 256, 256, 512   78.70 M     23.88 G       100
      pruned 50 %                           64, 128, 128, 128, 256    19.714 M    5.98 G        25.05
      pruned 70 %                           64, 96, 96, 96, 160       9.253 M     4.17 G        11.76
      pruned 90 %                           32, 32, 32, 32, 64        1.312 M     0.76 G        1.67
    google/ddpm-cifar10-32                  128, 256, 256, 256        35.75 M     6.05 G        100
      pruned 90 %                           32, 32, 32, 32            0.661 M     0.19 G        1.85
      --student-width 0.125 (random init)   16, 32, 32, 32            0.565 M                   1.58

The Taylor pass is 1,000 forward + backward passes of the teacher (about a minute on a GPU for the CIFAR teacher);
--taylor-t-stride S takes every S-th t instead: on a small U-Net, stride 10 kept all but 4 of the 939 channels that
stride 1 keeps (stride 50: 45 differ, 250: 106; tests/test_pruning.py). Pruning runs once, on rank 0, before
training, into OUT/pruned_init/, which every rank and a resumed run load. Attention and time-embedding widths are
pruned on their own, so a pruned student is not expressible as a UNet2DModel config: it is saved with save_pretrained
(the teacher's config plus pruned_from_teacher) and models.load_unet rebuilds it from the shapes of its weights
(--sample-from and --resume use it).

The CelebA-64 teacher: --teacher ckpt.pth takes ermongroup/ddim's checkpoint (a state dict, or DDIM's training list
[model, optimizer, epoch, step, ema] with module. prefixes) and converts it into a diffusers UNet2DModel
(models.load_ddim_checkpoint; outputs equal an independent forward of the original architecture to 2e-6, tested).
--teacher-weights ema (default) takes the EMA entry: what DDIM samples with, and what the authors' pruning script
loads (--use_pretrained reads DDIM's ema_celeba weights); model takes the raw entry. Data: img_align_celeba/ through
DDIM's crop (the 128^2 box at row 57, column 25 of the 178x218 images), bilinear resize to 64^2. Sampling as DDIM's
code: 100 steps, uniform skip (diffusers' "leading" spacing), eta 0, no x0 clipping (--clip-sample 0; every run
records clip_sample).

Where this differs from the authors' DDPM runs: their U-Net is DDIM's own Model; here it is diffusers' UNet2DModel
holding the converted weights (equal outputs). Their pruner is a copy of torch-pruning vendored in their repo; here
torch-pruning 1.6's dependency graph and importance with the channel counts their copy gives (1.6 counts per norm
group and would leave one-channel-per-group layers unpruned), sizes equal to 0.1 %. Which entry of DDIM's checkpoint
they distilled from is not certain (--teacher-weights). Their no-KD and "Ours" paths crash as released (PAPER.md);
here every method runs. The paper preset (CIFAR-10) is not in their Table 1: it applies their recipe to the public
CIFAR-10 teacher with Diff-Pruning's CIFAR-10 schedule. The tiny presets are a CPU demonstration at a milder ratio
(70 %), not the paper's 90 % regime.

A run writes to --out: args.json; log.csv (step, loss, diffusion, kd, coarse, fine, w, slope, intercept, the largest
pre-clip gradient norm since the row before, lr, steps/s; methods without a fit of their own log the per-(sample,
channel) LIFT fit as a probe); curves.png (those columns over the steps); eval.csv with --eval-every N (the student's
and its EMA's diffusion loss and distance to the teacher on a fixed held-out set of (x0, t, noise));
samples_STEP.png (fixed-seed EMA grids); ckpt_STEP/ (safetensors weights + training state with every process's random
state, written to a temp dir and renamed; `latest` names the newest); student/ (the EMA student, save_pretrained,
with a model card README.md: teacher, method, size, metrics with their settings, the command); metrics.json (metric,
all sampler and metric settings, sizes, all arguments). Ctrl-C finishes the step and checkpoints; --resume restores
student, EMA, optimizer, step and RNG states, skipping an unreadable newest checkpoint with a warning; batches are a
function of the step. --grad-accum N (each step's batch in N parts, one backward each: the same update with less
memory; LIFT's w and PLACE's groups are then per part, as they are per process under torchrun) and --compile 1
(torch.compile of the student in place, random ops on torch's generator as in eager mode) work in all three scripts.

FID: DDIM from the EMA student; clean-fid, default mode legacy_pytorch (= pytorch-fid, as Diff-Pruning reports);
all settings are written beside the number. The reference is always the training data's own: CIFAR-10 against
clean-fid's CIFAR-10 train statistics; an image folder (CelebA) against statistics of its own images as trained on
(same crop and size), computed once through clean-fid and cached in OUT/fid_stats.npz (or --fid-stats, which an
existing file there replaces); metrics.json names the reference. On CIFAR-10 expect a higher FID than with "quad"
spacing (the teacher: about 5.7 uniform vs 4.2 quad at 100 DDIM steps, PAPER.md). Offline, clean-fid cannot download
its Inception weights: pass --fid-inception FILE (copied to where clean-fid looks:
<system temp>/inception-2015-12-05.pt for clean/legacy_tensorflow, torch hub's
checkpoints/pt_inception-2015-12-05-6726825d.pth for legacy_pytorch);
without it the run still ends with metrics.json, fid null and the reason. On the embedded shapes the metric is
shape-FD (metrics.py; not an FID), with the teacher's, from the same sampler and sample count, written beside it.
"""
import argparse
import math
import os
import shutil

import torch

from common import (FEATURE_KD, add_training_args, antithetic_timesteps, apply_preset, autocast, backward,
                    check_flags, clip_gradients, CSVLog, diffusion_loss, ema_update, end_step, fail, fid_or_null,
                    kd_loss, micro_batches, random_flip, finish_run, resume_or_start, save_grid, set_lr,
                    setup_device, start_loop, start_run, student_and_ema, teacher_prediction)
from data import CELEBA_CROP, batch_indices, is_cifar10, load_images, make_shapes, to_model_range
from lift import outkd_loss
from metrics import (cached_reference, ddim_sample, fid, load_classifier, read_samples, reference_stats,
                     shape_metrics, weights_digest, write_samples)
from models import (LoadError, count_macs, count_params, load_ddim_checkpoint, load_pretrained, load_unet, percent,
                    prune_unet, set_dropout, unet_feature_layers, width_student)
from place import check_group_size

HERE = os.path.dirname(os.path.abspath(__file__))
# The DDPM schedule both teachers were trained with (Ho et al. 2020): 1000 steps, linear betas 1e-4 .. 0.02.
# clip_sample (x0 clipped to [-1, 1] while sampling) is --clip-sample: google/ddpm-cifar10-32's scheduler config
# clips; the DDIM code that trained and samples the CelebA teacher does not.
DDPM_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                     prediction_type="epsilon", clip_sample=True, variance_type="fixed_small")
EVAL_COLUMNS = ["step", "diffusion", "teacher_dist", "ema_diffusion", "ema_teacher_dist"]   # OUT/eval.csv
FITNET_WEIGHT = 1e-6     # the authors' weight of FitNet beside an output loss (outkd+featkd, and their "Ours")
# The authors' fine-tuning of pruned students (PAPER.md; Diff_Pruning_EXP/configs/celeba.yml and runners/diffusion.py):
# 90 % pruned by Taylor importance, Adam 2e-4, EMA 0.9999 without warm-up, dropout 0.1, flip, antithetic timesteps,
# LIFT + PLACE + 1e-6 FitNet; sampler and metric of Table 1: 100 DDIM steps (eta 0, uniform skip), FID on 50k samples.
PAPER_RECIPE = dict(prune_ratio=0.9, taylor_t_stride=1, taylor_batch=64, bf16_teacher=0, lr=2e-4, ema=0.9999,
                    ema_warmup=0, dropout=0.1, flip=1, antithetic=1,
                    place_fitnet=1, log_every=100, fid_samples=50_000, ddim_steps=100, eval_teacher=0)
PRESETS = {
    # CIFAR-10 (Diff-Pruning's CIFAR-10 fine-tuning: batch 128, 100k steps)
    "paper": dict(PAPER_RECIPE, teacher="google/ddpm-cifar10-32", steps=100_000, batch_size=128, sample_every=5000,
                  ckpt_every=5000, clip_sample=1, crop="center", n_embedded=50_000),
    # CelebA-64, the paper's Table 1 (celeba.yml: batch 96; ~500k steps at 90 %); --teacher is DDIM's checkpoint
    "celeba": dict(PAPER_RECIPE, steps=500_000, batch_size=96, sample_every=10_000, ckpt_every=10_000, clip_sample=0,
                   crop="celeba", n_embedded=0),
    # offline on CPU within 10 minutes: the shipped tiny teacher, its 70 % Taylor-pruned student
    # (assets/tiny_unet_pruned70, made by the command in the README), the embedded shapes; the authors' flip,
    # antithetic t and dropout; lr and EMA scaled to 1500 steps; no FitNet term (its hooks cost CPU time); the
    # teacher's forward in bf16 (about half its fp32 time on this CPU)
    "tiny": dict(teacher=os.path.join(HERE, "assets", "tiny_unet"), student_init=os.path.join(HERE, "assets",
                 "tiny_unet_pruned70"), taylor_t_stride=10, taylor_batch=64, steps=1500, batch_size=64, lr=1e-3,
                 ema=0.999, ema_warmup=1, dropout=0.1, flip=1, antithetic=1, place_fitnet=0, bf16_teacher=1,
                 log_every=25, sample_every=500, ckpt_every=500, fid_samples=1000, ddim_steps=50, clip_sample=1,
                 crop="center", n_embedded=20_000, eval_teacher=1),
    "smoke": dict(teacher=os.path.join(HERE, "assets", "tiny_unet"), student_init=os.path.join(HERE, "assets",
                  "tiny_unet_pruned70"), taylor_t_stride=250, taylor_batch=8, steps=4, batch_size=8, lr=1e-3,
                  ema=0.999, ema_warmup=1, dropout=0.1, flip=1, antithetic=1, place_fitnet=0, bf16_teacher=1,
                  log_every=1, sample_every=2, ckpt_every=2, fid_samples=16, ddim_steps=4, clip_sample=1,
                  crop="center", n_embedded=256, eval_teacher=1),
}


def load_teacher(args, device):
    """The frozen teacher: ermongroup/ddim's checkpoint (a .pth/.ckpt file) or a diffusers UNet2DModel (hub id, dir)."""
    if os.path.isfile(args.teacher):
        teacher = load_ddim_checkpoint(args.teacher, args.teacher_weights)
    else:
        teacher = load_unet(args.teacher)
    return teacher.to(device).requires_grad_(False).eval()


def teacher_or_config(args, device):
    """(the frozen teacher or None, its config): the teacher is loaded only where something needs it (KD, pruning,
    --eval-every); a student trained alone (--kd none) needs only its config."""
    from diffusers import UNet2DModel
    if args.kd != "none" or args.prune_ratio is not None or args.eval_every > 0:
        teacher = load_teacher(args, device)
        return teacher, dict(teacher.config)
    return None, load_pretrained(UNet2DModel, args.teacher, subfolder="unet", config_only=True)


def make_student(args, teacher, teacher_config, images, rank, world, device):
    """The student: the teacher pruned by --prune-ratio (the paper's; made once on rank 0 and kept in
    OUT/pruned_init, which every rank and a resumed run load), a saved one (--student-init), or the teacher's
    architecture narrowed by --student-width."""
    if args.student_init:
        return set_dropout(load_unet(args.student_init), args.dropout)
    if args.prune_ratio is None:
        return width_student(teacher_config, args.student_width, args.dropout)
    init = os.path.join(args.out, "pruned_init")
    if rank == 0 and not os.path.exists(os.path.join(init, "config.json")):
        from diffusers import DDPMScheduler
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))[:args.taylor_batch]
        x0 = to_model_range(images[pick]).to(device)               # one batch of training images (Diff-Pruning: 64)
        print(f"pruning {args.prune_ratio:.0%} of the teacher by {args.prune_importance} importance"
              + (f" (t stride {args.taylor_t_stride}, {len(x0)} images)" if args.prune_importance == "taylor" else ""))
        student = prune_unet(teacher, args.prune_ratio, args.prune_importance, x0,
                             DDPMScheduler(**DDPM_SCHEDULE).alphas_cumprod, args.taylor_t_stride, args.seed)
        student.save_pretrained(init + ".tmp")
        shutil.rmtree(init, ignore_errors=True)      # a folder left without its config by an earlier crash
        os.replace(init + ".tmp", init)
    if world > 1:
        torch.distributed.barrier()
    return set_dropout(load_unet(init), args.dropout)


def student_sizes(student, teacher, teacher_config, example, rank):
    """The student's parameters, MACs per image (one forward pass of example) and share of the teacher, for
    metrics.json; rank 0 prints them, with a warning when the student is too narrow to represent per-pixel noise."""
    from diffusers import UNet2DModel
    teacher_params = count_params(teacher if teacher is not None else UNet2DModel.from_config(teacher_config))
    sizes = dict(student_params=count_params(student), teacher_params=teacher_params,
                 student_macs=count_macs(student, *example[0]),
                 percent_of_teacher=percent(count_params(student), teacher_params))
    if rank == 0:
        print(f"student {sizes['student_params'] / 1e6:.3f} M parameters ({sizes['percent_of_teacher']} % of the "
              f"teacher's {teacher_params / 1e6:.3f} M), {sizes['student_macs'] / 1e9:.3f} G MACs per image")
        width, channels = student.conv_in.out_channels, student.conv_in.in_channels
        if width < channels:                          # 2 x H x W numbers cannot hold 3 x H x W of noise
            print(f"warning: the student's full-resolution blocks have {width} channels, fewer than the image's "
                  f"{channels}: it cannot represent per-pixel noise, and its samples stay noisy (README, study)")
    return sizes


HELDOUT_SEED = 999_983          # the --eval-every set: shapes drawn with this seed are in no training set or reference


def heldout_set(args, images, size, n=256):
    """The fixed (x0, t, noise) of --eval-every: n fresh embedded images (held out), or n fixed training images on
    real data; t uniform, noise Gaussian, from their own generator (the run's random stream is untouched)."""
    g = torch.Generator().manual_seed(HELDOUT_SEED)
    x0 = (make_shapes(n, HELDOUT_SEED, size)[0] if args.data_dir is None
          else images[torch.randperm(len(images), generator=g)[:n]])
    x0 = to_model_range(x0)
    return (x0, torch.randint(0, DDPM_SCHEDULE["num_train_timesteps"], (n,), generator=g),
            torch.randn(x0.shape, generator=g))


@torch.no_grad()
def heldout_losses(unet, xt, t, noise, eps_teacher, reduction, batch=128):
    """(diffusion loss, distance to the teacher's prediction) of unet on the fixed set, on the training loss scale."""
    was_training = unet.training
    eps = torch.cat([unet.eval()(xt[i:i + batch], t[i:i + batch]).sample for i in range(0, len(xt), batch)])
    unet.train(was_training)
    return diffusion_loss(eps, noise, reduction).item(), outkd_loss(eps, eps_teacher, reduction=reduction).loss.item()


def heldout_evaluation(args, images, size, teacher, alphas, model, ema, start, device):
    """(evaluate(step), the teacher's diffusion loss) of --eval-every, on rank 0: the fixed held-out (x_t, t, noise)
    and the teacher's predictions there, made once; evaluate writes the student's and its EMA's diffusion loss and
    distance to the teacher to OUT/eval.csv (run here for step 0 of a fresh run)."""
    x0, t, noise = (v.to(device) for v in heldout_set(args, images, size))
    a = alphas[t].view(-1, 1, 1, 1)
    held = dict(xt=a.sqrt() * x0 + (1 - a).sqrt() * noise, t=t, noise=noise, reduction=args.loss_scale)
    with torch.no_grad():
        held["eps_teacher"] = torch.cat([teacher(held["xt"][i:i + 128], t[i:i + 128]).sample
                                         for i in range(0, len(t), 128)])
    eval_log = CSVLog(os.path.join(args.out, "eval.csv"), EVAL_COLUMNS, start, args.tracker, prefix="heldout")

    def evaluate_heldout(step):
        d, td = heldout_losses(model.student, **held)
        ema_d, ema_td = heldout_losses(ema.student, **held)
        eval_log.write(dict(step=step, diffusion=f"{d:.6g}", teacher_dist=f"{td:.6g}", ema_diffusion=f"{ema_d:.6g}",
                            ema_teacher_dist=f"{ema_td:.6g}"))
    if start == 0:
        evaluate_heldout(0)
    return evaluate_heldout, diffusion_loss(held["eps_teacher"], noise, args.loss_scale).item()


def fid_reference(args, images, device):
    """(statistics .npz or None for clean-fid's CIFAR-10 train statistics, what the reference is): never another
    dataset's statistics; an image folder's are computed from its images as trained on, once."""
    if args.fid_stats and os.path.isfile(args.fid_stats):
        return args.fid_stats, f"{args.fid_stats} (given)"
    if args.data_dir is not None and is_cifar10(args.data_dir) and not args.fid_stats:
        return None, "CIFAR-10 train (clean-fid's statistics)"
    source = os.path.abspath(args.data_dir) if args.data_dir else "the embedded shapes"
    about = f"{len(images)} images of {source}, {args.crop} crop, {images.shape[-1]}px"
    path = reference_stats(images, args.fid_stats or os.path.join(args.out, "fid_stats.npz"), about, args.fid_mode,
                           args.fid_inception, device=str(device))
    return path, f"{about} (statistics in {path})"


def evaluate(args, unet, schedule, images, device, n, rank=0, world=1, name="student"):
    """Metrics of n DDIM samples from unet, made by every rank into OUT/fid_samples/NAME/ (PNG files, the same for
    any number of processes): FID (clean-fid) on real data, shape-FD + accuracy on the embedded set. Rank 0 returns
    them, the other ranks None."""
    settings = dict(sampler="DDIM", ddim_steps=args.ddim_steps, eta=args.eta, timestep_spacing="leading",
                    clip_sample=schedule["clip_sample"], n_samples=n, sample_seed=args.seed)

    def generate(first, b):                          # sample j draws its noise from its own generator
        return ddim_sample(unet, schedule, b, args.ddim_steps, args.eta, seed=args.seed, device=device, first=first)
    paths = write_samples(generate, n, os.path.join(args.out, "fid_samples", name),
                          dict(settings, weights=weights_digest(unet)), rank, world)
    if rank != 0:
        return None
    if args.data_dir is None and not args.fid_stats:
        return dict(settings, **shape_metrics(read_samples(paths), load_classifier(device=device)))
    reference = {}

    def compute():
        stats, reference["fid_reference"] = fid_reference(args, images, device)
        return fid(paths, mode=args.fid_mode, stats=stats, inception=args.fid_inception, device=str(device))
    return dict(settings, **fid_or_null(compute, args.fid_mode), **reference)


def teacher_metrics(args, teacher, schedule, images, device, rank, world):
    """The teacher's metric under the student's protocol (--eval-teacher 1): its FID on real data; offline its
    shape-FD, read from TEACHER/reference_metrics.json when measured with these settings (the shipped teacher's)."""
    if args.data_dir is not None or args.fid_stats:
        m = evaluate(args, teacher, schedule, images, device, args.fid_samples, rank, world, "teacher")
        return m and dict(teacher_fid=m["fid"])
    settings = dict(ddim_steps=args.ddim_steps, eta=args.eta, clip_sample=schedule["clip_sample"],
                    n_samples=args.fid_samples, sample_seed=args.seed)
    m = cached_reference(args.teacher, teacher, settings,
                         lambda: evaluate(args, teacher, schedule, images, device, args.fid_samples, rank, world,
                                          "teacher"))
    return m and dict(teacher_shape_fd=m["shape_fd"])


def sample_only(args):
    """--sample-from DIR: load a saved student (or any UNet2DModel) and write a grid of DDIM samples."""
    _, _, device = setup_device(args.device)
    unet = load_unet(args.sample_from).to(device)
    schedule = dict(DDPM_SCHEDULE, clip_sample=bool(args.clip_sample))
    samples = ddim_sample(unet, schedule, args.n_samples, args.ddim_steps, args.eta, seed=args.seed, device=device)
    os.makedirs(args.out, exist_ok=True)
    save_grid(to_model_range(samples), os.path.join(args.out, "samples.png"), nrow=int(math.sqrt(len(samples))) or 1)
    print(f"wrote {len(samples)} samples to {os.path.join(args.out, 'samples.png')}")


def main(args):
    from diffusers import DDPMScheduler
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)
    schedule = dict(DDPM_SCHEDULE, clip_sample=bool(args.clip_sample))

    # ---- teacher (frozen), data, student, EMA
    teacher, teacher_config = teacher_or_config(args, device)
    size = teacher_config["sample_size"]
    crop = CELEBA_CROP if args.crop == "celeba" else None
    images, _ = load_images(args.data_dir, size, args.n_embedded, seed=args.seed, crop=crop)    # the teacher's size
    if args.kd == "place":
        check_group_size(size * size, args.group_size)
    student = make_student(args, teacher, teacher_config, images, rank, world, device).to(device)
    example = ((torch.zeros(1, 3, size, size, device=device), torch.zeros(1, device=device, dtype=torch.long)), {})
    feature_kd = args.kd in FEATURE_KD or (args.kd == "place" and args.place_fitnet)    # FitNet, as the authors'
    layers = (unet_feature_layers(student), unet_feature_layers(teacher)) if feature_kd else None
    model, ema, teacher_hooks = student_and_ema(args, student, teacher, example, layers, fitnet=True)
    sizes = student_sizes(student, teacher, teacher_config, example, rank)

    # ---- optimizer, resume, the held-out set
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)      # betas (0.9, 0.999), eps 1e-8: the authors'
    start, train_model = resume_or_start(args, model, ema, optimizer, rank, world, device)
    T, alphas = DDPM_SCHEDULE["num_train_timesteps"], DDPMScheduler(**DDPM_SCHEDULE).alphas_cumprod.to(device)
    heldout, teacher_heldout = (heldout_evaluation(args, images, size, teacher, alphas, model, ema, start, device)
                                if rank == 0 and args.eval_every else (None, None))
    student_autocast, teacher_autocast = autocast(device), autocast(device, cpu=bool(args.bf16_teacher))

    # ---- training loop
    grid = lambda: ddim_sample(ema.student, schedule, 64, args.ddim_steps, args.eta, seed=0, device=device)
    loop = start_loop(args, start, rank, world, device, model, ema, optimizer, grid, heldout)
    for step in loop.bar:
        idx = batch_indices(len(images), args.batch_size, step, args.seed, rank, world)
        x0 = to_model_range(images[idx]).to(device)
        x0 = random_flip(x0) if args.flip else x0
        noise = torch.randn_like(x0)
        if args.antithetic:                          # the authors': t and T - 1 - t in pairs
            t = antithetic_timesteps(len(x0), T, device)
        else:
            t = torch.randint(0, T, (len(x0),), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise                          # q(x_t | x_0), DDPM Eq. 4
        optimizer.zero_grad(set_to_none=True)
        for xt, t, noise in micro_batches(train_model, args.grad_accum, xt, t, noise):   # --grad-accum parts
            with student_autocast:
                eps_s, feats_s = train_model(xt, t)
                with teacher_autocast:
                    eps_t, feats_t = teacher_prediction(args, teacher, teacher_hooks, xt, t)
            diffusion = diffusion_loss(eps_s, noise, args.loss_scale)        # L_simple, on the KD losses' scale
            kd, fit = kd_loss(args, eps_s, eps_t, feats_s, feats_t, FITNET_WEIGHT)
            loss = diffusion + args.kd_weight * kd
            backward(loss, args, step)
        grad_norm = clip_gradients(model, args)
        set_lr(optimizer, args, step)
        optimizer.step()
        ema_update(ema, model, args.ema, step, warmup=bool(args.ema_warmup))
        end_step(loop, step, grad_norm, loss, diffusion, kd, fit, eps_s, eps_t)   # log, eval, grid, checkpoint

    # ---- final save and evaluation
    metrics = dict(method=args.kd, steps=args.steps, **sizes)
    if args.eval_every:                              # the teacher's own diffusion loss on the --eval-every set
        metrics["heldout_teacher_diffusion"] = teacher_heldout

    def evaluations():                               # the student's metrics, then (--eval-teacher 1) the teacher's
        m = evaluate(args, ema.student, schedule, images, device, args.fid_samples, rank, world) or {}
        if args.eval_teacher and teacher is not None:
            m.update(teacher_metrics(args, teacher, schedule, images, device, rank, world) or {})
        return m
    finish_run(args, rank, world, ema.student, metrics, evaluations)


def _check(args):
    """Flags out of range, the shared ones and the U-Net's: one line naming the flag and its range, exit 2."""
    check_flags(args, [("prune_ratio", lambda v: 0 < v < 1, "in (0, 1)"), ("student_width", lambda v: v > 0, "> 0"),
                       ("taylor_t_stride", lambda v: v >= 1, ">= 1"), ("taylor_batch", lambda v: v >= 1, ">= 1"),
                       ("ddim_steps", lambda v: v >= 1, ">= 1"), ("dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
                       ("eval_every", lambda v: v >= 0, ">= 0")])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of a DDPM U-Net (paper Table 1 setting).")
    add_training_args(parser, teacher_help="hub id or directory of a UNet2DModel (or a pipeline holding one), or "
                      "ermongroup/ddim's CelebA-64 checkpoint file (.pth)", presets=PRESETS)
    parser.set_defaults(out="runs/unet")
    add = parser.add_argument
    student = parser.add_mutually_exclusive_group()
    student.add_argument("--prune-ratio", type=float, help="the paper's students: prune this share of the teacher's "
                         "channels (Diff-Pruning; paper presets: 0.9)")
    student.add_argument("--student-init", help="a saved student directory to start from (e.g. a pruned one; tiny "
                         "presets: assets/tiny_unet_pruned70)")
    student.add_argument("--student-width", type=float, help="instead a random-init copy with every width scaled "
                         "(NOT the paper's)")
    add("--prune-importance", choices=["taylor", "magnitude"], default="taylor",
        help="taylor: |w * dL/dw| (the paper's pruner), magnitude: Diff-Pruning's baseline")
    add("--taylor-t-stride", type=int, help="Taylor pass over t = 0, s, 2s, ... (1: all 1000, the paper)")
    add("--taylor-batch", type=int, help="training images in the Taylor pass (Diff-Pruning: 64)")
    add("--teacher-weights", choices=["ema", "model"], default="ema",
        help="entry of a DDIM checkpoint list: ema (what DDIM samples with and the authors pruned) or the raw model")
    add("--crop", choices=["center", "celeba"], help="image-folder preprocessing: centre crop, or DDIM's CelebA box")
    add("--flip", type=int, choices=[0, 1], help="random horizontal flip of training images")
    add("--antithetic", type=int, choices=[0, 1], help="timesteps in pairs (t, T - 1 - t), as the authors draw them")
    add("--ema-warmup", type=int, choices=[0, 1], help="EMA decay warm-up (0: the authors' plain 0.9999 from step 0)")
    add("--place-fitnet", type=int, choices=[0, 1],
        help=f"--kd place adds FitNet x {FITNET_WEIGHT:g} (the authors' Ours)")
    add("--dropout", type=float)
    add("--bf16-teacher", type=int, choices=[0, 1], help="the teacher's forward in bf16 autocast on the CPU too "
        "(on a GPU always)")
    add("--ddim-steps", type=int, help="DDIM sampling steps (paper: 100)")
    add("--eta", type=float, default=0.0, help="DDIM eta (paper: 0)")
    add("--clip-sample", type=int, choices=[0, 1], help="clip x0 to [-1, 1] while sampling (CelebA's DDIM code: no)")
    add("--eval-every", type=int, default=0, help="every N steps (and at step 0) write the student's and its EMA's "
        "diffusion loss and distance to the teacher on a fixed held-out set of (x0, t, noise) to OUT/eval.csv")
    add("--sample-from", help="only sample: a saved student directory; writes OUT/samples.png")
    add("--n-samples", type=int, default=64, help="with --sample-from")
    args = parser.parse_args(argv)
    if args.sample_from:
        args.ddim_steps = args.ddim_steps or 100
        args.clip_sample = 1 if args.clip_sample is None else args.clip_sample
        return args
    kinds = ("prune_ratio", "student_init", "student_width")   # one kind of student: the one given, else the preset's
    given = [k for k in kinds if getattr(args, k) is not None]
    apply_preset(args, PRESETS)
    for k in kinds:
        if given and k not in given:
            setattr(args, k, None)
    _check(args)
    if args.preset in ("paper", "celeba") and args.data_dir is None:
        fail(f"--preset {args.preset} trains on real data: pass --data-dir "
             + ("cifar-10-python.tar.gz" if args.preset == "paper" else "img_align_celeba/") + " (or --preset tiny)")
    if args.teacher is None:
        fail("--preset celeba needs --teacher: ermongroup/ddim's CelebA-64 checkpoint (ckpt.pth) or its converted dir")
    return args


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:            # bad input (DataError is a ValueError): one line, exit 2
        fail(str(e))
