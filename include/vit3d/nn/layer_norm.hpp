#pragma once
// nn.LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with the biased
// variance as PyTorch. eps differs between reference libraries and is part of a model's definition:
// 1e-6 in torchvision's and timm's ViTs, 1e-5 (PyTorch's default) in vit-pytorch, MONAI and
// nn.TransformerEncoderLayer.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <string>

#include "vit3d/core/error.hpp"
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

    // x: [..., D] -> [..., D]. Mean and variance of each row are accumulated in double (two passes), so a
    // float row of thousands of values loses nothing to the accumulation.
    Tensor<T> forward(const Tensor<T>& x) const {
        const Index d = weight.size();
        if (bias.size() != d || x.rank() < 1 || x.dim(-1) != d)
            throw shape_error("vit3d::nn::LayerNorm::forward: expected input [..., " + std::to_string(d) +
                              "] and weight/bias [" + std::to_string(d) + "], got input " +
                              shape_to_string(x.shape()) + ", weight " + shape_to_string(weight.shape()) +
                              ", bias " + shape_to_string(bias.shape()));
        Tensor<T> y = Tensor<T>::empty(x.shape());
        const Index rows = d == 0 ? 0 : x.size() / d;
        using Row = Eigen::Array<T, Eigen::Dynamic, 1>;
        const Eigen::Map<const Row> g(weight.data(), d), b(bias.data(), d);
        const T* in_data = x.data();
        T* out_data = y.data();
        const Index rows_per_thread = std::max<Index>(1, (Index(1) << 14) / std::max<Index>(d, 1));
        vit3d::detail::parallel_for(rows, rows_per_thread, [&](Index first, Index last) {
            for (Index r = first; r < last; ++r) {
                const auto in = Eigen::Map<const Row>(in_data + r * d, d).template cast<double>();
                const double mean = in.sum() / static_cast<double>(d);
                const double var = (in - mean).square().sum() / static_cast<double>(d);
                const double inv = 1.0 / std::sqrt(var + eps);
                Eigen::Map<Row>(out_data + r * d, d) =
                    ((in - mean) * inv * g.template cast<double>() + b.template cast<double>())
                        .template cast<T>();
            }
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
