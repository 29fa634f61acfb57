#pragma once
// softmax(Q K^T * scale + bias) V for tensors [B, H, N, d] (torch's scaled_dot_product_attention layout),
// and `attention(problem, ...)` for strided views (MultiHeadAttention's route).

#include <cmath>
#include <cstdint>
#include <string>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/detail/attention.hpp"
#include "vit3d/detail/attention_problem.hpp"
#include "vit3d/detail/type_traits.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::nn {

// The kernel interface, defined below nn/ so that the kernels need nothing from this layer.
using detail::AttentionKernel;
using detail::AttentionProblem;
using detail::AttentionView;
using detail::DistanceBias;

// Runs the problem with the chosen kernel on vit3d::num_threads() threads. `weights`, when not null,
// receives the softmax weights [B, H, Nq, Nk] (contiguous, B*H*Nq*Nk elements) and forces the naive kernel.
template <class T>
void attention(const AttentionProblem<T>& problem, AttentionKernel kernel = AttentionKernel::automatic,
               T* weights = nullptr) {
    detail::run_attention(problem, kernel, weights, num_threads(), "vit3d::nn::attention");
}

// Bytes of scratch memory the kernel allocates for one call with these sizes on `threads` threads
// (the naive kernel: its scores matrices; the fused kernel: its packed keys, values and tiles).
template <class T>
Index attention_workspace_bytes(AttentionKernel kernel, Index batch_heads, Index queries, Index keys,
                                Index head_dim, int threads) {
    return detail::kernel_workspace_bytes<T>(kernel, batch_heads, queries, keys, head_dim, threads);
}

// The same for one problem, with what its distance bias needs.
template <class T>
Index attention_workspace_bytes(const AttentionProblem<T>& problem, AttentionKernel kernel, int threads) {
    return detail::kernel_workspace_bytes(problem, kernel, threads);
}

// The problem for q [B, H, Nq, d] and k, v [B, H, Nk, d] (torch's layout), writing into out [B, H, Nq, d];
// scale 1/sqrt(d). A shape_error names the operation and all three shapes when they do not fit.
template <class T>
AttentionProblem<T> bhnd_attention_problem(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                           Tensor<T>& out, const char* op) {
    if (q.rank() != 4 || k.rank() != 4 || v.shape() != k.shape() || k.dim(0) != q.dim(0) ||
        k.dim(1) != q.dim(1) || k.dim(3) != q.dim(3) || q.dim(3) == 0 || out.shape() != q.shape())
        throw shape_error(message(op, ": expected q [B, H, Nq, d] and k, v [B, H, Nk, d] with d > 0, got q ",
                                  q.shape(), ", k ", k.shape(), ", v ", v.shape()));
    const Index B = q.dim(0), H = q.dim(1), Nq = q.dim(2), Nk = k.dim(2), d = q.dim(3);
    AttentionProblem<T> p;
    p.batch = B, p.heads = H, p.queries = Nq, p.keys = Nk, p.head_dim = d;
    p.q = {q.data(), H * Nq * d, Nq * d, d};
    p.k = {k.data(), H * Nk * d, Nk * d, d};
    p.v = {v.data(), H * Nk * d, Nk * d, d};
    p.out = out.data(), p.out_batch_stride = H * Nq * d, p.out_head_stride = Nq * d, p.out_token_stride = d;
    p.scale = 1.0 / std::sqrt(static_cast<double>(d));
    return p;
}

// q [B, H, Nq, d], k and v [B, H, Nk, d] -> [B, H, Nq, d]. bias (additive) and allowed (1 = attend)
// broadcast to [B, H, Nq, Nk]. scale defaults to 1/sqrt(d).
template <class T>
Tensor<T> scaled_dot_product_attention(const Tensor<T>& q, const Tensor<T>& k, const Tensor<T>& v,
                                       const Tensor<detail::NonDeduced<T>>* bias = nullptr,
                                       const Tensor<std::uint8_t>* allowed = nullptr,
                                       AttentionKernel kernel = AttentionKernel::automatic,
                                       double scale = 0.0) {
    const char* op = "vit3d::nn::scaled_dot_product_attention";
    Tensor<T> out = Tensor<T>::empty(q.shape());
    AttentionProblem<T> p = bhnd_attention_problem(q, k, v, out, op);
    if (scale > 0) p.scale = scale;
    p.set_operands(bias ? bias->data() : nullptr, bias ? &bias->shape() : nullptr,
                   allowed ? allowed->data() : nullptr, allowed ? &allowed->shape() : nullptr, op);
    attention(p, kernel);
    return out;
}

}  // namespace vit3d::nn
