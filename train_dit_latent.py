"""Distil a latent DiT into a shallower one with LIFT + PLACE (or a baseline KD method).

The paper's DiT setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026): teacher DiT-XL/2 (ImageNet 256, latent,
class-conditional, learned variance; 675 M parameters); students keep 14, 7 or 4 of its 28 blocks, evenly spaced
and initialised from them, as TinyFusion's uniform choice (340.5 M, 173.1 M, 101.4 M parameters).

    # offline, CPU, a few minutes: tiny shipped DiT teacher (8 blocks), embedded shapes, the pixel_unshuffle stand-in
    python train_dit_latent.py --preset tiny --out runs/dit_tiny
    # the paper setting on GPUs: ImageNet folder of class sub-folders, latents encoded once and cached
    torchrun --nproc_per_node 8 train_dit_latent.py --preset paper --student-depth 14 --data-dir imagenet/train \
        --latent-cache imagenet256_latents.npy --fid-stats VIRTUAL_imagenet256_labeled.npz --out runs/dit_d14
    # sample a class-conditional grid from a saved student
    python train_dit_latent.py --sample-from runs/dit_tiny/student --vae pixel-unshuffle --out runs/dit_grid
    # re-train the shipped tiny teacher from its config (random init, all 8 blocks, no KD)
    python train_dit_latent.py --preset tiny --kd none --init random --student-depth 8 --steps 6000 --out runs/dit_teacher

Objective (DiT, Peebles & Xie 2023, which follows Nichol & Dhariwal 2021): the network predicts eps and a
per-element variance interpolation v. The eps half gets the simple loss ||eps - eps_S||^2 and the KD methods;
the v half is trained only by the variational bound L_vlb with eps held fixed, as DiT trains it, because the KD
methods compare predictions of noise and v is not one (the teacher's v is not distilled). Labels are dropped to the
null class 10 % of the time for classifier-free guidance (DiT's rate); the teacher sees the same dropped labels.

Data: --data-dir images are encoded once (each image and its mirror image, for --flip) into a latent cache that the
torchrun ranks fill together and an interrupted run resumes. Sampling runs --sample-batch-size images per call (bf16
on GPU), each from its own seeded noise, so the samples do not depend on that size.

Faults: Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and exits 130 (--resume goes on); without
Inception weights (offline) metrics.json gets fid null and the reason.
"""
import argparse
import copy
import math
import os
import time

import torch
from tqdm import tqdm

from common import (LOG_COLUMNS, add_training_args, apply_preset, backward, batch_latents, catch_interrupts,
                    check_fid_stats, check_flags, checkpoint_or_stop, clip_gradients, compile_in_place, CSVLog,
                    ema_update, fail, fid_or_null, inject_faults, kd_loss, load_checkpoint, log_row, micro_batches,
                    release_interrupts, report_run, save_grid, setup_device, start_run)
from data import batch_indices, cache_latents, list_image_folder, make_shapes, to_model_range
from lift import outkd_loss
from metrics import cached_reference, fid, guided_sample, load_classifier, sample_generators, shape_metrics, to_uint8
from models import (Distillee, FeatureHooks, LoadError, block_alignment, decode_latents, depth_teacher_student,
                    dit_params, encode_latents, latent_image_size, load_pretrained, load_vae, percent)
