"""Indexes shared by the integration tests: the demo passages (demo_data.py) in an exact and a
plaid index built once per session with the packaged default model."""

from __future__ import annotations

import colmax
import pytest
from demo_data import demo_corpus


@pytest.fixture(scope="session")
def encoder():
    return colmax.Encoder()


@pytest.fixture(scope="session", params=["exact", "plaid"])
def demo_index(request, tmp_path_factory, encoder):
    ids, texts, metadata = demo_corpus()
    index = colmax.Index.create(tmp_path_factory.mktemp("demo") / "ix", encoder, kind=request.param)
    index.add(texts, ids=ids, metadata=metadata)
    yield index
    index.close()


@pytest.fixture
def textless_index(tmp_path, encoder):
    """A text index holding one document added as token vectors only, so it has no text."""
    index = colmax.Index.create(tmp_path / "textless", encoder)
    index.add(["Paris is the capital of France."], ids=["paris"])
    index.add_embeddings(encoder.encode_documents(["Lyon is a city in France."]), ids=["lyon"])
    yield index
    index.close()
