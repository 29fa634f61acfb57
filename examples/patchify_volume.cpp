// Patchify a synthetic CT volume into ViT tokens with einops rearrange, pool them, and fold them back.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target patchify_volume
//   ./build/examples/patchify_volume
//
// The volume is [B, C, D, H, W] = [1, 1, 64, 256, 256] (vit-pytorch's 3D layout, frames first), cut into
// 4 x 16 x 16 patches: 16 x 16 x 16 = 4,096 tokens of 1,024 values each, the input of a 3D ViT.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vit3d.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A smooth synthetic "body": an ellipsoid of soft tissue (~40 HU) in air (-1000 HU) with a bright core.
vit3d::Tensor<float> synthetic_ct(vit3d::Index depth, vit3d::Index height, vit3d::Index width) {
    vit3d::Tensor<float> ct({1, 1, depth, height, width});
    for (vit3d::Index z = 0; z < depth; ++z)
        for (vit3d::Index y = 0; y < height; ++y)
            for (vit3d::Index x = 0; x < width; ++x) {
                const double dz = (z - depth / 2.0) / (depth / 2.0), dy = (y - height / 2.0) / (height / 2.5),
                             dx = (x - width / 2.0) / (width / 2.2);
                const double r2 = dz * dz + dy * dy + dx * dx;
                ct(0, 0, z, y, x) = static_cast<float>(r2 < 1.0 ? (r2 < 0.1 ? 700.0 : 40.0) : -1000.0);
            }
    return ct;
}

}  // namespace

int main() {
    const auto t0 = Clock::now();
    const vit3d::Tensor<float> ct = synthetic_ct(64, 256, 256);
    std::printf("volume  %-22s %8.2f ms  (synthetic CT, HU)\n", vit3d::shape_to_string(ct.shape()).c_str(),
                ms_since(t0));

    // Parse once, apply many times: the compiled pattern keeps the parsed form and the patch sizes.
    const vit3d::Rearrange patchify("b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
                                    {{"pf", 4}, {"p1", 16}, {"p2", 16}});
    const vit3d::Rearrange unpatchify("b (f h w) (pf p1 p2 c) -> b c (f pf) (h p1) (w p2)",
                                      {{"f", 16}, {"h", 16}, {"pf", 4}, {"p1", 16}, {"p2", 16}});

    auto t = Clock::now();
    const auto tokens = patchify(ct);
    std::printf("tokens  %-22s %8.2f ms  %s\n", vit3d::shape_to_string(tokens.shape()).c_str(), ms_since(t),
                patchify.pattern().c_str());

    t = Clock::now();
    const auto per_token = vit3d::reduce(tokens, "b n d -> b n", vit3d::Reduction::mean);
    const auto grid = vit3d::rearrange(per_token, "b (f h w) -> b f h w", {{"f", 16}, {"h", 16}});
    std::printf("pooled  %-22s %8.2f ms  mean HU per patch, folded to the token grid\n",
                vit3d::shape_to_string(grid.shape()).c_str(), ms_since(t));

    t = Clock::now();
    const auto restored = unpatchify(tokens);
    std::printf("folded  %-22s %8.2f ms  %s\n", vit3d::shape_to_string(restored.shape()).c_str(), ms_since(t),
                unpatchify.pattern().c_str());

    // The central slice of the pooled grid as text: '#' core, '+' tissue, '.' partly air, ' ' air.
    std::printf("\ncentral frame of the token grid (mean HU per 4x16x16 patch):\n");
    for (vit3d::Index h = 0; h < 16; ++h) {
        std::printf("  ");
        for (vit3d::Index w = 0; w < 16; ++w) {
            const float hu = grid(0, 8, h, w);
            std::printf("%c ", hu > 300 ? '#' : hu > 0 ? '+' : hu > -900 ? '.' : ' ');
        }
        std::printf("\n");
    }
    const bool round_trip = restored == ct;
    std::printf("\nround trip patchify -> unpatchify exact: %s (threads: %d)\n", round_trip ? "yes" : "NO",
                vit3d::num_threads());
    return round_trip ? 0 : 1;
}
