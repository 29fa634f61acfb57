#pragma once
// transforms::spacing(): a volume or image resampled to a new voxel spacing, as MONAI 1.6's
// monai.transforms.Spacing(pixdim, diagonal, mode, padding_mode, align_corners=False,
// scale_extent=False, recompute_affine=False, min_pixdim, max_pixdim, dtype=float64 (its default) or None)
// does it to a MetaTensor: the same output shape, the same output affine and the same voxels. The image is
// SpatialImage<T> ([C, i, j, k] or [C, i, j] and a 4 x 4 affine), T float or double (or an integer type for
// label maps, with nearest); the spatial rank (2 or 3) is the image's.
//
// What MONAI does, in its order, and what is reproduced here:
//   1. The target spacing. pixdim is cut to the spatial rank, or padded with its last value when shorter
//      ({1.5} means 1.5 on every axis). The input spacing of axis a is the length of the affine's column a
//      (a zero length counts as 1). An axis whose input spacing lies within 1e-3 of the target, or within
//      [min_pixdim - 1e-3, max_pixdim + 1e-3] when those bounds are given (a bound never narrower than the
//      target itself), keeps its input spacing. A target <= 0 also keeps the input spacing.
//   2. The output rotation. The spatial block R of the affine (rank x rank) is split as R = Q U with Q
//      orthogonal and U upper triangular with a positive diagonal (computed as MONAI does: U from the
//      Cholesky factor of R^T R, Q = R U^-1); the output block is Q diag(spacing). Axis order and flips are
//      kept, shear is dropped. With options.diagonal (MONAI's diagonal=True) the output block is
//      diag(spacing) instead: the grid follows the world axes.
//   3. The output shape: the input's corner voxel centres (0 and size - 1 on each axis) are mapped into
//      the output grid (new block, no translation) and the shape is round(extent + 1) per axis, rounding
//      halves to even as NumPy does.
//   4. The output origin: if one input corner is the lowest corner on every output axis (within 1e-8), the
//      output's voxel 0 is put on that corner's centre; otherwise (oblique affines) the grid is centred as
//      MONAI centres it: origin = R (size / 2) + t - B (out_size / 2), B the output block, with sizes, not
//      size - 1, halved.
//   5. Nothing to do: when the new affine equals the old one within |a - b| <= 1e-3 + 1e-5 |b| element by
//      element (or the index transform the identity, likewise) and the shape is unchanged, MONAI returns the
//      input voxels as they are with the input affine; so does this.
//   6. Otherwise the voxels: the transform from output to input indices is X = A^-1 A' (A, A' the
//      (rank + 1)-square affines), and the output affine is A4 X4, the 4 x 4 input affine times X
//      (embedded in 4 x 4 for images). Each output voxel is what torch.nn.functional.grid_sample
//      (align_corners=False) reads at the grid affine_grid makes from X in normalised coordinates, and the
//      source position is computed as torch computes it: theta = (S X) D^-1, with S and D the [-1, 1]
//      normalisations of the input and output sizes (D^-1 as NumPy's inverse gives it; the products
//      unfused, as torch's small batched matmul); the output coordinate
//      linspace(-1, 1, size)[o] * (size - 1) / size, with torch's linspace (one FMA from the nearer end);
//      the normalised source as torch's batched matrix product forms it (the last axis' term, the other
//      terms added, fused by MKL but not by torch's own loop for fewer than 400 / (rank (rank + 1)) output
//      voxels, then the translation); then the unnormalisation, ((g + 1) size - 1) / 2 for volumes
//      (torch's scalar 3D kernel) and fma(g + 1, size / 2, -0.5) for images (its vectorised 2D kernel,
//      which the compiler fuses), mirrored at -0.5 and size - 0.5 for reflection padding (torch's two
//      formulas, fmod in 3D and trunc in 2D), clipped to [0, size - 1] for border and reflection padding.
//      Bilinear weights and sums are torch's: in 3D eight products of three distances, each corner added to 0
//      in turn, unfused; in 2D weights (1 - dy)(1 - dx) and so on, the four corners summed with FMAs. Nearest
//      rounds half to even, as torch does. All in double (MONAI's default dtype, float64), the result rounded
//      to T once; or, with options.resample_in_input_type (MONAI's dtype=None), all of it in T.
//   The small matrix steps (R^T R, Cholesky, the solves, the products) are written as OpenBLAS, which
//   NumPy uses, and MKL, which torch uses, do them on an AVX2 / AVX-512 machine (FMA accumulation,
//   reciprocal pivots, a left-looking LU), so the index transform is NumPy's to the last bit.
// Measured against MONAI 1.6.1 / torch 2.14.1 / NumPy 1.26 on x86-64 (tests/transforms/test_spacing.cpp,
// volumes and images with diagonal, flipped, permuted, oblique and sheared affines; and once on 462 random
// cases, 2D and 3D, sizes 1 to 24, random pixdim, modes, paddings, dtypes and diagonal): every shape and
// every output affine equal, every voxel bit-identical, float and double, bilinear and nearest, resampled
// in double or in float; also the shapes and affines of 512 x 512 x 300 CT geometries. Another BLAS under
// NumPy or torch (or torch's kernels on a CPU without AVX2) may round the last bit differently; that
// matters only at exact ties of nearest (a source position at k + 0.5, which MONAI's centring makes
// common), where MONAI's own choice then changes too.
//
// Not reproduced: scale_extent, recompute_affine, align_corners=True and spline (integer) modes; NaN pixdim
// values, which MONAI treats as non-positive ones, are rejected here. MONAI returns float32 whatever the
// input; spacing() returns T. Bit-level agreement assumes the compiler fuses nothing on its own: GCC and
// Clang do not unless FMA instructions are enabled (-march=haswell, -mfma, -march=native) without
// -ffp-contract=off.
//
// Cost: the output and, per thread, a few small arrays; no coordinate grid is stored. The output slices
// (first spatial axis) are shared among vit3d::num_threads() threads. A 512 x 512 x 300 CT from
// 0.7 x 0.7 x 1.5 mm to 1.5 x 1.5 x 3 mm (239 x 239 x 150): 0.8 s bilinear, 0.3 s nearest, one thread.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::transforms {

