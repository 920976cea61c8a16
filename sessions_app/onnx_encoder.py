"""all-MiniLM-L6-v2 served by ONNX Runtime and the `tokenizers` library: no torch here.

The graph is exported once from the packaged model (sessions_app/onnx_export.py,
`manage.py encoder_export`, run by `make setup`) with mean pooling and L2
normalisation inside it, so it returns the same vectors as sentence-transformers
(tests/test_encoder_parity.py holds it to cosine >= 0.9999). The export lives in
MOSS_ENCODER_DIR (default $MOSS_DATA_DIR/encoder), in a folder named after the
model files it was made from: other model files get an export of their own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from django.conf import settings

# Bump when the exported graphs change (inputs, outputs, pooling, files): older exports
# are redone.
EXPORT_FORMAT = 4
ONNX_FILE = "model.onnx"
# Written last: an export folder that has it is whole. It says whether the int8 twin was made.
EXPORT_JSON = "export.json"
# The same graph with int8 weights: it encodes the context texts (embeddings.py).
CONTEXT_ONNX_FILE = "model_int8.onnx"
# The model's own files that decide the vectors: a change to any of them means a new export.
SOURCE_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
# sentence-transformers' default when the model folder does not say.
DEFAULT_MAX_SEQ_LENGTH = 256
# Tokens per encoder run (texts x the longest's tokens): 64 short turns fit, 16 texts of 256
# tokens. Attention's intermediates grow with texts x tokens squared: 64 texts of 256 tokens
# peaked at about 1.1 GB. Per token, batches this size cost the same CPU as larger ones.
MAX_BATCH_TOKENS = 4096
# Runs up to this many tokens (one text of the model's longest) keep their arena memory.
KEEP_ARENA_TOKENS = 256


def export_dir(model_dir: Path) -> Path:
    """Where the export of the model in `model_dir` lives: named after its files' names,
    sizes and modification times, which is cheap to compute at every start."""
    digest = hashlib.sha256(f"format {EXPORT_FORMAT}\n".encode())
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return Path(settings.MOSS_ENCODER_DIR) / f"minilm-{digest.hexdigest()[:16]}"


def max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
    return DEFAULT_MAX_SEQ_LENGTH


class OnnxEncoder:
    """Normalised sentence embeddings from the exported graph. Thread-safe: ONNX Runtime
    sessions run concurrently, and the tokenizer's settings are fixed here, once."""

    def __init__(
        self, *, model_dir: Path, onnx_file: Path, threads: int, texts_per_run: int = 64
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The model folder's tokenizer.json pads and truncates at 128; sentence-transformers
        # truncates at max_seq_length and pads each batch to its longest text (done here,
        # in encode, once the batches are known).
        self.tokenizer.enable_truncation(max_length=max_seq_length(model_dir))
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # The arena stays on: without it every intermediate tensor is a fresh malloc, which
        # moss_web/memory.py makes an mmap plus page faults plus munmap (64 KiB and up), and
        # the server spent as much CPU in the kernel as in the model. It is shrunk back after
        # each run larger than one long text, so a large batch's peak is not kept for good;
        # a query's run keeps its few MB (shrinking each time cost a query about 1 ms).
        options.enable_cpu_mem_arena = True
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.shrink_after = onnxruntime.RunOptions()
        self.shrink_after.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.dimensions = int(self.session.get_outputs()[0].shape[-1])
        self.texts_per_run = texts_per_run

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """One row per text, in order. Texts are batched by token count, longest first, so
        a batch pads to texts of about its own length (sentence-transformers sorts by
        characters); a batch of long texts holds fewer of them, to bound its memory."""
        encoded = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encoded]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = lengths[order[start]]
            size = max(1, min(batch_size, self.texts_per_run, MAX_BATCH_TOKENS // max(longest, 1)))
            chosen = order[start : start + size]
            input_ids = np.zeros((len(chosen), longest), dtype=np.int64)  # 0 is [PAD]
            attention_mask = np.zeros((len(chosen), longest), dtype=np.int64)
            for row, i in enumerate(chosen):
                input_ids[row, : lengths[i]] = encoded[i].ids
                attention_mask[row, : lengths[i]] = 1
            (batch,) = self.session.run(
                None,
                {"input_ids": input_ids, "attention_mask": attention_mask},
                self.shrink_after if input_ids.size > KEEP_ARENA_TOKENS else None,
            )
            vectors[chosen] = batch
            start += size
        return vectors
