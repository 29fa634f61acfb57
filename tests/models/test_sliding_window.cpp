// sliding_window_inference against MONAI's sliding_window_inference (fixtures made by
// tests/fixtures/make_sliding_window_fixtures.py), with the fixture's token-grid predictor written here as
// plain loops; the window plan, the importance map and the errors on their own.
//
// Tolerances: float32 1e-5 and float64 1e-12 of max(1, max |reference|). The windows, the weights, the
// accumulation order and the division are MONAI's; what differs is the predictor's arithmetic (torch's
// convolution sums in another order) and, in float32, its tanh. Observed: 1.8e-7 (float32) and 3.3e-16
// (float64) at worst over the cases.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>
#include <vit3d/io/safetensors.hpp>
#include <vit3d/models/sliding_window.hpp>

#include "support/fixtures.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace models = vit3d::models;

Index cells_of(const Shape& s) {
    Index n = 1;
    for (Index d : s) n *= d;
    return n;
}

// The fixture's input: ((i * 7919) % 1009) / 1009 - 0.5 over the flat index, in double, then T.
template <class T>
Tensor<T> formula_input(const Shape& shape) {
    Tensor<T> x = Tensor<T>::empty(shape);
    for (Index i = 0; i < x.size(); ++i)
        x.data()[i] = static_cast<T>(static_cast<double>((i * 7919) % 1009) / 1009.0 - 0.5);
    return x;
}

// TokenGridPredictor of the fixture script: a convolution with stride = kernel = patch, plus a position
// table, tanh, and a linear head over each cell's channels. [n, C, roi...] -> [n, out, roi / patch...].
template <class T>
struct TokenGridPredictor {
    Tensor<T> embed_weight, embed_bias, pos, head_weight, head_bias;
    Shape patch;
    mutable Index calls = 0;
    mutable Index largest_batch = 0;

    Tensor<T> operator()(const Tensor<T>& x) const {
        ++calls;
        largest_batch = std::max(largest_batch, x.dim(0));
        const std::size_t rank = patch.size();
        const Index n = x.dim(0), channels = x.dim(1), dim = embed_weight.dim(0), out = head_weight.dim(0);
        const Shape roi(x.shape().begin() + 2, x.shape().end());
        Shape grid(rank);
        for (std::size_t a = 0; a < rank; ++a) grid[a] = roi[a] / patch[a];
        const Index grid_cells = cells_of(grid), patch_cells = cells_of(patch), roi_cells = cells_of(roi);
        Shape out_shape{n, out};
        out_shape.insert(out_shape.end(), grid.begin(), grid.end());
        Tensor<T> y = Tensor<T>::empty(out_shape);
        std::vector<T> token(static_cast<std::size_t>(dim));
        for (Index b = 0; b < n; ++b) {
            for (Index g = 0; g < grid_cells; ++g) {
                Shape cell(rank);
                for (Index a = static_cast<Index>(rank), rest = g; a-- > 0;) {
                    cell[static_cast<std::size_t>(a)] = rest % grid[static_cast<std::size_t>(a)];
                    rest /= grid[static_cast<std::size_t>(a)];
                }
                for (Index d = 0; d < dim; ++d) {
                    T sum = embed_bias.data()[d];
                    for (Index c = 0; c < channels; ++c) {
                        for (Index k = 0; k < patch_cells; ++k) {
                            Index offset = 0;
                            for (Index a = 0, rest = k, stride = patch_cells; a < static_cast<Index>(rank);
                                 ++a) {
                                const auto ua = static_cast<std::size_t>(a);
                                stride /= patch[ua];
                                const Index within = rest / stride;
                                rest %= stride;
                                offset = offset * roi[ua] + cell[ua] * patch[ua] + within;
                            }
                            sum += embed_weight.data()[(d * channels + c) * patch_cells + k] *
                                   x.data()[(b * channels + c) * roi_cells + offset];
                        }
                    }
                    token[static_cast<std::size_t>(d)] = std::tanh(sum + pos.data()[d * grid_cells + g]);
                }
                for (Index o = 0; o < out; ++o) {
                    T sum = head_bias.data()[o];
                    for (Index d = 0; d < dim; ++d)
                        sum += head_weight.data()[o * dim + d] * token[static_cast<std::size_t>(d)];
                    y.data()[(b * out + o) * grid_cells + g] = sum;
                }
            }
        }
        return y;
    }
};

