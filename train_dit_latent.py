"""Distil a latent DiT into a shallower one with LIFT + PLACE (or a baseline KD method).

The paper's DiT setting (Han, Yeo, Yoo, "LIFT and PLACE", CVPR 2026): teacher DiT-XL/2 (ImageNet 256, latent,
class-conditional, learned variance; 675 M parameters); students keep 14, 7 or 4 of its 28 blocks, evenly spaced
and initialised from them, as TinyFusion's uniform choice (340.5 M, 173.1 M, 101.4 M parameters).

    # offline, CPU, about 8 minutes: tiny shipped DiT teacher, 2 of its 8 blocks, embedded shapes, pixel_unshuffle
    python train_dit_latent.py --preset tiny --out runs/dit_tiny
    # the paper setting on GPUs: ImageNet folder of class sub-folders, latents encoded once and cached
    torchrun --nproc_per_node 8 train_dit_latent.py --preset paper --student-depth 14 --data-dir imagenet/train \
        --latent-cache imagenet256_latents.npy --fid-stats VIRTUAL_imagenet256_labeled.npz --out runs/dit_d14
    # sample a class-conditional grid from a saved student
    python train_dit_latent.py --sample-from runs/dit_tiny/student --vae pixel-unshuffle --out runs/dit_grid
    # re-train the shipped tiny teacher from its config (all 8 blocks, no KD): from random init at a constant lr,
    # then from those weights with the lr decayed to 0 (about 3 h and 1.5 h on 1 CPU core)
    python train_dit_latent.py --preset tiny --kd none --init random --student-depth 8 --steps 35000 --lr 1e-3 \
        --out runs/dit_teacher
    python train_dit_latent.py --preset tiny --kd none --teacher runs/dit_teacher/student --student-depth 8 \
        --steps 16000 --lr 1e-3 --lr-schedule cosine --out runs/dit_teacher_cosine

Teacher: DiTTransformer2DModel from a hub id or a directory (a pipeline, or a transformer alone); VAE from --vae
(paper: stabilityai/sd-vae-ft-ema; latents * 0.18215, the VAE config's scale to unit variance). Students:
--student-depth N keeps N evenly spaced blocks starting at block 0 (TinyFusion's uniform choice), --keep-blocks 0,4,8
an explicit list; both start from those blocks, the patch embedder and the final layer. diffusers copies DiT's
timestep/class embedder into every block and conditions the final layer on block 0's copy, so keep block 0 (the
default does). Sizes counted as DiT counts them (one embedder, the fixed positional table included), checked on the
meta device: XL/2 675.1 M; D14 340.5 M, D7 173.1 M, D4 101.4 M, as TinyFusion lists.

Objective (DiT, Peebles & Xie 2023, which follows Nichol & Dhariwal 2021; 1000 steps, linear betas): the network
predicts eps and a per-element variance interpolation v. The eps half gets the simple loss ||eps - eps_S||^2 and the
KD methods; the v half is trained only by the variational bound L_vlb with eps held fixed, as DiT trains it, because
the KD methods compare predictions of noise and v is not one (the teacher's v is not distilled; the paper has no
target for it). Labels are dropped to the null class (id = number of classes) 10 % of the time for classifier-free
guidance (DiT's rate), drawn once per step outside the models, so the teacher sees exactly the student's labels
(diffusers' in-model label dropout is switched off; a test shows it would desynchronise them).

Loss scale: the paper preset weighs the terms as the authors' DiT code does (TinyFusion_EXP's training_losses_kd_rep:
0.1 (L_simple + L_vlb) + 0.9 KD, each a per-element mean, LIFT's coarse term squared, clip 1), as --loss-scale mean
--coarse l2 --kd-weight 9 --clip 10: ten times their loss with the clip scaled alike, the same Adam update. Not
reproduced: their KL term between the teachers' and students' variances, the masked feature KD (weight 1e-2 decaying
to 0) that every one of their KD runs adds, their lr 2e-4 with a cosine schedule (here DiT's 1e-4, constant) and fp16
(here bf16). The tiny presets keep --loss-scale sum.

Data: --data-dir is a folder of class sub-folders, encoded once into a float16 .npy latent cache holding each image's
latent and its mirror image's (--flip 1 in the paper preset picks one per sample, as DiT trains); the torchrun ranks
fill it together, in parts that an interrupted run keeps. Offline: the embedded shapes and, without VAE weights, the
stand-in latent space --vae pixel-unshuffle (3x32x32 images <-> 12x16x16 latents, invertible, nothing learned).

Sampling: classifier-free guidance (the learned-variance half from the conditional pass), --sampler ddpm (uses the
learned variance) or ddim. --sample-batch-size images per sampling and VAE call (paper 64; bf16 on GPU), each from
its own seeded noise, so the size changes memory, not samples. The paper preset samples as DiT's sample_ddp.py
reports FID 2.27: 250 steps spaced as its respacing (--spacing linspace), guidance 1.5 on the first 3 latent channels
only (--guided-channels 3, as its released sampler does), labels at random (--fid-labels random), 50k samples, FID in
clean-fid's legacy_tensorflow mode (the TF Inception of ADM's evaluator) against --fid-stats
VIRTUAL_imagenet256_labeled.npz. Offline: shape-FD and the class accuracy of samples (how often the shape classifier
sees the requested class).

Tiny teacher (assets/tiny_dit): 8 blocks, width 64, 0.64 M parameters (3.2 MB), trained on CPU by the two commands
above. With DDIM 50, guidance 1.5, 1000 samples: shape-FD 3.26, class accuracy 0.72 (chance 0.10;
assets/tiny_dit/reference_metrics.json); per class from 0.83-0.92 (circle, square, diamond, crescent) down to 0.40
(cross); after the first command alone, 6.17 and 0.49. The tiny preset's student is blocks 0 and 4 (192,480
parameters, 30.1 % of the teacher counted as DiT does); its measured run is in results/README.md.

Faults: Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and exits 130 (--resume goes on); without
Inception weights (offline) metrics.json gets fid null and the reason.
"""
import argparse
import math
import os

