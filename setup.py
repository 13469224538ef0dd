"""nao-search: Neural Architecture Optimization (Luo et al. 2018) in PyTorch.

`encoders/`, `predictors/` and `tasks/` live at the top level of the repository but install
as `nao.encoders`, `nao.predictors` and `nao.tasks`, so nothing generic enters the top-level
import namespace.
"""

from setuptools import setup

PACKAGE_DIRS = {
    "nao": "nao",
    "nao.encoders": "encoders",
    "nao.predictors": "predictors",
    "nao.tasks": "tasks",
}

EXTRAS = {
    "viz": ["matplotlib>=3.5"],
    "wandb": ["wandb>=0.15"],
    "ray": ["ray>=2.9"],
    "nb301": ["onnxruntime>=1.16"],  # the NAS-Bench-301 surrogate evaluator
}
EXTRAS["dev"] = ["pytest>=7", "ruff>=0.4", "scipy>=1.9", "xgboost>=2",  # xgboost: the predictor benchmark only
                 *sorted({dep for deps in EXTRAS.values() for dep in deps})]

setup(
    name="nao-search",
    version="0.1.0",
    description="Neural Architecture Optimization: encoder, predictor, decoder and search loops",
    python_requires=">=3.10",
    package_dir=PACKAGE_DIRS,
    packages=["nao", "nao.spaces", "nao.controller", "nao.search", "nao.encoders", "nao.predictors", "nao.tasks",
              "nao.tasks.cnn", "nao.tasks.rnn"],
    install_requires=["torch>=2.2", "numpy>=1.23", "einops>=0.6", "pyyaml>=6", "tqdm>=4.60"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["nao = nao.cli:main"]},
)
