"""Vectors go to PostgreSQL as text in 9 significant digits (models.StoredVector): enough
to read back the very float32 values that were written."""

import numpy as np

from sessions_app.actors import Actor
from sessions_app.models import StoredVector, Turn
from sessions_app.services.sessions import session_open
from sessions_app.services.turns import DocInput, turns_upsert


def test_a_stored_vector_reads_back_as_the_same_float32(make_project):
    project, _ = make_project()
    session, _ = session_open(project=project, name="conv-1", actor=Actor.system())
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(20, 384)).astype(np.float32)
    vectors[0, :3] = [1e-30, -3.4e38, 0.0]  # tiny, huge and zero values too
    docs = [
        DocInput(id=f"t{n}", text=f"turn {n}", metadata={"role": "bot"}, embedding=v.tolist())
        for n, v in enumerate(vectors)
    ]
    turns_upsert(session=session, docs=docs, actor=Actor.system())
    for n, vector in enumerate(vectors):
        stored = Turn.objects.get(session=session, doc_id=f"t{n}").embedding
        assert np.array_equal(np.asarray(stored, dtype=np.float32), vector)
    assert StoredVector(vectors[1]).to_text().count(",") == 383
