// Compile-time case "load_model_forward" (bench/compile_time.py): the C++ program of README.md's quickstart
// ("Call it from C++"), kept identical to it (the test docs.quickstart_program checks), so that its compile
// time is what a user's first file costs: load an exported model, read a model input saved with numpy.save,
// run a forward, write the logits. The case "load_model_forward_header_only" compiles this file again with
// -DVIT3D_HEADER_ONLY.

// main.cpp: the logits of an exported model for a model input saved with numpy.save
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>

int main(int argc, char** argv) {
    namespace io = vit3d::io;
    if (argc != 4) return 2;                            // app model.safetensors input.npy logits.npy
    const auto model = io::load_model<float>(argv[1]);  // the model, its weights and preprocessing
    const auto x = io::read_npy<float>(argv[2]);        // [B, C, spatial...], already preprocessed
    io::write_npy(argv[3], model.forward(x, io::ModelOutput::logits));  // also pooled, tokens, ...
}
