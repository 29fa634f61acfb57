// Linear keeps its weight packed for the GEMM between calls (core/weight_packing.hpp): the pack is made at
// the first call (or before, by nn::pack_weights), never later, so no call repacks what an earlier one did
// not; products of many rows pack inside the call and keep nothing; a pack gives exactly what packing on
// every call gives, at every instruction-set level; every way of writing the weight through the tensor is
// seen and replaces the pack; a write through a pointer kept from before the last forward (which write
// tracking cannot see) is caught by the verified mode; copies and moves keep no pack of another tensor; and
// concurrent forwards of one layer agree.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/core/weight_packing.hpp>

#include "support/isa_testing.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;
using vit3d::WeightPacking;
using vit3d::nn::Linear;

// Restores the packing mode and the instruction-set cap a test changed.
class WeightPackingTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // A BLAS build hands float and double products to cblas_?gemm, which packs for itself.
        if (!vit3d::detail::own_gemm_runs<float>) GTEST_SKIP() << "VIT3D_USE_BLAS build: no packs are kept";
        vit3d::set_weight_packing(WeightPacking::cached);
    }
    void TearDown() override {
        vit3d::set_weight_packing(WeightPacking::cached);
        vit3d::set_isa_cap(vit3d::Isa::avx512);
    }
};

// x W^T + b in double, from the weight's current elements.
Tensor<float> reference(const Linear<float>& layer, const Tensor<float>& x) {
    const Index rows = x.size() / layer.in_features(), out = layer.out_features(), in = layer.in_features();
    Tensor<float> y({rows, out});
    for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < out; ++j) {
            double sum = layer.bias ? (*layer.bias)(j) : 0.0;
            for (Index k = 0; k < in; ++k)
                sum += static_cast<double>(x.data()[i * in + k]) * layer.weight.data()[j * in + k];
            y(i, j) = static_cast<float>(sum);
        }
    return y;
}

// The same layer's forward with packing off: the GEMM packs its panels inside the call.
Tensor<float> unpacked_forward(const Linear<float>& layer, const Tensor<float>& x) {
    vit3d::set_weight_packing(WeightPacking::off);
    Tensor<float> y = layer.forward(x);
    vit3d::set_weight_packing(WeightPacking::cached);
    return y;
}

// Odd sizes, so that the last panel of the register block is partial and K is not a multiple of a vector.
Linear<float> random_layer(Index in, Index out, std::uint64_t seed) {
    return Linear<float>(Tensor<float>::randn({out, in}, seed), Tensor<float>::randn({out}, seed + 1));
}

void expect_call_matches_reference(const Linear<float>& layer, const Tensor<float>& x,
                                   const std::string& what);

// Two calls: the first after a write packs the weight, the second reuses the pack.
void expect_matches_reference(const Linear<float>& layer, const Tensor<float>& x, const std::string& what) {
    for (int call = 0; call < 2; ++call)
        expect_call_matches_reference(layer, x, what + ", call " + std::to_string(call));
}

void expect_call_matches_reference(const Linear<float>& layer, const Tensor<float>& x,
                                   const std::string& what) {
    const Tensor<float> y = layer.forward(x), expected = reference(layer, x);
    ASSERT_EQ(y.size(), expected.size()) << what;
    // Sums of 1e2 products of N(0, 1) values: float rounding stays far below 1e-4.
    for (Index i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y.data()[i], expected.data()[i], 1e-4) << what << " at " << i;
}

TEST_F(WeightPackingTest, PackedForwardEqualsPackingOnEveryCallAtEveryLevel) {
    vit3d::test::for_each_isa([](vit3d::Isa isa) {
        for (Index rows : {1, 7, 64}) {
            const Linear<float> layer = random_layer(77, 131, 10 + rows);
            const Tensor<float> x = Tensor<float>::randn({rows, 77}, 99);
            EXPECT_EQ(layer.packed_weight_bytes(), 0) << isa_name(isa);
            const Tensor<float> packed = layer.forward(x);  // packs the whole weight at the first call
            EXPECT_GT(layer.packed_weight_bytes(), 0) << isa_name(isa);
            const Tensor<float> again = layer.forward(x);  // reuses the pack
            const Tensor<float> unpacked = unpacked_forward(layer, x);
            ASSERT_EQ(packed.shape(), unpacked.shape());
            for (Index i = 0; i < packed.size(); ++i) {
                ASSERT_EQ(packed.data()[i], unpacked.data()[i])
                    << isa_name(isa) << " rows " << rows << " at " << i;
                ASSERT_EQ(again.data()[i], packed.data()[i])
                    << isa_name(isa) << " rows " << rows << " at " << i;
            }
            expect_matches_reference(layer, x, std::string(isa_name(isa)));
        }
    });
}

