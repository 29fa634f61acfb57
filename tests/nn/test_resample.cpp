// Position-table resampling: identities, partition of unity, prefix rows, the kernels' taps at known
// points, and errors. Values against torch's F.interpolate come from the fixture tests.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace nn = vit3d::nn;

const nn::Interpolation kAll[] = {nn::Interpolation::bicubic_align_corners, nn::Interpolation::bicubic,
                                  nn::Interpolation::bicubic_antialias, nn::Interpolation::linear};

TEST(ResamplePosEmbed, SameGridIsTheIdentityForEveryKernel) {
    const auto table = Tensor<double>::randn({1, 1 + 12, 5}, 1);
    for (auto mode : kAll)
        EXPECT_TENSOR_CLOSE((nn::resample_pos_embed<double, 2>(table, {3, 4}, {3, 4}, 1, mode)), table, 1e-12,
                            1e-12);
}

TEST(ResamplePosEmbed, ConstantTablesStayConstantAndPrefixRowsAreKept) {
    auto table = Tensor<double>::full({1, 1 + 4 * 4 * 2, 3}, 0.25);
    for (Index d = 0; d < 3; ++d) table(0, 0, d) = 7.0 + d;  // the class token's row
    for (auto mode : kAll)
        for (const std::array<Index, 3>& grid :
             {std::array<Index, 3>{7, 3, 5}, std::array<Index, 3>{2, 2, 1}}) {
            const auto out = nn::resample_pos_embed<double, 3>(table, {4, 4, 2}, grid, 1, mode);
            ASSERT_EQ(out.shape(), (Shape{1, 1 + grid[0] * grid[1] * grid[2], 3}));
            EXPECT_TENSOR_CLOSE(out.narrow(1, 0, 1), table.narrow(1, 0, 1), 0, 0);
            EXPECT_TENSOR_CLOSE(out.narrow(1, 1, out.dim(1) - 1),
                                Tensor<double>::full({1, out.dim(1) - 1, 3}, 0.25), 1e-12, 1e-12);
        }
}

TEST(ResamplePosEmbed, AlignCornersBicubicKeepsTheCornerValues) {
    const auto table = Tensor<double>::randn({1, 16, 1}, 2);
    const auto out = nn::resample_pos_embed<double, 2>(table, {4, 4}, {7, 10}, 0,
                                                       nn::Interpolation::bicubic_align_corners);
    EXPECT_NEAR(out(0, 0, 0), table(0, 0, 0), 1e-12);
    EXPECT_NEAR(out(0, 9, 0), table(0, 3, 0), 1e-12);
    EXPECT_NEAR(out(0, 60, 0), table(0, 12, 0), 1e-12);
    EXPECT_NEAR(out(0, 69, 0), table(0, 15, 0), 1e-12);
}

TEST(ResamplePosEmbed, LinearHalvesBetweenTwoSamples) {
    // 2 -> 4 along one axis with align_corners=False: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> 1).
    const Tensor<double> table({1, 2, 1}, std::vector<double>{0.0, 1.0});
    const auto out = nn::resample_pos_embed<double, 2>(table, {1, 2}, {1, 4}, 0, nn::Interpolation::linear);
    EXPECT_TENSOR_CLOSE(out, Tensor<double>({1, 4, 1}, std::vector<double>{0.0, 0.25, 0.75, 1.0}), 1e-12,
                        1e-12);
}

TEST(ResamplePosEmbed, RejectsTablesThatDoNotMatchTheGrid) {
    const Tensor<float> table({1, 17, 4});
    auto resample = [&](std::array<Index, 2> to, Index prefix) {
        return nn::resample_pos_embed<float, 2>(table, {4, 4}, to, prefix, nn::Interpolation::bicubic);
    };
    EXPECT_THAT(
        [&] {
            resample({8, 8}, 0);
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("expected a table [1, 0 + 16, D]")));
    EXPECT_THROW(resample({0, 8}, 1), vit3d::shape_error);
}

}  // namespace
