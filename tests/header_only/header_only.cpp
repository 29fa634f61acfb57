// The VIT3D_HEADER_ONLY build (core/instances.hpp): compiled with that macro and linked with vit3d::headers
// and nlohmann/json alone, no implementation library, so that every instance it uses must come from the
// headers; building it is half the test. Running it loads two exported models (a 2D and a 3D kind) and
// compares every output with the reference package's, as the compiled build's tests do.
//     header_only <fixture dir>/roundtrip
#ifndef VIT3D_HEADER_ONLY
#error "build this file with VIT3D_HEADER_ONLY defined"
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/safetensors.hpp>

namespace {

// max |actual - expected| / max(1, max |expected|), or infinity for another shape.
double scaled_error(const vit3d::Tensor<float>& actual, const vit3d::Tensor<float>& expected) {
    if (actual.shape() != expected.shape()) return INFINITY;
    double scale = 1, worst = 0;
    for (vit3d::Index i = 0; i < expected.size(); ++i) {
        scale = std::max(scale, std::abs(double(expected.data()[i])));
        worst = std::max(worst, std::abs(double(actual.data()[i]) - double(expected.data()[i])));
    }
    return worst / scale;
}

bool matches_reference(const std::string& dir, const std::string& name) {
    namespace io = vit3d::io;
    const auto model = io::load_model<float>(dir + "/" + name + ".safetensors");
    const io::Safetensors reference = io::Safetensors::read(dir + "/" + name + ".ref.safetensors");
    const auto outputs = model.forward(reference.get<float>("in.x"), model.outputs());
    bool ok = true;
    for (const auto& [output, actual] : outputs) {
        const double error =
            scaled_error(actual, reference.get<float>("out." + std::string(io::output_name(output))));
        const bool close = error <= 1e-5;  // float32 parity, as tests/io/test_load_model.cpp
        std::printf("%-24s %-14s max |err| / scale %.2e %s\n", name.c_str(), io::output_name(output), error,
                    close ? "ok" : "FAILED");
        ok = ok && close;
    }
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: header_only <roundtrip fixture dir>\n");
        return 2;
    }
    try {
        const bool ok =
            matches_reference(argv[1], "torchvision_vit_f32") && matches_reference(argv[1], "monai_vit_f32");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "header_only: %s\n", e.what());
        return 1;
    }
}
