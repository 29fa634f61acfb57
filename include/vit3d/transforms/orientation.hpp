#pragma once
// Reorienting a volume to axis codes, as MONAI's Orientation (with nibabel's io_orientation) does it: the
// voxels are flipped and their axes permuted so that index axis a runs towards the a-th code ("RAS": i
// towards R, j towards A, k towards S), never interpolated, and the affine is changed so that every voxel
// keeps its world position.
//
// Which world axis an index axis runs along comes from the affine's columns, as nibabel finds it: the columns
// scaled to unit length, their nearest shear-free matrix R (the polar factor P Qᵀ of the SVD P S Qᵀ), then,
// taking index axes from the most to the least clearly aligned (the largest squared entry of the column
// first, ties in index order), each index axis gets the world axis of its column's largest |entry|, and that
// world axis is taken out of the running for the others. An oblique scan thus gets the nearest permutation
// and flips; its rotation stays in the affine.
//
// Labels are NIfTI's and MONAI's defaults: (L, R), (P, A), (I, S), the second of each pair the positive
// direction of world x, y, z (RAS+).

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::transforms {

// For each index axis of an image: the world axis (0 = x, 1 = y, 2 = z) it runs along and whether it runs
// towards that axis's positive end (+1) or negative end (-1). nibabel's "ornt" array.
struct AxisDirection {
    int world_axis = 0;
    int sign = 1;
};
using AxisOrientation = std::vector<AxisDirection>;

}  // namespace vit3d::transforms

