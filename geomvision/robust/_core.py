"""The numba RANSAC loop shared by every estimator (see ``engine.py`` for the design).

``ransac_core`` is generic over an estimator given as numba kernels passed as first-class
function arguments (all take the estimator's ``data`` tuple first):

    fit_minimal(data, sample, models) -> k        fit a minimal sample (int64[s]); write k models
                                                  (rows of models (max_models, model_dim))
    fit_nonminimal(data, idx, weights, models) -> k   least-squares fit to many points (LO step)
    refine(data, model, idx, weights, max_iters) -> model   weighted local refinement (LM / IRLS)
    sq_errors(data, model, start, stop, out)      squared errors of points start..stop-1 into
                                                  out[start:stop], in the units of the squared
                                                  threshold (ranges let the engine stop scoring a
                                                  model early once it cannot beat the best)
    degenerate_sample(data, sample) -> bool       reject a sample before fitting (collinear ...)
    repair(data, sample, model, errs, sq_threshold, models) -> k
                                                  estimator-specific degeneracy handling of a new
                                                  best minimal model (DEGENSAC for F); candidates
                                                  written to models are scored like any other

Caching: a numba function whose arguments are dispatchers is recompiled in every process (its
cache key holds the dispatcher type), and a cached function that passes a dispatcher on as a
run-time argument embeds the dispatcher's address, which numba refuses to cache. So the loop and
its LO step are ``inline="always"`` (inlined at numba-IR level, where the kernels become
compile-time constants) and each estimator module wraps the loop in a three-line
``@njit(cache=True)`` function that names its kernels as globals: the loop is written once and
compiled and cached once per estimator.

Chunks: a run can take seconds (8192 matches of which none fit, 10,000 draws of a fundamental
matrix: 1.8 s), and nothing can interrupt a numba kernel. With ``params_i[P_CHUNK_ITERS] = k``
the kernel returns after k draws with the loop's state saved in ``params_i`` / ``params_f``
(``S_*``) and ``params_i[S_DONE] = 0``; calling it again with the same arrays continues exactly
where it stopped, so the result does not depend on the chunk size. The driver (``engine.ransac``)
checks for Ctrl-C between chunks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..solvers._views import borrowed, keep_alive

# integer parameters (params_i)
P_N = 0  # number of points
P_SAMPLE_SIZE = 1
P_MAX_MODELS = 2
P_MODEL_DIM = 3
P_MIN_ITER = 4
P_MAX_ITER = 5
P_PROSAC = 6
P_LO = 7  # local optimisation from each new best minimal model
P_LO_ITERS = 8  # reweighting rounds per LO
P_REFINE_ITERS = 9  # LM iterations per refine call
P_FINAL_ITERS = 10  # reweighting rounds of the final refinement (0: none)
P_PROSAC_MAX = 11  # PROSAC T_N: draws after which sampling is uniform
P_FINAL_REFINE_ITERS = 12  # LM iterations per round of the final refinement
P_LO_MAX_POINTS = 13  # LO refines on at most this many of the selected points (0: all)
P_POLISH_ROUNDS = 14  # Cauchy reweighting rounds of the final polish (0: none)
P_CHUNK_ITERS = 15  # draws per call (0: all in one call); see "Chunks" above
# the loop's state between chunks (written by the kernel)
S_STARTED = 16  # 0 before the first call
S_DONE = 17  # 1 once the result is final
S_IT = 18
S_REQUIRED = 19
S_BEST_INL = 20
S_FOUND = 21
S_LO_RUNS = 22
S_LO_IMPROVED = 23
S_RNG = 24  # the splitmix64 state, its uint64 bits
NUM_PARAMS_I = 25

# float parameters (params_f)
P_SQ_THRESHOLD = 0
P_CONFIDENCE = 1
P_LO_THRESHOLD_MULT = 2  # LO selects points with error < mult * threshold
P_POLISH_SCALE = 3  # Cauchy scale of the polish as a fraction of the threshold
S_BEST_SCORE = 4
S_BEST_MIN_SCORE = 5
S_PROSAC = 6  # the 4 entries of the PROSAC state
S_DELTA = 10  # inlier rate of wrong minimal models (the pre-test's; 0 until measured)
S_DELTA_SEEN = 11  # the rates measured on the first draws (PRETEST_MIN_SCORED entries)
P_SCORE_SCALE = 36  # Geman-McClure scale of the score as a fraction of the threshold (0: MSAC)
P_RELAX_MULT = 37  # radius of the relaxation as a multiple of the threshold (0: none)
S_BEST = 38  # the best model (model_dim entries)
NUM_PARAMS_F = 38  # params_f holds NUM_PARAMS_F + model_dim entries

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True)
def _mix64(z):
    """splitmix64's output mix of the uint64 ``z``."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def next_uniform(state):
    """Uniform float in [0, 1) from a splitmix64 generator whose state is ``state[0]`` (uint64)."""
    state[0] += _GOLDEN
    return float(_mix64(state[0]) >> _S11) * _INV53


