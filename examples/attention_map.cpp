// Where a 2D ViT's class token looks: the last block's class-token attention (io::ModelOutput::cls_attention,
// [1, heads, g1, g2]) of every head and averaged over the heads, each upsampled to the picture, coloured with
// viridis and blended over the image, written as one PNG grid.
//
//   ./build/examples/attention_map model.safetensors image.png attention.png [--cell 192] [--alpha 0.6]
//   F=tests/fixtures/roundtrip   # tiny random-weight models of each family
//   ./build/examples/attention_map $F/torchvision_vit_f32.safetensors examples/data/shapes.png attention.png
//
// The model must have a class token and at least one block. The image is shown as the model sees it
// (resized and center-cropped as its description says), scaled so that its longer side is --cell pixels.
// Cells, left to right and top to bottom, at most --columns (default 4) per row, each under a caption: IMAGE,
// MEAN (the heads' average), then HEAD 0, HEAD 1, ... Each map is upsampled bilinearly (align_corners=False)
// and stretched over the whole colour map on its own (min-max per cell): compare where a head looks, not how
// much. --alpha is the map's opacity over the image.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
#include <vit3d.hpp>
#include <vit3d/formats/colormap.hpp>
#include <vit3d/formats/image.hpp>
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

// The grid's geometry (tests/examples/check_example_outputs.cpp recomputes it).
constexpr Index margin = 6, gap = 6, caption = 16, glyph_scale = 2;

struct Options {
    std::string model, image, png;
    Index cell = 192, columns = 4;
    float alpha = 0.6f;
    int threads = 0;
};

Options parse(int argc, char** argv) {
    Options o;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--cell") {
            o.cell = option_integer(argc, argv, i, 16, 4096);
        } else if (a == "--columns") {
            o.columns = option_integer(argc, argv, i, 1, 64);
        } else if (a == "--alpha") {
            const std::string text = option_value(argc, argv, i);
            std::size_t used = 0;
            try {
                o.alpha = std::stof(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != text.size() || !(o.alpha >= 0.0f && o.alpha <= 1.0f))
                throw usage_error("--alpha expects a number in [0, 1], got \"" + text + "\"");
        } else if (a == "--threads") {
            o.threads = static_cast<int>(option_integer(argc, argv, i, 1, 1024));
        } else if (a.size() > 1 && a[0] == '-') {
            throw usage_error("unknown option " + a);
        } else {
            positional.push_back(a);
        }
    }
    if (positional.size() != 3)
        throw usage_error(
            "usage: attention_map model.safetensors image.png attention.png [--cell PX] [--alpha A] "
            "[--columns N]");
    o.model = positional[0];
    o.image = positional[1];
    o.png = positional[2];
    return o;
}

// A 3 x 5 pixel font for the captions: each glyph is 5 rows of 3 bits, most significant bit left.
std::vector<int> glyph(char c) {
    switch (c) {
        case 'A':
            return {2, 5, 7, 5, 5};
        case 'D':
            return {6, 5, 5, 5, 6};
        case 'E':
            return {7, 4, 6, 4, 7};
        case 'G':
            return {3, 4, 5, 5, 3};
        case 'H':
            return {5, 5, 7, 5, 5};
        case 'I':
            return {7, 2, 2, 2, 7};
        case 'M':
            return {5, 7, 7, 5, 5};
        case 'N':
            return {6, 5, 5, 5, 5};
        case '0':
            return {7, 5, 5, 5, 7};
        case '1':
            return {2, 6, 2, 2, 7};
        case '2':
            return {6, 1, 2, 4, 7};
        case '3':
            return {6, 1, 2, 1, 6};
        case '4':
            return {5, 5, 7, 1, 1};
        case '5':
            return {7, 4, 6, 1, 6};
        case '6':
            return {3, 4, 7, 5, 7};
        case '7':
            return {7, 1, 2, 2, 2};
        case '8':
            return {7, 5, 7, 5, 7};
        case '9':
            return {7, 5, 7, 1, 6};
        default:
            return {0, 0, 0, 0, 0};  // space
    }
}

// Writes `text` in dark grey into canvas [3, H, W] (8-bit) with its top-left corner at (top, left).
void draw_text(Tensor<std::uint8_t>& canvas, const std::string& text, Index top, Index left) {
    for (std::size_t k = 0; k < text.size(); ++k) {
        const std::vector<int> rows = glyph(text[k]);
        for (Index r = 0; r < 5; ++r)
            for (Index col = 0; col < 3; ++col) {
                if (!((rows[static_cast<std::size_t>(r)] >> (2 - col)) & 1)) continue;
                for (Index dy = 0; dy < glyph_scale; ++dy)
                    for (Index dx = 0; dx < glyph_scale; ++dx) {
                        const Index y = top + r * glyph_scale + dy;
                        const Index x = left + (Index(k) * 4 + col) * glyph_scale + dx;
                        if (y < canvas.dim(1) && x < canvas.dim(2))
                            for (Index c = 0; c < 3; ++c) canvas(c, y, x) = 40;
                    }
            }
    }
}

