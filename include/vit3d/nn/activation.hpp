#pragma once
// Elementwise activations of the ViT family (tanh: MONAI's classification head). nn.GELU() in every reference
// model is the exact erf form; the tanh approximation exists for checkpoints trained with it (timm's
// "gelu_tanh"). quick_gelu is OpenAI CLIP's x * sigmoid(1.702 x); silu (x * sigmoid(x)) gates SwiGLU MLPs;
// sigmoid gates timm's GluMlp by default.

#include <cmath>
#include <string>
#include <type_traits>

#include "vit3d/core/cpu.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/activation_kernel.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

enum class Activation { gelu, gelu_tanh, quick_gelu, silu, sigmoid, relu, tanh, identity };

constexpr auto enum_names(Activation) {
    return enum_table<Activation>({{Activation::gelu, "gelu"},
                                   {Activation::gelu_tanh, "gelu_tanh"},
                                   {Activation::quick_gelu, "quick_gelu"},
                                   {Activation::silu, "silu"},
                                   {Activation::sigmoid, "sigmoid"},
                                   {Activation::relu, "relu"},
                                   {Activation::tanh, "tanh"},
                                   {Activation::identity, "identity"}});
}

inline const char* activation_name(Activation a) { return enum_name(a); }

// 0.5 x (1 + erf(x / sqrt(2))), evaluated in double and rounded once.
template <class T>
T gelu(T x) {
    const double v = static_cast<double>(x);
    return static_cast<T>(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch.nn.GELU(approximate="tanh").
template <class T>
T gelu_tanh(T x) {
    const double v = static_cast<double>(x);
    return static_cast<T>(0.5 * v * (1.0 + std::tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))));
}

// 1 / (1 + exp(-x)), in double and rounded once.
template <class T>
T sigmoid(T x) {
    return static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
}

// x * sigmoid(1.702 x), as OpenAI CLIP's QuickGELU (timm's "quick_gelu").
template <class T>
T quick_gelu(T x) {
    const double v = static_cast<double>(x);
    return static_cast<T>(v / (1.0 + std::exp(-1.702 * v)));
}

// x * sigmoid(x), as torch.nn.SiLU.
template <class T>
T silu(T x) {
    const double v = static_cast<double>(x);
    return static_cast<T>(v / (1.0 + std::exp(-v)));
}

template <class T>
T relu(T x) {
    return x > T(0) ? x : T(0);  // NaN stays NaN, as torch.relu
}

// The activation over n contiguous elements, in place; `isa` is the kernel variant of the vectorised float
// ones.
template <class T>
void apply_activation_range(T* x, Index n, Activation a, Isa isa = detail::active_isa()) {
    switch (a) {
        case Activation::gelu:
            if constexpr (std::is_same_v<T, float>) {
                detail::gelu_inplace(x, n, isa);
            } else {
                for (Index i = 0; i < n; ++i) x[i] = gelu(x[i]);
            }
            return;
        case Activation::gelu_tanh:
            if constexpr (std::is_same_v<T, float>) {
                detail::gelu_tanh_inplace(x, n, isa);
            } else {
                for (Index i = 0; i < n; ++i) x[i] = gelu_tanh(x[i]);
            }
            return;
        case Activation::quick_gelu:
        case Activation::silu:
            if constexpr (std::is_same_v<T, float>) {
                detail::swish_inplace(x, n, a == Activation::silu ? 1.0f : 1.702f, isa);
            } else {
                for (Index i = 0; i < n; ++i) x[i] = a == Activation::silu ? silu(x[i]) : quick_gelu(x[i]);
            }
            return;
        case Activation::sigmoid:
            if constexpr (std::is_same_v<T, float>) {
                detail::sigmoid_inplace(x, n, isa);
            } else {
                for (Index i = 0; i < n; ++i) x[i] = sigmoid(x[i]);
            }
            return;
        case Activation::relu:
            for (Index i = 0; i < n; ++i) x[i] = (x[i] > T(0) || x[i] != x[i]) ? x[i] : T(0);
            return;
        case Activation::tanh:
            for (Index i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
            return;
        case Activation::identity:
            return;
    }
}

// Applies the activation to every element in place, on vit3d::num_threads() threads for large tensors.
// The float GELUs, SiLU, QuickGELU and sigmoid are vectorised (detail/activation_kernel.hpp); double stays
// the exact scalar functions.
template <class T>
void apply_activation(Tensor<T>& x, Activation a) {
    if (a == Activation::identity || x.size() == 0) return;
    T* data = x.data();
    const Isa isa = detail::active_isa();  // outside the region: reading VIT3D_ISA may throw
    detail::parallel_for(x.size(), Index(1) << 15, [&](Index begin, Index end) {
        apply_activation_range(data + begin, end - begin, a, isa);
    });
}

template <class T>
Tensor<T> activate(Tensor<T> x, Activation a) {
    apply_activation(x, a);
    return x;
}

}  // namespace vit3d::nn

#define VIT3D_ACTIVATION_INSTANCES(X, T) \
    X(void vit3d::nn::apply_activation_range<T>(T*, vit3d::Index, vit3d::nn::Activation, vit3d::Isa))
VIT3D_EXTERN_INSTANCES(VIT3D_ACTIVATION_INSTANCES)