@njit(cache=True)
def random_index(state, n):
    """Uniform integer in [0, n)."""
    k = int(next_uniform(state) * n)
    return k if k < n else n - 1


@njit(cache=True)
def sample_uniform(state, n, out, start):
    """Fill ``out[start:]`` with distinct indices in [0, n) not already in ``out[:start]``."""
    s = out.shape[0]
    for j in range(start, s):
        while True:
            k = random_index(state, n)
            dup = False
            for q in range(j):
                if out[q] == k:
                    dup = True
                    break
            if not dup:
                out[j] = k
                break


@njit(cache=True)
def required_iterations(num_inliers, n, sample_size, confidence):
    """Draws needed to pick one all-inlier sample with probability ``confidence``:
    ``ceil(log(1 - confidence) / log(1 - w^s))`` with ``w = num_inliers / n``; a huge number
    when ``w^s`` underflows and 0 when every point is an inlier."""
    if num_inliers >= n:
        return 0
    w = num_inliers / n
    p = w**sample_size
    if p <= 1e-300:
        return 2**62
    denom = math.log1p(-p)
    if denom >= 0.0:
        return 2**62
    k = math.ceil(math.log(1.0 - confidence) / denom)
    return int(min(k, 2.0**62))


@njit(cache=True)
def prosac_init(n, sample_size, t_max):
    """PROSAC state (Chum & Matas 2005): [n_used, T_n, T'_n, t]."""
    st = np.empty(4)
    tn = float(t_max)
    for i in range(sample_size):
        tn *= (sample_size - i) / (n - i)
    st[0] = sample_size
    st[1] = tn
    st[2] = 1.0
    st[3] = 0.0
    return st


@njit(cache=True)
def sample_prosac(state, st, n, sample_size, out):
    """One PROSAC draw over points ordered best-first: the sample grows from the top ``n_used``
    points (always including the newest one) until the schedule reaches all points."""
    st[3] += 1.0
    t = st[3]
    m = int(st[0])
    if t > st[2] and m < n:
        tn_next = st[1] * (m + 1) / (m + 1 - sample_size)
        st[2] += math.ceil(tn_next - st[1])
        st[1] = tn_next
        m += 1
        st[0] = m
    if st[2] < t or m >= n:
        # past the schedule: uniform among the top m (all points once m == n)
        sample_uniform(state, m, out, 0)
    else:
        out[0] = m - 1
        sample_uniform(state, m - 1, out, 1)


@njit(inline="always")
def point_cost(e, sq_threshold, scale):
    """The score of a point with squared error ``e``: ``t^2`` at or above the threshold (or NaN),
    below it ``e`` (MSAC) when ``scale`` is 0, else the Geman-McClure cost ``e / (e + c^2)`` at
    ``c = scale * t``, rescaled to reach ``t^2`` at the threshold."""
    if not e < sq_threshold:
        return sq_threshold
    if scale <= 0.0:
        return e
    c2 = scale * scale * sq_threshold
    return (sq_threshold + c2) * e / (e + c2)


@njit(cache=True)
def msac_score(errs, sq_threshold, scale=0.0, shared=None):
    """(score, number of points with e^2 < t^2): the sum over the points of
    ``point_cost(e^2)`` below the threshold and t^2 above it (with ``scale`` 0 the MSAC score,
    sum of min(e^2, t^2)). With ``shared`` (:func:`shared_scratch`), the matches of a group that
    share a keypoint count once, with the lowest cost among them (the count is of all points)."""
    score = 0.0
    k = 0
    if shared is not None:
        shared[1][:] = sq_threshold
    for i in range(errs.shape[0]):
        c = point_cost(errs[i], sq_threshold, scale)
        if shared is None or shared[0][i] < 0:
            score += c
        elif c < shared[1][shared[0][i]]:
            shared[1][shared[0][i]] = c
        k += errs[i] < sq_threshold
    if shared is not None:
        score += shared[1].sum()
    return score, k


@njit(cache=True)
def shared_scratch(groups):
    """(groups, lowest cost per group, count per group) for ``groups`` (n,): each point's group of
    matches sharing a keypoint (0..G-1), or -1 for a match that shares none."""
    g = groups.max() + 1 if groups.shape[0] > 0 else 0
    return groups, np.empty(max(g, 0)), np.zeros(max(g, 0), dtype=np.int64)