from place import check_group_size

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = {"random": "uniform at random (DiT's sample_ddp.py)", "balanced": "balanced over classes"}
# DiT's diffusion: 1000 steps, linear betas 1e-4 .. 0.02 (DiT Sec. 3, improved-diffusion's "linear" schedule).
DIT_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                    prediction_type="epsilon", clip_sample=False)
PRESETS = {
    # DiT / TinyFusion recipe: AdamW lr 1e-4, no weight decay, global batch 256, EMA 0.9999, 500k steps, random
    # horizontal flip (PAPER.md; DiT's train.py). The authors' DiT loss (TinyFusion_EXP/diffusion/gaussian_diffusion.py,
    # training_losses_kd_rep) is 0.1 (L_simple + L_vlb) + 0.9 KD, each a per-element mean, with LIFT's coarse term
    # squared (losses.py, use_l2=True), clipped at 1: here 10x that, diffusion + vlb + 9 KD clipped at 10, the same
    # update under Adam. FID as DiT's sample_ddp.py reports 2.27: 250 DDPM steps spaced as its respacing (linspace,
    # 999 -> 0), learned variance, guidance 1.5 on the first 3 latent channels, random labels, 50k samples, scored
    # with the TF Inception (legacy_tensorflow) against ADM's VIRTUAL_imagenet256_labeled.npz (--fid-stats). sample_batch_size 64 to fit an 80 GB GPU (an estimate, not measured): at 256^2 the
    # VAE decoder's widest activation (256 channels at full size, fp32) is 67 MB an image, so 64 images decode in under
    # 20 GB beside the ~10 GB of teacher, D14 student, EMA and AdamW state; sampling the DiT (2 x 64 sequences of 256
    # tokens) in bf16 is small.
    "paper": dict(teacher="facebook/DiT-XL-2-256", vae="stabilityai/sd-vae-ft-ema", student_depth=14, steps=500_000,
                  batch_size=256, lr=1e-4, ema=0.9999, log_every=100, sample_every=10_000, ckpt_every=10_000,
                  sampler="ddpm", sample_steps=250, guidance=1.5, fid_samples=50_000, n_embedded=50_000, eval_teacher=0,
                  flip=1, sample_batch_size=64, loss_scale="mean", coarse="l2", kd_weight=9.0, clip=10.0,
                  spacing="linspace", guided_channels=3, fid_labels="random", fid_mode="legacy_tensorflow"),
    "tiny": dict(teacher=os.path.join(HERE, "assets", "tiny_dit"), vae="pixel-unshuffle", student_depth=2, steps=1500,
                 batch_size=64, lr=1e-3, ema=0.999, log_every=25, sample_every=500, ckpt_every=500, sampler="ddim",
                 sample_steps=50, guidance=1.5, fid_samples=1000, n_embedded=20_000, eval_teacher=1, flip=0,
                 sample_batch_size=256, spacing="leading", guided_channels=0, fid_labels="balanced"),                  # no flip: the tiny teacher never saw mirrored shapes
    "smoke": dict(teacher=os.path.join(HERE, "assets", "tiny_dit"), vae="pixel-unshuffle", student_depth=2, steps=4,
                  batch_size=8, lr=1e-3, ema=0.999, log_every=1, sample_every=2, ckpt_every=2, sampler="ddim",
                  sample_steps=4, guidance=1.5, fid_samples=16, n_embedded=256, eval_teacher=0, flip=0,
                  sample_batch_size=256, spacing="leading", guided_channels=0, fid_labels="balanced"),
}


