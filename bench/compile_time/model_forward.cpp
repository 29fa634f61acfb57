// Compile-time case "model_forward" (bench/compile_time.py): a model built in code from a preset
// configuration and run, without vit3d::io, as examples/custom_encoder.cpp builds its own: torchvision's
// ViT-B/16 (random weights are enough, nothing runs) through a forward to its logits.
#include <cstdio>
#include <vit3d.hpp>

int main() {
    const vit3d::models::ViT<float> model(vit3d::models::vit_b_16());
    const auto images = vit3d::Tensor<float>::randn({1, 3, 224, 224}, 1, 0.0f, 1.0f);
    const auto out = model.forward(images);  // logits [1, 1000]
    std::printf("logits %s\n", vit3d::shape_to_string(out.logits.shape()).c_str());
}
