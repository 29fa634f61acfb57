// Dense features: the patch tokens of a ViT folded back onto their grid and upsampled to the input's size,
// one feature vector per pixel (2D) or voxel (3D): what a segmentation or depth head reads. Works with any
// exported 2D model (on an image) or 3D model (on a NIfTI volume).
//
//   ./build/examples/dense_features model.safetensors image|volume features.npy [--components K] [--png FILE]
//   F=tests/fixtures/roundtrip   # tiny random-weight models of each family
//   ./build/examples/dense_features $F/torchvision_vit_f32.safetensors examples/data/shapes.png dense.npy
//   V=examples/data/anatomical.nii
//   ./build/examples/dense_features $F/vit_pytorch_vit3d_f32.safetensors $V d.npy --components 3 --png d.png
//
// Steps: the input is prepared as the model's description says (io::read_image_input / read_nifti_input), the
// model gives its token_grid [1, D, g1, ..., gn]; with --components K the D features are first projected onto
// their K principal components (over the N patch tokens: centred, sorted by variance, each signed so that its
// largest coefficient is positive); then the grid is upsampled to the model's input size (bilinear for 2D,
// trilinear for 3D, align_corners=False: F.interpolate(grid, size=input_size, mode="bilinear" |
// "trilinear", align_corners=False), which transforms::resize / transforms::resample_trilinear match to 1
// ulp). Written: features.npy [1, D or K, spatial...] in the layout's axis order. --png also writes the input
// (as the model sees it; for a volume its middle slice across the depth axis) beside its first three
// principal components as red, green and blue, each stretched over its own range.
//
// Upsampling before projecting would give the same numbers (both are linear), but the full-size D-channel
// tensor is D x pixels floats: for a 3D ViT-B at 64 x 256 x 256 that is 12.9 GB, so --components matters
// there, and a request above 2 GiB is refused.

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/image.hpp>
#include <vit3d/formats/nifti.hpp>
#include <vit3d/formats/npy.hpp>
#include <vit3d/io/load_model.hpp>
#include <vit3d/io/model_input.hpp>

#include "command_line.hpp"

namespace {

using namespace vit3d_examples;
using vit3d::Index;
using vit3d::Shape;
using vit3d::Tensor;
namespace io = vit3d::io;
namespace transforms = vit3d::transforms;
using Clock = std::chrono::steady_clock;
using vit3d_examples::ms_since;

struct Options {
    std::string model, input, features, png;
    Index components = 0;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--components")
            o.components = option_integer(argc, argv, i, 1, 1 << 20);
        else if (a == "--png")
            o.png = option_value(argc, argv, i);
        else if (a == "--threads")
            o.threads = static_cast<int>(option_integer(argc, argv, i, 1, 1024));
        else if (a.size() > 1 && a[0] == '-')
            throw usage_error("unknown option " + a);
        else
            positional.push_back(a);
    }
    if (positional.size() != 3)
        throw usage_error(
            "usage: dense_features model.safetensors image|volume features.npy [--components K] [--png "
            "FILE]");
    o.model = positional[0];
    o.input = positional[1];
    o.features = positional[2];
    return o;
}

// The first k principal directions of the columns of grid [1, D, cells...] (the N patch tokens), as rows of
// a [k, D] matrix, and the tokens' mean.
struct Principal {
    Eigen::MatrixXd directions;  // [k, D]
    Eigen::VectorXd mean;        // [D]
};

Principal principal_components(const Tensor<float>& grid, Index k) {
    const Index D = grid.dim(1), N = grid.size() / D;
    if (k > D)
        throw usage_error("--components " + std::to_string(k) + ": the model has " + std::to_string(D) +
                          " features");
    const Eigen::MatrixXd tokens =
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(grid.data(),
                                                                                                D, N)
            .cast<double>();  // [D, N]
    Principal p;
    p.mean = tokens.rowwise().mean();
    const Eigen::MatrixXd centred = tokens.colwise() - p.mean;
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(centred * centred.transpose() / double(N));
    p.directions.resize(k, D);
    for (Index c = 0; c < k; ++c) {  // eigenvalues come in increasing order
        Eigen::VectorXd v = solver.eigenvectors().col(D - 1 - c);
        Eigen::Index largest = 0;
        v.cwiseAbs().maxCoeff(&largest);
        if (v(largest) < 0) v = -v;
        p.directions.row(c) = v.transpose();
    }
    return p;
}

// grid [1, D, cells...] -> [1, k, cells...]: each token's coordinates on the principal directions.
Tensor<float> project(const Tensor<float>& grid, const Principal& p) {
    const Index D = grid.dim(1), N = grid.size() / D, k = p.directions.rows();
    Shape shape = grid.shape();
    shape[1] = k;
    Tensor<float> out = Tensor<float>::empty(shape);
    for (Index n = 0; n < N; ++n)
        for (Index c = 0; c < k; ++c) {
            double s = 0;
            for (Index d = 0; d < D; ++d)
                s += p.directions(c, d) * (double(grid.data()[d * N + n]) - p.mean(d));
            out.data()[c * N + n] = static_cast<float>(s);
        }
    return out;
}

