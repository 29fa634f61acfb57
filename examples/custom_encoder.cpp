// An encoder of your own from vit3d's modules, without a preset: a 3D patch embedding, factorized learned 3D
// positions (Reg2RG's), and pre-norm blocks whose attention carries a learned bias by slice distance (the
// CT encoder's), wired as models/ct_encoder.hpp wires them. It shows the config structs, a seeded parameter
// initialisation, saving the named parameters to safetensors and loading them back through vit3d::io, and a
// forward pass with the shapes at each step.
//
//   ./build/examples/custom_encoder OUT_DIR [--seed 1] [--load weights.safetensors] [--threads N]
//   ./build/examples/custom_encoder custom_out
//   ./build/examples/custom_encoder custom_out2 --load custom_out/weights.safetensors
//
// It encodes a synthetic volume [1, 1, 16, 64, 64] (a bright ellipsoid in noise, seed 7) and writes, in
// OUT_DIR: weights.safetensors (every parameter under its visit_parameters name, F32), volume.npy (the input)
// and cls.npy [1, D] (the class token after the final norm). Without --load the weights are random from
// --seed; either way the model is then rebuilt from weights.safetensors and run again, and the two outputs
// must be identical.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/atomic_file_writer.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/safetensors.hpp>
#include <vit3d/io/state_dict.hpp>

#include "command_line.hpp"

namespace {

using vit3d_examples::option_integer;
using vit3d_examples::option_value;
using vit3d_examples::usage_error;

using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace nn = vit3d::nn;
using Clock = std::chrono::steady_clock;
using vit3d_examples::ms_since;

// --- the model ---------------------------------------------------------------------------------------------

struct SliceEncoderConfig {
    std::array<Index, 3> input_size{16, 64, 64};  // D, H, W of the volume [B, C, D, H, W]
    std::array<Index, 3> patch_size{4, 16, 16};   // -> a 4 x 4 x 4 grid of 64 patch tokens
    Index channels = 1;
    Index dim = 96;  // divisible by 3: the factorized positions give dim / 3 features per axis
    Index depth = 2;
    Index heads = 4;
    Index mlp_dim = 384;
    Index slice_levels = 4;  // slice distances 0, 1, 2 and >= 3 each learn a bias per head
    double eps = 1e-6;

    std::array<Index, 3> grid() const {
        return {input_size[0] / patch_size[0], input_size[1] / patch_size[1], input_size[2] / patch_size[2]};
    }
};

// x += attn(norm1(x)) with the slice-distance bias; x += mlp(norm2(x)).
struct SliceBlock {
    nn::LayerNorm<float> norm1;
    nn::SliceAwareAttention<float> attn;
    nn::LayerNorm<float> norm2;
    nn::Mlp<float> mlp;

    explicit SliceBlock(const SliceEncoderConfig& c)
        : norm1(c.dim, c.eps),
          attn(nn::SliceAwareAttentionConfig{{c.dim, c.heads}, c.slice_levels, /*slice_axis=*/0}),
          norm2(c.dim, c.eps),
          mlp(c.dim, c.mlp_dim) {}

    // x [B, 1 + N, D] -> [B, 1 + N, D]; one prefix token (the class token) before the grid's tokens.
    Tensor<float> forward(Tensor<float> x, const std::array<Index, 3>& grid) const {
        x += attn.forward(norm1.forward(x), grid, /*prefix=*/1);
        x += mlp.forward(norm2.forward(x));
        return x;
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.norm1.visit_parameters(f, nn::join_name(prefix, "norm1"));
        self.attn.visit_parameters(f, nn::join_name(prefix, "attn"));
        self.norm2.visit_parameters(f, nn::join_name(prefix, "norm2"));
        self.mlp.visit_parameters(f, nn::join_name(prefix, "mlp"));
    }
};

struct SliceEncoder {
    SliceEncoderConfig config;
    nn::PatchEmbed3d<float> patch_embed;  // conv weight [D, C, 4, 16, 16]
    Tensor<float> cls_token;              // [1, 1, D]
    nn::FactorizedPosEmbed3d<float> pos_embed;
    std::vector<SliceBlock> blocks;
    nn::LayerNorm<float> norm;

