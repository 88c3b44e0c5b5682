"""2.5D slices (data.slices.context): the right neighbours, edges, kaggle_3m by slice_index, roi_crop, the stem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torchvision.models as tvm
from PIL import Image

from glioscope import cohort
from glioscope.augment.images import IMAGENET_MEAN, build_train_transform, fixed_expansion, normalisation
from glioscope.cli import main
from glioscope.ingest import ingest
from glioscope.io.study import read_study
from glioscope.models.build import build_model
from glioscope.models.cnn2d import adapt_first_conv, build_2d
from glioscope.models.spec import ModelSpec
from glioscope.recipe import load_recipe
from glioscope.samples import build_samples, samples_of_study
from glioscope.samples.slices import SliceSettings, build_slices
from glioscope.samples.slices.context import window


def build(frame, cache_dir=None, **settings):
    return build_slices(frame, SliceSettings(**settings), cache_dir=cache_dir, workers=1, progress=False)


def write_nifti(path: Path, data: np.ndarray) -> str:
    nib.Nifti1Image(data.astype(np.float32), np.eye(4)).to_filename(path)
    return str(path)


def volume_rows(tmp_path: Path, volumes: dict[str, np.ndarray], mask: np.ndarray | None = None) -> pd.DataFrame:
    """One study of NIfTI volumes (identity affine: axial slice z is data[:, :, z]), one row per sequence."""
    mask_path = write_nifti(tmp_path / "seg.nii.gz", mask) if mask is not None else ""
    rows = [
        {
            "patient_id": "p1",
            "study_id": "p1",
            "kind": "volume",
            "sequence": sequence,
            "label": "a",
            "path": write_nifti(tmp_path / f"{sequence}.nii.gz", data),
            "mask_path": mask_path,
        }
        for sequence, data in volumes.items()
    ]
    return cohort.to_frame(rows)


def constant_slices(values) -> np.ndarray:
    """A 12 x 12 x len(values) volume whose axial slice z holds values[z] everywhere."""
    return np.broadcast_to(np.asarray(values, np.float32), (12, 12, len(values))).copy()


def grey(level: float) -> int:
    """A slice's 8-bit value after min-max scaling to [0, 1]."""
    return int(np.rint(level * 255))


def test_window_groups_per_channel_and_repeats_the_edge_slice():
    volume = np.zeros((5, 2, 1, 1))
    volume[:, 0, 0, 0] = np.arange(5)  # channel 0: slice z holds z
    volume[:, 1, 0, 0] = 10 + np.arange(5)
    assert window(volume, 2, 1)[:, 0, 0].tolist() == [1, 2, 3, 11, 12, 13]
    assert window(volume, 0, 2)[:, 0, 0].tolist() == [0, 0, 0, 1, 2, 10, 10, 10, 11, 12]
    assert window(volume, 4, 1)[:, 0, 0].tolist() == [3, 4, 4, 13, 14, 14]
    assert window(volume, 3, 0)[:, 0, 0].tolist() == [3, 13]


def test_volume_slices_carry_their_neighbours_per_sequence_with_edges_repeated(tmp_path):
    t1 = constant_slices([1, 2, 3, 4, 5])  # scaled: z / 4
    flair = constant_slices([50, 40, 30, 20, 10])  # scaled: (4 - z) / 4
    frame = volume_rows(tmp_path, {"T1": t1, "FLAIR": flair})
    samples = build(frame, channels=("T1", "FLAIR"), size=12, context=1)
    assert samples.images.shape == (5, 6, 12, 12) and samples.settings.sample_shape() == (6, 12, 12)
    assert samples.table["slice_index"].tolist() == [0, 1, 2, 3, 4]
    for z, image in zip(samples.table["slice_index"], samples.images):
        near = [min(max(z + j, 0), 4) for j in (-1, 0, 1)]
        expected = [grey(n / 4) for n in near] + [grey((4 - n) / 4) for n in near]
        assert [int(v) for v in image[:, 5, 5]] == expected, z
        assert (image == image[:, :1, :1]).all()  # each channel one slice, uniform
    wider = build(frame, channels=("T1",), size=12, context=2)
    assert [int(v) for v in wider.images[0, :, 0, 0]] == [grey(n / 4) for n in (0, 0, 0, 1, 2)]
    assert [int(v) for v in wider.images[4, :, 0, 0]] == [grey(n / 4) for n in (2, 3, 4, 4, 4)]


