"""The papers glioscope reproduces or builds on, in one table, and what cites them.

    from glioscope import references
    keys = references.for_run("sdl", tables=["sdl"], gradcam=True)   # what a run's report cites
    print(references.markdown(keys))                                  # a "References" list

REFERENCES is the only place a paper's authors, title, year and venue are written: the README's and the docs'
references sections (`python -m glioscope.references`, checked by tests/test_references.py), every run report's
and every model card's are generated from it. A year or venue is None where the copy of the paper we worked from
carries none and none could be confirmed; it is then written "undated preprint", never guessed.

Methods are named as people in the field name them (METHODS), after their papers, never by a number.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Reference:
    """One paper: `short` is how the text cites it ("Chopra et al."); `note` a sentence about it, or None."""

    key: str
    authors: tuple[str, ...]
    title: str
    year: int | None
    venue: str | None
    short: str
    note: str | None = None

    @property
    def when(self) -> str:
        """The year, or "undated preprint"."""
        return str(self.year) if self.year else "undated preprint"

    def text(self) -> str:
        """The reference in one line of plain text: authors (year). Title. Venue. Note."""
        authors = ", ".join(self.authors)
        venue = f" {self.venue}." if self.venue else ""
        note = f" {self.note}" if self.note else ""
        return f"{authors} ({self.when}). {self.title}.{venue}{note}"

    def citation(self) -> str:
        """How the text names it: "Lo et al., 2019", or "Chopra et al." for an undated preprint."""
        return f"{self.short}, {self.year}" if self.year else self.short


_ALL = (
    Reference(
        "chopra-sdl",
        ("Saransh Chopra", "Harshvir Sandhu", "Ishan Bansal", "Nirmal Yadav"),
        "Development of Synergic Deep Learning Model for Glioma Tumor Grading",
        None,
        "Cluster Innovation Centre, University of Delhi",
        "Chopra et al.",
        "A later version: N. Yadav, A synergic deep learning approach for efficient grading of glioma via MRI "
        "images, International Journal of Computing Science and Mathematics 21(1):1-13, 2025.",
    ),
    Reference(
        "zhang-sdl",
        ("Jianpeng Zhang", "Yutong Xie", "Qi Wu", "Yong Xia"),
        "Medical image classification using synergic deep learning",
        2019,
        "Medical Image Analysis 54:10-19",
        "Zhang et al.",
    ),
    Reference(
        "kaymak-resnet18",
        ("Aysu Kaymak", "Muhammed İzzet Demir"),
        "Classification of Brain Tumors in Multi-Modal MR Images Using Deep Spatio-Spatial Model",
        None,
        "Computer Engineering, Gazi University",
        "Kaymak and Demir",
    ),
    Reference(
        "harkude-spatiospatial",
        ("Ganesh Aravind Harkude",),
        "Deep Spatio-spatial Models for Classifying Brain Tumors in MR Images",
        None,
        "BMS Institute of Technology and Management",
        "Harkude",
        "It describes the models and the experiment of Chatterjee et al. (2022).",
    ),
    Reference(
        "chatterjee-spatiospatial",
        ("Soumick Chatterjee", "Faraz Ahmed Nizamani", "Andreas Nürnberger", "Oliver Speck"),
        "Classification of brain tumours in MR images using deep spatiospatial models",
        2022,
        "Scientific Reports 12:1505",
        "Chatterjee et al.",
    ),
    Reference(
        "spoorthy-mgmt",
        ("Spoorthy K R", "Akash R Mahdev", "Vaishnav B", "Shruthi M.L.J"),
        "Deep Learning Approach for Radiogenomic Classification of Brain Tumor",
        None,
        "Dept. of ECE, PES University",
        "Spoorthy et al.",
    ),
    Reference(
        "lo-alexnet-autoaugment",
        ("Chung-Ming Lo", "Yu-Chih Chen", "Rui-Cian Weng", "Kevin Li-Chun Hsieh"),
        "Intelligent Glioma Grading Based on Deep Transfer Learning of MRI Radiomic Features",
        2019,
        "Applied Sciences 9(22):4926",
        "Lo et al.",
    ),
    Reference(
        "cubuk-autoaugment",
        ("Ekin D. Cubuk", "Barret Zoph", "Dandelion Mané", "Vijay Vasudevan", "Quoc V. Le"),
        "AutoAugment: Learning Augmentation Strategies From Data",
        2019,
        "CVPR",
        "Cubuk et al.",
    ),
    Reference(
        "tran-video-resnets",
        ("Du Tran", "Heng Wang", "Lorenzo Torresani", "Jamie Ray", "Yann LeCun", "Manohar Paluri"),
        "A Closer Look at Spatiotemporal Convolutions for Action Recognition",
        2018,
        "CVPR",
        "Tran et al.",
    ),
    Reference(
        "tan-efficientnet",
        ("Mingxing Tan", "Quoc V. Le"),
        "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
        2019,
        "ICML",
        "Tan and Le",
    ),
    Reference(
        "baid-brats2021",
        ("Ujjwal Baid", "et al."),
        "The RSNA-ASNR-MICCAI BraTS 2021 Benchmark on Brain Tumor Segmentation and Radiogenomic Classification",
        2021,
        "arXiv:2107.02314",
        "Baid et al.",
    ),
    Reference(
        "pyradiomics",
        (
            "Joost J. M. van Griethuysen",
            "Andriy Fedorov",
            "Chintan Parmar",
            "Ahmed Hosny",
            "Nicole Aucoin",
            "Vivek Narayan",
            "Regina G. H. Beets-Tan",
            "Jean-Christophe Fillion-Robin",
            "Steve Pieper",
            "Hugo J. W. L. Aerts",
        ),
        "Computational Radiomics System to Decode the Radiographic Phenotype",
        2017,
        "Cancer Research 77(21):e104-e107",
        "van Griethuysen et al.",
    ),
    Reference(
        "selvaraju-gradcam",
        (
            "Ramprasaath R. Selvaraju",
            "Michael Cogswell",
            "Abhishek Das",
            "Ramakrishna Vedantam",
            "Devi Parikh",
            "Dhruv Batra",
        ),
        "Grad-CAM: Visual Explanations from Deep Networks via Gradient-Based Localization",
        2017,
        "ICCV",
        "Selvaraju et al.",
    ),
    Reference(
        "ojala-permutation",
        ("Markus Ojala", "Gemma C. Garriga"),
        "Permutation Tests for Studying Classifier Performance",
        2010,
        "Journal of Machine Learning Research 11:1833-1863",
        "Ojala and Garriga",
    ),
    Reference(
        "forman-scholz",
        ("George Forman", "Martin Scholz"),
        "Apples-to-Apples in Cross-Validation Studies: Pitfalls in Classifier Performance Measurement",
        2010,
        "ACM SIGKDD Explorations 12(1):49-57",
        "Forman and Scholz",
    ),
    Reference(
        "delong-auc",
        ("Elizabeth R. DeLong", "David M. DeLong", "Daniel L. Clarke-Pearson"),
        "Comparing the Areas under Two or More Correlated Receiver Operating Characteristic Curves: "
        "A Nonparametric Approach",
        1988,
        "Biometrics 44(3):837-845",
        "DeLong et al.",
    ),
)
REFERENCES: dict[str, Reference] = {r.key: r for r in _ALL}


@dataclass(frozen=True)
class PublishedMethod:
    """A published method as the field names it, the papers it comes from (the one reproduced first) and the
    recipes that reproduce it."""

    name: str
    papers: tuple[str, ...]
    recipes: tuple[str, ...]


METHODS: dict[str, PublishedMethod] = {
    "sdl": PublishedMethod(
        "Synergic Deep Learning (SDL)",
        ("chopra-sdl", "zhang-sdl"),
        ("sdl", "sdl-n", "sdl-tumour", "alexnet", "vgg19", "resnet50", "resnet152"),
    ),
    "resnet18": PublishedMethod("ResNet18 transfer learning", ("kaymak-resnet18",), ("r18", "r18-mgmt")),
    "spatiospatial": PublishedMethod(
        "spatio-spatial video ResNets",
        ("harkude-spatiospatial", "chatterjee-spatiospatial", "tran-video-resnets"),
        ("st3d", "st3d-mc3", "st3d-r2plus1d"),
    ),
    "efficientnet-mgmt": PublishedMethod(
        "EfficientNet-B0 for MGMT methylation", ("spoorthy-mgmt", "tan-efficientnet"), ("eff", "eff-4ch")
    ),
    "alexnet-autoaugment": PublishedMethod(
        "AlexNet with AutoAugment", ("lo-alexnet-autoaugment", "cubuk-autoaugment"), ("axt",)
    ),
    "rsna-mgmt": PublishedMethod(
        "the RSNA-MICCAI 2021 MGMT challenge's 3D ResNet-10", ("baid-brats2021",), ("rsna-r10",)
    ),
    "radiomics": PublishedMethod("PyRadiomics features", ("pyradiomics",), ("radiomics", "radiomics-rf")),
}

# evaluate.tables: result tables laid out as in a paper, and the paper each follows.
PAPER_TABLES = {"sdl": "chopra-sdl", "spatiospatial": "harkude-spatiospatial", "autoaugment": "lo-alexnet-autoaugment"}
# The names evaluate.tables had before the methods were named; recipes and run folders that use them still read.
RENAMED_TABLES = {"seed000": "sdl", "seed002": "spatiospatial", "seed004": "autoaugment"}


def table_names(names: Iterable[str] | None) -> list[str] | None:
    """evaluate.tables values with the earlier names replaced; None stays None."""
    return None if names is None else [RENAMED_TABLES.get(str(n), str(n)) for n in names]


def tables_of(record: Mapping) -> list[str] | None:
    """The paper tables a run.json or metrics.json mapping names (`paper_tables`, or `seed_tables` as written before
    the papers were named), under today's names; None when it names none."""
    named = record.get("paper_tables")
    return table_names(record.get("seed_tables") if named is None else named)


