// GridCache: a value made once per grid, made again when its sources change, none shared by copies; and a
// ViT with dynamic_size, whose resampled position table and rotary tables it keeps, giving the numbers of a
// fresh model after its weights are edited.

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/nn/grid_cache.hpp>

namespace {

using vit3d::Index;
using vit3d::Tensor;
using Cache = vit3d::nn::GridCache<float, Tensor<float>>;

TEST(GridCache, MakesAValueOncePerGridWhileItsSourcesHold) {
    Cache cache;
    Tensor<float> source = Tensor<float>::randn({4, 3}, 1);
    int made = 0;
    const auto make = [&] {
        ++made;
        return source * 2.0f;
    };
    const auto a = cache.get({2, 3}, {&source}, make);
    const auto b = cache.get({2, 3}, {&source}, make);
    EXPECT_EQ(a.get(), b.get());
    EXPECT_EQ(made, 1);
    const auto other = cache.get({3, 2}, {&source}, make);
    EXPECT_NE(other.get(), a.get());
    EXPECT_EQ(made, 2);
    // Written through a raw pointer, without the tensor knowing: the copy compared says so.
    const float was = a->data()[5];
    source.data()[5] += 1.0f;
    const auto c = cache.get({2, 3}, {&source}, make);
    EXPECT_EQ(made, 3);
    EXPECT_EQ(c->data()[5], source.data()[5] * 2.0f);
    EXPECT_EQ(a->data()[5], was);  // the old value lives on while held
    EXPECT_EQ(cache.size(), 2u);
}

TEST(GridCache, KeepsTheMostRecentlyUsedGridsAndCopiesStartEmpty) {
    Cache cache;
    const Tensor<float> source = Tensor<float>::ones({2});
    int made = 0;
    const auto make = [&] {
        ++made;
        return Tensor<float>::ones({1});
    };
    for (Index g = 1; g <= 5; ++g) cache.get({g}, {&source}, make);
    EXPECT_EQ(cache.size(), Cache::capacity);
    cache.get({5}, {&source}, make);  // kept
    EXPECT_EQ(made, 5);
    cache.get({1}, {&source}, make);  // the oldest, dropped
    EXPECT_EQ(made, 6);
    const Cache copy = cache;
    EXPECT_EQ(copy.size(), 0u);
}

TEST(GridCache, ThreadsAskingAtOnceAllGetTheValue) {
    Cache cache;
    const Tensor<float> source = Tensor<float>::randn({64}, 2);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                const Index g = (t + i) % 6;
                const auto v = cache.get({g}, {&source}, [&] { return source * static_cast<float>(g); });
                if (v->data()[7] != source.data()[7] * static_cast<float>(g)) ++wrong;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
}

bool same(const Tensor<float>& a, const Tensor<float>& b) {
    if (a.shape() != b.shape()) return false;
    for (Index i = 0; i < a.size(); ++i)
        if (a.data()[i] != b.data()[i]) return false;
    return true;
}

vit3d::models::VisionTransformerConfig<2> dynamic_config(bool rope) {
    vit3d::models::VisionTransformerConfig<2> c;
    c.input_size = {16, 12};
    c.patch_size = {4, 4};
    c.dim = 16;
    c.depth = 1;
    c.heads = 2;
    c.mlp_dim = 24;
    c.num_classes = 0;
    c.dynamic_size = true;
    c.rope = rope;
    c.rope_variant = vit3d::nn::RotaryVariant::mixed;
    return c;
}

void randomise(vit3d::models::VisionTransformer<float, 2>& model) {
    std::uint64_t seed = 10;
    model.visit_parameters([&](const std::string&, Tensor<float>& t) {
        t = Tensor<float>::randn(t.shape(), ++seed, 0.0f, 0.3f);
    });
}

// A model run at 20 x 8 after its position table and rotary frequencies were edited gives the numbers of a
// copy made after the edit, whose cache starts empty.
TEST(GridCache, AnEditedModelGivesTheNumbersOfAFreshOne) {
    vit3d::models::VisionTransformer<float, 2> model(dynamic_config(true));
    randomise(model);
    const Tensor<float> x = Tensor<float>::randn({1, 3, 20, 8}, 3);
    const Tensor<float> before = model.forward(x).pooled;
    EXPECT_TRUE(same(model.forward(x).pooled, before));
    for (Tensor<float>* edited : {&model.pos_embed.table, &model.rope->freqs}) {
        edited->data()[3] += 0.5f;  // through a pointer
        const vit3d::models::VisionTransformer<float, 2> fresh = model;
        const Tensor<float> after = model.forward(x).pooled;
        EXPECT_TRUE(same(after, fresh.forward(x).pooled));
        EXPECT_FALSE(same(after, before));
    }
    // At a size the patches do not divide: one error naming both.
    try {
        model.forward(Tensor<float>({1, 3, 18, 8}));
        ADD_FAILURE() << "no error";
    } catch (const vit3d::shape_error& e) {
        EXPECT_NE(std::string(e.what()).find("has length 18, not divisible by the patch size 4"),
                  std::string::npos)
            << e.what();
    }
}

TEST(GridCache, DynamicSizeNeedsALearnedTableOrNone) {
    auto c = dynamic_config(false);
    c.pos_embed = vit3d::models::PosEmbedKind::sincos;
    EXPECT_THROW((vit3d::models::VisionTransformer<float, 2>{c}), vit3d::config_error);
    auto fixed = dynamic_config(false);
    fixed.dynamic_size = false;
    vit3d::models::VisionTransformer<float, 2> model(fixed);
    EXPECT_THROW(model.forward(Tensor<float>({1, 3, 20, 8})), vit3d::shape_error);
}

}  // namespace
