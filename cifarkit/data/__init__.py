"""Data loading for cifarkit: CIFAR-10, image folders and synthetic data as uint8 arrays.

Everything here uses numpy, Pillow, tqdm and platformdirs only; no deep
learning backend is imported.

Example:
    >>> from cifarkit.data import load_dataset
    >>> ds = load_dataset("synthetic:50", progress=False)
    >>> ds.x_train.dtype, ds.input_shape
    (dtype('uint8'), (32, 32, 3))
"""

from .cifar10 import CIFAR10_CLASSES
from .dataset import Dataset
from .errors import DataError
from .loader import load_dataset
from .peek import peek_class_names
from .study_data import load_study_data, parse_class_names
from .synthetic import make_synthetic, write_synthetic_cifar_archive, write_synthetic_image_folder

__all__ = [
    "CIFAR10_CLASSES",
    "DataError",
    "Dataset",
    "load_dataset",
    "peek_class_names",
    "load_study_data",
    "parse_class_names",
    "make_synthetic",
    "write_synthetic_cifar_archive",
    "write_synthetic_image_folder",
]
