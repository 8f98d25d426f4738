"""Device names: gankit runs on cpu and cuda; every other name is refused in one line, before anything is read,
built or written (issue #16)."""
import pytest
import torch

from gankit import GankitError
from gankit.device import resolve_device

BAD = ["meta", "mps", "foo", "", "cuda:-1", "cpu:1", "xla", "cuda:0:1", " "]


@pytest.mark.parametrize("name", BAD)
def test_names_gankit_does_not_run_on_are_refused(name):
    with pytest.raises(GankitError, match=r"^train\.device '.*' is not a device gankit runs on; use auto, cpu, "
                                          r"cuda or cuda:N$"):
        resolve_device(name, "train.device")


def test_cpu_auto_and_cuda():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:0", "cuda:7"):
            with pytest.raises(GankitError, match=rf"^--device '{name}': CUDA is not available here"):
                resolve_device(name, "--device")
    else:  # pragma: no cover - GPU machines
        assert resolve_device("cuda:0") == torch.device("cuda:0")
        n = torch.cuda.device_count()
        with pytest.raises(GankitError, match=f"this machine has {n} CUDA device"):
            resolve_device(f"cuda:{n}")


@pytest.mark.parametrize("name", ["meta", "mps", "foo", "cuda:99"])
def test_train_refuses_a_bad_device_before_the_run_folder(name, refused, tmp_path):
    refused(["train", "--dataset", "digits", "--steps", "2", "--device", name, "--out", tmp_path / "run"], tmp_path,
            r"device '.*'")
    refused(["train", "--dataset", "digits", "--steps", "2", "--train.device", name, "--out", tmp_path / "run"],
            tmp_path, r"device '.*'")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import gankit

    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.progress": False})
    return gankit.train(cfg, tmp_path_factory.mktemp("r") / "run", log=lambda *_: None).run_dir


@pytest.mark.parametrize("name", ["meta", "mps", "foo", "", "cuda:99"] +
                         ([] if torch.cuda.is_available() else ["cuda"]))
def test_sample_and_eval_refuse_a_bad_device(name, run_dir, refused, tmp_path):
    refused(["sample", run_dir, "--device", name, "--out", tmp_path / "o.npz"], tmp_path, r"device '.*'")
    refused(["eval", run_dir, "--metrics", "fd1k", "--device", name], run_dir, r"device '.*'")
    refused(["train", "--resume", run_dir, "--device", name], run_dir, r"device '.*'")
