#pragma once
// vit3d::Tensor<T>: an owning, dense, row-major N-d array (rank 0 to any) with value semantics.
//
// Layout: always contiguous and row-major in PyTorch dimension order ([B, C, H, W], [B, C, D, H, W]);
// the last axis varies fastest. Storage is 64-byte aligned. Copying a tensor copies its elements;
// moving it moves the buffer. Operations that reorder elements (permute, slice, rearrange) return new
// contiguous tensors; the zero-copy way to work on a tensor's memory is through its Eigen maps
// (flat(), as_matrix(), matrix(i)), which is how matrix products reach Eigen's GEMM.
//
// Write tracking: every non-const access (data(), element access, iterators, Eigen maps, fill, assignment)
// clears the tensor's write stamp. A cache of something derived from the elements (nn::Linear's packed
// weights) sets the stamp when it derives its copy and trusts the copy only while the stamp is unchanged.
// Writes through a pointer or map obtained before the cache was made are not seen: take it again.

#include <Eigen/Core>
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/detail/aligned_buffer.hpp"
#include "vit3d/detail/random.hpp"
#include "vit3d/detail/strided_loop.hpp"

namespace vit3d {

template <class T>
class Tensor {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>,
                  "vit3d::Tensor holds arithmetic element types (float, double, integers)");

  public:
    using value_type = T;
    using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    using MatrixMap = Eigen::Map<RowMajorMatrix>;
    using ConstMatrixMap = Eigen::Map<const RowMajorMatrix>;
    using VectorMap = Eigen::Map<Vector>;
    using ConstVectorMap = Eigen::Map<const Vector>;

    // An empty tensor of shape [0].
    Tensor() : Tensor(Shape{0}) {}

    // A tensor of the given shape filled with zeros. Shape {} is a rank-0 tensor holding one element.
    // The zeros come from calloc (detail/aligned_buffer.hpp): a large tensor's pages are not touched
    // until written, so a model built to be filled by a weight loader costs no zero-fill pass.
    explicit Tensor(Shape shape) : Tensor(Uninitialized{}) {
        const Index n = shape_numel(shape, "vit3d::Tensor");
        shape_ = std::move(shape);
        buffer_ = detail::AlignedBuffer<T>(n, detail::zeroed);
    }

    // A tensor of the given shape holding a copy of `values` (row-major); the sizes must agree.
    Tensor(Shape shape, const std::vector<T>& values) : Tensor(empty(std::move(shape))) {
        if (static_cast<Index>(values.size()) != size())
            throw shape_error(
                message("vit3d::Tensor: shape ", shape_, " needs ", size(), " values, got ", values.size()));
        std::copy(values.begin(), values.end(), data());
    }

    // A tensor of the given shape holding a copy of size() values read from `values` (row-major).
    Tensor(Shape shape, const T* values) : Tensor(empty(std::move(shape))) {
        if (size() > 0 && values == nullptr)
            throw shape_error(message("vit3d::Tensor: null data pointer for shape ", shape_));
        if (size() > 0) std::memcpy(data(), values, static_cast<std::size_t>(size()) * sizeof(T));
    }

    // A copy, or a tensor assigned to, starts with a clear write stamp: no cache describes it yet.
    Tensor(const Tensor& other) : shape_(other.shape_), buffer_(other.buffer_) {}
    Tensor& operator=(const Tensor& other) {
        if (this != &other) {
            shape_ = other.shape_;
            buffer_ = other.buffer_;
        }
        write_stamp_ = 0;
        return *this;
    }
    // A moved-from tensor is left empty (shape [0]), so its shape still describes its elements.
    Tensor(Tensor&& other) noexcept : shape_(std::move(other.shape_)), buffer_(std::move(other.buffer_)) {
        other.shape_.assign(1, 0);
        other.write_stamp_ = 0;
    }
    Tensor& operator=(Tensor&& other) noexcept {
        if (this != &other) {
            shape_ = std::move(other.shape_);
            buffer_ = std::move(other.buffer_);
            other.shape_.assign(1, 0);
            other.write_stamp_ = 0;
        }
        write_stamp_ = 0;
        return *this;
    }

    // ---- factories ----------------------------------------------------------------------------------

