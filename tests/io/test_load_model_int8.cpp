// io::load_model with LoadOptions::precision int8: every Linear layer of the model computes in int8, and
// the packs made at load are the int8 ones (no float pack), for each model kind; the outputs stay close to
// the f32 model's; a double model in int8 is refused before anything is read.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vit3d.hpp>
#include <vit3d/core/precision.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/safetensors.hpp>

namespace {

using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Precision;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace models = vit3d::models;
namespace nn = vit3d::nn;

const std::string kRoundtrip = std::string(VIT3D_TEST_FIXTURE_DIR) + "/roundtrip/";

io::LoadedModel<float> load_int8(const std::string& name) {
    io::LoadOptions options;
    options.precision = Precision::int8;
    return io::load_model<float>(kRoundtrip + name, options);
}

// The bytes of every Linear layer's int8 pack (the weight and its rounding error) for the active int8 kernel.
struct Int8Bytes : nn::EveryLinearVisitor {
    Index bytes = 0;
    void layer(const nn::Linear<float>& l) {
        bytes +=
            vit3d::detail::Int8AffineWeights::quantize(l.weight.data(), l.in_features(), l.out_features(),
                                                       l.in_features(), vit3d::detail::active_int8_kernel())
                .bytes();
    }
    void operator()(const std::string&, const Tensor<float>&) {}
};

template <class Model>
Index int8_bytes_of(const Model& model) {
    Int8Bytes counter;
    model.visit_parameters(counter);
    return counter.bytes;
}

double cosine(const Tensor<float>& a, const Tensor<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (Index i = 0; i < a.size(); ++i) {
        ab += double(a.data()[i]) * b.data()[i];
        aa += double(a.data()[i]) * a.data()[i];
        bb += double(b.data()[i]) * b.data()[i];
    }
    return ab / std::sqrt(aa * bb);
}

template <class Model>
void expect_int8_model(const io::LoadedModel<float>& f32, const io::LoadedModel<float>& int8,
                       const Tensor<float>& x, io::ModelOutput output) {
    EXPECT_EQ(f32.precision(), Precision::f32);
    EXPECT_EQ(int8.precision(), Precision::int8);
    const Model* model = int8.get_if<Model>();
    ASSERT_NE(model, nullptr);
    const Index linears = nn::count_linear_layers(*f32.get_if<Model>(), Precision::f32);
    EXPECT_GT(linears, 0);
    EXPECT_EQ(nn::count_linear_layers(*model, Precision::int8), linears);
    EXPECT_EQ(nn::count_linear_layers(*model, Precision::f32), 0);
    const Index bytes = int8_bytes_of(*model);
    EXPECT_EQ(nn::packed_weight_bytes(*model), bytes) << "packed at load, in int8 and only in int8";
    const Tensor<float> expected = f32.forward(x, output), got = int8.forward(x, output);
    EXPECT_EQ(nn::packed_weight_bytes(*model), bytes) << "the forward found its packs";
    EXPECT_GT(cosine(got, expected), 0.99) << io::output_name(output);
}

TEST(LoadModelInt8, EveryLinearLayerOfAViTComputesInInt8FromPacksMadeAtLoad) {
    for (const std::string name : {"torchvision_vit_f32.safetensors", "timm_vit_token_f32.safetensors"}) {
        SCOPED_TRACE(name);
        const auto f32 = io::load_model<float>(kRoundtrip + name);
        expect_int8_model<models::ViT<float>>(f32, load_int8(name), Tensor<float>::randn({2, 3, 32, 32}, 1),
                                              io::ModelOutput::pooled);
    }
    const auto monai = io::load_model<float>(kRoundtrip + "monai_vit_f32.safetensors");
    vit3d::Shape input{2};
    for (Index s : monai.input_shape()) input.push_back(s);
    expect_int8_model<models::ViT3D<float>>(monai, load_int8("monai_vit_f32.safetensors"),
                                            Tensor<float>::randn(input, 2), io::ModelOutput::pooled);
}

TEST(LoadModelInt8, TheCTEncoderToo) {
    const auto f32 = io::load_model<float>(kRoundtrip + "ct_encoder_f32.safetensors");
    vit3d::Shape input{1};
    for (Index s : f32.input_shape()) input.push_back(s);
    expect_int8_model<models::CTEncoder<float>>(f32, load_int8("ct_encoder_f32.safetensors"),
                                                Tensor<float>::randn(input, 3), io::ModelOutput::pooled);
}

TEST(LoadModelInt8, AnOpenedFileLoadsInInt8) {
    const io::Safetensors file = io::Safetensors::open(kRoundtrip + "timm_vit_token_f32.safetensors");
    EXPECT_EQ(io::load_model<float>(file, Precision::int8).precision(), Precision::int8);
    EXPECT_EQ(io::load_model<float>(file).precision(), Precision::f32);
}

TEST(LoadModelInt8, ADoubleModelIsRefused) {
    const std::string path = kRoundtrip + "timm_vit_token_f64.safetensors";
    io::LoadOptions options;
    options.precision = Precision::int8;
    EXPECT_THAT([&] { io::load_model<double>(path, options); },
                ::testing::ThrowsMessage<std::invalid_argument>(
                    HasSubstr("vit3d::io::load_model(\"" + path +
                              "\"): expected precision f32 for a model loaded as double (int8 runs float "
                              "models only), got int8")));
    EXPECT_THROW(io::load_model<double>(io::Safetensors::open(path), Precision::int8), std::invalid_argument);
}

}  // namespace
