#pragma once
// nn.Linear: y = x W^T + b over the last axis, with W stored [out, in] as in PyTorch. The weight is packed
// for the GEMM kernel once (at load, on request with nn::pack_weights, or at the first forward) and the pack
// kept until the weight is written; see core/weight_packing.hpp for when, when a write is seen, and how to
// turn packing off.
//
// A float layer computes in int8 after set_precision(Precision::int8) (nn::set_precision for a whole
// module): its weight is quantised per output row and packed for the int8 GEMM once, with its rounding error,
// kept and dropped as the float pack is, and the product runs through detail::int8_affine: activations
// quantised per row at every call, and per sample (an index of the input's first axis: [B, N, in] is B
// samples of N tokens, [B, in] B samples of one row) its outlier input channels in float and the rounding
// error on its mean row corrected, so that no sample's result depends on the others in the batch. In bf16
// (set_precision(Precision::bf16)) the weight is kept in bf16 and the product runs through
// detail::bf16_gemm_abt: activations rounded to bf16 at every call, sums in float. `weight` stays the float
// tensor it was in both: state_dict, saving and a return to f32 read it unchanged.

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "vit3d/core/error.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/detail/bf16_gemm.hpp"
#include "vit3d/detail/gemm.hpp"
#include "vit3d/detail/int8_linear.hpp"
#include "vit3d/nn/activation.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/weight_pack_cache.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

// y = x W^T + b for x [..., in], W the row-major [out, in] matrix at `weight`: one GEMM over all leading
// axes of x. Shared by Linear and by layers that keep their weight in another shape (conv patch kernels).
// `packed`, when not null, is `weight` packed once for the GEMM.
// `epilogue` works on each block of y as the GEMM finishes it (an activation, ActivationEpilogue).
template <class T>
Tensor<T> affine(const Tensor<T>& x, const T* weight, Index out, Index in, const Tensor<T>* bias,
                 const detail::GemmWeights<T>* packed = nullptr,
                 const detail::GemmEpilogue<T>& epilogue = {}) {
    Shape out_shape = x.shape();
    out_shape.back() = out;
    Tensor<T> y = Tensor<T>::empty(out_shape);
    if (y.size() == 0) return y;
    const Index rows = y.size() / out;
    detail::gemm_abt(rows, out, in, x.data(), in, weight, in, y.data(), out, bias ? bias->data() : nullptr,
                     packed, epilogue);
    return y;
}

// An activation applied to each block of a GEMM's output in place, while the block is in L1, instead of in
// a pass of its own over the whole output: the same function on the same values, so the same result.
template <class T>
struct ActivationEpilogue {
    Activation activation = Activation::identity;
    Isa isa = Isa::generic;

    detail::GemmEpilogue<T> epilogue() const {
        if (activation == Activation::identity) return {};
        return {&apply, this, false};
    }

  private:
    static void apply(const void* self, T* c, Index ldc, Index, Index rows, Index, Index cols) {
        const auto& e = *static_cast<const ActivationEpilogue*>(self);
        for (Index r = 0; r < rows; ++r) apply_activation_range(c + r * ldc, cols, e.activation, e.isa);
    }
};

template <class T>
struct Linear {
    Tensor<T> weight;               // [out, in]                (state_dict key "<prefix>.weight")
    std::optional<Tensor<T>> bias;  // [out], absent when bias=False ("<prefix>.bias")

    Linear() = default;
    // Zero parameters of the given size, to be filled by a weight loader or by hand.
    Linear(Index in_features, Index out_features, bool with_bias = true)
        : weight(Shape{out_features, in_features}) {
        if (with_bias) bias = Tensor<T>(Shape{out_features});
    }
    Linear(Tensor<T> w, std::optional<Tensor<T>> b) : weight(std::move(w)), bias(std::move(b)) { check(); }

    Index in_features() const { return weight.dim(1); }
    Index out_features() const { return weight.dim(0); }

    // x: [..., in] -> [..., out]. The product runs as one GEMM over all leading axes.
    Tensor<T> forward(const Tensor<T>& x) const { return forward(x, Activation::identity); }

    // activation(x W^T + b), the activation applied as the GEMM finishes each block of the output.
    Tensor<T> forward(const Tensor<T>& x, Activation activation) const {
        const ActivationEpilogue<T> act{activation, detail::active_isa()};
        return forward(x, act.epilogue());
    }

