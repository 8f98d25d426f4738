"""docs/PROTOCOLS.md is in the repository, and every "PROTOCOLS.md §N" cited anywhere names one of its sections."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "PROTOCOLS.md"
HERE = Path(__file__).resolve()
CITE = re.compile(r"PROTOCOLS\.md(?:'s)?[ \t]+§[ \t]*(\d+)")
BARE = re.compile(r"(?<!docs/)PROTOCOLS\.md")


def sources():
    for top in ("src", "docs", "scripts", "tests"):
        for p in sorted((ROOT / top).rglob("*")):
            if p.suffix in {".py", ".md", ".html", ".txt", ".json"} and p.is_file() and p not in (DOC, HERE):
                yield p
    yield ROOT / "README.md"


def test_the_protocols_doc_is_in_the_repository():
    assert DOC.is_file()
    text = DOC.read_text(encoding="utf-8")
    assert "## References" in text and "arXiv:1712.04086" in text  # PacGAN, the protocol of §1 and §2


def test_every_citation_names_a_section_of_docs_protocols_md():
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", DOC.read_text(encoding="utf-8"), flags=re.M)}
    assert sections == {1, 2, 3, 4, 5}
    cited, bad = 0, []
    for p in sources():
        for ln, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            where = f"{p.relative_to(ROOT)}:{ln}"
            for n in CITE.findall(line):
                cited += 1
                if int(n) not in sections:
                    bad.append(f"{where}: §{n} is not a section of docs/PROTOCOLS.md")
            if BARE.search(line):  # say where the file is: it sits in docs/, not next to the citing text
                bad.append(f"{where}: cite it as docs/PROTOCOLS.md")
    assert cited >= 30  # the scan found the citations (src, docs, scripts, tests, README)
    assert not bad, "\n".join(bad)
