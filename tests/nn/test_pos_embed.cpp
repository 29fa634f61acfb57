// Positional embeddings: learned tables, the Reg2RG factorized 3D table (including its stride rule for
// smaller grids) and the sin-cos variants' layout. Values against the reference packages come from the
// fixture tests.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vit3d.hpp>

#include "support/tensor_testing.hpp"

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace nn = vit3d::nn;

TEST(LearnedPosEmbed, AddsOneRowPerTokenAndRejectsOtherLengths) {
    nn::LearnedPosEmbed<float> pe{Tensor<float>::randn({1, 5, 4}, 1)};
    const auto x = Tensor<float>::randn({2, 5, 4}, 2);
    EXPECT_TENSOR_EQ(pe.forward(x), x + pe.table);
    EXPECT_THAT(
        [&] {
            pe.forward(Tensor<float>({2, 6, 4}));
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("resample the table")));
    nn::LearnedPosEmbed<float> flat{Tensor<float>::randn({5, 4}, 3)};  // vit-pytorch >= 1.16 stores [N, D]
    EXPECT_TENSOR_EQ(flat.forward(x), x + flat.table);
}

TEST(FactorizedPosEmbed3d, ConcatenatesRowColumnAndDepthTables) {
    nn::FactorizedPosEmbed3d<float> pe(2, {4, 2, 6});
    pe.visit_parameters(
        [s = 10](const std::string&, Tensor<float>& t) mutable { t = Tensor<float>::randn(t.shape(), s++); });
    const auto pos = pe.embedding({4, 2, 6});
    ASSERT_EQ(pos.shape(), (Shape{1, 48, 6}));
    for (Index a = 0; a < 4; ++a)
        for (Index b = 0; b < 2; ++b)
            for (Index c = 0; c < 6; ++c)
                for (Index f = 0; f < 2; ++f) {
                    const Index t = (a * 2 + b) * 6 + c;
                    EXPECT_EQ(pos(0, t, f), pe.row_embed(a, f));
                    EXPECT_EQ(pos(0, t, 2 + f), pe.col_embed(b, f));
                    EXPECT_EQ(pos(0, t, 4 + f), pe.dep_embed(c, f));
                }
}

TEST(FactorizedPosEmbed3d, SmallerGridsReadTheLastRowOfEachStrideGroup) {
    nn::FactorizedPosEmbed3d<double> pe(1, {16, 4, 8});
    pe.row_embed = Tensor<double>::arange(16).reshape({16, 1});
    pe.col_embed = Tensor<double>::arange(4).reshape({4, 1});
    pe.dep_embed = Tensor<double>::arange(8).reshape({8, 1});
    // Reg2RG's 256x256x64 input on tables for 512x512x512: rows 1, 3, ..., 15 of the first table.
    const auto pos = pe.embedding({8, 4, 3});
    EXPECT_EQ(pos(0, 0, 0), 1.0);
    EXPECT_EQ(pos(0, 1 * 4 * 3, 0), 3.0);
    EXPECT_EQ(pos(0, 7 * 4 * 3, 0), 15.0);
    EXPECT_EQ(pos(0, 0, 2), 1.0);  // depth: 8 / 3 = 2, rows 1, 3, 5 (a prefix only, as the reference)
    EXPECT_EQ(pos(0, 2, 2), 5.0);
    EXPECT_THAT(
        [&] {
            pe.embedding({17, 4, 8});
        },
        ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("grid axis 0 has 17 patches")));
    const auto x = Tensor<double>::randn({2, 8 * 4 * 3, 3}, 4);
    EXPECT_TENSOR_EQ(pe.forward(x, {8, 4, 3}), x + pos);
    EXPECT_THROW(pe.forward(x, {8, 4, 2}), vit3d::shape_error);
}

nn::SliceDistanceBiasConfig slice_config(Index heads, Index levels, std::size_t axis, bool prefix_bias) {
    nn::SliceDistanceBiasConfig c;
    c.heads = heads;
    c.levels = levels;
    c.slice_axis = axis;
    c.prefix_bias = prefix_bias;
    return c;
}

TEST(SliceDistanceBias, DependsOnlyOnTheSliceDistanceClippedAtTheMaximum) {
    nn::SliceDistanceBias<float> slices(slice_config(2, 3, 0, false));
    slices.table = Tensor<float>({2, 3}, std::vector<float>{0, 1, 2, 10, 11, 12});
    const auto bias = slices.bias({4, 1, 2}, 1);  // 8 tokens on 4 slices, after a class token
    ASSERT_EQ(bias.shape(), (Shape{1, 2, 9, 9}));
    EXPECT_EQ(bias(0, 1, 0, 5), 0.0f);  // class-token row and column are 0 without prefix biases
    EXPECT_EQ(bias(0, 1, 5, 0), 0.0f);
    EXPECT_EQ(bias(0, 0, 1, 2), 0.0f);   // tokens 0 and 1 share slice 0
    EXPECT_EQ(bias(0, 1, 1, 3), 11.0f);  // slices 0 and 1
    EXPECT_EQ(bias(0, 0, 8, 1), 2.0f);   // slices 3 and 0: distance 3 clipped to 2
    EXPECT_THROW(nn::SliceDistanceBias<float>(slice_config(2, 1, 3, false)), vit3d::shape_error);
}