import torch

from common import (FEATURE_KD, LOG_COLUMNS, add_depth_args, add_training_args, autocast, backward, batch_latents,
                    check_depth_args, clip_gradients, depth_models, diffusion_loss, ema_update, end_step,
                    fail, fid_or_null, folder_latents, kd_loss, micro_batches, finish_run,
                    resume_or_start, save_grid, set_lr, setup_device, start_loop, start_run, student_and_ema,
                    teacher_prediction)
from data import batch_indices, list_image_folder, make_shapes, to_model_range
from metrics import (cached_reference, fid, guided_sample, load_classifier, read_samples, sample_generators,
                     shape_metrics, to_uint8, weights_digest, write_samples)
from models import (LoadError, decode_latents, dit_params, latent_image_size, load_pretrained, load_vae,
                    matched_blocks)
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
    # with the TF Inception (legacy_tensorflow) against ADM's VIRTUAL_imagenet256_labeled.npz (--fid-stats).
    # sample_batch_size 64 to fit an 80 GB GPU (an estimate, not measured): at 256^2 the
    # VAE decoder's widest activation (256 channels at full size, fp32) is 67 MB an image, so 64 images decode in under
    # 20 GB beside the ~10 GB of teacher, D14 student, EMA and AdamW state; sampling the DiT (2 x 64 sequences of 256
    # tokens) in bf16 is small.
    "paper": dict(teacher="facebook/DiT-XL-2-256", vae="stabilityai/sd-vae-ft-ema", student_depth=14, steps=500_000,
                  batch_size=256, lr=1e-4, ema=0.9999, log_every=100, sample_every=10_000, ckpt_every=10_000,
                  sampler="ddpm", sample_steps=250, guidance=1.5, fid_samples=50_000, n_embedded=50_000, eval_teacher=0,
                  flip=1, sample_batch_size=64, loss_scale="mean", coarse="l2", kd_weight=9.0, clip=10.0,
                  spacing="linspace", guided_channels=3, fid_labels="random", fid_mode="legacy_tensorflow"),
    # no flip: the tiny teacher never saw mirrored shapes
    "tiny": dict(teacher=os.path.join(HERE, "assets", "tiny_dit"), vae="pixel-unshuffle", student_depth=2, steps=1500,
                 batch_size=64, lr=1e-3, ema=0.999, log_every=25, sample_every=500, ckpt_every=500, sampler="ddim",
                 sample_steps=50, guidance=1.5, fid_samples=1000, n_embedded=20_000, eval_teacher=1, flip=0,
                 sample_batch_size=256, spacing="leading", guided_channels=0, fid_labels="balanced"),
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


