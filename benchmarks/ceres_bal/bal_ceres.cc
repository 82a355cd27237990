// Ceres on a BAL file, with the BAL camera model exactly as Ceres's own examples define it
// (examples/snavely_reprojection_error.h): P = R X + t, p = -P / P.z (no test of the sign of P.z),
// pixel = f (1 + k1 |p|^2 + k2 |p|^4) p. Every parameter free (angle-axis, t, f, k1, k2, points),
// squared loss, LEVENBERG_MARQUARDT, SPARSE_SCHUR with the points eliminated first.
//
// A peer for benchmarks/bench_ba.py (pycolmap's RADIAL cost cannot be used on files with points
// behind a camera: COLMAP 4.2 sets such a residual to zero, i.e. drops the observation).
//
//   bal_ceres IN.bal [--threads N] [--max-iterations N] [--function-tolerance x]
//             [--parameter-tolerance x] [--gradient-tolerance x] [--out OUT.bal]
//
// Prints one JSON line: solve_s (wall time of ceres::Solve), iterations, successful_iterations,
// initial_cost, final_cost (0.5 sum |r|^2), termination.

#include <ceres/ceres.h>
#include <ceres/rotation.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct SnavelyReprojectionError {
  SnavelyReprojectionError(double observed_x, double observed_y) : observed_x(observed_x), observed_y(observed_y) {}

  template <typename T>
  bool operator()(const T* const camera, const T* const point, T* residuals) const {
    T p[3];
    ceres::AngleAxisRotatePoint(camera, point, p);
    p[0] += camera[3];
    p[1] += camera[4];
    p[2] += camera[5];
    const T xp = -p[0] / p[2];
    const T yp = -p[1] / p[2];
    const T& l1 = camera[7];
    const T& l2 = camera[8];
    const T r2 = xp * xp + yp * yp;
    const T distortion = 1.0 + r2 * (l1 + l2 * r2);
    const T& focal = camera[6];
    residuals[0] = focal * distortion * xp - observed_x;
    residuals[1] = focal * distortion * yp - observed_y;
    return true;
  }

  double observed_x;
  double observed_y;
};

struct Bal {
  int n_cams = 0, n_pts = 0, n_obs = 0;
  std::vector<int> cam_idx, pt_idx;
  std::vector<double> xy, cameras, points;
};

bool ReadBal(const char* path, Bal* bal) {
  FILE* f = std::fopen(path, "r");
  if (!f) return false;
  bool ok = std::fscanf(f, "%d %d %d", &bal->n_cams, &bal->n_pts, &bal->n_obs) == 3;
  bal->cam_idx.resize(bal->n_obs);
  bal->pt_idx.resize(bal->n_obs);
  bal->xy.resize(2 * bal->n_obs);
  for (int k = 0; ok && k < bal->n_obs; ++k)
    ok = std::fscanf(f, "%d %d %lf %lf", &bal->cam_idx[k], &bal->pt_idx[k], &bal->xy[2 * k], &bal->xy[2 * k + 1]) == 4;
  bal->cameras.resize(9 * bal->n_cams);
  for (auto& v : bal->cameras) ok = ok && std::fscanf(f, "%lf", &v) == 1;
  bal->points.resize(3 * bal->n_pts);
  for (auto& v : bal->points) ok = ok && std::fscanf(f, "%lf", &v) == 1;
  std::fclose(f);
  return ok;
}

bool WriteBal(const char* path, const Bal& bal) {
  FILE* f = std::fopen(path, "w");
  if (!f) return false;
  std::fprintf(f, "%d %d %d\n", bal.n_cams, bal.n_pts, bal.n_obs);
  for (int k = 0; k < bal.n_obs; ++k)
    std::fprintf(f, "%d %d %.17g %.17g\n", bal.cam_idx[k], bal.pt_idx[k], bal.xy[2 * k], bal.xy[2 * k + 1]);
  for (double v : bal.cameras) std::fprintf(f, "%.17g\n", v);
  for (double v : bal.points) std::fprintf(f, "%.17g\n", v);
  return std::fclose(f) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IN.bal [--threads N] [--max-iterations N] [--out OUT.bal] ...\n", argv[0]);
    return 2;
  }
  int threads = 2, max_iterations = 50;
  double ftol = 1e-6, ptol = 1e-8, gtol = 1e-10;
  const char* out = nullptr;
  for (int a = 2; a + 1 < argc; a += 2) {
    std::string k = argv[a];
    if (k == "--threads") threads = std::atoi(argv[a + 1]);
    else if (k == "--max-iterations") max_iterations = std::atoi(argv[a + 1]);
    else if (k == "--function-tolerance") ftol = std::atof(argv[a + 1]);
    else if (k == "--parameter-tolerance") ptol = std::atof(argv[a + 1]);
    else if (k == "--gradient-tolerance") gtol = std::atof(argv[a + 1]);
    else if (k == "--out") out = argv[a + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  Bal bal;
  if (!ReadBal(argv[1], &bal)) {
    std::fprintf(stderr, "%s: cannot read a BAL file\n", argv[1]);
    return 1;
  }
  ceres::Problem problem;
  for (int k = 0; k < bal.n_obs; ++k) {
    auto* cost = new ceres::AutoDiffCostFunction<SnavelyReprojectionError, 2, 9, 3>(
        new SnavelyReprojectionError(bal.xy[2 * k], bal.xy[2 * k + 1]));
    problem.AddResidualBlock(cost, nullptr, &bal.cameras[9 * bal.cam_idx[k]], &bal.points[3 * bal.pt_idx[k]]);
  }
  ceres::Solver::Options options;
  options.minimizer_type = ceres::TRUST_REGION;
  options.trust_region_strategy_type = ceres::LEVENBERG_MARQUARDT;
  options.linear_solver_type = ceres::SPARSE_SCHUR;
  auto* ordering = new ceres::ParameterBlockOrdering;
  for (int j = 0; j < bal.n_pts; ++j) ordering->AddElementToGroup(&bal.points[3 * j], 0);
  for (int i = 0; i < bal.n_cams; ++i) ordering->AddElementToGroup(&bal.cameras[9 * i], 1);
  options.linear_solver_ordering.reset(ordering);
  options.num_threads = threads;
  options.max_num_iterations = max_iterations;
  options.function_tolerance = ftol;
  options.parameter_tolerance = ptol;
  options.gradient_tolerance = gtol;
  options.logging_type = ceres::SILENT;
  ceres::Solver::Summary summary;
  auto t0 = std::chrono::steady_clock::now();
  ceres::Solve(options, &problem, &summary);
  double solve_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (out && !WriteBal(out, bal)) {
    std::fprintf(stderr, "%s: cannot write\n", out);
    return 1;
  }
  std::printf(
      "{\"solve_s\": %.6f, \"ceres_total_s\": %.6f, \"iterations\": %d, \"successful_iterations\": %d, "
      "\"initial_cost\": %.17g, \"final_cost\": %.17g, \"termination\": \"%s\", \"linear_solver\": \"%s\"}\n",
      solve_s, summary.total_time_in_seconds, summary.num_successful_steps + summary.num_unsuccessful_steps,
      summary.num_successful_steps, summary.initial_cost, summary.final_cost,
      ceres::TerminationTypeToString(summary.termination_type),
      ceres::SparseLinearAlgebraLibraryTypeToString(summary.sparse_linear_algebra_library_type));
  return summary.IsSolutionUsable() ? 0 : 1;
}
