"""Peak GPU memory and time of one SD3 distillation step at the paper preset's shapes, per student depth and batch.

    python benchmarks/bench_sd3_memory.py                          # on a GPU: the README's memory table
    python benchmarks/bench_sd3_memory.py --tiny --device cpu      # the same code on a tiny config (a CPU check)

The SD3-medium transformer is built from its config with random weights (memory and time do not depend on the
values) and held as the frozen teacher in fp32 (autocast runs it in bf16); the student keeps --depths evenly spaced
blocks (depth_student), in fp32 with gradient checkpointing, an EMA copy and AdamW: all as train_sd3.py holds them
on CUDA. One step is what a train_sd3.py step runs: the teacher's forward, the student's forward and backward under
bf16 autocast, diffusion + PLACE loss, gradient clipping, the optimizer step and the EMA update. Image 1024 x 1024 =
16 x 128 x 128 latents (4096 tokens), captions of 77 CLIP + 256 T5 tokens (333 x 4096) and a 2048-wide pooled
embedding, as SD3 encodes them.
"""
import argparse
import copy
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import ema_update  # noqa: E402
from lift import outkd_loss  # noqa: E402
from models import SD3_MEDIUM_CONFIG, count_params, depth_student, evenly_spaced  # noqa: E402
from place import place_loss  # noqa: E402

TINY_CONFIG = dict(SD3_MEDIUM_CONFIG, sample_size=16, num_layers=4, attention_head_dim=8, num_attention_heads=2,
                   joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=8, pos_embed_max_size=16)
TEXT_TOKENS = 77 + 256                              # CLIP-L/G tokens + T5 tokens, concatenated as SD3 does


def one_step(teacher, student, ema, optimizer, batch, cfg, text_tokens, device, group_size):
    """One distillation step on random inputs of the training shapes; returns the loss."""
    S, C = cfg["sample_size"], cfg["in_channels"]
    x0, noise = torch.randn(batch, C, S, S, device=device), torch.randn(batch, C, S, S, device=device)
    enc = torch.randn(batch, text_tokens, cfg["joint_attention_dim"], device=device)
    pooled = torch.randn(batch, cfg["pooled_projection_dim"], device=device)
    sigma = torch.rand(batch, device=device).view(-1, 1, 1, 1)
    t = sigma.flatten() * 1000
    xt = (1 - sigma) * x0 + sigma * noise
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        v_s = student(xt, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t).sample
        with torch.no_grad():
            v_t = teacher(xt, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t).sample
    loss = outkd_loss(v_s, noise - x0, reduction="sum").loss + place_loss(v_s, v_t, group_size, reduction="sum").loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    optimizer.step()
    ema_update(ema, student, 0.9999, 1)
    return loss.item()


def measure(teacher, depth, batches, cfg, args, device):
    """Rows (depth, student M params, batch, peak GiB, s/step) for one student depth; a batch that runs out of memory
    ends the row list with peak 'OOM'."""
    student = depth_student(teacher, evenly_spaced(cfg["num_layers"], depth)).train()
    if device.type == "cuda":
        student.enable_gradient_checkpointing()
    ema = copy.deepcopy(student).requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=0)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    for batch in batches:
        try:
            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            for i in range(args.warmup + args.repeats):
                if i == args.warmup:
                    sync()
                    tic = time.perf_counter()
                loss = one_step(teacher, student, ema, optimizer, batch, cfg, args.text_tokens, device, args.group_size)
            sync()
            seconds = (time.perf_counter() - tic) / args.repeats
            peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
            assert loss == loss, "the loss is not finite"
            rows.append((depth, count_params(student) / 1e6, batch, f"{peak:.1f}", f"{seconds:.3f}"))
        except torch.OutOfMemoryError:
            rows.append((depth, count_params(student) / 1e6, batch, "OOM", ""))
            break
        print("| {} | {:.1f} | {} | {} | {} |".format(*rows[-1]), flush=True)
    del student, ema, optimizer
    if cuda:
        torch.cuda.empty_cache()
    return rows


def main(args):
    from diffusers import SD3Transformer2DModel
    device = torch.device(args.device)
    cfg = TINY_CONFIG if args.tiny else SD3_MEDIUM_CONFIG
    torch.manual_seed(0)
    with device:                                    # random weights made where they live
        teacher = SD3Transformer2DModel.from_config(cfg)
    teacher.requires_grad_(False).eval()
    print(f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}; teacher "
          f"{count_params(teacher) / 1e6:.1f} M (fp32), latents {cfg['in_channels']}x{cfg['sample_size']}^2, "
          f"{args.text_tokens} text tokens, PLACE K={args.group_size}, {args.repeats} timed steps after {args.warmup}")
    print("| student blocks | student M params | batch | peak GiB | s / step |\n| ---: | ---: | ---: | ---: | ---: |")
    return [row for depth in args.depths for row in measure(teacher, depth, args.batches, cfg, args, device)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny config with the same structure (CPU tests)")
    parser.add_argument("--depths", type=int, nargs="+", default=[12, 6])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--text-tokens", type=int, default=TEXT_TOKENS)
    parser.add_argument("--group-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
