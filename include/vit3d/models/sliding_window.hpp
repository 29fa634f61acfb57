#pragma once
// Dense outputs over a whole scan by sliding windows, computed as MONAI 1.6's
// monai.inferers.sliding_window_inference computes them (without its buffering and device options):
//
//   - an input smaller than the window on an axis is padded there (constant cval), half before and the rest
//     after, and the output is cropped back at the end;
//   - the windows start every int(roi * (1 - overlap)) voxels (at least 1; the whole axis when the window
//     covers it), the last one moved back to end at the border; they run in row-major order of their
//     starts, sample after sample, sw_batch_size at a time (a batch may span two samples);
//   - each window's prediction is weighted by an importance map (constant: 1; gaussian: exp(-x^2 / 2 s^2)
//     per axis, s = sigma_scale * roi, x measured from the window's centre, the product over the axes, in
//     float32, raised to at least max(its minimum, 1e-3)), summed into the output, and the sum divided by
//     the summed weights;
//   - a predictor whose output has another spatial size than its input (a token grid at patch resolution)
//     is placed at the scaled window start int(start * out / roi), with the map resampled to its size
//     (nearest-exact, torch's F.interpolate); the output has int(size * out / roi) cells per axis.
//
// The map is computed in float32 and converted to T, as MONAI does. Its exponentials are rounded
// correctly; torch's vectorised expf is within one float32 ulp of them, and at a few positions of some
// window sizes (about 1 in 100 values) it differs by that ulp, which moves a float64 result by ~1e-8 of its
// scale there (tests/fixtures/make_sliding_window_fixtures.py lists the sizes checked to agree exactly).
//
// Memory: the output [B, C', out...] (divided in place; with padding, its crop is a second, smaller copy
// at the end), the summed weights [out...], the importance map, and one batch of windows (sw_batch_size x
// [C, roi...] in, whatever the predictor returns for it); the input is read in place (no padded copy) and
// no list of windows is kept.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/enum_names.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/shape.hpp"
#include "vit3d/tensor/tensor.hpp"

namespace vit3d::models {

// How overlapping windows are weighted (MONAI's BlendMode).
enum class BlendMode {
    constant,  // every prediction counts the same
    gaussian,  // a window's centre counts more than its border
};

constexpr auto enum_names(BlendMode) {
    return enum_table<BlendMode>({{BlendMode::constant, "constant"}, {BlendMode::gaussian, "gaussian"}});
}

// How an input smaller than the window is padded. Only torch's "constant" (with cval) for now.
enum class PaddingMode { constant };

constexpr auto enum_names(PaddingMode) {
    return enum_table<PaddingMode>({{PaddingMode::constant, "constant"}});
}

struct SlidingWindowConfig {
    Shape roi_size;                     // the window, one length per spatial axis (the predictor's input)
    Index sw_batch_size = 1;            // windows per predictor call
    std::vector<double> overlap{0.25};  // in [0, 1): one for every axis, or one per axis
    BlendMode mode = BlendMode::constant;
    std::vector<double> sigma_scale{0.125};  // gaussian: s = sigma_scale * roi; one, or one per axis
    PaddingMode padding_mode = PaddingMode::constant;
    double cval = 0.0;  // the value of the padding
};

// Where the windows of one sample go, in the coordinates of the padded input.
struct SlidingWindowPlan {
    Shape image_size;   // the input's spatial sizes
    Shape padded_size;  // max(image_size, roi_size) per axis
    Shape roi_size;
    Shape pad_before;           // padding before the input on each axis (the rest goes after it)
    Shape interval;             // the scan interval per axis
    std::vector<Shape> starts;  // per axis, the window starts along it

    Index spatial_rank() const { return static_cast<Index>(image_size.size()); }
    // Windows per sample.
    Index windows() const {
        Index n = 1;
        for (const Shape& s : starts) n *= static_cast<Index>(s.size());
        return n;
    }
    // The start of window w (0 <= w < windows()), in row-major order of the per-axis starts.
    Shape window_start(Index w) const {
        Shape start(starts.size());
        for (std::size_t a = starts.size(); a-- > 0;) {
            const Index n = static_cast<Index>(starts[a].size());
            start[a] = starts[a][static_cast<std::size_t>(w % n)];
            w /= n;
        }
        return start;
    }
};

}  // namespace vit3d::models

