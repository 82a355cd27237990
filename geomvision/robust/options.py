"""Options of the RANSAC engine: a dataclass that validates itself."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._validation import check_int, check_positive, check_probability

SAMPLERS = ("uniform", "prosac")


@dataclass(frozen=True)
class RansacOptions:
    """How RANSAC samples, scores, stops and refines.

    - ``confidence``: probability of having drawn at least one all-inlier sample when the
      adaptive stopping rule ends the loop: it stops after ``max(min_iterations, N)`` draws with
      ``N = log(1 - confidence) / log(1 - w^s)`` for the best inlier ratio ``w`` so far and sample
      size ``s`` (never more than ``max_iterations``). The default, 1 - 1e-8, asks for about twice
      the draws of the textbook 0.9999: one all-inlier sample is not enough when its noise sends
      LO into a neighbouring basin of the cost (measured on the Strecha pairs; PoseLib triples
      the count for the same reason). ``max_iterations`` None takes the estimator's
      ``default_max_iterations`` (10,000; 100,000 for the 5-point relative pose, whose samples
      are all-inlier with probability w^5: 1 in 13,000 draws at 15 % inliers).
    - ``sampler``: ``"uniform"`` or ``"prosac"`` (PROSAC: samples drawn first from the points of
      highest quality; pass ``quality`` to the estimate function, else the input order is taken
      as best-first). ``prosac_max_draws`` is PROSAC's T_N: after that many draws it samples
      uniformly.
    - ``local_optimization``: LO-RANSAC from each minimal model that beats the best minimal
      model so far, and from each that comes within half of its gain over the all-outlier
      score while fewer than four in five of its inliers are the best model's (another consensus
      set, e.g. the true one among wrong ones on repeated structure, which may share half of its
      inliers with a wrong optimum): a non-minimal refit on its inliers
      (first LO only), then up to
      ``lo_iterations`` rounds of reweighted LM refinement on the points within
      ``lo_threshold_mult`` times the threshold, ``refine_iterations`` LM iterations per round,
      on at most ``lo_max_points`` of those points spread evenly over them (0: all; the final
      refinement always uses all); the model with the lowest MSAC score wins.
    - ``final_refinement_rounds``: reweighted refinement rounds of the final model (0: none),
      each of up to ``final_refine_iterations`` LM iterations; the rounds continue from one
      another until the model stops moving and the lowest-scoring model is returned. The
      weights are recomputed every few LM steps because the reweighting, not LM, is what
      converges slowly: along a flat valley of the cost (short baselines) the inlier set and
      the pose drift together for 20-30 rounds (measured on Strecha pairs, where 10 rounds left
      some runs 0.5-0.8 degrees from the MSAC optimum that PoseLib's per-step reweighting reaches).
    - ``polish_rounds``, ``polish_scale``: the returned model is finally re-estimated on the
      final model's inliers (selected once) by iteratively reweighted refinement with the Cauchy
      loss at ``polish_scale`` times the threshold (0: no polish; the model with the lowest MSAC
      score is returned). The MSAC optimum hinges on the points at the threshold; a smooth loss
      at the noise scale (thresholds are usually 2-3 sigma) weighs every inlier by how well it
      fits. On real keypoints, whose noise has heavy tails, this is the more accurate estimate
      (Strecha pairs: homography AUC@1px against the exact warp +0.2-1.9 points, relative pose
      AUC@5 +0.1, absolute pose AUC@0.1deg +0.3); on purely Gaussian synthetic noise it is
      slightly less efficient than least squares (mean rotation error +7 %). The final
      reweighted rounds stop early once the inlier set is stable when a polish follows.
    - ``score_scale``: the shape of the score every model is judged by. 0 is MSAC: a point costs
      its squared error below the threshold t and t^2 above it. c > 0 gives a point below the
      threshold the Geman-McClure cost e^2 / (e^2 + (c t)^2), rescaled to reach t^2 at the
      threshold: the steeper cost near zero prefers the model that fits its inliers closely
      over one that gathers more points just under the threshold (a division per point; the
      Cauchy cost's logarithm took 6x as long and scored no better). None takes the estimator's
      ``default_score_scale`` (0.5 for the 5-point relative pose, the polish's scale; 0 for the
      others).
    - ``relax_radius``: the relaxation of a model is its polish on the points within
      ``relax_radius`` times the threshold (on at most 100 of them), kept when it scores lower.
      Two optima that share most of their inliers are separate minima of the refinement at the
      threshold but not of the smoother, wider cost. With LO, the best model is relaxed before
      the final refinement, and each LO result on at most 50 points with a looser stop (0: never).
      None takes the estimator's ``default_relax_radius`` (5 for the 5-point relative pose, 0
      for the others).
    - ``min_num_inliers``: fewer inliers than this means failure (``success=False``); None takes
      the estimator's sample size + 1 (a model supported only by its own sample is no model).
    """

    confidence: float = 0.99999999
    min_iterations: int = 100
    max_iterations: int | None = None
    sampler: str = "uniform"
    prosac_max_draws: int = 200_000
    local_optimization: bool = True
    lo_iterations: int = 2
    lo_threshold_mult: float = 1.5
    refine_iterations: int = 5
    lo_max_points: int = 300
    final_refinement_rounds: int = 50
    final_refine_iterations: int = 1
    polish_rounds: int = 10
    polish_scale: float = 0.5
    score_scale: float | None = None
    relax_radius: float | None = None
    min_num_inliers: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "confidence", check_probability(self.confidence, "confidence"))
        check_int(self.min_iterations, "min_iterations", minimum=0)
        if self.max_iterations is not None:
            check_int(self.max_iterations, "max_iterations", minimum=1)
        if self.max_iterations is not None and self.min_iterations > self.max_iterations:
            raise ValueError(
                f"min_iterations ({self.min_iterations}) must not exceed max_iterations ({self.max_iterations})"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        check_int(self.prosac_max_draws, "prosac_max_draws", minimum=1)
        if not isinstance(self.local_optimization, bool):
            raise ValueError(f"local_optimization must be True or False, got {self.local_optimization!r}")
        check_int(self.lo_iterations, "lo_iterations", minimum=0)
        mult = check_positive(self.lo_threshold_mult, "lo_threshold_mult")
        if mult < 1.0:
            raise ValueError(f"lo_threshold_mult must be >= 1, got {self.lo_threshold_mult!r}")
        object.__setattr__(self, "lo_threshold_mult", mult)
        check_int(self.refine_iterations, "refine_iterations", minimum=1)
        check_int(self.lo_max_points, "lo_max_points", minimum=0)
        check_int(self.final_refinement_rounds, "final_refinement_rounds", minimum=0)
        check_int(self.final_refine_iterations, "final_refine_iterations", minimum=1)
        check_int(self.polish_rounds, "polish_rounds", minimum=0)
        scale = check_positive(self.polish_scale, "polish_scale", allow_zero=True)
        object.__setattr__(self, "polish_scale", scale)
        if self.score_scale is not None:
            object.__setattr__(self, "score_scale", check_positive(self.score_scale, "score_scale", allow_zero=True))
        if self.relax_radius is not None:
            object.__setattr__(self, "relax_radius", check_positive(self.relax_radius, "relax_radius", allow_zero=True))
        if self.min_num_inliers is not None:
            check_int(self.min_num_inliers, "min_num_inliers", minimum=1)

    def replace(self, **changes) -> RansacOptions:
        """A copy with some fields changed (unknown names raise ``ValueError``)."""
        return dataclasses.replace(self, **_checked_fields(changes))


def _checked_fields(changes: dict) -> dict:
    names = {f.name for f in dataclasses.fields(RansacOptions)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"unknown RANSAC option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(names))}")
    return changes


_DEFAULT = RansacOptions()  # frozen: one shared instance (its checks cost ~10 us per call)


def resolve_options(options: RansacOptions | None, overrides: dict) -> RansacOptions:
    """``options`` (default ``RansacOptions()``) with keyword ``overrides`` applied."""
    if options is None:
        options = _DEFAULT
    elif not isinstance(options, RansacOptions):
        raise ValueError(f"options must be a RansacOptions, got {type(options).__name__}")
    return options.replace(**overrides) if overrides else options
