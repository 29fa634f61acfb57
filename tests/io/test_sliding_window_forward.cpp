// io::sliding_window_forward: a loaded 3D ViT run window by window. Windows that tile the input without
// overlap must give each window's own forward pass, placed; vector outputs the mean over the windows; the
// outputs and configs it refuses are named. (The stitching itself is checked against MONAI in
// tests/models/test_sliding_window.cpp.)

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/save_model.hpp>
#include <vit3d/io/sliding_window_inference.hpp>

#include "support/fixtures.hpp"
#include "support/io_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace models = vit3d::models;

io::LoadedModel<double> tiny_volume_model(const std::string& path) {
    models::VisionTransformerConfig<3> c;
    c.input_size = {8, 8, 4};
    c.patch_size = {4, 4, 2};
    c.channels = 1;
    c.dim = 8;
    c.depth = 1;
    c.heads = 2;
    c.mlp_dim = 16;
    c.num_classes = 3;
    models::ViT3D<double> model(c);
    std::uint64_t seed = 7;
    model.visit_parameters([&](const std::string&, Tensor<double>& p) {
        p = Tensor<double>::randn(p.shape(), seed++, 0.0, 0.3);
    });
    io::save_model(path, model, io::no_preprocessing("BCDHW", {8, 8, 4}));
    return io::load_model<double>(path);
}

TEST(SlidingWindowForward, TilesAnInputOfWholeWindowsWithEachWindowsOwnForwardPass) {
    const auto model = tiny_volume_model(vit3d::test::TempPath("tiny.safetensors"));
    const Tensor<double> x = Tensor<double>::randn({2, 1, 16, 8, 8}, 3);
    models::SlidingWindowConfig c;
    c.overlap = {0.0};
    c.sw_batch_size = 3;
    const std::vector<io::ModelOutput> asked{io::ModelOutput::token_grid, io::ModelOutput::cls_attention,
                                             io::ModelOutput::pooled, io::ModelOutput::logits};
    const auto out = io::sliding_window_forward(model, x, asked, c);
    ASSERT_EQ(out.at(io::ModelOutput::token_grid).shape(), (Shape{2, 8, 4, 2, 4}));
    ASSERT_EQ(out.at(io::ModelOutput::cls_attention).shape(), (Shape{2, 2, 4, 2, 4}));
    ASSERT_EQ(out.at(io::ModelOutput::pooled).shape(), (Shape{2, 8}));
    ASSERT_EQ(out.at(io::ModelOutput::logits).shape(), (Shape{2, 3}));
    for (Index b = 0; b < 2; ++b) {
        Tensor<double> pooled = Tensor<double>::zeros({8});
        for (Index i = 0; i < 2; ++i)
            for (Index k = 0; k < 2; ++k) {
                const Tensor<double> window = x.narrow(0, b, 1).narrow(2, 8 * i, 8).narrow(4, 4 * k, 4);
                const auto own = model.forward(window, asked);
                for (io::ModelOutput o : {io::ModelOutput::token_grid, io::ModelOutput::cls_attention}) {
                    const Tensor<double> placed =
                        out.at(o).narrow(0, b, 1).narrow(2, 2 * i, 2).narrow(4, 2 * k, 2);
                    EXPECT_TRUE(vit3d::test::MatchesReference(placed, own.at(o), 1e-14))
                        << io::output_name(o);
                }
                for (Index f = 0; f < 8; ++f)
                    pooled.data()[f] += own.at(io::ModelOutput::pooled).data()[f] / 4;
            }
        EXPECT_TRUE(vit3d::test::MatchesReference(
            out.at(io::ModelOutput::pooled).narrow(0, b, 1).reshape({8}), pooled, 1e-14));
    }
}

TEST(SlidingWindowForward, GivesVectorOutputsAloneAndPadsAShortInput) {
    const auto model = tiny_volume_model(vit3d::test::TempPath("tiny.safetensors"));
    const Tensor<double> x = Tensor<double>::randn({1, 1, 6, 8, 4}, 5);
    const Tensor<double> pooled = io::sliding_window_forward(model, x, io::ModelOutput::pooled);
    // One window: the input padded 1 + 1 with zeros on its first axis.
    Tensor<double> padded = Tensor<double>::zeros({1, 1, 8, 8, 4});
    for (Index i = 0; i < 6; ++i)
        for (Index j = 0; j < 8 * 4; ++j) padded.data()[(i + 1) * 32 + j] = x.data()[i * 32 + j];
    EXPECT_TRUE(vit3d::test::MatchesReference(pooled, model.forward(padded, io::ModelOutput::pooled), 1e-14));
    const Tensor<double> grid = io::sliding_window_forward(model, x, io::ModelOutput::token_grid);
    // The padded grid of 2 cells, cropped to cells round(1 * 2 / 8) = 0 .. round(7 * 2 / 8) = 2.
    EXPECT_EQ(grid.shape(), (Shape{1, 8, 2, 2, 2}));
}

TEST(SlidingWindowForward, RefusesTokensOtherWindowsAndOtherChannels) {
    const auto model = tiny_volume_model(vit3d::test::TempPath("tiny.safetensors"));
    const Tensor<double> x = Tensor<double>::zeros({1, 1, 16, 8, 8});
    EXPECT_THAT([&] { io::sliding_window_forward(model, x, io::ModelOutput::tokens); },
                ::testing::ThrowsMessage<vit3d::config_error>(
                    HasSubstr("vit3d::io::sliding_window_forward: tokens have no place")));
    models::SlidingWindowConfig c;
    c.roi_size = {8, 8, 8};
    EXPECT_THAT([&] { io::sliding_window_forward(model, x, io::ModelOutput::pooled, c); },
                ::testing::ThrowsMessage<vit3d::config_error>(
                    HasSubstr("expected config.roi_size [8, 8, 4] (the model runs at its input size only), "
                              "got [8, 8, 8]")));
    EXPECT_THAT(
        [&] {
            io::sliding_window_forward(model, Tensor<double>::zeros({1, 2, 16, 8, 8}),
                                       io::ModelOutput::pooled);
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(
            HasSubstr("expected input [B, 1, 3 spatial lengths] for this")));
}

}  // namespace
