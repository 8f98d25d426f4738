"""The theory report: one list of blocks rendered as ``report.md`` and as a self-contained ``index.html``
(apart from the PNGs beside it), plus ``results.json`` with every number.

Blocks are tuples: ``("h1"|"h2"|"p", text)``, ``("code", text)``, ``("table", header, rows)``, ``("img", file, alt)``.
The explanations are fixed text; every number comes from the experiments' results.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path

from ..errors import GankitError
from ..io import atomic_write_text
from . import closed_form as cf

INTRO = {
    1: ("1. The optimal discriminator",
        ("For a fixed generator, the best D answers \"is x real?\" with the share of the density at x that comes "
         "from the data (Goodfellow et al. 2014, Prop. 1). We fit an MLP D by maximising V(D, G) on fresh samples "
         "of p_data and of a fixed p_g, and compare it with D* on a grid of x."),
        "D*(x) = p_data(x) / (p_data(x) + p_g(x))"),
    2: ("2. The value of the game",
        ("Putting D* back into V gives the criterion G minimises; it is smallest, -log 4, exactly when "
         "p_g = p_data (Thm. 1). We compute C(G) by quadrature, estimate V at the trained D by Monte Carlo, and set "
         "both next to -log 4 + 2 JSD. A trained D can only do worse than D*, so V(trained D, G) <= C(G) up to "
         "sampling noise."),
        "C(G) = max_D V(D, G) = E_data[log D*(x)] + E_g[log(1 - D*(x))] = -log 4 + 2 JSD(p_data ‖ p_g)"),
    3: ("3. Training dynamics",
        ("Trained together (Algorithm 1), G moves p_g towards p_data while D keeps chasing D*. At the equilibrium "
         "p_g = p_data, D is 1/2 everywhere, V(D, G) = -log 4 and the JSD is 0. We train a 1-D GAN on a two-mode "
         "p_data and watch both quantities; p_g is known only through G's samples, so its density is estimated."),
        "V(D, G) = E_data[log D(x)] + E_z[log(1 - D(G(z)))]  ->  -log 4,   JSD(p_data ‖ p_g)  ->  0"),
    4: ("4. Why the non-saturating G loss",
        ("With l = D's logit and D = sigmoid(l), the minimax G loss log(1 - D) has gradient -D with respect to l, "
         "which vanishes when D confidently rejects fakes; -log D has gradient -(1 - D), near -1 there. Both losses "
         "have the same fixed point. We start a 1-D and a 2-D GAN where the paper says this matters (D already "
         "fitted to a poor initial G) and train with each loss from the same seed and the same starting networks."),
        "d/dl log(1 - sigmoid(l)) = -D,   d/dl [-log sigmoid(l)] = -(1 - D),   ratio = (1 - D) / D"),
    5: ("5. Mode collapse, seen",
        ("Nothing in the alternating updates makes G cover every mode: it can put its mass on a few modes and hop "
         "between them, and a D that judges one sample at a time cannot see a lack of variety. PacGAN (Lin et al. "
         "2018) lets D judge m samples at once, all real or all fake, so a collapsed G's packs look unlike real "
         "ones. Data: ring8 of docs/PROTOCOLS.md §1 (8 Gaussians at angles 2πk/8, radius 1, std 0.01), scored as "
         "there."),
        ("D_pack(x_1, ..., x_m) = D([x_1; ...; x_m]);  high quality: distance to nearest mean < 3 std;  "
         "captured mode: >= 1 high-quality sample")),
}


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


def _section1(n: dict) -> list:
    tol = n["tolerance"]
    rows = [[c["p_g"], _f(c["max_gap"]), _f(c["mean_gap"]), str(c["grid_points"]),
             "yes" if c["max_gap"] <= tol["max"] and c["mean_gap"] <= tol["mean"] else "no"] for c in n["cases"]]
    return [("p", (f"p_data = {n['cases'][0]['p_data']}. D: MLP 1-64-64-1, leaky ReLU, Adam 2e-3 with cosine decay, "
                   f"{n['d_steps']} steps of {n['d_batch']} + {n['d_batch']} samples. Grid: {n['grid']}.")),
            ("table", ["p_g", "max |D - D*|", "mean |D - D*|", "grid points",
                       f"within max {tol['max']}, mean {tol['mean']}"], rows)]


def _section2(n: dict) -> list:
    rows = [[r["p_g"], _f(r["jsd"], 6), _f(r["c_from_jsd"], 6), _f(r["c_quadrature"], 6),
             f"{_f(r['v_trained_d'])} ± {_f(r['v_trained_d_se'])}", _f(r["reference_c"], 6)] for r in n["pairs"]]
    return [("p", (f"p_data = {n['p_data']}; each D fitted as in section 1; V by Monte Carlo on {n['mc_samples']:,} "
                   "fresh samples of each distribution (± one standard error). Reference: docs/PROTOCOLS.md §5.")),
            ("table", ["p_g", "JSD (nats)", "-log 4 + 2 JSD", "C(G), quadrature", "V(trained D, G), MC",
                       "reference C(G)"], rows)]


def _section3(n: dict) -> list:
    return [("p", (f"p_data = {n['p_data']}. G: z ({n['z_dim']}-D normal) -> {n['hidden']} -> 1; D: 1 -> {n['hidden']} "
                   f"-> 1; {n['g_loss']} G loss, {n['optimizer']}, batch {n['batch']}, {n['steps']} steps. "
                   f"p_g estimate: {n['p_g_estimate']}; JSD by the trapezoid rule on a grid of [-5, 5]. Even a "
                   f"perfect G shows the KDE floor (the JSD of a KDE of as many p_data samples, mean of 5).")),
            ("table", ["quantity", "start", "end", "mean of last fifth", "target"],
             [["V(D, G)", _f(n["v_start"]), _f(n["v_end"]), _f(n["v_last_fifth_mean"]),
               f"{_f(n['minus_log4'])} (-log 4)"],
              ["JSD(p_data ‖ p_g)", _f(n["jsd_start"]), _f(n["jsd_end"]), _f(n["jsd_last_fifth_mean"]),
               f"0 (KDE floor {_f(n['jsd_kde_floor'])})"]])]


def _section4(n: dict) -> list:
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
            text.append(f"{dim}, {opt.split()[0]}: at step 0 D(G(z)) = {_f(mm['d_fake_step0'])} and G's gradient is "
                        f"{ns['g_grad_norm_step0'] / mm['g_grad_norm_step0']:.0f}x larger with the non-saturating loss "
                        f"((1 - D)/D at that D: {cf.grad_ratio(mm['d_fake_step0']):.0f}x); mean D(G(z)) reaches "
                        f"{n['escape_d_fake']} after {_f(ns['steps_until_d_fake_above_escape'])} steps "
                        f"(non-saturating) vs {_f(mm['steps_until_d_fake_above_escape'])} (minimax); energy distance "
                        f"at step 50: {_f(ns['energy_distance_step50'], 3)} vs {_f(mm['energy_distance_step50'], 3)}.")
    return [("p", "Autograd through gankit.losses at one fake sample with D(G(z)) = D, against the closed form:"),
            ("table", ["D(G(z))", "∂ g_minimax / ∂l", "∂ g_nonsaturating / ∂l", "ratio", "(1 - D) / D"], ag),
            ("p", (f"Training: G and D as in section 3; D first fitted for {n['warmup_d_steps']} steps against the "
                   f"initial G; then {n['steps']} alternating steps, batch 256. Progress: energy distance (ED) between "
                   f"1,000 G samples and 1,000 data samples, and the first step at which D stops rejecting G's "
                   f"samples confidently (batch mean of D(G(z)) >= {n['escape_d_fake']}). Adam divides each gradient "
                   f"by its running RMS and so hides much of the gradient's scale: expect the gap to be widest with "
                   f"SGD, the update of the paper's Algorithm 1.")),
            ("table", ["p_data", "optimizer", "G loss", "D(G(z)) at 0", "‖∇G‖ at 0", "mean ‖∇G‖, steps 0-49",
                       f"steps until D(G(z)) >= {n['escape_d_fake']}", "ED at step 50", "ED at end"], runs),
            *[("p", t) for t in text]]


def _section5(n: dict) -> list:
    rows = [[m["method"], str(sn["step"]), f"{sn['modes']}/8", _f(sn["high_quality_pct"], 1), _f(sn["kl"], 3),
             _f(sn["effective_modes"], 2), _f(sn["basin_pct"], 2)] for m in n["methods"] for sn in m["snapshots"]]
    return [("p", (f"G: z (2-D normal) -> {n['g_hidden']} -> 2; D: (2·m) -> {n['d_hidden']} -> 1; {n['g_loss']} G "
                   f"loss, {n['optimizer']}, {n['batch']} D inputs per step (m·{n['batch']} samples), {n['steps']} "
                   f"steps, same seed for both. Scores on {n['eval_samples']:,} samples, one seed: the protocol's "
                   "mean over 5 seeds and 400 epochs of larger networks is beyond this report's budget, so compare "
                   "the two rows with each other, not with the table of docs/PROTOCOLS.md §1. KL: high-quality "
                   "samples' mode histogram against uniform, nats. Effective modes (gankit's addition, not the "
                   "protocol's): exp(entropy) of the mode histogram of the samples within half a mode spacing of a "
                   "mode (their share: % in a basin), 1 (one mode) to 8 (even spread).")),
            ("table", ["method", "step", "modes", "% high quality", "KL", "effective modes", "% in a basin"], rows)]


DETAILS = {1: _section1, 2: _section2, 3: _section3, 4: _section4, 5: _section5}


def build_blocks(results: dict[int, dict], figures: dict[int, list[str]], meta: dict) -> list:
    blocks: list = [("h1", "gankit theory: the derivation, executable"),
                     ("p", ("Goodfellow et al. (2014) argue that the discriminator estimates a probability of \"real\", "
                            "that the game's value at the best D measures the Jensen-Shannon divergence, and that G "
                            "should maximise log D(G(z)). Each section below checks one claim on distributions whose "
                            "densities are known.")),
                     ("p", (f"Run: {meta['command']} — {'quick' if meta['settings']['quick'] else 'full'} settings, "
                            f"seed {meta['settings']['seed']}, {meta['threads']} CPU thread(s), "
                            f"{meta['seconds']:.0f} s in all ({meta['cpu_seconds']:.0f} s CPU); "
                            f"torch {meta['versions']['torch']}, "
                            f"numpy {meta['versions']['numpy']}, scipy {meta['versions']['scipy']}. "
                            "All numbers are in results.json."))]
    for k, res in results.items():
        title, text, formula = INTRO[k]
        blocks += [("h2", title), ("p", text), ("code", formula)]
        blocks += DETAILS[k](res["numbers"])
        blocks += [("img", f, f"section {k}: {f.rsplit('.', 1)[0]}") for f in figures.get(k, [])]
        blocks.append(("p", f"({res['numbers']['seconds']:.1f} s)"))
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


def to_html(blocks: list) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>gankit theory</title>",
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


def write_report(out: Path, results: dict[int, dict], figures: dict[int, list[str]], meta: dict) -> list[Path]:
    """Write report.md, index.html and results.json into ``out``; returns their paths."""
    from .experiments import SECTIONS

    blocks = build_blocks(results, figures, meta)
    numbers = {"meta": meta, "sections": {SECTIONS[k][0]: res["numbers"] for k, res in results.items()}}
    return [atomic_write_text(out / "report.md", to_markdown(blocks)),
            atomic_write_text(out / "index.html", to_html(blocks)),
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