    explicit SliceEncoder(const SliceEncoderConfig& c)
        : config(c),
          patch_embed(nn::PatchEmbedConfig<3>{c.channels, c.dim, c.patch_size}),
          cls_token(vit3d::Shape{1, 1, c.dim}),
          pos_embed(c.dim / 3, c.grid()),
          norm(c.dim, c.eps) {
        for (Index i = 0; i < c.depth; ++i) blocks.emplace_back(c);
    }

    // volume [B, C, D, H, W] -> the tokens after the final norm [B, 1 + N, D], class token first.
    Tensor<float> forward(const Tensor<float>& volume) const {
        const auto grid = patch_embed.grid(volume.shape());  // {4, 4, 4}, checks the volume's shape
        Tensor<float> x = patch_embed.forward(volume);       // [B, 64, 96], tokens (z, y, x) row-major
        x = pos_embed.forward(x, grid);                      // + [row(z) | col(y) | dep(x)], 32 each
        const auto cls = vit3d::repeat(cls_token, "1 1 d -> b 1 d", {{"b", volume.dim(0)}});  // [B, 1, 96]
        x = vit3d::concat<float>({cls, x}, 1);                                                // [B, 65, 96]
        for (const SliceBlock& block : blocks) x = block.forward(std::move(x), grid);         // [B, 65, 96]
        return norm.forward(x);                                                               // [B, 65, 96]
    }

    VIT3D_VISIT_PARAMETERS_WITH(visit)

  private:
    template <class Self, class F>
    static void visit(Self& self, F& f, const std::string& prefix) {
        self.patch_embed.visit_parameters(f, nn::join_name(prefix, "patch_embed"));
        f(nn::join_name(prefix, "cls_token"), self.cls_token);
        self.pos_embed.visit_parameters(f, nn::join_name(prefix, "pos_embed"));
        for (std::size_t i = 0; i < self.blocks.size(); ++i)
            self.blocks[i].visit_parameters(f, nn::join_name(prefix, "blocks." + std::to_string(i)));
        self.norm.visit_parameters(f, nn::join_name(prefix, "norm"));
    }
};

// --- parameters in and out ---------------------------------------------------------------------------------

// LayerNorms start as the identity (weight 1, bias 0), as torch initialises them; every other parameter
// is N(0, 0.02^2), each tensor from its own seed derived from `seed`, so that a seed names one model.
void initialise(SliceEncoder& model, std::uint64_t seed) {
    std::uint64_t stream = seed * 1000003;
    model.visit_parameters([&](const std::string& name, Tensor<float>& p) {
        const bool layer_norm = name.find("norm") != std::string::npos;
        const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
        if (layer_norm)
            p = Tensor<float>::full(p.shape(), bias ? 0.0f : 1.0f);
        else
            p = Tensor<float>::randn(p.shape(), ++stream, 0.0f, 0.02f);
    });
}

// Every parameter under its name, written through a temporary file so that `path` is never half-written.
void save(const SliceEncoder& model, const std::string& path) {
    std::map<std::string, const Tensor<float>*> tensors;
    model.visit_parameters([&](const std::string& name, const Tensor<float>& p) { tensors[name] = &p; });
    const std::vector<std::uint8_t> bytes = io::serialize_safetensors(tensors, {{"format", "pt"}});
    io::AtomicFileWriter file(path, "custom_encoder: writing " + path + ": ");
    file.write(bytes.data(), bytes.size());
    file.commit();
}

// Strict: a missing, mis-shaped or unused tensor is an io_error naming it. Names are the model's own, so
// the identity key map (key_maps::vit3d) renames nothing.
void load(SliceEncoder& model, const std::string& path) {
    io::load_state_dict<float>(model, io::Safetensors::open(path), io::key_maps::vit3d());
}

// --- the program -------------------------------------------------------------------------------------------

// A bright ellipsoid in N(0, 0.1^2) noise, [1, 1, D, H, W].
Tensor<float> synthetic_volume(const SliceEncoderConfig& c) {
    Tensor<float> v = Tensor<float>::randn({1, c.channels, c.input_size[0], c.input_size[1], c.input_size[2]},
                                           7, 0.0f, 0.1f);
    for (Index z = 0; z < c.input_size[0]; ++z)
        for (Index y = 0; y < c.input_size[1]; ++y)
            for (Index x = 0; x < c.input_size[2]; ++x) {
                const double dz = (z + 0.5) / c.input_size[0] - 0.5, dy = (y + 0.5) / c.input_size[1] - 0.5,
                             dx = (x + 0.5) / c.input_size[2] - 0.5;
                if (dz * dz / 0.16 + dy * dy / 0.1 + dx * dx / 0.12 < 1) v(0, 0, z, y, x) += 1.0f;
            }
    return v;
}

struct Options {
    std::string out, load;
    std::uint64_t seed = 1;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seed")
            o.seed = static_cast<std::uint64_t>(option_integer(argc, argv, i, 0, 1L << 40));
        else if (a == "--load")
            o.load = option_value(argc, argv, i);
        else if (a == "--threads")
            o.threads = static_cast<int>(option_integer(argc, argv, i, 0, 1024));
        else if (a.size() > 1 && a[0] == '-')
            throw usage_error("unknown option " + a);
        else if (o.out.empty())
            o.out = a;
        else
            throw usage_error("one output directory only, got " + o.out + " and " + a);
    }
    if (o.out.empty())
        throw usage_error("usage: custom_encoder OUT_DIR [--seed N] [--load FILE] [--threads N]");
    return o;
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    const SliceEncoderConfig config;
    auto t = Clock::now();
    SliceEncoder model(config);
    if (o.load.empty())
        initialise(model, o.seed);
    else
        load(model, o.load);
    const double build_ms = ms_since(t);

