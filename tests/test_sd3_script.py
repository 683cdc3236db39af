"""train_sd3.py: depth students of an MMDiT (the context-pre-only last block), the stand-in text encoder, the flow
objective's pieces, and the script end to end."""
import json
import os

import pytest
import torch
from diffusers import SD3Transformer2DModel

from models import SD3_MEDIUM_CONFIG, count_params, depth_student, evenly_spaced
from train_sd3 import StandInTextEncoder, encode_captions
from helpers import (LATENT_BAD_FLAGS, assert_ddp_smoke, assert_offline_fid_is_null, assert_one_line_error,
                     assert_resumed_equals_straight, run_kd_method, run_script)

TINY_SD3 = dict(sample_size=16, patch_size=2, in_channels=12, out_channels=12, num_layers=4, attention_head_dim=8,
                num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8,
                pos_embed_max_size=16)


def run(*args, env=None):
    return run_script("train_sd3.py", *args, env=env)


def random_sd3(seed=0, **overrides):
    """A small MMDiT with every weight random (the zero-initialised modulations would hide mistakes)."""
    torch.manual_seed(seed)
    model = SD3Transformer2DModel(**{**TINY_SD3, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


WORDS = "a an the red green blue yellow purple orange circle square triangle star ring cross on small large".split()
CHARS = sorted(set("".join(WORDS) + "0123456789"))


def tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over single characters and the embedded captions' words (no merges), 77 tokens long."""
    from transformers import CLIPTokenizer
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in CHARS + [c + "</w>" for c in CHARS] + [w + "</w>" for w in WORDS]:
        vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", model_max_length=77)


def tiny_sd3_pipeline(path):
    """A whole SD3 pipeline of tiny random parts, saved with save_pretrained: the MMDiT, a 16-channel AutoencoderKL
    with SD3's scaling and shift factors, two CLIP text encoders with projection and a T5 encoder, their tokenizers."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel, T5Tokenizer
    torch.manual_seed(0)
    clip_tok = tiny_clip_tokenizer()
    t5_tok = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS]
                         + [(c, -5.0) for c in CHARS], extra_ids=0)

    def clip():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(clip_tok), hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, projection_dim=8, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=2))
    transformer = random_sd3(num_layers=4, in_channels=16, out_channels=16, joint_attention_dim=32,
                             pooled_projection_dim=16)             # joint: T5's 32; pooled: two CLIP projections of 8
    vae = AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        block_out_channels=[8, 8], latent_channels=16, norm_num_groups=4, sample_size=32,
                        scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False)
    StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
                             text_encoder=clip(), tokenizer=clip_tok, text_encoder_2=clip(), tokenizer_2=clip_tok,
                             text_encoder_3=t5, tokenizer_3=t5_tok).save_pretrained(path)
    return str(path)


def tiny_clip(path):
    """A tiny random CLIPModel with its processor (32 x 32 images), saved with save_pretrained."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    torch.manual_seed(0)
    tok = tiny_clip_tokenizer()
    config = CLIPConfig(text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0,
                                         eos_token_id=1, pad_token_id=1),
                        vision_config=dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32,
                                           num_hidden_layers=2, num_attention_heads=2), projection_dim=8)
    CLIPModel(config).save_pretrained(path)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=processor, tokenizer=tok).save_pretrained(path)
    return str(path)


def inputs(b=3):
    g = torch.Generator().manual_seed(1)
    return dict(hidden_states=torch.randn(b, 12, 16, 16, generator=g),
                encoder_hidden_states=torch.randn(b, 5, 16, generator=g),
                pooled_projections=torch.randn(b, 8, generator=g), timestep=torch.tensor([10.0, 500.0, 990.0])[:b])


