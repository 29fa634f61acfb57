#pragma once
// Named parameters. Every module exposes visit_parameters(f, prefix), which calls f(name, tensor) for
// each of its parameter tensors, with names joined by '.' exactly as in a PyTorch state_dict
// ("encoder.layers.encoder_layer_0.ln_1.weight"). Weight loading, saving and counting are written once
// on top of it instead of per model.

#include <string>

#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

// Defines visit_parameters(f, prefix) for const and mutable modules alike from the module's one
//   template <class Self, class F> static void visit(Self& self, F& f, const std::string& prefix)
// so that each module lists its parameters once.
#define VIT3D_VISIT_PARAMETERS_WITH(visit_fn)                            \
    template <class F>                                                   \
    void visit_parameters(F&& f, const std::string& prefix = "") {       \
        visit_fn(*this, f, prefix);                                      \
    }                                                                    \
    template <class F>                                                   \
    void visit_parameters(F&& f, const std::string& prefix = "") const { \
        visit_fn(*this, f, prefix);                                      \
    }

// A parameter visitor that derives from this is also shown every Linear layer, as f.layer(linear), before
// the layer's tensors (nn::pack_weights is one); a layer that packs weights for the GEMM itself instead of
// through its Linear layers (a gated Mlp's fc1) shows itself, with pack_weight() and packed_weight_bytes().
struct LinearLayerVisitor {};

// A LinearLayerVisitor that is shown the Linear layers themselves, never a layer standing in for some of them
// (nn::set_precision is one: it sets each Linear's precision, a gated Mlp's fc1 and fc1_x included).
struct EveryLinearVisitor : LinearLayerVisitor {};

// "prefix.name", or "name" at the top level.
inline std::string join_name(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}

// Total number of parameter elements of a module.
template <class Module>
Index count_parameters(const Module& module) {
    Index total = 0;
    module.visit_parameters([&](const std::string&, const auto& tensor) { total += tensor.size(); });
    return total;
}

}  // namespace vit3d::nn
