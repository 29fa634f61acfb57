#pragma once
// Shapes are row-major, PyTorch dimension order ([B, C, H, W], [B, C, D, H, W]), outermost axis first.

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"

namespace vit3d {

using Shape = std::vector<Index>;

// "[1, 3, 224, 224]", as message() writes a shape.
inline std::string shape_to_string(const Shape& shape) { return message(shape); }

// Number of elements; throws when a length is negative or the product overflows Index.
inline Index shape_numel(const Shape& shape, const char* op = "vit3d::Shape") {
    Index n = 1;
    for (Index len : shape) {
        if (len < 0) throw shape_error(message(op, ": negative length in shape ", shape));
        if (len != 0 && n > std::numeric_limits<Index>::max() / len)
            throw shape_error(message(op, ": shape ", shape, " has too many elements"));
        n *= len;
    }
    return n;
}

// Element strides of a contiguous row-major tensor of this shape.
inline Shape row_major_strides(const Shape& shape) {
    Shape strides(shape.size());
    Index s = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        strides[i] = s;
        s *= shape[i];
    }
    return strides;
}

// Maps a possibly negative axis (-1 = last) onto [0, rank); throws naming the operation otherwise.
inline Index normalize_axis(Index axis, Index rank, const char* op) {
    if (axis < -rank || axis >= rank)
        throw shape_error(message(op, ": axis ", axis, " is out of range for rank ", rank));
    return axis < 0 ? axis + rank : axis;
}

// NumPy broadcasting: shapes are aligned at their last axis; each pair of lengths must be equal or
// contain a 1.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const std::size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (std::size_t i = 0; i < rank; ++i) {
        const Index la = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
        const Index lb = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
        if (la != lb && la != 1 && lb != 1)
            throw shape_error(message(op, ": shapes ", a, " and ", b, " cannot be broadcast (axis ", i, ": ",
                                      la, " vs ", lb, ")"));
        out[i] = la == 1 ? lb : la;
    }
    return out;
}

// Strides with which a contiguous tensor of shape `from` is read when broadcast to `to` (0 on
// broadcast axes). `to` must be a broadcast of `from`.
inline Shape broadcast_strides(const Shape& from, const Shape& to) {
    Shape strides(to.size(), 0);
    const Shape own = row_major_strides(from);
    const std::size_t offset = to.size() - from.size();
    for (std::size_t i = 0; i < from.size(); ++i) strides[offset + i] = from[i] == 1 ? 0 : own[i];
    return strides;
}

}  // namespace vit3d
