"""Export all-MiniLM-L6-v2 to ONNX with torch, once, at set-up (`manage.py encoder_export`).

This is the only module that imports torch and sentence-transformers outside the
torch backend (EMBEDDING_BACKEND=torch): a server process reads the export with
ONNX Runtime (onnx_encoder.py) and never loads torch. The graph takes
`input_ids` and `attention_mask` (batch x tokens) and returns `sentence_embedding`
(batch x 384): the transformer, mean pooling over the unmasked tokens, and L2
normalisation, exactly sentence-transformers' modules for this model, with its
word-embedding table kept in float16 (half the graph's weights, read a row per
token, so it saves 22 MB per process for a cosine of 0.9999995). Beside it,
the context graph: the same transformer with a (batch x tokens x tokens) mask as
input and every token's state as output (onnx_encoder.ContextEncoder), and its
twin with the weights quantised to int8 (per channel, ONNX Runtime's dynamic
quantisation), which computes the context vectors (README, "Embedding model").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sessions_app.onnx_encoder import (
    CONTEXT_FP32_FILE,
    CONTEXT_ONNX_FILE,
    EXPORT_FORMAT,
    EXPORT_JSON,
    ONNX_FILE,
    export_dir,
)

logger = logging.getLogger(__name__)

OPSET = 17
# Below this the int8 twin is not used (all-MiniLM-L6-v2 gives 0.98 at worst).
MIN_TWIN_COSINE = 0.97
# What the twin is checked on: short and long turns, a context text, accents.
SAMPLE_TEXTS = [
    "status of the refund",
    "It ends in 4417.",
    "Customer: Where is my refund for order 48117?\n(in reply to Bot: How can I help?)",
    "Agent: I've issued a credit of $25.00 and booked a callback for Friday.",
    "Ünïcödé: the café's crème brûlée order was charged twice",
]


def encoder_export(*, model_dir: Path, force: bool = False) -> tuple[Path, bool]:
    """The export for `model_dir`, made now unless it exists; (its folder, whether made now).
    Written beside its final place and renamed into it, so a reader never sees half a file."""
    target = export_dir(model_dir)
    # export.json is written last, into a folder renamed into place whole.
    if (target / EXPORT_JSON).is_file() and not force:
        return target, False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    transformer: Any = model[0].auto_model

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer: Any = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            token_type_ids = torch.zeros_like(input_ids)
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)

    class Tokens(torch.nn.Module):
        """The context graph: a (batch x tokens x tokens) mask in, each token's state out
        (onnx_encoder.ContextEncoder pools them per turn)."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer: Any = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            blocked = (1.0 - attention_mask[:, None].to(torch.float32)) * torch.finfo(
                torch.float32
            ).min
            return self.transformer(
                input_ids=input_ids,
                attention_mask=blocked,
                token_type_ids=torch.zeros_like(input_ids),
            )[0]

    sample = model.tokenizer(
        ["an example turn", "a second, somewhat longer example turn"],
        padding=True,
        return_tensors="pt",
    )
    square = torch.ones((2, sample["input_ids"].shape[1], sample["input_ids"].shape[1]))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    staging.chmod(0o755)
    try:
        # The tracer warns about shape checks it freezes; none of them depends on the
        # batch or the text length (tests/test_encoder_parity.py checks both).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled().eval(),
                (sample["input_ids"], sample["attention_mask"]),
                str(staging / ONNX_FILE),
                input_names=["input_ids", "attention_mask"],
                output_names=["sentence_embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
            torch.onnx.export(
                Tokens().eval(),
                (sample["input_ids"], square.to(torch.int64)),
                str(staging / CONTEXT_FP32_FILE),
                input_names=["input_ids", "attention_mask"],
                output_names=["token_states"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens", 2: "keys"},
                    "token_states": {0: "batch", 1: "tokens"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        probe = model.tokenizer(SAMPLE_TEXTS, padding=True, return_tensors="np")
        context_int8 = _quantize(
            staging / CONTEXT_FP32_FILE, staging / CONTEXT_ONNX_FILE, probe=probe
        )
        _word_embeddings_halve(staging / ONNX_FILE)
        _word_embeddings_halve(staging / CONTEXT_FP32_FILE)
        (staging / EXPORT_JSON).write_text(
            json.dumps(
                {
                    "format": EXPORT_FORMAT,
                    "model_dir": str(model_dir),
                    "torch": torch.__version__,
                    "context_int8": context_int8,
                },
                indent=1,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _stale_exports_remove(model_dir=model_dir, kept=target)
    return target, True


def _stale_exports_remove(*, model_dir: Path, kept: Path) -> None:
    """Earlier exports of the same model folder (older files, an older format): nothing
    reads them again. Exports of other model folders stay."""
    for folder in kept.parent.glob("minilm-*"):
        if folder == kept or not (folder / EXPORT_JSON).is_file():
            continue
        try:
            made_from = json.loads((folder / EXPORT_JSON).read_text()).get("model_dir")
        except (OSError, ValueError):
            continue
        if made_from == str(model_dir):
            shutil.rmtree(folder, ignore_errors=True)


def _quantize(source: Path, target: Path, *, probe: Any) -> bool:
    """Weights to int8, one scale per output channel (a cosine of 0.98 or more to the
    full-precision vectors, against 0.92 with one scale per tensor), in 7 bits
    (reduce_range): without VNNI (AVX2 alone) ONNX Runtime's u8 x s8 products saturate
    with 8-bit weights, and the twin's vectors then differ by CPU (worst cosine 0.976
    there, 0.991 with 7 bits). Activations are quantised at run time. Whether the twin
    was written: other model files may not quantise, or not as well (checked on the
    `probe` batch); their context texts are then encoded by the full graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It warns on the root logger, at every export, that a pre-processing pass may help;
    # the vectors measured here are those of this graph as exported.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source, target, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
        )
    except Exception as exc:  # the quantiser raises whatever its passes raise
        logger.warning("no int8 twin of %s (%r): context texts use the full graph", source, exc)
        return False
    finally:
        root.setLevel(level)
    worst = _worst_cosine(source, target, probe=probe)
    if worst < MIN_TWIN_COSINE:
        logger.warning("the int8 twin of %s reaches a cosine of %.3f only; not used", source, worst)
        target.unlink()
        return False
    return True


def _worst_cosine(first: Path, second: Path, *, probe: Any) -> float:
    """The lowest cosine between the two graphs' vectors of each text in `probe`, each run
    alone as the server runs context texts."""
    import numpy as np
    import onnxruntime

    sessions = [
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for path in (first, second)
    ]
    worst = 1.0
    for ids, mask in zip(probe["input_ids"], probe["attention_mask"], strict=True):
        count = int(mask.sum())
        # Each text alone, every token seeing every other; its states mean-pooled.
        full = np.ones((1, count, count), dtype=np.int64)
        inputs = {"input_ids": ids[:count][None], "attention_mask": full}
        a, b = (session.run(None, inputs)[0][0].mean(axis=0) for session in sessions)
        worst = min(worst, float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return worst


WORD_EMBEDDINGS = "transformer.embeddings.word_embeddings.weight"


def _word_embeddings_halve(path: Path) -> bool:
    """The word-embedding table (30,522 x 384) stored in float16 and cast back to float32
    after its lookup: the rows a text reads lose nothing the vectors notice, and the
    table is half of the graph's weights. A graph laid out otherwise (other model files)
    is left as it is; whether it was changed."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    tables = [init for init in model.graph.initializer if init.name == WORD_EMBEDDINGS]
    lookups = [
        (index, node)
        for index, node in enumerate(model.graph.node)
        if node.op_type == "Gather" and node.input[0] == WORD_EMBEDDINGS
    ]
    if len(tables) != 1 or len(lookups) != 1:
        logger.warning("%s: no single %s lookup; kept in float32", path, WORD_EMBEDDINGS)
        return False
    halved = numpy_helper.to_array(tables[0]).astype(np.float16)
    tables[0].CopyFrom(numpy_helper.from_array(halved, WORD_EMBEDDINGS))
    index, lookup = lookups[0]
    looked_up = lookup.output[0]
    lookup.output[0] = f"{looked_up}_float16"
    cast = helper.make_node(
        "Cast", [lookup.output[0]], [looked_up], to=TensorProto.FLOAT, name=f"{lookup.name}_cast"
    )
    model.graph.node.insert(index + 1, cast)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True
