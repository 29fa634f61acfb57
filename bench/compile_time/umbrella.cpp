// Compile-time case "umbrella" (bench/compile_time.py): the umbrella header alone, which every program that
// includes <vit3d.hpp> pays before it uses anything from it.
#include <vit3d.hpp>

int main() {}
