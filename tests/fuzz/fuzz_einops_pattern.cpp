// libFuzzer target for the einops pattern language: parse the input as a pattern for each operation and,
// when it parses, apply it to a small tensor whose shape and axis lengths also come from the input.
// Only vit3d::pattern_error / vit3d::shape_error (bad patterns, shapes or lengths) may escape the
// library; any other exception, crash, leak or sanitizer report is a bug.
//
// Input layout: byte 0 picks the operation, bytes 1-4 the rank and the first lengths of the input tensor,
// byte 5 one axis length to bind, the rest is the pattern text.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vit3d.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 6) return 0;
    const int op = data[0] % 3;
    const int rank = data[1] % 6;
    vit3d::Shape shape;
    for (int i = 0; i < rank; ++i) shape.push_back(1 + (data[2 + (i % 3)] >> (2 * (i / 3))) % 6);
    const vit3d::Index bound = data[5] % 9;
    const std::string pattern(reinterpret_cast<const char*>(data + 6), size - 6);
    // Numbers in a pattern are axis lengths: repeat(x, "a -> a 99999 99999") legitimately asks for terabytes.
    // Keep the requested sizes small so that only real bugs, not allocation limits, stop the fuzzer.
    double product = 1;
    for (std::size_t i = 0; i < pattern.size();) {
        if (pattern[i] < '0' || pattern[i] > '9') {
            ++i;
            continue;
        }
        double number = 0;
        for (; i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9'; ++i)
            number = number * 10 + (pattern[i] - '0');
        product *= number < 1 ? 1 : number;
    }
    const auto x = vit3d::Tensor<float>::arange(vit3d::shape_numel(shape)).reshape(shape);
    if (product * static_cast<double>(x.size()) * static_cast<double>(bound > 1 ? bound : 1) > (1 << 22))
        return 0;
    // Bind a length to the first lowercase letter of the pattern, if any, as a user might.
    vit3d::AxisLengths lengths;
    for (char c : pattern)
        if (c >= 'a' && c <= 'z') {
            lengths.emplace_back(std::string(1, c), bound);
            break;
        }
    for (const auto& with : {vit3d::AxisLengths{}, lengths}) {
        try {
            vit3d::Tensor<float> y;
            if (op == 0) y = vit3d::rearrange(x, pattern, with);
            if (op == 1) y = vit3d::repeat(x, pattern, with);
            if (op == 2) y = vit3d::reduce(x, pattern, vit3d::Reduction::sum, with);
            // A successful rearrange moves every element exactly once.
            if (op == 0 && y.size() != x.size()) __builtin_trap();
        } catch (const vit3d::pattern_error&) {
        } catch (const vit3d::shape_error&) {
        }
    }
    return 0;
}