// MONAI's mode: "bilinear" (trilinear for volumes) or "nearest" (label maps).
enum class SpacingMode { bilinear, nearest };
// MONAI's padding_mode: what an output voxel that maps outside the input sees: the nearest edge voxel
// ("border", MONAI's default), 0, or the input mirrored at its outer edges.
enum class SpacingPadding { border, zeros, reflection };

constexpr auto enum_names(SpacingMode) {
    return enum_table<SpacingMode>({{SpacingMode::bilinear, "bilinear"}, {SpacingMode::nearest, "nearest"}});
}
constexpr auto enum_names(SpacingPadding) {
    return enum_table<SpacingPadding>({{SpacingPadding::border, "border"},
                                       {SpacingPadding::zeros, "zeros"},
                                       {SpacingPadding::reflection, "reflection"}});
}

struct SpacingOptions {
    SpacingMode mode = SpacingMode::bilinear;
    SpacingPadding padding = SpacingPadding::border;
    // MONAI's diagonal: true resamples onto a grid along the world axes, the output block diag(spacing)
    // (flips, axis order and rotation of the input resampled away), instead of keeping the input's
    // rotation.
    bool diagonal = false;
    // MONAI's dtype: false resamples in double (MONAI's default, float64), true in T itself, as
    // Spacing(..., dtype=None) does (float32 arithmetic throughout for a float image).
    bool resample_in_input_type = false;
    // MONAI's min_pixdim / max_pixdim, one entry per spatial axis in order; a missing entry or NaN means
    // none for that axis (MONAI's None), so {1.0} bounds the first axis only, as in MONAI. An axis whose
    // input spacing lies within [min (or the target), max (or the target)], with 1e-3 of slack, keeps its
    // input spacing.
    std::vector<double> min_pixdim;
    std::vector<double> max_pixdim;
};

// What spacing() decides before it touches a voxel.
struct SpacingGeometry {
    Shape spatial_shape;    // the output's [i, j, k] (images: [i, j])
    Affine affine;          // the output's affine
    bool resampled = true;  // false: MONAI returns the input voxels and affine as they are
};

}  // namespace vit3d::transforms

namespace vit3d::detail {

// Square matrices of size M = spatial rank + 1, row-major: MONAI's affines "to_affine_nd(rank)".
template <std::size_t M>
using SquareMatrix = std::array<std::array<double, M>, M>;

template <std::size_t M>
SquareMatrix<M> identity_matrix() {
    SquareMatrix<M> m{};
    for (std::size_t i = 0; i < M; ++i) m[i][i] = 1.0;
    return m;
}

// a b, each element accumulated as the BLAS kernels of an FMA machine do it: the first product, then the
// others fused onto it in order.
template <std::size_t M>
SquareMatrix<M> matrix_product(const SquareMatrix<M>& a, const SquareMatrix<M>& b) {
    SquareMatrix<M> c{};
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < M; ++j) {
            double sum = a[i][0] * b[0][j];
            for (std::size_t k = 1; k < M; ++k) sum = std::fma(a[i][k], b[k][j], sum);
            c[i][j] = sum;
        }
    return c;
}

