#pragma once
// Operations on whole tensors: concatenation, NumPy-broadcasting arithmetic, batched matrix products.

#include <functional>
#include <string>
#include <vector>

#include "vit3d/core/message.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d {

// Joins tensors along an existing axis; all other lengths must agree.
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& parts, Index axis) {
    const char* op = "vit3d::concat";
    if (parts.empty()) throw shape_error(message(op, ": expected at least one tensor, got none"));
    const Shape& first = parts.front().shape();
    axis = normalize_axis(axis, static_cast<Index>(first.size()), op);
    const auto ax = static_cast<std::size_t>(axis);
    Shape out_shape = first;
    out_shape[ax] = 0;
    for (std::size_t p = 0; p < parts.size(); ++p) {
        const Shape& s = parts[p].shape();
        bool fits = s.size() == first.size();
        for (std::size_t i = 0; fits && i < s.size(); ++i) fits = i == ax || s[i] == first[i];
        if (!fits)
            throw shape_error(message(op, ": along axis ", axis, " tensor ", p, " has shape ", s,
                                      ", expected ", first, " except at that axis"));
        out_shape[ax] += s[ax];
    }
    Tensor<T> out = Tensor<T>::empty(out_shape);
    if (out.size() == 0) return out;
    const Shape out_strides = out.strides();
    Index offset = 0;
    for (const Tensor<T>& part : parts) {
        detail::copy_strided(out.data() + offset * out_strides[ax], part.data(),
                             detail::LoopNest{part.shape(), out_strides, part.strides()});
        offset += part.shape()[ax];
    }
    return out;
}

// Stacks equally shaped tensors along a new axis inserted at `axis` (in [-rank-1, rank]).
template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& parts, Index axis = 0) {
    const char* op = "vit3d::stack";
    if (parts.empty()) throw shape_error(message(op, ": expected at least one tensor, got none"));
    const Shape& first = parts.front().shape();
    axis = normalize_axis(axis, static_cast<Index>(first.size()) + 1, op);
    std::vector<Tensor<T>> expanded;
    expanded.reserve(parts.size());
    for (std::size_t p = 0; p < parts.size(); ++p) {
        if (parts[p].shape() != first)
            throw shape_error(
                message(op, ": tensor ", p, " has shape ", parts[p].shape(), ", expected ", first));
        expanded.push_back(parts[p].unsqueeze(axis));
    }
    return concat(expanded, axis);
}

}  // namespace vit3d

namespace vit3d::detail {

// out = f(a, b) elementwise with NumPy broadcasting.
template <class T, class F>
Tensor<T> broadcast_binary(const Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
    if (a.shape() == b.shape()) {
        Tensor<T> out = Tensor<T>::empty(a.shape());
        const T* pa = a.data();
        const T* pb = b.data();
        T* po = out.data();
        for (Index i = 0, n = out.size(); i < n; ++i) po[i] = f(pa[i], pb[i]);
        return out;
    }
    const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
    Tensor<T> out = Tensor<T>::empty(out_shape);
    // Walk the output with one nest per operand: dst = a's offsets, src = b's offsets.
    LoopNest nest{out_shape, broadcast_strides(a.shape(), out_shape),
                  broadcast_strides(b.shape(), out_shape)};
    if (out.size() == 0) return out;
    const Index n = out_shape.back();
    const Index sa = nest.dst_strides.back(), sb = nest.src_strides.back();
    drop_axis(nest, out_shape.size() - 1);
    T* po = out.data();
    Index position = 0;
    for_each_position(nest, 0, out.size() / n, [&](Index oa, Index ob) {
        const T* pa = a.data() + oa;
        const T* pb = b.data() + ob;
        T* dst = po + position;
        if (sa == 1 && sb == 1) {
            for (Index j = 0; j < n; ++j) dst[j] = f(pa[j], pb[j]);
        } else if (sa == 1) {
            for (Index j = 0; j < n; ++j) dst[j] = f(pa[j], pb[j * sb]);
        } else if (sb == 1) {
            for (Index j = 0; j < n; ++j) dst[j] = f(pa[j * sa], pb[j]);
        } else {
            for (Index j = 0; j < n; ++j) dst[j] = f(pa[j * sa], pb[j * sb]);
        }
        position += n;
    });
    return out;
}

template <class T, class F>
Tensor<T>& broadcast_inplace(Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
    const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
    if (out_shape != a.shape())
        throw shape_error(
            message(op, ": result shape ", out_shape, " differs from the left operand's ", a.shape()));
    // Written into a's own elements: a residual add costs no fresh tensor.
    T* pa = a.data();
    const T* pb = b.data();
    if (a.shape() == b.shape()) {
        for (Index i = 0, n = a.size(); i < n; ++i) pa[i] = f(pa[i], pb[i]);
        return a;
    }
    if (a.size() == 0) return a;
    LoopNest nest{out_shape, a.strides(), broadcast_strides(b.shape(), out_shape)};
    const Index n = out_shape.back();
    const Index sb = nest.src_strides.back();
    drop_axis(nest, out_shape.size() - 1);
    for_each_position(nest, 0, a.size() / n, [&](Index oa, Index ob) {
        T* dst = pa + oa;
        const T* src = pb + ob;
        for (Index j = 0; j < n; ++j) dst[j] = f(dst[j], src[j * sb]);
    });
    return a;
}

template <class T, class F>
Tensor<T> map_elements(Tensor<T> t, F f) {
    for (T& v : t) v = f(v);
    return t;
}

}  // namespace vit3d::detail

