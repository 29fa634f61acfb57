// Loading a model's weights from a safetensors file, float32, one thread:
//   "load_model/mmap"                io::load_model: the file mapped, each tensor decoded into its parameter,
//                                    its pages dropped after (the default);
//   "load_model/read"                io::load_model with FileAccess::stream: reads at offsets through a
//                                    bounded buffer (the fallback where mmap is unavailable);
//   "read_file_then_load_state_dict"      the whole file read into memory first (Safetensors::read), then
//                                    load_state_dict into a freshly built model: the way before load_model.
// Counters: bytes_per_second (of the file), peak_rss_bytes (this process's VmHWM during the load: the
// absolute peak, as bench_models reports it), peak_rss_above_start_bytes (the load's own share),
// file_bytes, weights_bytes. Time is the load alone (the clock is paused while the model is destroyed).
//
// The file: --model_file=PATH or the environment variable VIT3D_BENCH_LOAD_FILE (any file load_model reads,
// e.g. one exported by tools/export_weights.py; bench/compare_peers.py passes its torchvision vit_b_16
// export this way), else a random-weight vit_b_16 written to the temporary directory by io::save_model
// before the benchmarks run (346 MB, vit3d's own tensor names) and removed after.
//
// The page cache is warm (the file was just written, or read by the previous iteration): these are
// warm-cache numbers. For a cold read, drop the caches between runs (root: echo 3 >
// /proc/sys/vm/drop_caches).
//
//   ./build/bench/bench_load --benchmark_counters_tabular=true
//   VIT3D_BENCH_LOAD_FILE=vit_b_16.safetensors ./build/bench/bench_load

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/save_model.hpp>

#include "bench_support.hpp"

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;

std::string model_file;          // what the benchmarks load
bool remove_model_file = false;  // written by this process

double current_rss_bytes() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
    return 0.0;
}

// A random-weight torchvision vit_b_16 (values at a trained model's scale), written in place.
std::string write_default_model() {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("vit3d_bench_load_vit_b_16_" + std::to_string(::getpid()) + ".safetensors"))
                                 .string();
    std::fprintf(stderr, "bench_load: writing a random-weight vit_b_16 to %s ...\n", path.c_str());
    vit3d::models::ViT<float> model(vit3d::models::vit_b_16());
    std::uint64_t seed = 1;
    model.visit_parameters([&](const std::string&, Tensor<float>& p) {
        vit3d::detail::Xoshiro256 rng(seed++);
        for (float& v : p) v = static_cast<float>(0.02 * rng.normal());
    });
    io::save_model(path, model, io::no_preprocessing("BCHW", {224, 224}));
    return path;
}

Index parameters_of(const io::LoadedModel<float>& m) { return m.parameter_count(); }
template <std::size_t N>
Index parameters_of(const vit3d::models::VisionTransformer<float, N>& m) {
    return vit3d::nn::count_parameters(m);
}

// Times load() alone: resetting the peak before and destroying the model after run with the clock paused.
template <class Load>
void run_load(benchmark::State& state, Load load) {
    const double file_bytes = static_cast<double>(std::filesystem::file_size(model_file));
    double peak = 0, peak_above = 0, weights = 0;
    for (auto _ : state) {
        state.PauseTiming();
        const double start_rss = current_rss_bytes();
        vit3d::bench::reset_peak_rss();
        std::optional<decltype(load())> loaded;
        state.ResumeTiming();
        try {
            loaded.emplace(load());
        } catch (const std::exception& e) {
            state.SkipWithError(e.what());
            break;
        }
        state.PauseTiming();
        const double hwm = vit3d::bench::peak_rss_bytes();
        peak = std::max(peak, hwm);
        peak_above = std::max(peak_above, hwm - start_rss);
        weights = static_cast<double>(parameters_of(*loaded)) * sizeof(float);
        loaded.reset();
        state.ResumeTiming();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(file_bytes) * state.iterations());
    state.counters["peak_rss_bytes"] = peak;
    state.counters["peak_rss_above_start_bytes"] = peak_above;
    state.counters["file_bytes"] = file_bytes;
    state.counters["weights_bytes"] = weights;
}

void load_model_mapped(benchmark::State& state) {
    run_load(state, [] { return io::load_model<float>(model_file); });
}
void load_model_streamed(benchmark::State& state) {
    run_load(state, [] { return io::load_model<float>(model_file, {io::FileAccess::stream}); });
}

// The whole file read into memory, then a model built from its description and filled by load_state_dict.
template <std::size_t N>
vit3d::models::VisionTransformer<float, N> read_file_then_load(const io::Safetensors& file,
                                                               const io::ModelDescription& d) {
    const io::KeyMap* keys = io::key_maps::find(d.key_map);
    if (!keys) throw std::runtime_error("bench_load: unknown key map " + d.key_map);
    vit3d::models::VisionTransformer<float, N> model(vit3d::detail::vision_transformer_config<N>(
        io::description_json_field(d.config, "config"), "bench_load: "));
    io::load_state_dict<float>(model, file, *keys);
    return model;
}
void read_file_then_load_state_dict(benchmark::State& state) {
    const io::ModelDescription d =
        io::read_model_description(io::Safetensors::open(model_file), "bench_load: ");
    if (d.kind == "vit2d") {
        run_load(state, [] {
            const io::Safetensors file = io::Safetensors::read(model_file);
            return read_file_then_load<2>(file, io::read_model_description(file, "bench_load: "));
        });
    } else if (d.kind == "vit3d") {
        run_load(state, [] {
            const io::Safetensors file = io::Safetensors::read(model_file);
            return read_file_then_load<3>(file, io::read_model_description(file, "bench_load: "));
        });
    } else {
        state.SkipWithError(("bench_load: no old path for model kind " + d.kind).c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const char* flag = "--model_file=";
        if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) {
            model_file = argv[i] + std::strlen(flag);
        } else {
            args.push_back(argv[i]);
        }
    }
    int count = static_cast<int>(args.size());
    benchmark::Initialize(&count, args.data());
    if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
    if (model_file.empty()) {
        if (const char* env = std::getenv("VIT3D_BENCH_LOAD_FILE")) model_file = env;
    }
    if (model_file.empty()) {
        model_file = write_default_model();
        remove_model_file = true;
    }
    vit3d::set_num_threads(1);
    benchmark::RegisterBenchmark("load_model/mmap", load_model_mapped)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("load_model/read", load_model_streamed)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("read_file_then_load_state_dict", read_file_then_load_state_dict)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (remove_model_file) std::remove(model_file.c_str());
    return 0;
}
