"""The cohort table: schema, selection, summary, saving and loading."""

from __future__ import annotations

import pytest

from glioscope import cohort
from glioscope.errors import InputError


def rows():
    return [
        {
            "item_id": "a1",
            "patient_id": "A",
            "kind": "series",
            "path": "/d/a1",
            "plane": "sagittal",
            "sequence": "T1",
            "label": "II",
        },
        {
            "item_id": "a2",
            "patient_id": "A",
            "kind": "series",
            "path": "/d/a2",
            "plane": "axial",
            "sequence": "T1c",
            "label": "II",
        },
        {
            "item_id": "b1",
            "patient_id": "B",
            "kind": "series",
            "path": "/d/b1",
            "plane": "sagittal",
            "sequence": "T1",
            "label": "IV",
        },
        {"item_id": "c1", "patient_id": "C", "kind": "series", "path": "/d/c1", "plane": "axial", "sequence": "FLAIR"},
    ]


def test_to_frame_fills_every_column_with_defaults():
    frame = cohort.to_frame(rows())
    assert list(frame.columns[: len(cohort.COLUMNS)]) == cohort.COLUMNS
    assert frame.loc[3, "label"] == "" and frame.loc[0, "slice_index"] == -1 and frame.loc[0, "n_slices"] == 1


def test_select_is_case_insensitive_and_ands_keys():
    frame = cohort.to_frame(rows())
    chosen = cohort.select(frame, cohort.parse_selection("plane=Sagittal,sequence=t1"))
    assert list(chosen["item_id"]) == ["a1", "b1"]
    either = cohort.select(frame, cohort.parse_selection("sequence=T1c|FLAIR"))
    assert list(either["item_id"]) == ["a2", "c1"]


def test_bad_selection_is_a_clear_error():
    frame = cohort.to_frame(rows())
    with pytest.raises(InputError, match="unknown column 'weight'"):
        cohort.select(frame, {"weight": ["1"]})
    with pytest.raises(InputError, match="KEY=VALUE"):
        cohort.parse_selection("sagittal")


def test_summary_counts_patients_per_class_and_lists_skips():
    frame = cohort.to_frame(rows())
    summary = cohort.summarise(frame, [cohort.Skip("/d/x.dcm", "truncated")], ["a note"])
    assert summary["patients"] == 3 and summary["items"] == 4
    assert summary["classes"] == {"II": {"items": 2, "patients": 1}, "IV": {"items": 1, "patients": 1}}
    assert summary["unlabelled_items"] == 1
    text = cohort.format_summary(summary)
    assert "/d/x.dcm: truncated" in text and "Note: a note" in text and "sagittal 2" in text


def test_save_and_load_round_trip(tmp_path):
    frame = cohort.to_frame(rows())
    cohort.save(tmp_path, frame, cohort.summarise(frame))
    again = cohort.load(tmp_path)
    assert again[cohort.COLUMNS].equals(frame[cohort.COLUMNS])
    assert {p.name for p in tmp_path.iterdir()} == {"cohort.csv", "skipped.csv", "summary.json", "summary.txt"}


def test_load_rejects_what_is_not_a_cohort(tmp_path):
    with pytest.raises(InputError, match="no cohort table"):
        cohort.load(tmp_path)
    (tmp_path / "cohort.csv").write_text("item_id,patient_id,kind,path\nx,,image,/p.png\n")
    with pytest.raises(InputError, match="no patient_id"):
        cohort.load(tmp_path)
    (tmp_path / "cohort.csv").write_text("item_id,patient_id,kind,path\nx,P,picture,/p.png\n")
    with pytest.raises(InputError, match="unknown kind"):
        cohort.load(tmp_path)