    // x W^T + b, `epilogue` working on each block of the output in place as the GEMM finishes it.
    Tensor<T> forward(const Tensor<T>& x, const detail::GemmEpilogue<T>& epilogue) const {
        check();
        if (x.rank() < 1 || x.dim(-1) != in_features())
            throw shape_error(message("vit3d::nn::Linear::forward: expected input [..., ", in_features(),
                                      "], got ", x.shape()));
        if (x.size() == 0)
            return affine(x, weight.data(), out_features(), in_features(), bias ? &*bias : nullptr);
        if (precision_ == Precision::int8) return forward_int8(x, epilogue);
        if (precision_ == Precision::bf16) return forward_bf16(x, epilogue);
        const Index rows = x.size() / in_features();
        const auto packed =
            packed_weight_.get(weight, detail::active_isa(), rows, "vit3d::nn::Linear::forward");
        return affine(x, weight.data(), out_features(), in_features(), bias ? &*bias : nullptr, packed.get(),
                      epilogue);
    }

    // The arithmetic of the product (core/precision.hpp). f32 unless set.
    Precision precision() const { return precision_; }

    // Computes the product in `precision` from the next forward on; int8 and bf16 for float layers only.
    // Drops the packs of the other precisions, if any.
    void set_precision(Precision precision) {
        if (precision != Precision::f32 && !std::is_same_v<T, float>)
            throw std::invalid_argument(
                message("vit3d::nn::Linear::set_precision: expected f32 for a layer of ",
                        std::is_same_v<T, double> ? "double" : "this scalar type", " (", precision,
                        " runs float layers only), got ", precision));
        if (precision == precision_) return;
        precision_ = precision;
        if (precision != Precision::f32) packed_weight_.release();
        if (precision != Precision::int8) int8_weight_.release();
        if (precision != Precision::bf16) bf16_weight_.release();
    }

    // Packs the weight for the GEMM of the layer's precision now, so that no forward has to (nothing when
    // packing is off).
    void pack_weight() const {
        check();
        if constexpr (std::is_same_v<T, float>) {
            if (precision_ == Precision::int8)
                return int8_weight_.pack(weight, detail::active_int8_kernel(),
                                         "vit3d::nn::Linear::pack_weight");
            if (precision_ == Precision::bf16)
                return bf16_weight_.pack(weight, detail::active_isa(), "vit3d::nn::Linear::pack_weight");
        }
        packed_weight_.pack(weight, detail::active_isa(), "vit3d::nn::Linear::pack_weight");
    }

    // Bytes of the packed copy of the weight this layer keeps between calls (core/weight_packing.hpp), for
    // the GEMM of its precision (int8: the quantised weight and its rounding error, with their row scales
    // and sums); 0 before it was packed, after the weight was written, or with packing off.
    Index packed_weight_bytes() const {
        return precision_ == Precision::int8   ? int8_weight_.bytes()
               : precision_ == Precision::bf16 ? bf16_weight_.bytes()
                                               : packed_weight_.bytes();
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        if constexpr (std::is_base_of_v<LinearLayerVisitor, std::remove_cv_t<F>>) f.layer(self);
        f(join_name(prefix, "weight"), self.weight);
        if (self.bias) f(join_name(prefix, "bias"), *self.bias);
    }

    // x W^T + b in int8 (float layers): the kept int8 pack, remade when the active int8 kernel is not the
    // one it was made for (after set_isa_cap, say).
    Tensor<T> forward_int8(const Tensor<T>& x, const detail::GemmEpilogue<T>& epilogue) const {
        if constexpr (std::is_same_v<T, float>) {
            Shape out_shape = x.shape();
            out_shape.back() = out_features();
            Tensor<T> y = Tensor<T>::empty(out_shape);
            const auto packed =
                int8_weight_.get(weight, detail::active_int8_kernel(), "vit3d::nn::Linear::forward");
            // Samples along the first axis: [B, ..., in] is B samples, [rows, in] rows of them.
            const Index samples = x.rank() >= 2 ? x.dim(0) : 1, rows = x.size() / in_features() / samples;
            detail::int8_affine(samples, rows, x.data(), weight.data(), *packed,
                                bias ? bias->data() : nullptr, y.data(), num_threads(), epilogue);
            return y;
        } else {
            throw std::logic_error("vit3d::nn::Linear::forward: int8 runs float layers only");
        }
    }

