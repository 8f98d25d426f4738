"""Self-conditioning (data.clusters, data/clusters.py): k-means against brute force and Lloyd's fixed point on
Fashion-MNIST at its full size, the label draws against their shares, and a self-conditioned run end to end (fake
labels, checkpoint, sampling, resume)."""
from __future__ import annotations

import pytest
import torch

import gankit
from gankit.config import DataConfig, preset_config
from gankit.data import Dataset, load_dataset
from gankit.data.clusters import digest, draw_labels, kmeans, relabel, shares, spread_labels
from gankit.errors import GankitError


def test_kmeans_finds_separated_blobs_numbered_by_size():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0] * 784, [1.0] * 784, [0.0] * 392 + [1.0] * 392])  # 784 wide, like the images
    truth = torch.cat([torch.full((100,), 0), torch.full((300,), 1), torch.full((200,), 2)])
    x = centres[truth] + 0.05 * torch.randn(600, 784, generator=g)
    labels, found = kmeans(x, 3)
    # the same partition up to renaming, and the names are by size: 300 -> 0, 200 -> 1, 100 -> 2
    assert torch.equal(torch.tensor([2, 0, 1])[truth], labels)
    torch.testing.assert_close(found, centres[[1, 2, 0]].double(), atol=0.02, rtol=0)


def test_kmeans_labels_are_its_own_nearest_centres_and_a_lloyd_fixed_point(fashion_dir):
    """On 5,000 Fashion-MNIST images run to convergence: every centre is the mean of its members and every image
    sits at its nearest centre (checked by brute force) — Lloyd's fixed point."""
    ds = load_dataset(DataConfig(name="idx", dir=str(fashion_dir)), log=lambda *_: None)
    x = ds.images[:5000].reshape(5000, -1).double()
    labels, centres = kmeans(ds.images[:5000], 10, seed=3, iters=300)
    for j in range(10):
        torch.testing.assert_close(centres[j], x[labels == j].mean(0), rtol=0, atol=1e-9)
    d2 = torch.cdist(x, centres) ** 2
    assert torch.equal(d2.argmin(1), labels)
    assert (torch.bincount(labels, minlength=10).diff() <= 0).all()  # numbered by size, largest first


def test_kmeans_on_the_full_training_set_is_deterministic_across_thread_counts(fashion_dir):
    """The size a run clusters (60,000 images of 784 pixels): the labels do not depend on torch's thread count (a
    resume or another rank computes them again), and every cluster holds images."""
    ds = load_dataset(DataConfig(name="idx", dir=str(fashion_dir)), log=lambda *_: None)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = kmeans(ds.images, 10)
        torch.set_num_threads(2)
        two, centres = kmeans(ds.images, 10)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two) and digest(one) == digest(two)
    s = shares(two, 10)
    assert (s > 0.01).all() and abs(float(s.sum()) - 1) < 1e-12
    assert (s.diff() <= 0).all()
    other, _ = kmeans(ds.images, 10, seed=1)  # another seed may find another partition, but a valid one
    assert other.shape == two.shape and torch.bincount(other, minlength=10).min() > 0


def test_kmeans_refuses_more_clusters_than_examples():
    with pytest.raises(GankitError, match=r"data\.clusters 5: needs between 1 and the 4 training examples"):
        kmeans(torch.zeros(4, 3), 5)


def test_kmeans_beyond_the_memory_limit_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", str(2**20))
    with pytest.raises(GankitError, match=r"^k-means of 1,000 examples of 784 values \(data\.clusters\) would need "
                                          r"12\.0 MB, more than the 1\.0 MB of memory set by GANKIT_MEMORY_LIMIT"):
        kmeans(torch.zeros(1000, 1, 28, 28, dtype=torch.uint8), 10)


def test_label_draws_follow_the_shares():
    s = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0], dtype=torch.float64)
    n = 200_000
    counts = torch.bincount(draw_labels(s, n, torch.Generator().manual_seed(0)), minlength=5).double()
    # i.i.d. draws: each count within 5 binomial standard deviations of n·share; a class of share 0 never drawn
    sd = (n * s * (1 - s)).sqrt()
    assert ((counts - n * s).abs() <= 5 * sd + 1e-9).all() and counts[4] == 0
    # the samplers' sequence: any run of it follows the shares within 0.5 %, and batches continue it
    seq = torch.cat([spread_labels(s, 0, 1000), spread_labels(s, 1000, 4000)])
    assert torch.equal(seq, spread_labels(s, 0, 5000))
    assert (torch.bincount(seq, minlength=5) / 5000 - s).abs().max() < 0.005