@njit(inline="always")
def share_weights(idx, w, shared):
    """Divide each ``w[j]`` by the number of the points ``idx`` in its shared-keypoint group:
    matches through one keypoint share one point's weight in a refinement."""
    groups, count = shared[0], shared[2]
    for j in range(idx.shape[0]):
        if groups[idx[j]] >= 0:
            count[groups[idx[j]]] += 1
    for j in range(idx.shape[0]):
        if groups[idx[j]] >= 0:
            w[j] /= count[groups[idx[j]]]
    for j in range(idx.shape[0]):
        if groups[idx[j]] >= 0:
            count[groups[idx[j]]] = 0


@njit(cache=True)
def inlier_signature(errs, sq_threshold):
    """A hash of the set of points with e^2 < t^2 (equal sets give equal signatures)."""
    h = np.uint64(0)
    for i in range(errs.shape[0]):
        if errs[i] < sq_threshold:
            h ^= np.uint64(i + 1) * _GOLDEN
            h = (h << np.uint64(7)) | (h >> np.uint64(57))
    return h


SCORE_BLOCK = 256
# pre-test of minimal models at low inlier ratios (Matas and Chum's sequential probability ratio
# test, R-RANSAC with SPRT): a model is read block by block in a random order and dropped once
# the likelihood ratio of "wrong model" to "half the best minimal model's inliers" exceeds
# e^PRETEST_LOG_A = 100; a model at that bar is dropped with probability <= 1 %, a better one
# less often
PRETEST_LOG_A = math.log(100.0)
PRETEST_BLOCK = 16  # points read per step (one kernel call), blocks in a random order
# the wrong models' inlier rate: the median over the first draws of each draw's lowest-rate model
# (a wrong root of the solver or the model of a sample with an outlier)
PRETEST_MIN_SCORED = 25
LO_STEP_TOL = 1e-9  # reweighting rounds stop once no model entry moves more than this,
LO_SCORE_RTOL = 1e-6  # or the MSAC score changes by less than this fraction
POLISH_STEP_TOL = 1e-7  # the polish stops once no model entry moves more than this (relative)
STABLE_ROUNDS = 3  # (final rounds before a polish) or the inlier set stays the same this many rounds
ABORT_ROUNDS = 4  # an LO from another consensus set stops after this many rounds unless it is
# below the best minimal model's score by then (most such starts are part-contaminated samples;
# after 2 rounds some true starts of the synthetic repeated facades were still above it)
SAME_BASIN_SHARE = 0.8  # a minimal model is in the best model's basin when this share of its
# inliers are the best's: at low inlier ratios a true minimal model may share half of its inliers
# with a wrong optimum 11 degrees away (a Strecha pair nine views apart), and LO must start from it
OTHER_BASIN_ROUNDS = 5  # and may run this many times the usual rounds


@njit(inline="always")
def score_model(sq_errors, data, model, errs, sq_threshold, bound, scale, shared):
    """Score of ``model`` (:func:`msac_score` with ``scale`` and ``shared``) and its inlier count, computing
    errors block by block and giving up (returning (inf, 0)) as soon as the partial score
    exceeds ``bound``; on a full pass ``errs`` holds every squared error."""
    n = errs.shape[0]
    groups, low = shared[0], shared[1]
    low[:] = sq_threshold
    score = 0.0
    k = 0
    for start in range(0, n, SCORE_BLOCK):
        stop = min(n, start + SCORE_BLOCK)
        sq_errors(data, model, start, stop, errs)
        for i in range(start, stop):
            c = point_cost(errs[i], sq_threshold, scale)
            if groups[i] < 0:
                score += c
            elif c < low[groups[i]]:
                low[groups[i]] = c
            k += errs[i] < sq_threshold
        if score > bound:  # the groups' costs are not in yet: a lower bound
            return np.inf, 0
    score += low.sum()
    if score > bound:
        return np.inf, 0
    return score, k


@njit(cache=True)
def shared_inliers(errs_a, errs_b, sq_threshold):
    """Number of points that are inliers (e^2 < t^2) of both models."""
    k = 0
    for i in range(errs_a.shape[0]):
        if errs_a[i] < sq_threshold and errs_b[i] < sq_threshold:
            k += 1
    return k


@njit(cache=True)
def thin_evenly(idx, m):
    """``m`` entries of ``idx`` spread evenly over it (deterministic subsampling)."""
    out = np.empty(m, dtype=np.int64)
    step = idx.shape[0] / m
    for j in range(m):
        out[j] = idx[int(j * step)]
    return out


@njit(cache=True)
def select_below(errs, sq_threshold):
    """Indices of the points with e^2 < threshold."""
    n = errs.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        if errs[i] < sq_threshold:
            idx[k] = i
            k += 1
    return idx[:k]