namespace vit3d::detail {

// A per-axis parameter given once for all axes or once per axis.
inline std::vector<double> per_axis(const std::vector<double>& values, std::size_t rank, const char* op,
                                    const char* name) {
    if (values.size() == rank) return values;
    if (values.size() == 1) return std::vector<double>(rank, values[0]);
    throw config_error(message(op, ": expected config.", name, " to hold 1 value or ", rank,
                               " (one per spatial axis), got ", values.size(), " ", values));
}

// Where torch's nearest-exact interpolation reads output cell d from, for `in` cells resampled to `out`:
// floor((d + 0.5) * scale) with scale = in / out in float, the product rounded to float before the floor.
inline Index nearest_exact_source(Index d, Index in, Index out) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    const float at = static_cast<float>((static_cast<double>(d) + 0.5) * scale);
    return std::min(static_cast<Index>(std::floor(at)), in - 1);
}

// Visits each row (all axes but the last) of a region of `size` cells, in row-major order, with the row's
// coordinates (size.size() - 1 of them).
template <class Visit>
void for_each_row(const Shape& size, Visit&& visit) {
    const std::size_t outer = size.size() - 1;
    Index rows = 1;
    for (std::size_t a = 0; a < outer; ++a) rows *= size[a];
    Shape at(outer, 0);
    for (Index r = 0; r < rows; ++r) {
        visit(static_cast<const Shape&>(at));
        for (std::size_t a = outer; a-- > 0;) {
            if (++at[a] < size[a]) break;
            at[a] = 0;
        }
    }
}

// The offset of (coordinates..., 0) in a row-major array of spatial `size`.
inline Index row_offset(const Shape& at, const Shape& size) {
    Index offset = 0;
    for (std::size_t a = 0; a < at.size(); ++a) offset = offset * size[a] + at[a];
    return offset * size.back();
}

// Adds the block src [window...] into dst [size...] at the cells from `at` on, row by row.
template <class T>
void add_block(T* dst, const Shape& size, const Shape& at, const T* src, const Shape& window) {
    Shape cell(at.size() - 1);
    for_each_row(window, [&](const Shape& row) {
        for (std::size_t a = 0; a < cell.size(); ++a) cell[a] = at[a] + row[a];
        T* to = dst + row_offset(cell, size) + at.back();
        const T* from = src + row_offset(row, window);
        for (Index j = 0; j < window.back(); ++j) to[j] += from[j];
    });
}

// Copies the window of sample b starting at `start` (padded coordinates) into dst [C, roi...], with cval
// where the window reaches into the padding.
template <class T>
void gather_window(const Tensor<T>& x, Index b, const models::SlidingWindowPlan& plan, const Shape& start,
                   T cval, T* dst) {
    const Shape& image = plan.image_size;
    const Shape& roi = plan.roi_size;
    const std::size_t last = roi.size() - 1;
    const Index channels = x.dim(1);
    Index image_cells = 1, roi_cells = 1;
    for (std::size_t a = 0; a <= last; ++a) {
        image_cells *= image[a];
        roi_cells *= roi[a];
    }
    // The input's columns the window's last axis covers: [first, first + roi) in input coordinates.
    const Index first = start[last] - plan.pad_before[last];
    const Index lo = std::max<Index>(0, -first), hi = std::min(roi[last], image[last] - first);
    for (Index c = 0; c < channels; ++c) {
        const T* src_channel = x.data() + (b * channels + c) * image_cells;
        T* dst_channel = dst + c * roi_cells;
        Shape source(last);
        for_each_row(roi, [&](const Shape& at) {
            T* row = dst_channel + row_offset(at, roi);
            bool inside = hi > lo;
            for (std::size_t a = 0; a < last && inside; ++a) {
                source[a] = start[a] - plan.pad_before[a] + at[a];
                inside = source[a] >= 0 && source[a] < image[a];
            }
            if (!inside) {
                std::fill(row, row + roi[last], cval);
                return;
            }
            const T* src = src_channel + row_offset(source, image) + first;
            std::fill(row, row + lo, cval);
            std::copy(src + lo, src + hi, row + lo);
            std::fill(row + hi, row + roi[last], cval);
        });
    }
}

