"""What a cohort records about itself: truth.csv rows and the synth.json manifest."""

from __future__ import annotations

import glioscope
from glioscope.synth import contrasts, tumour, warp
from glioscope.synth.plan import RSNA_MISSING_FRACTION, RSNA_PLANES, Record
from glioscope.synth.presets import CLASSES, Preset
from glioscope.synth.subject import Subject

TRUTH_ID_COLUMNS = {
    "dicom": "dicom_patient_id",
    "rsna-miccai": "rsna_id",
    "brats": "brats_id",
    "ixi": "ixi_id",
    "imagefolder": "imagefolder_patient",
}


def truth_row(subject: Subject, record: Record, layouts: list[str]) -> dict:
    """Ground truth of one subject: ids per layout, labels, tumour centre, volumes and parameters."""
    row = {"subject": record.spec.index, "site": record.site, "grade": record.grade}
    row["mgmt"] = "" if record.spec.methylated is None else int(record.spec.methylated)
    for layout, column in TRUTH_ID_COLUMNS.items():
        row[column] = record.ids.get(layout, "") if layout in layouts else ""
    centre = subject.reference_mm if subject.has_tumour else [None] * 3
    row.update({f"centre_{axis}_mm": (round(float(v), 2) if v is not None else "") for axis, v in zip("xyz", centre)})
    for name in ("necrosis_ml", "non_enhancing_ml", "enhancing_ml", "oedema_ml"):
        row[name] = subject.volumes_ml.get(name, 0.0)
    row["rsna_missing_sequence"] = record.rsna_missing if "rsna-miccai" in layouts else ""
    row["rsna_planes"] = ";".join(f"{k}={v}" for k, v in record.rsna_planes.items()) if "rsna-miccai" in layouts else ""
    for name in ("hemisphere", *tumour.PARAMETERS, "rim_mm"):
        value = subject.params.get(name, "")
        row[name] = round(value, 4) if isinstance(value, float) else value
    return row


def describe(settings: Preset, seed: int, difficulty: float, mgmt_effect: float, layouts, records, outputs) -> dict:
    """The manifest (synth.json): settings, layouts and their folders, counts, and the generative model."""
    counts = {c: sum(r.grade == c for r in records) for c in CLASSES}
    return {
        "generator": "glioscope.synth",
        "glioscope_version": glioscope.__version__,
        "preset": settings.name,
        "preset_settings": settings.as_dict(),
        "seed": seed,
        "difficulty": difficulty,
        "mgmt_effect": mgmt_effect,
        "layouts": {name: outputs[name]["folder"] for name in layouts},  # layout -> folder under OUT
        "outputs": outputs,
        "counts": counts,
        "mgmt_counts": {
            "methylated": sum(r.spec.methylated is True for r in records),
            "unmethylated": sum(r.spec.methylated is False for r in records),
        },
        "truth": "truth.csv",
        "montage": "montage.png",
        "model": {
            "difficulty_formula": (
                "value = clip(mu(d) + s(d) * (z + shift), lo, hi), z ~ N(0,1); "
                "mu(d) = m + (1 - d) * (mu_grade - m), m = mean of mu_grade over II/III/IV; s(d) = sd * (1 + 2 d)"
            ),
            "mgmt_formula": (
                "grade IV only; methylated with p = 0.5 independently of everything else; "
                f"shift = -mgmt_effect for a methylated tumour on {', '.join(tumour.MGMT_PARAMETERS)}, else 0 "
                "(a shift of mgmt_effect standard deviations s(d)); the same z are drawn whatever the status"
            ),
            "parameters": tumour.distributions(difficulty),
            "rim_mm": {"uniform": list(tumour.RIM_MM)},
            "intensities": contrasts.INTENSITY,
            "scanner": {
                "contrast_jitter_log_sd": contrasts.CONTRAST_JITTER,
                "bias_field": {
                    "transform": "torchio.RandomBiasField",
                    "coefficients": contrasts.BIAS_COEFFICIENTS,
                    "order": 3,
                },
                "rician_noise_fraction_of_wm": list(contrasts.NOISE_FRACTION),
                "global_scale": list(contrasts.SCALE_RANGE),
            },
            "deformation": {
                "transform": "torchio.RandomAffineElasticDeformation",
                "affine": warp.AFFINE_KWARGS,
                "elastic": warp.ELASTIC_KWARGS,
            },
            "rsna": {"planes": RSNA_PLANES, "missing_fraction": RSNA_MISSING_FRACTION},
            "labels": {
                "0": "background",
                "1": "necrotic / non-enhancing tumour core",
                "2": "oedema",
                "4": "enhancing tumour",
            },
        },
    }