// a^-1 b by LU with partial pivoting, as OpenBLAS's gesv does it for small matrices: the factorisation
// left-looking (each column updated by dot products with the columns before it, then its pivot found and
// the multipliers scaled by the pivot's reciprocal), the substitutions column by column (the last unknown
// first on the way back), all sums fused. Returns false when a pivot is 0 (a singular).
template <std::size_t M>
bool lu_solve(SquareMatrix<M> a, SquareMatrix<M> b, SquareMatrix<M>& x) {
    const auto dot = [&](std::size_t row, std::size_t column, std::size_t count) {
        if (count == 0) return 0.0;
        double sum = a[row][0] * a[0][column];
        for (std::size_t k = 1; k < count; ++k) sum = std::fma(a[row][k], a[k][column], sum);
        return sum;
    };
    for (std::size_t j = 0; j < M; ++j) {
        for (std::size_t i = 1; i < M; ++i) a[i][j] -= dot(i, j, std::min(i, j));
        std::size_t pivot = j;
        for (std::size_t i = j + 1; i < M; ++i)
            if (std::abs(a[i][j]) > std::abs(a[pivot][j])) pivot = i;
        if (!(a[pivot][j] != 0.0)) return false;
        std::swap(a[j], a[pivot]);
        std::swap(b[j], b[pivot]);
        const double inverse = 1.0 / a[j][j];
        for (std::size_t i = j + 1; i < M; ++i) a[i][j] *= inverse;
    }
    for (std::size_t c = 0; c < M; ++c) {
        std::array<double, M> y{};
        for (std::size_t i = 0; i < M; ++i) y[i] = b[i][c];
        for (std::size_t k = 0; k < M; ++k)
            for (std::size_t i = k + 1; i < M; ++i) y[i] = std::fma(-a[i][k], y[k], y[i]);
        for (std::size_t k = M; k-- > 0;) {
            y[k] *= 1.0 / a[k][k];
            for (std::size_t i = 0; i < k; ++i) y[i] = std::fma(-a[i][k], y[k], y[i]);
        }
        for (std::size_t i = 0; i < M; ++i) x[i][c] = y[i];
    }
    return true;
}

// MONAI's allclose (NumPy's): |a - b| <= atol + 1e-5 |b| everywhere.
template <std::size_t M>
bool all_close(const SquareMatrix<M>& a, const SquareMatrix<M>& b, double atol) {
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < M; ++j)
            if (!(std::abs(a[i][j] - b[i][j]) <= atol + 1e-5 * std::abs(b[i][j]))) return false;
    return true;
}

inline std::string affine_text(const transforms::Affine& a) {
    std::string s = "[";
    for (std::size_t r = 0; r < 4; ++r) s += message(r ? ", " : "", a[r]);
    return s + "]";
}

// The (N + 1)-square affine of the first N axes (MONAI's to_affine_nd): the N x N block and the
// translation column.
template <std::size_t N>
SquareMatrix<N + 1> affine_nd(const transforms::Affine& a) {
    SquareMatrix<N + 1> m = identity_matrix<N + 1>();
    for (std::size_t r = 0; r < N; ++r) {
        for (std::size_t c = 0; c < N; ++c) m[r][c] = a[r][c];
        m[r][N] = a[r][3];
    }
    return m;
}

// And back: the 4 x 4 identity with an (N + 1)-square transform written into its first N axes.
template <std::size_t N>
transforms::Affine affine_4d(const SquareMatrix<N + 1>& m) {
    transforms::Affine a = transforms::identity_affine();
    for (std::size_t r = 0; r < N; ++r) {
        for (std::size_t c = 0; c < N; ++c) a[r][c] = m[r][c];
        a[r][3] = m[r][N];
    }
    return a;
}

// Everything spacing() needs: the public geometry and the output-to-input index transform X.
template <std::size_t N>
struct SpacingPlan {
    transforms::SpacingGeometry geometry;
    SquareMatrix<N + 1> index_transform{};  // output (i, j, k, 1) -> input (i, j, k, 1)
};

// MONAI's zoom_affine (diagonal=False): the rotation Q of the spatial block R = Q U (U upper triangular
// with a positive diagonal, from the Cholesky factor of R^T R, as NumPy computes it; Q = R U^-1) times
// diag(spacing). Throws singular() when R is singular.
template <std::size_t N, class Singular>
SquareMatrix<N + 1> rotation_times_spacing(const SquareMatrix<N + 1>& a, const std::array<double, N>& spacing,
                                           const Singular& singular) {
    constexpr std::size_t M = N + 1;
    SquareMatrix<N> gram{}, lower{};  // R^T R and its Cholesky factor L (U = L^T)
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            double sum = a[0][i] * a[0][j];
            for (std::size_t k = 1; k < N; ++k) sum = std::fma(a[k][i], a[k][j], sum);
            gram[i][j] = sum;
        }
    // As OpenBLAS's potf2: each entry less the fused dot product of the row parts before it, the column
    // below the diagonal scaled by the diagonal's reciprocal.
    const auto dot = [&](std::size_t i, std::size_t j, std::size_t count) {
        if (count == 0) return 0.0;
        double sum = lower[i][0] * lower[j][0];
        for (std::size_t k = 1; k < count; ++k) sum = std::fma(lower[i][k], lower[j][k], sum);
        return sum;
    };
    for (std::size_t j = 0; j < N; ++j) {
        const double d = gram[j][j] - dot(j, j, j);
        if (!(d > 0.0)) throw singular();
        lower[j][j] = std::sqrt(d);
        for (std::size_t i = j + 1; i < N; ++i)
            lower[i][j] = (gram[i][j] - dot(i, j, j)) * (1.0 / lower[j][j]);
    }
    SquareMatrix<M> upper = identity_matrix<M>(), block = identity_matrix<M>();
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            upper[i][j] = lower[j][i];
            block[i][j] = a[i][j];
        }
    SquareMatrix<M> upper_inverse{};
    if (!lu_solve<M>(upper, identity_matrix<M>(), upper_inverse)) throw singular();
    const SquareMatrix<M> rotation = matrix_product<M>(block, upper_inverse);
    SquareMatrix<M> out = identity_matrix<M>();
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < N; ++j) out[i][j] = rotation[i][j] * spacing[j];
    return out;
}

