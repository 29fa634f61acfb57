#pragma once
// Intensity transforms on a SpatialImage, as MONAI computes them:
//   ScaleIntensityRange  (x - a_min) / (a_max - a_min), then (when b_min and b_max are both given)
//                        * (b_max - b_min) + b_min, then (with clip) clamped to [b_min, b_max]: the CT window
//                        of most 3D pipelines (Merlin: a_min -1000, a_max 1000, b_min 0, b_max 1, clip);
//   NormalizeIntensity   (x - subtrahend) / divisor, each the mean and the population standard deviation of
//                        the image (or of each channel, channel_wise; of the nonzero voxels only, nonzero)
//                        when not given; a zero divisor counts as 1; with nonzero, zeros stay zero.
// Each step is computed in T as torch does it on a T tensor: one rounding per operation, the constants
// (a_max - a_min and the others, computed in double as Python does) rounded to T. MONAI ends both with a
// conversion to float32 (their dtype argument); vit3d keeps T, so a double pipeline stays double.

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

#include "vit3d/core/config.hpp"
#include "vit3d/core/error.hpp"
#include "vit3d/core/fields.hpp"
#include "vit3d/tensor/tensor.hpp"
#include "vit3d/transforms/spatial_image.hpp"

namespace vit3d::transforms {

// MONAI's ScaleIntensityRange(a_min, a_max, b_min, b_max, clip).
struct ScaleIntensityRange {
    static constexpr const char* name = "ScaleIntensityRange";
    double a_min = 0;
    double a_max = 1;
    std::optional<double> b_min;
    std::optional<double> b_max;
    bool clip = false;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("a_min", c.a_min, "the input value mapped to b_min"));
        f(field("a_max", c.a_max, "the input value mapped to b_max"));
        f(field("b_min", c.b_min, "the output of a_min (null: the scaled value, 0)"));
        f(field("b_max", c.b_max, "the output of a_max (null: the scaled value, 1)"));
        f(field("clip", c.clip, "clamp the output to [b_min, b_max]"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(SpatialImage<T> image) const {
        const char* op = "vit3d::transforms::ScaleIntensityRange";
        for (const double v : {a_min, a_max, b_min.value_or(0.0), b_max.value_or(0.0)})
            if (!std::isfinite(v))
                throw std::invalid_argument(message(op, ": expected finite a_min, a_max, b_min, b_max, got ",
                                                    a_min, ", ", a_max, ", ", b_min.value_or(0.0), ", ",
                                                    b_max.value_or(0.0)));
        T* x = image.data.data();
        const Index n = image.data.size();
        const T low = static_cast<T>(a_min);
        if (a_max - a_min == 0.0) {  // MONAI's degenerate case: a shift only, no clip
            const T shift = static_cast<T>(b_min.value_or(0.0));
            for (Index i = 0; i < n; ++i) x[i] = b_min ? T(x[i] - low) + shift : T(x[i] - low);
            return image;
        }
        const T width = static_cast<T>(a_max - a_min);
        const bool scaled = b_min && b_max;
        const T span = static_cast<T>(scaled ? *b_max - *b_min : 1.0),
                offset = static_cast<T>(b_min.value_or(0.0));
        for (Index i = 0; i < n; ++i) {
            T v = T(x[i] - low) / width;
            if (scaled) v = T(v * span) + offset;
            if (clip) {
                if (b_min && v < static_cast<T>(*b_min)) v = static_cast<T>(*b_min);
                if (b_max && v > static_cast<T>(*b_max)) v = static_cast<T>(*b_max);
            }
            x[i] = v;
        }
        return image;
    }
};

// MONAI's NormalizeIntensity(subtrahend, divisor, nonzero, channel_wise).
struct NormalizeIntensity {
    static constexpr const char* name = "NormalizeIntensity";
    std::optional<std::vector<double>> subtrahend;  // one value, or one per channel with channel_wise
    std::optional<std::vector<double>> divisor;
    bool nonzero = false;
    bool channel_wise = false;

    template <class Self, class F>
    static void list_fields(Self& c, F&& f) {
        f(field("subtrahend", c.subtrahend, "subtracted (null: the mean), one or one per channel"));
        f(field("divisor", c.divisor, "divided by (null: the standard deviation), one or one per channel"));
        f(field("nonzero", c.nonzero, "statistics of, and changes to, the nonzero voxels only"));
        f(field("channel_wise", c.channel_wise, "each channel on its own"));
    }
    VIT3D_VISIT_FIELDS_WITH(list_fields)

    template <class T>
    SpatialImage<T> operator()(SpatialImage<T> image) const {
        const char* op = "vit3d::transforms::NormalizeIntensity";
        detail::check_spatial_image(image, op);
        const Index channels = image.channels();
        const std::size_t wanted = channel_wise ? static_cast<std::size_t>(channels) : 1;
        for (const auto* given : {&subtrahend, &divisor})
            if (*given && (*given)->size() != wanted)
                throw std::invalid_argument(message(
                    op, ": expected ", wanted, channel_wise ? " values (one per channel)" : " value", " for ",
                    given == &subtrahend ? "subtrahend" : "divisor", ", got ", (*given)->size()));
        const Index per_channel = image.data.size() / std::max<Index>(channels, 1);
        const Index groups = channel_wise ? channels : 1;
        const Index group_size = channel_wise ? per_channel : image.data.size();
        for (Index g = 0; g < groups; ++g)
            normalize(image.data.data() + g * group_size, group_size, static_cast<std::size_t>(g));
        return image;
    }

  private:
    template <class T>
    void normalize(T* x, Index n, std::size_t group) const {
        // Mean and population standard deviation in double (torch reduces in T with a cascade: the two
        // agree to an ulp of T), then rounded to T as torch's .item() and the scalar operation round them.
        Index count = 0;
        double sum = 0;
        for (Index i = 0; i < n; ++i)
            if (!nonzero || x[i] != T(0)) {
                sum += static_cast<double>(x[i]);
                ++count;
            }
        if (count == 0) return;  // nonzero and no nonzero voxel: unchanged, as MONAI
        const double mean = static_cast<double>(static_cast<T>(sum / static_cast<double>(count)));
        double sub = subtrahend ? (*subtrahend)[group] : mean;
        double div = 0;
        if (divisor) {
            div = (*divisor)[group];
        } else {
            const double exact_mean = sum / static_cast<double>(count);
            double squares = 0;
            for (Index i = 0; i < n; ++i)
                if (!nonzero || x[i] != T(0)) {
                    const double d = static_cast<double>(x[i]) - exact_mean;
                    squares += d * d;
                }
            div = static_cast<double>(static_cast<T>(std::sqrt(squares / static_cast<double>(count))));
        }
        if (div == 0.0) div = 1.0;
        if (!std::isfinite(sub) || !std::isfinite(div))
            throw std::invalid_argument(
                message("vit3d::transforms::NormalizeIntensity: expected a finite "
                        "subtrahend and divisor, got ",
                        sub, " and ", div));
        const T s = static_cast<T>(sub), d = static_cast<T>(div);
        for (Index i = 0; i < n; ++i)
            if (!nonzero || x[i] != T(0)) x[i] = T(x[i] - s) / d;
    }
};

}  // namespace vit3d::transforms
