// The README's first command: vit3d on real data, in two parts.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target demo
//   ./build/examples/demo
//
// 1. Digits (this file): a small ViT that tools/train_digits.py trained with PyTorch on scikit-learn's
//    handwritten digits, loaded with io::load_model from the file tools/export_weights.py wrote (its metadata
//    holds the configuration and the preprocessing), run on the 360 test images and compared with what
//    torch computed for the same images and weights: the accuracy, every predicted digit, every logit.
// 2. Volume (demo/volume.cpp): a 3D ViT over a real MRI volume resampled to the model's grid, with its token
//    count, time and peak memory, and a PNG of the class token's attention over the middle slices. Its
//    weights are random (seed 1): no trained 3D model is small enough to ship, so the picture shows what the
//    machinery computes for this anatomy, not what a trained model has learned to look at.
//
// Options: --data DIR (default: the source tree's examples/data), --out DIR (where the PNG goes; default
// demo_out/ next to the executable), --only digits|volume, --threads N.
// Exit status: 0 when vit3d agrees with torch, 1 when it does not or on an error, 2 for a usage error.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/models/vision_transformer.hpp>
#include <vit3d/transforms/preprocess.hpp>

#include "demo/volume.hpp"

#ifndef VIT3D_DEMO_DATA_DIR
#define VIT3D_DEMO_DATA_DIR "examples/data"
#endif

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
namespace models = vit3d::models;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string data = VIT3D_DEMO_DATA_DIR, out, only;
    int threads = 0;
};

struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

Options parse(int argc, char** argv) {
    Options o;
    const std::filesystem::path executable = argc > 0 ? argv[0] : "demo";
    o.out = (executable.parent_path() / "demo_out").string();
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) throw usage_error(std::string(argv[i]) + " needs a value");
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--data") {
            o.data = value(i);
        } else if (a == "--out") {
            o.out = value(i);
        } else if (a == "--only") {
            o.only = value(i);
            if (o.only != "digits" && o.only != "volume")
                throw usage_error("--only expects digits or volume, got \"" + o.only + "\"");
        } else if (a == "--threads") {
            const std::string text = value(i);
            std::size_t used = 0;
            int n = 0;
            try {
                n = std::stoi(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != text.size() || n < 1)
                throw usage_error("--threads expects a positive integer, got \"" + text + "\"");
            o.threads = n;
        } else {
            throw usage_error("unknown argument \"" + a +
                              "\"; options: --data DIR, --out DIR, --only digits|volume, --threads N");
        }
    }
    return o;
}

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string shape_text(const vit3d::Shape& s) { return vit3d::shape_to_string(s); }

void expect_shape(const std::string& what, const Tensor<float>& t, const vit3d::Shape& shape) {
    if (t.shape() != shape)
        throw std::runtime_error(what + ": expected shape " + shape_text(shape) + ", got " +
                                 shape_text(t.shape()));
}

// The file's preprocessing applied to raw images [N, H, W] at the model's input size, by
// transforms::apply_value_steps (rescale, then mean and std: torch's order in float32, as
// tools/train_digits.py computes it).
Tensor<float> preprocess_digits(const Tensor<std::uint8_t>& raw, const transforms::Preprocessing& p) {
    if (p.resize_size)
        throw std::runtime_error(
            "the digit model asks for a resize; this demo's images are at its input size");
    Tensor<float> x = Tensor<float>::empty({raw.dim(0), 1, raw.dim(1), raw.dim(2)});
    std::copy(raw.begin(), raw.end(), x.begin());
    return transforms::apply_value_steps(std::move(x), p, 1);  // the file's rescale, window and mean / std
}

// The index of each row's largest value; the first of equal ones, as torch.argmax.
std::vector<Index> argmax_rows(const Tensor<float>& logits) {
    std::vector<Index> out;
    const Index classes = logits.dim(1);
    for (Index r = 0; r < logits.dim(0); ++r) {
        const float* row = logits.data() + r * classes;
        out.push_back(static_cast<Index>(std::max_element(row, row + classes) - row));
    }
    return out;
}

