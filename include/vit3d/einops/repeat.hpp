#pragma once
// einops.repeat: rearrange plus new axes whose elements repeat the input (tile, broadcast, upsample).
//
//   auto cls = vit3d::repeat(cls_token, "1 1 d -> b 1 d", {{"b", batch}});
//   auto up  = vit3d::repeat(image, "h w -> (h 2) (w 2)");

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/einops/rearrange.hpp"

namespace vit3d {

// A repeat pattern parsed once, with its axis lengths (see einops::CompiledCopyPattern).
using Repeat = einops::CompiledCopyPattern<einops::Operation::repeat>;

// einops.repeat(x, pattern, **lengths): every new named axis needs a length; numbers on the right are
// new anonymous axes of that length.
template <class T>
Tensor<T> repeat(const Tensor<T>& x, const std::string& pattern, const AxisLengths& lengths = {}) {
    return detail::apply_copy(*einops::cached_pattern(pattern, einops::Operation::repeat), x, lengths);
}

template <class T>
Tensor<T> repeat(const std::vector<Tensor<T>>& xs, const std::string& pattern,
                 const AxisLengths& lengths = {}) {
    return repeat(stack(xs, 0), pattern, lengths);
}

}  // namespace vit3d
