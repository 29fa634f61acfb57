#pragma once
// Cropping and padding a SpatialImage as MONAI's croppad transforms do, with the affine moved so that every
// kept voxel keeps its world position (a crop starting at index s, or a pad of p voxels before, shifts the
// origin by s, or -p, voxels):
//   SpatialPad           to at least spatial_size: the missing width w split w / 2 before (rounded down) and
//                        the rest after ("symmetric"), or all after ("end");
//   CenterSpatialCrop    to at most roi_size: the window starts at n / 2 - roi / 2 (both rounded down);
//   ResizeWithPadOrCrop  CenterSpatialCrop, then SpatialPad: exactly spatial_size;
//   CropForeground       to the bounding box of the voxels above a threshold in any channel (MONAI's
//                        default select_fn, x > 0, is threshold 0), widened by margin on each side, grown to
//                        a multiple of k_divisible around its centre (the extra split as SpatialPad splits
//                        it), padded where the box leaves the image unless allow_smaller; an image without
//                        foreground becomes empty, as in MONAI.
// A size entry <= 0 means "this axis as it is" (MONAI's fall_back_tuple); one entry stands for every axis.
// Padding is MONAI's default mode, constant, with `value` (0 by default); its other modes are not offered.

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/affine.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::transforms {

// Where SpatialPad puts the missing width.
enum class PadMethod { symmetric, end };
constexpr auto enum_names(PadMethod) {
    return enum_table<PadMethod>({{PadMethod::symmetric, "symmetric"}, {PadMethod::end, "end"}});
}

}  // namespace vit3d::transforms

namespace vit3d::detail {

// MONAI's fall_back_tuple: one size per spatial axis (a single entry repeated), entries <= 0 replaced by
// the image's size.
inline std::vector<Index> sizes_per_axis(const std::vector<Index>& sizes, const Shape& spatial,
                                         const char* op, const char* what) {
    if (sizes.size() != 1 && sizes.size() != spatial.size())
        throw std::invalid_argument(message(op, ": expected ", what, " with 1 or ", spatial.size(),
                                            " entries (one per spatial axis), got ", sizes.size()));
    std::vector<Index> out(spatial.size());
    for (std::size_t a = 0; a < spatial.size(); ++a) {
        const Index s = sizes.size() == 1 ? sizes[0] : sizes[a];
        out[a] = s > 0 ? s : spatial[a];
    }
    return out;
}

// The voxels of index box [start, end) of every channel (end - start per axis, >= 0), those outside the
// image set to `value`, and the affine moved to the box's first voxel.
template <class T>
transforms::SpatialImage<T> crop_or_pad(const transforms::SpatialImage<T>& image,
                                        const std::vector<Index>& start, const std::vector<Index>& end,
                                        double value) {
    const Shape spatial = image.spatial_shape();
    const std::size_t rank = spatial.size();
    Shape out_shape{image.channels()};
    for (std::size_t a = 0; a < rank; ++a) out_shape.push_back(end[a] - start[a]);
    transforms::SpatialImage<T> out;
    out.data = Tensor<T>::full(out_shape, static_cast<T>(value));
    // Padded to three axes, so one loop serves 2D and 3D.
    std::array<Index, 3> n{1, 1, 1}, s{0, 0, 0}, m{1, 1, 1};
    for (std::size_t a = 0; a < rank; ++a) {
        n[3 - rank + a] = spatial[a];
        s[3 - rank + a] = start[a];
        m[3 - rank + a] = end[a] - start[a];
    }
    // The part of the box inside the image, in output coordinates.
    std::array<Index, 3> lo{}, hi{};
    for (std::size_t a = 0; a < 3; ++a) {
        lo[a] = std::clamp<Index>(-s[a], 0, m[a]);
        hi[a] = std::clamp<Index>(n[a] - s[a], lo[a], m[a]);
    }
    const T* src = image.data.data();
    T* dst = out.data.data();
    for (Index c = 0; c < image.channels(); ++c)
        for (Index o0 = lo[0]; o0 < hi[0]; ++o0)
            for (Index o1 = lo[1]; o1 < hi[1]; ++o1) {
                const T* from = src + ((c * n[0] + o0 + s[0]) * n[1] + o1 + s[1]) * n[2] + s[2];
                T* to = dst + ((c * m[0] + o0) * m[1] + o1) * m[2];
                std::copy(from + lo[2], from + hi[2], to + lo[2]);
            }
    transforms::Affine shift = transforms::identity_affine();
    for (std::size_t a = 0; a < rank; ++a) shift[a][3] = static_cast<double>(start[a]);
    out.affine = image.affine;
    for (std::size_t r = 0; r < 4; ++r) {
        double t = 0;
        for (std::size_t k = 0; k < 4; ++k) t += image.affine[r][k] * shift[k][3];
        out.affine[r][3] = t;
    }
    return out;
}

inline void check_pad_value(double value, const char* op) {
    if (!std::isfinite(value))
        throw std::invalid_argument(message(op, ": expected a finite pad value, got ", value));
}

}  // namespace vit3d::detail

