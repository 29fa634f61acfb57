#pragma once
// Attention pooling with a learned latent query (timm's AttentionPoolLatent, global_pool="map"; SigLIP's
// multi-head attention pooling head): one learned query attends over the tokens, then a residual MLP.
//
//   q = q_proj(latent)               [1, 1, D]   (the same for every sample)
//   k, v = kv(x)                     [B, N, 2D]  (keys rows [0, D), values rows [D, 2D))
//   y = proj(softmax(q k^T / sqrt(d)) v)          [B, 1, D], heads of d = D / heads
//   pooled = y + mlp(norm(y))        [B, D]
//
// Parameter names follow timm: latent, q, kv, proj, norm, mlp.{fc1,fc2}.

#include <string>

#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/core/instances.hpp"
#include "vit3d/nn/linear.hpp"
#include "vit3d/nn/mlp.hpp"
#include "vit3d/nn/norm.hpp"
#include "vit3d/nn/parameters.hpp"
#include "vit3d/nn/scaled_dot_product_attention.hpp"
#include "vit3d/tensor/ops.hpp"

namespace vit3d::nn {

// The fields' meanings are in list_fields.
struct AttentionPoolConfig {
    Index dim = 768;
    Index heads = 12;
    Index mlp_dim = 3072;
    Activation activation = Activation::gelu;
    NormKind norm = NormKind::layer_norm;
    bool norm_bias = true;
    double eps = 1e-6;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("dim", c.dim, "token width D").positive());
        f(field("heads", c.heads, "attention heads (D divisible by them)").positive());
        f(field("mlp_dim", c.mlp_dim, "hidden width of the residual MLP").positive());
        f(field("activation", c.activation, "activation of the residual MLP"));
        f(field("norm", c.norm, "the kind of the norm before the MLP"));
        f(field("norm_bias", c.norm_bias, "that norm has a bias (layer_norm)"));
        f(field("eps", c.eps, "that norm's epsilon").positive());
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)
};

template <class T>
struct AttentionPool {
    Tensor<T> latent;  // [1, 1, D]
    Linear<T> q;       // [D, D]
    Linear<T> kv;      // [2D, D]
    Linear<T> proj;    // [D, D]
    Norm<T> norm;      // [D]
    Mlp<T> mlp;        // D -> mlp_dim -> D
    Index heads = 1;

    AttentionPool() = default;
    explicit AttentionPool(const AttentionPoolConfig& c)
        : latent(Shape{1, 1, c.dim}),
          q(c.dim, c.dim),
          kv(c.dim, 2 * c.dim),
          proj(c.dim, c.dim),
          norm(c.dim, c.eps, c.norm, c.norm_bias),
          mlp(c.dim, c.mlp_dim, c.activation),
          heads(c.heads) {
        if (c.dim <= 0 || c.heads <= 0 || c.dim % c.heads != 0)
            throw shape_error(message("vit3d::nn::AttentionPool: expected dim divisible by heads, got dim ",
                                      c.dim, " and ", c.heads, " heads"));
    }

    Index dim() const { return latent.dim(-1); }

    // x: [B, N, D] -> [B, D]
    Tensor<T> forward(const Tensor<T>& x) const {
        const char* op = "vit3d::nn::AttentionPool::forward";
        const Index D = dim();
        if (x.rank() != 3 || x.dim(2) != D || x.dim(1) < 1)
            throw shape_error(message(op, ": expected tokens [B, N >= 1, ", D, "], got ", x.shape()));
        if (latent.size() != D || D % heads != 0)
            throw shape_error(message(op, ": a latent ", latent.shape(), " for ", heads, " heads"));
        const Index B = x.dim(0), N = x.dim(1), head_dim = D / heads;
        const Tensor<T> query = q.forward(latent.reshape({1, D}));  // [1, D]
        const Tensor<T> keys_values = kv.forward(x);                // [B, N, 2D]
        Tensor<T> pooled = Tensor<T>::empty({B, 1, D});
        AttentionProblem<T> p;
        p.batch = B, p.heads = heads, p.queries = 1, p.keys = N, p.head_dim = head_dim;
        p.q = {query.data(), 0, head_dim, D};
        p.k = {keys_values.data(), N * 2 * D, head_dim, 2 * D};
        p.v = {keys_values.data() + D, N * 2 * D, head_dim, 2 * D};
        p.out = pooled.data();
        p.out_batch_stride = D, p.out_head_stride = head_dim, p.out_token_stride = D;
        p.scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
        attention(p);
        Tensor<T> y = proj.forward(pooled);
        y += mlp.forward(norm.forward(y));
        return y.reshape({B, D});
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        f(join_name(prefix, "latent"), self.latent);
        self.q.visit_parameters(f, join_name(prefix, "q"));
        self.kv.visit_parameters(f, join_name(prefix, "kv"));
        self.proj.visit_parameters(f, join_name(prefix, "proj"));
        self.norm.visit_parameters(f, join_name(prefix, "norm"));
        self.mlp.visit_parameters(f, join_name(prefix, "mlp"));
    }
};

}  // namespace vit3d::nn

#define VIT3D_ATTENTION_POOL_INSTANCES(X, T) X(struct vit3d::nn::AttentionPool<T>)
VIT3D_EXTERN_INSTANCES(VIT3D_ATTENTION_POOL_INSTANCES)