def test_neighbours_are_cropped_with_the_centre_slices_box(tmp_path):
    rng = np.random.default_rng(1)
    plane = rng.uniform(10, 100, (16, 16))
    data = np.repeat(plane[:, :, None], 5, axis=2)  # every slice the same picture
    mask = np.zeros((16, 16, 5))
    mask[1:5, 2:6, 1], mask[8:14, 6:12, 2], mask[3:15, 1:9, 3] = 1, 1, 1  # a different box on slices 1-3
    frame = volume_rows(tmp_path, {"T1": data}, mask)
    flat = build(frame, channels="single", size=24, roi_crop=True)
    deep = build(frame, channels="single", size=24, roi_crop=True, context=1)
    assert flat.table["slice_index"].tolist() == deep.table["slice_index"].tolist() == [1, 2, 3]
    assert flat.table["crop"].tolist() == deep.table["crop"].tolist()
    assert not np.array_equal(flat.images[0], flat.images[1])  # the boxes differ: so would the crops
    for centre, image in zip(flat.images, deep.images):
        for channel in image:  # slices z-1, z, z+1: the same picture cut with slice z's box
            assert np.array_equal(channel, centre[0])


def write_kaggle3m(root: Path, cases: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """A kaggle_3m folder: <case>/<case>_<n>.tif (n from 1) with a _mask.tif each, and data.csv; its rows."""
    for case, images in cases.items():
        (root / case).mkdir(parents=True)
        for number, image in enumerate(images, start=1):
            Image.fromarray(image).save(root / case / f"{case}_{number}.tif")
            mask = np.zeros(image.shape[:2], np.uint8)
            mask[4:10, 4:10] = 255
            Image.fromarray(mask).save(root / case / f"{case}_{number}_mask.tif")
    patients = sorted({"_".join(case.split("_")[:3]) for case in cases})
    table = pd.DataFrame({"Patient": patients, "neoplasm_histologic_grade": [1 + i % 2 for i in range(len(patients))]})
    table.to_csv(root / "data.csv", index=False)
    frame, _ = ingest([root], out=None, workers=1, progress=False, echo=None)
    return frame


def labelled_slice(value: int) -> np.ndarray:
    """A 16 x 16 RGB slice whose channel c holds value + c everywhere."""
    image = np.empty((16, 16, 3), np.uint8)
    image[...] = [value + c for c in range(3)]
    return image


def test_kaggle3m_slices_take_their_neighbours_from_the_study_by_slice_index(tmp_path):
    cases = {
        "TCGA_AA_0001_20000101": [labelled_slice(10 * n) for n in (1, 2, 3, 4)],
        "TCGA_AA_0002_20000101": [labelled_slice(100 + 10 * n) for n in (1, 2, 3, 4)],
    }
    frame = write_kaggle3m(tmp_path / "kaggle_3m", cases)
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # table order does not matter
    settings = dict(channels=("T1", "FLAIR", "T1c"), scaling="none", size=16)
    flat, deep = build(frame, **settings), build(frame, **settings, context=1)
    assert deep.images.shape == (8, 9, 16, 16)
    assert flat.table.equals(deep.table)
    assert np.array_equal(deep.images[:, 1::3], flat.images)  # the centre slices are the 2D ones
    for row, image in zip(deep.table.itertuples(), deep.images):
        base = 100 if row.patient_id == "TCGA_AA_0002" else 0
        near = [min(max(row.slice_index + j, 1), 4) for j in (-1, 0, 1)]
        expected = [base + 10 * n + c for c in range(3) for n in near]
        assert [int(v) for v in image[:, 0, 0]] == expected, row.slice_id
    assert not any("without neighbouring slices" in note for note in deep.notes)


def test_a_changed_neighbour_file_is_decoded_again(tmp_path):
    case = "TCGA_AA_0001_20000101"
    frame = write_kaggle3m(tmp_path / "kaggle_3m", {case: [labelled_slice(10 * n) for n in (1, 2, 3)]})
    settings = dict(channels="native", scaling="none", size=16, context=1)
    before = build(frame, tmp_path / "cache", **settings)
    first = before.table["slice_index"].tolist().index(1)
    assert int(before.images[first, 2, 0, 0]) == 20  # slice 1's z+1 is slice 2 (its first channel)
    neighbour = tmp_path / "kaggle_3m" / case / f"{case}_2.tif"
    Image.fromarray(labelled_slice(77)).save(neighbour)
    os.utime(neighbour, ns=(neighbour.stat().st_atime_ns, neighbour.stat().st_mtime_ns + 10**9))
    after = build(frame, tmp_path / "cache", **settings)
    assert int(after.images[first, 2, 0, 0]) == 77


def test_a_lone_2d_image_repeats_itself_with_a_note(tiny_phantom):
    frame, _ = ingest([tiny_phantom / "imagefolder"], out=None, workers=1, progress=False, echo=None)
    frame = frame.head(4)
    flat, deep = build(frame, size=32), build(frame, size=32, context=1)
    assert deep.images.shape == (4, 9, 32, 32)
    for channel in range(9):
        assert np.array_equal(deep.images[:, channel], flat.images[:, 0])
    assert any("4 2D image(s) without neighbouring slices" in note for note in deep.notes)


def test_context_0_keeps_the_cache_key_and_the_arrays(tiny_phantom, tmp_path):
    # The keys these settings had before data.slices.context existed: their caches stay valid.
    assert SliceSettings().key() == SliceSettings(context=0).key() == "c4c1d7c740a01e57"
    tumour = dict(channels=("T1", "FLAIR", "T1c"), selection="tumour", roi_crop=True, size=32)
    assert SliceSettings(**tumour).key() == "3067c75c3509c082"
    assert SliceSettings(**tumour, context=1).key() != SliceSettings(**tumour).key()
    frame, _ = ingest([tiny_phantom / "brats"], out=None, workers=1, progress=False, echo=None)
    frame = frame[frame["patient_id"].isin(sorted(set(frame["patient_id"]))[:2])]
    settings = dict(channels=("T1", "FLAIR", "T1c"), selection="middle", size=32, scaling="percentile")
    flat = build(frame, tmp_path / "cache", **settings)
    deep = build(frame, tmp_path / "cache", **settings, context=1)
    assert flat.images.shape[1] == 3 and deep.images.shape[1] == 9
    assert np.array_equal(deep.images[:, 1::3], flat.images) and flat.table.equals(deep.table)
    by_slice = {(r.item_id, r.slice_index): i for i, r in enumerate(flat.table.itertuples())}
    for i, row in enumerate(deep.table.itertuples()):  # a neighbour is the 2D slice next to it
        below = by_slice.get((row.item_id, row.slice_index - 1))
        if below is not None:
            assert np.array_equal(deep.images[i, 0::3], flat.images[below])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [SliceSettings(**settings).key(), SliceSettings(**settings, context=1).key()]
    )


