// The anatomy-aware CT encoder on a real volume: reads a NIfTI file (and a label mask, or makes one), runs
// models::CTEncoder, writes its multi-granular features as .npy and a PNG of one head's class-token
// attention over the middle slice.
//
//   ./build/examples/ct_encoder examples/data/anatomical.nii --out ct_out
//   ./build/examples/ct_encoder ct.nii.gz --mask labels.nii.gz --weights ct_encoder.safetensors --out ct_out
//
// Options: --mask FILE (integer labels 0..regions on the volume's grid; without one, a mask is made from the
// intensities, see make_mask), --weights FILE (a ct_encoder file from tools/export_weights.py or
// io::save_model; without one the weights are random, seed 1), --size 256|512 (the preset's in-plane size:
// [64, 256, 256] (4,097 tokens) or the full [64, 512, 512] (16,385 tokens); default 256), --head H (the head
// whose attention is drawn, default 0), --threads N, --out DIR (default ct_encoder_out).
//
// Outputs in DIR: global.npy [1, D], local.npy [1, N, D], region.npy [1, R, D], cls.npy [1, D],
// positions.npy [1, N, 3] (z, y, x), assignment.npy [1, N, R], mask.nii.gz (the mask on the model's grid),
// attention.png (the middle slice, the head's class-token attention over it, and the mask).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/colormap.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/transforms/preprocess.hpp>
#include <vit3d/transforms/resample.hpp>

namespace {

using vit3d::Index;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
namespace models = vit3d::models;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string volume, mask, weights, out = "ct_encoder_out";
    Index size = 256, head = 0;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(std::string(argv[i]) + " needs a value");
        return argv[++i];
    };
    auto number = [&](int& i) -> long {
        const std::string option = argv[i], text = value(i);
        std::size_t used = 0;
        long n = -1;
        try {
            n = std::stol(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || n < 0)
            throw std::invalid_argument(option + " expects a non-negative integer, got \"" + text + "\"");
        return n;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--mask")
            o.mask = value(i);
        else if (a == "--weights")
            o.weights = value(i);
        else if (a == "--out")
            o.out = value(i);
        else if (a == "--size")
            o.size = number(i);
        else if (a == "--head")
            o.head = number(i);
        else if (a == "--threads")
            o.threads = static_cast<int>(number(i));
        else if (!a.empty() && a[0] == '-')
            throw std::invalid_argument("unknown option " + a);
        else if (o.volume.empty())
            o.volume = a;
        else
            throw std::invalid_argument("one volume only, got " + o.volume + " and " + a);
    }
    if (o.volume.empty()) throw std::invalid_argument("give a volume (.nii or .nii.gz)");
    if (o.size != 256 && o.size != 512)
        throw std::invalid_argument("--size expects 256 or 512, got " + std::to_string(o.size));
    return o;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0.0;
}