def evaluate(args, model, vae, classes, device, n, rank=0, world=1, name="student"):
    """Metrics of n guided samples, made by every rank into OUT/fid_samples/NAME/ (PNG files, the same for any number
    of processes): FID (clean-fid, reference statistics from --fid-stats) on real data; offline shape-FD and class
    accuracy. Rank 0 returns them, the other ranks None."""
    settings = sampler_settings(args, n)
    labels = (torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(args.seed))
              if args.fid_labels == "random" else torch.arange(n) % classes)

    def generate(first, b):                          # sample j has label labels[j] and its own noise generator
        return sample(args, model, vae, labels[first:first + b], args.seed, device, first)
    paths = write_samples(generate, n, os.path.join(args.out, "fid_samples", name),
                          dict(settings, weights=weights_digest(model)), rank, world, args.sample_batch_size)
    if rank != 0:
        return None
    if args.data_dir is not None or args.fid_stats:
        return dict(settings, fid_reference=args.fid_stats, **fid_or_null(
            lambda: fid(paths, mode=args.fid_mode, stats=args.fid_stats, inception=args.fid_inception,
                        batch_size=args.sample_batch_size, device=str(device)), args.fid_mode))
    return dict(settings, **shape_metrics(read_samples(paths), load_classifier(device=device), labels))


def teacher_metrics(args, teacher, vae, classes, device, rank, world):
    """The teacher's metrics under the student's protocol (--eval-teacher 1): its FID on real data; offline its
    shape-FD and class accuracy, read from TEACHER/reference_metrics.json when measured with these settings."""
    if args.data_dir is not None or args.fid_stats:
        m = evaluate(args, teacher, vae, classes, device, args.fid_samples, rank, world, "teacher")
        return m and dict(teacher_fid=m["fid"])
    m = cached_reference(args.teacher, teacher, sampler_settings(args, args.fid_samples),
                         lambda: evaluate(args, teacher, vae, classes, device, args.fid_samples, rank, world,
                                          "teacher"))
    return m and dict(teacher_shape_fd=m["shape_fd"], teacher_class_accuracy=m["class_accuracy"])


def sample_only(args):
    """--sample-from DIR: a grid of guided samples from a saved DiT (one row per class)."""
    from diffusers import DiTTransformer2DModel
    _, _, device = setup_device(args.device)
    model = load_pretrained(DiTTransformer2DModel, args.sample_from, subfolder="transformer").to(device)
    vae = load_vae(args.vae).to(device)
    classes = model.config.num_embeds_ada_norm
    images = sample(args, model, vae, torch.arange(classes).repeat_interleave(8), args.seed, device)
    os.makedirs(args.out, exist_ok=True)
    save_grid(to_model_range(images), os.path.join(args.out, "samples.png"), nrow=8)
    print(f"wrote {len(images)} samples to {os.path.join(args.out, 'samples.png')}")


def training_data(args, vae, image_size, classes, rank, world, device):
    """(latents or None, images or None, labels, n): an image folder's latents, encoded once into a cache that every
    rank fills a share of, or the embedded shapes, encoded per batch."""
    if args.data_dir is not None:
        files, labels, names = list_image_folder(args.data_dir)
        if len(names) > classes:
            fail(f"{args.data_dir} has {len(names)} classes but the teacher knows {classes}")
        cache = args.latent_cache or os.path.join(args.out, "latents.npy")
        return folder_latents(args, files, vae, image_size, cache, rank, world, device), None, labels, len(files)
    images, labels, _ = make_shapes(args.n_embedded, args.seed, image_size)
    if classes < 10:
        fail(f"the embedded dataset has 10 classes but the teacher knows {classes}")
    return None, images, labels, len(images)