def test_a_new_study_gives_the_cohorts_25d_samples(tiny_phantom):
    data = load_recipe("alexnet-tumour-25d", ["data.slices.size=64", "data.slices.min_tumour_area=10"]).data
    assert data.slices.context == 1 and data.sample_shape() == (9, 64, 64)
    frame, _ = ingest([tiny_phantom / "brats"], out=None, workers=1, progress=False, echo=None)
    case = Path(sorted(frame["path"])[0]).parent  # one BraTS case folder: its sequences and seg
    cohort_samples = build_samples(frame[frame["path"].str.startswith(str(case))], data, None, progress=False)
    study_samples = samples_of_study(read_study(case), data)
    assert study_samples.images.shape[1] == 9 and len(study_samples.images) > 0
    assert np.array_equal(study_samples.images, cohort_samples.images)
    assert study_samples.table["slice_index"].tolist() == cohort_samples.table["slice_index"].tolist()


def two_d_and_25d_stems(pretrained: nn.Conv2d, channels: int, k: int) -> tuple[nn.Module, nn.Module]:
    nets = []
    for in_chans, context in ((channels, 0), (channels * (2 * k + 1), k)):
        holder = nn.Module()
        holder.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        holder.conv1.load_state_dict(pretrained.state_dict())
        adapt_first_conv(holder, "conv1", in_chans, context)
        nets.append(holder.conv1)
    return nets[0], nets[1]