def vlb_loss(v, eps, x0, xt, t, scheduler):
    """DiT's L_vlb per sample, in bits per dimension: KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), and at t = 0 the
    discretised decoder NLL (Nichol & Dhariwal 2021, Eq. 4-5, 15). eps is held fixed, so only v learns from it.
    The model's log-variance interpolates log beta_t and the clipped posterior log-variance with (v + 1) / 2."""
    f64 = lambda a: a.to(torch.float64)
    betas, ac = f64(scheduler.betas), f64(scheduler.alphas_cumprod)
    ac_prev = torch.cat([ac.new_ones(1), ac[:-1]])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    post_logvar = torch.log(torch.cat([post_var[1:2], post_var[1:]]))          # clipped: post_var[0] is 0
    coef1, coef2 = betas * ac_prev.sqrt() / (1 - ac), (1 - ac_prev) * (1 - betas).sqrt() / (1 - ac)
    view = lambda a: a.to(v.device)[t.to(v.device)].view(-1, *[1] * (x0.dim() - 1))
    x0, xt, eps = x0.float(), xt.float(), eps.detach().float()
    x0_pred = (xt - view((1 - ac).sqrt()) * eps) / view(ac.sqrt())
    mean_true, mean_model = view(coef1) * x0 + view(coef2) * xt, view(coef1) * x0_pred + view(coef2) * xt
    frac = (v.float() + 1) / 2
    logvar_model = frac * view(betas.log()) + (1 - frac) * view(post_logvar)
    logvar_true = view(post_logvar)
    kl = 0.5 * (-1 + logvar_model - logvar_true + torch.exp(logvar_true - logvar_model)
                + (mean_true - mean_model) ** 2 * torch.exp(-logvar_model))
    inv_std, delta = torch.exp(-0.5 * logvar_model), 1 / 255                     # decoder: bins of width 2/255
    cdf_plus = torch.special.ndtr(inv_std * (x0 - mean_model + delta))
    cdf_min = torch.special.ndtr(inv_std * (x0 - mean_model - delta))
    log_p = torch.where(x0 < -0.999, cdf_plus.clamp(min=1e-12).log(),
                        torch.where(x0 > 0.999, (1 - cdf_min).clamp(min=1e-12).log(),
                                    (cdf_plus - cdf_min).clamp(min=1e-12).log()))
    per_dim = torch.where(view(torch.arange(len(betas))) == 0, -log_p, kl) / math.log(2)
    return per_dim.flatten(1).mean(1)                                            # (B,)


def drop_labels(y, null_class, p, generator=None):
    """Classifier-free guidance dropout: each label becomes the null class with probability p."""
    drop = torch.rand(len(y), generator=generator, device="cpu").to(y.device) < p
    return torch.where(drop, torch.full_like(y, null_class), y)


def no_internal_label_dropout(model):
    """diffusers' DiT drops labels inside its embedder in train mode; we drop them once, outside, for student and
    teacher alike, so switch the internal dropout off (the null-class row of the table stays)."""
    for block in model.transformer_blocks:
        block.norm1.emb.class_embedder.dropout_prob = 0.0
    return model


def make_scheduler(args, learned_variance):
    """The sampler: DDPM (DiT's 250 steps; uses the learned variance) or DDIM (eta 0; ignores it), its timesteps
    spaced by --spacing (linspace: 999 -> 0 as DiT's respacing; leading: 1000 // steps apart from 0)."""
    from diffusers import DDIMScheduler, DDPMScheduler
    if args.sampler == "ddpm":
        return DDPMScheduler(**DIT_SCHEDULE, variance_type="learned_range" if learned_variance else "fixed_small",
                             timestep_spacing=args.spacing)
    return DDIMScheduler(**DIT_SCHEDULE, timestep_spacing=args.spacing)


@torch.no_grad()
def sample(args, model, vae, labels, seed, device, first=0):
    """uint8 images for the given class labels: guided sampling in latent space (bf16 autocast on GPU), then the VAE
    (or stand-in) decoder, --sample-batch-size at a time. Sample j draws its noise from its own generator (seed,
    first + j), so the images do not depend on the batch size."""
    cfg = model.config
    learned = cfg.out_channels == 2 * cfg.in_channels
    null = torch.full((1,), cfg.num_embeds_ada_norm, device=device, dtype=torch.long)   # null class id = num classes
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(labels), args.sample_batch_size):
        y = labels[i:i + args.sample_batch_size].to(device)
        y2 = torch.cat([y, null.expand(len(y))])                                       # (conditional; unconditional)

        def predict(x, t):
            with autocast:
                pred = model(x, timestep=t.expand(len(x)).to(device), class_labels=y2).sample
            return pred if (args.sampler == "ddpm" and learned) else pred[:, :cfg.in_channels]
        z = guided_sample(predict, make_scheduler(args, learned), sample_generators(seed, first + i, len(y)),
                           (len(y), cfg.in_channels, cfg.sample_size, cfg.sample_size), args.sample_steps,
                           args.guidance, guided_channels=args.guided_channels or cfg.in_channels, device=device)
        out.append(to_uint8(decode_latents(vae, z)))                               # one VAE call per batch
    model.train(was_training)
    return torch.cat(out)