namespace vit3d {

// Elementwise arithmetic with NumPy broadcasting ([B, N, D] + [D], [B, 1, D] * [1, N, 1], ...).
template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_binary(a, b, std::plus<T>(), "vit3d::operator+");
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_binary(a, b, std::minus<T>(), "vit3d::operator-");
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_binary(a, b, std::multiplies<T>(), "vit3d::operator*");
}
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_binary(a, b, std::divides<T>(), "vit3d::operator/");
}

// In place: the broadcast result must have the left operand's shape.
template <class T>
Tensor<T>& operator+=(Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_inplace(a, b, std::plus<T>(), "vit3d::operator+=");
}
template <class T>
Tensor<T>& operator-=(Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_inplace(a, b, std::minus<T>(), "vit3d::operator-=");
}
template <class T>
Tensor<T>& operator*=(Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_inplace(a, b, std::multiplies<T>(), "vit3d::operator*=");
}
template <class T>
Tensor<T>& operator/=(Tensor<T>& a, const Tensor<T>& b) {
    return detail::broadcast_inplace(a, b, std::divides<T>(), "vit3d::operator/=");
}

// Scalar arithmetic on every element.
template <class T>
Tensor<T> operator+(Tensor<T> a, T s) {
    return detail::map_elements(std::move(a), [s](T v) { return v + s; });
}
template <class T>
Tensor<T> operator+(T s, Tensor<T> a) {
    return detail::map_elements(std::move(a), [s](T v) { return s + v; });
}
template <class T>
Tensor<T> operator-(Tensor<T> a, T s) {
    return detail::map_elements(std::move(a), [s](T v) { return v - s; });
}
template <class T>
Tensor<T> operator-(T s, Tensor<T> a) {
    return detail::map_elements(std::move(a), [s](T v) { return s - v; });
}
template <class T>
Tensor<T> operator*(Tensor<T> a, T s) {
    return detail::map_elements(std::move(a), [s](T v) { return v * s; });
}
template <class T>
Tensor<T> operator*(T s, Tensor<T> a) {
    return detail::map_elements(std::move(a), [s](T v) { return s * v; });
}
template <class T>
Tensor<T> operator/(Tensor<T> a, T s) {
    return detail::map_elements(std::move(a), [s](T v) { return v / s; });
}
template <class T>
Tensor<T> operator/(T s, Tensor<T> a) {
    return detail::map_elements(std::move(a), [s](T v) { return s / v; });
}
template <class T>
Tensor<T> operator-(Tensor<T> a) {
    return detail::map_elements(std::move(a), [](T v) { return -v; });
}
template <class T>
Tensor<T>& operator+=(Tensor<T>& a, T s) {
    for (T& v : a) v += s;
    return a;
}
template <class T>
Tensor<T>& operator-=(Tensor<T>& a, T s) {
    for (T& v : a) v -= s;
    return a;
}
template <class T>
Tensor<T>& operator*=(Tensor<T>& a, T s) {
    for (T& v : a) v *= s;
    return a;
}
template <class T>
Tensor<T>& operator/=(Tensor<T>& a, T s) {
    for (T& v : a) v /= s;
    return a;
}

// Exact equality of shape and every element (NaN != NaN). For tolerances use allclose().
template <class T>
bool operator==(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}
template <class T>
bool operator!=(const Tensor<T>& a, const Tensor<T>& b) {
    return !(a == b);
}

// Batched matrix product with NumPy matmul rules on rank >= 2 operands: [..., M, K] x [..., K, N] ->
// [..., M, N], leading (batch) axes broadcast. Each product runs on Eigen maps, i.e. Eigen's GEMM.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
    const char* op = "vit3d::matmul";
    if (a.rank() < 2 || b.rank() < 2 || a.dim(-1) != b.dim(-2))
        throw shape_error(
            message(op, ": expected [..., M, K] x [..., K, N], got ", a.shape(), " x ", b.shape()));
    const Shape batch_a(a.shape().begin(), a.shape().end() - 2),
        batch_b(b.shape().begin(), b.shape().end() - 2);
    Shape out_shape = broadcast_shapes(batch_a, batch_b, op);
    const Shape batch = out_shape;
    out_shape.push_back(a.dim(-2));
    out_shape.push_back(b.dim(-1));
    Tensor<T> out = Tensor<T>::empty(out_shape);
    if (out.size() == 0) return out;
    if (a.dim(-1) == 0) {
        out.fill(T(0));
        return out;
    }
    // Batch offsets (in matrices) of each operand, walked with one nest: dst = a, src = b.
    detail::LoopNest nest{batch, broadcast_strides(batch_a, batch), broadcast_strides(batch_b, batch)};
    Index index = 0;
    detail::for_each_position(nest, 0, out.num_matrices(), [&](Index ia, Index ib) {
        out.matrix(index++).noalias() = a.matrix(ia) * b.matrix(ib);
    });
    return out;
}

}  // namespace vit3d
