r"""Data loading for cifarkit: CIFAR-10, image folders and synthetic data as uint8 arrays.

Everything here uses numpy, Pillow, tqdm and platformdirs only; no deep
learning backend is imported.

Example:
    >>> from cifarkit.data import load_dataset
    >>> ds = load_dataset("synthetic:50", progress=False)
    >>> ds.x_train.dtype, ds.input_shape
    (dtype('uint8'), (32, 32, 3))

Grouped data (several images per patient or part) and labels from file names
or a CSV file: ``load_dataset(folder, group_by=r"patient(\d+)")``,
``load_dataset(folder, labels="filename:^([a-z]+)_")``,
``load_dataset(folder, labels="labels.csv")`` (see :mod:`cifarkit.data.labels`).
"""

from .cifar10 import CIFAR10_CLASSES
from .dataset import Dataset
from .errors import DataError
from .labels import LabelSpec, parse_group_by, parse_labels
from .loader import load_dataset
from .peek import peek_class_names
from .study_data import load_study_data, parse_class_names, require_validation
from .synthetic import make_synthetic, write_synthetic_cifar_archive, write_synthetic_image_folder

__all__ = [
    "CIFAR10_CLASSES",
    "DataError",
    "Dataset",
    "LabelSpec",
    "load_dataset",
    "parse_group_by",
    "parse_labels",
    "peek_class_names",
    "load_study_data",
    "parse_class_names",
    "require_validation",
    "make_synthetic",
    "write_synthetic_cifar_archive",
    "write_synthetic_image_folder",
]