def method_of(recipe: str) -> PublishedMethod | None:
    """The published method a shipped recipe reproduces, or None (glioscope's own recipes, a user's)."""
    return next((m for m in METHODS.values() if recipe in m.recipes), None)


def for_run(
    recipe: str,
    tables: Iterable[str] = (),
    gradcam: bool = False,
    permutation: bool = False,
    pooled_note: bool = False,
) -> list[str]:
    """The references a run's report or model card cites: the method its recipe reproduces, the papers whose
    table layouts it shows, and the methods of its sections (Grad-CAM, the permutation test, the pooled-vs-folds
    note), each once, in that order."""
    method = method_of(recipe)
    keys = list(method.papers) if method else []
    keys += [PAPER_TABLES[t] for t in table_names(tables) or () if t in PAPER_TABLES]
    keys += ["selvaraju-gradcam"] * gradcam + ["ojala-permutation"] * permutation + ["forman-scholz"] * pooled_note
    return list(dict.fromkeys(keys))


def markdown(keys: Iterable[str] | None = None, heading: str = "## References") -> str:
    """A numbered markdown list of `keys` (every reference when None) under `heading`."""
    chosen = [REFERENCES[k] for k in (REFERENCES if keys is None else keys)]
    lines = [heading, ""] if heading else []
    lines += [f"{i}. {r.text()}" for i, r in enumerate(chosen, 1)]
    return "\n".join(lines) + "\n"


