"""Hatch build hook: compile mimo's optional C core, ``mimo/_speedups.c``, when it can.

* A wheel gets the compiled module and a platform tag; an editable install
  (``pip install -e .``) gets it built in place, next to ``mimo/_speedups.c``,
  where the editable install imports it from.
* No compiler, a failed compile, Windows without setuptools, or
  ``MIMO_NO_EXTENSIONS=1`` at build time: a warning and a pure-Python build.
  mimo works the same without the module, only slower (see ``mimo.speedups``).

The compiler and its flags are the ones the running interpreter was built
with (``sysconfig``), as setuptools would use; ``CC`` overrides the compiler.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported without hatchling (tests call build_speedups): no hook then
    BuildHookInterface = object

SOURCE = Path("mimo", "_speedups.c")


def _config(name: str, default: str = "") -> list[str]:
    return shlex.split(str(sysconfig.get_config_var(name) or default))


def _compile_posix(source: Path, target: Path, work: Path) -> None:
    """Compile and link ``source`` into the extension module ``target`` with the interpreter's own toolchain."""
    cc_env = os.environ.get("CC")
    cc = shlex.split(cc_env) if cc_env else _config("CC", "cc")
    ldshared = _config("LDSHARED", "cc -shared")
    if cc_env:  # the linker line starts with the compiler: swap it too, as setuptools does
        ldshared = cc + ldshared[1:]
    include = sysconfig.get_paths()["include"]
    obj = work / "_speedups.o"
    flags = [*_config("CFLAGS"), *_config("CCSHARED")]
    if not any(f.startswith("-O") for f in flags):
        flags.append("-O2")
    _run([*cc, *flags, f"-I{include}", "-c", str(source), "-o", str(obj)])
    _run([*ldshared, *_config("LDFLAGS"), str(obj), "-o", str(target)])


def _compile_setuptools(source: Path, target: Path, work: Path) -> None:
    """Compile with setuptools' compiler classes (MSVC on Windows), if setuptools is importable."""
    from setuptools import Distribution, Extension  # type: ignore[import-untyped]
    from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]

    dist = Distribution({"name": "mimo", "ext_modules": [Extension("mimo._speedups", [str(source)])]})
    cmd = build_ext(dist)
    cmd.build_temp = str(work / "temp")
    cmd.build_lib = str(work / "lib")
    cmd.ensure_finalized()
    cmd.run()
    built = Path(cmd.get_ext_fullpath("mimo._speedups"))
    shutil.copyfile(built, target)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def build_speedups(root: Path, target: Path) -> str | None:
    """Build the extension into ``target``; return None, or why it was not built."""
    if os.environ.get("MIMO_NO_EXTENSIONS", "") not in ("", "0"):
        return "MIMO_NO_EXTENSIONS is set"
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} is not CPython"
    source = root / SOURCE
    work = Path(tempfile.mkdtemp(prefix="mimo-speedups-"))
    # Built beside the target, then renamed over it: a running process keeps
    # the old file it has mapped instead of seeing it rewritten under it.
    out = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        if os.name == "nt":
            _compile_setuptools(source, out, work)
        else:
            _compile_posix(source, out, work)
        os.replace(out, target)
    except Exception as exc:  # any failure: a pure-Python build, which works too
        return str(exc).strip() or type(exc).__name__
    finally:
        out.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return None


class SpeedupsHook(BuildHookInterface):  # type: ignore[misc]
    """Adds ``mimo/_speedups`` to the wheel (or builds it in place for an editable install)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        name = "_speedups" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
        if version == "editable":
            target = root / "mimo" / name
        else:
            self._work = Path(tempfile.mkdtemp(prefix="mimo-wheel-"))
            target = self._work / name
        why = build_speedups(root, target)
        if why is not None:
            if version == "editable" and target.exists():
                target.unlink()  # a module left from an earlier build would not match this source
            self.app.display_warning(f"mimo: building without the compiled core (pure Python): {why}")
            return
        self.app.display_info(f"mimo: compiled core built: {target.name}")
        if version != "editable":
            build_data["force_include"][str(target)] = f"mimo/{name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
