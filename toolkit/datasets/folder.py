"""`folder`: any folder of `<label>.txt` files, one item a line (the names format, any data)."""

from __future__ import annotations

import toolkit


def load(data_dir: str = "", normalization: str = "raw") -> toolkit.TextDataset:
    if not data_dir:
        raise toolkit.ToolkitError(
            "dataset 'folder' needs a folder: pass --param dataset.data_dir=PATH "
            "(one <label>.txt per class, one item a line)."
        )
    return toolkit.dataset_from_files(toolkit.read_label_folder(data_dir), normalization)


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="folder",
            help="Any folder of <label>.txt files, one item a line (the names format).",
            load=load,
            params=(
                toolkit.Param("data_dir", str, "", "The folder of <label>.txt files (required)."),
                toolkit.normalization_param("raw"),
            ),
        )
    )