def html_section(keys: Iterable[str]) -> str:
    """A report's References section (an empty string when there is nothing to cite)."""
    chosen = [REFERENCES[k] for k in keys]
    if not chosen:
        return ""
    items = "".join(f"<li>{html.escape(r.text())}</li>" for r in chosen)
    return f"<h2>References</h2><ol class='references'>{items}</ol>"


def as_json(keys: Iterable[str]) -> list[dict]:
    """The references of a model package's metadata.json."""
    return [
        {"authors": list(r.authors), "title": r.title, "year": r.year, "venue": r.venue, "note": r.note}
        for r in (REFERENCES[k] for k in keys)
    ]


def methods_markdown() -> str:
    """The docs' table of methods: name, papers, recipes."""
    lines = ["| method | after | recipes |", "|---|---|---|"]
    for method in METHODS.values():
        papers = "; ".join(REFERENCES[k].citation() for k in method.papers)
        lines.append(f"| {method.name} | {papers} | {', '.join(f'`{r}`' for r in method.recipes)} |")
    return "\n".join(lines) + "\n"


def readme_block() -> str:
    """The README's list: the papers of the methods glioscope reproduces."""
    keys = dict.fromkeys(k for method in METHODS.values() for k in method.papers)
    return markdown(keys, heading="")


def page() -> str:
    """docs/references.md: the methods and every reference."""
    return (
        "# References\n\n"
        "<!-- Generated by `python -m glioscope.references` from glioscope/references.py; edit the table there. -->"
        "\n\nThe published methods glioscope reproduces, and the recipes that do:\n\n"
        + methods_markdown()
        + "\n"
        + markdown(heading="## Papers")
        + "\nA year reads *undated preprint* where the copy of a paper we worked from carries no date and none "
        "could be confirmed.\n"
    )


if __name__ == "__main__":
    sys.stdout.write(page())
