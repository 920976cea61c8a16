"""The ONNX encoder gives sentence-transformers' vectors, and serving never loads torch.

sentence-transformers is the reference: the same packaged model, run by torch in
this test process. The ONNX export is the one `make setup` made
(`manage.py encoder_export`), and one made afresh by the export tool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from sessions_app import embeddings, onnx_export
from sessions_app.context_windows import ContextWindow, Said, context_windows
from sessions_app.onnx_encoder import (
    CONTEXT_FP32_FILE,
    CONTEXT_ONNX_FILE,
    EXPORT_JSON,
    ONNX_FILE,
    ContextEncoder,
    OnnxEncoder,
    export_dir,
)
from sessions_app.onnx_export import WORD_EMBEDDINGS, _word_embeddings_halve
from tests.servers import python_run

MIN_COSINE = 0.9999

SHORT = ["hi", "refund?", "status of the refund", "Customer reported a duplicate $49.99 charge."]
UNICODE = [
    "Ünïcödé: the café's crème brûlée order was charged twice",
    "日本語のテキスト: 返金の状況を教えてください",
    "Привет! Где мой заказ №48117?",
    "emoji 🚀🔥 and symbols ∑ ≠ ∞ — \u201cquotes\u201d \u2018too\u2019",
    "mixed: naïve résumé für Ärger, 中文, عربى",
]
# Well past 256 word pieces: sentence-transformers truncates there, and so must the encoder.
LONG = [
    " ".join(f"word{i} refund delayed package" for i in range(200)),
    "The customer called again about order #48117. " * 60,
]


@pytest.fixture(scope="module")
def reference() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embeddings.model_path()), device="cpu")


@pytest.fixture(scope="module")
def encoder() -> OnnxEncoder:
    model_dir = embeddings.model_path()
    return OnnxEncoder(model_dir=model_dir, onnx_file=export_dir(model_dir) / ONNX_FILE, threads=1)


def reference_vectors(reference: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    return np.asarray(
        reference.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize(
    "texts", [SHORT, UNICODE, LONG], ids=["short", "unicode", "long-truncated"]
)
def test_each_text_matches_sentence_transformers(
    reference: Any, encoder: OnnxEncoder, texts: list[str]
) -> None:
    ours = np.stack([encoder.encode([text])[0] for text in texts])
    assert cosines(ours, reference_vectors(reference, texts)).min() >= MIN_COSINE


def test_padded_batches_match_one_text_at_a_time(reference: Any, encoder: OnnxEncoder) -> None:
    # Texts of very different lengths in one batch: most rows are padded.
    texts = SHORT + UNICODE + LONG + [f"turn {i}: " + "more words " * (i % 30) for i in range(40)]
    batched = encoder.encode(texts, batch_size=16)
    assert batched.shape == (len(texts), 384)
    assert cosines(batched, reference_vectors(reference, texts, batch_size=16)).min() >= MIN_COSINE
    alone = np.stack([encoder.encode([text])[0] for text in texts])
    assert cosines(batched, alone).min() >= MIN_COSINE


# The int8 twin that encodes context texts (embeddings.py): measured 0.980 at worst here
# ("hi"), 0.991 on average over the eval set's context texts.
MIN_CONTEXT_COSINE = 0.97


THREAD = [
    Said("Bot", "Can you confirm the last four digits of the card?"),
    Said("Customer", "It ends in 4417."),
    Said("Bot", "Thanks, I can see the two debits. " * 3),
    Said("Customer", "Ünïcödé: the café's crème brûlée order was charged twice"),
    Said("Agent", "word " * 300),
    Said("Customer", "Yes, go ahead."),
]


def context_encoder(name: str) -> ContextEncoder:
    path = embeddings.model_path()
    return ContextEncoder(model_dir=path, onnx_file=export_dir(path) / name, threads=1)


def test_context_windows_match_the_torch_reference() -> None:
    # The same block-causal reading by sentence-transformers' transformer in torch.
    from sessions_app.embeddings import _TorchEncoder

    windows = context_windows(previous=Said("Bot", "How can I help?"), turns=THREAD)
    reference = _TorchEncoder(embeddings.model_path()).encode_windows(windows)
    full = context_encoder(CONTEXT_FP32_FILE).encode_windows(windows)
    assert cosines(full, reference).min() >= MIN_COSINE
    int8 = embeddings.windows_embed(windows)  # the int8 twin, served by default
    assert cosines(int8, reference).min() >= MIN_CONTEXT_COSINE
    assert cosines(int8, reference).min() < MIN_COSINE  # the other graph indeed
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)


# Queries a specialist or a bot asks (the eval set's kind), for the int8 query vectors.
QUERIES = [
    "what did the bot promise on the phone call",
    "card number",
    "why did the payment fail",
    "where does she want the boarding pass sent",
    "refund?",
    "Привет! Где мой заказ №48117?",
]
# The int8 twin's query vectors against the model's: measured 0.985 at worst and 0.993
# on average over the eval set's 230 questions.
MIN_QUERY_COSINE = 0.98


@pytest.mark.parametrize("texts", [SHORT, UNICODE, LONG], ids=["short", "unicode", "long"])
def test_the_context_graph_reads_a_text_alone_as_the_model_does(
    reference: Any, texts: list[str]
) -> None:
    # What the int8 twin's query vectors are read with, checked on the full graph.
    alone = context_encoder(CONTEXT_FP32_FILE).encode(texts)
    assert cosines(alone, reference_vectors(reference, texts)).min() >= MIN_COSINE


def test_queries_are_encoded_by_the_int8_twin(reference: Any) -> None:
    served = np.stack([embeddings.query_embed(text) for text in QUERIES])
    model = reference_vectors(reference, QUERIES)
    assert cosines(served, model).min() >= MIN_QUERY_COSINE
    assert cosines(served, model).min() < MIN_COSINE  # the twin indeed
    assert cosines(served, context_encoder(CONTEXT_ONNX_FILE).encode(QUERIES)).min() >= 0.99999


@pytest.mark.parametrize("off", ["EMBEDDING_QUERY_INT8", "EMBEDDING_CONTEXT_INT8"])
def test_without_the_int8_twin_for_queries_they_get_the_model(
    reference: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, off: str
) -> None:
    setattr(settings, off, False)
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    embeddings.model_load()
    served = np.stack([embeddings.query_embed(text) for text in QUERIES])
    assert cosines(served, reference_vectors(reference, QUERIES)).min() >= MIN_COSINE


def test_stored_text_is_encoded_as_a_query_of_the_same_text_is(reference: Any) -> None:
    # One run per text on the twin: a turn's vector does not depend on the call it came in,
    # and a query of the turn's very words finds it at cosine 1.
    stored = embeddings.passages_embed(QUERIES)
    alone = embeddings.passages_embed(QUERIES[:1])
    assert np.array_equal(stored[:1], alone)
    queried = np.stack([embeddings.query_embed(text) for text in QUERIES])
    assert cosines(stored, queried).min() >= 0.99999
    model = reference_vectors(reference, QUERIES)
    assert MIN_QUERY_COSINE <= cosines(stored, model).min() < MIN_COSINE  # the twin indeed


def test_without_the_int8_twin_for_stored_text_it_gets_the_model(
    reference: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMBEDDING_PASSAGE_INT8 = False
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    embeddings.model_load()
    stored = embeddings.passages_embed(QUERIES)
    assert cosines(stored, reference_vectors(reference, QUERIES)).min() >= MIN_COSINE


def test_where_the_twin_serves_every_request_the_full_graph_opens_only_when_used(
    reference: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    model = embeddings.model_load()
    assert isinstance(model, OnnxEncoder)
    embeddings.query_embed(QUERIES[0])
    embeddings.passages_embed(QUERIES)
    embeddings.windows_embed(context_windows(previous=None, turns=THREAD[:3]))
    assert model._session is None  # about 90 MB a worker does not hold
    assert embeddings.model_status().state == "ready"
    served = embeddings.texts_embed(QUERIES)  # the model itself, opened now
    assert cosines(served, reference_vectors(reference, QUERIES)).min() >= MIN_COSINE
    # A setting that needs it opens it with the rest.
    settings.EMBEDDING_QUERY_INT8 = False
    monkeypatch.setattr(embeddings, "_model", None)
    model = embeddings.model_load()
    assert isinstance(model, OnnxEncoder) and model._session is not None


def test_a_turn_reads_the_turns_before_it_and_never_those_after() -> None:
    full = context_encoder(CONTEXT_FP32_FILE)
    first, second, third = THREAD[:3]
    together = full.encode_windows(context_windows(previous=None, turns=[first, second, third]))
    alone = full.encode_windows([ContextWindow(previous=None, turns=(first, second))])[0]
    assert cosines(together[1:2], alone[None]).min() >= 0.99999
    other = full.encode_windows([ContextWindow(previous=None, turns=(THREAD[5], second))])[0]
    assert float(np.dot(other, alone)) < 0.99  # what came before changes it


def test_a_window_longer_than_the_model_reads_its_end() -> None:
    full = context_encoder(CONTEXT_FP32_FILE)
    long = Said("Customer", "refund " * 300)
    windows = [
        ContextWindow(previous=THREAD[0], turns=(long,)),
        ContextWindow(previous=THREAD[0], turns=(THREAD[1], long)),
    ]
    vectors = full.encode_windows(windows)
    # Both keep the long turn's first 254 tokens and nothing before it.
    assert cosines(vectors[:1], vectors[1:]).min() >= 0.99999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_without_int8_context_windows_get_the_full_graph(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMBEDDING_CONTEXT_INT8 = False
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    embeddings.model_load()
    windows = context_windows(previous=None, turns=THREAD)
    served = embeddings.windows_embed(windows)
    full = context_encoder(CONTEXT_FP32_FILE).encode_windows(windows)
    assert cosines(served, full).min() >= 0.99999


def test_the_export_keeps_its_word_embeddings_in_float16() -> None:
    # Half the graph's weights, 22 MB less per process; the parity tests above hold the
    # vectors to the reference all the same.
    import onnx

    graph = onnx.load(str(export_dir(embeddings.model_path()) / ONNX_FILE)).graph
    (table,) = [init for init in graph.initializer if init.name == WORD_EMBEDDINGS]
    assert table.data_type == onnx.TensorProto.FLOAT16


def test_a_twin_not_close_enough_is_dropped_and_context_texts_get_the_model(
    fresh_export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export, "MIN_TWIN_COSINE", 1.01)  # no int8 graph reaches it
    call_command("encoder_export", stdout=StringIO())
    target = export_dir(embeddings.model_path())
    assert json.loads((target / EXPORT_JSON).read_text())["context_int8"] is False
    assert not (target / CONTEXT_ONNX_FILE).exists()
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    embeddings.model_load()
    windows = context_windows(previous=None, turns=THREAD)
    served = embeddings.windows_embed(windows)
    full = ContextEncoder(
        model_dir=embeddings.model_path(), onnx_file=target / CONTEXT_FP32_FILE, threads=1
    ).encode_windows(windows)
    assert cosines(served, full).min() >= 0.99999


def test_a_model_that_does_not_quantise_gets_no_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization

    def fails(*args: Any, **kwargs: Any) -> None:
        raise ValueError("an operator the quantiser does not know")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", fails)
    source = export_dir(embeddings.model_path()) / CONTEXT_FP32_FILE
    assert not onnx_export._quantize(source, tmp_path / CONTEXT_ONNX_FILE, probe={})
    assert not (tmp_path / CONTEXT_ONNX_FILE).exists()


def test_a_graph_laid_out_otherwise_keeps_its_tables(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    before = path.read_bytes()
    assert not _word_embeddings_halve(path)
    assert path.read_bytes() == before


def test_vectors_are_unit_length_and_truncation_is_at_256_tokens(encoder: OnnxEncoder) -> None:
    vectors = encoder.encode(SHORT + LONG)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(encoder.tokenizer.encode(LONG[0]).ids) == 256
    # What lies past the 256th token changes nothing.
    longer = encoder.encode([LONG[0] + " completely different trailing words " * 50])
    assert cosines(vectors[len(SHORT) : len(SHORT) + 1], longer).min() >= 0.999999


def test_the_default_backend_is_onnx(settings: Any) -> None:
    assert settings.EMBEDDING_BACKEND == "onnx"
    assert isinstance(embeddings.model_load(), OnnxEncoder)


@pytest.fixture
def fresh_export_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    settings.MOSS_ENCODER_DIR = tmp_path / "encoder"
    yield settings.MOSS_ENCODER_DIR


def test_a_process_without_the_export_makes_it_once(
    reference: Any, fresh_export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSS_ENCODER_DIR", str(fresh_export_dir))  # for the child process
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_context_model", None)
    monkeypatch.setattr(embeddings, "_failure", "")
    target = export_dir(embeddings.model_path())
    assert target.parent == fresh_export_dir and not target.exists()

    loaded = embeddings.model_load()  # exports in a child process, then loads
    assert isinstance(loaded, OnnxEncoder)
    assert (target / CONTEXT_ONNX_FILE).is_file()
    assert isinstance(embeddings.context_model_get(), ContextEncoder)
    assert json.loads((target / "export.json").read_text())["format"] >= 1
    fresh = embeddings.texts_embed(SHORT + UNICODE)
    assert cosines(fresh, reference_vectors(reference, SHORT + UNICODE)).min() >= MIN_COSINE

    again = StringIO()
    call_command("encoder_export", stdout=again)
    assert again.getvalue().strip() == f"ONNX export up to date in {target}"
    assert [p.name for p in fresh_export_dir.iterdir()] == [target.name]  # no leftovers


def test_an_export_replaces_the_stale_ones_of_the_same_model(fresh_export_dir: Path) -> None:
    model_dir = embeddings.model_path()
    stale = fresh_export_dir / "minilm-0000000000000000"
    other = fresh_export_dir / "minilm-1111111111111111"
    for folder, source in ((stale, model_dir), (other, Path("/elsewhere/model"))):
        folder.mkdir(parents=True)
        (folder / "export.json").write_text(json.dumps({"format": 1, "model_dir": str(source)}))
    call_command("encoder_export", stdout=StringIO())
    target = export_dir(model_dir)
    assert sorted(p.name for p in fresh_export_dir.iterdir()) == sorted([target.name, other.name])


SERVING_PROCESS = """
import sys, django
django.setup()
from moss_web.asgi import application
from sessions_app import embeddings
vectors = embeddings.texts_embed(["status of the refund"])
assert vectors.shape == (1, 384), vectors.shape
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sentence_transformers"))
print(",".join(loaded) or "none")
"""


def test_a_serving_process_never_imports_torch() -> None:
    assert python_run(SERVING_PROCESS, timeout=120) == "none"


SERVER_TUNED_PROCESS = """
import json, os, django
django.setup()
from moss_web.asgi import application  # tunes glibc's allocator as the server does
from sessions_app import embeddings

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

texts = [f"turn {i}: the customer asks about order {i} and the refund " * 8 for i in range(200)]
embeddings.texts_embed(texts[:8])
before, started = rss_mb(), os.times()
embeddings.texts_embed(texts)
ended = os.times()
print(json.dumps({"user": ended.user - started.user, "system": ended.system - started.system,
                  "kept_mb": rss_mb() - before}))
"""


def test_batches_cost_no_kernel_time_and_leave_no_peak_behind() -> None:
    # moss_web/memory.py maps every block of 64 KiB and up on its own: an encoder that
    # allocated each tensor afresh spent as much CPU in page faults as in the model.
    spent = json.loads(python_run(SERVER_TUNED_PROCESS, timeout=300))
    assert spent["system"] < 0.25 * spent["user"], spent
    # The arena gives a large batch's memory back after the run.
    assert spent["kept_mb"] < 64, spent
