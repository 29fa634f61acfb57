#pragma once
// Elementwise activations of the ViT family (tanh: MONAI's classification head). nn.GELU() in every reference
// model is the exact erf form; the tanh approximation exists for checkpoints trained with it (timm's
// "gelu_tanh").

#include <cmath>
#include <string>

#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

enum class Activation { gelu, gelu_tanh, relu, tanh, identity };

inline const char* activation_name(Activation a) {
    switch (a) {
        case Activation::gelu:
            return "gelu";
        case Activation::gelu_tanh:
            return "gelu_tanh";
        case Activation::relu:
            return "relu";
        case Activation::tanh:
            return "tanh";
        case Activation::identity:
            return "identity";
    }
    return "?";
}

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

template <class T>
T relu(T x) {
    return x > T(0) ? x : T(0);  // NaN stays NaN, as torch.relu
}

// Applies the activation to every element in place.
template <class T>
void apply_activation(Tensor<T>& x, Activation a) {
    switch (a) {
        case Activation::gelu:
            for (T& v : x) v = gelu(v);
            return;
        case Activation::gelu_tanh:
            for (T& v : x) v = gelu_tanh(v);
            return;
        case Activation::relu:
            for (T& v : x) v = (v > T(0) || v != v) ? v : T(0);
            return;
        case Activation::tanh:
            for (T& v : x) v = std::tanh(v);
            return;
        case Activation::identity:
            return;
    }
}

template <class T>
Tensor<T> activate(Tensor<T> x, Activation a) {
    apply_activation(x, a);
    return x;
}

}  // namespace vit3d::nn
