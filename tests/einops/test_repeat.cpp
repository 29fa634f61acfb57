// vit3d::repeat / vit3d::Repeat: new axes, tiling and upsampling against explicit loops, and errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vit3d.hpp>

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;

TEST(Repeat, BroadcastsAClassTokenOverTheBatch) {
    const auto cls = Tensor<float>::randn({1, 1, 8}, 1);
    const auto batch = vit3d::repeat(cls, "1 1 d -> b 1 d", {{"b", 3}});
    ASSERT_EQ(batch.shape(), (Shape{3, 1, 8}));
    for (Index b = 0; b < 3; ++b)
        for (Index d = 0; d < 8; ++d) EXPECT_EQ(batch(b, 0, d), cls(0, 0, d));
}

TEST(Repeat, TilesAndUpsamplesInEinopsOrder) {
    const auto x = Tensor<float>::arange(6).reshape({2, 3});
    // (h 2): each row twice in a row; (repeat h): the whole image twice.
    const auto up = vit3d::repeat(x, "h w -> (h 2) (w 2)");
    const auto tiled = vit3d::repeat(x, "h w -> (r h) w", {{"r", 2}});
    for (Index h = 0; h < 4; ++h)
        for (Index w = 0; w < 6; ++w) EXPECT_EQ(up(h, w), x(h / 2, w / 2));
    for (Index h = 0; h < 4; ++h)
        for (Index w = 0; w < 3; ++w) EXPECT_EQ(tiled(h, w), x(h % 2, w));
    const auto channels = vit3d::repeat(x, "h w -> h w 3");
    ASSERT_EQ(channels.shape(), (Shape{2, 3, 3}));
    EXPECT_EQ(channels(1, 2, 0), 5);
    EXPECT_EQ(channels(1, 2, 2), 5);
}

TEST(Repeat, LargeBroadcastRunsInParallelAndStaysExact) {
    const auto row = Tensor<float>::randn({1000}, 2);
    const auto many = vit3d::repeat(row, "d -> n d", {{"n", 600}});
    for (Index n = 0; n < 600; n += 37)
        for (Index d = 0; d < 1000; ++d) ASSERT_EQ(many(n, d), row(d));
    const auto cols = vit3d::repeat(row, "d -> d n", {{"n", 300}});
    for (Index d = 0; d < 1000; d += 13)
        for (Index n = 0; n < 300; ++n) ASSERT_EQ(cols(d, n), row(d));
}

TEST(Repeat, ZeroRepeatsGiveAnEmptyTensor) {
    const auto x = Tensor<float>::ones({2, 3});
    EXPECT_EQ(vit3d::repeat(x, "a b -> c b a", {{"c", 0}}).shape(), (Shape{0, 3, 2}));
}

TEST(Repeat, CompiledRepeatMatchesTheFreeFunction) {
    const vit3d::Repeat expand("b d -> b n d", {{"n", 4}});
    const auto x = Tensor<double>::randn({2, 5}, 3);
    EXPECT_EQ(expand(x), vit3d::repeat(x, "b d -> b n d", {{"n", 4}}));
    EXPECT_EQ(expand.axis_lengths().front().first, "n");
}

TEST(Repeat, IntoWritesAPreallocatedOutput) {
    const vit3d::Repeat expand("b d -> b n d", {{"n", 3}});
    const auto x = Tensor<float>::randn({2, 4}, 4);
    auto out = Tensor<float>::zeros({2, 3, 4});
    expand.into(x, out);
    EXPECT_EQ(out, expand(x));
    auto wrong = Tensor<float>::zeros({2, 4, 3});
    EXPECT_THROW(expand.into(x, wrong), vit3d::shape_error);
}

TEST(Repeat, ErrorsNameTheAxis) {
    const Tensor<float> x({2, 3});
    EXPECT_THAT([&] { vit3d::repeat(x, "h w -> h w c"); },
                ::testing::ThrowsMessage<vit3d::pattern_error>(HasSubstr("new axis 'c' needs a length")));
    EXPECT_THAT([&] { vit3d::repeat(x, "h w -> h"); },
                ::testing::ThrowsMessage<vit3d::pattern_error>(
                    HasSubstr("every input axis must appear in the output of repeat, but 'w' do not")));
    EXPECT_THAT([&] { vit3d::repeat(x, "h 3 -> h"); },
                ::testing::ThrowsMessage<vit3d::pattern_error>(HasSubstr("'3'")));
    EXPECT_THROW(vit3d::Repeat("h w -> h w c", {{"d", 2}}), vit3d::pattern_error);
}

}  // namespace
