"""`python-names`: names from Python's standard library, labelled by what they name.

Labels: `class` (e.g. OrderedDict, defaultdict), `function` (e.g. dumps, getcwd),
`constant` (upper-case names bound to numbers or strings, e.g. SEEK_END) and `module`
(the standard library's own module names, e.g. itertools). The names are read from the
running interpreter, so nothing is downloaded; the Python version is in the provenance,
since another version has a few different names.

Case is a strong clue, but not a complete one: `defaultdict` and `partial` are classes
written like functions, and module names look like function names.
"""

from __future__ import annotations

import importlib
import inspect
import platform
import sys
from dataclasses import dataclass
from typing import Any

import toolkit

DEFAULT_MODULES = (
    "abc,argparse,array,ast,asyncio,base64,bisect,calendar,collections,contextlib,copy,csv,"
    "dataclasses,datetime,decimal,difflib,email.message,enum,fractions,functools,gzip,hashlib,"
    "heapq,html,http.client,inspect,io,ipaddress,itertools,json,logging,math,operator,os,"
    "pathlib,platform,pprint,random,re,shutil,socket,statistics,string,struct,subprocess,"
    "tarfile,tempfile,textwrap,threading,time,tokenize,traceback,types,typing,unicodedata,"
    "unittest,urllib.parse,uuid,warnings,weakref,xml.dom.minidom,zipfile,zlib"
)


def kind_of(name: str, value: object) -> str | None:
    """The label for a public module attribute, or None when it is none of the kinds."""
    if inspect.isclass(value):
        return "class"
    if inspect.isroutine(value):
        return "function"
    if name.isupper() and isinstance(value, (int, float, str, bytes)) and not isinstance(value, bool):
        return "constant"
    return None


@dataclass(frozen=True)
class PythonNamesConfig(toolkit.Config):
    """The dataset's parameters."""

    owner = "dataset 'python-names'"
    modules: str = toolkit.param_field(
        DEFAULT_MODULES, "Comma-separated modules whose public classes, functions and constants are read."
    )


def load(**params: Any) -> toolkit.TextDataset:
    config = PythonNamesConfig(**params)
    pairs: set[tuple[str, str]] = set()
    names = [name.strip() for name in config.modules.split(",") if name.strip()]
    if not names:
        raise toolkit.ToolkitError(
            "dataset 'python-names' got no modules; pass e.g. --param dataset.modules=os,json,re."
        )
    for module_name in names:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise toolkit.ToolkitError(
                f"dataset 'python-names' cannot import module '{module_name}' ({error}); "
                "give standard-library modules in --param dataset.modules."
            ) from None
        for name, value in vars(module).items():
            label = None if name.startswith("_") else kind_of(name, value)
            if label:
                pairs.add((name, label))
    pairs.update((name, "module") for name in sys.stdlib_module_names if not name.startswith("_"))
    texts, labels = zip(*sorted(pairs), strict=True)
    record = toolkit.Provenance(
        f"Python {platform.python_version()} standard library ({len(names)} modules read)",
        options={"modules": names},
    )
    return record.dataset(texts, labels)
