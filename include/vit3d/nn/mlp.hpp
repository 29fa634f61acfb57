#pragma once
// The transformer feed-forward block (dropout is absent at inference), in the kinds timm builds:
//   - mlp:           fc2(act(fc1 x))                                   timm Mlp, every classic ViT
//   - glu:           fc1 x = [a, b] (halves); fc2(a * act(b))          timm GluMlp
//   - swiglu_packed: fc1 x = [a, b] (halves); fc2(act(a) * b)          timm SwiGLUPacked
//   - swiglu:        fc2(act(fc1_g x) * fc1_x x)                       timm SwiGLU (EVA-02, AIMv2, ...)
// each with an optional norm of the hidden features before fc2 (timm's scale_mlp_norm, EVA's sub-LN).
// `hidden` is always the width fc2 reads; a packed fc1 has twice as many outputs. Parameter names follow
// timm ("fc1", "fc1_g", "fc1_x", "norm", "fc2"); the weight loaders map torchvision's "mlp.0"/"mlp.3",
// vit-pytorch's "net.1"/"net.4" and MONAI's "linear1"/"linear2" onto them.

#include <optional>
#include <string>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/norm.hpp"

namespace vit3d::nn {

enum class MlpKind { mlp, glu, swiglu_packed, swiglu };

constexpr auto enum_names(MlpKind) {
    return enum_table<MlpKind>({{MlpKind::mlp, "mlp"},
                                {MlpKind::glu, "glu"},
                                {MlpKind::swiglu_packed, "swiglu_packed"},
                                {MlpKind::swiglu, "swiglu"}});
}

// The fields' meanings are in list_fields.
struct MlpConfig {
    Index dim = 768;
    Index hidden = 3072;
    MlpKind kind = MlpKind::mlp;
    Activation activation = Activation::gelu;
    bool bias = true;
    bool norm = false;
    NormKind norm_kind = NormKind::layer_norm;
    bool norm_bias = true;
    double eps = 1e-6;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("dim", c.dim, "width of the input and the output").positive());
        f(field("hidden", c.hidden, "width of the hidden features fc2 reads").positive());
        f(field("kind", c.kind, "plain, or gated with a packed or split fc1"));
        f(field("activation", c.activation, "activation (of the gate, in the gated kinds)"));
        f(field("bias", c.bias, "the Linear layers have biases"));
        f(field("norm", c.norm, "a norm of the hidden features before fc2"));
        f(field("norm_kind", c.norm_kind, "that norm's kind"));
        f(field("norm_bias", c.norm_bias, "that norm has a bias (layer_norm)"));
        f(field("eps", c.eps, "that norm's epsilon").positive());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

template <class T>
struct Mlp {
    Linear<T> fc1;                   // [hidden, dim]; packed kinds: [2 * hidden, dim]; swiglu: the gate fc1_g
    std::optional<Linear<T>> fc1_x;  // swiglu: [hidden, dim], the gated values
    std::optional<Norm<T>> norm;     // [hidden]
    Linear<T> fc2;                   // [dim, hidden]
    Activation activation = Activation::gelu;
    MlpKind kind = MlpKind::mlp;

    Mlp() = default;
    Mlp(Index dim, Index hidden, Activation act = Activation::gelu, bool with_bias = true)
        : Mlp(MlpConfig{dim, hidden, MlpKind::mlp, act, with_bias}) {}
    explicit Mlp(const MlpConfig& c)
        : fc1(c.dim, packed(c.kind) ? 2 * c.hidden : c.hidden, c.bias),
          fc2(c.hidden, c.dim, c.bias),
          activation(c.activation),
          kind(c.kind) {
        if (c.kind == MlpKind::swiglu) fc1_x = Linear<T>(c.dim, c.hidden, c.bias);
        if (c.norm) norm = Norm<T>(c.hidden, c.eps, c.norm_kind, c.norm_bias);
    }

    Index hidden() const { return fc2.in_features(); }

    // x: [..., dim] -> [..., dim]
    Tensor<T> forward(const Tensor<T>& x) const {
        Tensor<T> h = fc1.forward(x);
        if (kind == MlpKind::mlp) {
            apply_activation(h, activation);
        } else if (kind == MlpKind::swiglu) {
            apply_activation(h, activation);
            h *= fc1_x->forward(x);
        } else {
            h = gate_packed(h);
        }
        if (norm) h = norm->forward(h);
        return fc2.forward(h);
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    static bool packed(MlpKind k) { return k == MlpKind::glu || k == MlpKind::swiglu_packed; }

    // [..., 2H] = [a, b] -> [..., H]: a * act(b) (glu) or act(a) * b (swiglu_packed), one row at a time.
    Tensor<T> gate_packed(Tensor<T>& ab) const {
        const Index H = hidden();
        if (ab.dim(-1) != 2 * H)
            throw shape_error(message("vit3d::nn::Mlp::forward: a packed fc1 gives ", ab.dim(-1),
                                      " features, expected 2 x ", H));
        Shape shape = ab.shape();
        shape.back() = H;
        Tensor<T> out = Tensor<T>::empty(shape);
        const Index rows = ab.size() / (2 * H);
        const Index gate = kind == MlpKind::glu ? H : 0;  // where the activated half starts in a row
        T* in = ab.data();
        T* result = out.data();
        const Isa isa = detail::active_isa();  // outside the region: reading VIT3D_ISA may throw
        detail::parallel_for(rows, std::max<Index>(1, (Index(1) << 14) / H), [&](Index first, Index last) {
            for (Index r = first; r < last; ++r) {
                T* row = in + r * 2 * H;
                apply_activation_range(row + gate, H, activation, isa);
                const T* other = row + (H - gate);
                for (Index j = 0; j < H; ++j) result[r * H + j] = row[gate + j] * other[j];
            }
        });
        return out;
    }

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.fc1.visit_parameters(f, join_name(prefix, self.kind == MlpKind::swiglu ? "fc1_g" : "fc1"));
        if (self.fc1_x) self.fc1_x->visit_parameters(f, join_name(prefix, "fc1_x"));
        if (self.norm) self.norm->visit_parameters(f, join_name(prefix, "norm"));
        self.fc2.visit_parameters(f, join_name(prefix, "fc2"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_MLP_INSTANCES(X, T) X(struct vit3d::nn::Mlp<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_MLP_INSTANCES)
