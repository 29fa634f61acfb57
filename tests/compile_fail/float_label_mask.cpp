// Must NOT compile: a segmentation mask holds integer labels, and a floating-point one is refused at compile
// time with a message saying so (ctest compile_fail.float_label_mask checks the message).
#include <vit3d/nn/anatomical_encoder.hpp>

int main() {
    const vit3d::nn::AnatomicalEncoder<float> anatomy(vit3d::nn::AnatomicalEncoderConfig{});
    const vit3d::Tensor<float> mask({1, 1, 4, 16, 16});
    return static_cast<int>(anatomy.assignment(mask, {1, 1, 4, 16, 16}).size());
}
