"""The README and docs/ as a newcomer meets them: short, every page reachable, every link alive, and every
command they show that needs no data and no network runs as written."""

import re
import shlex
from pathlib import Path

import pytest

from bench.cli import main
from bench.report.kinds import KINDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
# the commands a reader can paste without data or network (the others train, or need a dataset or W&B)
RUNNABLE = ("list", "measure", "dashboard")


def documents() -> list[Path]:
    return [README, *PAGES]


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def fenced_commands() -> list[tuple[str, str]]:
    """(page, command) for each line of a fenced block that runs `python -m bench` or asks for --help."""
    found = []
    for path in documents():
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():  # a line continued with \ is one command
                line = line.strip()
                if line.startswith(("python -m bench", "./run_all.sh")):
                    found.append((path.name, line))
    return found


def test_the_readme_is_a_five_minute_read_and_reaches_every_page():
    lines = README.read_text().splitlines()
    assert len(lines) < 200
    assert next(i for i, line in enumerate(lines) if line == "## Layout") < 30  # the map near the top
    linked = {target.split("#")[0] for target in links(README)}
    assert {f"docs/{page.name}" for page in PAGES} <= linked
    assert {"variants.md", "training.md", "datasets.md", "suites.md", "statistics.md", "tracking.md",
            "scaling-out.md", "performance.md", "reliability.md", "architecture.md"} <= {page.name for page in PAGES}


def test_every_link_of_the_docs_leads_somewhere():
    for path in documents():
        for target in links(path):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            destination = (path.parent / file).resolve() if file else path
            assert destination.exists(), (path.name, target)
            if anchor and destination.suffix == ".md":
                assert anchor in anchors(destination), (path.name, target)


def test_the_docs_list_every_report_kind():
    page = (ROOT / "docs" / "suites.md").read_text()
    for name in KINDS:
        assert f"| `{name}` |" in page, name


def runnable() -> list[tuple[str, str]]:
    chosen = []
    for page, line in fenced_commands():
        words = shlex.split(line, comments=True)
        if words[:3] == ["python", "-m", "bench"] and len(words) > 3 and (words[3] in RUNNABLE or "--help" in words):
            if not any(word.startswith("[") or word.isupper() for word in words):  # a synopsis, not a command
                chosen.append((page, line))
        elif words[:1] == ["./run_all.sh"] and words[1:] in (["--help"], ["help"]):
            chosen.append((page, line))
    return chosen


def test_the_docs_show_commands_that_need_nothing():
    assert len(runnable()) >= 6


@pytest.mark.parametrize("page, line", runnable(), ids=[f"{page}: {line}" for page, line in runnable()])
def test_each_fenced_command_that_needs_no_data_runs_as_written(page, line, tmp_path, monkeypatch, capsys):
    import subprocess

    monkeypatch.chdir(tmp_path)  # what it writes (a dashboard's definitions) lands here
    words = shlex.split(line, comments=True)
    if words[0] == "./run_all.sh":
        done = subprocess.run(["bash", str(ROOT / "run_all.sh"), *words[1:]], capture_output=True, text=True)
        assert done.returncode == 0, (page, line, done.stderr)
        return
    try:
        code = main(words[3:])
    except SystemExit as stopped:  # --help
        code = stopped.code
    assert code == 0, (page, line, capsys.readouterr().err)