    // A tensor whose elements are left unspecified: for kernels that overwrite every element.
    static Tensor empty(Shape shape) {
        Tensor t(Uninitialized{});
        const Index n = shape_numel(shape, "vit3d::Tensor");
        t.shape_ = std::move(shape);
        t.buffer_ = detail::AlignedBuffer<T>(n);
        return t;
    }
    static Tensor zeros(Shape shape) { return Tensor(std::move(shape)); }
    static Tensor ones(Shape shape) { return full(std::move(shape), T(1)); }
    static Tensor full(Shape shape, T value) {
        Tensor t = empty(std::move(shape));
        t.fill(value);
        return t;
    }
    // 0, 1, ..., n-1 as a rank-1 tensor.
    static Tensor arange(Index n) {
        Tensor t = empty({n});
        for (Index i = 0; i < n; ++i) t.data()[i] = static_cast<T>(i);
        return t;
    }
    // Normal(mean, stddev) samples. The same seed gives the same tensor on every run; across platforms
    // the values can differ in the last bits, as they go through the C library's log, sin and cos.
    static Tensor randn(Shape shape, std::uint64_t seed, T mean = T(0), T stddev = T(1)) {
        static_assert(std::is_floating_point_v<T>, "Tensor::randn needs a floating-point element type");
        Tensor t = empty(std::move(shape));
        detail::Xoshiro256 rng(seed);
        for (T& v : t) v = static_cast<T>(mean + stddev * rng.normal());
        return t;
    }
    // Uniform samples in [low, high). The same seed gives the same tensor on every run; with the default
    // bounds on every platform too (other bounds: low + (high - low) u may be fused into an FMA by the
    // compiler, which can change the last bit).
    static Tensor rand(Shape shape, std::uint64_t seed, T low = T(0), T high = T(1)) {
        static_assert(std::is_floating_point_v<T>, "Tensor::rand needs a floating-point element type");
        Tensor t = empty(std::move(shape));
        detail::Xoshiro256 rng(seed);
        for (T& v : t) {
            v = static_cast<T>(low + (high - low) * rng.uniform());
            if (!(v < high)) v = std::nextafter(high, low);  // rounding to T may reach `high`
        }
        return t;
    }

    // ---- shape --------------------------------------------------------------------------------------

    const Shape& shape() const noexcept { return shape_; }
    Index rank() const noexcept { return static_cast<Index>(shape_.size()); }
    Index size() const noexcept { return buffer_.size(); }
    bool is_empty() const noexcept { return size() == 0; }
    // Length of axis i; negative i counts from the back (-1 = last axis).
    Index dim(Index i) const {
        return shape_[static_cast<std::size_t>(normalize_axis(i, rank(), "vit3d::Tensor::dim"))];
    }
    Shape strides() const { return row_major_strides(shape_); }

    // ---- elements -----------------------------------------------------------------------------------

    T* data() noexcept {
        write_stamp_ = 0;
        return buffer_.data();
    }
    const T* data() const noexcept { return buffer_.data(); }
    T* begin() noexcept { return data(); }
    T* end() noexcept { return data() + size(); }
    const T* begin() const noexcept { return data(); }
    const T* end() const noexcept { return data() + size(); }

    // Unchecked element access (checked by assert in debug builds), one index per axis.
    template <class... Indices>
    T& operator()(Indices... index) {
        return data()[offset_unchecked(index...)];
    }
    template <class... Indices>
    const T& operator()(Indices... index) const {
        return data()[offset_unchecked(index...)];
    }

    // Bounds-checked element access: throws index_error naming the shape and the index.
    template <class... Indices>
    T& at(Indices... index) {
        static_assert((std::is_integral_v<Indices> && ...), "tensor indices must be integers");
        return data()[offset_checked({static_cast<Index>(index)...})];
    }
    template <class... Indices>
    const T& at(Indices... index) const {
        static_assert((std::is_integral_v<Indices> && ...), "tensor indices must be integers");
        return data()[offset_checked({static_cast<Index>(index)...})];
    }

    void fill(T value) { std::fill(begin(), end(), value); }

    // ---- reshaping and copying ----------------------------------------------------------------------

    // Same elements, new shape; one length may be -1 and is inferred.
    Tensor reshape(Shape new_shape) const& {
        Tensor t = *this;
        return std::move(t).reshape(std::move(new_shape));
    }
    Tensor reshape(Shape new_shape) && {
        shape_ = infer_reshape(std::move(new_shape));
        write_stamp_ = 0;
        return std::move(*this);
    }

    // Inserts an axis of length 1 before position `axis` (in [-rank-1, rank]).
    Tensor unsqueeze(Index axis) const {
        axis = normalize_axis(axis, rank() + 1, "vit3d::Tensor::unsqueeze");
        Shape s = shape_;
        s.insert(s.begin() + axis, 1);
        return reshape(std::move(s));
    }
    // Removes axis `axis`, which must have length 1.
    Tensor squeeze(Index axis) const {
        axis = normalize_axis(axis, rank(), "vit3d::Tensor::squeeze");
        if (shape_[static_cast<std::size_t>(axis)] != 1)
            throw shape_error(
                message("vit3d::Tensor::squeeze: expected axis ", axis, " of length 1, got shape ", shape_));
        Shape s = shape_;
        s.erase(s.begin() + axis);
        return reshape(std::move(s));
    }