@njit(inline="always")
def local_optimization(refine, fit_nonminimal, sq_errors, data, model, score, num_inl, errs, models, shared,
                       params_i, params_f, rounds, max_iters, try_nonminimal, max_points, stop_on_stable_set,
                       abort_score, target_score):
    """LO-RANSAC step on ``model``: a non-minimal refit on its inliers (kept if its MSAC score is
    lower), then ``rounds`` of iteratively reweighted refinement (LM on the points within
    ``lo_mult * threshold`` with weights ``(1 - e^2 / t_lo^2)^2``); the model with the lowest
    MSAC score seen is kept. With ``stop_on_stable_set`` the rounds also stop once the inlier
    set (error below the threshold) is the same as in the round before. The rounds give up
    after ``ABORT_ROUNDS`` when the score is still above ``abort_score`` (a weak start), and
    stop as soon as it is below ``target_score``.
    Returns (model, score, num_inliers, improvements)."""
    sq_thr = params_f[P_SQ_THRESHOLD]
    scale = params_f[P_SCORE_SCALE]
    sq_lo = sq_thr * params_f[P_LO_THRESHOLD_MULT] ** 2
    best = model.copy()
    improved = 0
    sq_errors(data, best, 0, errs.shape[0], errs)
    if try_nonminimal:
        idx = select_below(errs, sq_thr)
        if idx.shape[0] > params_i[P_SAMPLE_SIZE]:
            w = np.ones(idx.shape[0])
            share_weights(idx, w, shared)
            k = fit_nonminimal(data, idx, w, models)
            for j in range(k):
                sc, ni = score_model(sq_errors, data, models[j], errs, sq_thr, score, scale, shared)
                if sc < score:
                    score, num_inl = sc, ni
                    best[:] = models[j]
                    improved += 1
            sq_errors(data, best, 0, errs.shape[0], errs)
    # IRLS: each round refits from the previous round's model (not only from the best so far, so
    # that the iteration can pass through a model whose MSAC score is momentarily worse); the
    # best-scoring model seen is returned
    cur = best.copy()
    prev = score
    prev_sig = inlier_signature(errs, sq_thr) if stop_on_stable_set else np.uint64(0)
    stable = 0
    for r in range(rounds):
        idx = select_below(errs, sq_lo)
        if idx.shape[0] <= params_i[P_SAMPLE_SIZE]:
            break
        if max_points > 0 and idx.shape[0] > max_points:
            idx = thin_evenly(idx, max_points)
        w = np.empty(idx.shape[0])
        for j in range(idx.shape[0]):
            q = 1.0 - errs[idx[j]] / sq_lo
            w[j] = q * q
        share_weights(idx, w, shared)
        cand = refine(data, cur, idx, w, max_iters)
        step = 0.0
        for j in range(cand.shape[0]):
            step = max(step, abs(cand[j] - cur[j]))
        cur[:] = cand
        sq_errors(data, cur, 0, errs.shape[0], errs)
        sc, ni = msac_score(errs, sq_thr, scale, shared)
        if sc < score:
            score, num_inl = sc, ni
            best[:] = cur
            improved += 1
        if step < LO_STEP_TOL or abs(sc - prev) <= LO_SCORE_RTOL * sc or score < target_score:
            break
        if r + 1 >= ABORT_ROUNDS and score >= abort_score:
            break
        if stop_on_stable_set:
            sig = inlier_signature(errs, sq_thr)
            stable = stable + 1 if sig == prev_sig else 0
            if stable >= STABLE_ROUNDS:
                break
            prev_sig = sig
        prev = sc
    sq_errors(data, best, 0, errs.shape[0], errs)
    return best, score, num_inl, improved


@njit(inline="always")
def polish(refine, sq_errors, data, model, errs, shared, params_i, params_f, sq_select, max_points, step_tol):
    """M-estimate of ``model`` on the points with squared error below ``sq_select`` (selected
    once): iteratively reweighted refinement with Cauchy weights 1 / (1 + e^2 / c^2), c = the
    polish scale times the threshold, until the model stops moving. Returns the polished model.
    On the final model's inliers (``sq_select`` = t^2) this is the final polish; on a wider
    selection it is the relaxation that lets the final refinement leave a local optimum."""
    sq_thr = params_f[P_SQ_THRESHOLD]
    c2 = sq_thr * params_f[P_POLISH_SCALE] ** 2
    cur = model.copy()
    sq_errors(data, cur, 0, errs.shape[0], errs)
    idx = select_below(errs, sq_select)
    if idx.shape[0] <= params_i[P_SAMPLE_SIZE]:
        return cur
    if max_points > 0 and idx.shape[0] > max_points:
        idx = thin_evenly(idx, max_points)
    w = np.empty(idx.shape[0])
    for _ in range(params_i[P_POLISH_ROUNDS]):
        for j in range(idx.shape[0]):
            w[j] = 1.0 / (1.0 + errs[idx[j]] / c2)
        share_weights(idx, w, shared)
        cand = refine(data, cur, idx, w, params_i[P_FINAL_REFINE_ITERS])
        step = 0.0
        size = 1.0
        for j in range(cand.shape[0]):
            step = max(step, abs(cand[j] - cur[j]))
            size = max(size, abs(cur[j]))
        cur[:] = cand
        if step <= step_tol * size:
            break
        sq_errors(data, cur, 0, errs.shape[0], errs)
    return cur


