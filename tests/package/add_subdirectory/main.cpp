// Built with vit3d pulled in via add_subdirectory (see CMakeLists.txt next to this file): 2D ViT patches.
#include <cstdio>
#include <vit3d.hpp>

int main() {
    const vit3d::Shape expected{2, 4, 48};
    vit3d::Tensor<float> image({2, 3, 8, 8});
    const auto patches =
        vit3d::rearrange(image, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", {{"p1", 4}, {"p2", 4}});
    if (patches.shape() != expected) {
        std::printf("add_subdirectory consumer: got shape [");
        for (const auto extent : patches.shape()) std::printf(" %td", extent);
        std::printf(" ], want [ 2 4 48 ]\n");
        return 1;
    }
    return 0;
}
