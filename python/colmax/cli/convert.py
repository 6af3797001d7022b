"""`colmax convert SRC DST [--quantize int8]`: a checkpoint into a colmax model directory, no torch."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a BERT / Stanford ColBERT / PyLate checkpoint to a colmax ONNX model directory",
        description="Build an ONNX encoder from a checkpoint directory's weights (safetensors or "
        "pytorch_model.bin) without torch: a plain Hugging Face BERT encoder, a Stanford ColBERT "
        "checkpoint (HF_ColBERT, artifact.metadata) or a PyLate model (1_Dense/).",
    )
    parser.add_argument("src", help="checkpoint directory")
    parser.add_argument("dst", help="output model directory (created; must be empty unless --force)")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="also write model_int8.onnx (dynamic int8, per channel); Encoder prefers it",
    )
    parser.add_argument("--query-length", type=int, default=None, help="override the query length")
    parser.add_argument("--document-length", type=int, default=None, help="override the document length")
    parser.add_argument("--force", action="store_true", help="write into a non-empty DST")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.encoding.convert import convert, detect
    from colmax.encoding.models import read_config

    kind = detect(args.src)
    dst = convert(
        args.src,
        args.dst,
        quantize=args.quantize,
        overwrite=args.force,
        query_length=args.query_length,
        document_length=args.document_length,
    )
    config = read_config(dst)
    names = {"stanford": "Stanford ColBERT", "pylate": "PyLate", "hf": "plain encoder"}
    print(f"converted {names[kind]} checkpoint {args.src} -> {dst}")
    print(
        f"dim {config.embedding_dim}, query_length {config.query_length}, "
        f"document_length {config.document_length}, query expansion {config.do_query_expansion}"
    )
    print("files: " + ", ".join(sorted(p.name for p in dst.iterdir())))
    return 0