int run(const Options& o) {
    if (o.threads > 0) vit3d::set_num_threads(o.threads);
    auto t = Clock::now();
    const auto model = io::load_model<float>(o.model);
    if (!model.gives(io::ModelOutput::cls_attention))
        throw std::runtime_error(o.model + ": this " + model.family() + " " + model.kind() +
                                 " model has no class token (or no blocks), so no class-token attention");
    const double load_ms = ms_since(t);

    t = Clock::now();
    const io::ImageInput image = io::read_image_input(o.image, model);
    const Tensor<float>& view = image.view;  // [C, h, w] on [0, 1]: the image as the model sees it
    const Tensor<float> attention =
        model.forward(image.batch, io::ModelOutput::cls_attention);  // [1, heads, g1, g2]
    const double forward_ms = ms_since(t);

    t = Clock::now();
    const Index heads = attention.dim(1), g1 = attention.dim(2), g2 = attention.dim(3);
    const Index longer = std::max(view.dim(1), view.dim(2));
    const Index cell_h = std::max<Index>(1, view.dim(1) * o.cell / longer);
    const Index cell_w = std::max<Index>(1, view.dim(2) * o.cell / longer);
    Tensor<float> shown =
        transforms::resize(view, cell_h, cell_w, transforms::ResizeFilter::bicubic);  // [C, cell_h, cell_w]
    if (shown.dim(0) == 1) shown = shown.select(0, 0);  // gray: [cell_h, cell_w]

    std::vector<Tensor<std::uint8_t>> cells;
    std::vector<std::string> captions;
    Tensor<std::uint8_t> image_cell = Tensor<std::uint8_t>::empty({3, cell_h, cell_w});
    for (Index i = 0; i < image_cell.size(); ++i) {
        const Index plane = cell_h * cell_w;
        const float v = shown.rank() == 2 ? shown.data()[i % plane] : shown.data()[i];
        image_cell.data()[i] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f);
    }
    cells.push_back(image_cell);
    captions.push_back("IMAGE");
    const Tensor<float> maps = attention.select(0, 0);  // [heads, g1, g2]
    const Tensor<float> mean = vit3d::reduce(maps, "h a b -> a b", vit3d::Reduction::mean);
    const auto heat = [&](const Tensor<float>& map) {  // [g1, g2] -> blended cell
        const Tensor<float> up =
            transforms::resize(map, cell_h, cell_w, transforms::ResizeFilter::bilinear, false);
        return io::overlay_heatmap(shown, up, o.alpha);
    };
    cells.push_back(heat(mean));
    captions.push_back("MEAN");
    for (Index h = 0; h < heads; ++h) {
        cells.push_back(heat(maps.select(0, h)));
        captions.push_back("HEAD " + std::to_string(h));
    }

    const Index count = static_cast<Index>(cells.size());
    const Index columns = std::min(o.columns, count), rows = (count + columns - 1) / columns;
    const Index width = 2 * margin + columns * cell_w + (columns - 1) * gap;
    const Index height = 2 * margin + rows * (caption + cell_h) + (rows - 1) * gap;
    Tensor<std::uint8_t> canvas = Tensor<std::uint8_t>::full({3, height, width}, 255);
    for (Index k = 0; k < count; ++k) {
        const Index top = margin + (k / columns) * (caption + cell_h + gap),
                    left = margin + (k % columns) * (cell_w + gap);
        draw_text(canvas, captions[static_cast<std::size_t>(k)], top + (caption - 5 * glyph_scale) / 2, left);
        const Tensor<std::uint8_t>& c = cells[static_cast<std::size_t>(k)];
        for (Index ch = 0; ch < 3; ++ch)
            for (Index y = 0; y < cell_h; ++y)
                std::copy_n(&c.data()[(ch * cell_h + y) * cell_w], cell_w,
                            &canvas(ch, top + caption + y, left));
    }
    io::write_png(o.png, canvas);
    const double draw_ms = ms_since(t);

    std::printf("model     %s: %s %s, input %s, %lld heads, patch grid %lld x %lld\n", o.model.c_str(),
                model.family().c_str(), model.kind().c_str(),
                vit3d::shape_to_string(model.input_shape()).c_str(), static_cast<long long>(heads),
                static_cast<long long>(g1), static_cast<long long>(g2));
    std::printf("attention cls_attention %s, last block\n",
                vit3d::shape_to_string(attention.shape()).c_str());
    for (Index h = 0; h < heads; ++h) {
        const Tensor<float> m = maps.select(0, h);
        const Index top = std::max_element(m.begin(), m.end()) - m.begin();
        std::printf(
            "  head %-3lld most attended patch (row %lld, col %lld): %.4f of the class token's attention\n",
            static_cast<long long>(h), static_cast<long long>(top / g2), static_cast<long long>(top % g2),
            double(m.data()[top]));
    }
    std::printf(
        "picture   %s: %lld x %lld, %lld cells of %lld x %lld in %lld rows x %lld columns (IMAGE, MEAN, HEAD "
        "0..%lld)\n",
        o.png.c_str(), static_cast<long long>(width), static_cast<long long>(height),
        static_cast<long long>(count), static_cast<long long>(cell_w), static_cast<long long>(cell_h),
        static_cast<long long>(rows), static_cast<long long>(columns), static_cast<long long>(heads - 1));
    std::printf("time      load %.1f ms, read + forward %.1f ms, draw + write %.1f ms (%d threads)\n",
                load_ms, forward_ms, draw_ms, vit3d::num_threads());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return vit3d_examples::run_main("attention_map", argc, argv, parse, run); }
