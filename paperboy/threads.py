"""How many threads numeric libraries may use in this process.

A web request's numeric work is small (one query against the vectors, a hundred candidates): spread
over BLAS threads it waits on them, and on a busy machine it waits for cores. Measured on these 2 cores
while other jobs ran: one 2,026 x 384 product plus top-100 took 24 ms p50 on OpenBLAS's default two
threads and 0.07 ms on one. Serving processes therefore cap the pools; batch commands keep them.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def limit_numeric_threads(n: int) -> None:
    """Cap BLAS/OpenMP pools (threadpoolctl) and torch's intra-op threads at ``n``; 0 leaves them."""
    if n <= 0:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a dependency; without it the libraries keep their defaults
        log.warning("threadpoolctl is missing: numeric libraries keep their default thread counts")
    else:
        threadpool_limits(limits=n)  # process-wide, for the libraries loaded so far (numpy's BLAS)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
