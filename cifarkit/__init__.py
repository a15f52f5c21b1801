"""cifarkit: notebook-driven CNN studies on CIFAR-10 and on your own image collections.

Importing :mod:`cifarkit` is cheap: it loads no deep-learning backend. Modules that
need Keras (``cifarkit.models``, ``cifarkit.training``, ...) configure the backend
through :mod:`cifarkit.backend` before Keras is first imported.
"""

__version__ = "0.1.0"
