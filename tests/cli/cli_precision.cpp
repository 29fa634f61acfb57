// vit3d-infer --precision: int8 and bf16 outputs are io::load_model's int8 and bf16 models', exactly; the
// precision is in the report and in each output's record, so that an output computed in one precision is
// never taken for one of the other (a record from before the option names none: f32); a bad value is one line
// naming the expected ones.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/cli_runner.hpp"
#include "vit3d/core/precision.hpp"
#include "vit3d/formats/npy.hpp"
#include "vit3d/io/load_model.hpp"

namespace {

using namespace vit3d_cli_test;
using ::testing::HasSubstr;
using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;

const std::string timm = model("timm_vit_token_f32");

nlohmann::json record_of(const std::string& output) {
    return nlohmann::json::parse(read_text(output + ".vit3d.json"));
}

class CliPrecision : public CliTest {};

TEST_F(CliPrecision, Int8AndBf16OutputsAreTheInProcessModels) {
    const Tensor<float> x = Tensor<float>::randn({2, 3, 32, 32}, 31);
    io::write_npy(path("x.npy"), x);
    const Tensor<float> f32 = io::load_model<float>(timm).forward(x, io::ModelOutput::pooled);
    for (vit3d::Precision precision : {vit3d::Precision::int8, vit3d::Precision::bf16}) {
        const std::string name = vit3d::precision_name(precision), out = path(name + ".npy");
        SCOPED_TRACE(name);
        const Result r = infer(
            {"-w", timm, "-i", path("x.npy"), "-o", out, "-k", "pooled", "--precision", name, "--json"});
        ASSERT_EQ(r.code, 0) << r.err;
        io::LoadOptions options;
        options.precision = precision;
        const Tensor<float> expected =
            io::load_model<float>(timm, options).forward(x, io::ModelOutput::pooled);
        const Tensor<float> y = io::read_npy<float>(out);
        ASSERT_EQ(y.shape(), expected.shape());
        for (Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], expected.data()[i]) << "element " << i;
        bool differs = false;
        for (Index i = 0; i < y.size(); ++i) differs = differs || y.data()[i] != f32.data()[i];
        EXPECT_TRUE(differs) << "computed in " << name << ", not in f32";
        EXPECT_EQ(nlohmann::json::parse(r.out)["precision"], name);
        EXPECT_EQ(record_of(out)["precision"], name);
    }
    const Result text = infer({"-w", timm, "-i", path("x.npy"), "-o", path("z.npy"), "--precision", "int8"});
    EXPECT_THAT(text.out, HasSubstr("output:  logits, precision int8, batch size 1"));
    EXPECT_THAT(infer({"-w", timm, "-i", path("x.npy"), "-o", path("w.npy")}).out,
                HasSubstr("output:  logits, precision f32, batch size 1"));
    EXPECT_EQ(record_of(path("w.npy"))["precision"], "f32");
}

TEST_F(CliPrecision, AnOutputOfAnotherPrecisionStopsTheRun) {
    write_inputs(path("in"), {"a"});
    const std::vector<std::string> run = {"-w", timm, "-i", path("in/a.npy"), "-o", path("a.npy")};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = run;
        args.insert(args.end(), extra.begin(), extra.end());
        return infer(args);
    };
    ASSERT_EQ(infer(run).code, 0);
    const std::string bytes = read_text(path("a.npy"));
    expect_one_line_error(with({"--precision", "int8"}), 2,
                          "\"" + path("a.npy") +
                              "\" was computed in another precision (f32, this run int8); use --overwrite to "
                              "rewrite it");
    EXPECT_EQ(read_text(path("a.npy")), bytes);
    EXPECT_THAT(infer(run).out, HasSubstr("0 done, 1 skipped"));

    const Result overwritten = with({"--precision", "int8", "--overwrite"});
    ASSERT_EQ(overwritten.code, 0) << overwritten.err;
    EXPECT_EQ(record_of(path("a.npy"))["precision"], "int8");
    EXPECT_THAT(with({"--precision", "int8"}).out, HasSubstr("0 done, 1 skipped"));
    expect_one_line_error(infer(run), 2, "was computed in another precision (int8, this run f32)");
}

// Records written before the option existed name no precision: their outputs were computed in f32.
TEST_F(CliPrecision, ARecordWithoutAPrecisionIsOneOfF32) {
    write_inputs(path("in"), {"a"});
    const std::vector<std::string> run = {"-w", timm, "-i", path("in/a.npy"), "-o", path("a.npy")};
    ASSERT_EQ(infer(run).code, 0);
    nlohmann::ordered_json record = nlohmann::ordered_json::parse(read_text(path("a.npy.vit3d.json")));
    record.erase("precision");
    write_text(path("a.npy.vit3d.json"), record.dump(2) + "\n");
    EXPECT_THAT(infer(run).out, HasSubstr("0 done, 1 skipped"));
    std::vector<std::string> int8 = run;
    int8.insert(int8.end(), {"--precision", "int8"});
    expect_one_line_error(infer(int8), 2, "was computed in another precision (f32, this run int8)");
}

TEST_F(CliPrecision, ABadValueIsOneLineNamingTheExpectedOnes) {
    io::write_npy(path("x.npy"), Tensor<float>({3, 32, 32}));
    for (const char* value : {"fp16", "INT8", ""}) {
        const Result r = infer({"-w", timm, "-i", path("x.npy"), "-o", path("o.npy"), "--precision", value});
        expect_one_line_error(r, 2,
                              std::string("--precision: expected f32, bf16 or int8, got \"") + value + "\"");
    }
    EXPECT_FALSE(fs::exists(path("o.npy")));
    EXPECT_THAT(infer({"--help"}).out, HasSubstr("--precision"));
}

}  // namespace