RELAX_MAX_POINTS = 100  # the relaxation finds the basin on at most this many points spread evenly
RELAX_STEP_TOL = 1e-4  # and stops once no model entry moves more than this (relative)
LO_RELAX_MAX_POINTS = 50  # after each LO run it is cheaper: fewer points, a looser stop (on the easy
LO_RELAX_STEP_TOL = 1e-3  # Strecha sets most of ~7 LO runs per pair are new bests)


@njit(inline="always")
def relax(refine, sq_errors, data, model, score, num_inl, errs, shared, params_i, params_f, max_points, step_tol):
    """The relaxation of ``model`` (score ``score``): its polish on at most ``max_points`` of the
    points within ``P_RELAX_MULT`` thresholds, to a relative step ``step_tol``, taken when it
    scores lower. Two optima that share most of their inliers (0.4 degrees apart on a Strecha
    pair) are separate minima of the refinement at the threshold but not of the smooth Cauchy
    cost over the wider selection. Returns (model, score, num_inliers)."""
    sq_thr = params_f[P_SQ_THRESHOLD]
    m = polish(refine, sq_errors, data, model, errs, shared, params_i, params_f, params_f[P_RELAX_MULT] ** 2 * sq_thr,
               max_points, step_tol)
    sq_errors(data, m, 0, errs.shape[0], errs)
    sc, ni = msac_score(errs, sq_thr, params_f[P_SCORE_SCALE], shared)
    if sc < score:
        return m, sc, ni
    return model, score, num_inl


