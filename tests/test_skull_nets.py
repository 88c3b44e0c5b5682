"""Skull stripping by networks (HD-BET, deepbet): refused when missing, safe loading, masks on a phantom head, cache keys."""

from __future__ import annotations

import importlib.metadata
import io
import sys
import zipfile

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from glioscope import cohort
from glioscope.samples.volumes import VolumeSettings, brain_nets, build_volumes, volume_from_file
from glioscope.samples.volumes.skullstrip import StripError
from glioscope.util.schema import SettingError

QUICK = dict(channels=("T1",), spacing=4.0, shape=(48, 56, 48))
NETWORKS = sorted(brain_nets.PACKAGES)


def _absent(monkeypatch, *choices: str) -> None:
    """Make the packages of these choices look uninstalled, as an import would find them."""
    for choice in choices:
        monkeypatch.setitem(sys.modules, brain_nets.PACKAGES[choice].module, None)


def _installed(choice: str) -> None:
    if brain_nets.version(choice) is None:
        extra = brain_nets.PACKAGES[choice].extra
        pytest.skip(f"{brain_nets.PACKAGES[choice].distribution} is not installed (pip install 'glioscope[{extra}]')")


@pytest.fixture(scope="module")
def head():
    """A healthy phantom subject at 4 mm (skull, marrow, scalp) and its T1 as a NIfTI-ready array."""
    from glioscope.synth.subject import SubjectSpec, simulate

    return simulate(SubjectSpec(index=3, grade="healthy", methylated=None, seed=11), 4, 0.35, 0.5)


def _t1_file(subject, folder):
    path = folder / "IXI900-Guys-0900-T1.nii.gz"
    nib.save(nib.Nifti1Image(subject.images["T1"].astype(np.float32), subject.affine), path)
    return path


@pytest.mark.parametrize("choice", NETWORKS)
def test_a_missing_package_is_refused_with_its_extra_before_any_volume_is_decoded(choice, monkeypatch, tmp_path):
    _absent(monkeypatch, choice)
    decoded = []
    monkeypatch.setattr("glioscope.samples.volumes.volume.load_channel", lambda source: decoded.append(source))
    bad = tmp_path / "not_a_volume_t1.nii.gz"
    bad.write_bytes(b"not gzip")
    frame = cohort.to_frame(
        [{"item_id": "a", "patient_id": "a", "study_id": "a", "kind": "volume", "path": str(bad), "sequence": "T1"}]
    )
    extra = brain_nets.PACKAGES[choice].extra
    with pytest.raises(SettingError, match=rf"data.volumes.skull_strip: '{choice}' needs .*glioscope\[{extra}\]"):
        build_volumes(frame, VolumeSettings(skull_strip=choice, **QUICK), tmp_path / "cache", workers=1, progress=False)
    assert decoded == [] and not (tmp_path / "cache").exists()


def test_auto_takes_the_best_strip_installed_and_mni_without_any(monkeypatch):
    monkeypatch.delenv(brain_nets.AUTO_ORDER_VARIABLE)  # the suite pins auto to mni (conftest)
    present = [tool for tool in brain_nets.AUTO_ORDER if brain_nets.version(tool) is not None]
    assert brain_nets.for_heads("auto") == present[0]
    _absent(monkeypatch, "hdbet")
    with_deepbet = "deepbet" if "deepbet" in present else "mni"
    assert brain_nets.for_heads("auto", "T1") == with_deepbet and brain_nets.for_heads("auto", "T1c") == with_deepbet
    assert brain_nets.for_heads("auto", "FLAIR") == "mni"  # deepbet is for T1-weighted volumes only
    _absent(monkeypatch, "deepbet")
    assert brain_nets.for_heads("auto") == "mni" and brain_nets.cache_tag("auto") == ""
    assert brain_nets.tool_of("auto", looks_stripped=True) is None  # a stripped volume keeps its own brain
    assert brain_nets.tool_of("none", looks_stripped=False) is None
    assert all(brain_nets.tool_of(tool, looks_stripped=True) == tool for tool in ("mni", *NETWORKS))


def test_the_order_auto_follows_can_be_pinned(monkeypatch):
    monkeypatch.setenv(brain_nets.AUTO_ORDER_VARIABLE, "deepbet")
    assert brain_nets.auto_order() == ("deepbet", "mni")
    monkeypatch.setenv(brain_nets.AUTO_ORDER_VARIABLE, "mni")
    assert brain_nets.for_heads("auto") == "mni"
    monkeypatch.setenv(brain_nets.AUTO_ORDER_VARIABLE, "hdbet,bet")
    with pytest.raises(SettingError, match="GLIOSCOPE_SKULL_STRIP_AUTO: bet is not a skull strip"):
        brain_nets.for_heads("auto")


