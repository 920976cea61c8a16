"""Export all-MiniLM-L6-v2 to ONNX with torch, once, at set-up (`manage.py encoder_export`).

This is the only module that imports torch and sentence-transformers outside the
torch backend (EMBEDDING_BACKEND=torch): a server process reads the export with
ONNX Runtime (onnx_encoder.py) and never loads torch. The graph takes
`input_ids` and `attention_mask` (batch x tokens) and returns `sentence_embedding`
(batch x 384): the transformer, mean pooling over the unmasked tokens, and L2
normalisation, exactly sentence-transformers' modules for this model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sessions_app.onnx_encoder import EXPORT_FORMAT, ONNX_FILE, export_dir

OPSET = 17


def encoder_export(*, model_dir: Path, force: bool = False) -> tuple[Path, bool]:
    """The export for `model_dir`, made now unless it exists; (its folder, whether made now).
    Written beside its final place and renamed into it, so a reader never sees half a file."""
    target = export_dir(model_dir)
    if (target / ONNX_FILE).is_file() and not force:
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

    sample = model.tokenizer(
        ["an example turn", "a second, somewhat longer example turn"],
        padding=True,
        return_tensors="pt",
    )
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
        (staging / "export.json").write_text(
            json.dumps(
                {"format": EXPORT_FORMAT, "model_dir": str(model_dir), "torch": torch.__version__},
                indent=1,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True
