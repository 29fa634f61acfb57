#pragma once
// nn.LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with the biased
// variance as PyTorch. eps differs between reference libraries and is part of a model's definition:
// 1e-6 in torchvision's and timm's ViTs, 1e-5 (PyTorch's default) in vit-pytorch, MONAI and
// nn.TransformerEncoderLayer.

#include <algorithm>
#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/layer_norm_kernel.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

template <class T>
struct LayerNorm {
    Tensor<T> weight;  // [D] ("<prefix>.weight"), ones at construction
    Tensor<T> bias;    // [D] ("<prefix>.bias"), zeros at construction
    double eps = 1e-5;

    LayerNorm() = default;
    explicit LayerNorm(Index dim, double epsilon = 1e-5)
        : weight(Tensor<T>::ones({dim})), bias(Shape{dim}), eps(epsilon) {}

    Index dim() const { return weight.dim(0); }

    // x: [..., D] -> [..., D]. Mean and variance of each row in double (detail/layer_norm_kernel.hpp).
    Tensor<T> forward(const Tensor<T>& x) const {
        const Index d = weight.size();
        if (bias.size() != d || x.rank() < 1 || x.dim(-1) != d)
            throw shape_error(message("vit3d::nn::LayerNorm::forward: expected input [..., ", d,
                                      "] and weight/bias [", d, "], got input ", x.shape(), ", weight ",
                                      weight.shape(), ", bias ", bias.shape()));
        Tensor<T> y = Tensor<T>::empty(x.shape());
        const Index rows = d == 0 ? 0 : x.size() / d;
        const Index rows_per_thread = std::max<Index>(1, (Index(1) << 14) / std::max<Index>(d, 1));
        const Isa isa = detail::active_isa();  // outside the region: reading VIT3D_ISA may throw
        detail::parallel_for(rows, rows_per_thread, [&](Index first, Index last) {
            detail::layer_norm_rows(x.data(), y.data(), first, last, d, weight.data(), bias.data(), eps, isa);
        });
        return y;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "weight"), self.weight);
        f(join_name(prefix, "bias"), self.bias);
    }
};

}  // namespace vit3d::nn

#define VIT3D_LAYER_NORM_INSTANCES(X, T) X(struct vit3d::nn::LayerNorm<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_LAYER_NORM_INSTANCES)
