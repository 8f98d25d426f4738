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


def test_cached_rewrites_only_its_region(qt, tmp_path):
    doc = tmp_path / "ZOO.md"
    doc.write_text(f"# Zoo\n\nbefore\n\n{qt.START}\nstale\n{qt.END}\n\nafter\n")
    (tmp_path / "zoo").mkdir()
    rec = {"steps": 3000, "fd": 76.62, "kid": 10.6, "precision": 0.509, "recall": 0.609, "classes_over_2pct": 10}
    (tmp_path / "zoo" / "quick_trials.json").write_text(json.dumps({"base": rec}))
    assert qt.main(["--cached", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Zoo\n\nbefore\n\n" + qt.START) and text.endswith(qt.END + "\n\nafter\n")
    assert "| base | 3,000 | 76.6 | 10.60 | 0.509 | 0.609 | 10 |" in text and "stale" not in text
    assert "| lr 1e-3 | not run yet |" in text
    with pytest.raises(SystemExit):
        qt.main(["--only", "no such trial", "--doc", str(doc)])
