"""``gankit report``: one self-contained HTML file describing a run."""
from __future__ import annotations

import argparse

NAME = "report"

EXAMPLES = """\
examples:
  gankit report runs/fm                      # writes runs/fm/report.html
  gankit report runs/fm --out fm.html        # anywhere else
  gankit report runs/fm --max-frames 30      # a shorter training animation

The file embeds every image and chart (no network, no other files): open it in any browser or mail it.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="write a self-contained HTML report of a run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_DIR", help="a run folder")
    p.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--max-frames", type=int, default=60, help="frames of the training animation (default 60)")
    return p


def run(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.run, args.out, max_frames=args.max_frames)
    print(f"wrote {path}")
    return 0