    const Tensor<float> volume = synthetic_volume(config);  // [1, 1, 16, 64, 64]
    t = Clock::now();
    const Tensor<float> tokens = model.forward(volume);  // [1, 65, 96]
    const double forward_ms = ms_since(t);
    const Tensor<float> cls = tokens.select(1, 0);  // [1, 96]

    std::filesystem::create_directories(o.out);
    const std::string weights = o.out + "/weights.safetensors", features = o.out + "/cls.npy",
                      input = o.out + "/volume.npy";
    t = Clock::now();
    save(model, weights);
    io::write_npy(features, cls);
    io::write_npy(input, volume);
    const double save_ms = ms_since(t);

    // The same model again, from the file alone.
    t = Clock::now();
    SliceEncoder reloaded(config);
    load(reloaded, weights);
    const double load_ms = ms_since(t);
    const Tensor<float> again = reloaded.forward(volume);
    float worst = 0.0f;
    for (Index i = 0; i < tokens.size(); ++i)
        worst = std::max(worst, std::abs(tokens.data()[i] - again.data()[i]));

    const auto grid = config.grid();
    std::printf(
        "encoder   %lld parameters: patch %s -> grid %s, dim %lld, %lld blocks of %lld heads, %lld slice "
        "levels\n",
        static_cast<long long>(nn::count_parameters(model)),
        vit3d::shape_to_string({config.patch_size[0], config.patch_size[1], config.patch_size[2]}).c_str(),
        vit3d::shape_to_string({grid[0], grid[1], grid[2]}).c_str(), static_cast<long long>(config.dim),
        static_cast<long long>(config.depth), static_cast<long long>(config.heads),
        static_cast<long long>(config.slice_levels));
    std::printf("weights   %s\n", o.load.empty() ? ("random, seed " + std::to_string(o.seed)).c_str()
                                                 : ("loaded from " + o.load).c_str());
    std::printf("forward   volume %s -> tokens %s -> cls %s\n",
                vit3d::shape_to_string(volume.shape()).c_str(),
                vit3d::shape_to_string(tokens.shape()).c_str(), vit3d::shape_to_string(cls.shape()).c_str());
    std::printf("written   %s, %s, %s\n", weights.c_str(), features.c_str(), input.c_str());
    std::printf("reloaded  from %s: max |difference| %g over every token\n", weights.c_str(), double(worst));
    std::printf("time      build %.1f ms, forward %.1f ms (%d threads), save %.1f ms, load %.1f ms\n",
                build_ms, forward_ms, vit3d::num_threads(), save_ms, load_ms);
    if (worst != 0.0f) {
        std::fprintf(stderr, "custom_encoder: the reloaded model differs from the saved one by %g\n",
                     double(worst));
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return vit3d_examples::run_main("custom_encoder", argc, argv, parse, run); }