TEST_F(WeightPackingTest, OffKeepsNoPack) {
    vit3d::set_weight_packing(WeightPacking::off);
    const Linear<float> layer = random_layer(33, 20, 1);
    const Tensor<float> x = Tensor<float>::randn({5, 33}, 2);
    expect_matches_reference(layer, x, "off");
    EXPECT_EQ(layer.packed_weight_bytes(), 0);
    vit3d::set_weight_packing(WeightPacking::cached);
    (void)layer.forward(x);
    EXPECT_GE(layer.packed_weight_bytes(), Index(33 * 20 * sizeof(float))) << "the first call packs";
    vit3d::set_weight_packing(WeightPacking::off);
    (void)layer.forward(x);
    EXPECT_EQ(layer.packed_weight_bytes(), 0) << "turning packing off frees the pack at the next call";
}

// Every way of writing through the tensor's interface, each applied after a forward made a pack.
TEST_F(WeightPackingTest, EveryWriteThroughTheTensorIsSeen) {
    const std::vector<std::pair<std::string, std::function<void(Linear<float>&)>>> edits = {
        {"operator()", [](Linear<float>& l) { l.weight(3, 5) += 1.0f; }},
        {"at()", [](Linear<float>& l) { l.weight.at(0, 0) = -4.0f; }},
        {"data() after the forward", [](Linear<float>& l) { l.weight.data()[17] = 9.0f; }},
        {"begin()", [](Linear<float>& l) { *(l.weight.begin() + 2) = 0.5f; }},
        {"fill()", [](Linear<float>& l) { l.weight.fill(0.25f); }},
        {"as_matrix()", [](Linear<float>& l) { l.weight.as_matrix().row(1).setConstant(2.0f); }},
        {"flat()", [](Linear<float>& l) { l.weight.flat() *= -1.0f; }},
        {"matrix(0)", [](Linear<float>& l) { l.weight.matrix(0)(2, 2) = 7.0f; }},
        {"copy assignment", [](Linear<float>& l) { l.weight = Tensor<float>::randn(l.weight.shape(), 5); }},
        {"move assignment",
         [](Linear<float>& l) {
             Tensor<float> w = Tensor<float>::randn(l.weight.shape(), 6);
             l.weight = std::move(w);
         }},
        {"visit_parameters (the loaders' path)",
         [](Linear<float>& l) {
             l.visit_parameters([](const std::string& name, Tensor<float>& t) {
                 if (name == "weight") t.data()[0] = 3.0f;
             });
         }},
    };
    const Tensor<float> x = Tensor<float>::randn({9, 40}, 3);
    for (const auto& [name, edit] : edits) {
        Linear<float> layer = random_layer(40, 24, 4);
        (void)layer.forward(x);
        ASSERT_GT(layer.packed_weight_bytes(), 0) << name;
        edit(layer);
        // The first call after the write packs the new weight: it would give the old numbers with the old
        // pack.
        expect_call_matches_reference(layer, x, name);
        EXPECT_GT(layer.packed_weight_bytes(), 0) << name;
        expect_matches_reference(layer, x, name);
    }
}

// A pointer taken before a forward and written after it is the one write the stamp cannot see. The cached
// mode then uses the old pack (documented); verified catches it; taking the pointer again is the fix.
TEST_F(WeightPackingTest, VerifiedCatchesAWriteThroughAPointerKeptFromBeforeTheForward) {
    Linear<float> layer = random_layer(40, 24, 7);
    const Tensor<float> x = Tensor<float>::randn({4, 40}, 8);
    float* kept = layer.weight.data();
    (void)layer.forward(x);
    const Tensor<float> before = layer.forward(x);  // packed
    ASSERT_GT(layer.packed_weight_bytes(), 0);
    kept[0] += 1.0f;

    vit3d::set_weight_packing(WeightPacking::verified);
    try {
        (void)layer.forward(x);
        FAIL() << "verified mode used a stale pack";
    } catch (const vit3d::stale_weights_error& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("vit3d::nn::Linear::forward"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("pointer"));
    }
    layer.weight.data()[0] += 0.0f;  // taking the pointer again marks the weight written
    expect_matches_reference(layer, x, "verified, after data() again");

    vit3d::set_weight_packing(WeightPacking::cached);
    expect_matches_reference(layer, x, "cached, after data() again");
    EXPECT_NE(layer.forward(x).data()[0], before.data()[0]);
}