def test_the_cache_key_changes_with_the_strip_and_its_version(monkeypatch):
    monkeypatch.delenv(brain_nets.AUTO_ORDER_VARIABLE)
    monkeypatch.setattr(brain_nets, "version", lambda choice: "" if choice not in brain_nets.PACKAGES else "1.0")
    keys = {choice: VolumeSettings(skull_strip=choice, **QUICK).key() for choice in brain_nets.CHOICES}
    assert len(set(keys.values())) == len(keys)
    monkeypatch.setattr(brain_nets, "version", lambda choice: "" if choice not in brain_nets.PACKAGES else "9.9")
    for choice in ("auto", *NETWORKS):  # another version of the package: another cache folder
        assert VolumeSettings(skull_strip=choice, **QUICK).key() != keys[choice]
    assert VolumeSettings(skull_strip="mni", **QUICK).key() == keys["mni"]
    auto_with_network = VolumeSettings(skull_strip="auto", **QUICK).key()
    monkeypatch.setattr(brain_nets, "version", lambda choice: "" if choice not in brain_nets.PACKAGES else None)
    assert VolumeSettings(skull_strip="auto", **QUICK).key() != auto_with_network  # auto now means mni


def test_deepbet_weights_are_read_without_running_the_archive(monkeypatch):
    _installed("deepbet")
    from glioscope.samples.volumes import net_deepbet

    path = net_deepbet._weights_file(net_deepbet._MODELS[0])
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load runs the archive's code"))
    weights = net_deepbet.read_archive_weights(path)
    net = net_deepbet.LinkNet3d()
    assert set(weights) == set(net.state_dict())  # every tensor has its place, none is left over
    net.load_state_dict(weights)
    with zipfile.ZipFile(path) as archive:
        assert any("/code/" in name for name in archive.namelist())  # the code is there, and is not read


def test_an_archive_holding_more_than_tensors_is_refused(tmp_path):
    _installed("deepbet")
    from glioscope.samples.volumes import net_deepbet

    pickled = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "hook": print}, pickled)  # a callable, as a malicious archive would hold
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(io.BytesIO(pickled.getvalue())) as source, zipfile.ZipFile(path, "w") as archive:
        for name in source.namelist():
            archive.writestr(name, source.read(name))
        archive.writestr(f"{source.namelist()[0].split('/')[0]}/code/__torch__.py", "print('ran')\n")
    with pytest.raises(StripError, match=r"model.pt holds more than tensors .*GLOBAL print"):
        net_deepbet.read_archive_weights(path)


def _check_mask(mask: np.ndarray, subject, bound: float) -> float:
    """The skull and scalp are gone and the brain is kept; Dice with the phantom's brain above `bound`.

    Measured on two phantom heads (seeds 11 and 5, 4 mm): deepbet 0.983, 0.984; HD-BET 0.987, 0.984.
    """
    far = (ndimage.distance_transform_edt(~subject.brain) * 4 > 8) & subject.head  # skull and scalp, 8 mm out
    bright = far & (subject.images["T1"] > np.percentile(subject.images["T1"][subject.brain], 75))
    assert bright.sum() > 1000  # the scalp is there to remove
    assert mask[bright].mean() < 0.01 and mask[far].mean() < 0.03
    dice = 2 * (mask & subject.brain).sum() / (mask.sum() + subject.brain.sum())
    assert dice > bound, dice
    return dice


def _canonical(subject) -> np.ndarray:
    return nib.as_closest_canonical(nib.Nifti1Image(subject.images["T1"].astype(np.float32), subject.affine)).get_fdata(
        dtype=np.float32
    )


@pytest.mark.slow
def test_deepbet_strips_a_phantom_head_and_gives_the_same_mask_twice(head):
    _installed("deepbet")
    from glioscope.samples.volumes import net_deepbet

    data = _canonical(head)
    net_deepbet.networks.cache_clear()
    state = torch.random.get_rng_state()
    first, second = net_deepbet.brain_mask(data), net_deepbet.brain_mask(data.copy())
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random stream is left alone
    assert np.array_equal(first, second)
    _check_mask(first, head, bound=0.95)


@pytest.mark.slow
def test_hdbet_strips_a_phantom_head_and_gives_the_same_mask_twice(head):
    _installed("hdbet")
    from glioscope.samples.volumes import net_hdbet

    data = _canonical(head)
    net_hdbet.network.cache_clear()
    state = torch.random.get_rng_state()
    first, second = net_hdbet.brain_mask(data, 4.0), net_hdbet.brain_mask(data.copy(), 4.0)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random stream is left alone
    assert np.array_equal(first, second)
    _check_mask(first, head, bound=0.95)


def test_a_volume_is_stripped_by_the_network_chosen_and_says_so(head, tmp_path):
    _installed("deepbet")
    path = _t1_file(head, tmp_path)
    result = volume_from_file(path, VolumeSettings(skull_strip="deepbet", **QUICK))
    assert result.table.loc[0, "skull_strip"] == "deepbet" and result.table.loc[0, "skull_stripped"]
    assert any("deepbet" in note and importlib.metadata.version("deepbet") in note for note in result.notes)
    volume = result.volumes[0, 0].astype(np.float32)
    assert (volume > 0).sum() * 4**3 / 1000 == pytest.approx(head.brain.sum() * 4**3 / 1000, rel=0.15)


def test_deepbet_refuses_a_volume_without_a_t1_weighted_channel(head, tmp_path):
    _installed("deepbet")
    path = tmp_path / "IXI900-Guys-0900-T2.nii.gz"
    nib.save(nib.Nifti1Image(head.images["T2"].astype(np.float32), head.affine), path)
    with pytest.raises(Exception, match="deepbet strips T1-weighted volumes"):
        volume_from_file(path, VolumeSettings(skull_strip="deepbet", **{**QUICK, "channels": ("T2",)}))
