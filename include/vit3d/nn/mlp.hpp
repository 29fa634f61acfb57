#pragma once
// The transformer feed-forward block: Linear -> activation -> Linear (dropout is absent at inference).
// Parameter names follow timm ("fc1", "fc2"); the weight loaders map torchvision's "mlp.0"/"mlp.3",
// vit-pytorch's "net.1"/"net.4" and MONAI's "linear1"/"linear2" onto them.

#include <string>

#include "vit3d/core/instances.hpp"
#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/linear.hpp"

namespace vit3d::nn {

template <class T>
struct Mlp {
    Linear<T> fc1;  // [hidden, dim]
    Linear<T> fc2;  // [dim, hidden]
    Activation activation = Activation::gelu;

    Mlp() = default;
    Mlp(Index dim, Index hidden, Activation act = Activation::gelu, bool with_bias = true)
        : fc1(dim, hidden, with_bias), fc2(hidden, dim, with_bias), activation(act) {}

    // x: [..., dim] -> [..., dim]
    Tensor<T> forward(const Tensor<T>& x) const {
        Tensor<T> h = fc1.forward(x);
        apply_activation(h, activation);
        return fc2.forward(h);
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.fc1.visit_parameters(f, join_name(prefix, "fc1"));
        self.fc2.visit_parameters(f, join_name(prefix, "fc2"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_MLP_INSTANCES(X, T) X(struct vit3d::nn::Mlp<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_MLP_INSTANCES)