TEST_F(WeightPackingTest, VerifiedPassesWhenNothingChanged) {
    vit3d::set_weight_packing(WeightPacking::verified);
    const Linear<float> layer = random_layer(50, 70, 9);
    const Tensor<float> x = Tensor<float>::randn({3, 50}, 10);
    for (int call = 0; call < 3; ++call)
        expect_matches_reference(layer, x, "verified call " + std::to_string(call));
}

TEST_F(WeightPackingTest, CopiesAndMovesKeepNoPackOfAnotherTensor) {
    const Tensor<float> x = Tensor<float>::randn({6, 30}, 11);
    Linear<float> original = random_layer(30, 18, 12);
    (void)original.forward(x);
    (void)original.forward(x);
    ASSERT_GT(original.packed_weight_bytes(), 0);
    Linear<float> copy = original;
    EXPECT_EQ(copy.packed_weight_bytes(), 0);
    copy.weight.fill(1.0f);
    expect_matches_reference(copy, x, "edited copy");
    expect_matches_reference(original, x, "original after its copy was edited");

    Linear<float> moved = std::move(copy);
    EXPECT_EQ(moved.packed_weight_bytes(), 0);
    expect_matches_reference(moved, x, "moved");

    std::vector<Linear<float>> layers(1, random_layer(30, 18, 13));
    (void)layers[0].forward(x);
    (void)layers[0].forward(x);
    layers.reserve(16);  // the vector moves its layers
    layers[0].weight(0, 0) = 5.0f;
    expect_matches_reference(layers[0], x, "after the vector grew");
}

TEST_F(WeightPackingTest, ALowerInstructionSetCapRepacksForItsKernels) {
    const Linear<float> layer = random_layer(64, 100, 14);
    const Tensor<float> x = Tensor<float>::randn({13, 64}, 15);
    std::vector<Tensor<float>> per_level;
    for (vit3d::Isa isa : vit3d::test::runnable_isas()) {
        vit3d::set_isa_cap(isa);
        per_level.push_back(layer.forward(x));  // every level's first call packs for its kernels
        EXPECT_GT(layer.packed_weight_bytes(), 0) << isa_name(isa);
        const Tensor<float> unpacked = unpacked_forward(layer, x);
        for (Index i = 0; i < unpacked.size(); ++i)
            ASSERT_EQ(per_level.back().data()[i], unpacked.data()[i]) << isa_name(isa) << " at " << i;
    }
    vit3d::set_isa_cap(vit3d::Isa::avx512);
    expect_matches_reference(layer, x, "back at the best level");
}

TEST_F(WeightPackingTest, DoubleAndEmptyInputs) {
    const Linear<double> layer(Tensor<double>::randn({21, 19}, 16), Tensor<double>::randn({21}, 17));
    const Tensor<double> x = Tensor<double>::randn({5, 19}, 18);
    (void)layer.forward(x);
    const Tensor<double> packed = layer.forward(x);
    EXPECT_GT(layer.packed_weight_bytes(), 0);
    vit3d::set_weight_packing(WeightPacking::off);
    const Tensor<double> unpacked = layer.forward(x);
    for (Index i = 0; i < packed.size(); ++i) ASSERT_EQ(packed.data()[i], unpacked.data()[i]) << i;
    vit3d::set_weight_packing(WeightPacking::cached);
    EXPECT_EQ(layer.forward(Tensor<double>({0, 19})).shape(), (vit3d::Shape{0, 21}));
}

