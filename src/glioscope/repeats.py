"""`glioscope cv RECIPE --seeds 0 1 2 3 4`: the recipe repeated with other split and training seeds.

With 30 patients one cross-validation is one draw: another split, or another seed of the
training, moves every figure. Each seed here sets the recipe's split seed (cv.seed) and its
kind's training seed (Method.seed_setting), and trains an ordinary run folder OUT/seed<k>;
OUT/repeats.json records them, and glioscope.report.repeats writes the spread over repeats
(repeats.csv, repeats.html). --resume keeps the finished repeats and continues the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from glioscope.errors import GlioscopeError, InputError
from glioscope.methods import load_recipe
from glioscope.report.repeats import write_summary
from glioscope.rundir import METRICS, REPEATS, RunFolder
from glioscope.util import atomic

SPLIT_SEED = "cv.seed"


def repeat_folder(out: Path, seed: int) -> Path:
    return Path(out) / f"seed{seed}"


def _settings(method, recipe, overrides: Sequence[str]) -> dict:
    """The settings each seed sets; refuses a recipe whose split cannot vary or overrides that set them already."""
    if recipe.cv.mode == "source":
        raise GlioscopeError(
            f"recipe {recipe.name} splits by source (cv.mode source): the split is fixed and cannot vary by seed; "
            "--seeds needs cv.mode kfold or holdout"
        )
    settings = {"split": SPLIT_SEED, "training": method.seed_setting}
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in settings.values():
            raise GlioscopeError(f"--set {item}: --seeds sets {key} for each repeat; leave it out of --set")
    return settings


def _record(out: Path, wanted: dict, resume: bool) -> dict:
    """repeats.json as it will be: a new one, or the one being resumed when it describes the same repeats."""
    path = out / REPEATS
    if out.exists() and any(out.iterdir()) and not resume:
        raise InputError(out, "already exists; pass --resume to continue its repeats or choose another folder")
    if resume and path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        for key in ("recipe", "overrides", "quick", "cohort"):
            if previous.get(key) != wanted[key]:
                raise InputError(
                    path,
                    f"records {key} {previous.get(key)!r}, not {wanted[key]!r}: give the same recipe, cohort and "
                    "options to resume these repeats",
                )
        wanted["runs"] = {**previous.get("runs", {}), **wanted["runs"]}
    return wanted


def run_repeats(
    recipe_name: str,
    cohort: Path,
    out: Path,
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    quick: bool = False,
    resume: bool = False,
    report: bool = True,
) -> Path:
    """Train the recipe once per seed into OUT/seed<k>, then write the spread; returns OUT/repeats.html."""
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise GlioscopeError("--seeds needs at least one seed")
    out = Path(out)
    method, recipe = load_recipe(recipe_name, overrides, quick=quick)
    settings = _settings(method, recipe, overrides)
    record = _record(
        out,
        {
            "recipe": recipe.name,
            "overrides": list(overrides),
            "quick": bool(quick),
            "cohort": str(cohort),
            "settings": settings,
            "seeds": seeds,
            "runs": {str(s): repeat_folder(out, s).name for s in seeds},
        },
        resume,
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / REPEATS, record)
    if settings["training"] is None:
        print(f"note: a {method.kind} recipe has no training seed of its own; each seed sets its split only")
    for seed in seeds:
        run_dir = repeat_folder(out, seed)
        if resume and not RunFolder(run_dir).metrics_stale() and (run_dir / METRICS).is_file():
            print(f"Repeat seed {seed}: finished earlier, reused ({run_dir})")
            continue
        print(
            f"\nRepeat seed {seed}: {SPLIT_SEED}={seed}"
            + (f", {settings['training']}={seed}" if settings["training"] else "")
        )
        seeded = [*overrides, f"{SPLIT_SEED}={seed}"] + (
            [f"{settings['training']}={seed}"] if settings["training"] else []
        )
        method, recipe = load_recipe(recipe_name, seeded, quick=quick)
        method.run(recipe, cohort, run_dir, resume=resume and run_dir.exists(), report=report)
    page = write_summary(out, n_boot=recipe.evaluate.bootstrap)
    print(_spread_text(out))
    print(f"Repeats: {page}")
    return page


def _spread_text(out: Path) -> str:
    """The spread of each model's pooled patient-level metrics, for the terminal."""
    spread = json.loads((out / REPEATS).read_text(encoding="utf-8"))["spread"]
    lines = ["Spread over repeats (pooled CV, patient level):"]
    for row in spread:
        lines.append(
            f"  {row['model']:<22} {row['metric']:<18} {row['mean']:.3f} ± {row['sd']:.3f} "
            f"(min {row['min']:.3f}, max {row['max']:.3f}, {row['n_repeats']} repeats)"
        )
    return "\n".join(lines)