def sampler_settings(args, n):
    """How the evaluation samples are drawn, written beside every number (and the key of a cached teacher value)."""
    return dict(sampler=args.sampler, sample_steps=args.sample_steps, spacing=args.spacing, guidance=args.guidance,
                guided_channels=args.guided_channels or "all", n_samples=n, sample_seed=args.seed,
                noise="one generator per sample", labels=LABELS[args.fid_labels])


def evaluate(args, model, vae, classes, device, n):
    """FID (clean-fid, reference statistics from --fid-stats) on real data; offline: shape-FD and class accuracy."""
    settings = sampler_settings(args, n)
    labels = (torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(args.seed))
              if args.fid_labels == "random" else torch.arange(n) % classes)
    if args.data_dir is not None or args.fid_stats:
        made = [0]                                   # images generated so far: image j has label labels[j]

        def generate(b):
            first, made[0] = made[0], made[0] + b
            y = labels[first:first + b]
            return sample(args, model, vae, y, args.seed, device, first).to(device)
        return dict(settings, **fid_or_null(lambda: fid(generate, n, mode=args.fid_mode, stats=args.fid_stats,
                                                        inception=args.fid_inception, batch_size=args.sample_batch_size,
                                                        device=str(device)), args.fid_mode))
    images = sample(args, model, vae, labels, args.seed, device)
    return dict(settings, **shape_metrics(images, load_classifier(device=device), labels))


def sample_only(args):
    """--sample-from DIR: a grid of guided samples from a saved DiT (one row per class)."""
    from diffusers import DiTTransformer2DModel
    device = setup_device(args.device)[2]
    model = load_pretrained(DiTTransformer2DModel, args.sample_from, subfolder="transformer").to(device)
    vae = load_vae(args.vae).to(device)
    classes = model.config.num_embeds_ada_norm
    images = sample(args, model, vae, torch.arange(classes).repeat_interleave(8), args.seed, device)
    os.makedirs(args.out, exist_ok=True)
    save_grid(to_model_range(images), os.path.join(args.out, "samples.png"), nrow=8)
    print(f"wrote {len(images)} samples to {os.path.join(args.out, 'samples.png')}")


