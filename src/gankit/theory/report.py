"""The theory report: one list of blocks rendered as ``report.md`` and as a self-contained ``index.html``
(apart from the PNGs beside it), plus ``results.json`` with every number.

Blocks are tuples: ``("h1"|"h2"|"p", text)``, ``("code", text)``, ``("table", header, rows)``, ``("img", file, alt)``.
The explanations are fixed text, in English or Chinese from the ``theory.*`` keys of :mod:`gankit.i18n`'s
catalogues; every number comes from the experiments' results.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path

from .. import i18n
from ..errors import GankitError
from ..io import atomic_write_text
from . import closed_form as cf

# The formulas are the same in every language; titles and explanations are the catalogues' theory.s{k}.* keys.
FORMULA = {
    1: "D*(x) = p_data(x) / (p_data(x) + p_g(x))",
    2: "C(G) = max_D V(D, G) = E_data[log D*(x)] + E_g[log(1 - D*(x))] = -log 4 + 2 JSD(p_data ‖ p_g)",
    3: "V(D, G) = E_data[log D(x)] + E_z[log(1 - D(G(z)))]  ->  -log 4,   JSD(p_data ‖ p_g)  ->  0",
    4: "d/dl log(1 - sigmoid(l)) = -D,   d/dl [-log sigmoid(l)] = -(1 - D),   ratio = (1 - D) / D",
    5: ("D_pack(x_1, ..., x_m) = D([x_1; ...; x_m]);  high quality: distance to nearest mean < 3 std;  "
        "captured mode: >= 1 high-quality sample"),
}


# Keys are spelled out whole (never pieced together), so the catalogue test finds every one in this file.
SECTION_TEXT = {1: ("theory.s1.title", "theory.s1.text"), 2: ("theory.s2.title", "theory.s2.text"),
                3: ("theory.s3.title", "theory.s3.text"), 4: ("theory.s4.title", "theory.s4.text"),
                5: ("theory.s5.title", "theory.s5.text")}


class Text:
    """The report's words in one language: ``T("theory.s1.setup", p_data=...)`` is the catalogue text of that
    key with its ``{name}`` placeholders filled in (every value already formatted)."""

    def __init__(self, lang: str = "en"):
        self.lang = lang
        self.cat = i18n.catalogue(lang, "theory.")

    def __call__(self, key: str, **values) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), self.cat[key])


def _f(x, nd: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, int):
        return str(x)
    if x != 0 and abs(x) < 10 ** -nd:
        return f"{x:.2e}"
    return f"{x:.{nd}f}"


def _section1(n: dict, T: Text) -> list:
    tol = n["tolerance"]
    rows = [[c["p_g"], _f(c["max_gap"]), _f(c["mean_gap"]), str(c["grid_points"]),
             T("theory.yes") if c["max_gap"] <= tol["max"] and c["mean_gap"] <= tol["mean"] else T("theory.no")]
            for c in n["cases"]]
    return [("p", T("theory.s1.setup", p_data=n["cases"][0]["p_data"], d_steps=n["d_steps"], d_batch=n["d_batch"],
                    grid=n["grid"])),
            ("table", ["p_g", "max |D - D*|", "mean |D - D*|", T("theory.s1.col.grid_points"),
                       T("theory.s1.col.within", max=tol["max"], mean=tol["mean"])], rows)]


def _section2(n: dict, T: Text) -> list:
    rows = [[r["p_g"], _f(r["jsd"], 6), _f(r["c_from_jsd"], 6), _f(r["c_quadrature"], 6),
             f"{_f(r['v_trained_d'])} ± {_f(r['v_trained_d_se'])}", _f(r["reference_c"], 6)] for r in n["pairs"]]
    return [("p", T("theory.s2.setup", p_data=n["p_data"], mc_samples=f"{n['mc_samples']:,}")),
            ("table", ["p_g", T("theory.s2.col.jsd"), "-log 4 + 2 JSD", T("theory.s2.col.quadrature"),
                       T("theory.s2.col.mc"), T("theory.s2.col.reference")], rows)]


def _section3(n: dict, T: Text) -> list:
    return [("p", T("theory.s3.setup", **{k: n[k] for k in ("p_data", "z_dim", "hidden", "g_loss", "optimizer", "batch",
                                                      "steps", "p_g_estimate")})),
            ("table", [T("theory.s3.col.quantity"), T("theory.s3.col.start"), T("theory.s3.col.end"),
                       T("theory.s3.col.last_fifth"), T("theory.s3.col.target")],
             [["V(D, G)", _f(n["v_start"]), _f(n["v_end"]), _f(n["v_last_fifth_mean"]),
               f"{_f(n['minus_log4'])} (-log 4)"],
              ["JSD(p_data ‖ p_g)", _f(n["jsd_start"]), _f(n["jsd_end"]), _f(n["jsd_last_fifth_mean"]),
               T("theory.s3.jsd_target", floor=_f(n["jsd_kde_floor"]))]])]


def _section4(n: dict, T: Text) -> list:
    ag = [[_f(a["d"], 3), _f(a["minimax"], 6), _f(a["nonsaturating"], 6), _f(a["ratio"]), _f(a["ratio_closed_form"])]
          for a in n["autograd_check"]]
    runs = [[r["dim"] + ", " + r["target"], r["optimizer"], r["g_loss"], _f(r["d_fake_step0"]),
             _f(r["g_grad_norm_step0"]), _f(r["g_grad_norm_first50_mean"]), _f(r["steps_until_d_fake_above_escape"]),
             _f(r["energy_distance_step50"]), _f(r["energy_distance_end"])] for r in n["runs"]]
    text = []
    for dim in dict.fromkeys(r["dim"] for r in n["runs"]):
        for opt in dict.fromkeys(r["optimizer"] for r in n["runs"]):
            by = {r["g_loss"]: r for r in n["runs"] if r["dim"] == dim and r["optimizer"] == opt}
            mm, ns = by.get("minimax"), by.get("nonsaturating")
            if not (mm and ns and mm["g_grad_norm_step0"] > 0):
                continue
            text.append(T("theory.s4.summary", dim=dim, optimizer=opt.split()[0], d_fake=_f(mm["d_fake_step0"]),
                          ratio=f"{ns['g_grad_norm_step0'] / mm['g_grad_norm_step0']:.0f}",
                          closed_form=f"{cf.grad_ratio(mm['d_fake_step0']):.0f}", escape=n["escape_d_fake"],
                          ns_steps=_f(ns["steps_until_d_fake_above_escape"]),
                          mm_steps=_f(mm["steps_until_d_fake_above_escape"]),
                          ns_ed=_f(ns["energy_distance_step50"], 3), mm_ed=_f(mm["energy_distance_step50"], 3)))
    return [("p", T("theory.s4.autograd")),
            ("table", ["D(G(z))", "∂ g_minimax / ∂l", "∂ g_nonsaturating / ∂l", T("theory.s4.col.ratio"),
                       "(1 - D) / D"], ag),
            ("p", T("theory.s4.training", warmup_d_steps=n["warmup_d_steps"], steps=n["steps"],
                    escape=n["escape_d_fake"])),
            ("table", [T("theory.s4.col.p_data"), T("theory.s4.col.optimizer"), T("theory.s4.col.g_loss"),
                       T("theory.s4.col.d_fake0"), T("theory.s4.col.grad0"), T("theory.s4.col.grad50"),
                       T("theory.s4.col.escape", escape=n["escape_d_fake"]), T("theory.s4.col.ed50"),
                       T("theory.s4.col.ed_end")], runs),
            *[("p", t) for t in text]]


def _section5(n: dict, T: Text) -> list:
    rows = [[m["method"], str(sn["step"]), f"{sn['modes']}/8", _f(sn["high_quality_pct"], 1), _f(sn["kl"], 3),
             _f(sn["effective_modes"], 2), _f(sn["basin_pct"], 2)] for m in n["methods"] for sn in m["snapshots"]]
    return [("p", T("theory.s5.setup", g_hidden=n["g_hidden"], d_hidden=n["d_hidden"], g_loss=n["g_loss"],
                    optimizer=n["optimizer"], batch=n["batch"], steps=n["steps"],
                    eval_samples=f"{n['eval_samples']:,}")),
            ("table", [T("theory.s5.col.method"), T("theory.s5.col.step"), T("theory.s5.col.modes"),
                       T("theory.s5.col.high_quality"), "KL", T("theory.s5.col.effective"), T("theory.s5.col.basin")],
             rows)]


DETAILS = {1: _section1, 2: _section2, 3: _section3, 4: _section4, 5: _section5}


def build_blocks(results: dict[int, dict], figures: dict[int, list[str]], meta: dict, lang: str = "en") -> list:
    """The report as blocks, its words in ``lang`` ("en" or "zh"; the numbers are the same in every language)."""
    T = Text(lang)
    v = meta["versions"]
    blocks: list = [("h1", T("theory.title")), ("p", T("theory.intro")),
                    ("p", T("theory.run", command=meta["command"],
                            settings=T("theory.quick") if meta["settings"]["quick"] else T("theory.full"),
                            seed=meta["settings"]["seed"], threads=meta["threads"], seconds=f"{meta['seconds']:.0f}",
                            cpu_seconds=f"{meta['cpu_seconds']:.0f}", torch=v["torch"], numpy=v["numpy"],
                            scipy=v["scipy"]))]
    for k, res in results.items():
        title, text = SECTION_TEXT[k]
        blocks += [("h2", T(title)), ("p", T(text)), ("code", FORMULA[k])]
        blocks += DETAILS[k](res["numbers"], T)
        blocks += [("img", f, T("theory.figure", section=k, name=f.rsplit(".", 1)[0])) for f in figures.get(k, [])]
        blocks.append(("p", T("theory.seconds", seconds=f"{res['numbers']['seconds']:.1f}")))
    return blocks


def to_markdown(blocks: list) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}")
        elif kind == "h2":
            out.append(f"## {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "code":
            out.append(f"```\n{b[1]}\n```")
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})")
        elif kind == "table":
            def cells(r):
                return "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"
            out.append("\n".join([cells(b[1]), "|" + "---|" * len(b[1])] + [cells(r) for r in b[2]]))
    return "\n\n".join(out) + "\n"


CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
       "table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px}"
       "th{background:#f3f3f3}pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}img{max-width:100%}")


def to_html(blocks: list, lang: str = "en") -> str:
    e = html.escape
    # English keeps the page exactly as it was before the report had a second language (no lang attribute)
    tag = "<html>" if lang == "en" else "<html lang='zh-CN'>" if lang == "zh" else f"<html lang='{e(lang)}'>"
    title = e(Text(lang)("theory.html_title"))
    out = ["<!DOCTYPE html>", f"{tag}<head><meta charset='utf-8'><title>{title}</title>",
           f"<style>{CSS}</style></head><body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "code":
            out.append(f"<pre>{e(b[1])}</pre>")
        elif kind == "img":
            out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(c))}</th>" for c in b[1])
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
            out.append(f"<table><tr>{head}</tr>{body}</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):  # numpy scalars
        return _jsonable(x.item())
    return x


def write_report(out: Path, results: dict[int, dict], figures: dict[int, list[str]], meta: dict,
                 lang: str = "en") -> list[Path]:
    """Write report.md, index.html and results.json into ``out``, the words in ``lang``; returns their paths."""
    from .experiments import SECTIONS

    blocks = build_blocks(results, figures, meta, lang)
    numbers = {"meta": meta, "sections": {SECTIONS[k][0]: res["numbers"] for k, res in results.items()}}
    return [atomic_write_text(out / "report.md", to_markdown(blocks)),
            atomic_write_text(out / "index.html", to_html(blocks, lang)),
            atomic_write_text(out / "results.json",
                              json.dumps(_jsonable(numbers), indent=1, ensure_ascii=False) + "\n")]


BEGIN, END = "<!-- generated by gankit theory: begin -->", "<!-- generated by gankit theory: end -->"


def update_doc(doc: str | Path, report_dir: str | Path) -> Path:
    """Replace the text between the BEGIN and END markers of ``doc`` with ``report_dir``/report.md (headings
    shifted one level down, figure links made relative to ``doc``), so a document shows a run's numbers
    without anyone typing them."""
    doc, report_dir = Path(doc), Path(report_dir)
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise GankitError(f"{doc} has no '{BEGIN}' ... '{END}' block to fill")
    rel = Path(os.path.relpath(report_dir, doc.parent)).as_posix()
    body = (report_dir / "report.md").read_text(encoding="utf-8")
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.MULTILINE)
    body = re.sub(r"!\[([^\]]*)\]\(([^)/]+)\)", rf"![\1]({rel}/\2)", body)
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return atomic_write_text(doc, f"{head}{BEGIN}\n\n{body}\n{END}{tail}")
