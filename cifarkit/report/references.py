"""The bibliography of the study book: every paper and data set the study may cite, held once, as data.

:data:`REFERENCES` maps a BibTeX key to a :class:`Reference`. The book cites an entry
through :class:`Citations` (``cite("he2016resnet")`` gives the linked label
``[He et al. 2016]`` and remembers the key); the reference list in the book
(:func:`entry_html`) and ``study.bib`` (:func:`bibtex`) are written from the same records,
so the two cannot disagree. :func:`model_reference` names the paper behind a registered
model, by its family, without importing the models (and so no deep-learning backend).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cifarkit import escape


@dataclass(frozen=True)
class Reference:
    """One bibliography entry.

    ``authors`` are ``"Family, Given"`` strings (BibTeX's own form); ``venue`` is the
    journal, proceedings, institution or publisher as a reader sees it; ``fields`` holds
    the BibTeX fields beyond author, title and year (``booktitle``, ``journal``, ``pages``...).
    """

    key: str
    kind: str  # BibTeX entry type: article, inproceedings, techreport, book, misc
    authors: tuple[str, ...]
    title: str
    venue: str
    year: int
    fields: dict = field(default_factory=dict)

    @property
    def families(self) -> list[str]:
        return [a.split(",", 1)[0].strip() for a in self.authors]

    @property
    def label(self) -> str:
        """``He et al. 2016``, ``Zagoruyko & Komodakis 2016``, ``McNemar 1947``."""
        fam = self.families
        who = fam[0] if len(fam) == 1 else f"{fam[0]} & {fam[1]}" if len(fam) == 2 else f"{fam[0]} et al."
        return f"{who} {self.year}"


def _ref(key, kind, authors, title, venue, year, **fields) -> Reference:
    return Reference(key, kind, tuple(authors), title, venue, year, fields)


_CVPR = "Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)"

REFERENCES: dict[str, Reference] = {
    r.key: r
    for r in (
        _ref(
            "krizhevsky2009cifar",
            "techreport",
            ["Krizhevsky, Alex"],
            "Learning Multiple Layers of Features from Tiny Images",
            "Technical report, University of Toronto",
            2009,
            institution="University of Toronto",
            url="https://www.cs.toronto.edu/~kriz/learning-features-2009-TR.pdf",
        ),
        _ref(
            "he2016resnet",
            "inproceedings",
            ["He, Kaiming", "Zhang, Xiangyu", "Ren, Shaoqing", "Sun, Jian"],
            "Deep Residual Learning for Image Recognition",
            _CVPR,
            2016,
            booktitle=_CVPR,
            pages="770--778",
            doi="10.1109/CVPR.2016.90",
        ),
        _ref(
            "huang2017densenet",
            "inproceedings",
            ["Huang, Gao", "Liu, Zhuang", "van der Maaten, Laurens", "Weinberger, Kilian Q."],
            "Densely Connected Convolutional Networks",
            _CVPR,
            2017,
            booktitle=_CVPR,
            pages="2261--2269",
            doi="10.1109/CVPR.2017.243",
        ),
        _ref(
            "zagoruyko2016wrn",
            "inproceedings",
            ["Zagoruyko, Sergey", "Komodakis, Nikos"],
            "Wide Residual Networks",
            "Proceedings of the British Machine Vision Conference (BMVC)",
            2016,
            booktitle="Proceedings of the British Machine Vision Conference (BMVC)",
            pages="87.1--87.12",
            doi="10.5244/C.30.87",
        ),
        _ref(
            "simonyan2015vgg",
            "inproceedings",
            ["Simonyan, Karen", "Zisserman, Andrew"],
            "Very Deep Convolutional Networks for Large-Scale Image Recognition",
            "International Conference on Learning Representations (ICLR)",
            2015,
            booktitle="International Conference on Learning Representations (ICLR)",
            eprint="1409.1556",
            archiveprefix="arXiv",
        ),
        _ref(
            "jordan2024airbench",
            "misc",
            ["Jordan, Keller"],
            "94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
            "arXiv preprint arXiv:2404.00498",
            2024,
            howpublished="arXiv preprint arXiv:2404.00498",
            eprint="2404.00498",
            archiveprefix="arXiv",
        ),
        _ref(
            "hendrycks2019corruptions",
            "inproceedings",
            ["Hendrycks, Dan", "Dietterich, Thomas"],
            "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
            "International Conference on Learning Representations (ICLR)",
            2019,
            booktitle="International Conference on Learning Representations (ICLR)",
            eprint="1903.12261",
            archiveprefix="arXiv",
        ),
        _ref(
            "guo2017calibration",
            "inproceedings",
            ["Guo, Chuan", "Pleiss, Geoff", "Sun, Yu", "Weinberger, Kilian Q."],
            "On Calibration of Modern Neural Networks",
            "Proceedings of the 34th International Conference on Machine Learning (ICML), PMLR 70",
            2017,
            booktitle="Proceedings of the 34th International Conference on Machine Learning (ICML)",
            series="Proceedings of Machine Learning Research",
            volume="70",
            pages="1321--1330",
        ),
        _ref(
            "selvaraju2017gradcam",
            "inproceedings",
            [
                "Selvaraju, Ramprasaath R.",
                "Cogswell, Michael",
                "Das, Abhishek",
                "Vedantam, Ramakrishna",
                "Parikh, Devi",
                "Batra, Dhruv",
            ],
            "Grad-CAM: Visual Explanations from Deep Networks via Gradient-Based Localization",
            "Proceedings of the IEEE International Conference on Computer Vision (ICCV)",
            2017,
            booktitle="Proceedings of the IEEE International Conference on Computer Vision (ICCV)",
            pages="618--626",
            doi="10.1109/ICCV.2017.74",
        ),
        _ref(
            "mcnemar1947",
            "article",
            ["McNemar, Quinn"],
            "Note on the Sampling Error of the Difference between Correlated Proportions or Percentages",
            "Psychometrika 12(2)",
            1947,
            journal="Psychometrika",
            volume="12",
            number="2",
            pages="153--157",
            doi="10.1007/BF02295996",
        ),
        _ref(
            "efron1993bootstrap",
            "book",
            ["Efron, Bradley", "Tibshirani, Robert J."],
            "An Introduction to the Bootstrap",
            "Chapman & Hall, New York (Monographs on Statistics and Applied Probability 57)",
            1993,
            publisher="Chapman & Hall",
            address="New York",
            series="Monographs on Statistics and Applied Probability",
            volume="57",
        ),
        _ref(
            "akiba2019optuna",
            "inproceedings",
            ["Akiba, Takuya", "Sano, Shotaro", "Yanase, Toshihiko", "Ohta, Takeru", "Koyama, Masanori"],
            "Optuna: A Next-generation Hyperparameter Optimization Framework",
            "Proceedings of the 25th ACM SIGKDD International Conference on Knowledge Discovery & Data Mining (KDD)",
            2019,
            booktitle="Proceedings of the 25th ACM SIGKDD International Conference on Knowledge Discovery "
            "& Data Mining (KDD)",
            pages="2623--2631",
            doi="10.1145/3292500.3330701",
        ),
        _ref(
            "goyal2017largebatch",
            "misc",
            [
                "Goyal, Priya",
                "Dollár, Piotr",
                "Girshick, Ross",
                "Noordhuis, Pieter",
                "Wesolowski, Lukasz",
                "Kyrola, Aapo",
                "Tulloch, Andrew",
                "Jia, Yangqing",
                "He, Kaiming",
            ],
            "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
            "arXiv preprint arXiv:1706.02677",
            2017,
            howpublished="arXiv preprint arXiv:1706.02677",
            eprint="1706.02677",
            archiveprefix="arXiv",
        ),
        _ref(
            "vandermaaten2008tsne",
            "article",
            ["van der Maaten, Laurens", "Hinton, Geoffrey"],
            "Visualizing Data using t-SNE",
            "Journal of Machine Learning Research 9",
            2008,
            journal="Journal of Machine Learning Research",
            volume="9",
            number="86",
            pages="2579--2605",
        ),
        _ref(
            "szegedy2016inception",
            "inproceedings",
            ["Szegedy, Christian", "Vanhoucke, Vincent", "Ioffe, Sergey", "Shlens, Jonathon", "Wojna, Zbigniew"],
            "Rethinking the Inception Architecture for Computer Vision",
            _CVPR,
            2016,
            booktitle=_CVPR,
            pages="2818--2826",
            doi="10.1109/CVPR.2016.308",
        ),
        _ref(
            "zhang2019lookahead",
            "inproceedings",
            ["Zhang, Michael R.", "Lucas, James", "Hinton, Geoffrey", "Ba, Jimmy"],
            "Lookahead Optimizer: k Steps Forward, 1 Step Back",
            "Advances in Neural Information Processing Systems 32 (NeurIPS)",
            2019,
            booktitle="Advances in Neural Information Processing Systems 32 (NeurIPS)",
            eprint="1907.08610",
            archiveprefix="arXiv",
        ),
    )
}

#: The data set every book lists, cited or not.
CIFAR10 = "krizhevsky2009cifar"

# Model families (name prefixes of the registry) and the paper each follows.
_MODEL_PAPERS = (
    ("resnet", "he2016resnet"),
    ("densenet", "huang2017densenet"),
    ("wrn", "zagoruyko2016wrn"),
    ("vgg", "simonyan2015vgg"),
    ("fastnet", "jordan2024airbench"),
)


def model_reference(model: str | None) -> str | None:
    """The key of the paper a registered model follows (``"resnet20"`` -> ``"he2016resnet"``), or ``None``."""
    name = str(model or "").split("/", 1)[0].lower()
    return next((key for prefix, key in _MODEL_PAPERS if name.startswith(prefix)), None)


class Citations:
    """The references a book cites, in the order it first cites them."""

    def __init__(self):
        self.keys: list[str] = []

    def cite(self, *keys: str) -> str:
        """``[He et al. 2016]`` (several keys: ``[A 2016; B 2017]``), each label linked to its entry."""
        links = []
        for key in keys:
            ref = REFERENCES[key]
            if key not in self.keys:
                self.keys.append(key)
            links.append(f'<a class="cite" href="#ref-{key}">{escape.html(ref.label)}</a>')
        return "[" + "; ".join(links) + "]"

    def listed(self) -> list[Reference]:
        """The entries of the reference list: the cited ones and CIFAR-10, by first author and year."""
        keys = dict.fromkeys([*self.keys, CIFAR10])
        return sorted((REFERENCES[k] for k in keys), key=lambda r: (r.families[0].lower(), r.year, r.key))


# ------------------------------------------------------------------ formatting
def _initials(given: str) -> str:
    parts = [p for p in re.split(r"[\s]+", given.strip()) if p]
    return " ".join(p if p.endswith(".") and len(p) <= 2 else p[0] + "." for p in parts)


def _author_text(author: str) -> str:
    family, _, given = author.partition(",")
    return f"{family.strip()}, {_initials(given)}" if given.strip() else family.strip()


def authors_text(ref: Reference) -> str:
    """``He, K., Zhang, X., Ren, S., & Sun, J.``"""
    names = [_author_text(a) for a in ref.authors]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + ", & " + names[-1]


def entry_html(ref: Reference) -> str:
    """One entry of the book's reference list (an ``<li>`` with the id citations link to)."""
    parts = [f"{escape.html(authors_text(ref))} ({ref.year}). {escape.html(ref.title)}."]
    venue = ("In " if ref.kind == "inproceedings" else "") + ref.venue
    pages = ref.fields.get("pages")
    parts.append(
        f" <i>{escape.html(venue)}</i>" + (f", pp. {escape.html(pages.replace('--', '–'))}." if pages else ".")
    )
    if ref.fields.get("doi"):
        doi = ref.fields["doi"]
        parts.append(f' doi:<a href="https://doi.org/{escape.html(doi)}">{escape.html(doi)}</a>.')
    elif ref.fields.get("eprint") and "arXiv" not in ref.venue:
        parts.append(f" arXiv:{escape.html(ref.fields['eprint'])}.")
    elif ref.fields.get("url"):
        parts.append(f' <a href="{escape.html(ref.fields["url"])}">{escape.html(ref.fields["url"])}</a>')
    return f'<li id="ref-{ref.key}"><span class="ref-label">[{escape.html(ref.label)}]</span> {"".join(parts)}</li>'


_LATEX_ACCENTS = {"á": "{\\'a}", "é": "{\\'e}", "ö": '{\\"o}', "ü": '{\\"u}', "ä": '{\\"a}', "ñ": "{\\~n}"}


def _bib_text(text: str) -> str:
    out = "".join(_LATEX_ACCENTS.get(c, c) for c in str(text))
    return out.replace("&", "\\&").replace("%", "\\%").replace("#", "\\#")


def _bib_title(title: str) -> str:
    """The title with words that must keep their capitals (``CIFAR-10``, ``ImageNet``, ``t-SNE``) in braces."""

    def protect(word: str) -> str:
        return "{" + word + "}" if any(c.isupper() for c in word[1:]) else word

    return " ".join(protect(w) for w in _bib_text(title).split(" "))


def bibtex_entry(ref: Reference) -> str:
    lines = [
        f"  author = {{{_bib_text(' and '.join(ref.authors))}}}",
        f"  title = {{{_bib_title(ref.title)}}}",
        f"  year = {{{ref.year}}}",
    ]
    for name, value in ref.fields.items():
        text = str(value) if name in ("url", "doi") else _bib_text(value)
        lines.append(f"  {name} = {{{text}}}")
    return f"@{ref.kind}{{{ref.key},\n" + ",\n".join(lines) + "\n}\n"


def bibtex(refs) -> str:
    """``study.bib``: one BibTeX entry per reference, in the given order."""
    return "% The references of this study book, written by cifarkit.report.book.\n\n" + "\n".join(
        bibtex_entry(r) for r in refs
    )
