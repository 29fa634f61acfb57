// Compile-time case "load_model_forward" (bench/compile_time.py): the C++ program of README.md's quickstart
// ("Call it from C++"), kept identical to it, so that its compile time is what a user's first file costs:
// load an exported model, read an input saved with numpy.save, preprocess it, run a forward, write the
// logits. The case "load_model_forward_header_only" compiles this file again with -DVIT3D_HEADER_ONLY.
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/npy.hpp>
#include <vit3d/io/preprocess.hpp>

int main(int argc, char** argv) {
    namespace io = vit3d::io;
    if (argc != 4) return 2;  // main model.safetensors input.npy logits.npy
    const auto model = io::load_model<float>(argv[1]);  // the model, its weights and preprocessing
    auto x = io::read_npy<float>(argv[2]);              // [B, C, spatial...]: B of model.input_shape()
    x = io::apply_value_steps(x, model.preprocess());   // rescale, window, mean / std
    io::write_npy(argv[3], model.forward(x, io::ModelOutput::logits));  // also pooled, tokens, ...
}