// Steps 1 to 6 of the top of this file (without the voxels).
template <std::size_t N>
SpacingPlan<N> plan_spacing(const transforms::Affine& affine, const Shape& in_shape,
                            const std::vector<double>& pixdim, const transforms::SpacingOptions& options,
                            const char* op) {
    constexpr std::size_t M = N + 1;
    if (in_shape.size() != N)
        throw shape_error(message(op, ": expected ", N, " spatial sizes, got ", in_shape));
    for (const Index s : in_shape)
        if (s < 1) throw shape_error(message(op, ": expected spatial sizes >= 1, got ", in_shape));
    if (pixdim.empty())
        throw std::invalid_argument(message(op, ": expected 1 to ", N, " pixdim values, got none"));
    for (const double p : pixdim)
        if (!std::isfinite(p))
            throw std::invalid_argument(message(op, ": expected finite pixdim values, got ", pixdim));
    for (std::size_t a = 0; a < std::min(options.min_pixdim.size(), options.max_pixdim.size()); ++a) {
        const double lo = options.min_pixdim[a], hi = options.max_pixdim[a];
        if (!std::isnan(lo) && !std::isnan(hi) && (hi < lo || lo < 0))
            throw std::invalid_argument(message(op,
                                                ": expected 0 <= min_pixdim <= max_pixdim, got min_pixdim ",
                                                options.min_pixdim, " and max_pixdim ", options.max_pixdim));
    }
    for (const auto& row : affine)
        for (const double v : row)
            if (!std::isfinite(v))
                throw std::invalid_argument(
                    message(op, ": expected a finite affine, got ", affine_text(affine)));

    const SquareMatrix<M> a = affine_nd<N>(affine);
    const auto singular = [&] {
        return std::invalid_argument(message(op, ": expected an affine whose ", N, " x ", N,
                                             " spatial block is invertible, got ", affine_text(affine)));
    };

    // 1. Target spacing.
    std::array<double, N> spacing{}, input_spacing{};
    for (std::size_t i = 0; i < N; ++i) spacing[i] = pixdim[std::min(i, pixdim.size() - 1)];
    for (std::size_t c = 0; c < N; ++c) {
        double sum = 0.0;
        for (std::size_t r = 0; r < N; ++r) sum += a[r][c] * a[r][c];
        input_spacing[c] = sum == 0.0 ? 1.0 : std::sqrt(sum);
    }
    for (std::size_t i = 0; i < N; ++i) {
        const double target = spacing[i];
        const double lo = i < options.min_pixdim.size() && !std::isnan(options.min_pixdim[i])
                              ? std::min(options.min_pixdim[i], target)
                              : target;
        const double hi = i < options.max_pixdim.size() && !std::isnan(options.max_pixdim[i])
                              ? std::max(options.max_pixdim[i], target)
                              : target;
        const double d = input_spacing[i];
        if (lo - 1e-3 <= d && d <= hi + 1e-3) spacing[i] = d;
        if (!(spacing[i] > 0.0)) spacing[i] = input_spacing[i];  // MONAI's fall back for values <= 0
    }

    // 2. Output block Q diag(spacing), Q from R = Q U; or diag(spacing) with options.diagonal.
    SquareMatrix<M> out = identity_matrix<M>();
    if (options.diagonal)
        for (std::size_t i = 0; i < N; ++i) out[i][i] = spacing[i];
    else
        out = rotation_times_spacing<N>(a, spacing, singular);
    // R^T R and its Cholesky factor L (U = L^T)
    // 3. Output shape from the input corners in output index space.
    constexpr std::size_t corners = std::size_t(1) << N;
    SquareMatrix<M> in_to_out{};
    if (!lu_solve<M>(out, a, in_to_out)) throw singular();
    // MONAI takes the extent after dividing by the homogeneous row (1 up to rounding) and the lowest
    // corner before.
    std::array<std::array<double, corners>, N> out_index{}, distance{}, world{};
    for (std::size_t c = 0; c < corners; ++c) {
        std::array<double, M> corner{};
        for (std::size_t i = 0; i < N; ++i)
            corner[i] = (c >> (N - 1 - i)) & 1 ? static_cast<double>(in_shape[i] - 1) : 0.0;
        corner[N] = 1.0;
        std::array<double, M> o{};
        for (std::size_t r = 0; r < M; ++r) {
            double s = in_to_out[r][0] * corner[0], w = a[r][0] * corner[0];
            for (std::size_t k = 1; k < M; ++k) {
                s = std::fma(in_to_out[r][k], corner[k], s);
                w = std::fma(a[r][k], corner[k], w);
            }
            o[r] = s;
            if (r < N) world[r][c] = w;
        }
        for (std::size_t r = 0; r < N; ++r) {
            distance[r][c] = o[r];
            out_index[r][c] = o[r] / o[N];
        }
    }
    Shape out_shape(N);
    for (std::size_t r = 0; r < N; ++r) {
        double lo = out_index[r][0], hi = out_index[r][0];
        for (std::size_t c = 1; c < corners; ++c) {
            lo = std::min(lo, out_index[r][c]);
            hi = std::max(hi, out_index[r][c]);
        }
        const double size = std::nearbyint(hi - lo + 1.0);
        if (!(size >= 1.0 && size < 9.0e15))
            throw std::invalid_argument(message(op, ": the output size along axis ", r, " is ", size,
                                                " for pixdim ", pixdim, " and affine ", affine_text(affine)));
        out_shape[r] = static_cast<Index>(size);
    }

    // 4. Output origin.
    std::array<double, N> offset{};
    bool found = false;
    for (std::size_t i = 0; i < corners && !found; ++i) {
        bool lowest = true;
        for (std::size_t r = 0; r < N; ++r) {
            double m = 0.0;
            for (std::size_t c = 0; c < corners; ++c) m = std::min(m, distance[r][c] - distance[r][i]);
            if (!(std::abs(m) <= 1e-8)) lowest = false;
        }
        if (lowest) {
            found = true;
            for (std::size_t r = 0; r < N; ++r) offset[r] = world[r][i];
        }
    }
    if (!found)
        for (std::size_t r = 0; r < N; ++r) {
            // NumPy's matrix-vector product (OpenBLAS's small gemv): the second term first, the first
            // fused onto it, then the others.
            const auto centre = [&](const SquareMatrix<M>& m, const Shape& size) {
                const auto half = [&](std::size_t k) { return static_cast<double>(size[k]) / 2.0; };
                double sum = std::fma(m[r][0], half(0), m[r][1] * half(1));
                for (std::size_t k = 2; k < N; ++k) sum = std::fma(m[r][k], half(k), sum);
                return sum;
            };
            const double in_centre = centre(a, in_shape), out_centre = centre(out, out_shape);
            offset[r] = (in_centre + a[r][N]) - out_centre;
        }
    for (std::size_t r = 0; r < N; ++r) out[r][N] = offset[r];

    // 5, 6. The index transform, and whether there is anything to do.
    SpacingPlan<N> plan;
    if (!lu_solve<M>(a, out, plan.index_transform)) throw singular();
    plan.geometry.spatial_shape = out_shape;
    const bool same_shape = [&] {
        for (std::size_t r = 0; r < N; ++r)
            if (!(std::abs(static_cast<double>(out_shape[r] - in_shape[r])) <=
                  1e-8 + 1e-5 * static_cast<double>(in_shape[r])))
                return false;
        return true;
    }();
    plan.geometry.resampled =
        !(same_shape &&
          (all_close<M>(a, out, 1e-3) || all_close<M>(plan.index_transform, identity_matrix<M>(), 1e-3)));
    if (!plan.geometry.resampled) {
        plan.geometry.affine = affine;
    } else {
        plan.geometry.affine = matrix_product<4>(affine, affine_4d<N>(plan.index_transform));
    }
    return plan;
}