namespace vit3d::transforms {

// MONAI's SpatialPad(spatial_size, method, mode="constant", value).
struct SpatialPad {
    static constexpr const char* name = "SpatialPad";
    std::vector<Index> spatial_size;
    PadMethod method = PadMethod::symmetric;
    double value = 0;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("spatial_size", c.spatial_size, "the least size of each spatial axis (<= 0: as it is)"));
        f(field("method", c.method, "where the padding goes: both sides (symmetric) or after (end)"));
        f(field("value", c.value, "the value of padded voxels"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const {
        const char* op = "vit3d::transforms::SpatialPad";
        detail::check_spatial_image(image, op);
        detail::check_pad_value(value, op);
        const Shape n = image.spatial_shape();
        const std::vector<Index> size = detail::sizes_per_axis(spatial_size, n, op, "spatial_size");
        std::vector<Index> start(n.size()), end(n.size());
        for (std::size_t a = 0; a < n.size(); ++a) {
            const Index width = std::max<Index>(size[a] - n[a], 0);
            start[a] = method == PadMethod::symmetric ? -(width / 2) : 0;
            end[a] = start[a] + n[a] + width;
        }
        return detail::crop_or_pad(image, start, end, value);
    }
};

// MONAI's CenterSpatialCrop(roi_size).
struct CenterSpatialCrop {
    static constexpr const char* name = "CenterSpatialCrop";
    std::vector<Index> roi_size;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("roi_size", c.roi_size, "the most size of each spatial axis (<= 0: as it is)"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const {
        const char* op = "vit3d::transforms::CenterSpatialCrop";
        detail::check_spatial_image(image, op);
        const Shape n = image.spatial_shape();
        const std::vector<Index> size = detail::sizes_per_axis(roi_size, n, op, "roi_size");
        std::vector<Index> start(n.size()), end(n.size());
        for (std::size_t a = 0; a < n.size(); ++a) {
            start[a] = std::max<Index>(n[a] / 2 - size[a] / 2, 0);
            end[a] = std::min(start[a] + size[a], n[a]);
        }
        return detail::crop_or_pad(image, start, end, 0.0);
    }
};

// MONAI's ResizeWithPadOrCrop(spatial_size, method, mode="constant", value): a centre crop to at most
// spatial_size, then SpatialPad to it; SpatialPad's settings.
struct ResizeWithPadOrCrop : SpatialPad {
    static constexpr const char* name = "ResizeWithPadOrCrop";

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const {
        return SpatialPad::operator()(CenterSpatialCrop{spatial_size}(image));
    }
};

// MONAI's CropForeground(select_fn=lambda x: x > threshold, channel_indices, margin, allow_smaller,
// k_divisible, mode="constant", value).
struct CropForeground {
    static constexpr const char* name = "CropForeground";
    double threshold = 0;  // foreground: voxels > threshold (MONAI's default select_fn is x > 0)
    std::vector<Index> channel_indices;  // the channels that decide; empty: all
    std::vector<Index> margin{0};
    bool allow_smaller = false;
    std::vector<Index> k_divisible{1};
    double value = 0;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("threshold", c.threshold,
                "foreground is the voxels above it (MONAI's select_fn x > threshold)"));
        f(field("channel_indices", c.channel_indices, "the channels whose foreground counts (empty: all)"));
        f(field("margin", c.margin, "voxels added to the box on each side, per axis or one for all")
              .non_negative());
        f(field("allow_smaller", c.allow_smaller, "keep the box inside the image instead of padding"));
        f(field("k_divisible", c.k_divisible, "grow the box to a multiple of this, per axis or one for all"));
        f(field("value", c.value, "the value of padded voxels"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    // The box [start, end) MONAI crops to.
    template <class T>
    std::pair<std::vector<Index>, std::vector<Index>> bounding_box(const SpatialImage<T>& image) const;

    template <class T>
    SpatialImage<T> operator()(const SpatialImage<T>& image) const {
        const auto [start, end] = bounding_box(image);
        detail::check_pad_value(value, "vit3d::transforms::CropForeground");
        return detail::crop_or_pad(image, start, end, value);
    }
};

template <class T>
std::pair<std::vector<Index>, std::vector<Index>> CropForeground::bounding_box(
    const SpatialImage<T>& image) const {
    const char* op = "vit3d::transforms::CropForeground";
    detail::check_spatial_image(image, op);
    if (!std::isfinite(threshold))
        throw std::invalid_argument(message(op, ": expected a finite threshold, got ", threshold));
    const Shape n = image.spatial_shape();
    const std::size_t rank = n.size();
    std::vector<Index> channels = channel_indices;
    if (channels.empty())
        for (Index c = 0; c < image.channels(); ++c) channels.push_back(c);
    for (const Index c : channels)
        if (c < 0 || c >= image.channels())
            throw std::invalid_argument(
                message(op, ": channel_indices: expected channels in [0, ", image.channels(), "), got ", c));
    const auto per_axis = [&](const std::vector<Index>& v, const char* what) {
        if (v.size() != 1 && v.size() != rank)
            throw std::invalid_argument(message(op, ": expected ", what, " with 1 or ", rank,
                                                " entries (one per axis), got ", v.size()));
        std::vector<Index> out(rank);
        for (std::size_t a = 0; a < rank; ++a) out[a] = v.size() == 1 ? v[0] : v[a];
        return out;
    };
    const std::vector<Index> pad = per_axis(margin, "margin"), k = per_axis(k_divisible, "k_divisible");
    for (const Index m : pad)
        if (m < 0) throw std::invalid_argument(message(op, ": expected margins >= 0, got ", m));
    // First and last foreground index along each axis (any channel, any position on the other axes).
    std::array<Index, 3> size{1, 1, 1};
    for (std::size_t a = 0; a < rank; ++a) size[3 - rank + a] = n[a];
    std::array<Index, 3> first{size[0], size[1], size[2]}, last{-1, -1, -1};
    const T* data = image.data.data();
    const Index plane = size[0] * size[1] * size[2];
    for (const Index c : channels)
        for (Index i = 0; i < size[0]; ++i)
            for (Index j = 0; j < size[1]; ++j) {
                const T* row = data + c * plane + (i * size[1] + j) * size[2];
                for (Index l = 0; l < size[2]; ++l)
                    if (static_cast<double>(row[l]) > threshold) {
                        first[0] = std::min(first[0], i), last[0] = std::max(last[0], i);
                        first[1] = std::min(first[1], j), last[1] = std::max(last[1], j);
                        first[2] = std::min(first[2], l), last[2] = std::max(last[2], l);
                    }
            }
    std::vector<Index> start(rank, 0), end(rank, 0);
    if (last[2] < 0) return {start, end};  // no foreground: MONAI's all-zero box
    for (std::size_t a = 0; a < rank; ++a) {
        const std::size_t b = 3 - rank + a;
        start[a] = first[b] - pad[a];
        end[a] = last[b] + pad[a] + 1;
        if (allow_smaller) {
            start[a] = std::max<Index>(start[a], 0);
            end[a] = std::min(end[a], n[a]);
        }
        // Grown to a multiple of k (k <= 0: as it is), the extra split as SpatialPad splits it.
        const Index box = end[a] - start[a];
        const Index grown = k[a] > 0 ? (box + k[a] - 1) / k[a] * k[a] : box;
        start[a] -= (grown - box) / 2;
        end[a] = start[a] + grown;
    }
    return {start, end};
}

}  // namespace vit3d::transforms