    // A contiguous copy with axes reordered: result axis i is this tensor's axis order[i].
    Tensor permute(const std::vector<Index>& order) const {
        const char* op = "vit3d::Tensor::permute";
        if (static_cast<Index>(order.size()) != rank())
            throw shape_error(
                message(op, ": expected ", rank(), " axes for shape ", shape_, ", got order ", order));
        std::vector<bool> seen(order.size(), false);
        detail::LoopNest nest;
        const Shape own_strides = strides();
        for (Index axis : order) {
            const Index a = normalize_axis(axis, rank(), op);
            if (seen[static_cast<std::size_t>(a)])
                throw shape_error(message(op, ": order ", order, " repeats axis ", a));
            seen[static_cast<std::size_t>(a)] = true;
            nest.dims.push_back(shape_[static_cast<std::size_t>(a)]);
            nest.src_strides.push_back(own_strides[static_cast<std::size_t>(a)]);
        }
        Tensor out = empty(nest.dims);
        nest.dst_strides = out.strides();
        detail::copy_strided(out.data(), data(), std::move(nest));
        return out;
    }
    // Swaps two axes (a contiguous copy).
    Tensor transpose(Index axis0, Index axis1) const {
        std::vector<Index> order(static_cast<std::size_t>(rank()));
        for (Index i = 0; i < rank(); ++i) order[static_cast<std::size_t>(i)] = i;
        std::swap(order[static_cast<std::size_t>(normalize_axis(axis0, rank(), "vit3d::Tensor::transpose"))],
                  order[static_cast<std::size_t>(normalize_axis(axis1, rank(), "vit3d::Tensor::transpose"))]);
        return permute(order);
    }

    // Elements start, start+step, ... (< stop) along `axis`, as a contiguous copy. Like Python slicing,
    // negative start/stop count from the end and out-of-range bounds are clamped; step must be >= 1.
    Tensor slice(Index axis, Index start, Index stop, Index step = 1) const {
        const char* op = "vit3d::Tensor::slice";
        axis = normalize_axis(axis, rank(), op);
        if (step < 1) throw shape_error(message(op, ": step must be >= 1, got ", step));
        const Index len = shape_[static_cast<std::size_t>(axis)];
        auto clamp = [len](Index i) { return std::clamp(i < 0 ? i + len : i, Index(0), len); };
        start = clamp(start);
        stop = clamp(stop);
        const Index count = stop > start ? (stop - start + step - 1) / step : 0;
        return strided_section(axis, start, count, step);
    }
    // `length` elements from `start` along `axis`; unlike slice(), the range must lie inside the axis.
    Tensor narrow(Index axis, Index start, Index length) const {
        const char* op = "vit3d::Tensor::narrow";
        axis = normalize_axis(axis, rank(), op);
        const Index len = shape_[static_cast<std::size_t>(axis)];
        if (start < 0 || length < 0 || start + length > len)
            throw shape_error(message(op, ": range [", start, ", ", start + length, ") is outside axis ",
                                      axis, " of shape ", shape_));
        return strided_section(axis, start, length, 1);
    }
    // The sub-tensor at `index` along `axis`, with that axis removed (rank - 1). Negative index counts
    // from the end.
    Tensor select(Index axis, Index index) const {
        const char* op = "vit3d::Tensor::select";
        axis = normalize_axis(axis, rank(), op);
        const Index len = shape_[static_cast<std::size_t>(axis)];
        if (index < -len || index >= len)
            throw index_error(
                message(op, ": index ", index, " is outside axis ", axis, " of shape ", shape_));
        Tensor t = strided_section(axis, index < 0 ? index + len : index, 1, 1);
        t.shape_.erase(t.shape_.begin() + axis);
        return t;
    }

    // ---- write tracking (see the top of this file) ---------------------------------------------------

    // 0 after any non-const access; otherwise the value a cache last set with set_write_stamp.
    std::uint64_t write_stamp() const noexcept { return write_stamp_; }
    // For caches of derived data: the caller serialises its own calls (const tensors may be shared).
    void set_write_stamp(std::uint64_t stamp) const noexcept { write_stamp_ = stamp; }

    // ---- Eigen views (zero-copy) --------------------------------------------------------------------

    // All elements as one column vector.
    VectorMap flat() { return VectorMap(data(), size()); }
    ConstVectorMap flat() const { return ConstVectorMap(data(), size()); }

    // The tensor as a row-major matrix [size / dim(-1), dim(-1)]: leading axes fold into rows, e.g.
    // tokens [B, N, D] -> [B*N, D], the operand of a Linear layer. Needs rank >= 1.
    MatrixMap as_matrix() {
        const auto [rows, cols] = matrix_extent("vit3d::Tensor::as_matrix", 1);
        return MatrixMap(data(), rows, cols);
    }
    ConstMatrixMap as_matrix() const {
        const auto [rows, cols] = matrix_extent("vit3d::Tensor::as_matrix", 1);
        return ConstMatrixMap(data(), rows, cols);
    }

