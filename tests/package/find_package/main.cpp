// Built against an installed vit3d (see CMakeLists.txt next to this file): 3D patch embedding layout.
#include <iostream>
#include <vit3d.hpp>

int main() {
    vit3d::Tensor<float> v({1, 1, 8, 16, 16});
    auto tok = vit3d::rearrange(v, "b c (f pf) (h p1) (w p2) -> b (f h w) (pf p1 p2 c)",
                                {{"pf", 2}, {"p1", 4}, {"p2", 4}});
    if (tok.shape() == vit3d::Shape{1, 64, 32}) return 0;
    std::cerr << "find_package consumer: unexpected shape {";
    for (auto d : tok.shape()) std::cerr << ' ' << d;
    std::cerr << " }, expected {1, 64, 32}\n";
    return 1;
}
