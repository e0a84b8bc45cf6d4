r"""Distance matrices of embedded series, summed in the order numpy uses inside pyts.

For ``m == 1`` a plot is :math:`|x_i - x_j|`; for ``m > 1`` the squared differences of all
pairs of samples are computed once and the ``m`` shifted blocks summed (no trajectory
tensor), in numpy's pairwise-summation order, so sums and square roots are bit-identical to
pyts's. :func:`packed_pair_distances` gives each unordered pair once (for ``'point'``).
"""

from __future__ import annotations

import numpy as np
import torch

from pimc_core.series.rp_tensors import numpy_fast_path, scratch_buffer

__all__ = ["distances_into", "packed_pair_distances", "sqrt_into", "sum_embedding"]

# numpy's pairwise summation block (numpy/core/src/umath/loops_utils.h.src: PW_BLOCKSIZE).
_PW_BLOCKSIZE = 128


def _pairwise_sum(terms: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of equally shaped tensors in numpy's pairwise-summation order.

    numpy reduces ``np.sum(..., axis=-1)`` over a contiguous axis of length ``n`` with
    ``pairwise_sum``: sequentially for ``n < 8``, with 8 interleaved accumulators up to
    ``n <= 128``, recursively by halves above. Reproducing the order makes the sums (hence
    distances and every thresholded pixel) bit-identical to pyts. Never modifies ``terms``.
    """
    n = len(terms)
    if n == 1:
        return terms[0] if out is None else out.copy_(terms[0])
    if n < 8:
        acc = torch.add(terms[0], terms[1], out=out) if out is not None else terms[0] + terms[1]
        for t in terms[2:]:
            acc.add_(t)
        return acc
    if n <= _PW_BLOCKSIZE:
        r = list(terms[:8])
        owned = [False] * 8
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                if owned[j]:
                    r[j].add_(terms[i + j])
                else:
                    r[j] = r[j] + terms[i + j]
                    owned[j] = True
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for t in terms[i:]:
            res.add_(t)
        return res if out is None else out.copy_(res)
    n2 = n // 2
    n2 -= n2 % 8
    res = _pairwise_sum(terms[:n2]) + _pairwise_sum(terms[n2:])
    return res if out is None else out.copy_(res)


def distances_into(xc: torch.Tensor, dst: torch.Tensor, m: int, tau: int,
                   scratch: dict[str, torch.Tensor]) -> None:
    r"""Write the distance matrices of a chunk of series into ``dst``.

    Args:
        xc: ``(B, T)`` series in the compute dtype.
        dst: ``(B, T', T')`` destination in the compute dtype.
        m, tau: resolved embedding dimension and delay.
        scratch: reusable buffers (keyed by name), grown on demand.

    For ``m == 1``, ``dst = |x_i - x_j|``. Otherwise the squared differences of all pairs
    of samples, :math:`S_{ab} = (x_a - x_b)^2` (``(B, T, T)``), are computed once and
    :math:`D^2_{ij} = \sum_k S_{i + k\tau,\, j + k\tau}` is a sum of ``m`` shifted
    ``T' x T'`` blocks of ``S`` (no ``(B, T', T', m)`` trajectory difference tensor).
    """
    b = xc.shape[0]
    if m == 1:
        torch.sub(xc[:, :, None], xc[:, None, :], out=dst)
        dst.abs_()
        return
    n = dst.shape[-1]
    sq = scratch_buffer(scratch, "sq", (b, xc.shape[1], xc.shape[1]), xc)
    torch.sub(xc[:, :, None], xc[:, None, :], out=sq)
    sq.mul_(sq)
    terms = [sq[:, k * tau:k * tau + n, k * tau:k * tau + n] for k in range(m)]
    acc = scratch_buffer(scratch, "acc", (b, n, n), xc)
    sum_embedding(terms, tau, n, acc)
    sqrt_into(acc, dst)


def sum_embedding(terms: list[torch.Tensor], tau: int, side: int, out: torch.Tensor) -> None:
    """``out = sum(terms)`` (``m >= 2`` terms) in the order numpy uses inside pyts.

    pyts sums the squared trajectory differences with ``np.sum(axis=3)`` on a temporary whose
    memory layout numpy derives from the strided trajectories: for ``tau == 1`` (or
    ``T' == 1``) the embedding axis is innermost and numpy sums it pairwise; for ``tau > 1``
    it is not, and numpy accumulates the ``m`` terms one after the other. Both orders agree
    for ``m < 8``.
    """
    if len(terms) < 8 or not (tau == 1 or side == 1):
        torch.add(terms[0], terms[1], out=out)
        for t in terms[2:]:
            out.add_(t)
    else:
        _pairwise_sum(terms, out=out)


def packed_pair_distances(xc: torch.Tensor, m: int, tau: int, side: int) -> torch.Tensor:
    r"""Distances of every unordered pair of distinct trajectories, once: ``(B, T'(T'-1)/2)``.

    The values are bit-identical to the off-diagonal entries of :func:`distances_into`'s
    matrices (same differences, same summation order, same sqrt). Pairs are enumerated
    circularly, which needs no gather: with :math:`y^{(k)}_i = x_{i + k\tau}` and
    :math:`h = \lfloor (T'-1)/2 \rfloor`, row :math:`\delta \in [1, h]` holds the pairs
    :math:`(i, (i + \delta) \bmod T')` for all :math:`i` (a sliding window over
    :math:`y^{(k)}` concatenated with itself), plus, for even :math:`T'`, the pairs
    :math:`(i, i + T'/2)`, :math:`i < T'/2`.
    """
    b = xc.shape[0]
    h = (side - 1) // 2
    n_pairs = side * (side - 1) // 2
    terms = []
    for k in range(m):
        y = xc[:, k * tau:k * tau + side]
        buf = torch.empty((b, n_pairs), dtype=xc.dtype, device=xc.device)
        if h:
            win = torch.cat([y, y[:, :h]], dim=1).unfold(1, side, 1)[:, 1:]  # (B, h, T')
            torch.sub(win, y[:, None, :], out=buf[:, :h * side].view(b, h, side))
        if side % 2 == 0 and side:
            half = side // 2
            torch.sub(y[:, half:], y[:, :half], out=buf[:, h * side:])
        if m == 1:
            return buf.abs_()
        terms.append(buf.mul_(buf))
    acc = torch.empty_like(terms[0])
    sum_embedding(terms, tau, side, acc)
    sqrt_into(acc, acc)
    return acc


def sqrt_into(src: torch.Tensor, dst: torch.Tensor) -> None:
    """``dst = sqrt(src)``, correctly rounded as numpy's.

    torch's vectorised CPU sqrt (AVX-512 build) is not correctly rounded (1 ulp off for ~15%
    of float32 inputs), which would make distances differ from pyts's; numpy's is IEEE exact,
    and so is CUDA's.
    """
    if numpy_fast_path(src):
        np.sqrt(src.numpy(), out=dst.numpy())
    else:
        torch.sqrt(src, out=dst)