def test_sd3_medium_and_students_on_meta():
    """SD3-medium's transformer from its config, without weights: about 2 B parameters, 24 joint blocks."""
    with torch.device("meta"):
        teacher = SD3Transformer2DModel(**SD3_MEDIUM_CONFIG)
        sizes = {n: count_params(depth_student(teacher, evenly_spaced(24, n))) for n in (12, 6)}
    assert round(count_params(teacher) / 1e9, 2) == 2.03 and len(teacher.transformer_blocks) == 24
    assert {n: round(s / 1e6) for n, s in sizes.items()} == {12: 1009, 6: 499}


def test_full_depth_student_is_the_teacher():
    teacher = random_sd3()
    student = depth_student(teacher, [0, 1, 2, 3])
    with torch.no_grad():
        assert torch.equal(student(**inputs()).sample, teacher(**inputs()).sample)


def test_last_kept_block_takes_the_context_pre_only_form():
    """Block 1 kept last: it becomes context-pre-only, and its image-token output is exactly the teacher block's."""
    teacher = random_sd3()
    student = depth_student(teacher, [0, 1])
    assert student.transformer_blocks[1].context_pre_only and not teacher.transformer_blocks[1].context_pre_only
    assert student.transformer_blocks[1].ff_context is None
    x = torch.randn(2, 64, 16)
    c = torch.randn(2, 5, 16)
    temb = torch.randn(2, 16)
    with torch.no_grad():
        _, image_t = teacher.transformer_blocks[1](x, c, temb)
        context_s, image_s = student.transformer_blocks[1](x, c, temb)
    assert context_s is None and torch.allclose(image_s, image_t, atol=1e-6, rtol=1e-6)
    t, s = teacher.state_dict(), student.state_dict()
    assert torch.equal(s["transformer_blocks.0.attn.to_q.weight"], t["transformer_blocks.0.attn.to_q.weight"])
    with torch.no_grad():
        assert not torch.allclose(student(**inputs()).sample, teacher(**inputs()).sample)


def test_stand_in_text_encoder():
    enc = StandInTextEncoder(16, 8, max_tokens=4)
    tokens, pooled = enc(["a red circle", "a red circle", "a blue star", ""])
    assert tokens.shape == (4, 4, 16) and pooled.shape == (4, 8)
    assert torch.equal(tokens[0], tokens[1]) and not torch.equal(tokens[0], tokens[2])
    assert torch.equal(tokens[0, 1], enc(["red"])[0][0, 0])                 # a word is the same vector anywhere
    assert tokens[0, 3].abs().sum() == 0 and tokens[3].abs().sum() == 0 and pooled[3].abs().sum() == 0
    assert torch.allclose(pooled[0], torch.stack([enc.word(w)[16:] for w in "a red circle".split()]).mean(0))


def test_caption_cache_on_disk_equals_in_memory(tmp_path):
    enc = StandInTextEncoder(16, 8)
    captions = [f"a red circle {i}" for i in range(5)]
    memory = encode_captions(enc, captions)
    disk = encode_captions(enc, captions, str(tmp_path / "cache"))
    assert memory[0].shape == (6, 8, 16) and memory[0][-1].abs().sum() == 0     # the empty caption is the last row
    for m, d in zip(memory, disk):
        assert torch.allclose(m, torch.from_numpy(d.astype("float32")), atol=1e-2)  # float16 on disk
    reread = encode_captions(None, captions, str(tmp_path / "cache"))          # an existing cache is reused as is
    assert all((a == b).all() for a, b in zip(disk, reread))


@pytest.mark.parametrize("kd", ["none", "outkd", "featkd", "outkd+featkd", "lift", "place"])
def test_every_kd_method_end_to_end(kd, tmp_path):
    out = str(tmp_path / kd)
    _, metrics = run_kd_method("train_sd3.py", kd, out)
    assert metrics["kept_blocks"] == [0, 3] and metrics["sampler"] == "FlowMatchEuler" and metrics["shift"] == 3.0
    assert 0 <= metrics["class_accuracy"] <= 1 and metrics["shape_fd"] > 0
    student = SD3Transformer2DModel.from_pretrained(os.path.join(out, "student"))
    assert student.config.num_layers == 2 and student.transformer_blocks[-1].context_pre_only
    assert count_params(student) == metrics["student_params"]


