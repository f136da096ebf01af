"""The few points of a comparison that decide the elementwise verdict for every (max_abs, rtol).

An element with reference magnitude m = |b| and error d = |a - b| passes when d <= max_abs + rtol * m.
All elements pass exactly when max_i(d_i - rtol * m_i) <= max_abs. For rtol >= 0 that maximum is
reached on the upper convex hull of the Pareto frontier (small m, large d) of the points (m_i, d_i): a
point below a chord between two hull points, or dominated by a point with smaller m and larger d, never
reaches the maximum. The hull is typically a handful of points; storing it lets a verdict be re-judged
for any limits without the arrays."""

from __future__ import annotations

import numpy as np

# Arrays up to this size go straight to the exact frontier; larger ones are first thinned by the hull of
# a strided subsample (an exact filter: it only drops points that cannot reach the maximum).
_DIRECT = 1 << 16


def pareto_hull(m: np.ndarray, d: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The points (m, d) that decide max_i(d_i - rtol * m_i) for every rtol >= 0, ordered by m.
    `m` and `d` are finite, non-negative float64 arrays of one length; empty gives ()."""
    m = np.asarray(m, np.float64).ravel()
    d = np.asarray(d, np.float64).ravel()
    if m.size == 0:
        return ()
    if m.size > _DIRECT:
        step = m.size // _DIRECT + 1
        seed = _hull(*_frontier(np.append(m[::step], m[np.argmax(d)]), np.append(d[::step], d.max())))
        hm, hd = np.array([p[0] for p in seed]), np.array([p[1] for p in seed])
        # Beyond the hull's last point the chain continues flat; before its first point nothing is known.
        bound = np.interp(m, hm, hd, left=-np.inf, right=hd[-1])
        keep = d > bound
        m, d = np.concatenate([m[keep], hm]), np.concatenate([d[keep], hd])
    return _hull(*_frontier(m, d))


def _frontier(m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points not dominated by one with smaller-or-equal m and larger-or-equal d: m and d increasing."""
    order = np.lexsort((-d, m))  # by m, the largest d first among equal m
    ms, ds = m[order], d[order]
    before = np.maximum.accumulate(np.concatenate([[-np.inf], ds[:-1]]))
    keep = ds > before
    return ms[keep], ds[keep]


def _hull(ms: np.ndarray, ds: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Upper convex chain of frontier points (m and d both strictly increasing)."""
    chain: list[tuple[float, float]] = []
    for p in zip(ms.tolist(), ds.tolist()):
        while len(chain) >= 2:
            (om, od), (am, ad) = chain[-2], chain[-1]
            # a on or below the chord o-p never reaches the maximum alone.
            if (am - om) * (p[1] - od) >= (ad - od) * (p[0] - om):
                chain.pop()
            else:
                break
        chain.append((float(p[0]), float(p[1])))
    return tuple(chain)


def worst_excess(points, rtol: float) -> float:
    """max_i(d_i - rtol * m_i) over the stored points (-inf for none: nothing was compared)."""
    return max((d - rtol * m for m, d in points), default=-np.inf)


def within(points, max_abs: float, rtol: float) -> bool:
    """Whether every element passes d <= max_abs + rtol * m, judged from the stored points."""
    return all(d <= max_abs + rtol * m for m, d in points)
