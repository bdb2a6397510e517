"""Builds the Cython extensions.

Portable by default (x86-64 and aarch64 / Raspberry Pi): only -O3.  Set
EDGE_SDK_NATIVE=1 for a -march=native build of your own machine (never ship
such wheels).  If the extension cannot be built (no compiler), the package
still installs; edge_sdk then runs on the numpy reference backend and says so.
"""

import glob
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _compile_args():
    if sys.platform == "win32":
        return ["/O2"]
    args = ["-O3", "-fno-strict-aliasing"]
    if os.environ.get("EDGE_SDK_NATIVE") == "1":
        args.append("-march=native")
    return args


class OptionalBuildExt(build_ext):
    """Never fail the install because the fast path could not be compiled."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure degrades to pure Python
            print(f"WARNING: edge_sdk extensions not built ({exc}); falling back to pure Python")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"WARNING: extension {ext.name} not built ({exc}); falling back to pure Python")


def _extensions():
    try:
        import numpy
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as exc:
        print(f"WARNING: Cython/numpy missing at build time ({exc}); pure-Python install")
        return []
    exts = []
    for name, src in EXTENSIONS:
        if os.path.exists(src):
            exts.append(
                Extension(
                    name,
                    [src],
                    depends=sorted(glob.glob(os.path.join(os.path.dirname(src), "*.h"))),
                    include_dirs=[numpy.get_include(), os.path.dirname(src)],
                    extra_compile_args=_compile_args(),
                    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                )
            )
    return cythonize(exts, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False})


# (module name, source) of every Cython extension.
EXTENSIONS = [
    ("edge_sdk.runtime._emulator", "edge_sdk/runtime/_emulator.pyx"),
    ("edge_sdk.codec._arith", "edge_sdk/codec/_arith.pyx"),
]

setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
