#pragma once
// einops.rearrange: reorder, split, merge, squeeze and unsqueeze axes with one pattern, in one pass over
// memory. Example, the 3D ViT patchify of a [B, C, F, H, W] volume:
//
//   auto tokens = vit3d::rearrange(ct, "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
//                                  {{"pf", 4}, {"p1", 16}, {"p2", 16}});
//
// For a pattern applied many times, keep a vit3d::Rearrange: it holds the parsed pattern and lengths.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vit3d/core/message.hpp"
#include "vit3d/einops/pattern.hpp"
#include "vit3d/einops/recipe.hpp"
#include "vit3d/tensor/ops.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::detail {

// rearrange and repeat: every output element is a copy of one input element (new repeat axes read
// with stride 0), so the whole operation is one strided copy. Writes into *out when given (its shape
// must be the result's), else into a new tensor.
template <class T>
Tensor<T> apply_copy(const einops::ParsedPattern& pattern, const Tensor<T>& x, const AxisLengths& lengths,
                     Tensor<T>* out = nullptr) {
    const std::string context = einops::pattern_context(pattern.operation, pattern.text);
    const einops::Recipe recipe = einops::make_recipe(pattern, x.shape(), lengths, context);
    Tensor<T> result;
    if (out) {
        if (out->shape() != recipe.output_shape)
            throw shape_error(message(context, ": output tensor has shape ", out->shape(), ", expected ",
                                      recipe.output_shape));
        if (out->data() == x.data() && x.size() > 0)
            throw shape_error(message(context, ": output tensor must not be the input tensor"));
    } else {
        result = Tensor<T>::empty(recipe.output_shape);
        out = &result;
    }
    if (out->size() == 0) return result;
    const Shape input_strides = row_major_strides(recipe.input_axes);
    LoopNest nest{recipe.output_axes, row_major_strides(recipe.output_axes), {}};
    for (Index from : recipe.output_from)
        nest.src_strides.push_back(from >= 0 ? input_strides[static_cast<std::size_t>(from)] : 0);
    copy_strided(out->data(), x.data(), std::move(nest));
    return result;
}

}  // namespace vit3d::detail

namespace vit3d {

namespace einops {

// A rearrange or repeat pattern parsed once, with its axis lengths, applicable to many tensors (and from
// many threads at once). Users see it as vit3d::Rearrange and vit3d::Repeat.
template <Operation Op>
class CompiledCopyPattern {
    static_assert(Op == Operation::rearrange || Op == Operation::repeat, "reduce has its own class");

  public:
    explicit CompiledCopyPattern(const std::string& pattern, AxisLengths lengths = {})
        : pattern_(cached_pattern(pattern, Op)), lengths_(std::move(lengths)) {
        detail::RecipeBuilder::check_axis_lengths(*pattern_, lengths_, pattern_context(Op, pattern));
    }

    template <class T>
    Tensor<T> operator()(const Tensor<T>& x) const {
        return detail::apply_copy(*pattern_, x, lengths_);
    }

    // Writes the result into `out`, which must already have the result's shape and must not be `x`: no
    // allocation, for loops that reuse their buffers.
    template <class T>
    void into(const Tensor<T>& x, Tensor<T>& out) const {
        detail::apply_copy(*pattern_, x, lengths_, &out);
    }

    const std::string& pattern() const { return pattern_->text; }
    const AxisLengths& axis_lengths() const { return lengths_; }

  private:
    std::shared_ptr<const ParsedPattern> pattern_;
    AxisLengths lengths_;
};

}  // namespace einops

using Rearrange = einops::CompiledCopyPattern<einops::Operation::rearrange>;

// einops.rearrange(x, pattern, **lengths). Throws pattern_error for a bad pattern or one that does not
// fit x's shape, naming the pattern and the offending axis.
template <class T>
Tensor<T> rearrange(const Tensor<T>& x, const std::string& pattern, const AxisLengths& lengths = {}) {
    return detail::apply_copy(*einops::cached_pattern(pattern, einops::Operation::rearrange), x, lengths);
}

// As einops, a list of equally shaped tensors is first stacked along a new leading axis.
template <class T>
Tensor<T> rearrange(const std::vector<Tensor<T>>& xs, const std::string& pattern,
                    const AxisLengths& lengths = {}) {
    return rearrange(stack(xs, 0), pattern, lengths);
}

}  // namespace vit3d
