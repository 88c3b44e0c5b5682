"""Tell the MRI sequence from names and tags; shared by every reader.

Two sources of evidence: file names (BraTS, IXI, brainles: one token such as
`t1ce` or `fla`) and DICOM series descriptions plus acquisition tags.
"""

from __future__ import annotations

import re

# File-name tokens (lower case) of image volumes.
_FILE_TOKENS = {
    "t1": "T1",
    "t1w": "T1",
    "t1n": "T1",
    "t1pre": "T1",
    "mprage": "T1",
    "t1c": "T1c",
    "t1ce": "T1c",
    "t1gd": "T1c",
    "t1post": "T1c",
    "t1wce": "T1c",
    "t1contrast": "T1c",
    "t2": "T2",
    "t2w": "T2",
    "flair": "FLAIR",
    "fla": "FLAIR",
    "t2f": "FLAIR",
    "t2flair": "FLAIR",
    "pd": "PD",
    "pdw": "PD",
}
# Tumour segmentations become a row's mask_path.
_TUMOUR_MASK_TOKENS = {"seg", "segmentation", "ot", "otmulticlass", "mask", "label", "labels", "gt", "truth", "roi"}
# Brain (skull-strip) masks are neither images nor tumour masks.
_BRAIN_MASK_TOKENS = {"brainmask", "brain_mask"}

_SPLIT = re.compile(r"[-_. ]+")


def strip_nifti_suffix(name: str) -> str:
    """`case_t1.nii.gz` -> `case_t1`."""
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def name_tokens(name: str) -> list[str]:
    """Lower-case tokens of a file name without its NIfTI suffix."""
    return [t for t in _SPLIT.split(strip_nifti_suffix(name).lower()) if t]


def classify_file_name(name: str) -> tuple[str, str, int]:
    """(role, sequence, token index) of a volume file: role is image, mask, brainmask or unknown.

    The last token that names a sequence or a mask decides, because BraTS-like
    names end with it (`..._T1_AX_POST_GAD_..._t1c.nii.gz` is T1c, `x_fla_bet` FLAIR).
    """
    tokens = name_tokens(name)
    for index in range(len(tokens) - 1, -1, -1):
        token = tokens[index]
        if token in _FILE_TOKENS:
            return "image", _FILE_TOKENS[token], index
        if token in _TUMOUR_MASK_TOKENS:
            return "mask", "", index
        if token in _BRAIN_MASK_TOKENS:
            return "brainmask", "", index
    return "unknown", "unknown", -1


def normalise_sequence(text: str) -> str:
    """Map a user-given sequence name (t1ce, T1w, flair, T1+FLAIR ...) onto the cohort vocabulary."""
    cleaned = str(text).strip()
    if not cleaned:
        return "unknown"
    parts = cleaned.split("+")
    if len(parts) > 1 and all(_known(p) for p in parts):
        return "+".join(_known(p) for p in parts)
    return _known(cleaned) or dicom_sequence(cleaned)


def _known(text: str) -> str:
    token = re.sub(r"[-_ ]", "", text.strip().lower())
    by_lower = {s.lower(): s for s in ("T1", "T1c", "T2", "FLAIR", "PD", "unknown")}
    return by_lower.get(token) or _FILE_TOKENS.get(token, "")


# --- DICOM: descriptions and tags ---------------------------------------------

_FLAIR = re.compile(r"FLAIR|TIRM|DARK[ _-]?FLUID|(?<![0-9A-Z])T2F(?![A-Z])")
_T2_STAR = re.compile(r"T2\s*\*|T2STAR|(?<![A-Z])(GRE|SWI|SWAN|FFE)(?![A-Z])")
_OTHER = re.compile(
    r"(?<![A-Z])(DWI|ADC|DTI|DIFFUSION|PERF|PERFUSION|DSC|DCE|ASL|MRA|TOF|LOCALI[SZ]ER|LOC|SCOUT|SURVEY|"
    r"SPECT|MRS|CSI|PWI|TRACE|EXP)(?![A-Z])"
)
_PD = re.compile(r"(?<![A-Z])PD(W)?(?![A-Z])|PROTON")
_T2 = re.compile(r"(?<![0-9])T2(?![0-9])")
_T1 = re.compile(r"(?<![0-9])T1(?![0-9])|MPRAGE|MP-RAGE|SPGR|BRAVO|(?<![A-Z])TFE(?![A-Z])")
_POST = re.compile(
    r"POST|(?<![A-Z])(GD|GAD|GADO|CE|C)(?![A-Z])|\+\s*C|C\+|\+GD|CONTRAST|T1W?CE|T1C(?![A-Z])|T1GD|ENHANC"
)
_PRE = re.compile(r"(?<![A-Z])PRE(?![A-Z])|NON[ _-]?CONTRAST|W/?O[ _]?CONTRAST|NO[ _-]?GD")


def dicom_sequence(
    description: str,
    contrast_agent: str = "",
    inversion_time: float | None = None,
    repetition_time: float | None = None,
    echo_time: float | None = None,
) -> str:
    """Sequence of a DICOM series from its description/protocol text, then its tags."""
    text = str(description or "").upper()
    post = bool(_POST.search(text)) or bool(str(contrast_agent or "").strip())
    if _PRE.search(text) and "POST" not in text:
        # "T1 PRE GD" names the contrast agent but was acquired before it.
        post = False
    if _OTHER.search(text):
        return "unknown"
    if _FLAIR.search(text):
        # T1-FLAIR is a T1-weighted inversion-recovery sequence, not a fluid-suppressed T2.
        return ("T1c" if post else "T1") if _T1.search(text) else "FLAIR"
    if _T2_STAR.search(text) and not _T1.search(text):
        return "unknown"
    if _PD.search(text):
        return "PD"
    if _T2.search(text):
        return "T2"
    if _T1.search(text):
        return "T1c" if post else "T1"
    return _sequence_from_timing(post, inversion_time, repetition_time, echo_time)


def _sequence_from_timing(post: bool, ti: float | None, tr: float | None, te: float | None) -> str:
    """Textbook contrast weighting from TR/TE/TI (ms), used only when the text is silent."""
    if ti and ti >= 1500 and (tr is None or tr >= 4000):
        return "FLAIR"
    if tr is None or te is None:
        return "T1c" if post and tr is not None and tr < 1000 else "unknown"
    if ti and 300 <= ti <= 1300 and tr < 3000:
        return "T1c" if post else "T1"
    if tr < 1000 and te < 30:
        return "T1c" if post else "T1"
    if tr >= 2000 and te >= 70:
        return "T2"
    if tr >= 2000 and te < 40:
        return "PD"
    return "unknown"


def case_prefix(name: str) -> str:
    """The part of a volume's file name before its sequence or mask token: the case id, when
    the name has one (`BraTS20_Training_001_t1ce.nii.gz` -> `BraTS20_Training_001`), else ''."""
    _, _, index = classify_file_name(name)
    if index < 0:
        return ""
    stem = strip_nifti_suffix(name)
    tokens = list(re.finditer(r"[^-_. ]+", stem))
    return stem[: tokens[index].start()].rstrip("-_. ") if index < len(tokens) else ""


_IXI_PATIENT = re.compile(r"^(IXI\d+)-[A-Za-z]+-\d+-", re.IGNORECASE)


def patient_from_file_name(name: str) -> str:
    """The patient a lone volume file belongs to, named as ingest would name it: IXI<nnn> for
    IXI files, the case id of BraTS-like names, else the file name without its suffix."""
    stem = strip_nifti_suffix(name)
    match = _IXI_PATIENT.match(stem)
    return match.group(1) if match else (case_prefix(name) or stem)
