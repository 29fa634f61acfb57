#pragma once
// The normalisation layers of ViT blocks over the last axis, one module for the kinds a model may use:
//   - layer_norm: (x - mean) / sqrt(var + eps) * weight [+ bias], the biased variance, as nn.LayerNorm
//                 (with or without bias, as LayerNorm(bias=False));
//   - rms_norm:   x / sqrt(mean(x^2) + eps) * weight, as timm's RmsNorm and torch's nn.RMSNorm.
// Parameter names: "<prefix>.weight", "<prefix>.bias" (layer_norm with bias only).

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/layer_norm_kernel.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

enum class NormKind { layer_norm, rms_norm };

constexpr auto enum_names(NormKind) {
    return enum_table<NormKind>({{NormKind::layer_norm, "layer_norm"}, {NormKind::rms_norm, "rms_norm"}});
}

template <class T>
struct Norm {
    NormKind kind = NormKind::layer_norm;
    Tensor<T> weight;               // [D], ones at construction
    std::optional<Tensor<T>> bias;  // [D], zeros at construction; layer_norm only, and optional there
    double eps = 1e-5;

    Norm() = default;
    explicit Norm(Index dim, double epsilon = 1e-5, NormKind k = NormKind::layer_norm, bool with_bias = true)
        : kind(k), weight(Tensor<T>::ones({dim})), eps(epsilon) {
        if (with_bias && kind == NormKind::layer_norm) bias = Tensor<T>(Shape{dim});
    }

    Index dim() const { return weight.dim(0); }

    // x: [..., D] -> [..., D], rows on vit3d::num_threads() threads.
    Tensor<T> forward(const Tensor<T>& x) const {
        const Index d = dim();
        if (x.rank() < 1 || x.dim(-1) != d)
            throw shape_error(
                message("vit3d::nn::Norm::forward: expected input [..., ", d, "], got ", x.shape()));
        check_parameters();
        Tensor<T> y = Tensor<T>::empty(x.shape());
        const Index rows = d == 0 ? 0 : x.size() / d;
        const Isa isa = detail::active_isa();  // outside the region: reading VIT3D_ISA may throw
        detail::parallel_for(rows, std::max<Index>(1, (Index(1) << 14) / std::max<Index>(d, 1)),
                             [&](Index first, Index last) {
                                 normalize(x.data() + first * d, y.data() + first * d, last - first, isa);
                             });
        return y;
    }

    // out[r] = norm(in[r]) for `rows` contiguous rows of D elements, on the calling thread; in place when
    // in == out (attention's per-head q and k norms call it token by token). The caller checks the shapes
    // (check_parameters).
    void normalize(const T* in, T* out, Index rows, Isa isa) const {
        const Index d = dim();
        if (kind == NormKind::rms_norm) {
            for (Index r = 0; r < rows; ++r) rms_norm_row(in + r * d, out + r * d);
            return;
        }
        if (bias) {
            detail::layer_norm_rows(in, out, 0, rows, d, weight.data(), bias->data(), eps, isa);
            return;
        }
        const std::vector<T> zeros(static_cast<std::size_t>(d), T(0));
        detail::layer_norm_rows(in, out, 0, rows, d, weight.data(), zeros.data(), eps, isa);
    }

    void check_parameters() const {
        if (weight.rank() != 1 || (bias && bias->shape() != weight.shape()) ||
            (bias && kind == NormKind::rms_norm))
            throw shape_error(message(
                "vit3d::nn::Norm: expected a weight [D] and, for a layer_norm, an optional bias [D], got ",
                kind, " weight ", weight.shape(), ", bias ",
                (bias ? shape_to_string(bias->shape()) : std::string("none"))));
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    // The mean square in double (four partial sums), then one multiplier per element.
    void rms_norm_row(const T* x, T* y) const {
        const Index d = dim();
        double s[4] = {0, 0, 0, 0};
        Index i = 0;
        for (; i + 4 <= d; i += 4)
            for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(x[i + k]) * static_cast<double>(x[i + k]);
        for (; i < d; ++i) s[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
        const T scale =
            static_cast<T>(1.0 / std::sqrt((s[0] + s[1] + s[2] + s[3]) / static_cast<double>(d) + eps));
        const T* w = weight.data();
        for (Index j = 0; j < d; ++j) y[j] = x[j] * scale * w[j];
    }

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "weight"), self.weight);
        if (self.bias) f(join_name(prefix, "bias"), *self.bias);
    }
};

}  // namespace vit3d::nn

#define VIT3D_NORM_INSTANCES(X, T) X(struct vit3d::nn::Norm<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_NORM_INSTANCES)
