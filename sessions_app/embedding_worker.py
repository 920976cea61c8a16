"""Each server process's embedding worker: a thread that loads the model at
start, retries every MOSS_EMBED_RETRY_SECONDS while it is unavailable, and
embeds the turns stored meanwhile as soon as it is back.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection

from sessions_app import embeddings
from sessions_app.services.backfill import turns_embed_pending

logger = logging.getLogger(__name__)


def embedding_worker_start() -> None:
    threading.Thread(target=_run, name="embedding-worker", daemon=True).start()


def _run() -> None:
    database_failing = False
    while True:
        try:
            embeddings.model_load()
            turns_embed_pending()
            database_failing = False
        except embeddings.ModelUnavailable:
            pass  # logged by the embeddings module when it changes
        except DatabaseError as exc:
            if not database_failing:
                logger.warning("embedding worker: database unavailable (%s); retrying", exc)
            database_failing = True
        except Exception:
            logger.exception("embedding worker failed; retrying")
        finally:
            # This thread is no request: give its connection back to the pool.
            connection.close()
        time.sleep(settings.MOSS_EMBED_RETRY_SECONDS)