// The output of one predictor output: its running sum, the summed weights, and where windows go in it.
template <class T>
struct SlidingWindowStitch {
    Index channels = 0;
    Shape window;              // the predictor's output spatial size
    Shape size;                // the output's spatial size, int(padded * window / roi)
    std::vector<double> zoom;  // window / roi per axis
    Tensor<T> sum;             // [B, channels, size...]
    Tensor<T> count;           // [size...]
    Tensor<T> weight;          // the importance map at the window's output size [window...]

    // The scaled start of a window (MONAI: int(start * zoom)), checked to give exactly `window` cells.
    Shape place(const Shape& start, const Shape& roi, const char* op) const {
        Shape at(start.size());
        for (std::size_t a = 0; a < start.size(); ++a) {
            at[a] = static_cast<Index>(static_cast<double>(start[a]) * zoom[a]);
            const Index end = static_cast<Index>(static_cast<double>(start[a] + roi[a]) * zoom[a]);
            if (end - at[a] != window[a])
                throw shape_error(message(op, ": the window at ", start, " lands on output cells [", at[a],
                                          ", ", end, ") of axis ", a, ", which do not hold the predictor's ",
                                          window[a], " (choose roi and overlap so that start * ", window[a],
                                          " / ", roi[a], " is a whole number)"));
        }
        return at;
    }
};

}  // namespace vit3d::detail

