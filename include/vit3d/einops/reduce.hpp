#pragma once
// einops.reduce: rearrange plus a reduction (sum, mean, min, max, prod) over the input axes the output
// leaves out.
//
//   auto pooled = vit3d::reduce(tokens, "b n d -> b d", vit3d::Reduction::mean);
//   auto pool2x = vit3d::reduce(image, "b c (h 2) (w 2) -> b c h w", vit3d::Reduction::max);
//
// The input is read once in memory order and accumulated into the output, in double for float
// tensors (sum, mean, prod), so long reductions do not lose float32 precision. min and max propagate
// NaN as torch.amin / torch.amax do.

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/message.hpp"
#include "vit3d/einops/pattern.hpp"
#include "vit3d/einops/recipe.hpp"
#include "vit3d/tensor/ops.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d {

enum class Reduction { sum, mean, min, max, prod };

constexpr auto enum_names(Reduction) {
    return enum_table<Reduction>({{Reduction::sum, "sum"},
                                  {Reduction::mean, "mean"},
                                  {Reduction::min, "min"},
                                  {Reduction::max, "max"},
                                  {Reduction::prod, "prod"}});
}

inline const char* reduction_name(Reduction r) { return enum_name(r); }

}  // namespace vit3d

namespace vit3d::detail {

template <class T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, T>;

struct AddInto {
    template <class A, class T>
    void operator()(A& acc, T v) const {
        acc += static_cast<A>(v);
    }
};
struct MultiplyInto {
    template <class A, class T>
    void operator()(A& acc, T v) const {
        acc *= static_cast<A>(v);
    }
};
struct MinInto {
    template <class A, class T>
    void operator()(A& acc, T v) const {
        const A a = static_cast<A>(v);
        if (a < acc || a != a) acc = a;  // a != a: NaN wins and then stays
    }
};
struct MaxInto {
    template <class A, class T>
    void operator()(A& acc, T v) const {
        const A a = static_cast<A>(v);
        if (a > acc || a != a) acc = a;
    }
};

// acc[o] op= x[i] over the loop nest (dst = accumulator offsets, 0 along reduced axes; src = input).
template <class T, class A, class Combine>
void accumulate(A* acc, const T* x, LoopNest nest, Combine combine) {
    if (!simplify(nest)) return;
    if (nest.dims.empty()) {
        combine(acc[0], x[0]);
        return;
    }
    const std::size_t inner = nest.dims.size() - 1;
    const Index n = nest.dims[inner], dst_step = nest.dst_strides[inner], src_step = nest.src_strides[inner];
    drop_axis(nest, inner);
    Index count = 1;
    for (Index len : nest.dims) count *= len;
    for_each_position(nest, 0, count, [&](Index dst, Index src) {
        A* a = acc + dst;
        const T* s = x + src;
        if (dst_step == 0) {
            A local = a[0];
            for (Index j = 0; j < n; ++j) combine(local, s[j * src_step]);
            a[0] = local;
        } else {
            for (Index j = 0; j < n; ++j) combine(a[j * dst_step], s[j * src_step]);
        }
    });
}

template <class T>
Tensor<T> apply_reduce(const einops::ParsedPattern& pattern, const Tensor<T>& x, Reduction reduction,
                       const AxisLengths& lengths) {
    const std::string context = message("vit3d::reduce(", quoted(pattern.text), ", ", reduction, ")");
    if (reduction == Reduction::mean && !std::is_floating_point_v<T>)
        throw pattern_error(message(context, ": mean needs a floating-point tensor"));
    const einops::Recipe recipe = einops::make_recipe(pattern, x.shape(), lengths, context);

    Tensor<T> out = Tensor<T>::empty(recipe.output_shape);
    if (out.size() == 0) return out;
    // Accumulator offsets of each input axis: the output's stride where the axis is kept, 0 where reduced.
    const Shape output_strides = row_major_strides(recipe.output_axes);
    Shape dst_strides(recipe.input_axes.size(), 0);
    for (std::size_t k = 0; k < recipe.output_from.size(); ++k)
        dst_strides[static_cast<std::size_t>(recipe.output_from[k])] = output_strides[k];
    Index reduced = 1;
    for (std::size_t i = 0; i < dst_strides.size(); ++i)
        if (dst_strides[i] == 0 && std::find(recipe.output_from.begin(), recipe.output_from.end(),
                                             static_cast<Index>(i)) == recipe.output_from.end())
            reduced *= recipe.input_axes[i];
    if (reduced == 0 && (reduction == Reduction::min || reduction == Reduction::max))
        throw shape_error(message(context, ": cannot take the ", reduction,
                                  " over zero elements (input shape ", x.shape(), ")"));

    using A = Accumulator<T>;
    A identity = A(0);
    if (reduction == Reduction::prod) identity = A(1);
    if (reduction == Reduction::min)
        identity = std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity()
                                                        : std::numeric_limits<A>::max();
    if (reduction == Reduction::max)
        identity = std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity()
                                                        : std::numeric_limits<A>::lowest();
    std::vector<A> acc(static_cast<std::size_t>(out.size()), identity);
    LoopNest nest{recipe.input_axes, dst_strides, row_major_strides(recipe.input_axes)};
    switch (reduction) {
        case Reduction::sum:
        case Reduction::mean:
            accumulate(acc.data(), x.data(), std::move(nest), AddInto{});
            break;
        case Reduction::prod:
            accumulate(acc.data(), x.data(), std::move(nest), MultiplyInto{});
            break;
        case Reduction::min:
            accumulate(acc.data(), x.data(), std::move(nest), MinInto{});
            break;
        case Reduction::max:
            accumulate(acc.data(), x.data(), std::move(nest), MaxInto{});
            break;
    }
    T* o = out.data();
    if (reduction == Reduction::mean) {
        // 0 / 0 gives NaN for an empty reduction, as torch.mean does.
        const A count = static_cast<A>(reduced);
        for (std::size_t i = 0; i < acc.size(); ++i) o[i] = static_cast<T>(acc[i] / count);
    } else {
        for (std::size_t i = 0; i < acc.size(); ++i) o[i] = static_cast<T>(acc[i]);
    }
    return out;
}

}  // namespace vit3d::detail

