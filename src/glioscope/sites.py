"""Which site (hospital, scanner) each patient comes from, and cross-validation folds that keep sites whole.

    found = patient_sites(frame)                        # Sites (patient -> site, and where it was read) or None
    table, meta = make_site_splits(frame, folds=5)      # `glioscope split --by-site`: each fold holds whole sites

A site is read from the first of these that names every patient:
- a column the user names (`--site-column NAME`): every patient must have one value there;
- the cohort's `site` column;
- the DICOM InstitutionName, else ManufacturerModelName, recorded at ingest (columns `institution`,
  `scanner`); a patient scanned at two places takes the one of most of its rows, and the source that tells two
  or more sites apart is preferred;
- the TCGA tissue-source-site code in the patient id (TCGA_CS_4941 -> CS).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from glioscope.errors import InputError
from glioscope.split import check_splits, fold_counts

SITE_COLUMN = "site"  # a cohort column that names each patient's site
HEADERS = {"institution": "DICOM InstitutionName", "scanner": "DICOM ManufacturerModelName"}  # cohort columns
TCGA_SITE = re.compile(r"^TCGA[-_]([A-Za-z0-9]{2})[-_]")  # TCGA_CS_4941 -> CS (the tissue source site)


def site_of(patient_id: str) -> str | None:
    """The site a patient id tells (TCGA's tissue source site), else None."""
    found = TCGA_SITE.match(str(patient_id))
    return found.group(1) if found else None


@dataclass
class Sites:
    """Each patient's site and where it was read."""

    by_patient: pd.Series  # patient_id -> site (str)
    source: str  # in words: "column 'site'", "DICOM InstitutionName", "TCGA site code of the patient id"
    column: str | None = None  # the cohort column read, None for the patient ids

    @property
    def names(self) -> list[str]:
        return sorted(self.by_patient.unique())

    def of(self, patient_ids) -> pd.Series:
        """The sites of these patients (NaN for a patient it does not know)."""
        return pd.Series(list(patient_ids)).map(self.by_patient)


def patient_sites(frame: pd.DataFrame, column: str | None = None, source=None) -> Sites | None:
    """Each patient's site (see the module docstring), or None when the cohort does not tell."""
    if column:
        if column not in frame:
            raise InputError(source, f"has no column {column!r} to read sites from; columns: {', '.join(frame)}")
        return Sites(_one_per_patient(frame, column, source), f"column {column!r}", column)
    if SITE_COLUMN in frame and (frame[SITE_COLUMN].fillna("").astype(str).str.strip() != "").all():
        return Sites(_one_per_patient(frame, SITE_COLUMN, source), f"column {SITE_COLUMN!r}", SITE_COLUMN)
    single = None
    for name, words in HEADERS.items():
        if name not in frame:
            continue
        values = frame[name].fillna("").astype(str).str.strip()
        rows = frame.loc[values != "", "patient_id"].astype(str)
        if rows.nunique() < frame["patient_id"].nunique():
            continue  # some patients' headers did not say
        by_patient = values[values != ""].groupby(rows).agg(lambda s: s.value_counts().index[0])
        found = Sites(by_patient, words, name)
        if by_patient.nunique() > 1:
            return found
        single = single or found
    ids = pd.Series(frame["patient_id"].astype(str).unique())
    codes = ids.map(site_of)
    if codes.notna().all() and (single is None or codes.nunique() > 1):
        return Sites(pd.Series(codes.values, index=ids.values), "TCGA site code of the patient id")
    return single


def _one_per_patient(frame: pd.DataFrame, column: str, source) -> pd.Series:
    """A column's one value per patient; refuses a patient without one or with two."""
    values = frame[column].fillna("").astype(str).str.strip()
    patients = frame["patient_id"].astype(str)
    blank = sorted(patients[values == ""].unique())
    if blank:
        raise InputError(
            source, f"{len(blank)} patient(s) have no {column!r} (e.g. {', '.join(blank[:3])}): their site is unknown"
        )
    per_patient = values.groupby(patients).agg(lambda s: sorted(set(s)))
    mixed = per_patient[per_patient.map(len) > 1]
    if len(mixed):
        raise InputError(
            source,
            f"{len(mixed)} patient(s) have rows of two sites in {column!r} (e.g. {mixed.index[0]}: "
            f"{', '.join(mixed.iloc[0])}); a patient belongs to one site",
        )
    return per_patient.map(lambda s: s[0])


def make_site_splits(
    cohort: pd.DataFrame,
    folds: int = 5,
    seed: int = 0,
    label_column: str = "label",
    site_column: str | None = None,
    source=None,
) -> tuple[pd.DataFrame, dict]:
    """Cross-validation folds of whole sites: one site per fold (leave-one-site-out) when `folds` is at least the
    number of sites, else `folds` groups of sites stratified by label; refuses what cannot be tested."""
    if folds < 2:
        raise InputError(None, f"--folds must be at least 2, got {folds}")
    if label_column not in cohort:
        raise InputError(source, f"has no column {label_column!r} to stratify by")
    found = patient_sites(cohort, site_column, source)
    if found is None:
        raise InputError(
            source,
            "does not tell the patients' sites (no 'site' column, no DICOM institution or scanner for every patient, "
            "no TCGA ids): name the column that does with --site-column",
        )
    if len(found.names) < 2:
        raise InputError(
            source,
            f"all its patients are of one site ({found.names[0]}, {found.source}): there is no other to hold out",
        )
    labels = cohort[label_column].astype(str)
    if (labels == "").any():
        raise InputError(source, f"{int((labels == '').sum())} items have no {label_column!r}; use --drop-unlabelled")
    per_patient = labels.groupby(cohort["patient_id"].astype(str).values).agg(lambda s: sorted(set(s)))
    if (per_patient.map(len) > 1).any():
        raise InputError(source, "some patients carry more than one label: a split needs one label per patient")
    patient_label = per_patient.map(lambda s: s[0])
    patient_site = found.by_patient.reindex(patient_label.index)
    names = found.names
    notes = []
    if folds >= len(names):
        if folds > len(names):
            notes.append(f"--folds {folds} asks for more folds than the {len(names)} sites: one fold per site")
        patient_fold = patient_site.map({site: k for k, site in enumerate(names)})
        mode = f"leave-one-site-out over {len(names)} sites"
    else:
        patient_fold = pd.Series(-1, index=patient_label.index)
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=int(seed))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k, (_, held) in enumerate(splitter.split(patient_label.index, patient_label.values, patient_site)):
                patient_fold.iloc[held] = k
        notes += [str(w.message) for w in caught]
        mode = f"{folds} folds of whole sites ({len(names)} sites)"
    fold_sites = {f"fold{k}": sorted(patient_site[patient_fold == k].unique()) for k in sorted(patient_fold.unique())}
    notes.append("sites held out: " + "; ".join(f"{k} {', '.join(v)}" for k, v in fold_sites.items()))
    classes = sorted(patient_label.unique())
    for name, held_sites in fold_sites.items():
        held = patient_fold == int(name[4:])
        lacking = [c for c in classes if not (patient_label[~held] == c).any()]
        if lacking:
            raise InputError(
                source,
                f"holding out site(s) {', '.join(held_sites)} leaves no training patient of class(es) "
                f"{', '.join(lacking)}: a model could not learn them (use sites with both classes or fewer folds)",
            )
        present = sorted(patient_label[held].unique())
        if len(present) == 1:  # the pooled out-of-fold AUC is still defined: noted, not refused
            notes.append(
                f"{name} (site {', '.join(held_sites)}) holds only class {present[0]} patients: its own AUC is "
                "undefined; the pooled out-of-fold AUC is not"
            )
    table = pd.DataFrame(
        {"item_id": cohort["item_id"].values, "patient_id": cohort["patient_id"].values, "label": labels.values}
    )
    table["partition"] = "cv"
    table["fold"] = table["patient_id"].astype(str).map(patient_fold).astype(int).values
    table["leaky"] = False
    check_splits(table)
    meta = {
        "folds": len(fold_sites),
        "test_fraction": 0.0,
        "seed": seed,
        "label_column": label_column,
        "grouped_by": "site",
        "mode": "by-site",
        "site_column": site_column,  # the user's; else evaluation finds the same source again
        "site_source": found.source,
        "sites": fold_sites,
        "leaky": False,
        "statement": f"Split by site ({mode}, sites from {found.source}): each fold holds whole sites, so every "
        "patient is tested by models that saw none of its site; no patient has items in two partitions.",
        "counts": fold_counts(table),
        "notes": notes,
    }
    return table, meta