@njit(cache=True)
def probe_order(n, seed):
    """A fixed pseudo-random permutation of range(n) (Fisher-Yates on its own splitmix64 stream
    from ``seed``): the order in which the pre-test reads the blocks of points; chunked runs
    rebuild the same one."""
    perm = np.arange(n)
    st = np.empty(1, dtype=np.uint64)
    st[0] = np.uint64(seed) ^ np.uint64(0xD1B54A32D192ED03)
    for i in range(n - 1, 0, -1):
        j = random_index(st, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


@njit(cache=True)
def probe_offset(it, n):
    """Where draw ``it``'s pre-test starts in the probe order: a hash of ``it`` (the sampling
    stream is left as it was)."""
    return int(_mix64(np.uint64(it) * _GOLDEN) % np.uint64(n))


@njit(cache=True)
def sprt_steps(total, sq_thr, bar_score, delta):
    """The log-likelihood steps of the pre-test (Matas and Chum's SPRT): (step per inlier, step
    per outlier), for the hypothesis "a model with half the inliers ``bar_score`` implies" (rate
    eps; ``total``: the all-outlier score over t^2) against "a wrong model" (rate ``delta``,
    measured on the models scored so far); (0, 0)
    when the two cannot be told apart cheaply (no bar yet, or delta above eps / 2)."""
    if not bar_score < np.inf:
        return 0.0, 0.0
    eps = 0.5 * (total - bar_score / sq_thr) / total
    if not (eps > 0.0 and delta > 0.0 and delta < 0.5 * eps and eps < 1.0):
        return 0.0, 0.0
    return math.log(delta / eps), math.log((1.0 - delta) / (1.0 - eps))


@njit(inline="always")
def wrong_rate(sq_errors, data, models, k, errs, sq_thr, s):
    """The lowest inlier rate (beyond their own s sample points) of the first k models."""
    n = errs.shape[0]
    low = 1.0
    for j in range(k):
        sq_errors(data, models[j], 0, n, errs)
        cnt = msac_score(errs, sq_thr)[1]
        low = min(low, max(cnt - s, 0) / max(n - s, 1))
    return low


@njit(inline="always")
def passes_pretest(sq_errors, data, model, errs, sq_thr, probe, off, step_in, step_out, in_sample):
    """Whether ``model`` survives Wald's sequential test on blocks of PRETEST_BLOCK consecutive
    points, the blocks in the order ``probe`` from ``off`` (the model's own sample points do not
    count): rejected once the log-likelihood ratio of "wrong model" reaches PRETEST_LOG_A,
    accepted once it reaches -PRETEST_LOG_A or the points run out."""
    n = errs.shape[0]
    nb = probe.shape[0]
    log_l = 0.0
    for j in range(nb):
        b = off + j
        if b >= nb:
            b -= nb
        start = probe[b] * PRETEST_BLOCK
        stop = min(n, start + PRETEST_BLOCK)
        sq_errors(data, model, start, stop, errs)
        for i in range(start, stop):
            if not in_sample[i]:
                log_l += step_in if errs[i] < sq_thr else step_out
        if log_l > PRETEST_LOG_A:
            return False
        if log_l < -PRETEST_LOG_A:  # as strong evidence the other way: score it
            return True
    return True


@njit(inline="always")
def keep_pretested(sq_errors, data, models, k, errs, sq_thr, probe, off, step_in, step_out, in_sample):
    """Move the first k ``models`` that pass the pre-test to the front; returns their count."""
    kept = 0
    for j in range(k):
        if passes_pretest(sq_errors, data, models[j], errs, sq_thr, probe, off, step_in, step_out, in_sample):
            if kept != j:
                models[kept] = models[j]
            kept += 1
    return kept


@njit(inline="always")
def pick_best(sq_errors, data, models, k, errs, sq_thr, bound, num_inl, out, scale, shared):
    """Copy into ``out`` the lowest-scoring of the first k ``models`` that scores below
    ``bound``. Returns (its score or ``bound``, its inliers or ``num_inl``, whether one did)."""
    picked = False
    for j in range(k):
        sc, ni = score_model(sq_errors, data, models[j], errs, sq_thr, bound, scale, shared)
        if sc < bound:
            bound, num_inl = sc, ni
            out[:] = models[j]
            picked = True
    return bound, num_inl, picked


@njit(inline="always")
def ransac_core(fit_minimal, fit_nonminimal, refine, sq_errors, degenerate_sample, repair, data, order, groups,
                params_i, params_f, seed):
    """Run RANSAC. ``order`` maps sample positions to point indices (best-first for PROSAC);
    ``groups`` (n,): each point's group of matches that share a keypoint (-1: none), which count
    once in the score and share one point's weight in the refinements.

    Returns (model (model_dim,), score, num_inliers, inlier mask (n,), iterations, lo_runs,
    lo_improvements, found)."""
    # the caller keeps the inputs alive for the call: borrowed, passing them to the kernels of
    # every draw costs no atomic reference-count updates (nothing returned points into them)
    data, order, groups, params_i, params_f = borrowed((data, order, groups, params_i, params_f))
    n = params_i[P_N]
    s = params_i[P_SAMPLE_SIZE]
    dim = params_i[P_MODEL_DIM]
    min_iter = params_i[P_MIN_ITER]
    max_iter = params_i[P_MAX_ITER]
    use_prosac = params_i[P_PROSAC] != 0
    use_lo = params_i[P_LO] != 0
    sq_thr = params_f[P_SQ_THRESHOLD]
    conf = params_f[P_CONFIDENCE]
    score_scale = params_f[P_SCORE_SCALE]
    shared = shared_scratch(groups)
    total = float(n - np.count_nonzero(groups >= 0) + shared[1].shape[0])  # all-outlier score / t^2
    relaxing = use_lo and params_f[P_RELAX_MULT] > 0.0 and params_f[P_POLISH_SCALE] > 0.0 and params_i[P_POLISH_ROUNDS] > 0

    state = np.empty(1, dtype=np.uint64)
    models = np.zeros((params_i[P_MAX_MODELS], dim))
    lo_models = np.zeros((params_i[P_MAX_MODELS], dim))
    errs = np.empty(n)
    best_errs = np.empty(n)  # errors of ``best`` (recomputed when stale)
    best_stale = True
    pos = np.empty(s, dtype=np.int64)
    sample = np.empty(s, dtype=np.int64)
    best = np.zeros(dim)
    cand = np.zeros(dim)
    cand_inl = 0
    if params_i[S_STARTED] == 0:
        state[0] = np.uint64(seed)
        best_score = np.inf
        best_min_score = np.inf
        best_inl = 0
        found = False
        lo_runs = 0
        lo_improved = 0
        required = max_iter
        pst = prosac_init(n, s, params_i[P_PROSAC_MAX])
        it = 0
        delta = 0.0
        params_f[S_DELTA_SEEN : S_DELTA_SEEN + PRETEST_MIN_SCORED] = 1.0  # draws without a model: "no test"
    else:  # continue a chunked run where the last chunk stopped
        state[0] = np.uint64(params_i[S_RNG])
        best_score = params_f[S_BEST_SCORE]
        best_min_score = params_f[S_BEST_MIN_SCORE]
        best_inl = params_i[S_BEST_INL]
        found = params_i[S_FOUND] != 0
        lo_runs = params_i[S_LO_RUNS]
        lo_improved = params_i[S_LO_IMPROVED]
        required = params_i[S_REQUIRED]
        pst = params_f[S_PROSAC : S_PROSAC + 4].copy()
        it = params_i[S_IT]
        delta = params_f[S_DELTA]
        best[:] = params_f[S_BEST : S_BEST + dim]
    params_i[S_STARTED] = 1
    probe = probe_order((n + PRETEST_BLOCK - 1) // PRETEST_BLOCK, seed)
    in_sample = np.zeros(n, dtype=np.bool_)
    chunk = params_i[P_CHUNK_ITERS]
    chunk_end = it + chunk if chunk > 0 else max_iter
    # the draws' scratch, borrowed: no atomic reference-count updates on the kernel calls of
    # every draw; ``owners`` keeps it alive to the end (``keep_alive`` at each return)
    owners = (state, models, lo_models, errs, best_errs, pos, sample, cand, pst, probe, in_sample, shared)
    state, models, lo_models, errs, best_errs, pos, sample, cand, pst, probe, in_sample, shared = borrowed(owners)

    # one loop for the draws and, as its last pass, the final refinement, so that the (inlined)
    # LO code appears once in the compiled function
    final_done = params_i[P_FINAL_ITERS] == 0
    while True:
        if it < max_iter and (it < min_iter or it < required):
            if it >= chunk_end:  # save the state; the next call continues from here
                params_i[S_RNG] = np.int64(state[0])
                params_f[S_BEST_SCORE] = best_score
                params_f[S_BEST_MIN_SCORE] = best_min_score
                params_i[S_BEST_INL] = best_inl
                params_i[S_FOUND] = 1 if found else 0
                params_i[S_LO_RUNS] = lo_runs
                params_i[S_LO_IMPROVED] = lo_improved
                params_i[S_REQUIRED] = required
                params_f[S_PROSAC : S_PROSAC + 4] = pst
                params_i[S_IT] = it
                params_f[S_BEST : S_BEST + dim] = best
                params_f[S_DELTA] = delta
                params_i[S_DONE] = 0
                keep_alive(owners)
                return best, best_score, best_inl, np.zeros(n, dtype=np.bool_), it, lo_runs, lo_improved, found
            it += 1
            if use_prosac:
                sample_prosac(state, pst, n, s, pos)
            else:
                sample_uniform(state, n, pos, 0)
            for j in range(s):
                sample[j] = order[pos[j]]
            if degenerate_sample(data, sample):
                continue
            k = fit_minimal(data, sample, models)
            # at low inlier ratios most minimal models are wrong: a sequential test on a few
            # points spares them the full score, once the wrong models' inlier rate is measured
            # on the first draws and where it is below half the best minimal model's
            if delta == 0.0 and it <= PRETEST_MIN_SCORED and k > 0:
                params_f[S_DELTA_SEEN + it - 1] = wrong_rate(sq_errors, data, models, k, errs, sq_thr, s)
            if delta == 0.0 and it == PRETEST_MIN_SCORED:
                delta = max(np.median(params_f[S_DELTA_SEEN : S_DELTA_SEEN + PRETEST_MIN_SCORED]), 0.5 / n)
            step_in, step_out = sprt_steps(total, sq_thr, best_min_score if use_lo else best_score, delta)
            if step_out != 0.0 and k > 0:
                for j in range(s):
                    in_sample[sample[j]] = True
                k = keep_pretested(sq_errors, data, models, k, errs, sq_thr, probe, probe_offset(it, len(probe)),
                                   step_in, step_out, in_sample)
                for j in range(s):
                    in_sample[sample[j]] = False
            # a candidate must beat the best model straight from a sample (with LO: the best
            # before LO, so that LO also runs from other promising basins), else the best overall;
            # with LO, one whose gain over the all-outlier score n t^2, not counting its own
            # sample's s points, is at least half the best minimal model's may still start an LO
            # in another basin (below)
            if use_lo:
                bound = best_min_score
                if best_min_score < np.inf:
                    bound = max(best_min_score, 0.5 * (total * sq_thr + best_min_score - s * sq_thr))
            else:
                bound = best_score
            bound, cand_inl, picked = pick_best(sq_errors, data, models, k, errs, sq_thr, bound, cand_inl, cand,
                                                score_scale, shared)
            if not picked:
                continue
            # estimator-specific degeneracy handling (e.g. DEGENSAC) of the new minimal model
            sq_errors(data, cand, 0, n, errs)
            kr = repair(data, sample, cand, errs, sq_thr, lo_models)
            bound, cand_inl, _ = pick_best(sq_errors, data, lo_models, kr, errs, sq_thr, bound, cand_inl, cand,
                                           score_scale, shared)
            other_basin = use_lo and bound >= best_min_score
            if other_basin:
                # Not a new best minimal model, but a promising one: LO from it unless nearly all
                # of its inliers are the best model's (SAME_BASIN_SHARE). At low inlier
                # ratios the true set and wrong ones (repeated structure) are sampled about
                # equally rarely, and one lucky minimal model of a wrong set would otherwise
                # keep every noisier all-inlier sample of the true set from reaching LO.
                if best_stale:
                    sq_errors(data, best, 0, n, best_errs)
                    best_stale = False
                if cand_inl <= s or shared_inliers(errs, best_errs, sq_thr) >= SAME_BASIN_SHARE * cand_inl:
                    continue
            else:
                best_min_score = bound
            if bound < best_score:
                best_score, best_inl = bound, cand_inl
                best[:] = cand
                best_stale = True
                found = True
            if not (use_lo and cand_inl > s):
                required = required_iterations(best_inl, n, s, conf)
                continue
            rounds, iters, nonmin = params_i[P_LO_ITERS], params_i[P_REFINE_ITERS], lo_runs == 0
            max_points = params_i[P_LO_MAX_POINTS]
            stable_stop = False
            abort_score, target_score = np.inf, -np.inf
            if other_basin:
                # from a noisy all-inlier sample the reweighting needs more rounds to reach the
                # basin's optimum (2 rounds got 15-25 % of true samples of hard pairs there, 10
                # about half): up to OTHER_BASIN_ROUNDS times the rounds, stopping as soon as it
                # beats the best model (the final refinement converges the winner)
                rounds *= OTHER_BASIN_ROUNDS
                abort_score, target_score = best_min_score, best_score
        elif not final_done and found and best_inl > s:
            final_done = True
            cand[:] = best
            bound, cand_inl = best_score, best_inl
            if relaxing:  # the final refinement starts from the relaxed best model when it scores lower
                m, bound, cand_inl = relax(refine, sq_errors, data, best, bound, cand_inl, errs, shared, params_i,
                                           params_f, RELAX_MAX_POINTS, RELAX_STEP_TOL)
                cand[:] = m
            rounds, iters, nonmin = params_i[P_FINAL_ITERS], params_i[P_FINAL_REFINE_ITERS], not use_lo
            max_points = 0
            # the polish re-estimates on the inliers: the rounds only need to settle that set
            stable_stop = params_i[P_POLISH_ROUNDS] > 0
            abort_score, target_score = np.inf, -np.inf
        else:
            break
        m, sc, ni, imp = local_optimization(refine, fit_nonminimal, sq_errors, data, cand, bound, cand_inl, errs,
                                            lo_models, shared, params_i, params_f, rounds, iters, nonmin, max_points,
                                            stable_stop, abort_score, target_score)
        lo_runs += 1
        lo_improved += imp
        if relaxing and not final_done:
            # at low inlier ratios LO often ends in a local optimum next to a better one
            m, sc, ni = relax(refine, sq_errors, data, m, sc, ni, errs, shared, params_i, params_f,
                              LO_RELAX_MAX_POINTS, LO_RELAX_STEP_TOL)
        if sc < best_score:
            best[:] = m
            best_score, best_inl = sc, ni
            best_stale = True
        required = required_iterations(best_inl, n, s, conf)

    mask = np.zeros(n, dtype=np.bool_)
    if found:
        polished = best_inl > s and params_i[P_POLISH_ROUNDS] > 0
        if polished:
            best = polish(refine, sq_errors, data, best, errs, shared, params_i, params_f, sq_thr, 0,
                          POLISH_STEP_TOL)
        sq_errors(data, best, 0, errs.shape[0], errs)
        if polished:
            best_score, best_inl = msac_score(errs, sq_thr, score_scale, shared)
        for i in range(n):
            mask[i] = errs[i] < sq_thr
    params_i[S_DONE] = 1
    keep_alive(owners)
    return best, best_score, best_inl, mask, it, lo_runs, lo_improved, found


@njit(cache=True)
def no_nonminimal(data, idx, weights, models):
    """``fit_nonminimal`` of an estimator without a non-minimal solver."""
    return 0


@njit(cache=True)
def no_degeneracy(data, sample):
    """``degenerate_sample`` that accepts every sample."""
    return False


@njit(cache=True)
def no_repair(data, sample, model, errs, sq_threshold, models):
    """``repair`` of an estimator without a degeneracy handler."""
    return 0


@njit(cache=True)
def refine_identity(data, model, idx, weights, max_iters):
    """``refine`` of an estimator without local refinement."""
    return model.copy()
