"""The study's analyses, one module per question a notebook answers.

``explore`` (01), ``tuning`` (02), ``evaluation``, ``corruptions`` (CIFAR-10-C) and ``saliency`` (04),
``baselines`` (05), ``compare_architectures`` and
``ensembles`` (06), ``cross_validation`` (07); ``stats`` and ``plots`` serve them all. Import the module a
notebook needs (``from cifarkit.analysis import evaluation``); importing this
package loads no deep-learning backend.
"""