// Same digits, same accuracy, and logits within the float32 tolerance of the parity tests: 1e-5 x scale,
// scale = max(1, max |torch logit|).
bool run_digits(const std::string& dir) {
    const auto model = io::load_model<float>(dir + "/digits_vit.safetensors");
    const auto images = io::read_npy<std::uint8_t>(dir + "/test_images.npy");
    const auto labels = io::read_npy<std::uint8_t>(dir + "/test_labels.npy");
    const auto torch_logits = io::read_npy<float>(dir + "/torch_logits.npy");
    const auto torch_predictions = io::read_npy<std::int64_t>(dir + "/torch_predictions.npy");
    const auto* vit = model.get_if<models::ViT<float>>();
    if (!vit || !model.gives(io::ModelOutput::logits))
        throw std::runtime_error(dir + "/digits_vit.safetensors: expected a 2D ViT classifier, got a " +
                                 model.family() + " " + model.kind() + " model");
    const Index n = images.rank() == 3 ? images.dim(0) : 0;
    const vit3d::Shape input = model.input_shape();  // [C, H, W]
    if (n == 0 || input.size() != 3 || input[0] != 1 || images.dim(1) != input[1] ||
        images.dim(2) != input[2])
        throw std::runtime_error(dir + "/test_images.npy: expected grey images [N, " +
                                 std::to_string(input[1]) + ", " + std::to_string(input.back()) +
                                 "] for the model's input " + shape_text(input) + ", got " +
                                 shape_text(images.shape()));
    if (labels.shape() != vit3d::Shape{n} || torch_predictions.shape() != vit3d::Shape{n})
        throw std::runtime_error(dir + ": expected " + std::to_string(n) +
                                 " labels and torch predictions, got " + shape_text(labels.shape()) +
                                 " and " + shape_text(torch_predictions.shape()));

    const Tensor<float> x = preprocess_digits(images, model.preprocess());
    auto t = Clock::now();
    const Tensor<float> logits = model.forward(x, io::ModelOutput::logits);
    const double batch_ms = ms_since(t);
    expect_shape(dir + "/torch_logits.npy", torch_logits, logits.shape());
    // One image at a time as well: the latency an application classifying single images sees.
    t = Clock::now();
    for (Index i = 0; i < n; ++i) (void)model.forward(x.narrow(0, i, 1), io::ModelOutput::logits);
    const double single_ms = ms_since(t) / double(n);

    const std::vector<Index> predicted = argmax_rows(logits);
    Index correct = 0, torch_correct = 0, agree = 0, differing = 0;
    std::string disagreements;  // the first few
    for (Index i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        correct += predicted[k] == labels(i);
        torch_correct += torch_predictions(i) == labels(i);
        agree += predicted[k] == torch_predictions(i);
        if (predicted[k] != torch_predictions(i) && ++differing <= 5)
            disagreements += " image " + std::to_string(i) + ": vit3d " + std::to_string(predicted[k]) +
                             ", torch " + std::to_string(torch_predictions(i)) + ";";
    }
    float max_error = 0.0f, scale = 1.0f;
    for (Index i = 0; i < logits.size(); ++i) {
        max_error = std::max(max_error, std::abs(logits.data()[i] - torch_logits.data()[i]));
        scale = std::max(scale, std::abs(torch_logits.data()[i]));
    }
    const float tolerance = 1e-5f * scale;
    const bool same = agree == n && correct == torch_correct && max_error <= tolerance;

    const auto& c = vit->config;
    std::printf("Digits: a ViT trained with PyTorch (tools/train_digits.py), loaded with io::load_model\n");
    std::printf(
        "  model     %s %s, %lld parameters: %lld blocks of width %lld, %lld patches of %lldx%lld + class "
        "token\n",
        model.family().c_str(), model.kind().c_str(), static_cast<long long>(model.parameter_count()),
        static_cast<long long>(c.depth), static_cast<long long>(c.dim),
        static_cast<long long>(c.num_patches()), static_cast<long long>(c.patch_size[0]),
        static_cast<long long>(c.patch_size[1]));
    std::printf("  data      %lld test images of %lldx%lld (scikit-learn's digits, %s)\n",
                static_cast<long long>(n), static_cast<long long>(images.dim(1)),
                static_cast<long long>(images.dim(2)), dir.c_str());
    std::printf("  accuracy  vit3d %.2f%% (%lld/%lld), torch %.2f%% (%lld/%lld)\n",
                100.0 * double(correct) / double(n), static_cast<long long>(correct),
                static_cast<long long>(n), 100.0 * double(torch_correct) / double(n),
                static_cast<long long>(torch_correct), static_cast<long long>(n));
    std::printf(
        "  vs torch  same digit for %lld/%lld images; logits max |vit3d - torch| = %.2g (tolerance %.2g) "
        "%s\n",
        static_cast<long long>(agree), static_cast<long long>(n), double(max_error), double(tolerance),
        same ? "MATCH" : "MISMATCH");
    if (!disagreements.empty()) std::printf("  differ   %s\n", disagreements.c_str());
    std::printf(
        "  time      %.3f ms per image in one batch of %lld, %.3f ms one image at a time (%d threads)\n",
        batch_ms / double(n), static_cast<long long>(n), single_ms, vit3d::num_threads());
    return same;
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    bool same = true;
    if (o.only.empty() || o.only == "digits") same = run_digits(o.data + "/digits");
    if (o.only.empty() || o.only == "volume") demo::run_volume(o.data + "/anatomical.nii", o.out);
    return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const usage_error& e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "demo: %s\n", e.what());
        return 1;
    }
}