@pytest.mark.parametrize("channels, k", [(3, 1), (3, 2), (1, 1), (4, 1)])
def test_spread_filters_see_equal_neighbours_as_the_2d_stem_sees_the_centre(channels, k):
    torch.manual_seed(0)
    pretrained = nn.Conv2d(3, 8, 3, padding=1)
    flat, deep = two_d_and_25d_stems(pretrained, channels, k)
    assert deep.in_channels == channels * (2 * k + 1)
    x = torch.rand(2, channels, 10, 10)
    same = x.repeat_interleave(2 * k + 1, dim=1)  # every slice of channel c's group is channel c
    torch.testing.assert_close(deep(same), flat(x), rtol=1e-5, atol=1e-5)
    # the group's slices share the filter evenly
    group = deep.weight[:, : 2 * k + 1]
    assert torch.allclose(group, group[:, k : k + 1].expand_as(group))


def test_a_torchvision_backbone_spreads_its_pretrained_stem(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), weights)
    flat = build_2d("resnet18", 2, in_chans=3, weights=str(weights))
    deep = build_model(ModelSpec(name="resnet18", weights=str(weights)), 2, in_chans=9, context=1).model
    x = torch.rand(1, 3, 32, 32)
    stem_2d, stem_25d = flat.backbone.conv1, deep.backbone.conv1
    assert stem_25d.in_channels == 9
    torch.testing.assert_close(stem_25d(x.repeat_interleave(3, dim=1)), stem_2d(x), rtol=1e-5, atol=1e-5)


def test_normalisation_and_augmentation_treat_each_group_alike():
    mean, std = normalisation("imagenet", 9, depth=3)
    assert mean.flatten().tolist() == pytest.approx([m for m in IMAGENET_MEAN for _ in range(3)])
    assert std.shape == (9, 1, 1)
    assert normalisation("imagenet", 3)[0].flatten().tolist() == pytest.approx(IMAGENET_MEAN)
    torch.manual_seed(0)
    one = torch.randint(0, 255, (1, 24, 24), dtype=torch.uint8)
    nine = one.repeat(9, 1, 1)
    policy = build_train_transform({"autoaugment": "svhn"})  # torchvision's ops take 1 or 3 channels only
    for _ in range(30):
        out = policy(nine)
        assert out.shape == nine.shape and (out == out[:1]).all()  # one op, one magnitude for every channel
    for variant in fixed_expansion("svhn"):
        assert torch.equal(variant(nine), variant.transform(one).repeat(9, 1, 1))


def test_a_25d_recipe_cross_validates_and_predicts(tiny_phantom, tmp_path, monkeypatch):
    monkeypatch.setenv("GLIOSCOPE_CACHE", str(tmp_path / "cache"))
    ingest([tiny_phantom / "brats"], tmp_path / "cohort", progress=False, echo=None)
    settings = [
        "train.epochs=1",
        "cv.folds=2",
        "data.slices.size=32",
        "data.slices.min_tumour_area=10",
        "data.slices.tumour_slices=3",
        "evaluate.bootstrap=20",
        "evaluate.gradcam_per_class=1",
        "model.name=smallcnn",
        "model.weights=none",
        "model.options={width: 4}",
    ]
    args = [a for s in settings for a in ("--set", s)]
    run = tmp_path / "run"
    assert main(["cv", "alexnet-tumour-25d", "--cohort", str(tmp_path / "cohort"), "-o", str(run), *args]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["samples"]["settings"]["context"] == 1
    state = torch.load(next(run.glob("fold*/model.pt")), map_location="cpu", weights_only=True)
    stem = next(t for name, t in state["model"].items() if t.dim() == 4)
    assert stem.shape[1] == 9  # [T1, FLAIR, T1c] x slices z-1, z, z+1
    case = Path(sorted(pd.read_csv(tmp_path / "cohort" / "cohort.csv")["path"])[0]).parent
    out = tmp_path / "prediction.json"
    assert main(["predict", str(run), str(case), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["slices"]
