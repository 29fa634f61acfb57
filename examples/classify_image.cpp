// Classify an image with any exported 2D ViT that has a head: load it with io::load_model, read the image,
// resize, crop and normalise it as the file's own description says, and print the top-k classes with their
// probabilities (the softmax of the logits) and the time of each stage.
//
//   ./build/examples/classify_image model.safetensors image.png [--top 5] [--labels names.txt]
//   F=tests/fixtures/roundtrip   # tiny random-weight models of each family
//   ./build/examples/classify_image $F/torchvision_vit_f32.safetensors examples/data/shapes.png --top 3
//
// model.safetensors: a file from tools/export_weights.py or io::save_model (torchvision, timm, vit-pytorch,
// MONAI 2D, ...). image: PNG, JPEG, BMP or PNM. --labels: one class name per line (line i names class i).
// --threads N sets the thread count.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/model_input.hpp>

#include "command_line.hpp"

namespace {

using namespace vit3d_examples;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
using Clock = std::chrono::steady_clock;
using vit3d_examples::ms_since;

struct Options {
    std::string model, image, labels;
    Index top = 5;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--top")
            o.top = option_integer(argc, argv, i, 1, 1 << 20);
        else if (a == "--labels")
            o.labels = option_value(argc, argv, i);
        else if (a == "--threads")
            o.threads = static_cast<int>(option_integer(argc, argv, i, 1, 1024));
        else if (a.size() > 1 && a[0] == '-')
            throw usage_error("unknown option " + a);
        else
            positional.push_back(a);
    }
    if (positional.size() != 2)
        throw usage_error("usage: classify_image model.safetensors image.png [--top K] [--labels FILE]");
    o.model = positional[0];
    o.image = positional[1];
    return o;
}

std::vector<std::string> read_labels(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read the labels file " + path);
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) names.push_back(line);
    return names;
}

// softmax over the classes of logits [1, K], in double.
std::vector<double> softmax(const Tensor<float>& logits) {
    const float* z = logits.data();
    const double top = *std::max_element(z, z + logits.size());
    std::vector<double> p(static_cast<std::size_t>(logits.size()));
    double total = 0;
    for (std::size_t k = 0; k < p.size(); ++k) total += p[k] = std::exp(double(z[k]) - top);
    for (double& v : p) v /= total;
    return p;
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    auto t = Clock::now();
    const auto model = io::load_model<float>(o.model);
    if (!model.gives(io::ModelOutput::logits))
        throw std::runtime_error(o.model + ": this " + model.family() + " " + model.kind() +
                                 " model has no classification head (num_classes = 0)");
    const double load_ms = ms_since(t);

    t = Clock::now();
    const io::ImageInput image = io::read_image_input(o.image, model);  // as vit3d-infer reads it
    const Tensor<float>& input = image.batch;                           // [1, C, H, W]
    const double read_ms = ms_since(t);

    t = Clock::now();
    const Tensor<float> logits = model.forward(input, io::ModelOutput::logits);  // [1, classes]
    const double forward_ms = ms_since(t);

    const std::vector<double> p = softmax(logits);
    const std::vector<std::string> names =
        o.labels.empty() ? std::vector<std::string>() : read_labels(o.labels);
    if (!names.empty() && names.size() != p.size())
        throw std::runtime_error(o.labels + " names " + std::to_string(names.size()) +
                                 " classes, the model has " + std::to_string(p.size()));
    std::vector<std::size_t> order(p.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(o.top), p.size());
    // Ties keep the lower class index first, as torch.topk does on CPU.
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](std::size_t a, std::size_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });

    std::printf("model   %s: %s %s, %lld parameters, input %s, %zu classes\n", o.model.c_str(),
                model.family().c_str(), model.kind().c_str(), static_cast<long long>(model.parameter_count()),
                vit3d::shape_to_string(model.input_shape()).c_str(), p.size());
    std::printf("image   %s: %lld x %lld, %s %lld x %lld\n", o.image.c_str(),
                static_cast<long long>(image.stored.width), static_cast<long long>(image.stored.height),
                model.preprocess().resize_size ? "resized and cropped to" : "resized to",
                static_cast<long long>(image.view.dim(2)), static_cast<long long>(image.view.dim(1)));
    std::printf("top %zu:\n", k);
    for (std::size_t r = 0; r < k; ++r) {
        const std::size_t c = order[r];
        std::printf("  %2zu. class %-5zu p = %.6f  logit %+.6f%s%s\n", r + 1, c, p[c],
                    double(logits.data()[c]), names.empty() ? "" : "  ",
                    names.empty() ? "" : names[c].c_str());
    }
    std::printf("time    load %.1f ms, read + preprocess %.1f ms, forward %.1f ms (%d threads)\n", load_ms,
                read_ms, forward_ms, vit3d::num_threads());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return vit3d_examples::run_main("classify_image", argc, argv, parse, run); }