// torch's linspace(-1, 1, n)[o] * (n - 1) / n in W: the normalised output coordinate of index o that
// affine_grid uses (align_corners=False). torch's linspace computes from the nearer end with an FMA.
template <class W>
std::vector<W> torch_grid_coordinates(Index n) {
    std::vector<W> c(static_cast<std::size_t>(n), W(0));
    if (n <= 1) return c;
    const W step = W(2) / static_cast<W>(n - 1);
    const Index half = n / 2;
    for (Index o = 0; o < n; ++o) {
        const W v = o < half ? std::fma(step, static_cast<W>(o), W(-1))
                             : std::fma(-step, static_cast<W>(n - 1 - o), W(1));
        c[static_cast<std::size_t>(o)] = v * static_cast<W>(n - 1) / static_cast<W>(n);
    }
    return c;
}

// theta = (S X) D^-1: the index transform X in affine_grid's normalised coordinates ([-1, 1] spanning
// the voxels' outer edges), as MONAI's to_norm_affine forms it: S and D in double then W, D^-1 as LAPACK
// inverts it (reciprocal of the diagonal), the products as torch's small batched matmul (in order, unfused).
template <std::size_t N, class W>
std::array<std::array<W, N + 1>, N + 1> normalised_theta(const SquareMatrix<N + 1>& x, const Shape& in_shape,
                                                         const Shape& out_shape) {
    constexpr std::size_t M = N + 1;
    using WMatrix = std::array<std::array<W, M>, M>;
    WMatrix s{}, d_inverse{}, xw{};
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < M; ++j) xw[i][j] = static_cast<W>(x[i][j]);
    s[N][N] = d_inverse[N][N] = W(1);
    for (std::size_t a = 0; a < N; ++a) {
        const auto in = static_cast<double>(in_shape[a]), out = static_cast<double>(out_shape[a]);
        s[a][a] = static_cast<W>(2.0 / in);
        s[a][N] = static_cast<W>(1.0 / in - 1.0);
        const auto scale = static_cast<W>(2.0 / out), shift = static_cast<W>(1.0 / out - 1.0);
        const W reciprocal = W(1) / scale;
        d_inverse[a][a] = reciprocal;
        // NumPy's (OpenBLAS's) inverse: the translation through the reciprocal in double, divided in float.
        d_inverse[a][N] = std::is_same_v<W, float> ? -(shift / scale) : -(shift * reciprocal);
    }
    const auto product = [](const WMatrix& p, const WMatrix& q) {
        WMatrix r{};
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < M; ++j) {
                W sum = W(0);
                for (std::size_t k = 0; k < M; ++k) sum += p[i][k] * q[k][j];
                r[i][j] = sum;
            }
        return r;
    };
    return product(product(s, xw), d_inverse);
}

