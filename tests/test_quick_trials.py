"""scripts/quick_trials.py's pieces: k-means against a brute-force optimum, the cluster-share sampler against the
shares, and --cached rewriting only its region of the doc from the JSON."""
import itertools
import json

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def qt(load_script):
    return load_script("quick_trials")


def test_kmeans_finds_the_best_partition_of_separated_blobs(qt):
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0] * 784, [1.0] * 784, [0.0] * 392 + [1.0] * 392])  # 784 wide, like the images
    truth = torch.arange(3).repeat_interleave(200)
    x = centres[truth] + 0.05 * torch.randn(600, 784, generator=g)
    labels = qt.kmeans(x, 3)
    # the same partition up to renaming the clusters: one permutation maps labels onto the truth exactly
    assert any(torch.equal(torch.tensor(perm)[labels], truth) for perm in itertools.permutations(range(3)))


def test_the_share_sampler_follows_the_shares(qt):
    shares = np.array([0.5, 0.3, 0.15, 0.05])
    seen = []
    G = lambda z, y: seen.append(y) or z  # noqa: E731  (records the clusters it is called with)
    view = qt.ByClusterSize(G, shares)
    for n in (1000, 1000, 3000):  # batches continue the sequence
        view(torch.zeros(n, 2))
    counts = np.bincount(torch.cat(seen).numpy(), minlength=4)
    # golden-ratio points are equidistributed with discrepancy O(log n / n): each count within 0.5 % of its share
    assert np.abs(counts / 5000 - shares).max() < 0.005 and counts.sum() == 5000


def _cached_setup(tmp_path, doc_text: str, cache: str, name: str, steps: int, fd: float, kid: float, precision: float,
                  recall: float):
    """A doc and a one-trial record beside it, as --cached reads them; the doc's path."""
    doc = tmp_path / "ZOO.md"
    doc.write_text(doc_text)
    (tmp_path / "zoo").mkdir()
    rec = {"steps": steps, "fd": fd, "kid": kid, "precision": precision, "recall": recall, "classes_over_2pct": 10}
    (tmp_path / "zoo" / cache).write_text(json.dumps({name: rec}))
    return doc


def test_cached_rewrites_only_its_region(qt, tmp_path):
    doc = _cached_setup(tmp_path, f"# Zoo\n\nbefore\n\n{qt.START}\nstale\n{qt.END}\n\nafter\n", "quick_trials.json",
                        "base", 3000, 76.62, 10.6, 0.509, 0.609)
    assert qt.main(["--cached", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Zoo\n\nbefore\n\n" + qt.START) and text.endswith(qt.END + "\n\nafter\n")
    assert "| base | 3,000 | 76.6 | 10.60 | 0.509 | 0.609 | 10 |" in text and "stale" not in text
    assert "| lr 1e-3 | not run yet |" in text
    with pytest.raises(SystemExit):
        qt.main(["--only", "no such trial", "--doc", str(doc)])


def test_the_seed_family_writes_its_own_region_and_record(qt, tmp_path):
    doc = _cached_setup(tmp_path, f"# Zoo\n\n{qt.START}\nquick table\n{qt.END}\n", "seed_trials.json", "R1 30", 18000,
                        102.7, 14.2, 0.718, 0.193)
    assert qt.main(["--family", "seed", "--cached", "--doc", str(doc)]) == 0
    text = doc.read_text()
    start, end = qt.markers(qt.FAMILIES["seed"])
    # the quick region is untouched; the seed region is appended under its own heading, after it
    assert text.startswith(f"# Zoo\n\n{qt.START}\nquick table\n{qt.END}\n")
    assert text.index(qt.END) < text.index("## Ending seed-plus's collapse") < text.index(start) < text.index(end)
    assert "`python scripts/quick_trials.py --family seed`" in text and "docs/zoo/seed_trials.json" in text
    assert "| R1 30 | 18,000 | 102.7 | 14.20 | 0.718 | 0.193 | 10 |" in text and "| seed | not run yet |" in text
    with pytest.raises(SystemExit):  # a quick-mnist trial is not a seed trial
        qt.main(["--family", "seed", "--only", "lr 1e-3", "--doc", str(doc)])


def test_every_seed_trial_keeps_the_seeds_layer_sizes(qt):
    """The seed-plus target is about the seed's networks: no trial may change a layer size or the architecture."""
    from gankit.config import preset_config

    sizes = ("model.arch", "model.z_dim", "model.g_hidden", "model.d_hidden")
    for name, (steps, over, k, _) in qt.SEED_TRIALS.items():
        assert not any(key in over for key in sizes) and k == 0, name
        cfg = preset_config("seed").with_overrides(over)
        assert (cfg.model.arch, cfg.model.z_dim, cfg.model.g_hidden, cfg.model.d_hidden) == ("mlp", 100, (128,), (128,))
    shipped = qt.SEED_TRIALS["seed-plus"]  # the trial named seed-plus trains the preset as shipped
    plus = preset_config("seed-plus").with_overrides(shipped[1])
    assert plus == preset_config("seed-plus") and shipped[0] == 150 * 600
