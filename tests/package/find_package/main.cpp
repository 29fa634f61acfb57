// Built against an installed vit3d (see CMakeLists.txt next to this file): a 3D patch embedding layout and a
// linear layer (vit3d's GEMM, or OpenBLAS's when the package was configured with it) from the core headers,
// and a tensor read from the safetensors file given as the first argument (vit3d::io).
#include <iostream>
#include <vit3d.hpp>
#include <vit3d/io/safetensors.hpp>

int main(int argc, char** argv) {
    vit3d::Tensor<float> v({1, 1, 8, 16, 16});
    auto tok = vit3d::rearrange(v, "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
                                {{"pf", 2}, {"p1", 4}, {"p2", 4}});
    if (tok.shape() != vit3d::Shape{1, 64, 32}) {
        std::cerr << "find_package consumer: rearrange gave " << vit3d::shape_to_string(tok.shape())
                  << ", expected [1, 64, 32]\n";
        return 1;
    }
    vit3d::nn::Linear<float> linear(4, 3);
    linear.weight = vit3d::Tensor<float>::ones({3, 4});
    const auto y = linear.forward(vit3d::Tensor<float>::ones({2, 4}));
    if (y.shape() != vit3d::Shape{2, 3} || y.data()[5] != 4.0f) {
        std::cerr << "find_package consumer: Linear gave " << y << ", expected [2, 3] of 4\n";
        return 1;
    }
    if (argc != 2) {
        std::cerr << "usage: vit3d_find_package_consumer <tests/fixtures/safetensors_sample.safetensors>\n";
        return 2;
    }
    try {
        // The sample file's "f32.matrix" is [2, 3] = {-1.5, 0, 0.1, 1e-40, 3.4028235e38, -inf}.
        const auto matrix = vit3d::io::Safetensors::read(argv[1]).get<float>("f32.matrix");
        if (matrix.shape() != vit3d::Shape{2, 3} || matrix.data()[0] != -1.5f || matrix.data()[2] != 0.1f) {
            std::cerr << "find_package consumer: f32.matrix read as " << matrix << ", expected [2, 3] "
                      << "starting -1.5, 0, 0.1\n";
            return 1;
        }
    } catch (const std::exception& e) {
        std::cerr << "find_package consumer: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