namespace vit3d::detail {

inline constexpr std::array<std::array<char, 2>, 3> axis_labels{{{'L', 'R'}, {'P', 'A'}, {'I', 'S'}}};

// The top-left (rank + 1) x (rank + 1) affine of a 4 x 4 one, as MONAI's to_affine_nd(rank, affine): the
// rank x rank block and the translation column.
inline Eigen::MatrixXd affine_nd(const transforms::Affine& a, int rank) {
    Eigen::MatrixXd out = Eigen::MatrixXd::Identity(rank + 1, rank + 1);
    for (int r = 0; r < rank; ++r) {
        for (int c = 0; c < rank; ++c)
            out(r, c) = a[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
        out(r, rank) = a[static_cast<std::size_t>(r)][3];
    }
    return out;
}

// The (rank + 1) x (rank + 1) matrix m as a 4 x 4 affine: MONAI's to_affine_nd(3, m).
inline transforms::Affine affine_4x4(const Eigen::MatrixXd& m) {
    const auto rank = static_cast<int>(m.rows()) - 1;
    transforms::Affine out = transforms::identity_affine();
    for (int r = 0; r < rank; ++r) {
        for (int c = 0; c < rank; ++c)
            out[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = m(r, c);
        out[static_cast<std::size_t>(r)][3] = m(r, rank);
    }
    return out;
}

inline transforms::Affine affine_product(const transforms::Affine& a, const transforms::Affine& b) {
    transforms::Affine out{};
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c)
            for (std::size_t k = 0; k < 4; ++k) out[r][c] += a[r][k] * b[k][c];
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

// The world axis and direction of each index axis of an affine whose index space has `rank` axes (2 or 3),
// as nibabel.orientations.io_orientation(to_affine_nd(rank, affine)). An index axis whose column is zero
// cannot be oriented: that throws.
inline AxisOrientation axis_orientation(const Affine& affine, int rank = 3) {
    const char* op = "vit3d::transforms::axis_orientation";
    if (rank < 1 || rank > 3)
        throw std::invalid_argument(message(op, ": expected 1 to 3 index axes, got ", rank));
    const Eigen::MatrixXd a = detail::affine_nd(affine, rank);
    if (!a.allFinite()) throw std::invalid_argument(message(op, ": the affine has a non-finite entry"));
    Eigen::MatrixXd rs = a.topLeftCorner(rank, rank);
    for (int c = 0; c < rank; ++c) {
        const double zoom = rs.col(c).norm();
        if (zoom != 0) rs.col(c) /= zoom;
    }
    const Eigen::JacobiSVD<Eigen::MatrixXd> svd(rs, Eigen::ComputeFullU | Eigen::ComputeFullV);
    const Eigen::VectorXd s = svd.singularValues();
    const double tol = s.maxCoeff() * rank * std::numeric_limits<double>::epsilon();
    Eigen::MatrixXd r = Eigen::MatrixXd::Zero(rank, rank);
    for (int k = 0; k < rank; ++k)
        if (s(k) > tol) r += svd.matrixU().col(k) * svd.matrixV().col(k).transpose();
    // Index axes from the most clearly aligned to the least, ties in index order (a stable sort).
    std::vector<int> order(static_cast<std::size_t>(rank));
    for (int c = 0; c < rank; ++c) order[static_cast<std::size_t>(c)] = c;
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        return r.col(x).cwiseAbs2().maxCoeff() > r.col(y).cwiseAbs2().maxCoeff();
    });
    AxisOrientation out(static_cast<std::size_t>(rank));
    std::vector<bool> oriented(static_cast<std::size_t>(rank), false);
    for (const int c : order) {
        // nibabel's np.allclose(col, 0): every |entry| <= 1e-8.
        if (r.col(c).cwiseAbs().maxCoeff() <= 1e-8) continue;
        Eigen::Index world = 0;
        r.col(c).cwiseAbs().maxCoeff(&world);
        out[static_cast<std::size_t>(c)] = {static_cast<int>(world), r(world, c) < 0 ? -1 : 1};
        oriented[static_cast<std::size_t>(c)] = true;
        r.row(world).setZero();
    }
    for (int c = 0; c < rank; ++c)
        if (!oriented[static_cast<std::size_t>(c)])
            throw std::invalid_argument(message(op, ": index axis ", c,
                                                " has no direction in the world (its affine column is zero "
                                                "or parallel to another's)"));
    return out;
}

// The axis codes of an affine, "RAS", "LPS", "PLI", ... (nibabel's aff2axcodes).
inline std::string axis_codes(const Affine& affine, int rank = 3) {
    std::string codes;
    for (const AxisDirection& d : axis_orientation(affine, rank))
        codes += detail::axis_labels[static_cast<std::size_t>(d.world_axis)][d.sign > 0 ? 1 : 0];
    return codes;
}

// Axis codes as orientations (nibabel's axcodes2ornt): "RAS" -> (x, +1), (y, +1), (z, +1).
inline AxisOrientation orientation_of_codes(const std::string& codes) {
    const char* op = "vit3d::transforms::orientation_of_codes";
    AxisOrientation out;
    std::array<bool, 3> used{};
    for (const char code : codes) {
        bool found = false;
        for (std::size_t w = 0; w < 3 && !found; ++w)
            for (std::size_t end = 0; end < 2 && !found; ++end)
                if (detail::axis_labels[w][end] == code) {
                    if (used[w])
                        throw std::invalid_argument(message(op, ": axis codes ", detail::quoted(codes),
                                                            " name world axis ", "xyz"[w], " twice"));
                    used[w] = true;
                    out.push_back({static_cast<int>(w), end == 1 ? 1 : -1});
                    found = true;
                }
        if (!found)
            throw std::invalid_argument(message(
                op, ": expected axis codes from L/R, P/A, I/S (e.g. \"RAS\"), got ", detail::quoted(codes)));
    }
    return out;
}

// MONAI's Orientation: the image's axes flipped and permuted so that they run along `axcodes` (one code
// per spatial axis: "RAS" for a volume, "RA" for a 2D image); with as_closest_canonical, to the codes
// nearest its own orientation in RAS+ order instead. The affine changes so that every voxel keeps its world
// coordinates: affine' = affine * (the inverse of the flip and permutation in index space).
struct Orientation {
    static constexpr const char* name = "Orientation";
    std::string axcodes = "RAS";
    bool as_closest_canonical = false;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("axcodes", c.axcodes, "the world direction of each spatial axis, from L/R, P/A, I/S"));
        f(field("as_closest_canonical", c.as_closest_canonical,
                "to the RAS+ order nearest the image's own instead of axcodes"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const;
};

// The image with its index axes flipped and permuted as `change` says: output axis change[s].world_axis
// (here an index axis) takes input axis s, reversed where change[s].sign is -1; the affine keeps every
// voxel's world position.
template <class T>
SpatialImage<T> reorient(const SpatialImage<T>& image, const AxisOrientation& change);

}  // namespace vit3d::transforms

namespace vit3d::detail {

// nibabel's ornt_transform(start, end): for each input axis, the output axis and flip that take an array
// oriented as `start` to one oriented as `end`.
inline transforms::AxisOrientation orientation_change(const transforms::AxisOrientation& start,
                                                      const transforms::AxisOrientation& end,
                                                      const std::string& end_codes) {
    transforms::AxisOrientation out(start.size());
    for (std::size_t s = 0; s < start.size(); ++s) {
        bool found = false;
        for (std::size_t e = 0; e < end.size() && !found; ++e)
            if (end[e].world_axis == start[s].world_axis) {
                out[s] = {static_cast<int>(e), end[e].sign == start[s].sign ? 1 : -1};
                found = true;
            }
        if (!found)
            throw std::invalid_argument(
                message("vit3d::transforms::Orientation: axis codes ", detail::quoted(end_codes),
                        " name no direction along world axis ", "xyz"[start[s].world_axis],
                        ", which index axis ", s, " of the image runs along"));
    }
    return out;
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

template <class T>
SpatialImage<T> reorient(const SpatialImage<T>& image, const AxisOrientation& change) {
    const char* op = "vit3d::transforms::reorient";
    detail::check_spatial_image(image, op);
    const int rank = static_cast<int>(image.spatial_rank());
    if (static_cast<int>(change.size()) != rank)
        throw std::invalid_argument(
            message(op, ": expected an orientation of ", rank, " axes, got ", change.size()));
    std::vector<bool> taken(static_cast<std::size_t>(rank), false);
    for (const AxisDirection& d : change) {
        if (d.world_axis < 0 || d.world_axis >= rank || taken[static_cast<std::size_t>(d.world_axis)] ||
            (d.sign != 1 && d.sign != -1))
            throw std::invalid_argument(
                message(op, ": expected a permutation of the ", rank, " axes with signs +1 or -1"));
        taken[static_cast<std::size_t>(d.world_axis)] = true;
    }
    const Shape in_shape = image.data.shape();
    // Input strides of the spatial axes, and for each output axis the input axis it reads.
    std::vector<Index> in_stride(static_cast<std::size_t>(rank));
    Index stride = 1;
    for (int s = rank - 1; s >= 0; --s) {
        in_stride[static_cast<std::size_t>(s)] = stride;
        stride *= in_shape[static_cast<std::size_t>(s) + 1];
    }
    const Index plane = stride;  // voxels per channel
    Shape out_shape = in_shape;
    std::array<Index, 3> step{}, size{};  // per output axis: input step (signed) and length
    Index first = 0;                      // input offset of output voxel (0, 0, 0)
    for (int s = 0; s < rank; ++s) {
        const AxisDirection d = change[static_cast<std::size_t>(s)];
        const Index n = in_shape[static_cast<std::size_t>(s) + 1];
        out_shape[static_cast<std::size_t>(d.world_axis) + 1] = n;
        size[static_cast<std::size_t>(d.world_axis)] = n;
        step[static_cast<std::size_t>(d.world_axis)] = d.sign * in_stride[static_cast<std::size_t>(s)];
        if (d.sign < 0) first += (n - 1) * in_stride[static_cast<std::size_t>(s)];
    }
    for (int a = rank; a < 3; ++a) size[static_cast<std::size_t>(a)] = 1;
    SpatialImage<T> out;
    out.data = Tensor<T>::empty(out_shape);
    const T* src = image.data.data();
    T* dst = out.data.data();
    for (Index c = 0; c < image.channels(); ++c)
        for (Index o0 = 0; o0 < size[0]; ++o0)
            for (Index o1 = 0; o1 < size[1]; ++o1) {
                const T* row = src + c * plane + first + o0 * step[0] + o1 * step[1];
                for (Index o2 = 0; o2 < size[2]; ++o2) *dst++ = row[o2 * step[2]];
            }
    // nibabel's inv_ornt_aff(change, shape): output index -> input index, then the image's affine.
    Eigen::MatrixXd undo_reorder = Eigen::MatrixXd::Zero(rank + 1, rank + 1);
    Eigen::MatrixXd undo_flip = Eigen::MatrixXd::Identity(rank + 1, rank + 1);
    undo_reorder(rank, rank) = 1;
    for (int s = 0; s < rank; ++s) {
        const AxisDirection d = change[static_cast<std::size_t>(s)];
        undo_reorder(s, d.world_axis) = 1;
        const double center = -(static_cast<double>(in_shape[static_cast<std::size_t>(s) + 1]) - 1) / 2.0;
        undo_flip(s, s) = d.sign;
        undo_flip(s, rank) = d.sign * center - center;
    }
    out.affine = detail::affine_product(image.affine, detail::affine_4x4(undo_flip * undo_reorder));
    return out;
}

template <class T>
SpatialImage<T> Orientation::operator()(const SpatialImage<T>& image) const {
    detail::check_spatial_image(image, "vit3d::transforms::Orientation");
    const int rank = static_cast<int>(image.spatial_rank());
    const AxisOrientation start = axis_orientation(image.affine, rank);
    if (as_closest_canonical) return reorient(image, start);
    const std::string codes = axcodes.substr(0, static_cast<std::size_t>(rank));
    const AxisOrientation end = orientation_of_codes(codes);
    if (static_cast<int>(end.size()) < rank)
        throw std::invalid_argument(message("vit3d::transforms::Orientation: expected ", rank,
                                            " axis codes for an image of ", rank, " spatial axes, got ",
                                            detail::quoted(axcodes)));
    return reorient(image, detail::orientation_change(start, end, codes));
}

}  // namespace vit3d::transforms
