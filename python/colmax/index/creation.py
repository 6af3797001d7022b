"""A new index's first commit: ``Index.create``'s arguments checked and turned into its manifest."""

from __future__ import annotations

from pathlib import Path

from .._validate import positive_int
from . import codebook as codebooks
from . import defaults
from .codebook import Codebook
from .files import store_name
from .manifest import STORAGES, Manifest
from .model import model_record, passage_settings


def first_manifest(
    path: Path,
    model,
    kind: str,
    storage: str | None,
    nbits: int | None,
    n_centroids: int | None,
    dim: int | None,
    keyword: bool,
    passage_length: int | None,
    passage_stride: int | None,
    codebook: Codebook | None,
) -> tuple[object | None, Manifest]:
    """The encoder (None without a model) and the generation-0 manifest of an index to create
    at ``path`` (which must be new or an empty directory), every argument checked first."""
    plaid_knobs = nbits is not None or n_centroids is not None or codebook is not None
    kind = "plaid" if kind == "auto" and plaid_knobs else defaults.resolve_kind(kind, None)
    if storage is None and kind == "exact":
        storage = defaults.default_storage()
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if dim is not None:
        dim = positive_int("dim", dim)
    if kind == "exact" and (nbits is not None or n_centroids is not None):
        raise ValueError("nbits and n_centroids apply to kind='plaid' indexes only")
    if n_centroids is not None:
        n_centroids = codebooks.check_n_centroids(n_centroids)
    if codebook is not None:
        if kind != "plaid":
            raise ValueError("codebook applies to kind='plaid' indexes only")
        if not isinstance(codebook, Codebook):
            raise TypeError(
                f"codebook must be a colmax.index.codebook.Codebook, got {type(codebook).__name__}"
            )
        if nbits is not None and nbits != codebook.nbits:
            raise ValueError(f"nbits={nbits} but the codebook has {codebook.nbits} bits: drop nbits=")
        nbits = codebook.nbits
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} already exists and is not an empty directory: choose a new path")
    encoder, record, dim = model_record(model, dim)
    passages = None
    if encoder is not None:
        passages = passage_settings(encoder, passage_length, passage_stride)
    elif passage_length is not None or passage_stride is not None:
        raise ValueError("passage_length and passage_stride need a model: this index holds embeddings only")
    if codebook is not None and codebook.dim != dim:
        raise ValueError(f"the codebook holds {codebook.dim}-dim centroids but the index is {dim}-dim")
    request = None
    if kind == "plaid":
        nbits = codebooks.default_nbits(dim) if nbits is None else nbits
        request = {"nbits": codebooks.check_nbits(nbits, dim), "n_centroids": n_centroids}
    manifest = Manifest(
        generation=0,
        dim=dim,
        storage=storage,
        model=record,
        store=store_name(0),
        kind=kind,
        codebook=request,
        keyword=bool(keyword),
        passages=passages,
    )
    return encoder, manifest