// The q-quantile of a tensor's values.
float quantile(const Tensor<float>& x, double q) {
    std::vector<float> v(x.begin(), x.end());
    const auto k = static_cast<std::ptrdiff_t>(q * double(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + k, v.end());
    return v[static_cast<std::size_t>(k)];
}

// A label mask from the intensities of a volume already windowed to [0, 1], for when none is given:
// background below the 30th percentile; the rest split into darker and brighter tissue at the median of the
// foreground, and each of those into octants around the foreground's centre (left / right, front / back,
// top / bottom): 2 x 8 = 16 coarse regions, labels 1..16. Crude anatomy, but regions with a place and a
// texture, which is what the encoder's region tokens describe.
Tensor<std::uint8_t> make_mask(const Tensor<float>& v) {
    const Index D = v.dim(0), H = v.dim(1), W = v.dim(2);
    const float background = quantile(v, 0.30);
    Tensor<float> foreground_values = Tensor<float>::empty({v.size()});
    Index count = 0;
    double cz = 0, cy = 0, cx = 0;
    for (Index z = 0; z < D; ++z)
        for (Index y = 0; y < H; ++y)
            for (Index x = 0; x < W; ++x)
                if (v(z, y, x) > background) {
                    foreground_values.data()[count++] = v(z, y, x);
                    cz += double(z), cy += double(y), cx += double(x);
                }
    if (count == 0) return Tensor<std::uint8_t>({D, H, W});
    cz /= double(count), cy /= double(count), cx /= double(count);
    const float bright = quantile(foreground_values.narrow(0, 0, count), 0.5);
    Tensor<std::uint8_t> mask({D, H, W});
    for (Index z = 0; z < D; ++z)
        for (Index y = 0; y < H; ++y)
            for (Index x = 0; x < W; ++x) {
                const float value = v(z, y, x);
                if (value <= background) continue;
                const int octant =
                    (double(z) >= cz ? 4 : 0) + (double(y) >= cy ? 2 : 0) + (double(x) >= cx ? 1 : 0);
                mask(z, y, x) = static_cast<std::uint8_t>(1 + (value > bright ? 8 : 0) + octant);
            }
    return mask;
}

// A grey [H, W] slice as RGB [3, H, W] in [0, 1].
Tensor<float> grey_to_rgb(const Tensor<float>& slice) {
    return vit3d::concat<float>({slice.unsqueeze(0), slice.unsqueeze(0), slice.unsqueeze(0)}, 0);
}

// Labels [H, W] as colours [3, H, W] in [0, 1] (background black), a fixed palette per label.
Tensor<float> label_colours(const Tensor<std::uint8_t>& labels) {
    const Index H = labels.dim(0), W = labels.dim(1);
    Tensor<float> rgb({3, H, W});
    for (Index y = 0; y < H; ++y)
        for (Index x = 0; x < W; ++x) {
            const unsigned l = labels(y, x);
            if (l == 0) continue;
            // Spread hues by the golden angle so that neighbouring labels differ.
            const double hue = std::fmod(double(l) * 0.618033988749895, 1.0) * 6.0;
            const double c = 0.85, f = hue - std::floor(hue);
            const double rgb6[6][3] = {{c, c * f, 0},       {c * (1 - f), c, 0}, {0, c, c * f},
                                       {0, c * (1 - f), c}, {c * f, 0, c},       {c, 0, c * (1 - f)}};
            const auto& p = rgb6[static_cast<int>(hue) % 6];
            for (int k = 0; k < 3; ++k) rgb(k, y, x) = static_cast<float>(p[k] + 0.15);
        }
    return rgb;
}

// `labels` (on the model's grid, resampled from `file` with align_corners=False) as a NIfTI volume in the
// file's world space: each model voxel spans f = (file size / model size) file voxels along its axis, and
// its centre lies at file voxel (o + 1/2) f - 1/2, so the affine's voxel axes scale by f and shift.
io::Volume<std::uint8_t> on_model_grid(const io::Volume<float>& file, const Tensor<std::uint8_t>& labels) {
    io::Volume<std::uint8_t> v = io::volume_like(file, labels);
    v.intent_code = 1002;  // NIFTI_INTENT_LABEL
    transforms::Affine scale = transforms::identity_affine();
    for (std::size_t a = 0; a < 3; ++a) {  // a: model axis z, y, x = voxel axis k, j, i
        const double f = double(file.data.dim(Index(a))) / double(labels.dim(Index(a)));
        v.spacing[a] = file.spacing[a] * f;
        const std::size_t voxel_axis = 2 - a;
        scale[voxel_axis][voxel_axis] = f;
        scale[voxel_axis][3] = (f - 1) / 2;
    }
    transforms::Affine affine{};
    for (int r = 0; r < 4; ++r)
        for (int col = 0; col < 4; ++col)
            for (int k = 0; k < 4; ++k) affine[r][col] += file.affine[r][k] * scale[k][col];
    v.affine = affine;
    return v;
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    const auto start = Clock::now();

    // The encoder: from a file, or the preset with random weights.
    std::optional<io::LoadedModel<float>> loaded;
    std::optional<models::CTEncoder<float>> own;
    const models::CTEncoder<float>* encoder = nullptr;
    if (!o.weights.empty()) {
        loaded.emplace(io::load_model<float>(o.weights));
        encoder = loaded->get_if<models::CTEncoder<float>>();
        if (!encoder)
            throw std::invalid_argument(o.weights + " holds a " + loaded->kind() +
                                        " model, not a ct_encoder");
    } else {
        own.emplace(o.size == 512 ? models::ct_encoder() : models::ct_encoder_256());
        std::uint64_t seed = 1;
        own->visit_parameters([&](const std::string&, Tensor<float>& t) {
            t = Tensor<float>::randn(t.shape(), seed++, 0.0f, 0.02f);
        });
        encoder = &*own;
    }
    const auto& c = encoder->config;
    const auto grid = c.grid();
    if (o.head < 0 || o.head >= c.heads)
        throw std::invalid_argument("--head " + std::to_string(o.head) + ": the encoder has " +
                                    std::to_string(c.heads) + " heads");
    const double build_s = seconds_since(start);

    // The volume on the model's grid: NIfTI data are [nz, ny, nx] = the model's [D, H, W] (see
    // docs/inputs.md, axis conventions); intensities windowed to [0, 1] between their 1st and 99th
    // percentiles (an MRI has no Hounsfield units to window by).
    auto stage = Clock::now();
    const auto file = io::read_nifti<float>(o.volume);
    if (file.data.rank() != 3)
        throw std::invalid_argument(o.volume + ": expected a 3D volume, got " +
                                    vit3d::shape_to_string(file.data.shape()));
    const Tensor<float> resampled = transforms::resample_trilinear(file.data, c.input_size);
    const Tensor<float> volume =
        transforms::intensity_window(resampled, quantile(resampled, 0.01), quantile(resampled, 0.99));
    Tensor<std::uint8_t> mask;
    std::string mask_source;
    if (!o.mask.empty()) {
        const auto labels = io::read_nifti<std::uint8_t>(o.mask).data;
        mask = transforms::resample_nearest(labels, c.input_size);
        mask_source = o.mask + " (nearest-neighbour resampled)";
    } else {
        mask = make_mask(volume);
        mask_source = "made from intensity thresholds and octants (16 regions)";
    }
    const double read_s = seconds_since(stage);

    // The encoder, stage by stage, so that the last block's class-token attention can be taken on the way.
    stage = Clock::now();
    const auto input = volume.reshape({1, 1, c.input_size[0], c.input_size[1], c.input_size[2]});
    const auto mask_input = mask.reshape({1, 1, c.input_size[0], c.input_size[1], c.input_size[2]});
    auto state = encoder->embed(input, &mask_input);
    Tensor<float> attention;  // [1, heads, 1 + N]
    for (std::size_t i = 0; i < encoder->blocks.size(); ++i) {
        if (i + 1 == encoder->blocks.size()) {
            const auto& block = encoder->blocks[i];
            attention = block.attn.query_weights(block.norm1.forward(state.tokens), grid, 1, 0);
        }
        encoder->run_block(i, state);
    }
    const auto out = encoder->finish(std::move(state));
    const double forward_s = seconds_since(stage);

    // Features as .npy, the mask as NIfTI on the model's grid, the picture.
    stage = Clock::now();
    std::filesystem::create_directories(o.out);
    const std::string dir = o.out + "/";
    io::write_npy(dir + "global.npy", out.global);
    io::write_npy(dir + "local.npy", out.local);
    io::write_npy(dir + "region.npy", out.region);
    io::write_npy(dir + "cls.npy", out.cls);
    io::write_npy(dir + "positions.npy", out.positions);
    io::write_npy(dir + "assignment.npy", out.assignment);
    io::write_nifti(dir + "mask.nii.gz", on_model_grid(file, mask));

    // The middle slice (z of the patch grid's middle row, and the voxel slice at its centre), the head's
    // class-token attention over that slice's patches, upsampled to the slice, and the mask beside them.
    const Index gz = grid[0] / 2, z = gz * c.patch_size[0] + c.patch_size[0] / 2;
    const Index N = c.num_patches(), plane = grid[1] * grid[2];
    Tensor<float> heat = Tensor<float>::empty({grid[1], grid[2]});
    std::copy_n(attention.data() + o.head * (1 + N) + 1 + gz * plane, plane, heat.data());
    const Index H = c.input_size[1], W = c.input_size[2];
    const Tensor<float> slice = volume.select(0, z);
    const Tensor<float> heat_up =
        transforms::resize(heat.unsqueeze(0), H, W, transforms::ResizeFilter::bilinear, false).squeeze(0);
    const Tensor<std::uint8_t> overlay = io::overlay_heatmap(slice, heat_up, 0.55f);
    Tensor<float> overlay_f = Tensor<float>::empty(overlay.shape());
    for (Index i = 0; i < overlay.size(); ++i) overlay_f.data()[i] = float(overlay.data()[i]) / 255.0f;
    const Tensor<float> panel = vit3d::concat<float>(
        {grey_to_rgb(slice), overlay_f, label_colours(mask.select(0, z))}, 2);  // [3, H, 3W]
    io::write_png(dir + "attention.png", panel);
    const double write_s = seconds_since(stage);

    std::printf("volume      %s: %s voxels of %.3g x %.3g x %.3g mm, resampled to %s\n", o.volume.c_str(),
                vit3d::shape_to_string(file.data.shape()).c_str(), file.spacing[0], file.spacing[1],
                file.spacing[2],
                vit3d::shape_to_string({c.input_size[0], c.input_size[1], c.input_size[2]}).c_str());
    std::printf("mask        %s\n", mask_source.c_str());
    std::printf(
        "encoder     %s, %lld parameters, %lld tokens (%s patches + class token), %lld blocks\n",
        o.weights.empty() ? "random weights (seed 1; give --weights for a trained one)" : o.weights.c_str(),
        static_cast<long long>(vit3d::nn::count_parameters(*encoder)), static_cast<long long>(N + 1),
        vit3d::shape_to_string({grid[0], grid[1], grid[2]}).c_str(), static_cast<long long>(c.depth));
    std::printf("outputs     global %s, local %s, region %s, positions %s, assignment %s -> %s*.npy\n",
                vit3d::shape_to_string(out.global.shape()).c_str(),
                vit3d::shape_to_string(out.local.shape()).c_str(),
                vit3d::shape_to_string(out.region.shape()).c_str(),
                vit3d::shape_to_string(out.positions.shape()).c_str(),
                vit3d::shape_to_string(out.assignment.shape()).c_str(), dir.c_str());
    std::printf(
        "picture     %sattention.png: slice z = %lld; the volume, head %lld's class-token attention, the "
        "mask\n",
        dir.c_str(), static_cast<long long>(z), static_cast<long long>(o.head));
    std::printf(
        "time        build %.2f s, read + resample %.2f s, encoder %.2f s (%d threads), write %.2f s\n",
        build_s, read_s, forward_s, vit3d::num_threads(), write_s);
    std::printf("peak memory %.0f MiB\n", peak_rss_mib());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "ct_encoder: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ct_encoder: %s\n", e.what());
        return 1;
    }
}
