"""``gankit theory``: run the derivation's checks and write the report (Markdown, HTML, PNGs, results.json)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from ..config import seed_arg
from ..errors import GankitError
from ..i18n import list_languages

NAME = "theory"

EXAMPLES = """\
examples:
  gankit theory                                  # full report in theory_report/ (a few minutes on 1 CPU thread)
  gankit theory --quick --out /tmp/theory        # smoke-sized run, under a minute
  gankit theory --sections 1,2 --out d_star      # only the optimal-D and value-of-the-game sections
  gankit theory --pack 4 --seed 3 --overwrite    # PacGAN4 in section 5, another seed, replace the old report
  gankit theory --quick --lang zh --out zh       # the report's words in Chinese (the same numbers and plots)

Sections: 1 optimal D, 2 value of the game, 3 training dynamics, 4 why non-saturating, 5 mode collapse.
Open OUT/index.html in a browser or read OUT/report.md; every number is also in OUT/results.json.
"""

OUTPUTS = ("report.md", "index.html", "results.json")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="check the GAN paper's claims on 1-D and 2-D toy distributions",
                              description="Check Goodfellow et al. (2014)'s derivation on distributions with known "
                                          "densities and write a report with plots.",
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="theory_report", help="report folder (default theory_report)")
    p.add_argument("--quick", action="store_true", help="small settings: a smoke test that writes every figure")
    p.add_argument("--sections", default="1,2,3,4,5", help="comma-separated sections to run (default 1,2,3,4,5)")
    p.add_argument("--seed", type=seed_arg, default=0, help="random seed (default 0)")
    p.add_argument("--pack", type=int, help="PacGAN packing m of section 5, 2..4 (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; the networks are tiny)")
    p.add_argument("--lang", default="en", choices=list_languages(),
                   help="language of the report's headings, captions and explanations (default en)")
    p.add_argument("--overwrite", action="store_true", help="replace the report files of an existing folder")
    return p


def parse_sections(text: str) -> list[int]:
    try:
        which = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise GankitError(f"--sections must be numbers 1-5 separated by commas, got {text!r}") from None
    if not which or any(k not in range(1, 6) for k in which):
        raise GankitError(f"--sections must be numbers 1-5 separated by commas, got {text!r}")
    return which


def _check_args(args: argparse.Namespace) -> tuple[list[int], Path]:
    which = parse_sections(args.sections)
    if args.pack is not None and 5 not in which:  # it would change nothing: refused, not ignored
        raise GankitError(f"--pack sets PacGAN's m in section 5, which --sections {args.sections} leaves out")
    args.pack = 2 if args.pack is None else args.pack
    if not 2 <= args.pack <= 4:
        raise GankitError(f"--pack must be between 2 and 4 (PacGAN's m), got {args.pack}")
    if args.threads < 1:
        raise GankitError(f"--threads must be at least 1, got {args.threads}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GankitError(f"--out {out} is a file; give a folder")
    existing = [f for f in OUTPUTS if (out / f).exists()]
    if existing and not args.overwrite:
        raise GankitError(f"{out} already holds a report ({existing[0]}); pass --overwrite or choose another --out")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise GankitError("gankit theory draws its figures with matplotlib; pip install 'gankit[plot]'") from None
    return which, out


def run(args: argparse.Namespace) -> int:
    import numpy
    import scipy
    import torch

    from . import experiments, plots, report

    which, out = _check_args(args)
    out.mkdir(parents=True, exist_ok=True)
    settings = experiments.Settings.make(args.quick, seed=args.seed, ring_pack=args.pack)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        results = experiments.run_sections(settings, which, log=lambda m: print(m, file=sys.stderr))
        figures = plots.draw(results, out, args.lang, log=lambda m: print(m, file=sys.stderr))
    finally:
        torch.set_num_threads(threads_before)
    cmd = "gankit theory" + (" --quick" if args.quick else "") + (
        f" --sections {args.sections}" if which != list(range(1, 6)) else "") + (
        f" --seed {args.seed}" if args.seed else "") + (f" --pack {args.pack}" if args.pack != 2 else "") + (
        f" --lang {args.lang}" if args.lang != "en" else "")
    meta = {"command": cmd, "settings": experiments.settings_dict(settings), "threads": args.threads,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "figures": [f for k in figures for f in figures[k]],
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": numpy.__version__, "scipy": scipy.__version__}}
    files = report.write_report(out, results, figures, meta, args.lang)
    print(f"wrote {files[0]}, {files[1].name}, {files[2].name} and {len(meta['figures'])} figures "
          f"in {meta['seconds']:.0f} s ({meta['cpu_seconds']:.0f} s CPU)")
    return 0