def test_ddp_on_cpu_two_processes(tmp_path):
    assert_ddp_smoke("train_sd3.py", str(tmp_path / "ddp"), 29519)


@pytest.mark.parametrize("fault", ["LIFT_KILL_AT_STEP", "LIFT_INTERRUPT_AT_STEP"])
def test_killed_or_interrupted_and_resumed_equals_straight(fault, tmp_path):
    assert_resumed_equals_straight("train_sd3.py", fault, str(tmp_path / "straight"), str(tmp_path / "broken"),
                                   ["--kd", "place", "--sample-every", "100", "--fid-samples", "0"])


def test_offline_fid_is_null_with_the_reason(tmp_path):
    assert_offline_fid_is_null("train_sd3.py", tmp_path)


def test_transformer_only_teacher_dir_captioned_folder_and_sampling(tmp_path):
    from PIL import Image
    random_sd3(num_layers=5, joint_attention_dim=32, pooled_projection_dim=32).save_pretrained(tmp_path / "teacher")
    os.makedirs(tmp_path / "data")
    for i in range(4):
        Image.new("RGB", (32, 32), (50 * i, 100, 200)).save(tmp_path / "data" / f"{i}.png")
        (tmp_path / "data" / f"{i}.txt").write_text(f"a blue square {i}")
    out = str(tmp_path / "run")
    p = run("--teacher", str(tmp_path / "teacher"), "--keep-blocks", "0,2,3", "--data-dir", str(tmp_path / "data"),
            "--batch-size", "4", "--fid-samples", "0", "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    import numpy as np
    assert np.load(os.path.join(out, "cache_tokens.npy")).shape == (5, 8, 32)       # 4 captions + the empty one
    assert np.load(os.path.join(out, "cache_latents.npy")).shape == (4, 2, 12, 16, 16)     # each image and its mirror
    student = SD3Transformer2DModel.from_pretrained(os.path.join(out, "student"))
    assert student.config.num_layers == 3
    p = run("--sample-from", os.path.join(out, "student"), "--vae", "pixel-unshuffle", "--sample-steps", "2",
            "--out", str(tmp_path / "grid"))
    assert p.returncode == 0 and os.path.exists(tmp_path / "grid" / "samples.png")


def test_real_sd3_pipeline_vae_text_encoders_and_clip_score(tmp_path):
    """The hub path on a saved tiny pipeline: teacher, VAE and the three text encoders from one directory, the CLIP
    score from another; the caption cache equals what the pipeline's encode_prompt gives."""
    from diffusers import StableDiffusion3Pipeline
    from train_sd3 import parse_args, text_encoder
    pipe_dir, clip_dir, out = tiny_sd3_pipeline(tmp_path / "sd3"), tiny_clip(tmp_path / "clip"), str(tmp_path / "run")
    p = run("--teacher", pipe_dir, "--vae", pipe_dir, "--text-encoder", pipe_dir, "--clip-model", clip_dir,
            "--student-depth", "2", "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert 0 <= metrics["clip_score"] <= 100 and metrics["clip_model"] == clip_dir and metrics["kept_blocks"] == [0, 2]
    captions = ["a red circle", "a small blue star on green"]
    args = parse_args(["--preset", "smoke", "--text-encoder", pipe_dir])
    cached = encode_captions(text_encoder(args, None, torch.device("cpu")), captions, str(tmp_path / "cache"))
    pipe = StableDiffusion3Pipeline.from_pretrained(pipe_dir, transformer=None, vae=None)
    with torch.no_grad():
        tokens, _, pooled, _ = pipe.encode_prompt(captions + [""], None, None, do_classifier_free_guidance=False)
    assert cached[0].shape == (3, 77 + 256, 32) and cached[1].shape == (3, 16)
    assert torch.allclose(torch.from_numpy(cached[0].astype("float32")), tokens, atol=2e-3)   # float16 on disk
    assert torch.allclose(torch.from_numpy(cached[1].astype("float32")), pooled, atol=2e-3)


def test_sd3_vae_latents_shift_then_scale_and_back(tmp_path):
    from diffusers import AutoencoderKL
    from models import decode_latents, encode_latents
    vae = AutoencoderKL.from_pretrained(tiny_sd3_pipeline(tmp_path / "sd3"), subfolder="vae")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = encode_latents(vae, x, torch.Generator().manual_seed(0))
        raw = vae.encode(x).latent_dist.sample(torch.Generator().manual_seed(0))
        assert torch.allclose(z, (raw - 0.0609) * 1.5305, atol=1e-6)            # SD3: (z - shift) * scale
        assert torch.allclose(decode_latents(vae, z), vae.decode(raw).sample.clamp(-1, 1), atol=1e-5)


def test_clip_scores_batched_equal_one_at_a_time(tmp_path):
    from transformers import CLIPModel, CLIPProcessor
    from metrics import clip_scores, load_clip
    clip = load_clip(tiny_clip(tmp_path / "clip"))
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    captions = ["a red circle", "a blue square on yellow", "a star", "a large green ring", "a purple cross"]
    scores = clip_scores(images, captions, clip, batch_size=3)
    model, processor = CLIPModel.from_pretrained(tmp_path / "clip"), CLIPProcessor.from_pretrained(tmp_path / "clip")
    plain = []
    with torch.no_grad():
        for image, caption in zip(images, captions):                    # unbatched, cosine written out in float64
            inp = processor(text=[caption], images=[image], return_tensors="pt")
            img = model.visual_projection(
                model.vision_model(pixel_values=inp["pixel_values"]).pooler_output)[0].double()
            txt = model.text_projection(model.text_model(input_ids=inp["input_ids"]).pooler_output)[0].double()
            plain.append(max(0.0, 100 * float(img @ txt / (img.norm() * txt.norm()))))
    assert scores.dtype == torch.float64 and torch.allclose(scores, torch.tensor(plain, dtype=torch.float64), atol=1e-4)
    assert 0.0 in plain and len({p for p in plain if p > 0}) >= 2        # both sides of the clamp at 0 are checked
    with pytest.raises(ValueError, match="cannot load a CLIP model from"):
        load_clip(str(tmp_path / "missing"))


def test_missing_caption_is_one_line(tmp_path):
    from PIL import Image
    os.makedirs(tmp_path / "data")
    Image.new("RGB", (32, 32)).save(tmp_path / "data" / "0.png")
    p = run("--data-dir", str(tmp_path / "data"), "--fid-samples", "0", "--out", str(tmp_path / "run"))
    assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].startswith("error: no caption for ")


@pytest.mark.parametrize("args, message", [
    (["--data-dir", "/tmp"], "FID needs reference statistics: pass --fid-stats"),                 # before training
    (["--keep-blocks", "2,2"], "needs distinct increasing"),
    (["--student-depth", "7"], "--student-depth 7 must be between 1 and the teacher's 6 blocks"),
    (["--teacher", "someone/not-cached"], "HF_HUB_OFFLINE is set"),
    (["--text-encoder", "someone/no-encoders"], "cannot load SD3's text encoders"),
    (["--group-size", "48"], "does not divide the 256 spatial elements"),
    (["--clip-model", "/nonexistent/clip"], "cannot load a CLIP model from /nonexistent/clip"),
    (["--caption-dropout", "-0.1"], "--caption-dropout -0.1 must be in [0, 1]"),
    (["--shift", "0"], "--shift 0.0 must be > 0"),
] + LATENT_BAD_FLAGS)
def test_bad_input_one_line_and_nonzero(args, message):
    assert_one_line_error(run("--out", "/tmp/lift_bad_input_sd3", *args), message)    # a bad --out given wins
