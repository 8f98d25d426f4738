"""gankit: generative adversarial networks to train, study and teach, offline-first.

The Python API mirrors the CLI::

    import gankit
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.epochs": 5})
    run = gankit.train(cfg, out="runs/demo")
    g = gankit.load(run.run_dir)
    images = g.images(16, seed=0)   # uint8 numpy (16, H, W)
"""
__version__ = "0.1.0"

from .api import LoadedGenerator, load, preset, train  # noqa: E402
from .config import RunConfig  # noqa: E402
from .errors import GankitError  # noqa: E402

__all__ = ["GankitError", "LoadedGenerator", "RunConfig", "load", "preset", "train", "__version__"]