// From packed_weight_max_rows rows on, a call without a pack packs inside the call and keeps nothing (the
// memory of a second copy of the weight would buy under 1% of such a product); a pack made earlier is used.
TEST_F(WeightPackingTest, ProductsOfManyRowsPackInsideTheCallAndKeepNothing) {
    const Linear<float> layer = random_layer(19, 23, 21);
    const Tensor<float> many = Tensor<float>::randn({vit3d::detail::packed_weight_max_rows, 19}, 22);
    const Tensor<float> few = Tensor<float>::randn({vit3d::detail::packed_weight_max_rows - 1, 19}, 23);
    expect_matches_reference(layer, many, "many rows");
    EXPECT_EQ(layer.packed_weight_bytes(), 0) << "a product of many rows keeps no pack";
    expect_call_matches_reference(layer, few, "fewer rows");
    EXPECT_GT(layer.packed_weight_bytes(), 0) << "one row fewer keeps it";
    const Tensor<float> packed = layer.forward(many);
    EXPECT_GT(layer.packed_weight_bytes(), 0) << "a pack made earlier serves products of many rows too";
    const Tensor<float> unpacked = unpacked_forward(layer, many);
    for (Index i = 0; i < packed.size(); ++i) ASSERT_EQ(packed.data()[i], unpacked.data()[i]) << i;
}

// nn::pack_weights packs every Linear layer of a model before any forward, so that even the first forward
// packs nothing; a model that was not packed is packed whole by its first forward, so that no later call
// packs.
TEST_F(WeightPackingTest, PackWeightsPacksEveryLinearLayerOfAModel) {
    vit3d::models::VisionTransformerConfig<2> config;
    config.input_size = {16, 16};
    config.patch_size = {4, 4};
    config.dim = 24;
    config.depth = 2;
    config.heads = 2;
    config.mlp_dim = 40;
    config.num_classes = 7;
    vit3d::models::ViT<float> model(config);
    std::uint64_t seed = 30;
    Index linear_bytes = 0;
    model.visit_parameters([&](const std::string& name, Tensor<float>& p) {
        p = Tensor<float>::randn(p.shape(), seed++);
        const bool linear_weight =
            p.rank() == 2 && name.size() > 7 && name.substr(name.size() - 7) == ".weight";
        if (linear_weight) linear_bytes += p.size() * Index(sizeof(float));
    });
    const Tensor<float> x = Tensor<float>::randn({2, 3, 16, 16}, 40);
    EXPECT_EQ(vit3d::nn::packed_weight_bytes(model), 0);
    const Tensor<float> first = model.forward(x).logits;
    const Index after_first = vit3d::nn::packed_weight_bytes(model);
    EXPECT_GE(after_first, linear_bytes) << "the first forward packs every layer it uses";

    vit3d::models::ViT<float> copy = model;  // a copy keeps no pack of another tensor
    EXPECT_EQ(vit3d::nn::packed_weight_bytes(copy), 0);
    EXPECT_EQ(vit3d::nn::pack_weights(copy), after_first);
    EXPECT_EQ(vit3d::nn::packed_weight_bytes(copy), after_first);
    const Tensor<float> packed_first = copy.forward(x).logits;
    ASSERT_EQ(packed_first.shape(), first.shape());
    for (Index i = 0; i < first.size(); ++i) ASSERT_EQ(packed_first.data()[i], first.data()[i]) << i;

    vit3d::set_weight_packing(WeightPacking::off);
    EXPECT_EQ(vit3d::nn::pack_weights(copy), 0) << "off keeps no pack";
}

TEST(WeightPackingMode, ParsesItsNamesAndRejectsOthers) {
    EXPECT_EQ(vit3d::parse_weight_packing("off"), WeightPacking::off);
    EXPECT_EQ(vit3d::parse_weight_packing("cached"), WeightPacking::cached);
    EXPECT_EQ(vit3d::parse_weight_packing("verified"), WeightPacking::verified);
    try {
        (void)vit3d::parse_weight_packing("always", "VIT3D_WEIGHT_PACKING");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("VIT3D_WEIGHT_PACKING"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("expected off, cached or verified, got \"always\""));
    }
}

// One const layer shared by threads that all call forward at once, the first call of each racing to pack
// (run under ThreadSanitizer in CI).
TEST(WeightPackingThreads, SafeToShareAcrossThreads) {
    vit3d::set_weight_packing(WeightPacking::cached);  // (in a BLAS build: concurrent calls all the same)
    const Linear<float> layer = random_layer(96, 80, 19);
    const Tensor<float> x = Tensor<float>::randn({10, 96}, 20);
    const Tensor<float> expected = unpacked_forward(layer, x);
    std::vector<Tensor<float>> results(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < results.size(); ++t)
        threads.emplace_back([&, t] {
            for (int call = 0; call < 3; ++call) results[t] = layer.forward(x);
        });
    for (auto& thread : threads) thread.join();
    for (const Tensor<float>& y : results)
        for (Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], expected.data()[i]) << i;
}

}  // namespace