def _fashion_subset(fashion_dir, n: int = 2048) -> Dataset:
    ds = load_dataset(DataConfig(name="idx", dir=str(fashion_dir)), log=lambda *_: None)
    return Dataset("fashion-2048", ds.images[:n], ds.labels[:n], ds.source, 10)


def _cfg(steps: int):
    return preset_config("quick-mnist").with_overrides({
        "train.steps": steps, "train.threads": 1, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, "train.precision": "fp32"})


def test_a_self_conditioned_run_reads_no_label_and_samples_by_cluster_size(fashion_dir, tmp_path):
    data = _fashion_subset(fashion_dir)
    blind = Dataset(data.name, data.images, None, data.source)  # the same images without their labels
    res = gankit.train(_cfg(4), tmp_path / "run", dataset=blind, log=lambda *_: None)
    k = _cfg(4).data.clusters  # the preset's
    expect, _, dig = relabel(blind, k, 0, log=lambda *_: None)
    state = torch.load(res.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["cluster_digest"] == dig and state["num_classes"] == k
    torch.testing.assert_close(torch.tensor(state["label_shares"]), shares(expect.labels, k).float())
    with_labels = gankit.train(_cfg(4), tmp_path / "labelled", dataset=data, log=lambda *_: None)
    # the human labels are never read: the same images with them train to the same weights
    other = torch.load(with_labels.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(state["G"][k], other["G"][k]) for k in state["G"])
    g = gankit.load(res.run_dir)
    # sampling without labels draws clusters by their shares (the samplers' sequence), not i mod k
    by_share = spread_labels(g.label_shares, 0, 64)
    assert not torch.equal(by_share, torch.arange(64) % k)
    torch.testing.assert_close(g.sample(64, seed=5), g.sample(64, seed=5, labels=by_share), rtol=0, atol=0)


def test_fake_labels_are_drawn_by_cluster_size(fashion_dir, tmp_path):
    from gankit.training.loop import Trainer
    from gankit.training.steps import draw_one

    tr = Trainer(_cfg(1), tmp_path / "run", dataset=_fashion_subset(fashion_dir), log=lambda *_: None)
    s = tr.label_shares.double()
    drawn = torch.cat([draw_one(tr)[1] for _ in range(400)])  # 400 batches of 64
    n = drawn.numel()
    sd = (n * s * (1 - s)).sqrt()
    counts = torch.bincount(drawn, minlength=s.numel()).double()
    assert ((counts - n * s).abs() <= 5 * sd).all()
    # uniform draws would miss the smallest cluster's share by far more than that
    assert (n * s - n / s.numel()).abs().max() > 10 * sd.max()


def test_a_resume_clusters_the_same_way_and_refuses_other_data(fashion_dir, tmp_path):
    data = _fashion_subset(fashion_dir)
    straight = gankit.train(_cfg(6), tmp_path / "straight", dataset=data, log=lambda *_: None)
    first = gankit.train(_cfg(3), tmp_path / "split", dataset=data, log=lambda *_: None)
    gankit.train(_cfg(6), first.run_dir, dataset=data, resume=True, log=lambda *_: None)
    a = torch.load(straight.run_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(first.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])  # 3 + 3 steps == 6 steps, exactly
    shifted = Dataset(data.name, data.images.roll(1, 0), None, data.source)  # other images, same shapes
    with pytest.raises(GankitError, match=r"the data's 30 k-means clusters differ from the ones this run trained on"):
        gankit.train(_cfg(9), first.run_dir, dataset=shifted, resume=True, log=lambda *_: None)


@pytest.mark.parametrize("over,msg", [
    ({"model.cond": "none", "model.num_classes": 0},
     r"data\.clusters 30 labels the images for a conditional model; set --model\.cond concat"),
    ({"model.num_classes": 12}, r"data\.clusters 30 makes 30 classes, model\.num_classes is 12; set "
                                r"--model\.num_classes 30"),
])
def test_a_self_conditioned_run_needs_a_conditional_model_of_as_many_classes(tmp_path, over, msg):
    g = torch.Generator().manual_seed(0)
    data = Dataset("noise", torch.randint(0, 256, (128, 1, 28, 28), dtype=torch.uint8, generator=g), None, "test")
    with pytest.raises(GankitError, match=msg):
        gankit.train(_cfg(1).with_overrides(over), tmp_path / "run", dataset=data, log=lambda *_: None)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made