template <class T>
struct Case {
    vit3d::io::Safetensors file;
    nlohmann::json setting;
    models::SlidingWindowConfig config;
    TokenGridPredictor<T> predictor;

    explicit Case(const std::string& name)
        : file(vit3d::io::Safetensors::read(std::string(VIT3D_TEST_FIXTURE_DIR) + "/sliding_window/" + name +
                                            (std::is_same_v<T, float> ? "_f32" : "_f64") + ".safetensors")),
          setting(nlohmann::json::parse(file.metadata().at("case"))) {
        config.roi_size = setting.at("roi").get<Shape>();
        config.sw_batch_size = setting.at("sw_batch_size").get<Index>();
        config.overlap = setting.at("overlap").get<std::vector<double>>();
        config.mode =
            setting.at("mode") == "gaussian" ? models::BlendMode::gaussian : models::BlendMode::constant;
        config.sigma_scale = setting.at("sigma_scale").get<std::vector<double>>();
        config.cval = setting.at("cval").get<double>();
        predictor = {file.get<T>("param.embed.weight"), file.get<T>("param.embed.bias"),
                     file.get<T>("param.pos"),          file.get<T>("param.head.weight"),
                     file.get<T>("param.head.bias"),    setting.at("patch").get<Shape>()};
    }
    Tensor<T> input() const { return formula_input<T>(setting.at("shape").get<Shape>()); }
};

template <class T>
constexpr double stated_tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <class T>
class SlidingWindowParity : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SlidingWindowParity, Types);

TYPED_TEST(SlidingWindowParity, MatchesMonaiOnEveryCase) {
    using T = TypeParam;
    for (const char* name :
         {"volume_constant", "volume_gaussian", "volume_padded", "image_constant", "image_gaussian"}) {
        SCOPED_TRACE(name);
        Case<T> c(name);
        const Tensor<T> x = c.input();
        const Tensor<T> y = models::sliding_window_inference<T>(x, c.config, std::cref(c.predictor));
        EXPECT_TRUE(
            vit3d::test::MatchesReference(y, c.file.template get<T>("out.output"), stated_tolerance<T>()));
        EXPECT_LE(c.predictor.largest_batch, c.config.sw_batch_size);
        const models::SlidingWindowPlan plan =
            models::sliding_window_plan(Shape(x.shape().begin() + 2, x.shape().end()), c.config);
        const Index batches =
            (plan.windows() * x.dim(0) + c.config.sw_batch_size - 1) / c.config.sw_batch_size;
        EXPECT_EQ(c.predictor.calls, batches);
    }
}

TYPED_TEST(SlidingWindowParity, ImportanceMapEqualsMonaisExactly) {
    using T = TypeParam;
    for (const char* name : {"volume_constant", "volume_gaussian", "volume_padded", "image_gaussian"}) {
        SCOPED_TRACE(name);
        Case<T> c(name);
        const Tensor<T> map =
            models::importance_map<T>(c.config.roi_size, c.config.mode, c.config.sigma_scale);
        EXPECT_TRUE(vit3d::test::MatchesReference(map, c.file.template get<T>("out.importance_map"), 0.0));
    }
}

TEST(SlidingWindowPlan, PlacesWindowsAsDensePatchSlices) {
    models::SlidingWindowConfig c;
    c.roi_size = {16, 12, 16};
    c.overlap = {0.25};
    const models::SlidingWindowPlan plan = models::sliding_window_plan({38, 33, 27}, c);
    EXPECT_EQ(plan.interval, (Shape{12, 9, 12}));
    EXPECT_EQ(plan.starts[0], (Shape{0, 12, 22}));  // the last moved back to end at 38
    EXPECT_EQ(plan.starts[1], (Shape{0, 9, 18, 21}));
    EXPECT_EQ(plan.starts[2], (Shape{0, 11}));
    EXPECT_EQ(plan.windows(), 24);
    EXPECT_EQ(plan.window_start(5), (Shape{0, 18, 11}));
}

TEST(SlidingWindowPlan, PadsAnAxisShorterThanTheWindowAndCoversItOnce) {
    models::SlidingWindowConfig c;
    c.roi_size = {16, 16};
    c.overlap = {0.5};
    const models::SlidingWindowPlan plan = models::sliding_window_plan({11, 40}, c);
    EXPECT_EQ(plan.padded_size, (Shape{16, 40}));
    EXPECT_EQ(plan.pad_before, (Shape{2, 0}));  // 5 = 2 before + 3 after
    EXPECT_EQ(plan.interval, (Shape{16, 8}));
    EXPECT_EQ(plan.starts[0], (Shape{0}));
    EXPECT_EQ(plan.starts[1], (Shape{0, 8, 16, 24}));
}