    // x W^T + b in bf16 (float layers): the kept bf16 pack, remade when the active level is not the one it
    // was made at.
    Tensor<T> forward_bf16(const Tensor<T>& x, const detail::GemmEpilogue<T>& epilogue) const {
        if constexpr (std::is_same_v<T, float>) {
            Shape out_shape = x.shape();
            out_shape.back() = out_features();
            Tensor<T> y = Tensor<T>::empty(out_shape);
            const auto packed = bf16_weight_.get(weight, detail::active_isa(), "vit3d::nn::Linear::forward");
            detail::bf16_gemm_abt(x.size() / in_features(), x.data(), in_features(), *packed,
                                  bias ? bias->data() : nullptr, y.data(), out_features(), num_threads(),
                                  epilogue);
            return y;
        } else {
            throw std::logic_error("vit3d::nn::Linear::forward: bf16 runs float layers only");
        }
    }

    Precision precision_ = Precision::f32;
    // The weight packed for the GEMM, dropped when the weight is written.
    detail::WeightPackCache<T> packed_weight_;
    // In int8: the weight quantised and packed for the int8 GEMM, kept the same way.
    detail::Int8WeightCache int8_weight_;
    // In bf16: the weight in bf16, packed for the bf16 GEMM, kept the same way.
    detail::Bf16WeightCache bf16_weight_;

    void check() const {
        if (weight.rank() != 2 || (bias && (bias->rank() != 1 || bias->dim(0) != weight.dim(0))))
            throw shape_error(
                message("vit3d::nn::Linear: expected weight [out, in] and bias [out], got weight ",
                        weight.shape(), " and bias ", bias ? message(bias->shape()) : "none"));
    }
};

}  // namespace vit3d::nn

namespace vit3d::detail {

// The visitors behind nn::pack_weights and nn::packed_weight_bytes: `layer` is a Linear, or a layer that
// packs its weights itself (a gated Mlp's fc1).
struct WeightPacker : nn::LinearLayerVisitor {
    bool pack = true;  // false: only count
    Index bytes = 0;
    template <class Layer>
    void layer(const Layer& layer) {
        if (pack) layer.pack_weight();
        bytes += layer.packed_weight_bytes();
    }
    template <class T>
    void operator()(const std::string&, const Tensor<T>&) {}
};

// The visitors behind nn::set_precision and nn::count_linear_layers: shown the Linear layers themselves,
// a gated Mlp's fc1 and fc1_x too.
struct PrecisionSetter : nn::EveryLinearVisitor {
    Precision precision = Precision::f32;
    template <class T>
    void layer(nn::Linear<T>& layer) {
        layer.set_precision(precision);
    }
    template <class T>
    void operator()(const std::string&, const Tensor<T>&) {}
};

struct PrecisionCounter : nn::EveryLinearVisitor {
    Precision precision = Precision::f32;
    Index count = 0;
    template <class T>
    void layer(const nn::Linear<T>& layer) {
        count += layer.precision() == precision ? 1 : 0;
    }
    template <class T>
    void operator()(const std::string&, const Tensor<T>&) {}
};

}  // namespace vit3d::detail

namespace vit3d::nn {

// Computes every Linear layer of `module` in `precision` (core/precision.hpp) from its next forward on: the
// attention projections, the MLPs and the heads alike, as ONNX Runtime's quantize_dynamic does. Patch
// embeddings, norms, activations, softmax and the attention products stay float. int8 runs float modules
// only (std::invalid_argument for double). Pack the weights after it (nn::pack_weights) for a first forward
// that packs nothing; io::load_model does both with LoadOptions::precision.
template <class Module>
void set_precision(Module& module, Precision precision) {
    detail::PrecisionSetter setter;
    setter.precision = precision;
    module.visit_parameters(setter);
}

// How many Linear layers of `module` compute in `precision`.
template <class Module>
Index count_linear_layers(const Module& module, Precision precision) {
    detail::PrecisionCounter counter;
    counter.precision = precision;
    module.visit_parameters(counter);
    return counter.count;
}

// Packs the weight of every Linear layer of `module` for the GEMM now (core/weight_packing.hpp), so that no
// forward has to; returns the bytes the packs hold (0 with packing off).
template <class Module>
Index pack_weights(const Module& module) {
    detail::WeightPacker packer;
    module.visit_parameters(packer);
    return packer.bytes;
}

// Bytes of the packed weights the Linear layers of `module` keep.
template <class Module>
Index packed_weight_bytes(const Module& module) {
    detail::WeightPacker counter;
    counter.pack = false;
    module.visit_parameters(counter);
    return counter.bytes;
}

}  // namespace vit3d::nn

#define VIT3D_LINEAR_INSTANCES(X, T) X(struct vit3d::nn::Linear<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_LINEAR_INSTANCES)