// grid [1, C, g...] upsampled to the spatial size, as F.interpolate(..., align_corners=False).
Tensor<float> upsample(const Tensor<float>& grid, const Shape& size) {
    if (size.size() == 2)
        return transforms::resize(grid, size[0], size[1], transforms::ResizeFilter::bilinear, false);
    return transforms::resample_trilinear(grid, {size[0], size[1], size[2]});
}

// x [C, H, W] stretched to [0, 1] per channel.
Tensor<float> stretched(Tensor<float> x) {
    const Index plane = x.dim(1) * x.dim(2);
    for (Index c = 0; c < x.dim(0); ++c) {
        float* v = x.data() + c * plane;
        const auto [lo, hi] = std::minmax_element(v, v + plane);
        const float low = *lo, range = *hi - *lo;
        for (Index i = 0; i < plane; ++i) v[i] = range > 0 ? (v[i] - low) / range : 0.5f;
    }
    return x;
}

// The plane of a [C, spatial...] tensor shown in the picture: itself for 2D; for 3D the middle slice across
// the depth axis (axis 0 of BCDHW, axis 2 of BCHWD), as [C, H, W].
Tensor<float> picture_plane(const Tensor<float>& x, const std::string& layout) {
    if (x.rank() == 3) return x;
    const Index depth_axis = layout == "BCHWD" ? 3 : 1;
    return x.select(depth_axis, x.dim(depth_axis) / 2);
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    auto t = Clock::now();
    const auto model = io::load_model<float>(o.model);
    const transforms::Preprocessing& p = model.preprocess();
    const Shape size(model.input_shape().begin() + 1, model.input_shape().end());
    const double load_ms = ms_since(t);

    t = Clock::now();
    Tensor<float> input, view;  // view: [C, spatial...], what the picture shows of the input
    if (p.layout == "BCHW") {
        io::ImageInput image = io::read_image_input(o.input, model);
        view = std::move(image.view);
        input = std::move(image.batch);
    } else {
        input = io::read_nifti_input(o.input, model);
        view = input.select(0, 0);
    }
    const double read_ms = ms_since(t);

    t = Clock::now();
    const Tensor<float> grid = model.forward(input, io::ModelOutput::token_grid);  // [1, D, g...]
    const double forward_ms = ms_since(t);

    t = Clock::now();
    const Index D = grid.dim(1);
    Index pixels = 1;
    for (Index s : size) pixels *= s;
    const Index channels = o.components > 0 ? o.components : D;
    if (double(channels) * double(pixels) * sizeof(float) > 2.0 * (1 << 30))
        throw usage_error(std::to_string(channels) + " features x " + std::to_string(pixels) +
                          " pixels would need more than 2 GiB; ask for fewer with --components K");
    std::optional<Principal> principal;
    if (o.components > 0 || !o.png.empty())
        principal = principal_components(grid, std::max<Index>(o.components, std::min<Index>(3, D)));
    Tensor<float> reduced = grid;
    if (o.components > 0) {
        Principal first = *principal;
        first.directions = principal->directions.topRows(o.components);
        reduced = project(grid, first);
    }
    const Tensor<float> dense = upsample(reduced, size);  // [1, D or K, spatial...]
    const double upsample_ms = ms_since(t);

    io::write_npy(o.features, dense);
    if (!o.png.empty()) {
        Principal rgb = *principal;
        rgb.directions = principal->directions.topRows(std::min<Index>(3, D));
        Tensor<float> colours = picture_plane(upsample(project(grid, rgb), size).select(0, 0), p.layout);
        while (colours.dim(0) < 3)
            colours =
                vit3d::concat<float>({colours, Tensor<float>(Shape{1, colours.dim(1), colours.dim(2)})}, 0);
        Tensor<float> shown = picture_plane(view, p.layout);
        shown = shown.dim(0) == 3 ? shown : stretched(shown);
        if (shown.dim(0) == 1) shown = vit3d::concat<float>({shown, shown, shown}, 0);
        const Tensor<float> gap = Tensor<float>::ones({3, shown.dim(1), 4});
        io::write_png(o.png, vit3d::concat<float>({shown, gap, stretched(colours)}, 2));
    }

    std::printf("model     %s: %s %s, input %s (layout %s), %lld features per token\n", o.model.c_str(),
                model.family().c_str(), model.kind().c_str(),
                vit3d::shape_to_string(model.input_shape()).c_str(), p.layout.c_str(),
                static_cast<long long>(D));
    std::printf("tokens    token_grid %s\n", vit3d::shape_to_string(grid.shape()).c_str());
    if (o.components > 0)
        std::printf("reduced   %lld principal components %s\n", static_cast<long long>(o.components),
                    vit3d::shape_to_string(reduced.shape()).c_str());
    std::printf("dense     %s (%s, align_corners=False) -> %s\n",
                vit3d::shape_to_string(dense.shape()).c_str(), size.size() == 2 ? "bilinear" : "trilinear",
                o.features.c_str());
    if (!o.png.empty())
        std::printf("picture   %s: the input%s | its first 3 principal components as RGB\n", o.png.c_str(),
                    size.size() == 2 ? "" : " (middle slice across depth)");
    std::printf(
        "time      load %.1f ms, read %.1f ms, forward %.1f ms, components + upsample %.1f ms (%d threads)\n",
        load_ms, read_ms, forward_ms, upsample_ms, vit3d::num_threads());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return vit3d_examples::run_main("dense_features", argc, argv, parse, run); }