namespace vit3d::models {

// The windows over an input of spatial size image_size (MONAI's padding, _get_scan_interval and
// dense_patch_slices). Throws config_error for a roi_size, overlap or sigma_scale that does not fit.
inline SlidingWindowPlan sliding_window_plan(const Shape& image_size, const SlidingWindowConfig& config,
                                             const char* op = "vit3d::models::sliding_window_plan") {
    const std::size_t rank = image_size.size();
    if (rank == 0) throw shape_error(message(op, ": expected at least one spatial axis, got none"));
    if (config.roi_size.size() != rank)
        throw config_error(message(op, ": expected config.roi_size with ", rank,
                                   " lengths (one per spatial axis "
                                   "of the input, spatial size ",
                                   image_size, "), got ", config.roi_size));
    for (Index r : config.roi_size)
        if (r < 1)
            throw config_error(
                message(op, ": expected positive config.roi_size lengths, got ", config.roi_size));
    for (Index s : image_size)
        if (s < 1)
            throw shape_error(message(op, ": expected a non-empty input, got spatial size ", image_size));
    if (config.sw_batch_size < 1)
        throw config_error(message(op, ": expected config.sw_batch_size >= 1, got ", config.sw_batch_size));
    const std::vector<double> overlap = detail::per_axis(config.overlap, rank, op, "overlap");
    for (double o : overlap)
        if (!(o >= 0.0 && o < 1.0))
            throw config_error(message(op, ": expected config.overlap in [0, 1), got ", config.overlap));
    if (config.mode == BlendMode::gaussian)
        for (double s : detail::per_axis(config.sigma_scale, rank, op, "sigma_scale"))
            if (!(s > 0.0) || !std::isfinite(s))
                throw config_error(
                    message(op, ": expected positive finite config.sigma_scale, got ", config.sigma_scale));

    SlidingWindowPlan plan;
    plan.image_size = image_size;
    plan.roi_size = config.roi_size;
    plan.padded_size.resize(rank);
    plan.pad_before.resize(rank);
    plan.interval.resize(rank);
    plan.starts.resize(rank);
    for (std::size_t a = 0; a < rank; ++a) {
        const Index roi = config.roi_size[a];
        const Index size = std::max(image_size[a], roi);
        plan.padded_size[a] = size;
        plan.pad_before[a] = std::max<Index>(roi - image_size[a], 0) / 2;
        Index interval = roi;
        if (roi != size) {
            interval = static_cast<Index>(static_cast<double>(roi) * (1.0 - overlap[a]));
            if (interval < 1) interval = 1;
        }
        plan.interval[a] = interval;
        // The first window that reaches the end is the last; it is moved back to end there.
        for (Index start = 0;; start += interval) {
            plan.starts[a].push_back(std::min(start, size - roi));
            if (start + roi >= size) break;
        }
    }
    return plan;
}

// MONAI's compute_importance_map over a window of size roi (float32 values, converted to T).
template <class T>
Tensor<T> importance_map(const Shape& roi, BlendMode mode, const std::vector<double>& sigma_scale = {0.125}) {
    const char* op = "vit3d::models::importance_map";
    if (roi.empty()) throw shape_error(message(op, ": expected at least one axis, got roi ", roi));
    for (Index r : roi)
        if (r < 1) throw config_error(message(op, ": expected positive roi lengths, got ", roi));
    if (mode == BlendMode::constant) return Tensor<T>::ones(roi);
    const std::vector<double> scale = detail::per_axis(sigma_scale, roi.size(), op, "sigma_scale");
    for (double s : scale)
        if (!(s > 0.0) || !std::isfinite(s))
            throw config_error(message(op, ": expected positive finite sigma_scale, got ", sigma_scale));
    // One float32 Gaussian per axis, then their product in float32, first axis first.
    std::vector<std::vector<float>> axes(roi.size());
    for (std::size_t a = 0; a < roi.size(); ++a) {
        const double sigma = static_cast<double>(roi[a]) * scale[a];
        const float divisor = static_cast<float>(-2.0 * sigma * sigma);
        for (Index i = 0; i < roi[a]; ++i) {
            const auto x =
                static_cast<float>(-static_cast<double>(roi[a] - 1) / 2.0 + static_cast<double>(i));
            const float q = x * x / divisor;
            axes[a].push_back(static_cast<float>(std::exp(static_cast<double>(q))));
        }
    }
    Index cells = 1;
    for (Index r : roi) cells *= r;
    std::vector<float> map(axes[0]);
    for (std::size_t a = 1; a < roi.size(); ++a) {
        std::vector<float> next;
        next.reserve(map.size() * axes[a].size());
        for (float m : map)
            for (float g : axes[a]) next.push_back(m * g);
        map = std::move(next);
    }
    const float floor_value = std::max(*std::min_element(map.begin(), map.end()), 1e-3f);
    Tensor<T> out = Tensor<T>::empty(roi);
    for (Index i = 0; i < cells; ++i)
        out.data()[i] = static_cast<T>(std::max(map[static_cast<std::size_t>(i)], floor_value));
    return out;
}

// Runs predict over the windows of x [B, C, spatial...] and stitches the results: predict takes a batch of
// windows [n, C, roi...] (n <= sw_batch_size) and returns a std::vector of outputs, each [n, C_k, out_k...]
// (any spatial size, the same for every call); the result holds one [B, C_k, int(size * out_k / roi)...]
// per output (none when predict returns none: it has seen every window, in order, which is all a caller
// that keeps its own results needs). Throws config_error for a config that does not fit the input,
// shape_error for an input or a prediction of the wrong shape.
template <class T, class Predictor>
std::vector<Tensor<T>> sliding_window_inference_outputs(const Tensor<T>& x, const SlidingWindowConfig& config,
                                                        Predictor&& predict) {
    static_assert(std::is_floating_point_v<T>, "sliding_window_inference: T is float or double");
    const char* op = "vit3d::models::sliding_window_inference";
    if (x.rank() < 3)
        throw shape_error(message(
            op, ": expected input [B, C, spatial...] with at least one spatial axis, got ", x.shape()));
    const Index batch = x.dim(0), channels = x.dim(1);
    if (batch < 1 || channels < 1)
        throw shape_error(message(op, ": expected input [B, C, spatial...] with B, C >= 1, got ", x.shape()));
    const Shape image(x.shape().begin() + 2, x.shape().end());
    const SlidingWindowPlan plan = sliding_window_plan(image, config, op);
    const std::size_t rank = image.size();
    const Shape& roi = plan.roi_size;
    Index roi_cells = 1;
    for (Index r : roi) roi_cells *= r;
    const Tensor<T> roi_weight = importance_map<T>(roi, config.mode, config.sigma_scale);
    const Index per_sample = plan.windows();
    const Index total = per_sample * batch;
    const T cval = static_cast<T>(config.cval);

    std::vector<detail::SlidingWindowStitch<T>> stitches;
    for (Index first = 0; first < total; first += config.sw_batch_size) {
        const Index n = std::min(config.sw_batch_size, total - first);
        Shape in_shape{n, channels};
        in_shape.insert(in_shape.end(), roi.begin(), roi.end());
        Tensor<T> windows = Tensor<T>::empty(in_shape);
        for (Index i = 0; i < n; ++i) {
            const Index w = first + i;
            detail::gather_window(x, w / per_sample, plan, plan.window_start(w % per_sample), cval,
                                  windows.data() + i * channels * roi_cells);
        }
        std::vector<Tensor<T>> predicted = predict(static_cast<const Tensor<T>&>(windows));
        windows = Tensor<T>();  // the batch's input is no longer needed while the outputs are summed
        if (first == 0) stitches.resize(predicted.size());
        if (predicted.size() != stitches.size())
            throw shape_error(message(op, ": expected the predictor to return ", stitches.size(),
                                      " output(s) each call, got ", predicted.size()));
        for (std::size_t k = 0; k < predicted.size(); ++k) {
            Tensor<T>& p = predicted[k];
            detail::SlidingWindowStitch<T>& s = stitches[k];
            bool fits = p.rank() == static_cast<Index>(rank) + 2 && p.dim(0) == n && p.dim(1) >= 1;
            for (std::size_t a = 0; fits && a < rank; ++a) fits = p.dim(static_cast<Index>(a) + 2) >= 1;
            if (fits && s.channels > 0) {
                fits = p.dim(1) == s.channels &&
                       std::equal(s.window.begin(), s.window.end(), p.shape().begin() + 2);
            }
            if (!fits) {
                std::string expected = message("[", n, ", C, ", rank, " spatial lengths]");
                if (s.channels > 0) {
                    Shape e{n, s.channels};
                    e.insert(e.end(), s.window.begin(), s.window.end());
                    expected = message(e, " (as the first call's)");
                }
                throw shape_error(message(op, ": expected output ", k, " of the predictor for ", n,
                                          " window(s) to be ", expected, ", got ", p.shape()));
            }
            if (s.channels == 0) {
                // The first prediction fixes the output's size and weights (MONAI allocates them then).
                s.channels = p.dim(1);
                s.window.assign(p.shape().begin() + 2, p.shape().end());
                s.zoom.resize(rank);
                s.size.resize(rank);
                for (std::size_t a = 0; a < rank; ++a) {
                    s.zoom[a] = static_cast<double>(s.window[a]) / static_cast<double>(roi[a]);
                    s.size[a] = static_cast<Index>(static_cast<double>(plan.padded_size[a]) * s.zoom[a]);
                }
                s.weight = Tensor<T>::empty(s.window);
                detail::for_each_row(s.window, [&](const Shape& at) {
                    Shape source(rank - 1);
                    for (std::size_t a = 0; a + 1 < rank; ++a)
                        source[a] = detail::nearest_exact_source(at[a], roi[a], s.window[a]);
                    const T* src = roi_weight.data() + detail::row_offset(source, roi);
                    T* dst = s.weight.data() + detail::row_offset(at, s.window);
                    for (Index i = 0; i < s.window.back(); ++i)
                        dst[i] = src[detail::nearest_exact_source(i, roi.back(), s.window.back())];
                });
                Shape sum_shape{batch, s.channels};
                sum_shape.insert(sum_shape.end(), s.size.begin(), s.size.end());
                s.sum = Tensor<T>::zeros(sum_shape);
                s.count = Tensor<T>::zeros(s.size);
                for (Index w = 0; w < per_sample; ++w) {
                    const Shape at = s.place(plan.window_start(w), roi, op);
                    detail::add_block(s.count.data(), s.size, at, s.weight.data(), s.window);
                }
            }
            Index window_cells = 1;
            for (Index c : s.window) window_cells *= c;
            // The weighted prediction first, then the sum, as two roundings (MONAI: buffer *= w; out +=
            // buffer).
            T* values = p.data();
            for (Index i = 0; i < n * s.channels; ++i)
                for (Index j = 0; j < window_cells; ++j) values[i * window_cells + j] *= s.weight.data()[j];
            Index out_cells = 1;
            for (Index c : s.size) out_cells *= c;
            for (Index i = 0; i < n; ++i) {
                const Index w = first + i, b = w / per_sample;
                const Shape at = s.place(plan.window_start(w % per_sample), roi, op);
                for (Index c = 0; c < s.channels; ++c)
                    detail::add_block(s.sum.data() + (b * s.channels + c) * out_cells, s.size, at,
                                      values + (i * s.channels + c) * window_cells, s.window);
            }
        }
    }

    // The division by the summed weights, and the crop of the padding (MONAI: round(pad * zoom) to
    // round((pad + size) * zoom), zoom = output / roi, halves to even) in one pass.
    const bool padded = plan.padded_size != plan.image_size;
    std::vector<Tensor<T>> results;
    for (detail::SlidingWindowStitch<T>& s : stitches) {
        Shape begin(rank, 0), size = s.size;
        if (padded) {
            for (std::size_t a = 0; a < rank; ++a) {
                const double zoom = static_cast<double>(s.size[a]) / static_cast<double>(roi[a]);
                const auto lo =
                    static_cast<Index>(std::nearbyint(static_cast<double>(plan.pad_before[a]) * zoom));
                const auto hi = static_cast<Index>(
                    std::nearbyint(static_cast<double>(plan.pad_before[a] + image[a]) * zoom));
                begin[a] = std::min(lo, s.size[a]);
                size[a] = std::max<Index>(std::min(hi, s.size[a]) - begin[a], 0);
            }
        }
        Index out_cells = 1, kept_cells = 1;
        for (std::size_t a = 0; a < rank; ++a) {
            out_cells *= s.size[a];
            kept_cells *= size[a];
        }
        const T* count = s.count.data();
        Tensor<T> result;
        if (!padded) {  // in place: the output is held once
            result = std::move(s.sum);
            T* sum = result.data();
            for (Index bc = 0; bc < batch * s.channels; ++bc)
                for (Index j = 0; j < out_cells; ++j) sum[bc * out_cells + j] /= count[j];
        } else {
            Shape result_shape{batch, s.channels};
            result_shape.insert(result_shape.end(), size.begin(), size.end());
            result = Tensor<T>::empty(result_shape);
            Shape cell(rank - 1);
            for (Index bc = 0; kept_cells > 0 && bc < batch * s.channels; ++bc) {
                const T* sum = s.sum.data() + bc * out_cells;
                T* dst_channel = result.data() + bc * kept_cells;
                detail::for_each_row(size, [&](const Shape& row) {
                    for (std::size_t a = 0; a < cell.size(); ++a) cell[a] = begin[a] + row[a];
                    const Index from = detail::row_offset(cell, s.size) + begin.back();
                    T* dst = dst_channel + detail::row_offset(row, size);
                    for (Index j = 0; j < size.back(); ++j) dst[j] = sum[from + j] / count[from + j];
                });
            }
        }
        results.push_back(std::move(result));
        s.sum = Tensor<T>();
        s.count = Tensor<T>();
    }
    return results;
}

// The same for a predictor of one output: predict takes windows [n, C, roi...] and returns [n, C', out...];
// the result is [B, C', int(size * out / roi)...].
template <class T, class Predictor>
Tensor<T> sliding_window_inference(const Tensor<T>& x, const SlidingWindowConfig& config,
                                   Predictor&& predict) {
    std::vector<Tensor<T>> out = sliding_window_inference_outputs<T>(
        x, config, [&](const Tensor<T>& windows) { return std::vector<Tensor<T>>{predict(windows)}; });
    return std::move(out[0]);
}

}  // namespace vit3d::models
