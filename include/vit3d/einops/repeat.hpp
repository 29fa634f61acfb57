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

// A repeat pattern parsed once, with its axis lengths.
class Repeat {
  public:
    explicit Repeat(const std::string& pattern, AxisLengths lengths = {})
        : pattern_(einops::cached_pattern(pattern, einops::Operation::repeat)), lengths_(std::move(lengths)) {
        einops::detail::RecipeBuilder::check_axis_lengths(
            *pattern_, lengths_, einops::pattern_context(einops::Operation::repeat, pattern));
    }

    template <class T>
    Tensor<T> operator()(const Tensor<T>& x) const {
        return einops::detail::apply_copy(*pattern_, x, lengths_);
    }

    // Writes the result into `out`, which must already have the result's shape and must not be `x`.
    template <class T>
    void into(const Tensor<T>& x, Tensor<T>& out) const {
        einops::detail::apply_copy(*pattern_, x, lengths_, &out);
    }

    const std::string& pattern() const { return pattern_->text; }
    const AxisLengths& axis_lengths() const { return lengths_; }

  private:
    std::shared_ptr<const einops::ParsedPattern> pattern_;
    AxisLengths lengths_;
};

// einops.repeat(x, pattern, **lengths): every new named axis needs a length; numbers on the right are
// new anonymous axes of that length.
template <class T>
Tensor<T> repeat(const Tensor<T>& x, const std::string& pattern, const AxisLengths& lengths = {}) {
    return einops::detail::apply_copy(*einops::cached_pattern(pattern, einops::Operation::repeat), x,
                                      lengths);
}

template <class T>
Tensor<T> repeat(const std::vector<Tensor<T>>& xs, const std::string& pattern,
                 const AxisLengths& lengths = {}) {
    return repeat(stack(xs, 0), pattern, lengths);
}

}  // namespace vit3d
