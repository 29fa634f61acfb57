#pragma once
// The transformer feed-forward block (dropout is absent at inference), in the kinds timm builds:
//   - mlp:           fc2(act(fc1 x))                                   timm Mlp, every classic ViT
//   - glu:           fc1 x = [a, b] (halves); fc2(a * act(b))          timm GluMlp
//   - swiglu_packed: fc1 x = [a, b] (halves); fc2(act(a) * b)          timm SwiGLUPacked
//   - swiglu:        fc2(act(fc1_g x) * fc1_x x)                       timm SwiGLU (EVA-02, AIMv2, ...)
// each with an optional norm of the hidden features before fc2 (timm's scale_mlp_norm, EVA's sub-LN).
// The activation runs inside fc1's GEMM, on each block of its output as it is finished. The gated kinds go
// further: one GEMM computes the gate and the value of each output side by side (their weights packed half a
// panel each, kept between calls in place of the Linear layers' own packs) and writes act(gate) * value,
// so the 2 * hidden features of fc1 never reach memory. Results are those of the unfused computation, bit for
// bit. In int8 (nn::set_precision; a precision visitor is shown fc1, fc1_x and fc2 themselves) the gated
// kinds run unfused: fc1 (and fc1_x) as int8 Linear layers, then act(gate) * value in float.
// `hidden` is always the width fc2 reads; a packed fc1 has twice as many outputs. Parameter names follow
// timm ("fc1", "fc1_g", "fc1_x", "norm", "fc2"); the weight loaders map torchvision's "mlp.0"/"mlp.3",
// vit-pytorch's "net.1"/"net.4" and MONAI's "linear1"/"linear2" onto them.

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/detail/gemm_kernel.hpp"
#include "vit3d/detail/threading.hpp"
#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/nn/weight_pack_cache.hpp"

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
        Tensor<T> h;
        if (kind == MlpKind::mlp) {
            h = fc1.forward(x, activation);
        } else if (fuses_gate()) {
            h = gated_product(x);
        } else {
            gated_pack_.release();  // one made before (in f32) is not read
            if (kind == MlpKind::swiglu) {
                h = fc1.forward(x, activation);
                h *= fc1_x->forward(x);
            } else {
                h = fc1.forward(x);
                h = gate_packed(h);
            }
        }
        if (norm) h = norm->forward(h);
        return fc2.forward(h);
    }

    // Packs the gated kinds' fc1 weights for their GEMM now (nn::pack_weights shows it the Mlp in place of
    // fc1 and fc1_x; the plain kind's fc1 and every fc2 pack as Linear layers).
    void pack_weight() const {
        if (fuses_gate()) (void)gated_weights(detail::active_isa(), true);
    }
    Index packed_weight_bytes() const { return gated_pack_.bytes(); }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    static bool packed(MlpKind k) { return k == MlpKind::glu || k == MlpKind::swiglu_packed; }

    // The gated kinds' fc1 weights in the gated GEMM's layout, biases in its column order.
    struct GatedWeights {
        Isa isa = Isa::generic;
        detail::GemmWeights<T> weights;
        std::vector<T> bias;  // [weights.N]; empty without biases
        Index bytes() const { return weights.bytes() + static_cast<Index>(bias.size() * sizeof(T)); }
    };

    // act(gate) * value from the gated GEMM's block of one half-panel of outputs, into `out`.
    struct GatedEpilogue {
        Activation activation;
        Isa isa;
        T* out;
        Index hidden, half;

        static void apply(const void* self, T* c, Index ldc, Index row, Index rows, Index col, Index) {
            const auto& e = *static_cast<const GatedEpilogue*>(self);
            const Index first = col / (2 * e.half) * e.half, count = std::min(e.half, e.hidden - first);
            for (Index r = 0; r < rows; ++r) {
                T* gate = c + r * ldc;
                const T* value = gate + e.half;
                apply_activation_range(gate, count, e.activation, e.isa);
                T* result = e.out + (row + r) * e.hidden + first;
                for (Index j = 0; j < count; ++j) result[j] = gate[j] * value[j];
            }
        }
    };

    // Whether the gated kinds run as one gated GEMM: fc1 (and fc1_x) compute in f32, vit3d's own GEMM runs
    // (not a BLAS) and its variant's panel splits in halves.
    bool fuses_gate() const {
        return kind != MlpKind::mlp && fc1.precision() == Precision::f32 &&
               (!fc1_x || fc1_x->precision() == Precision::f32) && detail::own_gemm_runs<T> &&
               detail::gated_gemm_supported<T>(detail::active_isa());
    }

    // The tensors a gated pack is made from: gate and value weights, then their biases.
    typename detail::StampedPackCache<T, GatedWeights, 4>::Sources gated_sources() const {
        const Linear<T>& value = kind == MlpKind::swiglu ? *fc1_x : fc1;
        const bool split = kind == MlpKind::swiglu;
        return {&fc1.weight, split ? &value.weight : nullptr, fc1.bias ? &*fc1.bias : nullptr,
                split && value.bias ? &*value.bias : nullptr};
    }

    // The kept gated pack for `isa` (made when `make`), or null.
    std::shared_ptr<const GatedWeights> gated_weights(Isa isa, bool make) const {
        check_gated();
        return gated_pack_.get(
            gated_sources(), isa, make, "vit3d::nn::Mlp::forward", [&] { return make_gated_weights(isa); },
            [&](const GatedWeights& pack) {
                const GatedRows rows = gated_rows();
                const std::vector<T> bias = gated_bias(rows, isa);  // bit for bit, as the weights
                return pack.weights.matches_gated(rows.gate, rows.value, fc1.in_features(), hidden()) &&
                       pack.bias.size() == bias.size() &&
                       std::memcmp(pack.bias.data(), bias.data(), bias.size() * sizeof(T)) == 0;
            });
    }

    // Where the gate's and the value's weight and bias rows start: fc1 and fc1_x (swiglu), or fc1's halves
    // [a, b] with b the gate (glu) or a (swiglu_packed).
    struct GatedRows {
        const T *gate, *value, *gate_bias, *value_bias;
    };
    GatedRows gated_rows() const {
        const Index H = hidden(), D = fc1.in_features();
        const T* bias = fc1.bias ? fc1.bias->data() : nullptr;
        if (kind == MlpKind::swiglu)
            return {fc1.weight.data(), fc1_x->weight.data(), bias,
                    fc1_x->bias ? fc1_x->bias->data() : nullptr};
        const Index gate = kind == MlpKind::glu ? H : 0, value = H - gate;
        return {fc1.weight.data() + gate * D, fc1.weight.data() + value * D, bias ? bias + gate : nullptr,
                bias ? bias + value : nullptr};
    }

    // The biases in the gated pack's column order (zero where absent and past hidden); empty without biases.
    std::vector<T> gated_bias(const GatedRows& rows, Isa isa) const {
        if (!rows.gate_bias && !rows.value_bias) return {};
        const Index H = hidden(), half = detail::kernel_shape<T>(isa).columns() / 2;
        std::vector<T> bias(static_cast<std::size_t>(detail::ceil_div(H, half) * 2 * half), T(0));
        for (Index j = 0; j < H; ++j) {
            const auto at = static_cast<std::size_t>((j / half) * 2 * half + j % half);
            if (rows.gate_bias) bias[at] = rows.gate_bias[j];
            if (rows.value_bias) bias[at + static_cast<std::size_t>(half)] = rows.value_bias[j];
        }
        return bias;
    }

    GatedWeights make_gated_weights(Isa isa) const {
        const Index H = hidden(), D = fc1.in_features();
        const GatedRows rows = gated_rows();
        GatedWeights w;
        w.isa = isa;
        w.weights = detail::GemmWeights<T>::pack_gated(rows.gate, rows.value, D, H, D, isa, num_threads());
        w.bias = gated_bias(rows, isa);
        return w;
    }

    // The gated kinds' fc1 weights and biases fit dim and hidden.
    void check_gated() const {
        const Index H = hidden(), D = fc1.in_features();
        const bool split = kind == MlpKind::swiglu;
        const auto fits = [&](const Linear<T>& l, Index out) {
            return l.weight.rank() == 2 && l.weight.dim(0) == out && l.weight.dim(1) == D &&
                   (!l.bias || l.bias->shape() == Shape{out});
        };
        if (fc1.weight.rank() != 2 || !fits(fc1, split ? H : 2 * H) || (split && !(fc1_x && fits(*fc1_x, H))))
            throw shape_error(message(
                "vit3d::nn::Mlp::forward: the gated fc1 does not fit ", H, " hidden features: fc1 weight ",
                fc1.weight.shape(), split && fc1_x ? message(", fc1_x weight ", fc1_x->weight.shape()) : ""));
    }

    // x [..., dim] -> act(gate) * value [..., hidden] in one GEMM.
    Tensor<T> gated_product(const Tensor<T>& x) const {
        const Index H = hidden(), D = fc1.in_features();
        if (x.rank() < 1 || x.dim(-1) != D)
            throw shape_error(
                message("vit3d::nn::Mlp::forward: expected input [..., ", D, "], got ", x.shape()));
        Shape shape = x.shape();
        shape.back() = H;
        Tensor<T> out = Tensor<T>::empty(shape);
        if (out.size() == 0) return out;
        const Index rows = x.size() / D;
        const Isa isa = detail::active_isa();
        std::shared_ptr<const GatedWeights> pack = gated_weights(isa, rows < detail::packed_weight_max_rows);
        if (!pack) pack = std::make_shared<const GatedWeights>(make_gated_weights(isa));  // kept none
        const GatedEpilogue gated{activation, isa, out.data(), H, detail::kernel_shape<T>(isa).columns() / 2};
        detail::packed_gemm_abt<T>(rows, pack->weights.N, D, x.data(), D, nullptr, D, nullptr, 0,
                                   pack->bias.empty() ? nullptr : pack->bias.data(), num_threads(), isa,
                                   &pack->weights, {&GatedEpilogue::apply, &gated, true});
        return out;
    }

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

    // Parameter tensors only: fc1's and fc1_x's tensors under a visitor that is shown layers, when the Mlp
    // shows itself in their place (to a visitor that packs or counts packs, not to one that wants every
    // Linear).
    template <class F>
    struct TensorsOnly {
        F& f;
        template <class Tensor>
        void operator()(const std::string& name, Tensor& tensor) const {
            f(name, tensor);
        }
    };

    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        if constexpr (std::is_base_of_v<LinearLayerVisitor, std::remove_cv_t<F>> &&
                      !std::is_base_of_v<EveryLinearVisitor, std::remove_cv_t<F>>) {
            if (self.fuses_gate()) {  // the gated pack stands for fc1's and fc1_x's
                f.layer(self);
                TensorsOnly<F> tensors{f};
                visit_fc1(self, tensors, prefix);
                return visit_rest(self, f, prefix);
            }
        }
        visit_fc1(self, f, prefix);
        visit_rest(self, f, prefix);
    }
    template <class Self, class F>
    static void visit_fc1(Self& self, F& f, const std::string& prefix) {
        self.fc1.visit_parameters(f, join_name(prefix, self.kind == MlpKind::swiglu ? "fc1_g" : "fc1"));
        if (self.fc1_x) self.fc1_x->visit_parameters(f, join_name(prefix, "fc1_x"));
    }
    template <class Self, class F>
    static void visit_rest(Self& self, F& f, const std::string& prefix) {
        if (self.norm) self.norm->visit_parameters(f, join_name(prefix, "norm"));
        self.fc2.visit_parameters(f, join_name(prefix, "fc2"));
    }

    detail::StampedPackCache<T, GatedWeights, 4> gated_pack_;
};

}  // namespace vit3d::nn

#define VIT3D_MLP_INSTANCES(X, T) X(struct vit3d::nn::Mlp<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_MLP_INSTANCES)