// The resampling, in compute type W (double: MONAI's default dtype): output voxel (o_0, ..., o_{N-1})
// from the input at X o, with torch's grid_sample arithmetic (see the top of this file).
template <std::size_t N, class W, class T>
void spacing_resample(const Tensor<T>& in, Tensor<T>& out, const SquareMatrix<N + 1>& x,
                      const transforms::SpacingOptions& options) {
    const Index channels = in.dim(0);
    Shape in_shape(in.shape().begin() + 1, in.shape().end()),
        out_shape(out.shape().begin() + 1, out.shape().end());
    const auto theta = normalised_theta<N, W>(x, in_shape, out_shape);
    std::array<std::vector<W>, N> grid;
    for (std::size_t a = 0; a < N; ++a) grid[a] = torch_grid_coordinates<W>(out_shape[a]);
    const bool border = options.padding == transforms::SpacingPadding::border;
    const bool reflection = options.padding == transforms::SpacingPadding::reflection;
    const bool nearest = options.mode == transforms::SpacingMode::nearest;
    Index in_plane = 1, out_plane = 1;  // voxels per channel
    for (std::size_t a = 0; a < N; ++a) {
        in_plane *= in_shape[a];
        out_plane *= out_shape[a];
    }
    std::array<Index, N> in_stride{};
    in_stride[N - 1] = 1;
    for (std::size_t a = N - 1; a-- > 0;) in_stride[a] = in_stride[a + 1] * in_shape[a + 1];
    const T* src = in.data();
    T* dst = out.data();
    Index inner = 1;  // output voxels per slice of the first axis
    for (std::size_t a = 1; a < N; ++a) inner *= out_shape[a];

    // affine_grid's batched matrix product: torch's own unfused loop when points x N x (N + 1) < 400,
    // MKL's fused kernel otherwise.
    const bool fused_grid = out_plane * static_cast<Index>(N * (N + 1)) >= 400;
    // The normalised source coordinate along axis a of output index o: that product (the last axis' term
    // first, then the others, then the translation), then grid_sample's unnormalisation and padding.
    const auto source = [&](std::size_t a, const std::array<Index, N>& o) {
        W g = grid[N - 1][static_cast<std::size_t>(o[N - 1])] * theta[a][N - 1];
        for (std::size_t k = N - 1; k-- > 0;) {
            const W x = grid[k][static_cast<std::size_t>(o[k])];
            g = fused_grid ? std::fma(x, theta[a][k], g) : g + x * theta[a][k];
        }
        g = g + theta[a][N];
        const auto size = static_cast<W>(in_shape[a]);
        W c = N == 3 ? ((g + W(1)) * size - W(1)) / W(2) : std::fma(g + W(1), size / W(2), W(-0.5));
        if (reflection) {
            // Mirrored at the outer edges -0.5 and size - 0.5, as torch's 3D (scalar) and 2D
            // (vectorised, fused) kernels do it; then clipped like border.
            if constexpr (N == 3) {
                const W low = W(-1) / W(2), span = static_cast<W>(2 * in_shape[a]) / W(2);
                const W from_low = std::abs(c - low);
                const W extra = std::fmod(from_low, span);
                const int flips = static_cast<int>(std::floor(from_low / span));
                c = flips % 2 == 0 ? extra + low : (span - extra) + low;
            } else {
                const W low = W(-0.5), twice_span = size * W(2);
                const W from_low = std::abs(c - low);
                const W extra = std::fma(-std::trunc(from_low / twice_span), twice_span, from_low);
                c = std::min(extra, twice_span - extra) + low;
            }
        }
        if (border || reflection) c = std::min(size - W(1), std::max(c, W(0)));
        return c;
    };

    parallel_for(out_shape[0], 1, [&](Index begin, Index end) {
        std::array<Index, N> o{};
        for (Index first = begin; first < end; ++first) {
            o[0] = first;
            for (Index p = 0; p < inner; ++p) {
                Index rest = p;
                for (std::size_t a = N; a-- > 1;) {
                    o[a] = rest % out_shape[a];
                    rest /= out_shape[a];
                }
                std::array<W, N> c{};
                for (std::size_t a = 0; a < N; ++a) c[a] = source(a, o);
                const Index out_index = first * inner + p;
                if (nearest) {
                    Index offset = 0;
                    bool inside = true;
                    for (std::size_t a = 0; a < N; ++a) {
                        const auto i = static_cast<Index>(std::nearbyint(c[a]));
                        inside = inside && i >= 0 && i < in_shape[a];
                        offset += i * in_stride[a];
                    }
                    for (Index ch = 0; ch < channels; ++ch)
                        dst[ch * out_plane + out_index] = inside ? src[ch * in_plane + offset] : T(0);
                    continue;
                }
                std::array<Index, N> lo{};
                for (std::size_t a = 0; a < N; ++a) lo[a] = static_cast<Index>(std::floor(c[a]));
                if constexpr (N == 3) {
                    // torch's grid_sampler_3d_cpu_impl: z, y, x are axes i, j, k.
                    const W z = c[0], y = c[1], xx = c[2];
                    const W z0 = static_cast<W>(lo[0]), y0 = static_cast<W>(lo[1]),
                            x0 = static_cast<W>(lo[2]);
                    const W z1 = static_cast<W>(lo[0] + 1), y1 = static_cast<W>(lo[1] + 1),
                            x1 = static_cast<W>(lo[2] + 1);
                    const W weight[8] = {(x1 - xx) * (y1 - y) * (z1 - z), (xx - x0) * (y1 - y) * (z1 - z),
                                         (x1 - xx) * (y - y0) * (z1 - z), (xx - x0) * (y - y0) * (z1 - z),
                                         (x1 - xx) * (y1 - y) * (z - z0), (xx - x0) * (y1 - y) * (z - z0),
                                         (x1 - xx) * (y - y0) * (z - z0), (xx - x0) * (y - y0) * (z - z0)};
                    Index corner_offset[8];
                    bool inside[8];
                    for (int k = 0; k < 8; ++k) {
                        const Index ci = lo[0] + ((k >> 2) & 1), cj = lo[1] + ((k >> 1) & 1),
                                    ck = lo[2] + (k & 1);
                        inside[k] = ci >= 0 && ci < in_shape[0] && cj >= 0 && cj < in_shape[1] && ck >= 0 &&
                                    ck < in_shape[2];
                        corner_offset[k] = ci * in_stride[0] + cj * in_stride[1] + ck;
                    }
                    for (Index ch = 0; ch < channels; ++ch) {
                        const T* plane = src + ch * in_plane;
                        W v = W(0);
                        for (int k = 0; k < 8; ++k)
                            if (inside[k]) v += static_cast<W>(plane[corner_offset[k]]) * weight[k];
                        dst[ch * out_plane + out_index] = static_cast<T>(v);
                    }
                } else {
                    // torch's vectorised 2D kernel: y, x are axes i, j; masked corners read as 0.
                    const W y = c[0], xx = c[1];
                    const W w = xx - static_cast<W>(lo[1]), e = W(1) - w;
                    const W n = y - static_cast<W>(lo[0]), s = W(1) - n;
                    const W weight[4] = {s * e, s * w, n * e, n * w};  // nw, ne, sw, se
                    Index corner_offset[4];
                    bool inside[4];
                    for (int k = 0; k < 4; ++k) {
                        const Index ci = lo[0] + ((k >> 1) & 1), cj = lo[1] + (k & 1);
                        inside[k] = ci >= 0 && ci < in_shape[0] && cj >= 0 && cj < in_shape[1];
                        corner_offset[k] = ci * in_stride[0] + cj;
                    }
                    for (Index ch = 0; ch < channels; ++ch) {
                        const T* plane = src + ch * in_plane;
                        W value[4];
                        for (int k = 0; k < 4; ++k)
                            value[k] = inside[k] ? static_cast<W>(plane[corner_offset[k]]) : W(0);
                        const W v = std::fma(value[3], weight[3],
                                             std::fma(value[2], weight[2],
                                                      std::fma(value[1], weight[1], value[0] * weight[0])));
                        dst[ch * out_plane + out_index] = static_cast<T>(v);
                    }
                }
            }
        }
    });
}

