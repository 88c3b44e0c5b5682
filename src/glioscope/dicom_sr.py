"""A prediction as a DICOM Structured Report (highdicom), for a PACS: the class, the probabilities, the model.

One Comprehensive SR per patient, in the patient's own study, referencing every instance
of the series the prediction was made from (its evidence). Its content, under a container
"glioscope prediction":

    Finding (DCM 121071)              the predicted class (a code of the scheme 99GLIOSCOPE)
    Probability of <class>            one numeric item per class, unit 1 (UCUM: no unit)
    Algorithm Name (DCM 111001)       "glioscope <recipe>"
    Algorithm Version (DCM 111003)    glioscope's version and the run's name
    Comment (DCM 121106)              research use only, not for diagnosis; the models averaged

Private codes use the coding scheme designator 99GLIOSCOPE, as DICOM allows for local codes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
import pydicom
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from glioscope import __version__
from glioscope.errors import InputError
from glioscope.io.dicom import read_header
from glioscope.io.files import walk_files
from glioscope.util import atomic

SCHEME = "99GLIOSCOPE"
NOT_FOR_DIAGNOSIS = "Research use only: not for diagnosis or any clinical decision."


def _code(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value[:16], scheme_designator=SCHEME, meaning=meaning[:64])


def evidence_of(inputs: list[dict]) -> list[pydicom.Dataset]:
    """The headers of the instances of the series the prediction read (the SR's evidence)."""
    datasets = []
    for entry in inputs:
        series = {uid for uid in str(entry.get("series_id", "")).split("+") if uid}
        for folder in str(entry["path"]).split(" + "):
            for path in walk_files(Path(folder)):
                header = read_header(path)
                if isinstance(header, dict) and (not series or header["series_uid"] in series):
                    datasets.append(with_type2(pydicom.dcmread(path, stop_before_pixels=True, force=True)))
    if not datasets:
        raise InputError(None, "a DICOM SR references DICOM images; this input holds none (NIfTI or a 2D image)")
    return datasets


# Patient and study attributes of DICOM type 2 (present, possibly empty) that an SR copies from its evidence.
_TYPE2 = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)


def with_type2(dataset: pydicom.Dataset) -> pydicom.Dataset:
    for keyword in _TYPE2:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def structured_report(
    patient: dict, classes: list[str], evidence: list[pydicom.Dataset], recipe: str, run: str, models: str
) -> pydicom.Dataset:
    """The SR dataset of one patient's prediction (`patient`: an entry of predict's "patients")."""
    probabilities = patient["probabilities"]
    items = [
        hd.sr.CodeContentItem(
            name=Code("121071", "DCM", "Finding"),
            value=_code(patient["prediction"], f"glioscope class {patient['prediction']}"),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    ]
    for name in classes:
        items.append(
            hd.sr.NumContentItem(
                name=_code(f"P-{name}", f"Probability of {name}"),
                value=float(probabilities[name]),
                unit=Code("1", "UCUM", "no units"),
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        )
    for code, text in (
        (Code("111001", "DCM", "Algorithm Name"), f"glioscope {recipe}"),
        (Code("111003", "DCM", "Algorithm Version"), f"glioscope {__version__}, run {run}"),
        (Code("121106", "DCM", "Comment"), f"{NOT_FOR_DIAGNOSIS} {models}."),
    ):
        items.append(
            hd.sr.TextContentItem(name=code, value=text[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        )
    content = hd.sr.ContainerContentItem(name=_code("PREDICTION", "glioscope prediction"))
    content.ContentSequence = items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom warns about optional attributes the evidence lacks
        return hd.sr.ComprehensiveSR(
            evidence=evidence,
            content=content,
            series_instance_uid=generate_uid(),
            series_number=9901,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="glioscope",
            series_description=f"glioscope {recipe} prediction",
            is_complete=True,
            is_final=False,
            is_verified=False,
        )


def write_structured_report(result: dict, out: Path, overwrite: bool = False) -> Path:
    """Write predict's `result` for its one patient as a DICOM SR file at `out` (atomically)."""
    out = Path(out)
    atomic.check_output_file(out, overwrite)
    if len(result["patients"]) != 1:
        raise InputError(out, f"a DICOM SR holds one patient's prediction; the input has {len(result['patients'])}")
    evidence = evidence_of([entry for entry in result["inputs"] if entry["status"] == "predicted"])
    try:
        report = structured_report(
            result["patients"][0],
            result["classes"],
            evidence,
            result["recipe"],
            Path(result["run"]).name,
            result["models"],
        )
    except (ValueError, TypeError, AttributeError) as exc:  # highdicom's checks of the evidence's attributes
        raise InputError(out, f"cannot be written as a DICOM SR of this input ({type(exc).__name__}: {exc})") from None
    with atomic.atomic_path(out) as tmp:
        report.save_as(tmp, enforce_file_format=True)
    return out
