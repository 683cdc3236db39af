"""Work shared by processes and machines: FID samples on disk (every torchrun rank writes its share, the folder is
the same for any number of processes but for float rounding, an interrupted evaluation goes on where it stopped) and a
multi-node launch."""
import os
import socket
import subprocess
import sys

import torch
import torch.multiprocessing as mp

import metrics
from helpers import REPO, run_script, torchrun
from safetensors.torch import load_file
from models import load_unet
from train_unet_cifar import DDPM_SCHEDULE

TINY_UNET = os.path.join(REPO, "assets", "tiny_unet_pruned70")


def tiny_generate(unet):
    """generate(first, b) of write_samples: DDIM samples of the tiny pruned U-Net, 3 steps, seed 5."""
    return lambda first, b: metrics.ddim_sample(unet, DDPM_SCHEDULE, b, steps=3, seed=5, batch_size=2, first=first)


def assert_same_but_for_rounding(a, b):
    """uint8 images that are the same but where float rounding tipped a value over a .5 boundary: the convolutions'
    kernels (and so their rounding) can depend on the batch size and the thread count, on some CPUs. At most one
    level apart, at no more than 0.1 % of the values."""
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    diff = (a.int() - b.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() <= 1e-3


def test_ddim_sample_j_is_the_same_in_any_call():
    unet = load_unet(TINY_UNET)
    whole = metrics.ddim_sample(unet, DDPM_SCHEDULE, 7, steps=3, seed=5, batch_size=4)
    parts = torch.cat([metrics.ddim_sample(unet, DDPM_SCHEDULE, b, steps=3, seed=5, batch_size=2, first=f)
                       for f, b in ((0, 3), (3, 1), (4, 3))])
    assert_same_but_for_rounding(whole, parts)
    assert (whole[0].int() - whole[1].int()).abs().float().mean() > 10          # and the samples are not one image


def _share(rank, world, port, folder, key):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    metrics.write_samples(tiny_generate(load_unet(TINY_UNET)), 7, folder, key, rank, world, batch_size=2)
    torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files(folder):
    """{name: bytes} of a folder."""
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


def test_two_ranks_write_the_folder_one_process_writes(tmp_path):
    key = dict(steps=3, seed=5, weights=metrics.weights_digest(load_unet(TINY_UNET)))
    one = metrics.write_samples(tiny_generate(load_unet(TINY_UNET)), 7, str(tmp_path / "one"), key, batch_size=3)
    mp.spawn(_share, args=(2, free_port(), str(tmp_path / "two"), key), nprocs=2)
    made_by_one, made_by_two = files(tmp_path / "one"), files(tmp_path / "two")
    assert sorted(made_by_one) == sorted(made_by_two) == [f"{j:06d}.png" for j in range(7)] + ["settings.json"]
    assert made_by_one["settings.json"] == made_by_two["settings.json"]
    images = metrics.read_samples(one)
    assert images.shape == (7, 3, 32, 32)
    assert_same_but_for_rounding(images, metrics.read_samples(metrics.sample_paths(str(tmp_path / "two"), 7)))
    assert_same_but_for_rounding(images, metrics.ddim_sample(load_unet(TINY_UNET), DDPM_SCHEDULE, 7, steps=3, seed=5))


def test_interrupted_samples_resume_and_another_key_starts_over(tmp_path):
    unet, folder, calls = load_unet(TINY_UNET), str(tmp_path / "s"), []

    def generate(first, b):
        calls.append((first, b))
        return tiny_generate(unet)(first, b)
    key = dict(steps=3, weights=metrics.weights_digest(unet))
    metrics.write_samples(generate, 5, folder, key, batch_size=2)
    before = files(folder)
    os.remove(os.path.join(folder, "000003.png"))                  # a run killed while writing batch (2, 3)
    open(os.path.join(folder, "000002.png.tmp"), "wb").close()
    calls.clear()
    metrics.write_samples(generate, 5, folder, key, batch_size=2)
    assert calls == [(2, 2)] and files(folder) == before            # only the broken batch is made again
    with torch.no_grad():
        unet.conv_out.bias.add_(0.1)                                 # another model: the old samples are not its
    calls.clear()
    metrics.write_samples(generate, 5, folder, dict(key, weights=metrics.weights_digest(unet)), batch_size=2)
    assert calls == [(0, 2), (2, 2), (4, 1)] and files(folder)["000000.png"] != before["000000.png"]
    assert "000002.png.tmp" not in files(folder)


def test_two_nodes_train_the_student_two_processes_on_one_node_train(tmp_path):
    """Two "nodes" of one process each (two torchrun launches meeting at --rdzv-endpoint, the README's multi-node
    command) train, bit for bit, the student one launch of two processes trains."""
    args = ["--preset", "smoke", "--kd", "place", "--device", "cpu", "--threads", "1", "--fid-samples", "0"]
    p = run_script("train_unet_cifar.py", *args[2:], "--out", str(tmp_path / "one"), launcher=torchrun(free_port()))
    assert p.returncode == 0, p.stderr[-2000:]
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--node-rank", str(node), "--rdzv-endpoint", endpoint,
                               os.path.join(REPO, "train_unet_cifar.py"), *args, "--out", str(tmp_path / "two")],
                              cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    a, b = (load_file(os.path.join(tmp_path, d, "student", "diffusion_pytorch_model.safetensors"))
            for d in ("one", "two"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fid_samples_of_two_processes_are_the_samples_of_one(tmp_path):
    """train_unet_cifar.py under torchrun (2 gloo processes) makes its final samples on both ranks into
    OUT/fid_samples/student/: they are the samples one process draws from the saved student, and rank 0 scores them."""
    out = str(tmp_path / "run")
    p = run_script("train_unet_cifar.py", "--device", "cpu", "--threads", "1", "--fid-samples", "9", "--eval-teacher",
                   "0", "--out", out, launcher=torchrun(free_port()))
    assert p.returncode == 0, p.stderr[-2000:]
    args = metrics.json.load(open(os.path.join(out, "args.json")))
    paths = metrics.sample_paths(os.path.join(out, "fid_samples", "student"), 9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                         # as the run: the same float summation order
    one = metrics.ddim_sample(load_unet(os.path.join(out, "student")), dict(DDPM_SCHEDULE, clip_sample=True), 9,
                              args["ddim_steps"], seed=args["seed"])
    torch.set_num_threads(threads)
    assert torch.equal(metrics.read_samples(paths), one)
    scored = metrics.json.load(open(os.path.join(out, "metrics.json")))
    assert (scored["n_samples"] == 9
            and scored["shape_fd"] == metrics.shape_metrics(one, metrics.load_classifier())["shape_fd"])


def random_fid_inception(path):
    """clean-fid's legacy_pytorch Inception (its FID architecture) with random weights, saved where --fid-inception
    reads it: the real FID path offline, with features that mean nothing."""
    from cleanfid import inception_pytorch as ip
    torch.manual_seed(0)
    net = ip._inception_v3(num_classes=1008, aux_logits=False, pretrained=False)
    for name, block in [("Mixed_5b", ip.FIDInceptionA(192, 32)), ("Mixed_5c", ip.FIDInceptionA(256, 64)),
                        ("Mixed_5d", ip.FIDInceptionA(288, 64)), ("Mixed_6b", ip.FIDInceptionC(768, 128)),
                        ("Mixed_6c", ip.FIDInceptionC(768, 160)), ("Mixed_6d", ip.FIDInceptionC(768, 160)),
                        ("Mixed_6e", ip.FIDInceptionC(768, 192)), ("Mixed_7b", ip.FIDInceptionE_1(1280)),
                        ("Mixed_7c", ip.FIDInceptionE_2(2048))]:
        setattr(net, name, block)
    torch.save(net.state_dict(), path)


def test_fid_and_the_teachers_fid_under_the_same_protocol(tmp_path, monkeypatch):
    """--fid-stats and --eval-teacher 1 through clean-fid's real path (an Inception of random weights): the student's
    FID and the teacher's, each over its own PNG folder, equal to clean-fid on those files, settings beside them."""
    import numpy as np
    random_fid_inception(tmp_path / "inception.pth")
    np.savez(tmp_path / "stats.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = str(tmp_path / "run")
    p = run_script("train_unet_cifar.py", "--fid-stats", str(tmp_path / "stats.npz"), "--fid-inception",
                   str(tmp_path / "inception.pth"), "--fid-samples", "6", "--eval-teacher", "1", "--threads", "1",
                   "--out", out, env={"TORCH_HOME": str(tmp_path / "torch")})
    assert p.returncode == 0, p.stderr[-2000:]
    scored = metrics.json.load(open(os.path.join(out, "metrics.json")))
    extractor = metrics.fid_extractor("legacy_pytorch")
    for key, name in (("fid", "student"), ("teacher_fid", "teacher")):
        paths = metrics.sample_paths(os.path.join(out, "fid_samples", name), 6)
        assert abs(scored[key] - metrics.fid(paths, stats=str(tmp_path / "stats.npz"), extractor=extractor)) < 1e-6
    assert scored["fid"] != scored["teacher_fid"] and scored["fid_mode"] == "legacy_pytorch"
    assert (scored["n_samples"] == 6 and scored["ddim_steps"] == 4
            and str(tmp_path / "stats.npz") in scored["fid_reference"])
