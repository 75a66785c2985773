"""`folder`: any folder of `<label>.txt` files, one item a line (the names format, any data).

With `labels=multi`, a line found in several files is one text with all their labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import toolkit


@dataclass(frozen=True)
class FolderConfig(toolkit.Config):
    """`folder`'s parameters."""

    owner = "dataset 'folder'"
    data_dir: str = toolkit.param_field("", "The folder of <label>.txt files (required).", path=True)
    normalization: str = toolkit.normalization_field("raw")
    labels: str = toolkit.labels_field()


def load(**params: Any) -> toolkit.TextDataset:
    """The lines of each `<label>.txt`, labelled by file name; `params` are `FolderConfig`'s."""
    config = FolderConfig(**params)
    if not config.data_dir:
        raise toolkit.ToolkitError(
            "dataset 'folder' needs a folder: pass --param dataset.data_dir=PATH "
            "(one <label>.txt per class, one item a line)."
        )
    return toolkit.dataset_from_files(toolkit.read_label_folder(config.data_dir), config.normalization,
                                      labels=config.labels)


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="folder",
            help="Any folder of <label>.txt files, one item a line (the names format).",
            load=load,
            config=FolderConfig,
        )
    )
