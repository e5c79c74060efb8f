"""Sphinx configuration of mimo's docs site: the pages of docs/ (MyST) and the API reference.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``pip install -e . --group docs``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mimo  # noqa: E402

project = "mimo"
author = "the mimo authors"
copyright = "2026, the mimo authors"
release = mimo.__version__
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Links like typing.md#which-node-is-which-the-identity-rule point at headings.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The optional extras are not needed to document what they serve.
autodoc_mock_imports = ["ray", "rich", "graphviz", "aiohttp"]
add_module_names = False

html_theme = "furo"
html_title = f"mimo {release}"

# Pages link to files of the repository outside docs/ (../benchmarks/RESULTS.md),
# which read well in a repository browser but are not part of the site: on the
# site they become the file's path as text.
_OUTSIDE = re.compile(r"\[([^\]]+)\]\(\.\./([^)#\s]+)(#[^)\s]*)?\)")


def _outside_links(app: Sphinx, docname: str, source: list[str]) -> None:
    source[0] = _OUTSIDE.sub(lambda m: f"{m[1]} (`{m[2]}` in the repository)", source[0])


def setup(app: Sphinx) -> None:
    app.connect("source-read", _outside_links)
