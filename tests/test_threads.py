"""Web processes run numeric work on one BLAS thread (``web_numeric_threads``)."""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from paperboy.threads import limit_numeric_threads
from paperboy.web.app import create_app


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_web_app_caps_blas_threads(engine):
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    with threadpool_limits(limits=2):  # whatever the default, restored afterwards
        assert blas_threads() == {2}
        create_app(engine)
        assert blas_threads() == {engine.settings["web_numeric_threads"]} == {1}
        limit_numeric_threads(0)  # 0 leaves the libraries alone
        assert blas_threads() == {1}
