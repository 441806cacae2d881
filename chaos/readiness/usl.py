"""The Universal Scalability Law, fitted to measured capacity at 1..n units.

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

sigma is contention (the share of work that queues on something shared), kappa coherency
(the cost of units keeping each other in step); lambda is one unit's capacity. The fit is
scipy's ``curve_fit`` weighted by each point's own uncertainty (half the sweep's step
bracket around the knee), so the parameters' covariance is defined even with as many
points as parameters; a projection carries its one-sigma band by the delta method, and a
projection past the largest fleet measured says so in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chaos.core.errors import ConfigError
from chaos.report import fmt

MAX_UNITS = 1_000_000
COEFFICIENT_FLOOR = 1e-6      # sigma, kappa below this are written 0


def usl(n, lam: float, sigma: float, kappa: float):
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass(frozen=True)
class Fit:
    lam: float
    sigma: float
    kappa: float
    cov: tuple[tuple[float, ...], ...]      # 3x3, lambda sigma kappa
    units: tuple[int, ...]                   # the fleets measured
    capacity: tuple[float, ...]              # what each measured
    capacity_sd: tuple[float, ...]

    @property
    def sd(self) -> tuple[float, float, float]:
        c = np.asarray(self.cov)
        return tuple(float(math.sqrt(max(c[i, i], 0.0))) for i in range(3))

    @property
    def peak_units(self) -> float | None:
        """Where adding units stops adding capacity (None: never, kappa = 0)."""
        if self.kappa <= 0:
            return None
        return math.sqrt(max(1.0 - self.sigma, 0.0) / self.kappa)

    def at(self, n: float) -> tuple[float, float]:
        """Capacity of ``n`` units and its one-sigma uncertainty: at a fleet size measured,
        the measurement itself (the best evidence there is); elsewhere the fit's projection,
        its band by the delta method."""
        if n in self.units:
            i = self.units.index(int(n))
            return self.capacity[i], self.capacity_sd[i]
        return self.project(n)

    def project(self, n: float) -> tuple[float, float]:
        """The fit's projection at ``n`` units and its one-sigma band."""
        p = np.array([self.lam, self.sigma, self.kappa])
        x = float(usl(n, *p))
        eps = np.maximum(np.abs(p) * 1e-6, 1e-9)
        grad = np.array([(float(usl(n, *(p + e))) - x) / e[i]
                         for i, e in enumerate(np.diag(eps))])
        return x, math.sqrt(max(float(grad @ np.asarray(self.cov) @ grad), 0.0))

    def beyond(self, n: float) -> str:
        """Words for a projection past (or within) the data."""
        hi = max(self.units)
        if n <= hi:
            return ""
        return (f"projected from {min(self.units)}-{hi} measured units to {fmt.sig(n)}: "
                f"{fmt.sig(n / hi)} times beyond the data, resting on the fit alone")

    def units_for(self, capacity: float) -> int | None:
        """The fewest units whose projected capacity reaches ``capacity`` (None: no fleet
        does; the curve peaks below it)."""
        peak = self.peak_units
        limit = MAX_UNITS if peak is None else min(MAX_UNITS, int(math.ceil(peak)) + 1)
        if float(usl(limit, self.lam, self.sigma, self.kappa)) < capacity:
            return None
        lo, hi = 1, limit          # X rises monotonically up to the peak
        while lo < hi:
            mid = (lo + hi) // 2
            if float(usl(mid, self.lam, self.sigma, self.kappa)) >= capacity:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def to_dict(self) -> dict:
        lam_sd, sigma_sd, kappa_sd = self.sd
        return {"lambda": self.lam, "lambda_sd": lam_sd, "sigma": self.sigma, "sigma_sd": sigma_sd,
                "kappa": self.kappa, "kappa_sd": kappa_sd, "peak_units": self.peak_units,
                "points": [{"units": n, "capacity": c, "capacity_sd": s}
                           for n, c, s in zip(self.units, self.capacity, self.capacity_sd)]}

    def describe(self, unit: str) -> str:
        lam_sd, sigma_sd, kappa_sd = self.sd
        peak = self.peak_units
        return (f"lambda {fmt.band(self.lam, lam_sd, unit)} per unit, sigma "
                f"{fmt.band(coefficient(self.sigma), coefficient(sigma_sd))}, kappa "
                f"{fmt.band(coefficient(self.kappa), coefficient(kappa_sd))}; "
                + (f"peak at {fmt.sig(peak)} units" if peak is not None else "no peak (kappa 0)"))


def coefficient(v: float) -> float:
    """sigma or kappa as written: under COEFFICIENT_FLOOR reads 0 (a fit's 4.26e-14 is 0)."""
    return 0.0 if abs(v) < COEFFICIENT_FLOOR else v


def fit(units: Sequence[int], capacity: Sequence[float], capacity_sd: Sequence[float]) -> Fit:
    """Fit lambda, sigma, kappa (all >= 0) to capacities measured at ``units``."""
    from scipy.optimize import curve_fit

    n = np.asarray(units, dtype=float)
    x = np.asarray(capacity, dtype=float)
    if len(n) < 2 or len(set(units)) < 2:
        raise ConfigError(f"a USL fit needs capacity at 2 or more distinct fleet sizes, got {list(units)}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ConfigError(f"a USL fit needs positive capacities, got {list(capacity)}")
    sd = np.maximum(np.asarray(capacity_sd, dtype=float), 0.02 * x)   # no point is exact
    lam0 = float(x[np.argmin(n)] / n.min())
    p, cov = curve_fit(usl, n, x, p0=[lam0, 0.05, 0.001], sigma=sd, absolute_sigma=True,
                       bounds=([1e-9, 0.0, 0.0], [np.inf, 1.0, 1.0]), method="trf", maxfev=20_000)
    cov = np.where(np.isfinite(cov), cov, 0.0)
    return Fit(float(p[0]), float(p[1]), float(p[2]), tuple(tuple(float(v) for v in r) for r in cov),
               tuple(int(u) for u in units), tuple(float(v) for v in x), tuple(float(v) for v in sd))


def linear(units: int, capacity: float, capacity_sd: float) -> Fit:
    """One measured fleet size: a projection that assumes linear scaling (sigma = kappa = 0,
    said in words by ``beyond``)."""
    lam = capacity / units
    lam_sd = max(capacity_sd, 0.02 * capacity) / units
    cov = ((lam_sd ** 2, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    return Fit(lam, 0.0, 0.0, cov, (units,), (capacity,), (capacity_sd,))