TEST(SliceDistanceBias, PrefixTokensTakeTheirOwnRowAndColumnValues) {
    nn::SliceDistanceBias<float> slices(slice_config(2, 2, 1, true));
    slices.table = Tensor<float>({2, 2}, std::vector<float>{1, 2, 3, 4});
    slices.prefix_row = Tensor<float>({2}, std::vector<float>{-1, -2});
    slices.prefix_col = Tensor<float>({2}, std::vector<float>{5, 6});
    const auto bias = slices.bias({1, 3, 2}, 1);  // slices along grid axis 1: tokens 0-1, 2-3, 4-5
    EXPECT_EQ(bias(0, 0, 0, 0), -1.0f);           // the class token's row, its own column included
    EXPECT_EQ(bias(0, 1, 0, 4), -2.0f);
    EXPECT_EQ(bias(0, 0, 3, 0), 5.0f);  // its column seen from a patch token
    EXPECT_EQ(bias(0, 1, 6, 0), 6.0f);
    EXPECT_EQ(bias(0, 1, 1, 6), 4.0f);  // slices 0 and 2: distance 2 clipped to level 1
    const auto tables = slices.describe({1, 3, 2}, 1);
    EXPECT_EQ(tables.slices, (std::vector<Index>{0, 0, 1, 1, 2, 2}));
    EXPECT_EQ(tables.distances, 3);
    EXPECT_EQ(tables.by_distance, (std::vector<float>{1, 2, 2, 3, 4, 4}));
    slices.prefix_col.reset();
    EXPECT_THROW(slices.describe({1, 3, 2}, 1), vit3d::shape_error);
}

TEST(SinCos, MaeMonai2dPutsTheFastAxisBlockFirst) {
    const Index D = 8, K = 2;  // K = D / 4 frequencies: 1 and 10000^(-1/2)
    const auto pos = nn::sincos_position_embedding<double, 2>({3, 5}, D, nn::SinCosVariant::mae_monai);
    ASSERT_EQ(pos.shape(), (Shape{1, 15, 8}));
    const Index h = 2, w = 4, t = h * 5 + w;
    const double omega1 = std::pow(10000.0, -0.5);
    EXPECT_DOUBLE_EQ(pos(0, t, 0), std::sin(w * 1.0));
    EXPECT_DOUBLE_EQ(pos(0, t, 1), std::sin(w * omega1));
    EXPECT_DOUBLE_EQ(pos(0, t, K + 1), std::cos(w * omega1));
    EXPECT_DOUBLE_EQ(pos(0, t, 2 * K), std::sin(h * 1.0));
    EXPECT_DOUBLE_EQ(pos(0, t, 3 * K + 1), std::cos(h * omega1));
}

TEST(SinCos, VitPytorch3dUsesKMinusOneAndPadsWithZeros) {
    const Index D = 20;  // K = 20 / 6 = 3, 18 values + 2 zeros
    const auto pos = nn::sincos_position_embedding<float, 3>({2, 3, 4}, D, nn::SinCosVariant::vit_pytorch);
    const Index f = 1, h = 2, w = 3, t = (f * 3 + h) * 4 + w;
    EXPECT_FLOAT_EQ(pos(0, t, 2), static_cast<float>(std::sin(w * 1e-4)));  // last omega is exactly 1/10000
    EXPECT_FLOAT_EQ(pos(0, t, 6), static_cast<float>(std::sin(h * 1.0)));   // then y = h
    EXPECT_FLOAT_EQ(pos(0, t, 12), static_cast<float>(std::sin(f * 1.0)));  // then z = f
    EXPECT_EQ(pos(0, t, 18), 0.0f);
    EXPECT_EQ(pos(0, t, 19), 0.0f);
}

TEST(SinCos, MonaiOrders3dBlocksAsWidthHeightDepth) {
    const auto pos = nn::sincos_position_embedding<double, 3>({2, 3, 4}, 6, nn::SinCosVariant::mae_monai);
    const Index h = 1, w = 2, d = 3, t = (h * 3 + w) * 4 + d;  // K = 1, omega = 1
    EXPECT_DOUBLE_EQ(pos(0, t, 0), std::sin(double(w)));
    EXPECT_DOUBLE_EQ(pos(0, t, 2), std::sin(double(h)));
    EXPECT_DOUBLE_EQ(pos(0, t, 4), std::sin(double(d)));
    EXPECT_DOUBLE_EQ(pos(0, t, 5), std::cos(double(d)));
}

TEST(SinCos, RejectsDimsTheVariantCannotSplit) {
    auto table = [](Index dim, nn::SinCosVariant v) {
        return nn::sincos_position_embedding<float, 3>({2, 2, 2}, dim, v);
    };
    EXPECT_THAT([&] { table(20, nn::SinCosVariant::mae_monai); },
                ::testing::ThrowsMessage<vit3d::shape_error>(HasSubstr("needs dim divisible by 6, got 20")));
    // K = 1: vit-pytorch would divide by K - 1 = 0.
    EXPECT_THROW(table(6, nn::SinCosVariant::vit_pytorch), vit3d::shape_error);
}

}  // namespace