TEST(SlidingWindow, WindowsOfTheWholeInputGiveThePredictionItself) {
    const Tensor<double> x = formula_input<double>({1, 2, 8, 8});
    models::SlidingWindowConfig c;
    c.roi_size = {8, 8};
    c.mode = models::BlendMode::gaussian;
    const auto twice = [](const Tensor<double>& w) {
        Tensor<double> y = w;
        for (double& v : y) v *= 2;
        return y;
    };
    const Tensor<double> y = models::sliding_window_inference<double>(x, c, twice);
    ASSERT_EQ(y.shape(), x.shape());
    for (Index i = 0; i < x.size(); ++i) EXPECT_DOUBLE_EQ(y.data()[i], 2 * x.data()[i]);
}

TEST(SlidingWindow, GivesEveryOutputOfAPredictorAtItsOwnScale) {
    const Tensor<float> x = formula_input<float>({1, 1, 20, 12});
    models::SlidingWindowConfig c;
    c.roi_size = {8, 8};
    c.overlap = {0.5};
    const auto two = [](const Tensor<float>& w) {
        // The window's mean per 4 x 4 cell, and the window as it is.
        Tensor<float> pooled = Tensor<float>::zeros({w.dim(0), 1, 2, 2});
        for (Index n = 0; n < w.dim(0); ++n)
            for (Index i = 0; i < 8; ++i)
                for (Index j = 0; j < 8; ++j) pooled(n, 0, i / 4, j / 4) += w(n, 0, i, j) / 16;
        return std::vector<Tensor<float>>{pooled, w};
    };
    const std::vector<Tensor<float>> y = models::sliding_window_inference_outputs<float>(x, c, two);
    ASSERT_EQ(y.size(), 2u);
    EXPECT_EQ(y[0].shape(), (Shape{1, 1, 5, 3}));
    ASSERT_EQ(y[1].shape(), x.shape());
    for (Index i = 0; i < x.size(); ++i) EXPECT_NEAR(y[1].data()[i], x.data()[i], 1e-6);
}

TEST(SlidingWindow, NamesTheOperationAndTheValuesItRefuses) {
    const Tensor<float> x = Tensor<float>::zeros({1, 1, 20, 20});
    const auto same = [](const Tensor<float>& w) { return w; };
    models::SlidingWindowConfig c;
    c.roi_size = {8, 8, 8};
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, same); },
                ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr(
                    "vit3d::models::sliding_window_inference: expected config.roi_size with 2 lengths")));
    c.roi_size = {8, 0};
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, same); },
                ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr("got [8, 0]")));
    c.roi_size = {8, 8};
    c.overlap = {1.0};
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, same); },
                ::testing::ThrowsMessage<vit3d::config_error>(
                    HasSubstr("expected config.overlap in [0, 1), got [1]")));
    c.overlap = {0.25, 0.25, 0.25};
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, same); },
                ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr("1 value or 2")));
    c.overlap = {0.25};
    c.sw_batch_size = 0;
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, same); },
                ::testing::ThrowsMessage<vit3d::config_error>(HasSubstr("sw_batch_size >= 1, got 0")));
    c.sw_batch_size = 2;
    EXPECT_THAT(
        [&] {
            models::sliding_window_inference<float>(Tensor<float>::zeros({4, 4}), c, same);
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("expected input [B, C, spatial...]")));
    const auto drops_batch = [](const Tensor<float>& w) { return w.narrow(0, 0, 1); };
    EXPECT_THAT([&] { models::sliding_window_inference<float>(x, c, drops_batch); },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr(
                    "expected output 0 of the predictor for 2 window(s) to be [2, C, 2 spatial lengths], "
                    "got [1, 1, 8, 8]")));
    // 22 -> 15 cells: 22 * (15 / 22.0) is 14.999..., so the first window would land on 14 cells (MONAI
    // fails there too, on a shape mismatch).
    c.roi_size = {22, 22};
    const auto fifteen = [](const Tensor<float>& w) { return Tensor<float>::zeros({w.dim(0), 1, 15, 15}); };
    EXPECT_THAT(
        [&] {
            models::sliding_window_inference<float>(Tensor<float>::zeros({1, 1, 30, 22}), c, fifteen);
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("lands on output cells [0, 14) of axis 0, which do not hold the predictor's 15")));
}

}  // namespace