namespace vit3d {

// A reduce pattern parsed once, with its reduction and axis lengths.
class Reduce {
  public:
    Reduce(const std::string& pattern, Reduction reduction, AxisLengths lengths = {})
        : pattern_(einops::cached_pattern(pattern, einops::Operation::reduce)),
          reduction_(reduction),
          lengths_(std::move(lengths)) {
        detail::RecipeBuilder::check_axis_lengths(
            *pattern_, lengths_, einops::pattern_context(einops::Operation::reduce, pattern));
    }

    template <class T>
    Tensor<T> operator()(const Tensor<T>& x) const {
        return detail::apply_reduce(*pattern_, x, reduction_, lengths_);
    }

    const std::string& pattern() const { return pattern_->text; }
    Reduction reduction() const { return reduction_; }
    const AxisLengths& axis_lengths() const { return lengths_; }

  private:
    std::shared_ptr<const einops::ParsedPattern> pattern_;
    Reduction reduction_;
    AxisLengths lengths_;
};

// einops.reduce(x, pattern, reduction, **lengths).
template <class T>
Tensor<T> reduce(const Tensor<T>& x, const std::string& pattern, Reduction reduction,
                 const AxisLengths& lengths = {}) {
    return detail::apply_reduce(*einops::cached_pattern(pattern, einops::Operation::reduce), x, reduction,
                                lengths);
}

template <class T>
Tensor<T> reduce(const std::vector<Tensor<T>>& xs, const std::string& pattern, Reduction reduction,
                 const AxisLengths& lengths = {}) {
    return reduce(stack(xs, 0), pattern, reduction, lengths);
}

}  // namespace vit3d
