// Checks what the examples printed and wrote (run by run_example.cmake, after the example itself) against
// an in-process computation written out here step by step from the metadata schema (docs/weights.md) with
// vit3d's resizing and model API, not through vit3d/io/model_input.hpp, so that a mistake in the library's
// input preparation (which the examples and vit3d-infer share) shows up as a mismatch.
//
//   check_example_outputs classify  MODEL IMAGE STDOUT K
//   check_example_outputs volume    MODEL NIFTI NPY OUTPUT
//   check_example_outputs dense2d   MODEL IMAGE NPY PNG
//   check_example_outputs dense3d   MODEL NIFTI NPY K PNG
//   check_example_outputs attention MODEL IMAGE PNG CELL COLUMNS ALPHA
//   check_example_outputs custom    DIR_SEED1 DIR_LOADED DIR_SEED2
//
// Prints what it compared; exits 1 with the first mismatch.

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/colormap.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/safetensors.hpp>
#include <vit3d/transforms/preprocess.hpp>
#include <vit3d/transforms/resample.hpp>

namespace {

using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;

struct mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void expect(bool ok, const std::string& what) {
    if (!ok) throw mismatch(what);
}

// max |a - b| <= tol * max(1, max |b|), shapes equal.
void expect_close(const Tensor<float>& a, const Tensor<float>& b, double tol, const std::string& what) {
    expect(a.shape() == b.shape(), what + ": shape " + vit3d::shape_to_string(a.shape()) + ", expected " +
                                       vit3d::shape_to_string(b.shape()));
    double worst = 0, scale = 1;
    for (Index i = 0; i < a.size(); ++i) {
        expect(std::isfinite(a.data()[i]), what + ": element " + std::to_string(i) + " is not finite");
        worst = std::max(worst, std::abs(double(a.data()[i]) - double(b.data()[i])));
        scale = std::max(scale, std::abs(double(b.data()[i])));
    }
    expect(worst <= tol * scale,
           what + ": max |difference| " + std::to_string(worst) + " > " + std::to_string(tol * scale));
    std::printf("ok  %s %s, max |difference| %.3g\n", what.c_str(), vit3d::shape_to_string(a.shape()).c_str(),
                worst);
}

// The description's value steps after resizing, written out from the schema (docs/weights.md): the window
// (clip if asked, [low, high] onto `to`), then (x - mean) / std per channel (axis 0 of [C, spatial...]).
Tensor<float> window_and_normalize(Tensor<float> x, const transforms::Preprocessing& p) {
    if (p.intensity_window) {
        const auto& w = *p.intensity_window;
        for (float& v : x) {
            const double c = w.clip ? std::clamp<double>(v, w.low, w.high) : v;
            v = static_cast<float>((c - w.low) / (w.high - w.low) * (w.to[1] - w.to[0]) + w.to[0]);
        }
    }
    if (p.mean || p.std) {
        const Index channels = x.dim(0), plane = x.size() / channels;
        for (Index c = 0; c < channels; ++c) {
            const auto m = static_cast<float>(p.mean ? (*p.mean)[static_cast<std::size_t>(c)] : 0.0);
            const auto s = static_cast<float>(p.std ? (*p.std)[static_cast<std::size_t>(c)] : 1.0);
            for (Index i = 0; i < plane; ++i) x.data()[c * plane + i] = (x.data()[c * plane + i] - m) / s;
        }
    }
    return x;
}

// The 2D model's input from an 8-bit RGB or gray image, following the schema: raw values 0..255, the
// rescale (1/255 as ToTensor's v / 255), Resize(resize_size) + CenterCrop or a resize to input_size, the
// window, mean / std. Returns the tensor before the window and mean / std; `view_scale` turns it into the
// picture's [0, 1].
Tensor<float> image_before_values(const io::LoadedModel<float>& model, const std::string& path) {
    const transforms::Preprocessing& p = model.preprocess();
    expect(p.layout == "BCHW" && (!p.channel_order || *p.channel_order != "BGR"),
           "the check expects a 2D description in RGB or gray order");
    const auto filter =
        p.interpolation == "bicubic" ? transforms::ResizeFilter::bicubic : transforms::ResizeFilter::bilinear;
    const Tensor<std::uint8_t> raw = io::read_image<std::uint8_t>(
        path, model.input_shape()[0] == 1 ? io::ImageChannels::gray : io::ImageChannels::rgb);
    Tensor<float> image(raw.shape());
    const bool to_tensor = p.rescale && std::abs(*p.rescale * 255.0 - 1.0) < 1e-12;
    for (Index i = 0; i < raw.size(); ++i) {
        const float v = raw.data()[i];
        image.data()[i] = to_tensor ? v / 255.0f : p.rescale ? v * static_cast<float>(*p.rescale) : v;
    }
    const Index h = model.input_shape()[1], w = model.input_shape()[2];
    if (p.resize_size)
        return transforms::center_crop(transforms::resize_shorter_side(image, *p.resize_size, filter), h, w);
    return image.dim(1) == h && image.dim(2) == w ? image : transforms::resize(image, h, w, filter);
}

Tensor<float> image_view(const io::LoadedModel<float>& model, const std::string& path) {
    Tensor<float> x = image_before_values(model, path);
    const transforms::Preprocessing& p = model.preprocess();
    if (p.rescale && std::abs(*p.rescale * 255.0 - 1.0) < 1e-12) return x;
    const double scale = 255.0 * p.rescale.value_or(1.0);
    for (float& v : x) v = static_cast<float>(v / scale);
    return x;
}

Tensor<float> image_input(const io::LoadedModel<float>& model, const std::string& path) {
    return window_and_normalize(image_before_values(model, path), model.preprocess()).unsqueeze(0);
}

// The 3D model's input from a NIfTI volume: [nz, ny, nx] kept for BCDHW, [nx, ny, nz] for BCHWD; the
// rescale; resampled; the description's window and mean / std; [1, 1, spatial...].
Tensor<float> volume_input(const io::LoadedModel<float>& model, const std::string& path) {
    const transforms::Preprocessing& p = model.preprocess();
    Tensor<float> v = io::read_nifti<float>(path).data;
    if (p.layout == "BCHWD") {
        // Axis by axis, so that this does not lean on Tensor::permute's order convention.
        Tensor<float> t = Tensor<float>::empty({v.dim(2), v.dim(1), v.dim(0)});
        for (Index z = 0; z < v.dim(0); ++z)
            for (Index y = 0; y < v.dim(1); ++y)
                for (Index x = 0; x < v.dim(2); ++x) t(x, y, z) = v(z, y, x);
        v = t;
    }
    if (p.rescale)
        for (float& x : v) x = x * static_cast<float>(*p.rescale);
    v = transforms::resample_trilinear(v, {p.input_size[0], p.input_size[1], p.input_size[2]});
    v = window_and_normalize(v.unsqueeze(0), p);
    return v.unsqueeze(0);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    expect(bool(in), "cannot read " + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// classify_image printed the top K classes of the model on the image, with softmax probabilities.
void check_classify(const std::string& model_path, const std::string& image, const std::string& stdout_path,
                    Index k) {
    const auto model = io::load_model<float>(model_path);
    const Tensor<float> logits = model.forward(image_input(model, image), io::ModelOutput::logits);
    std::vector<double> p(static_cast<std::size_t>(logits.size()));
    double top = -1e300, total = 0;
    for (Index i = 0; i < logits.size(); ++i) top = std::max(top, double(logits.data()[i]));
    for (std::size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(double(logits.data()[i]) - top);
    for (double& v : p) v /= total;
    std::vector<std::size_t> order(p.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });

    const std::string text = read_text(stdout_path);
    const std::regex line(R"(\s+(\d+)\. class (\d+)\s+p = ([0-9.]+)\s+logit ([-+0-9.]+))");
    Index rank = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it) {
        const std::size_t expected = order[static_cast<std::size_t>(rank)];
        const std::size_t printed = std::stoul((*it)[2]);
        const double prob = std::stod((*it)[3]), logit = std::stod((*it)[4]);
        expect(std::stol((*it)[1]) == rank + 1, "rank numbering");
        expect(printed == expected, "rank " + std::to_string(rank + 1) + ": class " +
                                        std::to_string(printed) + ", expected " + std::to_string(expected));
        expect(std::abs(prob - p[expected]) <= 1e-6, "probability of class " + std::to_string(expected));
        expect(std::abs(logit - logits.data()[expected]) <= 1e-5,
               "logit of class " + std::to_string(expected));
        ++rank;
    }
    expect(rank == std::min<Index>(k, logits.size()), "printed " + std::to_string(rank) +
                                                          " classes, expected " +
                                                          std::to_string(std::min<Index>(k, logits.size())));
    std::printf("ok  top %lld classes, their probabilities and logits\n", static_cast<long long>(rank));
}

// encode_volume wrote the model's output for the volume.
void check_volume(const std::string& model_path, const std::string& nifti, const std::string& npy,
                  const std::string& output) {
    const auto model = io::load_model<float>(model_path);
    const auto which = output == "pooled"   ? io::ModelOutput::pooled
                       : output == "tokens" ? io::ModelOutput::tokens
                                            : io::ModelOutput::token_grid;
    expect_close(io::read_npy<float>(npy), model.forward(volume_input(model, nifti), which), 1e-6, output);
}

// F.interpolate(x, size, mode="bilinear", align_corners=False) of x [B, C, h, w], directly from its
// definition: source coordinate (o + 0.5) * in / out - 0.5, clamped at 0, two taps per axis.
Tensor<float> bilinear(const Tensor<float>& x, Index height, Index width) {
    const Index planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    const auto taps = [](Index o, Index in, Index out, Index& i0, Index& i1, double& f) {
        const double s = std::max(0.0, (double(o) + 0.5) * double(in) / double(out) - 0.5);
        i0 = std::min<Index>(static_cast<Index>(s), in - 1);
        i1 = std::min<Index>(i0 + 1, in - 1);
        f = s - double(i0);
    };
    Tensor<float> out({x.dim(0), x.dim(1), height, width});
    for (Index p = 0; p < planes; ++p)
        for (Index y = 0; y < height; ++y)
            for (Index xx = 0; xx < width; ++xx) {
                Index y0, y1, x0, x1;
                double fy, fx;
                taps(y, h, height, y0, y1, fy);
                taps(xx, w, width, x0, x1, fx);
                const float* src = x.data() + p * h * w;
                const double v = (1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                                 fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]);
                out.data()[(p * height + y) * width + xx] = static_cast<float>(v);
            }
    return out;
}

void expect_png_size(const std::string& png, Index width, Index height) {
    const io::ImageInfo info = io::read_image_info(png);
    expect(info.width == width && info.height == height,
           png + ": " + std::to_string(info.width) + " x " + std::to_string(info.height) + ", expected " +
               std::to_string(width) + " x " + std::to_string(height));
    std::printf("ok  %s decodes to %lld x %lld\n", png.c_str(), static_cast<long long>(width),
                static_cast<long long>(height));
}

// dense_features wrote every feature of the token grid, upsampled bilinearly to the input size.
void check_dense2d(const std::string& model_path, const std::string& image, const std::string& npy,
                   const std::string& png) {
    const auto model = io::load_model<float>(model_path);
    const Tensor<float> grid = model.forward(image_input(model, image), io::ModelOutput::token_grid);
    const Index H = model.input_shape()[1], W = model.input_shape()[2];
    expect_close(io::read_npy<float>(npy), bilinear(grid, H, W), 1e-6, "dense features");
    expect_png_size(png, 2 * W + 4, H);
}

// dense_features wrote K principal components of the token grid (over the N tokens, centred; sorted by
// variance; each signed so that its largest coefficient is positive), upsampled trilinearly.
void check_dense3d(const std::string& model_path, const std::string& nifti, const std::string& npy, Index k,
                   const std::string& png) {
    const auto model = io::load_model<float>(model_path);
    const Tensor<float> grid = model.forward(volume_input(model, nifti), io::ModelOutput::token_grid);
    const Index D = grid.dim(1), N = grid.size() / D;
    Eigen::MatrixXd x(D, N);
    for (Index d = 0; d < D; ++d)
        for (Index n = 0; n < N; ++n) x(d, n) = grid.data()[d * N + n];
    const Eigen::VectorXd mean = x.rowwise().mean();
    x.colwise() -= mean;
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> pca(x * x.transpose() / double(N));
    Shape projected_shape = grid.shape();
    projected_shape[1] = k;
    Tensor<float> projected(projected_shape);
    for (Index c = 0; c < k; ++c) {
        Eigen::VectorXd v = pca.eigenvectors().col(D - 1 - c);
        Eigen::Index largest = 0;
        v.cwiseAbs().maxCoeff(&largest);
        if (v(largest) < 0) v = -v;
        const Eigen::VectorXd coordinates = x.transpose() * v;  // [N]
        for (Index n = 0; n < N; ++n) projected.data()[c * N + n] = static_cast<float>(coordinates(n));
    }
    const Shape& in = model.input_shape();
    expect_close(io::read_npy<float>(npy), transforms::resample_trilinear(projected, {in[1], in[2], in[3]}),
                 1e-5, "dense principal components");
    const Index depth_axis = model.preprocess().layout == "BCHWD" ? 3 : 1;
    Index plane_h = 0, plane_w = 0;
    for (Index a = 1; a < 4; ++a)
        if (a != depth_axis)
            (plane_h == 0 ? plane_h : plane_w) = model.input_shape()[static_cast<std::size_t>(a)];
    expect_png_size(png, 2 * plane_w + 4, plane_h);
}

// attention_map drew IMAGE, MEAN, HEAD 0.. cells; the MEAN cell must be the mean attention blended over the
// image. Geometry as in examples/attention_map.cpp: margin 6, gap 6, caption 16.
void check_attention(const std::string& model_path, const std::string& image, const std::string& png,
                     Index cell, Index columns, float alpha) {
    const auto model = io::load_model<float>(model_path);
    const Tensor<float> view = image_view(model, image);
    const Tensor<float> att = model.forward(image_input(model, image), io::ModelOutput::cls_attention);
    const Index heads = att.dim(1), count = heads + 2;
    const Index longer = std::max(view.dim(1), view.dim(2));
    const Index ch = view.dim(1) * cell / longer, cw = view.dim(2) * cell / longer;
    const Index cols = std::min(columns, count), rows = (count + cols - 1) / cols;
    const Index width = 12 + cols * cw + (cols - 1) * 6, height = 12 + rows * (16 + ch) + (rows - 1) * 6;
    expect_png_size(png, width, height);

    Tensor<float> mean({att.dim(2), att.dim(3)});
    for (Index h = 0; h < heads; ++h) mean = mean + att.select(0, 0).select(0, h) / float(heads);
    const Tensor<float> shown = transforms::resize(view, ch, cw, transforms::ResizeFilter::bicubic);
    const Tensor<std::uint8_t> expected = io::overlay_heatmap(
        shown, transforms::resize(mean, ch, cw, transforms::ResizeFilter::bilinear, false), alpha);
    const Tensor<std::uint8_t> picture = io::read_image<std::uint8_t>(png, io::ImageChannels::rgb);
    const Index top = 6 + (1 / cols) * (16 + ch + 6) + 16, left = 6 + (1 % cols) * (cw + 6);  // cell 1
    int worst = 0;
    for (Index c = 0; c < 3; ++c)
        for (Index y = 0; y < ch; ++y)
            for (Index x = 0; x < cw; ++x)
                worst =
                    std::max(worst, std::abs(int(picture(c, top + y, left + x)) - int(expected(c, y, x))));
    expect(worst <= 1,
           "MEAN cell differs from the recomputed blend by up to " + std::to_string(worst) + " levels");
    std::printf("ok  MEAN cell %lld x %lld equals the recomputed blend (max %d levels)\n",
                static_cast<long long>(cw), static_cast<long long>(ch), worst);
}

// custom_encoder: the reloaded run reproduces the seeded one bit for bit, another seed differs, the file
// holds the expected parameters, and the encoder equals the library's CT encoder without a mask (whose
// slice-aware blocks are the same modules wired the same way).
void check_custom(const std::string& a, const std::string& loaded, const std::string& other) {
    const Tensor<float> cls = io::read_npy<float>(a + "/cls.npy");
    const Tensor<float> again = io::read_npy<float>(loaded + "/cls.npy");
    expect(cls.shape() == Shape({1, 96}), "cls.npy shape " + vit3d::shape_to_string(cls.shape()));
    expect(std::equal(cls.begin(), cls.end(), again.begin(), again.end()),
           "--load did not reproduce cls.npy");
    const Tensor<float> different = io::read_npy<float>(other + "/cls.npy");
    expect(!std::equal(cls.begin(), cls.end(), different.begin(), different.end()),
           "seed 2 gave seed 1's output");
    std::printf("ok  --load reproduces cls.npy exactly; another seed changes it\n");

    const io::Safetensors file = io::Safetensors::open(a + "/weights.safetensors");
    expect(file.names().size() == 38,
           "weights.safetensors holds " + std::to_string(file.names().size()) + " tensors, expected 38");
    expect(file.info("patch_embed.proj.weight").shape == Shape({96, 1, 4, 16, 16}),
           "patch_embed.proj.weight");
    expect(file.info("blocks.1.attn.slice_bias.table").shape == Shape({4, 4}), "slice_bias.table");
    expect(file.info("pos_embed.row_embed.weight").shape == Shape({4, 32}), "pos_embed.row_embed.weight");

    vit3d::models::CTEncoderConfig c;
    c.input_size = {16, 64, 64};
    c.patch_size = {4, 16, 16};
    c.dim = 96;
    c.depth = 2;
    c.heads = 4;
    c.mlp_dim = 384;
    c.slice_levels = 4;
    c.regions = 1;
    vit3d::models::CTEncoder<float> reference(c);
    Index copied = 0;
    reference.visit_parameters([&](const std::string& name, Tensor<float>& p) {
        // The example's blocks have norm1, attn, norm2, mlp; the hybrid block's MLP norm is norm3 and its
        // norm2 / region_attn serve only the region step, which needs a mask.
        std::string key = std::regex_replace(name, std::regex(R"(\.norm3\.)"), ".norm2.");
        if (name.find(".norm2.") != std::string::npos || name.find("region_attn") != std::string::npos ||
            name.rfind("anatomy.", 0) == 0)
            return;
        p = file.get<float>(key);
        ++copied;
    });
    expect(copied == 38, "copied " + std::to_string(copied) + " parameters into the CT encoder");
    const auto out = reference.forward(io::read_npy<float>(a + "/volume.npy"));
    expect_close(cls, out.cls, 1e-5, "cls vs models::CTEncoder without a mask");
}

int run(const std::vector<std::string>& a) {
    const auto need = [&](std::size_t n) {
        if (a.size() != n + 1)
            throw std::invalid_argument("check_example_outputs " + a[0] + ": wrong arguments");
    };
    if (a.empty()) throw std::invalid_argument("check_example_outputs: no mode");
    if (a[0] == "classify") {
        need(4);
        check_classify(a[1], a[2], a[3], std::stol(a[4]));
    } else if (a[0] == "volume") {
        need(4);
        check_volume(a[1], a[2], a[3], a[4]);
    } else if (a[0] == "dense2d") {
        need(4);
        check_dense2d(a[1], a[2], a[3], a[4]);
    } else if (a[0] == "dense3d") {
        need(5);
        check_dense3d(a[1], a[2], a[3], std::stol(a[4]), a[5]);
    } else if (a[0] == "attention") {
        need(6);
        check_attention(a[1], a[2], a[3], std::stol(a[4]), std::stol(a[5]), std::stof(a[6]));
    } else if (a[0] == "custom") {
        need(3);
        check_custom(a[1], a[2], a[3]);
    } else {
        throw std::invalid_argument("check_example_outputs: unknown mode " + a[0]);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "check_example_outputs: %s\n", e.what());
        return 1;
    }
}
