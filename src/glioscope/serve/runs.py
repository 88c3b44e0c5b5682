"""The runs under RUNS_DIR: found, summarised and looked up by id, never by a path taken from a request.

A run is a folder holding a run's metadata (rundir.INFO) and recipe (rundir.CONFIG): a trained run, a
model package (`glioscope export`), an external test (`glioscope test`) or a fused run. Its id is its
path relative to RUNS_DIR ("sdl", "site-a/r18"); a request names an id, and only ids found by the scan
are served. Of a run's files only those a person reads are served, named in an allow-list (its report,
metrics, patient-level predictions, figures, a package's README and metadata): never its weights, its
cohort and splits (absolute file paths), its record or recipe; and a link is not followed. Text shown
from a run has the server's paths removed (`public`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


from glioscope import methods
from glioscope.errors import GlioscopeError
from glioscope.rundir import COHORT, CONFIG, INFO, METADATA, METRICS, MODEL_CARD, PATIENTS, REPORT, RunFolder
from glioscope.util import csvfiles
from glioscope.util.paths import inside

MAX_DEPTH = 4  # RUNS_DIR/a/b/c/run: deep enough for experiment folders, shallow enough to scan quickly
FIGURES = "figures"  # the report's figures, RUN/figures/*.png
READABLE = (REPORT, METRICS, PATIENTS, MODEL_CARD, METADATA)  # and FIGURES/*.png: nothing else of a run is served
_FIGURE = re.compile(FIGURES + r"/[A-Za-z0-9_.-]+\.png")
_SKIP = {"cache", "tensorboard", "gradcam", FIGURES, "__pycache__", "node_modules"}
# An absolute path in text (after a space, quote, bracket, '>' or '=', so never inside a data: URI's base64).
_ABSOLUTE = re.compile(r"(?<![^\s\"'(>\[=])/(?:[^\s/\"'<>]+/)+")


@dataclass
class RunEntry:
    """One run as the app lists it."""

    id: str
    path: Path
    root: Path  # RUNS_DIR
    kind: str  # "run" | "package" | "external test" | "fused"
    info: dict
    applicable: bool  # has fold models that `predict` can apply


def scan(root: Path) -> dict[str, RunEntry]:
    """Every run under `root` (not below a run: its fold folders are not runs), by id, sorted."""
    root = Path(root).resolve()
    found: dict[str, RunEntry] = {}

    def visit(folder: Path, depth: int) -> None:
        if (folder / INFO).is_file() and (folder / CONFIG).is_file():
            entry = _entry(root, folder)
            if entry is not None:
                found[entry.id] = entry
            return
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(
                p
                for p in folder.iterdir()
                if p.is_dir() and not p.name.startswith(".") and p.name not in _SKIP and inside(p, root)
            )  # a link out of RUNS_DIR is not followed
        except OSError:
            return
        for child in children:
            visit(child, depth + 1)

    visit(root, 0)
    return dict(sorted(found.items()))


def _entry(root: Path, folder: Path) -> RunEntry | None:
    run = RunFolder(folder)
    try:
        record, config = run.record(), run.config()
    except (GlioscopeError, OSError, ValueError):
        return None  # unreadable metadata: not listed (the page of a broken run would only repeat the error)
    kind, info = record.kind, record.to_json()
    try:
        applicable = kind in ("run", "package") and bool(methods.method_of_config(config, folder).fold_files(run))
    except GlioscopeError:  # no fold models (training unfinished), a fused run, a kind this version does not know
        applicable = False
    rel = folder.relative_to(root).as_posix()
    rel = rel if rel != "." else folder.name
    return RunEntry(id=rel, path=folder, root=root, kind=kind, info=info, applicable=applicable)


def readable(entry: RunEntry) -> list[str]:
    """The names of the run's files that the app serves (see the module docstring), those present."""
    figures = sorted(p.name for p in (entry.path / FIGURES).glob("*.png"))
    return [n for n in (*READABLE, *(f"{FIGURES}/{f}" for f in figures)) if run_file(entry, n) is not None]


def run_file(entry: RunEntry, name: str) -> Path | None:
    """The file `name` of a run when it is one the app serves and is there, itself rather than a link; else None."""
    if name not in READABLE and not _FIGURE.fullmatch(name):
        return None
    candidate = entry.path / name
    folder = entry.path.resolve()
    resolved = candidate.resolve()
    if resolved != folder / name or not inside(resolved, entry.root):  # a link, whether it leads in or out
        return None
    return resolved if resolved.is_file() else None


def public(text: str, root: Path) -> str:
    """`text` as the app shows it: paths under RUNS_DIR relative to it, any other absolute path as '…/its name'."""
    text = text.replace(str(root) + "/", "").replace(str(root), root.name)
    return _ABSOLUTE.sub("…/", text)


def headline(entry: RunEntry) -> dict | None:
    """The patient-level headline of a run's cross-validation (or external test): metric, value, 95% CI, mean ± SD.

    The metric is the AUC for a binary task (as MGMT reports lead with it), accuracy otherwise; the
    model is the run's headline model (the last one run.json lists; an external test's own headline).
    """
    path = entry.path / METRICS
    if not path.is_file():
        return None
    try:
        metrics = RunFolder(entry.path).metrics()
    except GlioscopeError:
        return None
    models = list(metrics.get("models") or entry.info.get("models") or [])
    model = (entry.info.get("external") or {}).get("headline") or (models[-1] if models else None)
    sets = [s for s in metrics.get("sets", ["cv"]) if model in metrics.get(s, {})]
    if not sets:
        return None
    level = metrics[sets[0]][model].get("patient") or metrics[sets[0]][model].get("image")
    if not level:
        return None
    binary = len(metrics.get("class_names") or entry.info.get("class_names") or []) == 2
    key, title = ("auc", "AUC") if binary else ("accuracy", "accuracy")
    low, high = (level.get("ci") or {}).get(key, (None, None))
    mean, sd = (level.get("summary") or {}).get(key, (None, None))
    return {
        "model": model,
        "set": sets[0],
        "metric": title,
        "value": (level.get("pooled") or {}).get(key),
        "ci": [low, high],
        "mean": mean,
        "sd": sd,
        "n_folds": level.get("n_folds", 0),
        "n_patients": level.get("n_patients"),
    }


def patients(entry: RunEntry) -> int | None:
    """How many patients the run trained and was evaluated on (a package: how many it was trained on)."""
    if (entry.path / COHORT).is_file():
        try:
            frame = csvfiles.read(entry.path / COHORT, usecols=["patient_id"])
        except (OSError, ValueError):
            return None
        return int(frame["patient_id"].nunique())
    try:
        return RunFolder(entry.path).patients_count()
    except GlioscopeError:
        return None


def summary(entry: RunEntry) -> dict:
    """What the runs page shows of a run (JSON-ready)."""
    info = entry.info
    label = RunFolder(entry.path).label()
    return {
        "id": entry.id,
        "kind": entry.kind,
        "recipe": info.get("recipe"),
        "title": public(label.title, entry.root),
        "description": public(label.description, entry.root),
        "task": public(label.task, entry.root),
        "classes": info.get("class_names", []),
        "patients": patients(entry),
        "headline": headline(entry),
        "split_statement": public(info.get("split_statement") or "", entry.root),
        "leaky": bool(info.get("leaky")),
        "samples": (info.get("samples") or {}).get("kind"),
        "applicable": entry.applicable,
        "has_report": (entry.path / REPORT).is_file(),
        "notes": [public(str(n), entry.root) for n in info.get("notes", [])],
    }
