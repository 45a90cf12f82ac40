"""Build glue: maps the top-level folders onto the ``vrgv`` package and builds the optional C++ linker.

The folders a newcomer sees are the architecture: ``sdk/`` is ``vrgv`` (the runtime), ``training/`` is
``vrgv.training`` and ``export/`` is ``vrgv.export``. The pybind11 extension ``vrgv._linking_cpp`` is built
from ``cpp_ext/``; if no compiler is present the install still succeeds and ``vrgv.linking`` reports it.
"""
from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOTS = {"vrgv": "sdk", "vrgv.training": "training", "vrgv.export": "export"}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, folder)
                found.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return sorted(set(found))


class OptionalBuildExt(build_ext):
    """Build the C++ linker if possible; never fail the install because of it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the machine's toolchain
            print(f"WARNING: vrgv C++ linker not built ({exc}); the numba/numpy backends remain.", file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover
            print(f"WARNING: could not build {ext.name} ({exc}); the numba/numpy backends remain.", file=sys.stderr)


def _extensions() -> list:
    try:
        from pybind11.setup_helpers import Pybind11Extension
    except ImportError:  # pragma: no cover
        print("WARNING: pybind11 missing; vrgv C++ linker not built.", file=sys.stderr)
        return []
    sources = sorted(os.path.join("cpp_ext", f) for f in os.listdir("cpp_ext") if f.endswith(".cpp"))
    if not sources:
        return []
    return [
        Pybind11Extension(
            "vrgv._linking_cpp",
            sources,
            cxx_std=17,
            extra_compile_args=["-O3"],
        )
    ]


setup(
    packages=_packages(),
    package_dir=ROOTS,
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