def main(args):
    from diffusers import DDPMScheduler, DiTTransformer2DModel
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)

    # ---- teacher (frozen), student, EMA
    teacher, student, keep = depth_teacher_student(DiTTransformer2DModel, args, device)
    no_internal_label_dropout(teacher)
    no_internal_label_dropout(student)
    cfg, depth = teacher.config, teacher.config.num_layers
    teacher_params = dit_params(teacher)
    if args.kd == "none" and args.init == "random":
        teacher = None                                # only its config was needed
    vae = load_vae(args.vae).to(device)
    C, S = cfg.in_channels, cfg.sample_size
    image_size = latent_image_size(vae, C, S, device)
    check_group_size(S * S, args.group_size) if args.kd == "place" else None
    classes, learned = cfg.num_embeds_ada_norm, cfg.out_channels == 2 * C
    feature_kd = "featkd" in args.kd
    example = ((torch.zeros(1, C, S, S, device=device),),
               dict(timestep=torch.zeros(1, device=device, dtype=torch.long),
                    class_labels=torch.zeros(1, device=device, dtype=torch.long)))
    teacher_hooks = None
    if feature_kd:                                   # student block j <-> the teacher block before the next kept one
        teacher_hooks = FeatureHooks([teacher.transformer_blocks[i] for i in block_alignment(keep, depth)])
        teacher(*example[0], **example[1])
    model = Distillee(student, list(student.transformer_blocks) if feature_kd else (),
                      teacher_hooks.pop() if feature_kd else None, example).to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    if args.compile:                                 # after the EMA copy, which stays eager
        compile_in_place(model)
    sizes = dict(student_params=dit_params(student), teacher_params=teacher_params, kept_blocks=keep,
                 percent_of_teacher=percent(dit_params(student), teacher_params))
    if rank == 0:
        print(f"student keeps blocks {keep} of {depth}: {sizes['student_params'] / 1e6:.3f} M parameters "
              f"({sizes['percent_of_teacher']} % of the teacher's {teacher_params / 1e6:.3f} M, counted as DiT does)")

    # ---- data: latents of an image folder (encoded once, cached), or the embedded shapes encoded per batch
    if args.data_dir is not None:
        files, all_labels, names = list_image_folder(args.data_dir)
        if len(names) > classes:
            fail(f"{args.data_dir} has {len(names)} classes but the teacher knows {classes}")
        cache = args.latent_cache or os.path.join(args.out, "latents.npy")
        encode = lambda u, g: encode_latents(vae, to_model_range(u).to(device), g, args.sample_batch_size)
        latents = cache_latents(files, image_size, encode, cache, rank, world)   # every rank encodes a share, once
        images, n_data = None, len(files)
    else:
        images, all_labels, _ = make_shapes(args.n_embedded, args.seed, image_size)
        if classes < 10:
            fail(f"the embedded dataset has 10 classes but the teacher knows {classes}")
        latents, n_data = None, len(images)

    # ---- optimizer, resume
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0)      # DiT: AdamW, no weight decay
    start = load_checkpoint(args.out, model, ema, optimizer, device) if args.resume else 0
    if rank == 0 and start:
        print(f"resumed from step {start}")
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scheduler = DDPMScheduler(**DIT_SCHEDULE)
    alphas = scheduler.alphas_cumprod.to(device)
    log = CSVLog(os.path.join(args.out, "log.csv"), LOG_COLUMNS + ["vlb"], start) if rank == 0 else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    D = C * S * S

    # ---- training loop
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, disable=rank != 0, desc=args.kd)
    busy, peak = 0.0, None
    interrupt = catch_interrupts()                   # Ctrl-C: finish the step, checkpoint, stop
    for step in bar:
        tic = time.time()
        idx = batch_indices(n_data, args.batch_size, step, args.seed, rank, world)
        x0 = batch_latents(args, idx, latents, images, vae, device)                  # (B, C, S, S), flipped or not
        y = drop_labels(all_labels[idx].to(device), classes, args.class_dropout)     # the same y for both networks
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise                                  # q(x_t | x_0)
        optimizer.zero_grad(set_to_none=True)
        for x0, xt, t, y, noise in micro_batches(train_model, args.grad_accum, x0, xt, t, y, noise):
            with autocast:
                out_s, feats_s = train_model(xt, timestep=t, class_labels=y)
                eps_s = out_s[:, :C]                                                      # (B, C, S, S); rest: v
                eps_t, feats_t = None, []
                if teacher is not None and args.kd != "none":
                    with torch.no_grad():
                        eps_t = teacher(xt, timestep=t, class_labels=y).sample[:, :C]
                        feats_t = teacher_hooks.pop() if feature_kd else []
            diffusion = outkd_loss(eps_s, noise, reduction=args.loss_scale).loss       # L_simple on the KD scale
            vlb = vlb_loss(out_s[:, C:], eps_s, x0, xt, t, scheduler).mean() if learned else diffusion.new_zeros(())
            vlb = vlb * (D if args.loss_scale == "sum" else 1)                            # DiT's L_simple : L_vlb ratio
            kd, fit = kd_loss(args, eps_s, eps_t, feats_s, feats_t) if eps_t is not None else (diffusion.new_zeros(()), None)
            loss = diffusion + vlb + args.kd_weight * kd
            backward(loss, args, step)
        peak = clip_gradients(model, args, peak)
        optimizer.step()
        ema_update(ema, model, args.ema, step)
        done, busy = step + 1, busy + time.time() - tic
        inject_faults(done)                          # the resume tests' kill or Ctrl-C, when asked for

        if rank == 0 and (done % args.log_every == 0 or done == args.steps):
            row = dict(log_row(args, done, loss, diffusion, kd, fit, eps_s, eps_t, busy, peak), vlb=vlb.item())
            log.write({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("diffusion", "vlb", "kd", "w") if k in row})
            busy, peak = 0.0, None
        if rank == 0 and done % args.sample_every == 0:
            grid = sample(args, ema.student, vae, torch.arange(min(classes, 8)).repeat_interleave(8), 0, device)
            save_grid(to_model_range(grid), os.path.join(args.out, f"samples_{done:08d}.png"))
        checkpoint_or_stop(args, done, interrupt, world, device, bar, model, ema, optimizer)

    # ---- final save and evaluation
    release_interrupts()
    if rank == 0:
        ema.student.save_pretrained(os.path.join(args.out, "student"))
        metrics = dict(method=args.kd, steps=args.steps, **sizes)
        if args.fid_samples:
            metrics.update(evaluate(args, ema.student, vae, classes, device, args.fid_samples))
            if args.eval_teacher and teacher is not None and args.data_dir is None and not args.fid_stats:
                ref = cached_reference(args.teacher, sampler_settings(args, args.fid_samples),
                                       lambda: evaluate(args, teacher, vae, classes, device, args.fid_samples))
                metrics.update(teacher_shape_fd=ref["shape_fd"], teacher_class_accuracy=ref["class_accuracy"])
        report_run(args, metrics)
    if world > 1:
        torch.distributed.destroy_process_group()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of a latent DiT into fewer blocks.")
    add_training_args(parser, teacher_help="hub id or directory: a DiT pipeline or a DiTTransformer2DModel alone")
    parser.set_defaults(out="runs/dit")
    student = parser.add_mutually_exclusive_group()
    student.add_argument("--student-depth", type=int, help="keep this many evenly spaced teacher blocks (TinyFusion)")
    student.add_argument("--keep-blocks", type=lambda s: [int(i) for i in s.split(",")],
                         help="explicit teacher blocks to keep, e.g. 0,4,8,12")
    parser.add_argument("--init", choices=["teacher", "random"], default="teacher",
                        help="student weights from the kept teacher blocks, or random (to train a teacher)")
    parser.add_argument("--vae", help="AutoencoderKL hub id or directory, or pixel-unshuffle (the offline stand-in)")
    parser.add_argument("--latent-cache", help=".npy for the encoded --data-dir latents (default OUT/latents.npy)")
    parser.add_argument("--flip", type=int, choices=[0, 1], help="random horizontal flip of training images (DiT: 1)")
    parser.add_argument("--sample-batch-size", type=int, help="images per sampling call and per VAE call (memory); "
                                                              "the samples do not depend on it")
    parser.add_argument("--class-dropout", type=float, default=0.1, help="label -> null class rate (DiT: 0.1)")
    parser.add_argument("--sampler", choices=["ddpm", "ddim"], help="ddpm uses the learned variance (DiT: 250 steps)")
    parser.add_argument("--sample-steps", type=int)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (DiT's FID: 1.5)")
    parser.add_argument("--guided-channels", type=int, help="guide only the first N latent channels (DiT's sampler: "
                        "3 of 4; 0: all)")
    parser.add_argument("--spacing", choices=["linspace", "leading"], help="sampling timesteps (DiT's respacing: "
                        "linspace)")
    parser.add_argument("--fid-labels", choices=list(LABELS), help="class labels of the evaluation samples")
    parser.add_argument("--sample-from", help="only sample: a saved student directory; writes OUT/samples.png")
    args = parser.parse_args(argv)
    apply_preset(args, PRESETS)
    if args.keep_blocks:
        args.student_depth = None
    check_flags(args, [("student_depth", lambda v: v >= 1, ">= 1"), ("sample_steps", lambda v: v >= 1, ">= 1"),
                       ("sample_batch_size", lambda v: v >= 1, ">= 1"), ("guidance", lambda v: v >= 0, ">= 0"),
                       ("class_dropout", lambda v: 0 <= v <= 1, "in [0, 1]")])
    check_fid_stats(args)
    return args


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:
        fail(str(e))