    // The trailing two axes form a batch of num_matrices() row-major matrices [dim(-2), dim(-1)];
    // matrix(i) is the i-th of them in row-major order of the leading axes. Needs rank >= 2.
    Index num_matrices() const {
        if (rank() < 2)
            throw shape_error(message("vit3d::Tensor::num_matrices: expected rank >= 2, got shape ", shape_));
        return batch_count();
    }
    MatrixMap matrix(Index i) {
        const Index offset = checked_matrix_index(i) * dim(-2) * dim(-1);
        return MatrixMap(data() + offset, dim(-2), dim(-1));
    }
    ConstMatrixMap matrix(Index i) const {
        const Index offset = checked_matrix_index(i) * dim(-2) * dim(-1);
        return ConstMatrixMap(data() + offset, dim(-2), dim(-1));
    }

  private:
    struct Uninitialized {};
    explicit Tensor(Uninitialized) {}

    template <class... Indices>
    Index offset_unchecked(Indices... index) const {
        static_assert((std::is_integral_v<Indices> && ...), "tensor indices must be integers");
        assert(sizeof...(Indices) == shape_.size());
        Index offset = 0;
        std::size_t axis = 0;
        ((offset = offset * shape_[axis] + static_cast<Index>(index),
          assert(static_cast<Index>(index) >= 0 && static_cast<Index>(index) < shape_[axis]), ++axis),
         ...);
        return offset;
    }

    Index offset_checked(std::initializer_list<Index> index) const {
        bool ok = static_cast<Index>(index.size()) == rank();
        Index offset = 0;
        std::size_t axis = 0;
        for (Index i : index) {
            if (!ok) break;
            ok = i >= 0 && i < shape_[axis];
            offset = offset * shape_[axis] + i;
            ++axis;
        }
        if (!ok)
            throw index_error(
                message("vit3d::Tensor::at: index ", Shape(index), " is outside shape ", shape_));
        return offset;
    }

    Shape infer_reshape(Shape target) const {
        const char* op = "vit3d::Tensor::reshape";
        Index known = 1, inferred = -1;
        for (std::size_t i = 0; i < target.size(); ++i) {
            if (target[i] == -1) {
                if (inferred >= 0)
                    throw shape_error(message(op, ": only one length may be -1, got ", target));
                inferred = static_cast<Index>(i);
            } else if (target[i] < 0) {
                throw shape_error(message(op, ": invalid length in ", target));
            } else {
                if (target[i] != 0 && known > std::numeric_limits<Index>::max() / target[i])
                    throw shape_error(message(op, ": shape ", target, " has too many elements"));
                known *= target[i];
            }
        }
        if (inferred >= 0) {
            if (known == 0 || size() % known != 0)
                throw shape_error(
                    message(op, ": cannot reshape ", shape_, " (", size(), " elements) into ", target));
            target[static_cast<std::size_t>(inferred)] = size() / known;
        }
        if (shape_numel(target, op) != size())
            throw shape_error(
                message(op, ": cannot reshape ", shape_, " (", size(), " elements) into ", target));
        return target;
    }

    // Copy of elements start, start+step, ... (count of them) along a normalized axis.
    Tensor strided_section(Index axis, Index start, Index count, Index step) const {
        Shape out_shape = shape_;
        out_shape[static_cast<std::size_t>(axis)] = count;
        Tensor out = empty(out_shape);
        if (out.size() == 0) return out;
        detail::LoopNest nest{out_shape, out.strides(), strides()};
        Index& axis_stride = nest.src_strides[static_cast<std::size_t>(axis)];
        const T* first = data() + start * axis_stride;
        axis_stride *= step;
        detail::copy_strided(out.data(), first, std::move(nest));
        return out;
    }

    std::pair<Index, Index> matrix_extent(const char* op, Index min_rank) const {
        if (rank() < min_rank)
            throw shape_error(message(op, ": expected rank >= ", min_rank, ", got shape ", shape_));
        const Index cols = shape_.back();
        Index rows = 1;
        for (std::size_t i = 0; i + 1 < shape_.size(); ++i) rows *= shape_[i];
        return {rows, cols};
    }
    Index batch_count() const {
        Index n = 1;
        for (std::size_t i = 0; i + 2 < shape_.size(); ++i) n *= shape_[i];
        return n;
    }
    Index checked_matrix_index(Index i) const {
        const Index n = num_matrices();
        if (i < 0 || i >= n)
            throw index_error(message("vit3d::Tensor::matrix: index ", i, " is outside the ", n,
                                      " matrices of shape ", shape_));
        return i;
    }

    Shape shape_;
    detail::AlignedBuffer<T> buffer_;
    mutable std::uint64_t write_stamp_ = 0;
};

}  // namespace vit3d