def main(args):
    from diffusers import DDPMScheduler, DiTTransformer2DModel
    # ---- devices, seeds, run dir
    rank, world, device = start_run(args)

    # ---- teacher (frozen), student, EMA
    teacher, student, sizes = depth_models(DiTTransformer2DModel, args, device, rank, dit_params, ", as DiT counts")
    no_internal_label_dropout(student)
    if teacher is not None:
        no_internal_label_dropout(teacher)
    cfg = student.config                             # the teacher's but for the number of blocks
    C, S, classes = cfg.in_channels, cfg.sample_size, cfg.num_embeds_ada_norm
    learned = cfg.out_channels == 2 * C                                              # eps and the variance v
    vae = load_vae(args.vae).to(device)
    image_size = latent_image_size(vae, C, S, device)
    if args.kd == "place":
        check_group_size(S * S, args.group_size)
    example = ((torch.zeros(1, C, S, S, device=device),),
               dict(timestep=torch.zeros(1, device=device, dtype=torch.long),
                    class_labels=torch.zeros(1, device=device, dtype=torch.long)))
    layers = matched_blocks(student, teacher, sizes["kept_blocks"]) if args.kd in FEATURE_KD else None
    model, ema, teacher_hooks = student_and_ema(args, student, teacher, example, layers)

    # ---- data: latents of an image folder (encoded once, cached), or the embedded shapes encoded per batch
    latents, images, labels, n_data = training_data(args, vae, image_size, classes, rank, world, device)

    # ---- optimizer, resume
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0)      # DiT: AdamW, no weight decay
    start, train_model = resume_or_start(args, model, ema, optimizer, rank, world, device)
    scheduler = DDPMScheduler(**DIT_SCHEDULE)
    T, alphas = scheduler.config.num_train_timesteps, scheduler.alphas_cumprod.to(device)
    student_autocast = autocast(device)
    D = C * S * S                                    # elements per sample: L_vlb's weight on the sum scale

    # ---- training loop
    grid_labels = torch.arange(min(classes, 8)).repeat_interleave(8)
    loop = start_loop(args, start, rank, world, device, model, ema, optimizer, columns=LOG_COLUMNS + ["vlb"],
                      grid=lambda: sample(args, ema.student, vae, grid_labels, 0, device))
    for step in loop.bar:
        idx = batch_indices(n_data, args.batch_size, step, args.seed, rank, world)
        x0 = batch_latents(args, idx, latents, images, vae, device)                  # (B, C, S, S), flipped or not
        y = drop_labels(labels[idx].to(device), classes, args.class_dropout)         # the same y for both networks
        noise = torch.randn_like(x0)
        t = torch.randint(0, T, (len(x0),), device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise                                  # q(x_t | x_0)
        optimizer.zero_grad(set_to_none=True)
        for x0, xt, t, y, noise in micro_batches(train_model, args.grad_accum, x0, xt, t, y, noise):
            with student_autocast:
                out_s, feats_s = train_model(xt, timestep=t, class_labels=y)
                eps_s = out_s[:, :C]                                                      # (B, C, S, S); rest: v
                eps_t, feats_t = teacher_prediction(args, teacher, teacher_hooks, xt, timestep=t, class_labels=y,
                                                    channels=C)
            diffusion = diffusion_loss(eps_s, noise, args.loss_scale)                    # L_simple
            vlb = vlb_loss(out_s[:, C:], eps_s, x0, xt, t, scheduler).mean() if learned else diffusion.new_zeros(())
            vlb = vlb * (D if args.loss_scale == "sum" else 1)                            # DiT's L_simple : L_vlb ratio
            kd, fit = kd_loss(args, eps_s, eps_t, feats_s, feats_t)
            loss = diffusion + vlb + args.kd_weight * kd
            backward(loss, args, step)
        grad_norm = clip_gradients(model, args)
        set_lr(optimizer, args, step)
        optimizer.step()
        ema_update(ema, model, args.ema, step)
        end_step(loop, step, grad_norm, loss, diffusion, kd, fit, eps_s, eps_t, vlb=vlb)   # log, grid, checkpoint

    # ---- final save and evaluation
    def evaluations():                               # the student's metrics, then (--eval-teacher 1) the teacher's
        m = evaluate(args, ema.student, vae, classes, device, args.fid_samples, rank, world) or {}
        if args.eval_teacher and teacher is not None:
            m.update(teacher_metrics(args, teacher, vae, classes, device, rank, world) or {})
        return m
    finish_run(args, rank, world, ema.student, dict(method=args.kd, steps=args.steps, **sizes), evaluations)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="LIFT + PLACE distillation of a latent DiT into fewer blocks.")
    add_training_args(parser, teacher_help="hub id or directory: a DiT pipeline or a DiTTransformer2DModel alone")
    parser.set_defaults(out="runs/dit")
    add_depth_args(parser, "teacher blocks (TinyFusion)", "0,4,8,12")
    parser.add_argument("--vae", help="AutoencoderKL hub id or directory, or pixel-unshuffle (the offline stand-in)")
    parser.add_argument("--latent-cache", help=".npy for the encoded --data-dir latents (default OUT/latents.npy)")
    parser.add_argument("--flip", type=int, choices=[0, 1], help="random horizontal flip of training images (DiT: 1)")
    parser.add_argument("--class-dropout", type=float, default=0.1, help="label -> null class rate (DiT: 0.1)")
    parser.add_argument("--sampler", choices=["ddpm", "ddim"], help="ddpm uses the learned variance (DiT: 250 steps)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (DiT's FID: 1.5)")
    parser.add_argument("--guided-channels", type=int, help="guide only the first N latent channels (DiT's sampler: "
                        "3 of 4; 0: all)")
    parser.add_argument("--spacing", choices=["linspace", "leading"], help="sampling timesteps (DiT's respacing: "
                        "linspace)")
    parser.add_argument("--fid-labels", choices=list(LABELS), help="class labels of the evaluation samples")
    return check_depth_args(parser.parse_args(argv), PRESETS, [("class_dropout", lambda v: 0 <= v <= 1, "in [0, 1]")])


if __name__ == "__main__":
    args = parse_args()
    try:
        sample_only(args) if args.sample_from else main(args)
    except (ValueError, LoadError) as e:
        fail(str(e))