template <std::size_t N, class T>
transforms::SpatialImage<T> spacing_nd(const transforms::SpatialImage<T>& image,
                                       const std::vector<double>& pixdim,
                                       const transforms::SpacingOptions& options, const char* op) {
    const SpacingPlan<N> plan = plan_spacing<N>(image.affine, image.spatial_shape(), pixdim, options, op);
    if (!plan.geometry.resampled) return image;
    Shape shape{image.channels()};
    shape.insert(shape.end(), plan.geometry.spatial_shape.begin(), plan.geometry.spatial_shape.end());
    transforms::SpatialImage<T> out{Tensor<T>::empty(shape), plan.geometry.affine};
    if constexpr (std::is_floating_point_v<T>) {
        if (options.resample_in_input_type) {
            spacing_resample<N, T>(image.data, out.data, plan.index_transform, options);
            return out;
        }
    }
    spacing_resample<N, double>(image.data, out.data, plan.index_transform, options);
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

// The output shape and affine spacing(image, pixdim, options) gives an image with this affine and these
// spatial sizes ([i, j, k] or [i, j]), without resampling anything.
inline SpacingGeometry spacing_geometry(const Affine& affine, const Shape& spatial_shape,
                                        const std::vector<double>& pixdim,
                                        const SpacingOptions& options = {}) {
    const char* op = "vit3d::transforms::spacing_geometry";
    if (spatial_shape.size() == 3)
        return detail::plan_spacing<3>(affine, spatial_shape, pixdim, options, op).geometry;
    if (spatial_shape.size() == 2)
        return detail::plan_spacing<2>(affine, spatial_shape, pixdim, options, op).geometry;
    throw shape_error(message(op, ": expected 2 or 3 spatial sizes, got ", spatial_shape));
}

// image resampled to the voxel spacing pixdim (millimetres, per index axis i, j, k; see the top of this
// file for MONAI's rules on shorter and non-positive pixdim), as MONAI's Spacing: the output image and its
// affine. Label maps: options.mode = SpacingMode::nearest, with T float, double or an integer type (the
// labels copied as they are; MONAI would give them as float32).
template <class T>
SpatialImage<T> spacing(const SpatialImage<T>& image, const std::vector<double>& pixdim,
                        const SpacingOptions& options = {}) {
    const char* op = "vit3d::transforms::spacing";
    if constexpr (!std::is_floating_point_v<T>) {
        if (options.mode != SpacingMode::nearest)
            throw std::invalid_argument(message(
                op, ": expected mode nearest for an integer image (a label map), got mode ", options.mode));
        if (options.resample_in_input_type)
            throw std::invalid_argument(
                message(op,
                        ": expected resample_in_input_type false for an integer image, got true (MONAI's "
                        "dtype=None needs a float image)"));
    }
    detail::check_spatial_image(image, op);
    if (image.spatial_rank() == 3) return detail::spacing_nd<3>(image, pixdim, options, op);
    return detail::spacing_nd<2>(image, pixdim, options, op);
}

// MONAI's Spacing as a step of a chain (compose.hpp): spacing() with these settings, under MONAI's names.
struct Spacing {
    static constexpr const char* name = "Spacing";
    std::vector<double> pixdim;
    SpacingMode mode = SpacingMode::bilinear;
    SpacingPadding padding_mode = SpacingPadding::border;
    bool diagonal = false;
    std::vector<double> min_pixdim;  // empty: none
    std::vector<double> max_pixdim;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("pixdim", c.pixdim, "the voxel spacing per index axis in mm (<= 0: as it is)"));
        f(field("mode", c.mode, "bilinear (trilinear for volumes) or nearest (label maps)"));
        f(field("padding_mode", c.padding_mode,
                "what a voxel outside the input reads: border, zeros, reflection"));
        f(field("diagonal", c.diagonal, "resample onto the world axes, dropping the input's rotation"));
        f(field("min_pixdim", c.min_pixdim, "axes whose spacing is at least this keep it (empty: none)"));
        f(field("max_pixdim", c.max_pixdim, "axes whose spacing is at most this keep it (empty: none)"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const {
        SpacingOptions options;
        options.mode = mode;
        options.padding = padding_mode;
        options.diagonal = diagonal;
        options.min_pixdim = min_pixdim;
        options.max_pixdim = max_pixdim;
        return spacing(image, pixdim, options);
    }
};

}  // namespace vit3d::transforms
