"""Encoding a whole dataset compactly: the padded index matrix in the smallest integer type.

An encoder returns a LongTensor (8 bytes an index). For millions of texts the trainer keeps
the matrix for the whole run, so it encodes in chunks and stores each chunk narrowed to the
smallest type that holds every index (uint8 for up to 256 symbols, int16, then int32):
memory and time grow linearly with the number of texts, and a batch is widened back to
int64 only when the model reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from toolkit.contracts import check_encoded
from toolkit.types import Encoder

#: Texts encoded per call to the encoder: bounds the int64 intermediate.
CHUNK = 65_536


def index_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer type that holds indices 0 .. vocab_size - 1."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if vocab_size - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.long


def encode_compact(encoder: Encoder, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, lengths) of all `texts`: indices padded to the longest text, in
    `index_dtype(encoder.vocab_size)`; lengths int64."""
    dtype = index_dtype(encoder.vocab_size)
    chunks: list[torch.Tensor] = []
    lengths: list[torch.Tensor] = []
    for start in range(0, max(len(texts), 1), CHUNK):
        part = list(texts[start:start + CHUNK])
        encoded = encoder.encode(part)
        check_encoded(f"the encoder ({type(encoder).__name__})", encoded, len(part), encoder.vocab_size)
        indices, part_lengths = encoded
        chunks.append(indices.to(dtype))
        lengths.append(part_lengths.long())
    width = max((c.shape[1] for c in chunks), default=0)
    result = torch.zeros(sum(len(c) for c in chunks), width, dtype=dtype)  # 0 pads, as encoders must
    row = 0
    for chunk in chunks:
        result[row:row + len(chunk), : chunk.shape[1]] = chunk
        row += len(chunk)
    return result, torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.long)
